// bench/stats.h: what a cairn-bench run measures: latencies (merged from every worker), errors
// by gRPC code, and the report printed at the end (text like etcd's benchmark tool, or JSON).
//
// Thread-safety: a recorder belongs to one worker thread; merge them after the workers end.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cairn::bench {

class recorder {
 public:
  void ok(std::chrono::nanoseconds latency) { latencies_ns_.push_back(latency.count()); }
  void error(int grpc_code) { ++errors_[grpc_code]; }
  void merge(const recorder& other);

  std::size_t count() const { return latencies_ns_.size(); }
  const std::map<int, std::uint64_t>& errors() const { return errors_; }
  // Sorts the latencies (once) and answers the q-quantile (0 <= q <= 1), in seconds; 0 if none.
  double quantile(double q);
  double mean() const;  // seconds
  double slowest();
  double fastest();
  // Counts per bucket of a log-scale histogram (upper bounds in seconds).
  std::vector<std::pair<double, std::uint64_t>> histogram();

 private:
  void sort();
  std::vector<std::int64_t> latencies_ns_;
  bool sorted_ = false;
  std::map<int, std::uint64_t> errors_;
};

// The gRPC code's name ("Unavailable").
std::string code_name(int grpc_code);

struct report {
  std::string workload;
  double seconds = 0;  // wall time of the measured phase
  recorder rec;
  // Extra numbers of a workload (the watch one: events delivered, per second), printed in
  // order and put in the JSON as they are.
  std::vector<std::pair<std::string, double>> extra;

  std::string text();
  std::string json();
};

}  // namespace cairn::bench
