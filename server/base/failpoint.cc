// The production side of failpoint.h: nothing is armable. `cairn-failpoints` links
// failpoint_on.cc ahead of this library, so this object is never pulled into it (keep nothing
// else in this file, or the two definitions would clash there).
#include "base/failpoint.h"

namespace cairn::base {

extern const bool failpoints_compiled = false;
void failpoint_hit(const char*) {}

}  // namespace cairn::base
