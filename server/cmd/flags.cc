#include "cmd/flags.h"

#include <algorithm>
#include <cctype>
#include <type_traits>

namespace cairn::cmd {

namespace {

using result = std::expected<void, std::string>;

// How each C++ type of `config` is read and shown. One place, so a flag, its ETCD_*
// variable and its config-file key can only be read the same way.
template <typename T>
struct codec;

template <>
struct codec<bool> {
  static constexpr value_kind kind = value_kind::boolean;
  static result parse(std::string_view text, bool& out) {
    auto v = parse_go_bool(text);
    if (!v) return std::unexpected(v.error());
    out = *v;
    return {};
  }
  static std::string format(const bool& v) { return v ? "true" : "false"; }
};

template <>
struct codec<std::uint64_t> {
  static constexpr value_kind kind = value_kind::integer;
  static result parse(std::string_view text, std::uint64_t& out) {
    auto v = parse_go_uint(text, 64);
    if (!v) return std::unexpected(v.error());
    out = *v;
    return {};
  }
  static std::string format(const std::uint64_t& v) { return std::to_string(v); }
};

template <>
struct codec<std::uint32_t> {
  static constexpr value_kind kind = value_kind::integer;
  static result parse(std::string_view text, std::uint32_t& out) {
    auto v = parse_go_uint(text, 32);
    if (!v) return std::unexpected(v.error());
    out = static_cast<std::uint32_t>(*v);
    return {};
  }
  static std::string format(const std::uint32_t& v) { return std::to_string(v); }
};

template <>
struct codec<std::int64_t> {
  static constexpr value_kind kind = value_kind::integer;
  static result parse(std::string_view text, std::int64_t& out) {
    auto v = parse_go_int(text, 64);
    if (!v) return std::unexpected(v.error());
    out = *v;
    return {};
  }
  static std::string format(const std::int64_t& v) { return std::to_string(v); }
};

template <>
struct codec<std::string> {
  static constexpr value_kind kind = value_kind::text;
  static result parse(std::string_view text, std::string& out) {
    out = std::string(text);
    return {};
  }
  static std::string format(const std::string& v) { return v; }
};

template <>
struct codec<duration> {
  static constexpr value_kind kind = value_kind::duration;
  static result parse(std::string_view text, duration& out) {
    auto v = parse_go_duration(text);
    if (!v) return std::unexpected(v.error());
    out = *v;
    return {};
  }
  static std::string format(const duration& v) { return format_go_duration(v); }
};

template <>
struct codec<std::vector<url>> {
  static constexpr value_kind kind = value_kind::list;
  static result parse(std::string_view text, std::vector<url>& out) {
    // etcd keeps the previous value when an URL-list flag is given as "" (its
    // UniqueURLs treats "" as an allowed no-op); so does Cairn.
    if (text.empty()) return {};
    auto v = parse_url_list(text);
    if (!v) return std::unexpected(v.error());
    out = std::move(*v);
    return {};
  }
  static std::string format(const std::vector<url>& v) { return format_url_list(v); }
};

template <>
struct codec<std::vector<std::string>> {
  static constexpr value_kind kind = value_kind::list;
  static result parse(std::string_view text, std::vector<std::string>& out) {
    out = split_commas(text);
    return {};
  }
  static std::string format(const std::vector<std::string>& v) { return join_commas(v); }
};

template <typename E>
requires std::is_enum_v<E>
struct codec<E> {
  static constexpr value_kind kind = value_kind::choice;
  static result parse(std::string_view text, E& out) {
    const auto& names = enum_names<E>::names;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == text) {
        out = static_cast<E>(i);
        return {};
      }
    }
    std::string valid;
    for (const auto name : names) {
      if (name.empty()) continue;
      if (!valid.empty()) valid += ", ";
      valid += name;
    }
    return std::unexpected("must be one of: " + valid);
  }
  static std::string format(const E& v) { return std::string(to_string(v)); }
};

template <typename>
struct member_value;
template <typename C, typename T>
struct member_value<T C::*> {
  using type = T;
};

// A flag that reads and shows one field of `config`.
template <auto Member>
constexpr accessor field() {
  using T = typename member_value<decltype(Member)>::type;
  return accessor{[](config& c, std::string_view text) { return codec<T>::parse(text, c.*Member); },
                  [](const config& c) { return codec<T>::format(c.*Member); }, codec<T>::kind};
}

// A 3.5 experimental boolean that is a feature gate in etcd 3.6.
template <bool feature_gates::*Gate>
constexpr accessor gate() {
  return accessor{
      [](config& c, std::string_view text) { return codec<bool>::parse(text, c.features.*Gate); },
      [](const config& c) { return codec<bool>::format(c.features.*Gate); }, value_kind::boolean};
}

// A comma list that etcd keeps sorted and without duplicates (its UniqueStringsValue).
template <std::vector<std::string> config::*Member>
constexpr accessor unique_strings() {
  return accessor{[](config& c, std::string_view text) -> result {
                    auto items = split_commas(text);
                    std::sort(items.begin(), items.end());
                    items.erase(std::unique(items.begin(), items.end()), items.end());
                    c.*Member = std::move(items);
                    return {};
                  },
                  [](const config& c) { return join_commas(c.*Member); }, value_kind::list};
}

// --help and --version are handled by the parser; the row exists for --help and the tests.
constexpr accessor action_flag() {
  return accessor{[](config&, std::string_view text) -> result {
                    auto v = parse_go_bool(text);
                    if (!v) return std::unexpected(v.error());
                    return {};
                  },
                  [](const config&) { return std::string("false"); }, value_kind::boolean};
}

// Flags etcd still registers but ignores, so that very old command lines start.
constexpr accessor ignored_flag() {
  return accessor{[](config&, std::string_view) -> result { return {}; },
                  [](const config&) { return std::string(); }, value_kind::boolean};
}

// --cors: "*" or a list of origins, each an URL of the form etcd accepts.
constexpr accessor cors_flag() {
  return accessor{[](config& c, std::string_view text) -> result {
                    if (text == "*") {
                      c.cors = {"*"};
                      return {};
                    }
                    if (text.empty()) return {};
                    auto urls = parse_url_list(text);
                    if (!urls) return std::unexpected(urls.error());
                    c.cors.clear();
                    for (const auto& u : *urls) c.cors.push_back(u.to_string());
                    return {};
                  },
                  [](const config& c) { return join_commas(c.cors); }, value_kind::list};
}

constexpr accessor logger_flag() {
  return accessor{
      [](config& c, std::string_view text) -> result {
        if (text == "capnslog") {
          return std::unexpected("capnslog was removed in etcd 3.5; the only logger is zap");
        }
        return codec<logger_kind>::parse(text, c.logger);
      },
      [](const config& c) { return std::string(to_string(c.logger)); }, value_kind::choice};
}

// --feature-gates accumulates, like etcd's: each use adds to the gates already named.
constexpr accessor feature_gates_flag() {
  return accessor{[](config& c, std::string_view text) -> result {
                    feature_gates scratch;
                    if (auto ok = apply_feature_gates(text, scratch); !ok) return ok;
                    if (text.empty()) return {};
                    if (!c.feature_gates_text.empty()) c.feature_gates_text += ',';
                    c.feature_gates_text += std::string(text);
                    return {};
                  },
                  [](const config& c) { return c.feature_gates_text; }, value_kind::list};
}

constexpr flag_status acted = flag_status::acted_on;
constexpr flag_status later = flag_status::not_yet;
constexpr flag_status inert = flag_status::no_effect;

using g = flag_group;

// The help texts are Cairn's own words. Defaults are etcd 3.5's, except the data directory.
constexpr flag_spec table[] = {
    // Usage.
    {"help", g::usage, "false", "Print this help and exit.", acted, action_flag(), {}, "-", false},
    {"version",
     g::usage,
     "false",
     "Print Cairn's version and the etcd release it behaves as, then exit.",
     acted,
     action_flag(),
     {},
     "-",
     false},
    {"config-file",
     g::usage,
     "",
     "Read the settings from this YAML file (etcd's format). When a file is given, every other "
     "flag and ETCD_* variable is ignored, as etcd does.",
     acted,
     field<&config::config_file>(),
     {},
     "-",
     false},

    // Member.
    {"name", g::member, "default", "This member's name, as listed in --initial-cluster.", acted,
     field<&config::name>()},
    {"data-dir", g::member, "${name}.cairn", "Directory for this member's data.", acted,
     field<&config::data_dir>()},
    {"wal-dir", g::member, "",
     "Separate directory for the write-ahead log (default: inside --data-dir).", later,
     field<&config::wal_dir>()},
    {"snapshot-count", g::member, "100000",
     "Applied entries between two raft snapshots written to disk.", acted,
     field<&config::snapshot_count>()},
    {"heartbeat-interval", g::member, "100", "Leader heartbeat period, in milliseconds.", acted,
     field<&config::heartbeat_interval_ms>()},
    {"election-timeout", g::member, "1000",
     "Milliseconds without a leader before a follower campaigns (at least 5 heartbeats).", acted,
     field<&config::election_timeout_ms>()},
    {"initial-election-tick-advance", g::member, "true",
     "Advance election ticks at start-up so the first election happens sooner.", later,
     field<&config::initial_election_tick_advance>()},
    {"listen-peer-urls", g::member, "http://localhost:2380",
     "Comma-separated URLs to accept peer (raft) traffic on; hosts must be IPs or localhost.",
     acted, field<&config::listen_peer_urls>()},
    {"listen-client-urls", g::member, "http://localhost:2379",
     "Comma-separated URLs to serve clients on (gRPC, and HTTP unless "
     "--listen-client-http-urls is given).",
     acted, field<&config::listen_client_urls>()},
    {"listen-client-http-urls",
     g::member,
     "",
     "Comma-separated URLs that serve client HTTP only; HTTP then leaves --listen-client-urls.",
     acted,
     field<&config::listen_client_http_urls>(),
     {},
     {},
     true,
     false,
     "http://127.0.0.1:12379"},
    {"max-snapshots", g::member, "5", "Snapshot files to keep (0: keep all).", later,
     field<&config::max_snapshots>()},
#ifndef CAIRN_PLANTED_BUG_CMD_DROP_FLAG
    {"max-wals", g::member, "5", "Write-ahead log files to keep (0: keep all).", later,
     field<&config::max_wals>()},
#endif
    {"quota-backend-bytes", g::member, "0",
     "Raise the NOSPACE alarm when the database exceeds this size (0: 2 GiB; negative: no "
     "quota).",
     acted, field<&config::quota_backend_bytes>()},
    {"backend-bbolt-freelist-type", g::member, "map",
     "bbolt's freelist type (map or array). Cairn's backend is LMDB, so this has no effect.", inert,
     field<&config::backend_bbolt_freelist_type>()},
    {"backend-batch-interval",
     g::member,
     "",
     "Longest time a backend write transaction stays open before commit (empty: 100ms).",
     acted,
     field<&config::backend_batch_interval>(),
     {},
     {},
     true,
     false,
     "100ms"},
    {"backend-batch-limit", g::member, "0",
     "Most operations in one backend write transaction before commit (0: 10000).", acted,
     field<&config::backend_batch_limit>()},
    {"max-txn-ops", g::member, "128", "Most operations one transaction may hold.", acted,
     field<&config::max_txn_ops>()},
    {"max-request-bytes", g::member, "1572864", "Largest client request accepted, in bytes.", acted,
     field<&config::max_request_bytes>()},
    {"max-concurrent-streams",
     g::member,
     "4294967295",
     "Most concurrent gRPC streams per client connection.",
     acted,
     field<&config::max_concurrent_streams>(),
     {},
     {},
     true,
     false,
     "1000"},
    {"grpc-keepalive-min-time", g::member, "5s",
     "Shortest interval a client may ping at; faster clients are disconnected.", acted,
     field<&config::grpc_keepalive_min_time>()},
    {"grpc-keepalive-interval", g::member, "2h",
     "How often the server pings an idle connection (0: never).", acted,
     field<&config::grpc_keepalive_interval>()},
    {"grpc-keepalive-timeout", g::member, "20s",
     "How long to wait for a ping answer before closing the connection (0: forever).", acted,
     field<&config::grpc_keepalive_timeout>()},
    {"socket-reuse-port", g::member, "false", "Set SO_REUSEPORT on listening sockets.", acted,
     field<&config::socket_reuse_port>()},
    {"socket-reuse-address", g::member, "false", "Set SO_REUSEADDR on listening sockets.", later,
     field<&config::socket_reuse_address>()},
    {"raft-read-timeout", g::member, "5s", "Read timeout on peer connections (etcd 3.6).", later,
     field<&config::raft_read_timeout>()},
    {"raft-write-timeout", g::member, "5s", "Write timeout on peer connections (etcd 3.6).", later,
     field<&config::raft_write_timeout>()},
    {"enable-grpc-gateway", g::member, "true",
     "Serve the JSON gateway (/v3/...) on the client URLs.", acted,
     field<&config::enable_grpc_gateway>()},

    // Clustering.
    {"initial-advertise-peer-urls", g::clustering, "http://localhost:2380",
     "Comma-separated peer URLs this member announces to the rest of the cluster.", acted,
     field<&config::initial_advertise_peer_urls>()},
    {"initial-cluster", g::clustering, "default=http://localhost:2380",
     "Members to bootstrap with, as name=peer-url,... (default: this member alone, from "
     "--name and --initial-advertise-peer-urls).",
     acted, field<&config::initial_cluster>()},
    {"initial-cluster-state", g::clustering, "new",
     "'new' to bootstrap a new cluster, 'existing' to join one.", acted,
     field<&config::initial_cluster_state>()},
    {"initial-cluster-token", g::clustering, "etcd-cluster",
     "Token that makes the cluster's ids unique; use a distinct one per cluster.", acted,
     field<&config::initial_cluster_token>()},
    {"advertise-client-urls", g::clustering, "http://localhost:2379",
     "Comma-separated client URLs this member announces; required when "
     "--listen-client-urls is given.",
     acted, field<&config::advertise_client_urls>()},
    {"discovery", g::clustering, "", "URL of a v2 discovery service to bootstrap through.", later,
     field<&config::discovery>()},
    {"discovery-fallback", g::clustering, "proxy",
     "What to do when discovery fails: 'exit' or 'proxy' (the v2 proxy; Cairn exits).", later,
     field<&config::discovery_fallback_mode>()},
    {"discovery-proxy", g::clustering, "", "HTTP proxy for reaching the discovery service.", later,
     field<&config::discovery_proxy>()},
    {"discovery-srv", g::clustering, "", "DNS domain whose SRV records list the cluster.", later,
     field<&config::discovery_srv>()},
    {"discovery-srv-name", g::clustering, "", "Suffix of the SRV names to look up.", later,
     field<&config::discovery_srv_name>()},
    {"discovery-endpoints",
     g::clustering,
     "",
     "v3 discovery (etcd 3.6): gRPC endpoints of the discovery cluster.",
     later,
     field<&config::discovery_endpoints>(),
     {},
     {},
     true,
     false,
     "127.0.0.1:12379"},
    {"discovery-token", g::clustering, "", "v3 discovery (etcd 3.6): this cluster's token.", later,
     field<&config::discovery_token>()},
    {"discovery-dial-timeout", g::clustering, "2s", "v3 discovery (etcd 3.6): dial timeout.", later,
     field<&config::discovery_dial_timeout>()},
    {"discovery-request-timeout", g::clustering, "5s",
     "v3 discovery (etcd 3.6): timeout of one request.", later,
     field<&config::discovery_request_timeout>()},
    {"discovery-keepalive-time", g::clustering, "2s",
     "v3 discovery (etcd 3.6): keepalive ping interval.", later,
     field<&config::discovery_keepalive_time>()},
    {"discovery-keepalive-timeout", g::clustering, "6s",
     "v3 discovery (etcd 3.6): keepalive answer timeout.", later,
     field<&config::discovery_keepalive_timeout>()},
    {"discovery-insecure-transport", g::clustering, "true",
     "v3 discovery (etcd 3.6): connect without TLS.", later,
     field<&config::discovery_insecure_transport>()},
    {"discovery-insecure-skip-tls-verify", g::clustering, "false",
     "v3 discovery (etcd 3.6): do not verify the server certificate (testing only).", later,
     field<&config::discovery_insecure_skip_tls_verify>()},
    {"discovery-cert", g::clustering, "", "v3 discovery (etcd 3.6): client certificate file.",
     later, field<&config::discovery_cert>()},
    {"discovery-key", g::clustering, "", "v3 discovery (etcd 3.6): client key file.", later,
     field<&config::discovery_key>()},
    {"discovery-cacert", g::clustering, "", "v3 discovery (etcd 3.6): CA bundle file.", later,
     field<&config::discovery_cacert>()},
    {"discovery-user", g::clustering, "", "v3 discovery (etcd 3.6): user[:password].", later,
     field<&config::discovery_user>()},
    {"discovery-password",
     g::clustering,
     "",
     "v3 discovery (etcd 3.6): password.",
     later,
     field<&config::discovery_password>(),
     {},
     {},
     true,
     true},
    {"strict-reconfig-check", g::clustering, "true",
     "Refuse membership changes that would leave the cluster without quorum.", acted,
     field<&config::strict_reconfig_check>()},
    {"pre-vote", g::clustering, "true",
     "Run raft's pre-vote phase so a rejoining member does not disrupt the leader.", later,
     field<&config::pre_vote>()},
    {"auto-compaction-retention", g::clustering, "0",
     "History kept by automatic compaction (0: off). Periodic mode: hours as an integer, or a "
     "duration such as 30m; revision mode: a number of revisions.",
     acted, field<&config::auto_compaction_retention>()},
    {"auto-compaction-mode", g::clustering, "periodic",
     "How to read --auto-compaction-retention: 'periodic' or 'revision'.", acted,
     field<&config::auto_compaction_mode>()},
    {"enable-v2", g::clustering, "false",
     "Serve the v2 keys API (deprecated in etcd 3.5, removed in 3.6).", acted,
     field<&config::enable_v2>()},
    {"v2-deprecation", g::clustering, "not-yet",
     "v2 store deprecation stage: not-yet, write-only, write-only-drop-data or gone.", later,
     field<&config::v2_deprecation_stage>()},

    // Security.
    {"cert-file",
     g::security,
     "",
     "TLS certificate for the client URLs.",
     acted,
     field<&config::cert_file>(),
     {},
     "client-transport-security.cert-file"},
    {"key-file",
     g::security,
     "",
     "TLS key for the client URLs.",
     acted,
     field<&config::key_file>(),
     {},
     "client-transport-security.key-file"},
    {"client-cert-file",
     g::security,
     "",
     "Certificate the gRPC gateway presents when it dials this member (Cairn's gateway calls "
     "in-process).",
     inert,
     field<&config::client_cert_file>(),
     {},
     "client-transport-security.client-cert-file"},
    {"client-key-file",
     g::security,
     "",
     "Key of --client-cert-file (no use in Cairn, see there).",
     inert,
     field<&config::client_key_file>(),
     {},
     "client-transport-security.client-key-file"},
    {"client-cert-auth",
     g::security,
     "false",
     "Require clients to present a certificate signed by --trusted-ca-file.",
     acted,
     field<&config::client_cert_auth>(),
     {},
     "client-transport-security.client-cert-auth"},
    {"client-crl-file", g::security, "", "Revocation list for client certificates.", acted,
     field<&config::client_crl_file>()},
    {"client-cert-allowed-hostname",
     g::security,
     "",
     "Comma-separated hostnames a client certificate must carry.",
     acted,
     field<&config::client_cert_allowed_hostname>(),
     {},
     "client-transport-security.allowed-hostname",
     true,
     false,
     "client.example.com"},
    {"trusted-ca-file",
     g::security,
     "",
     "CA bundle for verifying client certificates.",
     acted,
     field<&config::trusted_ca_file>(),
     {},
     "client-transport-security.trusted-ca-file"},
    {"auto-tls",
     g::security,
     "false",
     "Serve clients with a self-signed certificate generated at start-up.",
     acted,
     field<&config::auto_tls>(),
     {},
     "client-transport-security.auto-tls"},
    {"peer-cert-file",
     g::security,
     "",
     "TLS certificate for the peer URLs.",
     acted,
     field<&config::peer_cert_file>(),
     {},
     "peer-transport-security.cert-file"},
    {"peer-key-file",
     g::security,
     "",
     "TLS key for the peer URLs.",
     acted,
     field<&config::peer_key_file>(),
     {},
     "peer-transport-security.key-file"},
    {"peer-client-cert-file",
     g::security,
     "",
     "Certificate presented when dialing peers (default: --peer-cert-file).",
     acted,
     field<&config::peer_client_cert_file>(),
     {},
     "peer-transport-security.client-cert-file"},
    {"peer-client-key-file",
     g::security,
     "",
     "Key used when dialing peers (default: --peer-key-file).",
     acted,
     field<&config::peer_client_key_file>(),
     {},
     "peer-transport-security.client-key-file"},
    {"peer-client-cert-auth",
     g::security,
     "false",
     "Require peers to present a certificate signed by --peer-trusted-ca-file.",
     acted,
     field<&config::peer_client_cert_auth>(),
     {},
     "peer-transport-security.client-cert-auth"},
    {"peer-trusted-ca-file",
     g::security,
     "",
     "CA bundle for verifying peer certificates.",
     acted,
     field<&config::peer_trusted_ca_file>(),
     {},
     "peer-transport-security.trusted-ca-file"},
    {"peer-cert-allowed-cn",
     g::security,
     "",
     "Comma-separated common names a peer certificate must carry.",
     acted,
     field<&config::peer_cert_allowed_cn>(),
     {},
     "peer-transport-security.allowed-cn",
     true,
     false,
     "peer.example.com"},
    {"peer-cert-allowed-hostname",
     g::security,
     "",
     "Comma-separated hostnames a peer certificate must carry.",
     acted,
     field<&config::peer_cert_allowed_hostname>(),
     {},
     "peer-transport-security.allowed-hostname",
     true,
     false,
     "peer.example.com"},
    {"peer-auto-tls",
     g::security,
     "false",
     "Serve peers with a self-signed certificate when no peer certificate is given.",
     acted,
     field<&config::peer_auto_tls>(),
     {},
     "peer-transport-security.auto-tls"},
    {"self-signed-cert-validity", g::security, "1",
     "Validity, in years, of the certificates --auto-tls and --peer-auto-tls generate.", acted,
     field<&config::self_signed_cert_validity>()},
    {"peer-crl-file", g::security, "", "Revocation list for peer certificates.", acted,
     field<&config::peer_crl_file>()},
    {"cipher-suites",
     g::security,
     "",
     "Comma-separated TLS cipher suites for clients and peers (empty: the library's list).",
     acted,
     field<&config::cipher_suites>(),
     {},
     {},
     true,
     false,
     "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
    {"tls-min-version", g::security, "TLS1.2", "Oldest TLS version accepted: TLS1.2 or TLS1.3.",
     acted, field<&config::tls_min_version>()},
    {"tls-max-version",
     g::security,
     "",
     "Newest TLS version accepted: TLS1.2 or TLS1.3 (empty: the newest available).",
     acted,
     field<&config::tls_max_version>(),
     {},
     {},
     true,
     false,
     "TLS1.3"},
    {"cors", g::security, "*",
     "Comma-separated origins allowed by CORS, as URLs (* or empty: any origin).", acted,
     cors_flag()},
    {"host-whitelist", g::security, "*",
     "Comma-separated Host header values accepted on plain HTTP (* or empty: any).", acted,
     unique_strings<&config::host_whitelist>()},

    // Auth.
    {"auth-token", g::auth, "simple",
     "Token kind: 'simple', or 'jwt,pub-key=...,priv-key=...,sign-method=...[,ttl=...]'.", acted,
     field<&config::auth_token>()},
    {"bcrypt-cost", g::auth, "10", "bcrypt cost for password hashes (4 to 31).", acted,
     field<&config::bcrypt_cost>()},
    {"auth-token-ttl", g::auth, "300", "Lifetime of a simple token, in seconds.", acted,
     field<&config::auth_token_ttl>()},

    // Profiling and monitoring.
    {"enable-pprof", g::monitoring, "false",
     "Serve Go's pprof profiles under /debug/pprof. Cairn is not a Go program: no effect.", inert,
     field<&config::enable_pprof>()},
    {"metrics", g::monitoring, "basic",
     "Metric detail: 'basic', or 'extensive' to add gRPC latency histograms.", acted,
     field<&config::metrics>()},
    {"listen-metrics-urls",
     g::monitoring,
     "",
     "Comma-separated URLs serving only /metrics and the health endpoints.",
     acted,
     field<&config::listen_metrics_urls>(),
     {},
     {},
     true,
     false,
     "http://127.0.0.1:12381"},

    // Logging.
    {"logger", g::logging, "zap",
     "Logger implementation; etcd 3.5 accepts only 'zap'. Cairn has its own logger, so this "
     "has no effect.",
     inert, logger_flag()},
    {"log-outputs", g::logging, "default",
     "Comma-separated log targets: default, stderr, stdout or file paths.", acted,
     unique_strings<&config::log_outputs>()},
    {"log-level", g::logging, "info",
     "Least severe level logged: debug, info, warn, error, panic or fatal.", acted,
     field<&config::level>()},
    {"log-format", g::logging, "json", "Log line format: json or console (etcd 3.6).", acted,
     field<&config::format>()},
    {"enable-log-rotation", g::logging, "false",
     "Rotate the log file (needs a single file in --log-outputs).", later,
     field<&config::enable_log_rotation>()},
    {"log-rotation-config-json", g::logging,
     R"({"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false})",
     "Rotation settings as JSON: maxsize (MB), maxage (days), maxbackups, localtime, compress.",
     later, field<&config::log_rotation_config_json>()},

    // Distributed tracing (3.5 experimental names, each followed by its 3.6 name).
    {"experimental-enable-distributed-tracing", g::tracing, "false", "Export OpenTelemetry traces.",
     later, field<&config::enable_distributed_tracing>(), "enable-distributed-tracing"},
    {"enable-distributed-tracing", g::tracing, "false",
     "Export OpenTelemetry traces (etcd 3.6 name).", later,
     field<&config::enable_distributed_tracing>()},
    {"experimental-distributed-tracing-address", g::tracing, "localhost:4317",
     "Address of the OpenTelemetry collector.", later,
     field<&config::distributed_tracing_address>(), "distributed-tracing-address"},
    {"distributed-tracing-address", g::tracing, "localhost:4317",
     "Address of the OpenTelemetry collector (etcd 3.6 name).", later,
     field<&config::distributed_tracing_address>()},
    {"experimental-distributed-tracing-service-name", g::tracing, "etcd",
     "Service name in traces; the same on every member.", later,
     field<&config::distributed_tracing_service_name>(), "distributed-tracing-service-name"},
    {"distributed-tracing-service-name", g::tracing, "etcd",
     "Service name in traces (etcd 3.6 name).", later,
     field<&config::distributed_tracing_service_name>()},
    {"experimental-distributed-tracing-instance-id", g::tracing, "",
     "Instance id in traces; unique per member.", later,
     field<&config::distributed_tracing_instance_id>(), "distributed-tracing-instance-id"},
    {"distributed-tracing-instance-id", g::tracing, "", "Instance id in traces (etcd 3.6 name).",
     later, field<&config::distributed_tracing_instance_id>()},
    {"experimental-distributed-tracing-sampling-rate", g::tracing, "0",
     "Spans sampled per million.", later, field<&config::distributed_tracing_sampling_rate>(),
     "distributed-tracing-sampling-rate"},
    {"distributed-tracing-sampling-rate", g::tracing, "0",
     "Spans sampled per million (etcd 3.6 name).", later,
     field<&config::distributed_tracing_sampling_rate>()},

    // v2 proxy.
    {"proxy", g::proxy, "off",
     "v2 proxy mode: off, readonly or on. Cairn has no v2 proxy and accepts only 'off'.", inert,
     field<&config::proxy>()},
    {"proxy-failure-wait", g::proxy, "5000",
     "v2 proxy: milliseconds a failed endpoint is avoided (no effect).", inert,
     field<&config::proxy_failure_wait_ms>()},
    {"proxy-refresh-interval", g::proxy, "30000",
     "v2 proxy: milliseconds between endpoint refreshes (no effect).", inert,
     field<&config::proxy_refresh_interval_ms>()},
    {"proxy-dial-timeout", g::proxy, "1000", "v2 proxy: dial timeout in milliseconds (no effect).",
     inert, field<&config::proxy_dial_timeout_ms>()},
    {"proxy-write-timeout", g::proxy, "5000",
     "v2 proxy: write timeout in milliseconds (no effect).", inert,
     field<&config::proxy_write_timeout_ms>()},
    {"proxy-read-timeout", g::proxy, "0",
     "v2 proxy: read timeout in milliseconds, 0 for none (no effect).", inert,
     field<&config::proxy_read_timeout_ms>()},

    // Experimental features (3.5 names, each followed by its 3.6 replacement).
    {"experimental-initial-corrupt-check", g::experimental, "false",
     "Compare database hashes with the peers before serving.", acted,
     gate<&feature_gates::initial_corrupt_check>()},
    {"experimental-corrupt-check-time", g::experimental, "0s",
     "Period of the cluster-wide corruption check (0s: off).", acted,
     field<&config::corrupt_check_time>(), "corrupt-check-time"},
    {"corrupt-check-time", g::experimental, "0s",
     "Period of the cluster-wide corruption check (etcd 3.6 name).", acted,
     field<&config::corrupt_check_time>()},
    {"experimental-compact-hash-check-enabled", g::experimental, "false",
     "Let the leader compare compaction hashes with followers.", later,
     gate<&feature_gates::compact_hash_check>()},
    {"experimental-compact-hash-check-time", g::experimental, "1m",
     "Period of the compaction hash check.", later, field<&config::compact_hash_check_time>(),
     "compact-hash-check-time"},
    {"compact-hash-check-time", g::experimental, "1m",
     "Period of the compaction hash check (etcd 3.6 name).", later,
     field<&config::compact_hash_check_time>()},
    {"experimental-enable-v2v3",
     g::experimental,
     "",
     "Serve the v2 API from the v3 store under this prefix (removed in etcd 3.6).",
     later,
     field<&config::experimental_enable_v2v3>(),
     {},
     {},
     true,
     false,
     "/v2prefix"},
    {"experimental-backend-bbolt-freelist-type", g::experimental, "map",
     "etcd 3.4 name of --backend-bbolt-freelist-type (no effect).", inert,
     field<&config::backend_bbolt_freelist_type>(), "backend-bbolt-freelist-type"},
    {"experimental-enable-lease-checkpoint", g::experimental, "false",
     "Have the leader checkpoint lease TTLs to followers, so a leader change does not reset "
     "them.",
     acted, gate<&feature_gates::lease_checkpoint>()},
    {"experimental-enable-lease-checkpoint-persist", g::experimental, "false",
     "Also persist the checkpointed TTLs (needs --experimental-enable-lease-checkpoint).", acted,
     gate<&feature_gates::lease_checkpoint_persist>()},
    {"experimental-compaction-batch-limit", g::experimental, "1000",
     "Most revisions deleted per compaction batch.", later,
     field<&config::compaction_batch_limit>(), "compaction-batch-limit"},
    {"compaction-batch-limit", g::experimental, "1000",
     "Most revisions deleted per compaction batch (etcd 3.6 name).", later,
     field<&config::compaction_batch_limit>()},
    {"experimental-compaction-sleep-interval", g::experimental, "10ms",
     "Pause between two compaction batches.", later, field<&config::compaction_sleep_interval>(),
     "compaction-sleep-interval"},
    {"compaction-sleep-interval", g::experimental, "10ms",
     "Pause between two compaction batches (etcd 3.6 name).", later,
     field<&config::compaction_sleep_interval>()},
    {"experimental-peer-skip-client-san-verification", g::experimental, "false",
     "Do not check the SAN of peer client certificates.", later,
     field<&config::peer_skip_client_san_verification>(), "peer-skip-client-san-verification"},
    {"peer-skip-client-san-verification",
     g::experimental,
     "false",
     "Do not check the SAN of peer client certificates (etcd 3.6 name).",
     later,
     field<&config::peer_skip_client_san_verification>(),
     {},
     "peer-transport-security.skip-client-san-verification"},
    {"experimental-watch-progress-notify-interval", g::experimental, "10m",
     "Period of progress notifications to watchers that asked for them.", acted,
     field<&config::watch_progress_notify_interval>(), "watch-progress-notify-interval"},
    {"watch-progress-notify-interval", g::experimental, "10m",
     "Period of watch progress notifications (etcd 3.6 name).", acted,
     field<&config::watch_progress_notify_interval>()},
    {"experimental-warning-apply-duration", g::experimental, "100ms",
     "Log a warning when applying one request takes longer than this.", later,
     field<&config::warning_apply_duration>(), "warning-apply-duration"},
    {"warning-apply-duration", g::experimental, "100ms",
     "Slow-apply warning threshold (etcd 3.6 name).", later,
     field<&config::warning_apply_duration>()},
    {"experimental-warning-unary-request-duration", g::experimental, "300ms",
     "Log a warning when a unary request takes longer than this.", later,
     field<&config::warning_unary_request_duration>(), "warning-unary-request-duration"},
    {"warning-unary-request-duration", g::experimental, "300ms",
     "Slow unary request warning threshold (etcd 3.6 name).", later,
     field<&config::warning_unary_request_duration>()},
    {"experimental-txn-mode-write-with-shared-buffer", g::experimental, "true",
     "bbolt read-buffer sharing in write transactions. No effect on Cairn's backend.", inert,
     gate<&feature_gates::txn_mode_write_with_shared_buffer>()},
    {"experimental-bootstrap-defrag-threshold-megabytes", g::experimental, "0",
     "Defragment at start-up when that frees at least this many megabytes (0: never).", later,
     field<&config::bootstrap_defrag_threshold_megabytes>(),
     "bootstrap-defrag-threshold-megabytes"},
    {"bootstrap-defrag-threshold-megabytes", g::experimental, "0",
     "Start-up defragmentation threshold (etcd 3.6 name).", later,
     field<&config::bootstrap_defrag_threshold_megabytes>()},
    {"experimental-max-learners", g::experimental, "1",
     "Most learner members the cluster may hold.", later, field<&config::max_learners>(),
     "max-learners"},
    {"max-learners", g::experimental, "1", "Most learner members (etcd 3.6 name).", later,
     field<&config::max_learners>()},
    {"experimental-memory-mlock", g::experimental, "false",
     "Lock the process's memory so the database stays in RAM.", later,
     field<&config::memory_mlock>(), "memory-mlock"},
    {"memory-mlock", g::experimental, "false", "Lock memory in RAM (etcd 3.6 name).", later,
     field<&config::memory_mlock>()},
    {"experimental-snapshot-catchup-entries", g::experimental, "5000",
     "Raft entries kept after a snapshot for slow followers to catch up from.", acted,
     field<&config::snapshot_catchup_entries>(), "snapshot-catchup-entries"},
    {"snapshot-catchup-entries", g::experimental, "5000",
     "Entries kept for slow followers (etcd 3.6 name).", acted,
     field<&config::snapshot_catchup_entries>()},
    {"experimental-stop-grpc-service-on-defrag", g::experimental, "false",
     "Report NOT_SERVING on the gRPC health service while defragmenting.", later,
     gate<&feature_gates::stop_grpc_service_on_defrag>()},
    {"experimental-downgrade-check-time", g::experimental, "5s",
     "Period of the downgrade status check.", later, field<&config::downgrade_check_time>(),
     "downgrade-check-time"},
    {"downgrade-check-time", g::experimental, "5s",
     "Period of the downgrade status check (etcd 3.6 name).", later,
     field<&config::downgrade_check_time>()},

    // Feature gates (etcd 3.6).
    {"feature-gates",
     g::features,
     "",
     "Comma-separated Gate=true|false (also AllAlpha, AllBeta); the gates are listed below.",
     later,
     feature_gates_flag(),
     {},
     {},
     true,
     false,
     "InitialCorruptCheck=true"},

    // Unsafe.
    {"force-new-cluster", g::unsafe, "false",
     "Restart as a one-member cluster, discarding the other members.", later,
     field<&config::force_new_cluster>()},
    {"unsafe-no-fsync", g::unsafe, "false",
     "Never fsync: faster, and loses data on a crash. Tests only.", later,
     field<&config::unsafe_no_fsync>()},

    // etcd 3.4 flags that 3.5 dropped.
    {"debug", g::deprecated, "false", "Same as --log-level=debug (etcd 3.4).", acted,
     field<&config::debug>()},
    {"log-package-levels",
     g::deprecated,
     "",
     "Per-package capnslog levels (etcd 3.4). No effect.",
     inert,
     field<&config::log_package_levels>(),
     {},
     {},
     true,
     false,
     "etcdserver=DEBUG"},
    {"log-output", g::deprecated, "default", "etcd 3.4 name of --log-outputs.", later,
     unique_strings<&config::log_outputs>(), "log-outputs"},

    // Flags from etcd before 2.0 that etcd still accepts and ignores.
    {"cluster-active-size", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"cluster-remove-delay", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"cluster-sync-interval", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"config", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"force", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"max-result-buffer", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"max-retry-attempts", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"peer-heartbeat-interval", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"peer-election-timeout", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"retry-interval", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"snapshot", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"v", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
    {"vv", g::ignored, "", "", inert, ignored_flag(), {}, "-"},
};

}  // namespace

std::string_view group_title(flag_group group) {
  switch (group) {
    case flag_group::usage:
      return "Usage";
    case flag_group::member:
      return "Member";
    case flag_group::clustering:
      return "Clustering";
    case flag_group::security:
      return "Security";
    case flag_group::auth:
      return "Auth";
    case flag_group::monitoring:
      return "Profiling and Monitoring";
    case flag_group::logging:
      return "Logging";
    case flag_group::tracing:
      return "Distributed tracing (etcd 3.5 experimental names, each "
             "followed by its etcd 3.6 name)";
    case flag_group::proxy:
      return "v2 Proxy (removed in etcd 3.6)";
    case flag_group::experimental:
      return "Experimental feature (etcd 3.5 names, each followed "
             "by its etcd 3.6 name or feature gate)";
    case flag_group::features:
      return "Feature gates (etcd 3.6)";
    case flag_group::unsafe:
      return "Unsafe feature";
    case flag_group::deprecated:
      return "Removed in etcd 3.5 (accepted)";
    case flag_group::ignored:
      return "Ignored (accepted so very old command lines still start)";
  }
  return "";
}

std::string_view status_label(flag_status status) {
  switch (status) {
    case flag_status::acted_on:
      return "";
    case flag_status::not_yet:
      return "[not acted on yet]";
    case flag_status::no_effect:
      return "[no effect in Cairn]";
  }
  return "";
}

std::string_view origin_name(origin where) {
  switch (where) {
    case origin::flag:
      return "flag";
    case origin::env:
      return "environment";
    case origin::file:
      return "config file";
  }
  return "";
}

std::span<const flag_spec> flag_table() { return table; }

const flag_spec* find_flag(std::string_view name) {
  for (const auto& spec : table) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string env_name(std::string_view flag_name) {
  std::string out = "ETCD_";
  for (const char c : flag_name) {
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string_view file_key(const flag_spec& spec) {
  if (spec.file_key == "-") return {};
  return spec.file_key.empty() ? spec.name : spec.file_key;
}

const flag_spec* old_spelling_of(const flag_spec& spec) {
  for (const auto& other : table) {
    if (other.replaced_by == spec.name) return &other;
  }
  return nullptr;
}

}  // namespace cairn::cmd
