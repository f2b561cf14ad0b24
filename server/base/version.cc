#include "base/version.h"

namespace cairn::base {

std::string_view etcd_api_version() {
  // "3.5.24" → "3.5": everything before the second dot.
  const auto first = etcd_version.find('.');
  const auto second = etcd_version.find('.', first + 1);
  return etcd_version.substr(0, second);
}

}  // namespace cairn::base
