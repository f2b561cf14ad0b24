#include "metrics/exporter.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "base/version.h"
#include "fmt/format.h"
#include "prometheus/text_serializer.h"

namespace cairn::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

class families {
 public:
  void gauge(const std::string& name, const std::string& help, double value,
             std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = value;
    add(name, help, MetricType::Gauge, std::move(m));
  }
  void counter(const std::string& name, const std::string& help, double value,
               std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = value;
    add(name, help, MetricType::Counter, std::move(m));
  }
  void histogram(const std::string& name, const std::string& help,
                 const base::histogram::snapshot_t& s,
                 std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    m.histogram.sample_count = s.count;
    m.histogram.sample_sum = s.sum;
    for (std::size_t i = 0; i < s.bounds.size(); ++i) {
      m.histogram.bucket.push_back({s.cumulative[i], s.bounds[i]});
    }
    m.histogram.bucket.push_back({s.count, std::numeric_limits<double>::infinity()});
    add(name, help, MetricType::Histogram, std::move(m));
  }
  // A family that exists with no sample yet (its help and type still show).
  void empty(const std::string& name, const std::string& help, MetricType type) {
    family(name, help, type);
  }
  std::vector<MetricFamily> take() { return std::move(out_); }

 private:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    for (auto& f : out_) {
      if (f.name == name) return f;
    }
    out_.push_back(MetricFamily{name, help, type, {}});
    return out_.back();
  }
  void add(const std::string& name, const std::string& help, MetricType type, ClientMetric m) {
    family(name, help, type).metric.push_back(std::move(m));
  }
  std::vector<MetricFamily> out_;
};

double as_double(const base::counter& c) {
  return static_cast<double>(c.load(std::memory_order_relaxed));
}

std::string hex(std::uint64_t v) { return fmt::format("{:x}", v); }

// "3.5.24" -> "3.5" (etcd labels the cluster version by major.minor).
std::string major_minor(const std::string& v) {
  const auto a = v.find('.');
  if (a == std::string::npos) return v;
  const auto b = v.find('.', a + 1);
  return b == std::string::npos ? v : v.substr(0, b);
}

}  // namespace

process_sample sample_process() {
  process_sample p;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::ifstream stat("/proc/self/stat");
  std::string line;
  std::getline(stat, line);
  // The command name (field 2) is in parentheses and may hold spaces: start after the last ')'.
  const auto close = line.rfind(')');
  if (close != std::string::npos) {
    std::istringstream in(line.substr(close + 2));
    std::vector<std::string> f;  // f[0] is field 3 (state)
    for (std::string x; in >> x;) f.push_back(x);
    auto field = [&](int n) -> double {  // 1-based field number of proc(5)
      const std::size_t i = static_cast<std::size_t>(n - 3);
      return i < f.size() ? std::strtod(f[i].c_str(), nullptr) : 0.0;
    };
    p.minor_faults = static_cast<std::uint64_t>(field(10));
    p.major_faults = static_cast<std::uint64_t>(field(12));
    p.cpu_seconds = (field(14) + field(15)) / ticks;
    p.virtual_bytes = field(23);
    p.resident_bytes = field(24) * page;
    double boot = 0;
    std::ifstream s("/proc/stat");
    for (std::string l; std::getline(s, l);) {
      if (l.rfind("btime ", 0) == 0) boot = std::strtod(l.c_str() + 6, nullptr);
    }
    p.start_time_seconds = boot + field(22) / ticks;
  }
  std::error_code ec;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  p.open_fds = fds;
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0) p.max_fds = static_cast<double>(r.rlim_cur);
  if (::getrlimit(RLIMIT_AS, &r) == 0) p.virtual_max_bytes = static_cast<double>(r.rlim_cur);
  return p;
}

exporter::exporter(etcdserver::server& node, const v3rpc::grpc_stats* grpc,
                   std::shared_ptr<const http::health_counters> health, exporter_options options)
    : node_(node), grpc_(grpc), health_(std::move(health)), options_(options) {}

std::vector<MetricFamily> exporter::collect() const {
  families f;
  const auto& st = node_.stats();
  const std::uint64_t self = node_.member_id();
  const std::uint64_t leader = node_.leader();

  // etcd_server_*
  f.gauge("etcd_server_has_leader", "Whether this member knows a leader (1) or not (0).",
          leader != 0 ? 1 : 0);
  f.gauge("etcd_server_is_leader", "Whether this member is the leader (1) or not (0).",
          leader != 0 && leader == self ? 1 : 0);
  f.gauge("etcd_server_is_learner", "Whether this member is a learner (1) or not (0).", 0);
  f.counter("etcd_server_leader_changes_seen_total", "Leader changes this member has seen.",
            as_double(st.leader_changes));
  f.gauge("etcd_server_proposals_committed_total", "The raft index committed so far.",
          static_cast<double>(node_.committed_index()));
  f.gauge("etcd_server_proposals_applied_total", "The raft index applied so far.",
          static_cast<double>(node_.applied_index()));
  f.gauge("etcd_server_proposals_pending", "Proposals waiting to be committed and applied.",
          static_cast<double>(st.proposals_pending.load(std::memory_order_relaxed)));
  f.counter("etcd_server_proposals_failed_total", "Proposals that failed or timed out.",
            as_double(st.proposals_failed));
  f.counter("etcd_server_heartbeat_send_failures_total",
            "Heartbeats the leader could not send to a follower.",
            as_double(st.heartbeat_send_failures));
  f.counter("etcd_server_slow_apply_total", "Entries whose apply took longer than 100 ms.",
            as_double(st.slow_applies));
  f.counter("etcd_server_slow_read_indexes_total", "ReadIndex rounds that took too long.",
            as_double(st.slow_read_indexes));
  f.counter("etcd_server_read_indexes_failed_total", "ReadIndex rounds that failed.",
            as_double(st.read_indexes_failed));
  f.gauge("etcd_server_quota_backend_bytes", "The backend quota (--quota-backend-bytes).",
          static_cast<double>(node_.quota_bytes()));
  f.gauge("etcd_server_version", "The etcd version this member behaves as.", 1,
          {{"server_version", std::string(base::etcd_version)}});
  f.gauge("etcd_server_id", "This member's id, in hex.", 1, {{"server_id", hex(self)}});
  f.gauge("etcd_cluster_version", "The cluster version (major.minor).", 1,
          {{"cluster_version", major_minor(std::string(base::etcd_version))}});
  if (health_) {
    f.counter("etcd_server_health_success", "Successful /health checks.",
              static_cast<double>(health_->success.load()));
    f.counter("etcd_server_health_failures", "Failed /health checks.",
              static_cast<double>(health_->failures.load()));
  }
  {
    bool nospace = false, corrupt = false;
    for (const auto& a : node_.alarms()) {
#ifndef CAIRN_PLANTED_BUG_METRICS_ALARM_GAUGE_STUCK
      if (a.alarm == etcdserver::alarm_type::nospace) nospace = true;
#endif
      if (a.alarm == etcdserver::alarm_type::corrupt) corrupt = true;
    }
    const std::string id = hex(self);
    f.gauge("etcd_debugging_server_alarms", "Active alarms (1) by type, for this member.",
            nospace ? 1 : 0, {{"alarm_type", "NOSPACE"}, {"member_id", id}});
    f.gauge("etcd_debugging_server_alarms", "Active alarms (1) by type, for this member.",
            corrupt ? 1 : 0, {{"alarm_type", "CORRUPT"}, {"member_id", id}});
  }

  // etcd_mvcc_*, etcd_debugging_mvcc_*
  auto& store = node_.store();
  const auto& ms = store.stats();
  auto& be = node_.backend();
  const double db_size = static_cast<double>(be.size());
#ifndef CAIRN_PLANTED_BUG_METRICS_DROP_DB_SIZE
  f.gauge("etcd_mvcc_db_total_size_in_bytes", "Size of the backend file, in bytes.", db_size);
#endif
  f.gauge("etcd_debugging_mvcc_db_total_size_in_bytes",
          "Size of the backend file, in bytes (the name before etcd 3.5).", db_size);
  f.gauge("etcd_mvcc_db_total_size_in_use_in_bytes",
          "Bytes of the backend file in use (its size less free pages).",
          static_cast<double>(be.size_in_use()));
  if (options_.sample_residency) {
    f.gauge("cairn_mvcc_db_resident_bytes",
            "Bytes of the backend file resident in memory (mincore over its map).",
            static_cast<double>(be.resident_bytes()));
  }
  f.counter("etcd_mvcc_range_total", "Ranges, counted one by one inside txns too.",
            as_double(ms.ranges));
  f.counter("etcd_mvcc_put_total", "Puts, counted one by one inside txns too.", as_double(ms.puts));
  f.counter("etcd_mvcc_delete_total", "Deletes, counted one by one inside txns too.",
            as_double(ms.deletes));
  f.counter("etcd_mvcc_txn_total", "Txns that ran more than one operation.", as_double(ms.txns));
  f.gauge("etcd_debugging_mvcc_keys_total", "Keys in the index (live or not yet compacted).",
          static_cast<double>(store.index().size()));
  f.gauge("etcd_debugging_mvcc_current_revision", "The store's current revision.",
          static_cast<double>(store.rev()));
  f.gauge("etcd_debugging_mvcc_compact_revision", "The last compaction's revision.",
          static_cast<double>(std::max<std::int64_t>(store.compact_rev(), 0)));
  {
    auto g = node_.watchable().group_sizes();
    f.gauge("etcd_debugging_mvcc_watcher_total", "Watchers.",
            static_cast<double>(g.synced + g.unsynced + g.victims));
    f.gauge("etcd_debugging_mvcc_slow_watcher_total", "Watchers behind the store's revision.",
            static_cast<double>(g.unsynced + g.victims));
    f.gauge("etcd_debugging_mvcc_watch_stream_total", "Watch streams.",
            static_cast<double>(node_.watchable().streams()));
  }
  f.counter("etcd_debugging_mvcc_db_compaction_keys_total", "Entries compaction removed.",
            as_double(ms.compaction_keys));
  f.histogram("etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds",
              "Index compaction steps, in milliseconds.", ms.index_compaction_pause_ms.snapshot());
  f.histogram("etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds",
              "Disk compaction steps, in milliseconds.", ms.db_compaction_pause_ms.snapshot());
  f.histogram("etcd_debugging_mvcc_db_compaction_total_duration_milliseconds",
              "Whole compactions, in milliseconds.", ms.db_compaction_total_ms.snapshot());

  // etcd_disk_*
  f.histogram("etcd_disk_wal_fsync_duration_seconds", "WAL fdatasync calls, in seconds.",
              st.disk.wal_fsync.snapshot());
  f.gauge("etcd_disk_wal_write_bytes_total", "Bytes written to the WAL.",
          as_double(st.disk.wal_write_bytes));
  f.histogram("etcd_disk_backend_commit_duration_seconds", "Backend commits, in seconds.",
              st.disk.backend_commit.snapshot());
  f.histogram("etcd_disk_backend_defrag_duration_seconds", "Defragmentations, in seconds.",
              st.disk.backend_defrag.snapshot());
  f.histogram("etcd_disk_backend_snapshot_duration_seconds", "Backend snapshots, in seconds.",
              st.disk.backend_snapshot.snapshot());
  f.gauge("etcd_disk_defrag_inflight", "Whether a defragmentation is running (1) or not (0).",
          st.disk.defrag_inflight.load() > 0 ? 1 : 0);

  // gRPC
  if (grpc_ != nullptr) {
    f.counter("etcd_network_client_grpc_received_bytes_total",
              "Bytes of gRPC messages received from clients.", as_double(grpc_->received_bytes));
    f.counter("etcd_network_client_grpc_sent_bytes_total",
              "Bytes of gRPC messages sent to clients.", as_double(grpc_->sent_bytes));
    f.empty("etcd_server_client_requests_total", "Client requests by type and client version.",
            MetricType::Counter);
    for (const auto& [k, n] : grpc_->client_requests()) {
      f.counter("etcd_server_client_requests_total", "Client requests by type and client version.",
                static_cast<double>(n), {{"client_api_version", k.second}, {"type", k.first}});
    }
    for (const auto& m : grpc_->methods()) {
      std::vector<ClientMetric::Label> l = {
          {"grpc_method", m->method}, {"grpc_service", m->service}, {"grpc_type", m->type}};
      f.counter("grpc_server_started_total", "RPCs started on the server.", as_double(m->started),
                l);
      f.counter("grpc_server_msg_received_total", "Stream messages received on the server.",
                as_double(m->msg_received), l);
      f.counter("grpc_server_msg_sent_total", "Stream messages sent by the server.",
                as_double(m->msg_sent), l);
      for (std::size_t code = 0; code < m->handled.size(); ++code) {
        auto lc = l;
        lc.insert(lc.begin(), {"grpc_code", v3rpc::grpc_code_names[code]});
        f.counter("grpc_server_handled_total", "RPCs completed on the server, by status code.",
                  as_double(m->handled[code]), lc);
      }
      if (options_.extensive) {
        f.histogram("grpc_server_handling_seconds",
                    "Time from the start of an RPC to its status, in seconds.",
                    m->handling.snapshot(), l);
      }
    }
  }

  // process_*, os_fd_*
  const auto p = sample_process();
  f.counter("process_cpu_seconds_total", "User and system CPU time, in seconds.", p.cpu_seconds);
  f.gauge("process_resident_memory_bytes", "Resident memory, in bytes.", p.resident_bytes);
  f.gauge("process_virtual_memory_bytes", "Virtual memory, in bytes.", p.virtual_bytes);
  f.gauge("process_virtual_memory_max_bytes", "The virtual memory limit, in bytes.",
          p.virtual_max_bytes);
  f.gauge("process_start_time_seconds", "Start time of the process, in seconds since the epoch.",
          p.start_time_seconds);
  f.gauge("process_open_fds", "Open file descriptors.", p.open_fds);
  f.gauge("process_max_fds", "The file descriptor limit.", p.max_fds);
  f.counter("process_major_page_faults_total",
            "Page faults that read from disk (the db no longer fits in memory when these climb).",
            static_cast<double>(p.major_faults));
  f.counter("process_minor_page_faults_total", "Page faults served without disk reads.",
            static_cast<double>(p.minor_faults));
  f.gauge("os_fd_used", "Open file descriptors.", p.open_fds);
  f.gauge("os_fd_limit", "The file descriptor limit.", p.max_fds);

  // etcd_network_peer_*: peers named by their ids in hex, as etcd's To/From labels.
  if (options_.peers) {
    const std::string local = hex(node_.member_id());
    for (const auto& peer : options_.peers()) {
      const std::string id = hex(peer.id);
      f.counter("etcd_network_peer_sent_bytes_total", "Bytes sent to a peer.",
                static_cast<double>(peer.sent_bytes), {{"To", id}});
      f.counter("etcd_network_peer_received_bytes_total", "Bytes received from a peer.",
                static_cast<double>(peer.received_bytes), {{"From", id}});
      f.counter("etcd_network_peer_sent_failures_total", "Messages to a peer that failed.",
                static_cast<double>(peer.sent_failures), {{"To", id}});
      f.counter("etcd_network_peer_received_failures_total", "Messages from a peer that failed.",
                static_cast<double>(peer.received_failures), {{"From", id}});
      f.gauge("etcd_network_active_peers", "Whether the stream to a peer is up (1) or not (0).",
              peer.active ? 1 : 0, {{"Local", local}, {"Remote", id}});
      f.counter("etcd_network_disconnected_peers_total", "Times the stream to a peer went down.",
                static_cast<double>(peer.disconnects), {{"Local", local}, {"Remote", id}});
      // (Like etcd's, the series appears with the first probe that came back.)
      if (!peer.round_trip.bounds.empty()) {
        f.histogram("etcd_network_peer_round_trip_time_seconds",
                    "Round trips of probes to a peer, in seconds.", peer.round_trip, {{"To", id}});
      }
    }
  }
  return f.take();
}

std::string exporter::text() const {
  prometheus::TextSerializer s;
  return s.Serialize(collect());
}

}  // namespace cairn::metrics
