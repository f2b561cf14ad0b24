// etcd's YAML config file: flag-named keys, the nested TLS maps, and the value forms etcd
// writes (integer nanoseconds, YAML lists, YAML 1.1 booleans).
#include "cmd/config_file.h"

#include <gtest/gtest.h>

#include "cmd/parse.h"

namespace cairn::cmd {
namespace {

struct file_result {
  config cfg;
  std::map<std::string, origin> given;
  std::vector<std::string> warnings;
};

std::expected<file_result, std::string> read(std::string_view yaml) {
  file_result r;
  if (auto ok = read_config_text(yaml, "test.yml", r.cfg, r.given, r.warnings); !ok) {
    return std::unexpected(ok.error());
  }
  return r;
}

// Shaped like etcd's own sample file (etcd.conf.yml.sample), which uses these spellings.
constexpr std::string_view etcd_sample = R"(
name: 'infra1'
data-dir: /var/lib/etcd/infra1
wal-dir:
snapshot-count: 10000
heartbeat-interval: 100
election-timeout: 1000
quota-backend-bytes: 0
listen-peer-urls: http://10.0.0.1:2380
listen-client-urls: http://10.0.0.1:2379,http://127.0.0.1:2379
max-snapshots: 5
max-wals: 5
cors:
initial-advertise-peer-urls: http://10.0.0.1:2380
advertise-client-urls: http://10.0.0.1:2379
discovery:
discovery-fallback: 'proxy'
discovery-proxy:
discovery-srv:
initial-cluster: infra1=http://10.0.0.1:2380,infra2=http://10.0.0.2:2380
initial-cluster-token: 'etcd-cluster'
initial-cluster-state: 'new'
strict-reconfig-check: false
enable-v2: true
enable-pprof: true
proxy: 'off'
proxy-failure-wait: 5000
proxy-refresh-interval: 30000
proxy-dial-timeout: 1000
proxy-write-timeout: 5000
proxy-read-timeout: 0
client-transport-security:
  cert-file: /etc/etcd/server.crt
  key-file: /etc/etcd/server.key
  client-cert-auth: true
  trusted-ca-file: /etc/etcd/ca.crt
  auto-tls: false
peer-transport-security:
  cert-file: /etc/etcd/peer.crt
  key-file: /etc/etcd/peer.key
  client-cert-auth: yes
  trusted-ca-file: /etc/etcd/ca.crt
  auto-tls: false
  allowed-cn: [member1, member2]
self-signed-cert-validity: 1
log-level: debug
logger: zap
log-outputs: [stderr]
force-new-cluster: false
auto-compaction-mode: periodic
auto-compaction-retention: "1"
cipher-suites: [
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
]
tls-min-version: 'TLS1.2'
experimental-watch-progress-notify-interval: 5000000000
)";

TEST(ConfigFile, ReadsEtcdsKeys) {
  auto r = read(etcd_sample);
  ASSERT_TRUE(r.has_value()) << r.error();
  const config& c = r->cfg;
  EXPECT_EQ(c.name, "infra1");
  EXPECT_EQ(c.data_dir, "/var/lib/etcd/infra1");
  EXPECT_EQ(c.wal_dir, "");
  EXPECT_EQ(c.snapshot_count, 10000u);
  EXPECT_EQ(format_url_list(c.listen_client_urls), "http://10.0.0.1:2379,http://127.0.0.1:2379");
  EXPECT_EQ(c.initial_cluster, "infra1=http://10.0.0.1:2380,infra2=http://10.0.0.2:2380");
  EXPECT_FALSE(c.strict_reconfig_check);
  EXPECT_TRUE(c.enable_v2);
  EXPECT_EQ(c.cert_file, "/etc/etcd/server.crt");
  EXPECT_EQ(c.key_file, "/etc/etcd/server.key");
  EXPECT_TRUE(c.client_cert_auth);
  EXPECT_EQ(c.trusted_ca_file, "/etc/etcd/ca.crt");
  EXPECT_EQ(c.peer_cert_file, "/etc/etcd/peer.crt");
  EXPECT_TRUE(c.peer_client_cert_auth);  // YAML 1.1 "yes", as etcd's YAML reader takes it
  EXPECT_EQ(c.peer_cert_allowed_cn, (std::vector<std::string>{"member1", "member2"}));
  EXPECT_EQ(c.level, log_level::debug);
  EXPECT_EQ(c.log_outputs, (std::vector<std::string>{"stderr"}));
  EXPECT_EQ(c.auto_compaction_retention, "1");
  EXPECT_EQ(c.cipher_suites.size(), 2u);
  EXPECT_EQ(c.watch_progress_notify_interval, std::chrono::seconds(5));  // nanoseconds in file
  EXPECT_EQ(r->given.at("cert-file"), origin::file);
  EXPECT_EQ(r->given.at("peer-cert-allowed-cn"), origin::file);
  EXPECT_FALSE(r->given.contains("wal-dir"));  // an empty value keeps the default
  EXPECT_TRUE(r->warnings.empty()) << r->warnings[0];
}

TEST(ConfigFile, EveryFileKeyReachesItsSetting) {
  // Table-driven: each flag's file key, nested where etcd nests it, sets what the flag sets.
  for (const auto& spec : flag_table()) {
    const auto key = file_key(spec);
    if (key.empty()) continue;
    std::string value = spec.value.kind == value_kind::boolean ? "true" : std::string(spec.sample);
    if (value.empty()) {
      value = spec.value.kind == value_kind::duration  ? "7s"
              : spec.value.kind == value_kind::integer ? "7"
                                                       : std::string(spec.default_text);
    }
    if (value.empty()) value = "x";
    std::string yaml;
    if (const auto dot = key.find('.'); dot != std::string_view::npos) {
      yaml = std::string(key.substr(0, dot)) + ":\n  " + std::string(key.substr(dot + 1)) + ": '" +
             value + "'\n";
    } else {
      yaml = std::string(key) + ": '" + value + "'\n";
    }
    auto by_file = read(yaml);
    ASSERT_TRUE(by_file.has_value()) << yaml << by_file.error();
    EXPECT_TRUE(by_file->given.contains(std::string(spec.name))) << yaml;
    config by_flag;
    ASSERT_TRUE(spec.value.set(by_flag, value).has_value()) << spec.name;
    EXPECT_EQ(spec.value.get(by_file->cfg), spec.value.get(by_flag)) << yaml;
  }
}

TEST(ConfigFile, DurationsAsNanosecondsOrGoDurations) {
  auto r = read(
      "grpc-keepalive-timeout: 30000000000\n"
      "watch-progress-notify-interval: 5s\n"
      "experimental-corrupt-check-time: 0\n");
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->cfg.grpc_keepalive_timeout, std::chrono::seconds(30));
  EXPECT_EQ(r->cfg.watch_progress_notify_interval, std::chrono::seconds(5));
  EXPECT_EQ(r->cfg.corrupt_check_time.count(), 0);
}

TEST(ConfigFile, ListsAsSequencesOrCommaStrings) {
  auto r = read(
      "log-outputs: stdout,stderr\nhost-whitelist: [b.example, a.example]\n"
      "listen-metrics-urls: [http://127.0.0.1:2381]\n");
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->cfg.log_outputs, (std::vector<std::string>{"stderr", "stdout"}));
  EXPECT_EQ(r->cfg.host_whitelist, (std::vector<std::string>{"a.example", "b.example"}));
  EXPECT_EQ(format_url_list(r->cfg.listen_metrics_urls), "http://127.0.0.1:2381");
}

TEST(ConfigFile, SpellingsAndGates) {
  auto r = read(
      "experimental-snapshot-catch-up-entries: 100\n"
      "feature-gates: InitialCorruptCheck=true\n"
      "experimental-compaction-batch-limit: 50\n");
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->cfg.snapshot_catchup_entries, 100u);  // etcd 3.5's odd key spelling
  EXPECT_EQ(r->cfg.compaction_batch_limit, 50);
  EXPECT_EQ(r->cfg.feature_gates_text, "InitialCorruptCheck=true");
}

TEST(ConfigFile, WarnsAboutKeysEtcdWouldIgnore) {
  auto r = read("bogus-key: 1\ncert-file: /x.crt\nclient-transport-security:\n  nope: 1\n");
  ASSERT_TRUE(r.has_value()) << r.error();
  EXPECT_EQ(r->cfg.cert_file, "");
  EXPECT_EQ(r->warnings,
            (std::vector<std::string>{
                "config file test.yml: unknown key \"bogus-key\" ignored",
                "config file test.yml: key \"cert-file\" is ignored at the top level (etcd "
                "ignores it too); put it under client-transport-security as \"cert-file\"",
                "config file test.yml: unknown key \"client-transport-security.nope\" ignored"}));
}

TEST(ConfigFile, ErrorsNameTheFileLineAndKey) {
  EXPECT_EQ(read("name: a\nsnapshot-count: lots\n").error(),
            "config file test.yml: line 2: key \"snapshot-count\": invalid value \"lots\": not "
            "an unsigned integer");
  EXPECT_EQ(read("initial-cluster-state: maybe\n").error(),
            "config file test.yml: line 1: key \"initial-cluster-state\": invalid value "
            "\"maybe\": must be one of: new, existing");
  EXPECT_EQ(read("name: [a, b]\n").error(),
            "config file test.yml: line 1: key \"name\": expects a single value, not a list");
  EXPECT_EQ(read("client-transport-security: yes\n").error(),
            "config file test.yml: line 1: key \"client-transport-security\": expected a map of "
            "TLS settings");
  EXPECT_EQ(read("- a\n- b\n").error(),
            "config file test.yml: line 1: expected a map of settings at the top level");
  auto syntax = read("name: [unclosed\n");
  ASSERT_FALSE(syntax.has_value());
  EXPECT_EQ(syntax.error().rfind("config file test.yml: line ", 0), 0u) << syntax.error();
  EXPECT_TRUE(read("").has_value());  // an empty file sets nothing
}

TEST(ConfigFile, EtcdThreeSixRulesApplyToTheFile) {
  const std::string path = ::testing::TempDir() + "/cairn_config_file_test.yml";
  auto write = [&](std::string_view text) {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  };
  const std::vector<std::string> args = {"--config-file=" + path};
  write("watch-progress-notify-interval: 5s\nexperimental-watch-progress-notify-interval: 6s\n");
  EXPECT_EQ(load(args, {}).error(),
            "cannot set --experimental-watch-progress-notify-interval and "
            "--watch-progress-notify-interval at the same time, please use "
            "--watch-progress-notify-interval only");
  write("experimental-initial-corrupt-check: true\nfeature-gates: InitialCorruptCheck=true\n");
  EXPECT_NE(load(args, {}).error().find("cannot specify both flags"), std::string::npos);
  // Listening without advertising is a command-line rule only (etcd keeps the default
  // advertise URL for a file).
  write("listen-client-urls: http://127.0.0.1:12379\n");
  auto ok = load(args, {});
  ASSERT_TRUE(ok.has_value()) << ok.error();
  EXPECT_EQ(format_url_list(ok->cfg.advertise_client_urls), "http://localhost:2379");
  write("initial-cluster-state: ''\nname: m\n");
  ok = load(args, {});
  ASSERT_TRUE(ok.has_value()) << ok.error();
  EXPECT_EQ(ok->cfg.initial_cluster_state, cluster_state::new_cluster);
  EXPECT_EQ(ok->cfg.initial_cluster, "m=http://localhost:2380");
}

}  // namespace
}  // namespace cairn::cmd
