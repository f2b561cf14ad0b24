#include "robustness/watch_check.h"

#include <google/protobuf/util/message_differencer.h>

#include <set>
#include <utility>

namespace cairn::robustness {

using mvccpb::Event;

bool in_range(const std::string& key, const std::string& begin, const std::string& end) {
  if (end.empty()) return key == begin;
  if (end == std::string(1, '\0')) return key >= begin;
  return key >= begin && key < end;
}

bool can_be_told(std::int64_t start, std::int64_t final_revision) {
#ifdef CAIRN_PLANTED_BUG_FUTURE_WATCH_OWES_THE_END
  return final_revision > 0;
#endif
  return final_revision > 0 && final_revision >= start;
}

namespace {

std::string show(const Event& ev) {
  std::string s = ev.type() == Event::PUT ? "PUT " : "DELETE ";
  s += ev.kv().key();
  if (ev.type() == Event::PUT) s += "=" + ev.kv().value();
  s += " @" + std::to_string(ev.kv().mod_revision());
  return s;
}

bool same_event(const Event& a, const Event& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

// Whether `ev` comes after the k-th event of the i-th response.
bool delivered_later(const watch_record& w, size_t i, size_t k, const Event& ev) {
  for (size_t j = i; j < w.responses.size(); ++j) {
    const auto& events = w.responses[j].events;
    for (size_t e = j == i ? k + 1 : 0; e < events.size(); ++e)
      if (same_event(events[e], ev)) return true;
  }
  return false;
}

// One watch against the model; the first anomaly, or "".
std::string check_one(const watch_record& w, const model& m, watch_report& rep) {
  const auto& req = w.request;
  std::int64_t start = req.start_revision();
  size_t first = 0;
  if (start <= 0) {
    if (w.responses.empty() || !w.responses[0].created) return "";  // never started
    start = w.responses[0].header_revision + 1;
    first = 1;
  }
  // The expected events from `start` on, in order.
  std::vector<Event> expected;
  for (std::int64_t r = std::max(start, m.base_revision() + 1); r <= m.revision(); ++r) {
    for (const Event& ev : m.events(r)) {
      if (!in_range(ev.kv().key(), req.key(), req.range_end())) continue;
      Event e = ev;
      if (!req.prev_kv()) e.clear_prev_kv();
      expected.push_back(std::move(e));
    }
  }
  size_t next = 0;
  std::int64_t last_rev = 0;
  std::set<std::pair<std::int64_t, std::string>> delivered;
  for (size_t i = first; i < w.responses.size(); ++i) {
    const watch_response& r = w.responses[i];
    if (r.canceled) break;
    if (r.created) {
      if (!r.events.empty()) return "the created response carried events";
      continue;
    }
    if (r.events.empty()) {
      ++rep.progress_notifications;
      if (r.header_revision < start - 1)
        return "progress notification at revision " + std::to_string(r.header_revision) +
               " for a watch starting at " + std::to_string(start) + " (a future watch told " +
               "of a revision before its start, etcd #20221)";
      if (next < expected.size() && expected[next].kv().mod_revision() <= r.header_revision)
        return "progress notification at revision " + std::to_string(r.header_revision) +
               " before " + show(expected[next]) + " was delivered (not bookmarkable)";
      continue;
    }
    for (size_t k = 0; k < r.events.size(); ++k) {
      const Event& ev = r.events[k];
      ++rep.events;
      const std::int64_t rev = ev.kv().mod_revision();
      if (rev < last_rev)
        return show(ev) + " delivered after an event of revision " + std::to_string(last_rev) +
               " (out of order)";
      if (!delivered.emplace(rev, ev.kv().key()).second)
        return show(ev) + " delivered twice (not unique)";
      last_rev = rev;
      if (next < expected.size() && same_event(ev, expected[next])) {
        ++next;
        continue;
      }
      for (size_t j = next; j < expected.size(); ++j) {
        if (!same_event(ev, expected[j])) continue;
        if (delivered_later(w, i, k, expected[next]))
          return show(ev) + " delivered before " + show(expected[next]) + " (out of order)";
        std::string missed;
        for (size_t k = next; k < j && k < next + 5; ++k) missed += " " + show(expected[k]);
        return show(ev) + " delivered, but " + std::to_string(j - next) +
               " earlier event(s) never were (not reliable):" + missed;
      }
      std::string want = next < expected.size() ? show(expected[next]) : "nothing";
      std::string why =
          show(ev) + " is not the history's next event for this watch (expected " + want + ")";
      if (next < expected.size() && expected[next].kv().mod_revision() == rev &&
          expected[next].kv().key() == ev.kv().key()) {
        why += ": its kv or prev_kv differs from the history's (" +
               expected[next].ShortDebugString() + " vs " + ev.ShortDebugString() + ")";
      }
      return why;
    }
    if (next < expected.size() && expected[next].kv().mod_revision() == last_rev)
      return "revision " + std::to_string(last_rev) +
             " split across responses: " + show(expected[next]) + " came later (not atomic)";
  }
  return "";
}

}  // namespace

watch_report check_watches(const std::vector<watch_record>& watches, const model& replayed) {
  watch_report rep;
  for (const watch_record& w : watches) {
    ++rep.watches;
    std::string why = check_one(w, replayed, rep);
    if (!why.empty()) {
      rep.anomalies.push_back("watch of c" + std::to_string(w.client) + " on " + w.member +
                              " from revision " + std::to_string(w.request.start_revision()) +
                              " on " + w.request.key() + ": " + why);
    }
  }
  return rep;
}

}  // namespace cairn::robustness
