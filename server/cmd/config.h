// Cairn's configuration: every setting etcd 3.5 has (plus its 3.4 leftovers and 3.6
// spellings), typed, with etcd 3.5's defaults. The flag table (flags.h) says how each
// setting is spelled on the command line, in ETCD_* variables and in the config file; this
// header only holds the values and the checks that span several settings.
//
// A `config` is a plain value: build it once at start-up, then share it read-only.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cmd/values.h"

namespace cairn::cmd {

enum class cluster_state { new_cluster, existing };
enum class compaction_mode { periodic, revision };
enum class log_level { debug, info, warn, error, panic, fatal };
enum class logger_kind { zap };
enum class log_format { json, console };
enum class metrics_level { basic, extensive };
enum class proxy_mode { off, readonly, on };
enum class discovery_fallback { proxy, exit };
enum class v2_deprecation { not_yet, write_only, write_only_drop_data, gone };
enum class freelist_type { map, array };
enum class tls_version { go_default, tls12, tls13 };

// The spelling of each enum value, indexed by the enum's value.
template <typename E>
struct enum_names;
template <>
struct enum_names<cluster_state> {
  static constexpr std::array<std::string_view, 2> names = {"new", "existing"};
};
template <>
struct enum_names<compaction_mode> {
  static constexpr std::array<std::string_view, 2> names = {"periodic", "revision"};
};
template <>
struct enum_names<log_level> {
  static constexpr std::array<std::string_view, 6> names = {"debug", "info",  "warn",
                                                            "error", "panic", "fatal"};
};
template <>
struct enum_names<logger_kind> {
  static constexpr std::array<std::string_view, 1> names = {"zap"};
};
template <>
struct enum_names<log_format> {
  static constexpr std::array<std::string_view, 2> names = {"json", "console"};
};
template <>
struct enum_names<metrics_level> {
  static constexpr std::array<std::string_view, 2> names = {"basic", "extensive"};
};
template <>
struct enum_names<proxy_mode> {
  static constexpr std::array<std::string_view, 3> names = {"off", "readonly", "on"};
};
template <>
struct enum_names<discovery_fallback> {
  static constexpr std::array<std::string_view, 2> names = {"proxy", "exit"};
};
template <>
struct enum_names<v2_deprecation> {
  static constexpr std::array<std::string_view, 4> names = {"not-yet", "write-only",
                                                            "write-only-drop-data", "gone"};
};
template <>
struct enum_names<freelist_type> {
  static constexpr std::array<std::string_view, 2> names = {"map", "array"};
};
template <>
struct enum_names<tls_version> {
  static constexpr std::array<std::string_view, 3> names = {"", "TLS1.2", "TLS1.3"};
};

template <typename E>
std::string_view to_string(E value) {
  return enum_names<E>::names[static_cast<std::size_t>(value)];
}

// etcd 3.6's server feature gates. The 3.5 `--experimental-*` booleans set the same fields.
struct feature_gates {
  bool initial_corrupt_check = false;
  bool compact_hash_check = false;
  bool lease_checkpoint = false;
  bool lease_checkpoint_persist = false;
  bool stop_grpc_service_on_defrag = false;
  bool txn_mode_write_with_shared_buffer = true;
  bool set_member_local_addr = false;
  friend bool operator==(const feature_gates&, const feature_gates&) = default;
};

struct feature_gate_spec {
  std::string_view name;  // as written in --feature-gates
  bool alpha;             // alpha (else beta): what AllAlpha / AllBeta switch
  bool feature_gates::*field;
  std::string_view experimental_flag;  // the 3.5 boolean flag for the same gate, if any
};
// Every gate etcd 3.6 knows, in --help order.
const std::vector<feature_gate_spec>& feature_gate_table();

// Parses `Name=true,Other=false` (also AllAlpha / AllBeta) onto `gates`; `named` receives the
// gate names the text mentions. Error: etcd 3.6's wording ("unrecognized feature gate: X").
std::expected<void, std::string> apply_feature_gates(std::string_view text, feature_gates& gates,
                                                     std::vector<std::string>* named = nullptr);
std::string format_feature_gates(const feature_gates& gates);

// One member of --initial-cluster: name=url (a name may appear several times, one per URL).
struct cluster_member {
  std::string name;
  std::vector<url> peer_urls;
};
std::expected<std::vector<cluster_member>, std::string> parse_initial_cluster(
    std::string_view text);

// --auto-compaction-retention, read according to --auto-compaction-mode.
struct compaction_retention {
  duration period{0};          // periodic mode: how much history to keep (0 = off)
  std::int64_t revisions = 0;  // revision mode: how many revisions to keep (0 = off)
};
std::expected<compaction_retention, std::string> parse_compaction_retention(compaction_mode mode,
                                                                            std::string_view text);

// --auth-token: "simple" or "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...".
struct auth_token_spec {
  std::string type;  // simple | jwt
  std::map<std::string, std::string> options;
};
std::expected<auth_token_spec, std::string> parse_auth_token(std::string_view text);

struct config {
  // Member.
  std::string name = "default";
  std::string data_dir;  // empty: "<name>.cairn" (filled in by finalize)
  std::string wal_dir;
  std::uint64_t snapshot_count = 100000;
  std::uint64_t heartbeat_interval_ms = 100;
  std::uint64_t election_timeout_ms = 1000;
  bool initial_election_tick_advance = true;
  std::vector<url> listen_peer_urls = {{"http", "localhost", 2380}};
  std::vector<url> listen_client_urls = {{"http", "localhost", 2379}};
  std::vector<url> listen_client_http_urls;
  std::uint64_t max_snapshots = 5;
  std::uint64_t max_wals = 5;
  std::int64_t quota_backend_bytes = 0;  // 0: 2 GiB; negative: no quota
  duration backend_batch_interval{0};    // 0: the backend's default
  std::int64_t backend_batch_limit = 0;  // 0: the backend's default
  freelist_type backend_bbolt_freelist_type = freelist_type::map;
  std::uint64_t max_txn_ops = 128;
  std::uint64_t max_request_bytes = 1572864;
  std::uint32_t max_concurrent_streams = 4294967295u;
  duration grpc_keepalive_min_time = std::chrono::seconds(5);
  duration grpc_keepalive_interval = std::chrono::hours(2);
  duration grpc_keepalive_timeout = std::chrono::seconds(20);
  bool socket_reuse_port = false;
  bool socket_reuse_address = false;
  duration raft_read_timeout = std::chrono::seconds(5);
  duration raft_write_timeout = std::chrono::seconds(5);
  std::uint64_t snapshot_catchup_entries = 5000;
  bool memory_mlock = false;

  // Clustering.
  std::vector<url> initial_advertise_peer_urls = {{"http", "localhost", 2380}};
  std::string initial_cluster;  // empty until finalize derives it (unless given)
  cluster_state initial_cluster_state = cluster_state::new_cluster;
  std::string initial_cluster_token = "etcd-cluster";
  std::vector<url> advertise_client_urls = {{"http", "localhost", 2379}};
  std::string discovery;
  discovery_fallback discovery_fallback_mode = discovery_fallback::proxy;
  std::string discovery_proxy;
  std::string discovery_srv;
  std::string discovery_srv_name;
  std::vector<std::string> discovery_endpoints;  // 3.6 v3 discovery
  std::string discovery_token;
  duration discovery_dial_timeout = std::chrono::seconds(2);
  duration discovery_request_timeout = std::chrono::seconds(5);
  duration discovery_keepalive_time = std::chrono::seconds(2);
  duration discovery_keepalive_timeout = std::chrono::seconds(6);
  bool discovery_insecure_transport = true;
  bool discovery_insecure_skip_tls_verify = false;
  std::string discovery_cert;
  std::string discovery_key;
  std::string discovery_cacert;
  std::string discovery_user;
  std::string discovery_password;
  bool strict_reconfig_check = true;
  bool pre_vote = true;  // etcd 3.5 default (3.4: false)
  std::string auto_compaction_retention = "0";
  compaction_mode auto_compaction_mode = compaction_mode::periodic;
  bool enable_v2 = false;
  std::string experimental_enable_v2v3;
  v2_deprecation v2_deprecation_stage = v2_deprecation::not_yet;
  std::int64_t max_learners = 1;
  duration downgrade_check_time = std::chrono::seconds(5);

  // Security.
  std::string cert_file;
  std::string key_file;
  std::string client_cert_file;
  std::string client_key_file;
  bool client_cert_auth = false;
  std::string client_crl_file;
  std::vector<std::string> client_cert_allowed_hostname;
  std::string trusted_ca_file;
  bool auto_tls = false;
  std::string peer_cert_file;
  std::string peer_key_file;
  std::string peer_client_cert_file;
  std::string peer_client_key_file;
  bool peer_client_cert_auth = false;
  std::string peer_trusted_ca_file;
  std::vector<std::string> peer_cert_allowed_cn;
  std::vector<std::string> peer_cert_allowed_hostname;
  bool peer_auto_tls = false;
  std::string peer_crl_file;
  bool peer_skip_client_san_verification = false;
  std::uint64_t self_signed_cert_validity = 1;  // years
  std::vector<std::string> cipher_suites;
  tls_version tls_min_version = tls_version::tls12;
  tls_version tls_max_version = tls_version::go_default;
  std::vector<std::string> cors = {"*"};
  std::vector<std::string> host_whitelist = {"*"};

  // Auth.
  std::string auth_token = "simple";
  std::uint64_t bcrypt_cost = 10;
  std::uint64_t auth_token_ttl = 300;  // seconds

  // Profiling and monitoring.
  bool enable_pprof = false;
  metrics_level metrics = metrics_level::basic;
  std::vector<url> listen_metrics_urls;

  // Logging.
  logger_kind logger = logger_kind::zap;
  std::vector<std::string> log_outputs = {"default"};
  log_level level = log_level::info;
  log_format format = log_format::json;
  bool enable_log_rotation = false;
  std::string log_rotation_config_json =
      R"({"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false})";
  bool debug = false;  // 3.4's --debug: finalize turns it into log level debug
  std::string log_package_levels;

  // Distributed tracing.
  bool enable_distributed_tracing = false;
  std::string distributed_tracing_address = "localhost:4317";
  std::string distributed_tracing_service_name = "etcd";
  std::string distributed_tracing_instance_id;
  std::int64_t distributed_tracing_sampling_rate = 0;  // per million spans

  // v2 proxy (removed in etcd 3.6; Cairn accepts only "off").
  proxy_mode proxy = proxy_mode::off;
  std::uint64_t proxy_failure_wait_ms = 5000;
  std::uint64_t proxy_refresh_interval_ms = 30000;
  std::uint64_t proxy_dial_timeout_ms = 1000;
  std::uint64_t proxy_write_timeout_ms = 5000;
  std::uint64_t proxy_read_timeout_ms = 0;

  // Features (3.5 experimental flags and their 3.6 names).
  feature_gates features;
  std::string feature_gates_text;  // --feature-gates as given; finalize applies it
  duration corrupt_check_time{0};
  duration compact_hash_check_time = std::chrono::minutes(1);
  std::int64_t compaction_batch_limit = 1000;
  duration compaction_sleep_interval = std::chrono::milliseconds(10);
  duration watch_progress_notify_interval = std::chrono::minutes(10);
  duration warning_apply_duration = std::chrono::milliseconds(100);
  duration warning_unary_request_duration = std::chrono::milliseconds(300);
  std::uint64_t bootstrap_defrag_threshold_megabytes = 0;
  bool enable_grpc_gateway = true;

  // Unsafe.
  bool force_new_cluster = false;
  bool unsafe_no_fsync = false;

  // The file the settings came from, if any.
  std::string config_file;
};

// What finalize needs to know about how the settings were given.
struct finalize_context {
  bool initial_cluster_given = false;
  bool listen_client_urls_given_on_command_line = false;  // flag or ETCD_* variable
  bool advertise_client_urls_given_on_command_line = false;
};

// Fills in the derived defaults (data dir, initial cluster, feature gates, --debug) and runs
// every check etcd makes once all settings are known. The error names the setting at fault.
// `warnings` receives etcd's start-up warnings about the values (e.g. a very large quota).
std::expected<void, std::string> finalize(config& cfg, const finalize_context& context,
                                          std::vector<std::string>& warnings);

}  // namespace cairn::cmd
