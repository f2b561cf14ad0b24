#pragma once

// Tests: a real file system that refuses to grow files, without root. While a limit is in
// place, a write past `bytes` in any regular file of the process fails with EFBIG (SIGXFSZ is
// ignored), much as a full disk fails it with ENOSPC; writes below it go on.

#include <signal.h>
#include <sys/resource.h>

#include <cstdint>

namespace cairn::base {

class file_size_limit {
 public:
  explicit file_size_limit(std::uint64_t bytes) {
    ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit limited = old_;
    limited.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limited);
  }
  file_size_limit(const file_size_limit&) = delete;
  file_size_limit& operator=(const file_size_limit&) = delete;
  ~file_size_limit() { lift(); }

  // Files may grow again (the space was freed).
  void lift() { ::setrlimit(RLIMIT_FSIZE, &old_); }

 private:
  rlimit old_{};
};

}  // namespace cairn::base
