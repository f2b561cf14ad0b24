// etcdserver/compactor.h: automatic compaction (etcd's --auto-compaction-mode/-retention).
//
// Two policies, as pure state machines over a time and a revision the caller supplies (so tests
// drive them with a fake clock), and a runner thread that drives one against the node.
//
// periodic (retention R as a duration): every R/10 (capped at 1 h / 10) the current revision is
// recorded, keeping the last R/(R/10)+1 samples, so the oldest sample is the revision of about R
// ago. Nothing is compacted until R has passed since start; then the oldest sample is compacted
// and from then on one compaction is attempted every min(R, 1 h) after the last success (a
// failed attempt is retried at the next sample). These are etcd 3.4's rules (v3compactor/
// periodic.go).
//
// revision (retention N revisions): every interval (etcd: 5 min, configurable here for tests)
// compact at current − N when that is positive and differs from the last revision compacted.
//
// Thread-safety: the policies are single-threaded values; the runner owns its thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace cairn::etcdserver {

using clock_fn = std::function<std::chrono::steady_clock::time_point()>;

class periodic_policy {
 public:
  periodic_policy(std::chrono::milliseconds retention, std::chrono::steady_clock::time_point start);

  // How long the runner waits between samples.
  std::chrono::milliseconds sample_interval() const { return sample_; }
  // Records the current revision (call at start and after each wait).
  void record(std::int64_t rev);
  // After a wait: the revision to compact now, if it is time.
  std::optional<std::int64_t> due(std::chrono::steady_clock::time_point now);
  // The compaction `due` asked for succeeded (or was already compacted).
  void succeeded(std::chrono::steady_clock::time_point now) { last_success_ = now; }

 private:
  std::chrono::milliseconds retention_;
  std::chrono::milliseconds sample_;
  std::chrono::milliseconds compact_interval_;
  std::size_t keep_;
  std::chrono::milliseconds base_;
  std::chrono::steady_clock::time_point last_success_;
  std::deque<std::int64_t> revs_;
};

class revision_policy {
 public:
  explicit revision_policy(std::int64_t retention) : retention_(retention) {}
  std::optional<std::int64_t> due(std::int64_t current) const;
  void succeeded(std::int64_t rev) { prev_ = rev; }

 private:
  std::int64_t retention_;
  std::int64_t prev_ = 0;
};

enum class compaction_mode { periodic, revision };

struct compactor_options {
  compaction_mode mode = compaction_mode::periodic;
  std::chrono::milliseconds period{0};  // periodic retention
  std::int64_t revisions = 0;           // revision retention
  std::chrono::milliseconds revision_interval{5 * 60 * 1000};
};

// Runs a policy on its own thread. `current_rev` reads the store's revision; `compact` asks the
// node to compact and returns true on success or when the revision was already compacted.
class compactor {
 public:
  compactor(compactor_options opts, std::function<std::int64_t()> current_rev,
            std::function<bool(std::int64_t)> compact);
  ~compactor();
  compactor(const compactor&) = delete;
  compactor& operator=(const compactor&) = delete;

 private:
  void run();
  // Waits d; false when stopping.
  bool wait(std::chrono::milliseconds d);

  compactor_options opts_;
  std::function<std::int64_t()> current_rev_;
  std::function<bool(std::int64_t)> compact_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace cairn::etcdserver
