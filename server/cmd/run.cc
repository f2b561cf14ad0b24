#include "cmd/run.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "etcdserver/server.h"
#include "http/health.h"
#include "http/router.h"
#include "metrics/exporter.h"
#include "tls/tls.h"
#include "transport/peer_transport.h"
#include "v2http/keys.h"
#include "v3rpc/client_listener.h"
#include "v3rpc/gateway.h"
#include "v3rpc/grpc_metrics.h"
#include "v3rpc/lease_service.h"
#include "v3rpc/lock_election.h"
#include "v3rpc/services.h"
#include "v3rpc/watch_service.h"

namespace cairn::cmd {
namespace {

std::chrono::milliseconds to_ms(duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

std::vector<v3rpc::listen_url> to_listen(const std::vector<url>& urls) {
  std::vector<v3rpc::listen_url> out;
  for (const auto& u : urls) out.push_back({u.scheme, u.host, u.port});
  return out;
}

std::vector<std::string> to_strings(const std::vector<url>& urls) {
  std::vector<std::string> out;
  for (const auto& u : urls) out.push_back(u.to_string());
  return out;
}

std::expected<etcdserver::server_config, std::string> node_config(const config& cfg) {
  etcdserver::server_config s;
  s.name = cfg.name;
  s.data_dir = cfg.data_dir.empty() ? cfg.name + ".cairn" : cfg.data_dir;
  // Normalized (each URL as etcd prints it), since the member ids hash the URLs' text.
  if (!cfg.initial_cluster.empty()) {
    auto members = parse_initial_cluster(cfg.initial_cluster);
    if (!members) return std::unexpected("--initial-cluster: " + members.error());
    for (const auto& m : *members) {
      for (const auto& u : m.peer_urls) {
        if (!s.initial_cluster.empty()) s.initial_cluster += ',';
        s.initial_cluster += m.name + "=" + u.to_string();
      }
    }
  }
  s.advertise_peer_urls = to_strings(cfg.initial_advertise_peer_urls);
  s.advertise_client_urls = to_strings(cfg.advertise_client_urls);
  s.initial_cluster_token = cfg.initial_cluster_token;
  s.heartbeat = std::chrono::milliseconds(cfg.heartbeat_interval_ms);
  s.election = std::chrono::milliseconds(cfg.election_timeout_ms);
  s.snapshot_count = cfg.snapshot_count;
  s.snapshot_catch_up_entries = cfg.snapshot_catchup_entries;
  if (cfg.quota_backend_bytes > 0) {
    s.quota_bytes = static_cast<std::uint64_t>(cfg.quota_backend_bytes);
  } else if (cfg.quota_backend_bytes < 0) {
    s.quota_bytes = UINT64_MAX;  // etcd: a negative quota means none
  }
  s.max_request_bytes = cfg.max_request_bytes;
  // bcrypt comparisons at once: half the cores (at least one), so a login flood leaves the
  // rest to everyone else.
  s.auth.bcrypt_slots = std::max(1, static_cast<int>(std::thread::hardware_concurrency() / 2));
  s.auth.token_ttl = std::chrono::seconds(std::max<std::int64_t>(cfg.auth_token_ttl, 1));
  s.auth.cert_login = cfg.client_cert_auth;
  if (auto spec = parse_auth_token(cfg.auth_token); spec && spec->type == "jwt") {
    std::chrono::seconds ttl = std::chrono::minutes(5);  // etcd's default for JWTs
    if (auto t = spec->options.find("ttl"); t != spec->options.end()) {
      if (auto d = parse_go_duration(t->second)) {
        ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
      }
    }
    auto signer = auth::jwt_signer::create(spec->options, ttl);
    if (!signer) return std::unexpected("--auth-token: " + signer.error());
    s.auth.jwt = std::move(*signer);
  }
  s.strict_reconfig_check = cfg.strict_reconfig_check;
  s.lease_checkpoint = cfg.features.lease_checkpoint;
  s.lease_checkpoint_persist = cfg.features.lease_checkpoint_persist;
  s.initial_corrupt_check = cfg.features.initial_corrupt_check;
  s.corrupt_check_interval = to_ms(cfg.corrupt_check_time);
  if (cfg.backend_batch_interval.count() > 0) {
    s.backend_batch_interval = to_ms(cfg.backend_batch_interval);
  }
  if (cfg.backend_batch_limit > 0) {
    s.backend_batch_limit = static_cast<std::uint32_t>(cfg.backend_batch_limit);
  }
  auto retention =
      parse_compaction_retention(cfg.auto_compaction_mode, cfg.auto_compaction_retention);
  if (!retention) return std::unexpected(retention.error());
  if (cfg.auto_compaction_mode == compaction_mode::periodic && retention->period.count() > 0) {
    etcdserver::compactor_options c;
    c.mode = etcdserver::compaction_mode::periodic;
    c.period = to_ms(retention->period);
    s.auto_compaction = c;
  } else if (cfg.auto_compaction_mode == compaction_mode::revision && retention->revisions > 0) {
    etcdserver::compactor_options c;
    c.mode = etcdserver::compaction_mode::revision;
    c.revisions = retention->revisions;
    s.auto_compaction = c;
  }
  return s;
}

tls::version to_tls(tls_version v) {
  return v == tls_version::tls13 ? tls::version::tls13 : tls::version::tls12;
}

bool any_https(std::initializer_list<const std::vector<url>*> lists) {
  for (const auto* urls : lists) {
    for (const auto& u : *urls) {
      if (u.scheme == "https" || u.scheme == "unixs") return true;
    }
  }
  return false;
}

// etcd's ClientTLSInfo / PeerTLSInfo from the flags; --auto-tls / --peer-auto-tls make a
// self-signed certificate under <data-dir>/fixtures/{client,peer} when none is given.
// nullopt: no certificate (plain URLs only).
std::expected<std::optional<tls::tls_info>, std::string> tls_config(const config& cfg,
                                                                    const std::string& data_dir,
                                                                    bool peer) {
  tls::tls_info info;
  info.cert_file = peer ? cfg.peer_cert_file : cfg.cert_file;
  info.key_file = peer ? cfg.peer_key_file : cfg.key_file;
  info.client_cert_file = peer ? cfg.peer_client_cert_file : cfg.client_cert_file;
  info.client_key_file = peer ? cfg.peer_client_key_file : cfg.client_key_file;
  info.trusted_ca_file = peer ? cfg.peer_trusted_ca_file : cfg.trusted_ca_file;
  info.crl_file = peer ? cfg.peer_crl_file : cfg.client_crl_file;
  info.client_cert_auth = peer ? cfg.peer_client_cert_auth : cfg.client_cert_auth;
  if (peer) info.allowed_cns = cfg.peer_cert_allowed_cn;
  info.allowed_hostnames = peer ? cfg.peer_cert_allowed_hostname : cfg.client_cert_allowed_hostname;
  info.min_version = to_tls(cfg.tls_min_version);
  if (cfg.tls_max_version != tls_version::go_default)
    info.max_version = to_tls(cfg.tls_max_version);
  info.cipher_suites = cfg.cipher_suites;
  const bool auto_tls = peer ? cfg.peer_auto_tls : cfg.auto_tls;
  const char* what = peer ? "peer" : "client";
  if (!info.cert_file.empty() || !info.key_file.empty()) {
    if (auto_tls) spdlog::warn("ignoring {} auto TLS since certs given", what);
  } else if (auto_tls) {
    std::vector<std::string> hosts;
    for (const auto& u : peer ? cfg.listen_peer_urls : cfg.listen_client_urls) {
      hosts.push_back(u.host);
    }
    const int years = static_cast<int>(std::min<std::uint64_t>(cfg.self_signed_cert_validity, 100));
    auto made = tls::self_cert((std::filesystem::path(data_dir) / "fixtures" / what).string(),
                               hosts, years);
    if (!made) return std::unexpected(made.error());
    info.cert_file = made->cert_file;
    info.key_file = made->key_file;
    info.self_signed = true;
  } else {
    return std::optional<tls::tls_info>();
  }
  if (auto ok = tls::check_files(info); !ok) {
    return std::unexpected(std::string(what) + " TLS: " + ok.error());
  }
  return std::optional<tls::tls_info>(std::move(info));
}

v3rpc::listener_options listener_config(const config& cfg) {
  v3rpc::listener_options o;
  o.client_urls = to_listen(cfg.listen_client_urls);
  o.client_http_urls = to_listen(cfg.listen_client_http_urls);
  o.metrics_urls = to_listen(cfg.listen_metrics_urls);
  o.max_request_bytes = cfg.max_request_bytes;
  o.max_concurrent_streams = cfg.max_concurrent_streams;
  o.keepalive_min_time = to_ms(cfg.grpc_keepalive_min_time);
  o.keepalive_interval = to_ms(cfg.grpc_keepalive_interval);
  o.keepalive_timeout = to_ms(cfg.grpc_keepalive_timeout);
  o.reuse_port = cfg.socket_reuse_port;
  return o;
}

}  // namespace

int run(const config& cfg) {
  // Block the stop signals before any thread starts, so that every thread inherits the mask
  // and only the sigwait below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A file size limit (ulimit -f) makes a write fail with EFBIG, handled like a full disk
  // (writes refused until it passes), instead of killing the process.
  ::signal(SIGXFSZ, SIG_IGN);

  auto node_cfg = node_config(cfg);
  if (!node_cfg) {
    spdlog::error("cannot start: {}", node_cfg.error());
    return 1;
  }
  // TLS first: a bad certificate stops the start before the member touches its data.
  if (auto list = tls::openssl_cipher_list(cfg.cipher_suites); !list) {
    spdlog::error("cannot start: {}", list.error());
    return 1;
  } else {
    tls::apply_cipher_suites(*list);
  }
  auto client_tls = tls_config(cfg, node_cfg->data_dir, false);
  if (!client_tls) {
    spdlog::error("cannot start: {}", client_tls.error());
    return 1;
  }
  if (*client_tls && !any_https({&cfg.listen_client_urls, &cfg.listen_client_http_urls,
                                 &cfg.listen_metrics_urls})) {
    spdlog::warn("a client certificate is given but no client URL is https; serving plaintext");
  }
  auto peer_tls = tls_config(cfg, node_cfg->data_dir, true);
  if (!peer_tls) {
    spdlog::error("cannot start: {}", peer_tls.error());
    return 1;
  }
  if (*peer_tls && !any_https({&cfg.listen_peer_urls})) {
    spdlog::warn(
        "scheme is HTTP while key and cert files are present; ignoring key and cert files");
  }
  std::shared_ptr<grpc::ChannelCredentials> peer_dial;
  std::shared_ptr<grpc::ServerCredentials> peer_serve;
  if (*peer_tls) {
    peer_dial = tls::grpc_channel_credentials(**peer_tls);
    peer_serve = tls::grpc_server_credentials(**peer_tls);
  }
  spdlog::info("starting member {} in data dir {}", cfg.name, node_cfg->data_dir);
  // Joining an existing cluster (a new data directory only: etcd ignores the state otherwise):
  // ask the other members for it.
  std::error_code ec;
  if (cfg.initial_cluster_state == cluster_state::existing &&
      !std::filesystem::exists(std::filesystem::path(node_cfg->data_dir) / "member" / "wal", ec)) {
    std::vector<std::string> others;
    if (auto members = parse_initial_cluster(cfg.initial_cluster)) {
      for (const auto& m : *members) {
        if (m.name == cfg.name) continue;
        for (const auto& u : m.peer_urls) others.push_back(u.to_string());
      }
    }
    auto remote = transport::fetch_cluster(others, std::chrono::seconds(5), peer_dial);
    if (!remote) {
      spdlog::error("cannot fetch cluster info from peer urls: {}", remote.error());
      return 1;
    }
    node_cfg->join =
        etcdserver::server_config::existing_cluster{remote->cluster_id, std::move(remote->members)};
  }
  transport::transport_options topts;
  topts.tls = peer_dial;
  if (node_cfg->request_timeout.count() > 0) topts.request_timeout = node_cfg->request_timeout;
  transport::peer_transport peers(topts);
  node_cfg->peers = &peers;
  auto node = etcdserver::server::open_stopped(*node_cfg);
  if (!node) {
    spdlog::error("cannot start the member: {}", node.error().message);
    return 1;
  }
  etcdserver::server& n = **node;
  peers.attach(n);
  // etcd checks before the member serves, and only a member that existed before this start.
  if (node_cfg->initial_corrupt_check) {
    if (auto r = n.check_initial_hash_kv(); !r) {
      spdlog::error("cannot start the member: {}", r.error().message);
      return 1;
    }
  }
  if (auto r = n.launch(); !r) {
    spdlog::error("cannot start the member: {}", r.error().message);
    return 1;
  }
  transport::peer_service peer_svc(n, peers);
  auto peer_listener =
      transport::peer_listener::start(to_strings(cfg.listen_peer_urls), peer_svc, peer_serve);
  if (!peer_listener) {
    spdlog::error("cannot listen for peers: {}", peer_listener.error());
    return 1;
  }
  for (const auto& a : (*peer_listener)->addresses()) {
    spdlog::info("serving peer traffic on {}", a);
  }

  v3rpc::service_options svc;
  svc.max_txn_ops = cfg.max_txn_ops;
  svc.self = {cfg.name, to_strings(cfg.initial_advertise_peer_urls),
              to_strings(cfg.advertise_client_urls)};
  svc.parse_peer_url = [](std::string_view text) -> std::optional<std::string> {
    auto u = parse_url(text);
    if (!u) return std::nullopt;
    return u->to_string();
  };
  svc.strict_reconfig_check = cfg.strict_reconfig_check;
  v3rpc::kv_service kv(n, svc);
  v3rpc::maintenance_service maintenance(n);
  v3rpc::cluster_service cluster(n, svc);
  v3rpc::auth_service auth(n, static_cast<int>(cfg.bcrypt_cost));
  v3rpc::lease_options lease_opts;
  lease_opts.election_timeout = std::chrono::milliseconds(cfg.election_timeout_ms);
  v3rpc::lease_service lease(n, lease_opts);
  v3rpc::lock_service lock(n);
  v3rpc::election_service election(n);
  v3rpc::watch_options watch_opts;
  watch_opts.progress_notify_interval = to_ms(cfg.watch_progress_notify_interval);
  watch_opts.max_request_bytes = cfg.max_request_bytes;
  watch_opts.election_timeout = std::chrono::milliseconds(cfg.election_timeout_ms);
  v3rpc::watch_service watch(n, watch_opts);

  auto health = std::make_shared<v3rpc::node_health>(n);
  auto counters = std::make_shared<http::health_counters>();
  v3rpc::grpc_stats grpc_stats({"etcdserverpb.KV", "etcdserverpb.Watch", "etcdserverpb.Lease",
                                "etcdserverpb.Cluster", "etcdserverpb.Maintenance",
                                "etcdserverpb.Auth", "v3lockpb.Lock", "v3electionpb.Election"});
  metrics::exporter_options mopts;
  mopts.extensive = cfg.metrics == metrics_level::extensive;
  mopts.peers = [&peers] {
    std::vector<metrics::peer_sample> out;
    for (const auto& [id, c] : peers.counters()) {
      out.push_back({id, c.sent_bytes, c.sent_failures, c.received_bytes, c.received_failures,
                     c.active, c.disconnects, c.round_trip});
    }
    return out;
  };
  metrics::exporter exporter(n, &grpc_stats, counters, mopts);
  auto metrics_text = [&exporter] { return exporter.text(); };
  http::router client_routes;
  http::install_health(client_routes, health, counters);
  http::install_version(client_routes, health);
  http::install_metrics(client_routes, metrics_text);
  v3rpc::gateway gateway;  // its channel is set once the gRPC server runs
  if (cfg.enable_grpc_gateway) gateway.install(client_routes);
  if (cfg.enable_v2) {
    v2http::install_keys(client_routes, n);
    v2http::install_stats_and_members(client_routes, n, [&peers, &n] {
      // etcd's LeaderStats: every other member, its probe latency and counts.
      std::string out = "{";
      const auto counters = peers.counters();
      for (const auto& m : n.members().list()) {
        if (m.id == n.member_id()) continue;
        auto it = counters.find(m.id);
        const transport::peer_counters c =
            it == counters.end() ? transport::peer_counters{} : it->second;
        const double avg =
            c.probes_ok == 0 ? 0 : c.latency_sum_ms / static_cast<double>(c.probes_ok);
        const double var =
            c.probes_ok == 0 ? 0
                             : c.latency_sum_squares / static_cast<double>(c.probes_ok) - avg * avg;
        if (out.size() > 1) out += ',';
        out += fmt::format(
            "\"{:x}\":{{\"latency\":{{\"current\":{},\"average\":{},\"standardDeviation\":{},"
            "\"minimum\":{},\"maximum\":{}}},\"counts\":{{\"fail\":{},\"success\":{}}}}}",
            m.id, c.latency_current_ms, avg, std::sqrt(std::max(var, 0.0)), c.latency_min_ms,
            c.latency_max_ms, c.probes_failed, c.probes_ok);
      }
      return out + "}";
    });
  }
  http::router metrics_routes;
  http::install_metrics_endpoints(metrics_routes, health, counters, metrics_text);

  v3rpc::listener_options lopts = listener_config(cfg);
  lopts.client_tls = *client_tls;
  auto listener = v3rpc::client_listener::start(
      lopts,
      [&](grpc::ServerBuilder& b) {
        std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> icpt;
        icpt.push_back(v3rpc::grpc_stats_interceptor(grpc_stats));
        b.experimental().SetInterceptorCreators(std::move(icpt));
        kv.register_on(b);
        b.RegisterService(&maintenance);
        b.RegisterService(&cluster);
        b.RegisterService(&auth);
        b.RegisterService(&lease);
        b.RegisterService(&watch);
        b.RegisterService(&lock);
        b.RegisterService(&election);
      },
      http::with_access_control(client_routes.as_handler(), {cfg.cors, cfg.host_whitelist}),
      metrics_routes.as_handler());
  if (!listener) {
    spdlog::error("cannot listen: {}", listener.error());
    return 1;
  }
  {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    gateway.set_channel((*listener)->grpc_server().InProcessChannel(args));
  }
  for (const auto& a : (*listener)->client_addresses()) {
    spdlog::info("ready to serve client requests on {} (member {:x}, cluster {:x})", a,
                 n.member_id(), n.cluster_id());
  }

  // Until a stop signal, or until this member is removed from the cluster (etcd's member then
  // stops too).
  int sig = 0;
  while (true) {
    timespec tick{0, 100'000'000};
    sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig > 0) {
      spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (n.removed()) {
      spdlog::warn("this member was removed from the cluster, shutting down");
      break;
    }
  }
  (*listener)->stop();
  kv.stop();  // after the gRPC server's Shutdown, before it is destroyed
  listener->reset();
  watch.stop();
  lease.stop();
  (*peer_listener)->stop();
  peers.stop();
  node->reset();
  spdlog::info("stopped serving");
  return 0;
}

}  // namespace cairn::cmd
