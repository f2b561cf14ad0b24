// Defaults (etcd 3.5's) and the checks made once every setting is known.
#include "cmd/config.h"

#include <gtest/gtest.h>

#include "cmd/flags.h"

namespace cairn::cmd {
namespace {

// etcd 3.5's defaults, from its embed.NewConfig and `etcd --help` (3.5 differs from the 3.4
// binary on this machine in pre-vote, logger and the freelist type). Cairn's own choice: the
// data directory is <name>.cairn. One row per flag; a flag missing here fails the last check.
const std::map<std::string, std::string> etcd35_defaults = {
    {"name", "default"},
    {"data-dir", ""},
    {"wal-dir", ""},
    {"snapshot-count", "100000"},
    {"heartbeat-interval", "100"},
    {"election-timeout", "1000"},
    {"initial-election-tick-advance", "true"},
    {"listen-peer-urls", "http://localhost:2380"},
    {"listen-client-urls", "http://localhost:2379"},
    {"listen-client-http-urls", ""},
    {"max-snapshots", "5"},
    {"max-wals", "5"},
    {"quota-backend-bytes", "0"},
    {"backend-bbolt-freelist-type", "map"},
    {"backend-batch-interval", "0s"},
    {"backend-batch-limit", "0"},
    {"max-txn-ops", "128"},
    {"max-request-bytes", "1572864"},
    {"max-concurrent-streams", "4294967295"},
    {"grpc-keepalive-min-time", "5s"},
    {"grpc-keepalive-interval", "2h0m0s"},
    {"grpc-keepalive-timeout", "20s"},
    {"socket-reuse-port", "false"},
    {"socket-reuse-address", "false"},
    {"raft-read-timeout", "5s"},
    {"raft-write-timeout", "5s"},
    {"enable-grpc-gateway", "true"},
    {"initial-advertise-peer-urls", "http://localhost:2380"},
    {"initial-cluster", ""},  // derived by finalize: default=http://localhost:2380
    {"initial-cluster-state", "new"},
    {"initial-cluster-token", "etcd-cluster"},
    {"advertise-client-urls", "http://localhost:2379"},
    {"discovery", ""},
    {"discovery-fallback", "proxy"},
    {"discovery-proxy", ""},
    {"discovery-srv", ""},
    {"discovery-srv-name", ""},
    {"discovery-endpoints", ""},
    {"discovery-token", ""},
    {"discovery-dial-timeout", "2s"},
    {"discovery-request-timeout", "5s"},
    {"discovery-keepalive-time", "2s"},
    {"discovery-keepalive-timeout", "6s"},
    {"discovery-insecure-transport", "true"},
    {"discovery-insecure-skip-tls-verify", "false"},
    {"discovery-cert", ""},
    {"discovery-key", ""},
    {"discovery-cacert", ""},
    {"discovery-user", ""},
    {"discovery-password", ""},
    {"strict-reconfig-check", "true"},
    {"pre-vote", "true"},
    {"auto-compaction-retention", "0"},
    {"auto-compaction-mode", "periodic"},
    {"enable-v2", "false"},
    {"v2-deprecation", "not-yet"},
    {"cert-file", ""},
    {"key-file", ""},
    {"client-cert-file", ""},
    {"client-key-file", ""},
    {"client-cert-auth", "false"},
    {"client-crl-file", ""},
    {"client-cert-allowed-hostname", ""},
    {"trusted-ca-file", ""},
    {"auto-tls", "false"},
    {"peer-cert-file", ""},
    {"peer-key-file", ""},
    {"peer-client-cert-file", ""},
    {"peer-client-key-file", ""},
    {"peer-client-cert-auth", "false"},
    {"peer-trusted-ca-file", ""},
    {"peer-cert-allowed-cn", ""},
    {"peer-cert-allowed-hostname", ""},
    {"peer-auto-tls", "false"},
    {"self-signed-cert-validity", "1"},
    {"peer-crl-file", ""},
    {"cipher-suites", ""},
    {"tls-min-version", "TLS1.2"},
    {"tls-max-version", ""},
    {"cors", "*"},
    {"host-whitelist", "*"},
    {"auth-token", "simple"},
    {"bcrypt-cost", "10"},
    {"auth-token-ttl", "300"},
    {"enable-pprof", "false"},
    {"metrics", "basic"},
    {"listen-metrics-urls", ""},
    {"logger", "zap"},
    {"log-outputs", "default"},
    {"log-level", "info"},
    {"log-format", "json"},
    {"enable-log-rotation", "false"},
    {"log-rotation-config-json",
     R"({"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false})"},
    {"experimental-enable-distributed-tracing", "false"},
    {"enable-distributed-tracing", "false"},
    {"experimental-distributed-tracing-address", "localhost:4317"},
    {"distributed-tracing-address", "localhost:4317"},
    {"experimental-distributed-tracing-service-name", "etcd"},
    {"distributed-tracing-service-name", "etcd"},
    {"experimental-distributed-tracing-instance-id", ""},
    {"distributed-tracing-instance-id", ""},
    {"experimental-distributed-tracing-sampling-rate", "0"},
    {"distributed-tracing-sampling-rate", "0"},
    {"proxy", "off"},
    {"proxy-failure-wait", "5000"},
    {"proxy-refresh-interval", "30000"},
    {"proxy-dial-timeout", "1000"},
    {"proxy-write-timeout", "5000"},
    {"proxy-read-timeout", "0"},
    {"experimental-initial-corrupt-check", "false"},
    {"experimental-corrupt-check-time", "0s"},
    {"corrupt-check-time", "0s"},
    {"experimental-compact-hash-check-enabled", "false"},
    {"experimental-compact-hash-check-time", "1m0s"},
    {"compact-hash-check-time", "1m0s"},
    {"experimental-enable-v2v3", ""},
    {"experimental-backend-bbolt-freelist-type", "map"},
    {"experimental-enable-lease-checkpoint", "false"},
    {"experimental-enable-lease-checkpoint-persist", "false"},
    {"experimental-compaction-batch-limit", "1000"},
    {"compaction-batch-limit", "1000"},
    {"experimental-compaction-sleep-interval", "10ms"},
    {"compaction-sleep-interval", "10ms"},
    {"experimental-peer-skip-client-san-verification", "false"},
    {"peer-skip-client-san-verification", "false"},
    {"experimental-watch-progress-notify-interval", "10m0s"},
    {"watch-progress-notify-interval", "10m0s"},
    {"experimental-warning-apply-duration", "100ms"},
    {"warning-apply-duration", "100ms"},
    {"experimental-warning-unary-request-duration", "300ms"},
    {"warning-unary-request-duration", "300ms"},
    {"experimental-txn-mode-write-with-shared-buffer", "true"},
    {"experimental-bootstrap-defrag-threshold-megabytes", "0"},
    {"bootstrap-defrag-threshold-megabytes", "0"},
    {"experimental-max-learners", "1"},
    {"max-learners", "1"},
    {"experimental-memory-mlock", "false"},
    {"memory-mlock", "false"},
    {"experimental-snapshot-catchup-entries", "5000"},
    {"snapshot-catchup-entries", "5000"},
    {"experimental-stop-grpc-service-on-defrag", "false"},
    {"experimental-downgrade-check-time", "5s"},
    {"downgrade-check-time", "5s"},
    {"feature-gates", ""},
    {"force-new-cluster", "false"},
    {"unsafe-no-fsync", "false"},
    {"debug", "false"},
    {"log-package-levels", ""},
    {"log-output", "default"},
    {"config-file", ""},
};

TEST(Defaults, MatchEtcd35) {
  const config cfg;
  for (const auto& spec : flag_table()) {
    if (spec.group == flag_group::ignored || spec.name == "help" || spec.name == "version") {
      continue;
    }
    const auto expected = etcd35_defaults.find(std::string(spec.name));
    ASSERT_NE(expected, etcd35_defaults.end()) << "no expected default for --" << spec.name;
    EXPECT_EQ(spec.value.get(cfg), expected->second) << "--" << spec.name;
  }
  for (const auto& [name, value] : etcd35_defaults) {
    EXPECT_NE(find_flag(name), nullptr) << "--" << name << " is missing from the flag table";
  }
}

TEST(Defaults, FeatureGatesMatchEtcd36) {
  const feature_gates gates;
  EXPECT_EQ(format_feature_gates(gates),
            "CompactHashCheck=false,InitialCorruptCheck=false,LeaseCheckpoint=false,"
            "LeaseCheckpointPersist=false,SetMemberLocalAddr=false,"
            "StopGRPCServiceOnDefrag=false,TxnModeWriteWithSharedBuffer=true");
}

std::expected<config, std::string> finalized(config cfg, finalize_context context = {}) {
  std::vector<std::string> warnings;
  auto ok = finalize(cfg, context, warnings);
  if (!ok) return std::unexpected(ok.error());
  return cfg;
}

TEST(Finalize, DerivesDataDirAndInitialCluster) {
  auto cfg = finalized(config{});
  ASSERT_TRUE(cfg.has_value()) << cfg.error();
  EXPECT_EQ(cfg->data_dir, "default.cairn");
  EXPECT_EQ(cfg->initial_cluster, "default=http://localhost:2380");

  config named;
  named.name = "m1";
  named.initial_advertise_peer_urls = *parse_url_list("http://10.0.0.1:2380,http://10.0.0.2:2380");
  cfg = finalized(named);
  ASSERT_TRUE(cfg.has_value()) << cfg.error();
  EXPECT_EQ(cfg->data_dir, "m1.cairn");
  EXPECT_EQ(cfg->initial_cluster, "m1=http://10.0.0.1:2380,m1=http://10.0.0.2:2380");

  config given;
  given.initial_cluster = "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380";
  cfg = finalized(given, {.initial_cluster_given = true});
  ASSERT_TRUE(cfg.has_value()) << cfg.error();
  EXPECT_EQ(cfg->initial_cluster, "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380");

  config discovering;
  discovering.discovery_srv = "example.com";
  cfg = finalized(discovering);
  ASSERT_TRUE(cfg.has_value()) << cfg.error();
  EXPECT_EQ(cfg->initial_cluster, "");
}

TEST(Finalize, DebugMeansLogLevelDebug) {
  config cfg;
  cfg.debug = true;
  EXPECT_EQ(finalized(cfg)->level, log_level::debug);
}

// Each row: a change to the defaults that finalize must refuse, and a piece of the message.
struct bad_config {
  const char* what;
  void (*change)(config&);
  const char* message;
  finalize_context context = {};
};

TEST(Finalize, RefusesWhatEtcdRefuses) {
  const bad_config rows[] = {
      {"heartbeat 0", [](config& c) { c.heartbeat_interval_ms = 0; },
       "--heartbeat-interval must be >0"},
      {"election 0", [](config& c) { c.election_timeout_ms = 0; }, "--election-timeout must be >0"},
      {"election < 5 heartbeats", [](config& c) { c.election_timeout_ms = 400; },
       "--election-timeout[400ms] should be at least as 5 times as --heartbeat-interval[100ms]"},
      {"election too long", [](config& c) { c.election_timeout_ms = 50001; },
       "is too long, and should be set less than 50000ms"},
      {"bind to a name",
       [](config& c) { c.listen_client_urls = *parse_url_list("http://example.com:2379"); },
       "--listen-client-urls: expected IP in URL for binding (http://example.com:2379)"},
      {"bind peer to a name",
       [](config& c) { c.listen_peer_urls = *parse_url_list("http://example.com:2380"); },
       "--listen-peer-urls: expected IP in URL for binding"},
      {"metrics bound to a name",
       [](config& c) { c.listen_metrics_urls = *parse_url_list("http://example.com:2381"); },
       "--listen-metrics-urls: expected IP"},
      {"advertise empty host",
       [](config& c) { c.advertise_client_urls = *parse_url_list("http://:2379"); },
       "--advertise-client-urls \"http://:2379\" must be \"host:port\""},
      {"two bootstrap methods",
       [](config& c) {
         c.discovery = "https://discovery.etcd.io/x";
         c.initial_cluster = "a=http://10.0.0.1:2380";
       },
       "multiple discovery or bootstrap flags are set",
       {.initial_cluster_given = true}},
      {"initial cluster without url",
       [](config& c) { c.initial_cluster = "a"; },
       "--initial-cluster: entry \"a\" is not of the form name=url",
       {.initial_cluster_given = true}},
      {"initial cluster bad url",
       [](config& c) { c.initial_cluster = "a=localhost:2380"; },
       "--initial-cluster: entry \"a=localhost:2380\": URL scheme must be",
       {.initial_cluster_given = true}},
      {"initial cluster without name",
       [](config& c) { c.initial_cluster = "=http://a:1"; },
       "is not of the form name=url",
       {.initial_cluster_given = true}},
      {"listen without advertise",
       [](config&) {},
       "--advertise-client-urls is required when --listen-client-urls is set explicitly",
       {.listen_client_urls_given_on_command_line = true}},
      {"retention not a number in revision mode",
       [](config& c) {
         c.auto_compaction_mode = compaction_mode::revision;
         c.auto_compaction_retention = "1h";
       },
       "--auto-compaction-retention \"1h\": with --auto-compaction-mode=revision"},
      {"retention garbage", [](config& c) { c.auto_compaction_retention = "soon"; },
       "--auto-compaction-retention \"soon\""},
      {"retention negative", [](config& c) { c.auto_compaction_retention = "-1h"; },
       "must not be negative"},
      {"unknown token type", [](config& c) { c.auth_token = "magic"; },
       "--auth-token \"magic\": unknown token type"},
      {"jwt unknown option", [](config& c) { c.auth_token = "jwt,sign-method=RS256,colour=red"; },
       "unknown option \"colour\""},
      {"jwt without sign method", [](config& c) { c.auth_token = "jwt,pub-key=a"; },
       "jwt needs sign-method"},
      {"bcrypt too cheap", [](config& c) { c.bcrypt_cost = 3; },
       "--bcrypt-cost must be between 4 and 31"},
      {"bcrypt too dear", [](config& c) { c.bcrypt_cost = 32; },
       "--bcrypt-cost must be between 4 and 31"},
      {"v2 proxy", [](config& c) { c.proxy = proxy_mode::readonly; },
       "--proxy=readonly: the v2 proxy is not supported"},
      {"tls min above max",
       [](config& c) {
         c.tls_min_version = tls_version::tls13;
         c.tls_max_version = tls_version::tls12;
       },
       "min version (TLS1.3) is greater than max version (TLS1.2)"},
      {"ciphers with tls 1.3 only",
       [](config& c) {
         c.tls_min_version = tls_version::tls13;
         c.cipher_suites = {"TLS_AES_128_GCM_SHA256"};
       },
       "cipher suites cannot be configured when only TLS1.3 is enabled"},
      {"lease persist without checkpoint",
       [](config& c) { c.features.lease_checkpoint_persist = true; }, "requires LeaseCheckpoint"},
      {"persist gate without checkpoint gate",
       [](config& c) { c.feature_gates_text = "LeaseCheckpointPersist=true"; },
       "requires LeaseCheckpoint"},
      {"compact hash check time 0", [](config& c) { c.compact_hash_check_time = duration{0}; },
       "--compact-hash-check-time must be >0"},
      {"v2 and v3 discovery",
       [](config& c) {
         c.discovery_proxy = "http://proxy:3128";
         c.discovery_token = "t";
         c.discovery_endpoints = {"127.0.0.1:2379"};
         c.initial_cluster = "";
       },
       "both v2 discovery settings",
       {.initial_cluster_given = true}},
      {"v3 discovery token alone", [](config& c) { c.discovery_token = std::string("t"); },
       "both --discovery-token and --discovery-endpoints must be set"},
      {"log rotation to stderr", [](config& c) { c.enable_log_rotation = true; },
       "--log-outputs requires a single file path"},
      {"no learners", [](config& c) { c.max_learners = 0; }, "--max-learners must be at least 1"},
      {"tracing rate",
       [](config& c) {
         c.enable_distributed_tracing = true;
         c.distributed_tracing_sampling_rate = 1000001;
       },
       "--distributed-tracing-sampling-rate must be between 0 and 1000000"},
  };
  for (const auto& row : rows) {
    config cfg;
    row.change(cfg);
    auto result = finalized(cfg, row.context);
    ASSERT_FALSE(result.has_value()) << row.what;
    EXPECT_NE(result.error().find(row.message), std::string::npos)
        << row.what << ": got \"" << result.error() << "\"";
  }
}

TEST(Finalize, AcceptsValidVariants) {
  config cfg;
  cfg.listen_client_urls =
      *parse_url_list("http://0.0.0.0:2379,unix://localhost:1234,https://[::]:2381");
  cfg.advertise_client_urls = *parse_url_list("https://node1.example.com:2379");
  cfg.auth_token = "jwt,pub-key=/a.pub,priv-key=/a.key,sign-method=RS256,ttl=10m";
  cfg.auto_compaction_retention = "1h30m";
  cfg.feature_gates_text = "LeaseCheckpoint=true,LeaseCheckpointPersist=true";
  cfg.tls_min_version = tls_version::tls12;
  cfg.tls_max_version = tls_version::tls13;
  cfg.enable_log_rotation = true;
  cfg.log_outputs = {"/var/log/cairn.log"};
  auto result = finalized(cfg, {.listen_client_urls_given_on_command_line = true,
                                .advertise_client_urls_given_on_command_line = true});
  ASSERT_TRUE(result.has_value()) << result.error();
  EXPECT_TRUE(result->features.lease_checkpoint_persist);
}

TEST(Finalize, WarnsAboutUnwiseValues) {
  config cfg;
  cfg.quota_backend_bytes = std::int64_t{9} << 30;
  cfg.max_request_bytes = 11 * 1024 * 1024;
  std::vector<std::string> warnings;
  ASSERT_TRUE(finalize(cfg, {}, warnings).has_value());
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("exceeds the maximum recommended quota of 8 GiB"), std::string::npos);
  EXPECT_NE(warnings[1].find("--max-request-bytes"), std::string::npos);
}

TEST(CompactionRetention, HoursDurationsAndRevisions) {
  using std::chrono::hours;
  using std::chrono::minutes;
  EXPECT_EQ(parse_compaction_retention(compaction_mode::periodic, "0")->period.count(), 0);
  EXPECT_EQ(parse_compaction_retention(compaction_mode::periodic, "")->period.count(), 0);
  EXPECT_EQ(parse_compaction_retention(compaction_mode::periodic, "5")->period, hours(5));
  EXPECT_EQ(parse_compaction_retention(compaction_mode::periodic, "1h30m")->period, minutes(90));
  EXPECT_EQ(parse_compaction_retention(compaction_mode::periodic, "30m")->period, minutes(30));
  EXPECT_EQ(parse_compaction_retention(compaction_mode::revision, "1000")->revisions, 1000);
  EXPECT_FALSE(parse_compaction_retention(compaction_mode::revision, "-1").has_value());
  EXPECT_FALSE(parse_compaction_retention(compaction_mode::periodic, "-1").has_value());
  EXPECT_FALSE(parse_compaction_retention(compaction_mode::periodic, "5x").has_value());
}

TEST(InitialCluster, GroupsUrlsByName) {
  auto members = parse_initial_cluster(
      "a=http://1.1.1.1:2380,b=http://2.2.2.2:2380,,"
      "a=http://1.1.1.2:2380");
  ASSERT_TRUE(members.has_value()) << members.error();
  ASSERT_EQ(members->size(), 2u);
  EXPECT_EQ((*members)[0].name, "a");
  EXPECT_EQ((*members)[0].peer_urls.size(), 2u);
  EXPECT_EQ((*members)[1].peer_urls[0].to_string(), "http://2.2.2.2:2380");
  EXPECT_FALSE(parse_initial_cluster("").has_value());
}

TEST(FeatureGates, NamedGatesAllAlphaAndErrors) {
  feature_gates gates;
  std::vector<std::string> named;
  ASSERT_TRUE(
      apply_feature_gates("InitialCorruptCheck=true, CompactHashCheck = true", gates, &named));
  EXPECT_TRUE(gates.initial_corrupt_check);
  EXPECT_TRUE(gates.compact_hash_check);
  EXPECT_EQ(named.size(), 2u);

  feature_gates all;
  ASSERT_TRUE(apply_feature_gates("AllAlpha=true,LeaseCheckpoint=false", all));
  EXPECT_TRUE(all.initial_corrupt_check);
  EXPECT_TRUE(all.set_member_local_addr);
  EXPECT_FALSE(all.lease_checkpoint);                  // a named gate wins over AllAlpha
  EXPECT_TRUE(all.txn_mode_write_with_shared_buffer);  // beta: untouched by AllAlpha
  ASSERT_TRUE(apply_feature_gates("AllBeta=false", all));
  EXPECT_FALSE(all.txn_mode_write_with_shared_buffer);

  feature_gates untouched;
  EXPECT_EQ(apply_feature_gates("InitialCorruptCheck=true,Bogus=true", untouched).error(),
            "unrecognized feature gate: Bogus");
  EXPECT_FALSE(untouched.initial_corrupt_check);  // nothing applied on error
  EXPECT_EQ(apply_feature_gates("InitialCorruptCheck", untouched).error(),
            "missing bool value for InitialCorruptCheck");
  EXPECT_FALSE(apply_feature_gates("InitialCorruptCheck=maybe", untouched).has_value());
}

}  // namespace
}  // namespace cairn::cmd
