#include "mvcc/kv.h"

namespace cairn::mvcc {

std::string_view to_string(errc e) {
  switch (e) {
    case errc::compacted:
      return "mvcc: required revision has been compacted";
    case errc::future_rev:
      return "mvcc: required revision is a future revision";
    case errc::key_not_found:
      return "key not found";
    case errc::lease_not_found:
      return "lease not found";
    case errc::watch_id_exists:
      return "mvcc: duplicate watch ID provided on the WatchStream";
    case errc::watch_not_found:
      return "mvcc: watcher does not exist";
    case errc::closed:
      return "mvcc: watch stream closed";
  }
  return "mvcc: unknown error";
}

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  for (std::size_t i = end.size(); i-- > 0;) {
    if (static_cast<unsigned char>(end[i]) < 0xff) {
      end[i] = static_cast<char>(static_cast<unsigned char>(end[i]) + 1);
      end.resize(i + 1);
      return end;
    }
  }
  return std::string(1, '\0');
}

bool is_read_only(const txn_request& r) {
  for (const auto* ops : {&r.success, &r.failure}) {
    for (const auto& op : *ops) {
      if (!std::holds_alternative<range_request>(op.op)) return false;
    }
  }
  return true;
}

}  // namespace cairn::mvcc
