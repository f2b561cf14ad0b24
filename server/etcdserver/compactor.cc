#include "etcdserver/compactor.h"

#include <algorithm>

namespace cairn::etcdserver {

namespace {
constexpr std::chrono::milliseconds one_hour{60 * 60 * 1000};
}

periodic_policy::periodic_policy(std::chrono::milliseconds retention,
                                 std::chrono::steady_clock::time_point start)
    : retention_(retention),
      sample_(std::max(std::chrono::milliseconds{1}, std::min(retention, one_hour) / 10)),
      compact_interval_(std::min(retention, one_hour)),
      keep_(static_cast<std::size_t>(retention / sample_) + 1),
      base_(retention),
      last_success_(start) {}

void periodic_policy::record(std::int64_t rev) {
  revs_.push_back(rev);
  // The front then stays the sample of one retention ago.
  if (revs_.size() > keep_) revs_.pop_front();
}

std::optional<std::int64_t> periodic_policy::due(std::chrono::steady_clock::time_point now) {
  if (revs_.empty() || now - last_success_ < base_) return std::nullopt;
  // The first compaction waits a whole retention; later ones come every compact interval.
  base_ = compact_interval_;
  return revs_.front();
}

std::optional<std::int64_t> revision_policy::due(std::int64_t current) const {
  std::int64_t rev = current - retention_;
  if (rev <= 0 || rev == prev_) return std::nullopt;
  return rev;
}

compactor::compactor(compactor_options opts, std::function<std::int64_t()> current_rev,
                     std::function<bool(std::int64_t)> compact)
    : opts_(opts), current_rev_(std::move(current_rev)), compact_(std::move(compact)) {
  thread_ = std::thread([this] { run(); });
}

compactor::~compactor() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool compactor::wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stop_; });
}

void compactor::run() {
  if (opts_.mode == compaction_mode::periodic) {
    periodic_policy p(opts_.period, std::chrono::steady_clock::now());
    while (true) {
      p.record(current_rev_());
      if (!wait(p.sample_interval())) return;
      if (auto rev = p.due(std::chrono::steady_clock::now())) {
        if (compact_(*rev)) p.succeeded(std::chrono::steady_clock::now());
      }
    }
  }
  revision_policy p(opts_.revisions);
  while (wait(opts_.revision_interval)) {
    if (auto rev = p.due(current_rev_())) {
      if (compact_(*rev)) p.succeeded(*rev);
    }
  }
}

}  // namespace cairn::etcdserver
