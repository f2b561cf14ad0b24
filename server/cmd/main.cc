// The `cairn` executable: an etcd-compatible server. See cmd/start.h.
#include <absl/synchronization/mutex.h>

#include <iostream>
#include <string>
#include <vector>

#include "cmd/run.h"
#include "cmd/start.h"

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, so every absl::Mutex (gRPC's locks) also updates a
  // process-wide lock graph to detect deadlocks: a global lock and ~6% of the server's CPU under
  // load (docs/benchmarks.md). Tests that link the server in-process keep the detection.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::vector<std::string> args(argv + 1, argv + argc);
  return cairn::cmd::start(args, cairn::cmd::process_environment(), std::cout, std::cerr,
                           &cairn::cmd::run);
}
