// Watch validation against the revision sequence the linearizability checker accepted: every
// watch creation (one watch_record) must deliver, from its start revision on, exactly the
// model's events for its key range, in order, each once, each revision's events in one response,
// with prev_kv as the model has it (and only when asked for); a progress notification at P
// means every event up to P was delivered before it. A watch restarted from a revision is a new
// record and must see the same events again (resumable). Only the first anomaly of each watch
// is reported (the rest follow from it).
#pragma once

#include <string>
#include <vector>

#include "robustness/history.h"
#include "robustness/model.h"

namespace cairn::robustness {

struct watch_report {
  std::vector<std::string> anomalies;
  int watches = 0;
  long long events = 0;
  int progress_notifications = 0;
};

watch_report check_watches(const std::vector<watch_record>& watches, const model& replayed);

// True when `key` is in the range of a request with this key and range_end (etcd's rules: an
// empty end is the key alone, "\0" every key from `begin` on).
bool in_range(const std::string& key, const std::string& begin, const std::string& end);

// Whether a watch that asked to start at `start` (0: the current revision) can be told of
// `final_revision` by the end of a run: only a revision at or past its start (no event and no
// progress notification comes below it, etcd #20221). A watch from the future that the traffic
// never reached owes nothing.
bool can_be_told(std::int64_t start, std::int64_t final_revision);

}  // namespace cairn::robustness
