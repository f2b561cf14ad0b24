// Failpoints: named places in the server where a test build crashes or sleeps on demand, as
// etcd's gofail does for its robustness tests (docs/robustness.md lists the names).
//
// CAIRN_FAILPOINT("walAfterFsync") is one load of a constant and a branch never taken in the
// `cairn` binary, which links base/failpoint.cc (nothing armable). Only `cairn-failpoints`, a
// test binary built from the same objects plus base/failpoint_on.cc, can arm them:
//   CAIRN_FAILPOINTS="walAfterFsync=crash-after(20);beforeSyncWatchers=sleep(50)"
// at start, or CAIRN_FAILPOINTS_FILE=<path> holding the same text, read again every 50 ms (an
// empty file disarms everything; a change resets the counts). Actions:
//   crash           the first hit ends the process with SIGKILL (no destructor, no flush: a
//                   kill -9 at exactly that instant), after writing "failpoint <name>: crash"
//                   to stderr;
//   crash-after(N)  the same at hit N+1;
//   sleep(MS)       every hit sleeps MS milliseconds; sleep(MS)*N: the first N hits only.
#pragma once

namespace cairn::base {

extern const bool failpoints_compiled;
void failpoint_hit(const char* name);

}  // namespace cairn::base

#define CAIRN_FAILPOINT(name)                            \
  do {                                                   \
    if (::cairn::base::failpoints_compiled) [[unlikely]] \
      ::cairn::base::failpoint_hit(name);                \
  } while (0)
