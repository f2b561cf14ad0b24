#include "cmd/run.h"

#include <iostream>

namespace cairn::cmd {

int run(const config&) {
  // Exit status 2, not 0: nothing is being served, and scripts must not take this for a
  // member that ran and stopped cleanly.
  std::cerr << "cairn: the server is not built yet; configuration is valid\n";
  return 2;
}

}  // namespace cairn::cmd
