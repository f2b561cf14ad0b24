// The `cairn` executable: an etcd-compatible server. See cmd/start.h.
#include <iostream>
#include <string>
#include <vector>

#include "cmd/run.h"
#include "cmd/start.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  return cairn::cmd::start(args, cairn::cmd::process_environment(), std::cout, std::cerr,
                           &cairn::cmd::run);
}
