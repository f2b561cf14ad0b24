#include "cmd/config.h"

#include <algorithm>
#include <limits>
#include <set>

namespace cairn::cmd {

const std::vector<feature_gate_spec>& feature_gate_table() {
  // Names and maturity from etcd 3.6 (server/features/etcd_features.go), with the 3.5 flag
  // each one replaces (features.ExperimentalFlagToFeatureMap).
  static const std::vector<feature_gate_spec> table = {
      {"CompactHashCheck", true, &feature_gates::compact_hash_check,
       "experimental-compact-hash-check-enabled"},
      {"InitialCorruptCheck", true, &feature_gates::initial_corrupt_check,
       "experimental-initial-corrupt-check"},
      {"LeaseCheckpoint", true, &feature_gates::lease_checkpoint,
       "experimental-enable-lease-checkpoint"},
      {"LeaseCheckpointPersist", true, &feature_gates::lease_checkpoint_persist,
       "experimental-enable-lease-checkpoint-persist"},
      {"SetMemberLocalAddr", true, &feature_gates::set_member_local_addr, ""},
      {"StopGRPCServiceOnDefrag", true, &feature_gates::stop_grpc_service_on_defrag,
       "experimental-stop-grpc-service-on-defrag"},
      {"TxnModeWriteWithSharedBuffer", false, &feature_gates::txn_mode_write_with_shared_buffer,
       "experimental-txn-mode-write-with-shared-buffer"},
  };
  return table;
}

std::expected<void, std::string> apply_feature_gates(std::string_view text, feature_gates& gates,
                                                     std::vector<std::string>* named) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  // Parse everything before changing anything, so a bad item leaves `gates` untouched.
  std::map<std::string, bool> given;
  for (const auto& item : split_commas(text)) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    const std::string key(trim(std::string_view(item).substr(0, eq)));
    if (eq == std::string::npos) return std::unexpected("missing bool value for " + key);
    const std::string value(trim(std::string_view(item).substr(eq + 1)));
    auto enabled = parse_go_bool(value);
    if (!enabled) return std::unexpected("invalid value of " + key + "=" + value);
    if (key != "AllAlpha" && key != "AllBeta") {
      const auto& table = feature_gate_table();
      const bool known = std::any_of(table.begin(), table.end(),
                                     [&](const feature_gate_spec& g) { return g.name == key; });
      if (!known) return std::unexpected("unrecognized feature gate: " + key);
    }
    given[key] = *enabled;
  }
  // Named gates win over AllAlpha / AllBeta whatever the order, as in etcd.
  for (const auto& gate : feature_gate_table()) {
    const auto it = given.find(std::string(gate.name));
    if (it != given.end()) {
      gates.*gate.field = it->second;
      continue;
    }
    const auto all = given.find(gate.alpha ? "AllAlpha" : "AllBeta");
    if (all != given.end()) gates.*gate.field = all->second;
  }
  if (named != nullptr) {
    for (const auto& [key, value] : given) named->push_back(key);
  }
  return {};
}

std::string format_feature_gates(const feature_gates& gates) {
  std::string out;
  for (const auto& gate : feature_gate_table()) {
    if (!out.empty()) out += ',';
    out += std::string(gate.name) + "=" + (gates.*gate.field ? "true" : "false");
  }
  return out;
}

std::expected<std::vector<cluster_member>, std::string> parse_initial_cluster(
    std::string_view text) {
  std::vector<cluster_member> members;
  for (const auto& item : split_commas(text)) {
    if (item.empty()) continue;  // etcd skips empty items ("a=...,,b=...")
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return std::unexpected("entry \"" + item + "\" is not of the form name=url");
    }
    const std::string name = item.substr(0, eq);
    auto peer = parse_url(std::string_view(item).substr(eq + 1));
    if (!peer) return std::unexpected("entry \"" + item + "\": " + peer.error());
    auto existing = std::find_if(members.begin(), members.end(),
                                 [&](const cluster_member& m) { return m.name == name; });
    if (existing == members.end()) {
      members.push_back({name, {*peer}});
    } else {
      existing->peer_urls.push_back(*peer);
    }
  }
  if (members.empty()) return std::unexpected("no members given (expected name=url,...)");
  return members;
}

std::expected<compaction_retention, std::string> parse_compaction_retention(compaction_mode mode,
                                                                            std::string_view text) {
  if (text.empty()) text = "0";
  compaction_retention retention;
  // A plain integer means hours (periodic) or revisions (revision), as in etcd.
  auto whole = parse_go_int(text);
  const bool digits_only =
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (whole && digits_only) {
    if (mode == compaction_mode::revision) {
      retention.revisions = *whole;
    } else {
      if (*whole > std::numeric_limits<std::int64_t>::max() / 3600'000'000'000) {
        return std::unexpected("retention out of range");
      }
      retention.period = std::chrono::hours(*whole);
    }
    return retention;
  }
  if (mode == compaction_mode::revision) {
    return std::unexpected(
        "with --auto-compaction-mode=revision the retention is a number of revisions (an "
        "integer of 0 or more)");
  }
  auto period = parse_go_duration(text);
  if (!period) return std::unexpected(period.error() + " (or an integer number of hours)");
  if (period->count() < 0) return std::unexpected("retention must not be negative");
  retention.period = *period;
  return retention;
}

std::expected<auth_token_spec, std::string> parse_auth_token(std::string_view text) {
  auto items = split_commas(text);
  if (items.empty() || items[0].empty()) return std::unexpected("token type is empty");
  auth_token_spec spec;
  spec.type = items[0];
  if (spec.type != "simple" && spec.type != "jwt") {
    return std::unexpected("unknown token type \"" + spec.type + "\" (use simple or jwt)");
  }
  static const std::set<std::string> jwt_options = {"pub-key", "priv-key", "sign-method", "ttl"};
  for (std::size_t i = 1; i < items.size(); ++i) {
    const auto eq = items[i].find('=');
    if (eq == std::string::npos) {
      return std::unexpected("option \"" + items[i] + "\" is not of the form key=value");
    }
    const std::string key = items[i].substr(0, eq);
    if (spec.type != "jwt" || !jwt_options.contains(key)) {
      return std::unexpected("unknown option \"" + key + "\" for token type " + spec.type);
    }
    spec.options[key] = items[i].substr(eq + 1);
  }
  if (spec.type == "jwt") {
    if (!spec.options.contains("sign-method")) {
      return std::unexpected("jwt needs sign-method=... (e.g. RS256)");
    }
    if (auto ttl = spec.options.find("ttl"); ttl != spec.options.end()) {
      auto parsed = parse_go_duration(ttl->second);
      if (!parsed) return std::unexpected("ttl: " + parsed.error());
    }
  }
  return spec;
}

namespace {

std::string join_urls(const std::vector<url>& urls) { return format_url_list(urls); }

// etcd binds only to IP literals, "localhost" and unix sockets (embed.checkBindURLs).
std::expected<void, std::string> check_bind_urls(std::string_view flag,
                                                 const std::vector<url>& urls) {
  for (const auto& u : urls) {
    if (u.scheme == "unix" || u.scheme == "unixs") continue;
    if (u.host == "localhost" || u.host_is_ip()) continue;
    return std::unexpected("--" + std::string(flag) + ": expected IP in URL for binding (" +
                           u.to_string() + ")");
  }
  return {};
}

std::expected<void, std::string> check_advertise_urls(std::string_view flag,
                                                      const std::vector<url>& urls) {
  for (const auto& u : urls) {
    if (u.host.empty()) {
      return std::unexpected("--" + std::string(flag) + " \"" + join_urls(urls) +
                             "\" must be \"host:port\" (unexpected empty host (" + u.to_string() +
                             "))");
    }
  }
  return {};
}

bool is_file_output(const std::string& output) {
  return output != "default" && output != "stderr" && output != "stdout";
}

}  // namespace

std::expected<void, std::string> finalize(config& cfg, const finalize_context& context,
                                          std::vector<std::string>& warnings) {
  if (cfg.debug) cfg.level = log_level::debug;
  if (cfg.data_dir.empty()) cfg.data_dir = cfg.name + ".cairn";

  if (auto applied = apply_feature_gates(cfg.feature_gates_text, cfg.features); !applied) {
    return std::unexpected("--feature-gates: " + applied.error());
  }
  if (cfg.features.lease_checkpoint_persist && !cfg.features.lease_checkpoint) {
    return std::unexpected(
        "enabling LeaseCheckpointPersist (--experimental-enable-lease-checkpoint-persist) "
        "requires LeaseCheckpoint (--experimental-enable-lease-checkpoint)");
  }

  const bool discovering =
      !cfg.discovery.empty() || !cfg.discovery_srv.empty() || !cfg.discovery_endpoints.empty();
  if (!context.initial_cluster_given) {
    // etcd derives the cluster from this member's name and advertised peer URLs, and leaves
    // it empty when a discovery method is given.
    // An empty --name stands for "default" there, as in etcd.
    cfg.initial_cluster.clear();
    const std::string member = cfg.name.empty() ? "default" : cfg.name;
    if (!discovering) {
      for (const auto& u : cfg.initial_advertise_peer_urls) {
        if (!cfg.initial_cluster.empty()) cfg.initial_cluster += ',';
        cfg.initial_cluster += member + "=" + u.to_string();
      }
    }
  }

  for (const auto& [flag, urls] : {std::pair<std::string_view, const std::vector<url>*>{
                                       "listen-peer-urls", &cfg.listen_peer_urls},
                                   {"listen-client-urls", &cfg.listen_client_urls},
                                   {"listen-client-http-urls", &cfg.listen_client_http_urls},
                                   {"listen-metrics-urls", &cfg.listen_metrics_urls}}) {
    if (auto ok = check_bind_urls(flag, *urls); !ok) return ok;
  }
  if (auto ok =
          check_advertise_urls("initial-advertise-peer-urls", cfg.initial_advertise_peer_urls);
      !ok) {
    return ok;
  }
  if (auto ok = check_advertise_urls("advertise-client-urls", cfg.advertise_client_urls); !ok) {
    return ok;
  }

  const int bootstrap_methods =
      (!cfg.discovery.empty() ? 1 : 0) + (!cfg.initial_cluster.empty() ? 1 : 0) +
      (!cfg.discovery_srv.empty() ? 1 : 0) + (!cfg.discovery_endpoints.empty() ? 1 : 0);
  if (bootstrap_methods > 1) {
    return std::unexpected(
        "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", "
        "\"discovery\", \"discovery-endpoints\" or \"discovery-srv\"");
  }
  const bool v2_discovery = !cfg.discovery.empty() || !cfg.discovery_proxy.empty();
  const bool v3_discovery = !cfg.discovery_endpoints.empty() || !cfg.discovery_token.empty() ||
                            !cfg.discovery_cert.empty() || !cfg.discovery_key.empty() ||
                            !cfg.discovery_cacert.empty() || !cfg.discovery_user.empty() ||
                            !cfg.discovery_password.empty();
  if (v2_discovery && v3_discovery) {
    return std::unexpected(
        "both v2 discovery settings (discovery, discovery-proxy) and v3 discovery settings "
        "(discovery-token, discovery-endpoints, discovery-cert, discovery-key, discovery-cacert, "
        "discovery-user, discovery-password) are set");
  }
  if (cfg.discovery_token.empty() != cfg.discovery_endpoints.empty()) {
    return std::unexpected("both --discovery-token and --discovery-endpoints must be set");
  }
  if (!cfg.initial_cluster.empty()) {
    if (auto members = parse_initial_cluster(cfg.initial_cluster); !members) {
      return std::unexpected("--initial-cluster: " + members.error());
    }
  }

  if (cfg.heartbeat_interval_ms == 0) {
    return std::unexpected("--heartbeat-interval must be >0 (set to 0ms)");
  }
  if (cfg.election_timeout_ms == 0) {
    return std::unexpected("--election-timeout must be >0 (set to 0ms)");
  }
  if (cfg.election_timeout_ms < 5 * cfg.heartbeat_interval_ms) {
    return std::unexpected("--election-timeout[" + std::to_string(cfg.election_timeout_ms) +
                           "ms] should be at least as 5 times as --heartbeat-interval[" +
                           std::to_string(cfg.heartbeat_interval_ms) + "ms]");
  }
  if (cfg.election_timeout_ms > 50000) {
    return std::unexpected("--election-timeout[" + std::to_string(cfg.election_timeout_ms) +
                           "ms] is too long, and should be set less than 50000ms");
  }

  if (context.listen_client_urls_given_on_command_line &&
      !context.advertise_client_urls_given_on_command_line) {
    return std::unexpected(
        "--advertise-client-urls is required when --listen-client-urls is set explicitly");
  }

  if (auto retention =
          parse_compaction_retention(cfg.auto_compaction_mode, cfg.auto_compaction_retention);
      !retention) {
    return std::unexpected("--auto-compaction-retention \"" + cfg.auto_compaction_retention +
                           "\": " + retention.error());
  }
  if (auto token = parse_auth_token(cfg.auth_token); !token) {
    return std::unexpected("--auth-token \"" + cfg.auth_token + "\": " + token.error());
  }
  if (cfg.bcrypt_cost < 4 || cfg.bcrypt_cost > 31) {
    return std::unexpected("--bcrypt-cost must be between 4 and 31 (set to " +
                           std::to_string(cfg.bcrypt_cost) + ")");
  }
  if (cfg.proxy != proxy_mode::off) {
    return std::unexpected("--proxy=" + std::string(to_string(cfg.proxy)) +
                           ": the v2 proxy is not supported by Cairn (etcd 3.6 removed it)");
  }
  if (cfg.tls_max_version != tls_version::go_default &&
      static_cast<int>(cfg.tls_min_version) > static_cast<int>(cfg.tls_max_version)) {
    return std::unexpected("min version (" + std::string(to_string(cfg.tls_min_version)) +
                           ") is greater than max version (" +
                           std::string(to_string(cfg.tls_max_version)) + ")");
  }
  if (cfg.tls_min_version == tls_version::tls13 && !cfg.cipher_suites.empty()) {
    return std::unexpected("cipher suites cannot be configured when only TLS1.3 is enabled");
  }
  if (cfg.compact_hash_check_time.count() <= 0) {
    return std::unexpected("--compact-hash-check-time must be >0 (set to " +
                           format_go_duration(cfg.compact_hash_check_time) + ")");
  }
  if (cfg.enable_distributed_tracing && (cfg.distributed_tracing_sampling_rate < 0 ||
                                         cfg.distributed_tracing_sampling_rate > 1000000)) {
    return std::unexpected(
        "--distributed-tracing-sampling-rate must be between 0 and 1000000 (samples per "
        "million spans)");
  }
  if (cfg.enable_log_rotation &&
      (cfg.log_outputs.size() != 1 || !is_file_output(cfg.log_outputs[0]))) {
    return std::unexpected(
        "--log-outputs requires a single file path when --enable-log-rotation is set");
  }
  if (cfg.max_learners < 1) {
    return std::unexpected("--max-learners must be at least 1 (set to " +
                           std::to_string(cfg.max_learners) + ")");
  }

  // etcd's start-up warnings about legal but unwise values.
  constexpr std::int64_t max_recommended_quota = std::int64_t{8} << 30;
  if (cfg.quota_backend_bytes > max_recommended_quota) {
    warnings.push_back("--quota-backend-bytes " + std::to_string(cfg.quota_backend_bytes) +
                       " exceeds the maximum recommended quota of 8 GiB");
  } else if (cfg.quota_backend_bytes < 0) {
    warnings.push_back("--quota-backend-bytes is negative: the backend quota is disabled");
  }
  if (cfg.max_request_bytes > 10 * 1024 * 1024) {
    warnings.push_back("--max-request-bytes " + std::to_string(cfg.max_request_bytes) +
                       " exceeds the recommended maximum of 10 MiB");
  }
  if (cfg.features.lease_checkpoint && !cfg.features.lease_checkpoint_persist) {
    warnings.push_back(
        "lease checkpointing is enabled without persistence; consider "
        "--experimental-enable-lease-checkpoint-persist");
  }
  return {};
}

}  // namespace cairn::cmd
