#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "fmt/format.h"

namespace cairn::bench {

void recorder::merge(const recorder& other) {
  latencies_ns_.insert(latencies_ns_.end(), other.latencies_ns_.begin(), other.latencies_ns_.end());
  sorted_ = false;
  for (const auto& [code, n] : other.errors_) errors_[code] += n;
}

void recorder::sort() {
  if (!sorted_) std::sort(latencies_ns_.begin(), latencies_ns_.end());
  sorted_ = true;
}

double recorder::quantile(double q) {
  if (latencies_ns_.empty()) return 0;
  sort();
  // Nearest rank: the smallest latency with at least q of the samples at or below it.
  const double rank = std::ceil(q * static_cast<double>(latencies_ns_.size()));
  const auto i = static_cast<std::size_t>(std::max(1.0, rank)) - 1;
  return static_cast<double>(latencies_ns_[std::min(i, latencies_ns_.size() - 1)]) / 1e9;
}

double recorder::mean() const {
  if (latencies_ns_.empty()) return 0;
  const long double sum =
      std::accumulate(latencies_ns_.begin(), latencies_ns_.end(), static_cast<long double>(0));
  return static_cast<double>(sum / static_cast<long double>(latencies_ns_.size())) / 1e9;
}

double recorder::slowest() {
  if (latencies_ns_.empty()) return 0;
  sort();
  return static_cast<double>(latencies_ns_.back()) / 1e9;
}

double recorder::fastest() {
  if (latencies_ns_.empty()) return 0;
  sort();
  return static_cast<double>(latencies_ns_.front()) / 1e9;
}

std::vector<std::pair<double, std::uint64_t>> recorder::histogram() {
  std::vector<std::pair<double, std::uint64_t>> out;
  if (latencies_ns_.empty()) return out;
  sort();
  // Buckets 1-2-5 per decade from 10 µs up to the slowest sample.
  std::size_t i = 0;
  for (double decade = 1e-5; i < latencies_ns_.size(); decade *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double bound = decade * m;
      std::uint64_t n = 0;
      while (i < latencies_ns_.size() && static_cast<double>(latencies_ns_[i]) / 1e9 <= bound) {
        ++n;
        ++i;
      }
      out.push_back({bound, n});
      if (i == latencies_ns_.size()) break;
    }
  }
  return out;
}

std::string code_name(int c) {
  static const char* names[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  if (c >= 0 && c < 17) return names[c];
  return "Code(" + std::to_string(c) + ")";
}

std::string report::text() {
  std::string out;
  const double n = static_cast<double>(rec.count());
  out += fmt::format("Summary ({}):\n", workload);
  out += fmt::format("  Total:\t{:.4f} secs.\n", seconds);
  out += fmt::format("  Requests:\t{}\n", rec.count());
  out += fmt::format("  Slowest:\t{:.4f} secs.\n", rec.slowest());
  out += fmt::format("  Fastest:\t{:.4f} secs.\n", rec.fastest());
  out += fmt::format("  Average:\t{:.4f} secs.\n", rec.mean());
  out += fmt::format("  Requests/sec:\t{:.4f}\n", seconds > 0 ? n / seconds : 0);
  for (const auto& [k, v] : extra) out += fmt::format("  {}:\t{:.4f}\n", k, v);
  out += "\nResponse time histogram:\n";
  std::uint64_t most = 1;
  auto h = rec.histogram();
  for (const auto& [b, c] : h) most = std::max(most, c);
  // From the first bucket with a sample on.
  std::size_t first = 0;
  while (first < h.size() && h[first].second == 0) ++first;
  for (std::size_t i = first; i < h.size(); ++i) {
    const auto& [b, c] = h[i];
    const auto bar =
        static_cast<std::size_t>(40.0 * static_cast<double>(c) / static_cast<double>(most));
    out += fmt::format("  {:9.6f} [{}]\t|{}\n", b, c, std::string(bar, '#'));
  }
  out += "\nLatency distribution:\n";
  for (double q : {0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999}) {
    out += fmt::format("  {:g}% in {:.4f} secs.\n", q * 100, rec.quantile(q));
  }
  if (!rec.errors().empty()) {
    out += "\nErrors:\n";
    for (const auto& [code, c] : rec.errors()) out += fmt::format("  {}: {}\n", code_name(code), c);
  }
  return out;
}

std::string report::json() {
  std::string errors;
  for (const auto& [code, c] : rec.errors()) {
    if (!errors.empty()) errors += ",";
    errors += fmt::format("\"{}\":{}", code_name(code), c);
  }
  std::string extras;
  for (const auto& [k, v] : extra) extras += fmt::format(",\"{}\":{}", k, v);
  const double n = static_cast<double>(rec.count());
  return fmt::format(
      "{{\"workload\":\"{}\",\"seconds\":{},\"requests\":{},\"throughput\":{},"
      "\"mean\":{},\"p50\":{},\"p90\":{},\"p99\":{},\"p999\":{},\"slowest\":{},"
      "\"errors\":{{{}}}{}}}\n",
      workload, seconds, rec.count(), seconds > 0 ? n / seconds : 0, rec.mean(), rec.quantile(0.5),
      rec.quantile(0.9), rec.quantile(0.99), rec.quantile(0.999), rec.slowest(), errors, extras);
}

}  // namespace cairn::bench
