// metrics/exporter.h: the member's Prometheus metrics, with etcd's names, types, labels and
// buckets (docs/metrics.md lists them), gathered at scrape time from the counters the modules
// keep themselves (etcdserver::server_stats, mvcc_stats, base::disk_stats, v3rpc::grpc_stats)
// and from the kernel (process_*, page faults, the db's resident pages), and printed in the
// Prometheus text format by prometheus-cpp's serializer.
//
// Thread-safety: text() and collect() may run on any number of threads at once; they only read.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/stats.h"
#include "etcdserver/server.h"
#include "http/health.h"
#include "prometheus/metric_family.h"
#include "v3rpc/grpc_stats.h"

namespace cairn::metrics {

// One peer as the transport counts it (etcd_network_peer_*, etcd_network_active_peers).
struct peer_sample {
  std::uint64_t id = 0;
  std::uint64_t sent_bytes = 0;
  std::uint64_t sent_failures = 0;
  std::uint64_t received_bytes = 0;
  std::uint64_t received_failures = 0;
  bool active = false;
  std::uint64_t disconnects = 0;
  base::histogram::snapshot_t round_trip;  // bounds empty: never probed
};

struct exporter_options {
  // --metrics=extensive adds grpc_server_handling_seconds.
  bool extensive = false;
  // Sample the db's resident pages with mincore on every scrape (cheap: one byte per page).
  bool sample_residency = true;
  // The peers of a clustered member, read on every scrape; empty: none (a lone member has no
  // etcd_network_peer_* series, as etcd).
  std::function<std::vector<peer_sample>()> peers;
};

// /proc/self/stat and friends, read on every scrape.
struct process_sample {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double virtual_max_bytes = 0;
  double start_time_seconds = 0;
  double open_fds = 0;
  double max_fds = 0;
  std::uint64_t minor_faults = 0;
  std::uint64_t major_faults = 0;
};
process_sample sample_process();

class exporter {
 public:
  exporter(etcdserver::server& node, const v3rpc::grpc_stats* grpc,
           std::shared_ptr<const http::health_counters> health, exporter_options options = {});
  std::vector<prometheus::MetricFamily> collect() const;
  std::string text() const;

 private:
  etcdserver::server& node_;
  const v3rpc::grpc_stats* grpc_;
  std::shared_ptr<const http::health_counters> health_;
  exporter_options options_;
};

}  // namespace cairn::metrics
