// http/health.h: the probe endpoints etcd 3.5 serves on its client and metrics URLs, over an
// abstract view of the node (`health_source`), so they are written and tested before the node
// exists.
//
//   /health    {"health":"true","reason":""}, or 503 with "false" and the first failing check
//              (an alarm not excluded, then no leader unless ?serializable=true, then a
//              keys-only Range with that serializability); ?exclude=NOSPACE|CORRUPT.
//   /livez     checks serializable_read; /readyz checks data_corruption, serializable_read,
//              linearizable_read, non_learner (etcd 3.5.11+, non_learner 3.5.19+). One check
//              alone at /livez/<name>; ?exclude=<name> (repeatable) skips one; ?verbose lists
//              "[+]name ok" lines. A failure answers 503 with every line and "[-]name failed:".
//   /version   {"etcdserver":"3.5.24","etcdcluster":"3.5.0","cairn":"0.1.0"}
//   /metrics   Prometheus text from whoever owns the registry.
//
// Thread-safety: handlers run on many connection threads at once; health_source
// implementations must be thread-safe; the counters are atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/errors.h"
#include "base/expected.h"
#include "http/router.h"

namespace cairn::http {

// etcdserverpb.AlarmType, by number.
enum class alarm_type { none = 0, nospace = 1, corrupt = 2 };
std::string_view to_string(alarm_type a);  // "NONE", "NOSPACE", "CORRUPT"

// What the probes ask the node.
class health_source {
 public:
  virtual ~health_source() = default;
  // The cluster's active alarms (AlarmList).
  virtual std::vector<alarm_type> alarms() = 0;
  // Whether this member knows a leader.
  virtual bool has_leader() = 0;
  // A Range {keys_only, limit 1}, serializable or linearizable, with the node's request
  // timeout and root's rights (auth never fails a probe).
  virtual cairn::expected<void, base::errc> read_probe(bool serializable) = 0;
  virtual bool is_learner() = 0;
  // /version's etcdcluster: the decided cluster version, nullopt before the cluster decided
  // one ("not_decided"). By default the one version Cairn's clusters run at.
  virtual std::optional<std::string> cluster_version();
};

// etcd_server_health_success / etcd_server_health_failures (counted by /health).
struct health_counters {
  std::atomic<std::uint64_t> success{0};
  std::atomic<std::uint64_t> failures{0};
};
// The counters in Prometheus text format, with etcd's HELP lines.
std::string health_metrics_text(const health_counters& counters);

// Adds /health, /livez, /readyz and their per-check paths to `r`.
void install_health(router& r, std::shared_ptr<health_source> source,
                    std::shared_ptr<health_counters> counters);
// Adds /version.
void install_version(router& r, std::shared_ptr<health_source> source);
// Adds /metrics, answering with `gather()` (Prometheus text format 0.0.4).
void install_metrics(router& r, std::function<std::string()> gather);
// What a --listen-metrics-urls address serves, and nothing more: /metrics, /health, /livez,
// /readyz (with their per-check paths) and /version.
void install_metrics_endpoints(router& r, std::shared_ptr<health_source> source,
                               std::shared_ptr<health_counters> counters,
                               std::function<std::string()> gather);

}  // namespace cairn::http
