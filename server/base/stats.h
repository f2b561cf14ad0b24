// base/stats.h: the counters and histograms modules keep about themselves (fsync and commit
// durations, bytes written, operations), read by the metrics exporter at scrape time. They are
// plain atomics, so a module records without knowing Prometheus and without a lock.
//
// Thread-safety: record from any number of threads; read (snapshot) from any thread. A snapshot
// taken while others record may be a moment old in some buckets, never torn within one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace cairn::base {

// Bucket upper bounds start, start*factor, ... (count of them), as Prometheus'
// ExponentialBuckets.
std::vector<double> exponential_buckets(double start, double factor, int count);

class histogram {
 public:
  // `bounds` ascending; an implicit +Inf bucket follows the last.
  explicit histogram(std::vector<double> bounds);
  void observe(double value);
  void observe(std::chrono::steady_clock::duration d) {
    observe(std::chrono::duration<double>(d).count());
  }

  struct snapshot_t {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // per bound, then the +Inf total
    double sum = 0;
    std::uint64_t count = 0;
  };
  snapshot_t snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
  std::atomic<std::uint64_t> count_{0};
};

// Times a scope into a histogram (in seconds).
class timer {
 public:
  explicit timer(histogram& h) : h_(h), start_(std::chrono::steady_clock::now()) {}
  ~timer() { h_.observe(std::chrono::steady_clock::now() - start_); }
  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;

 private:
  histogram& h_;
  std::chrono::steady_clock::time_point start_;
};

using counter = std::atomic<std::uint64_t>;

}  // namespace cairn::base

namespace cairn::base {

// What the storage layers record for the disk metrics (etcd_disk_*), owned by the node and
// handed to the WAL and the backend; the buckets are etcd's.
struct disk_stats {
  histogram wal_fsync{exponential_buckets(0.001, 2, 14)};
  counter wal_write_bytes{0};
  histogram backend_commit{exponential_buckets(0.001, 2, 14)};
  histogram backend_defrag{exponential_buckets(0.1, 2, 13)};
  histogram backend_snapshot{exponential_buckets(0.01, 2, 17)};
  std::atomic<int> defrag_inflight{0};
};

}  // namespace cairn::base
