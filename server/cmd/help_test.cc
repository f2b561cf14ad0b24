// `cairn --help` and `--version` come from the table: every flag listed, its status shown.
#include "cmd/help.h"

#include <gtest/gtest.h>

#include <set>
#include <string_view>

#include "base/version.h"
#include "cmd/flags.h"

namespace cairn::cmd {
namespace {

// The line that introduces a flag in --help, up to the end of the line.
std::string flag_line(const std::string& help, std::string_view name) {
  const std::string start = "\n  --" + std::string(name);
  std::size_t at = 0;
  while ((at = help.find(start, at)) != std::string::npos) {
    const std::size_t after = at + start.size();
    if (after < help.size() && (help[after] == ' ' || help[after] == '\n')) {
      return help.substr(at + 1, help.find('\n', at + 1) - at - 1);
    }
    at = after;
  }
  return "";
}

TEST(Help, ListsEveryFlagWithItsStatus) {
  const std::string help = help_text();
  for (const auto& spec : flag_table()) {
    if (spec.group == flag_group::usage) {
      const std::string shown =
          spec.name == "help" ? "cairn -h | --help" : "cairn --" + std::string(spec.name);
      EXPECT_NE(help.find(shown), std::string::npos) << spec.name;
      continue;
    }
    const std::string line = flag_line(help, spec.name);
    ASSERT_FALSE(line.empty()) << "--" << spec.name << " missing from --help";
    const auto label = status_label(spec.status);
    if (label.empty()) {
      EXPECT_EQ(line.find("[not acted on yet]"), std::string::npos) << line;
      EXPECT_EQ(line.find("[no effect in Cairn]"), std::string::npos) << line;
    } else {
      EXPECT_NE(line.find(label), std::string::npos) << line;
    }
    if (spec.group != flag_group::ignored) {
      std::string quoted_default = "'";
      quoted_default.append(spec.default_text).append("'");
      EXPECT_NE(line.find(quoted_default), std::string::npos) << line;
    }
  }
}

TEST(Help, ActedOnIsHonest) {
  // Exactly what this module does itself, plus what run() hands to the node and the listener
  // (cmd/run.cc). A flag flipped without wiring, or wired without flipping, fails here.
  const std::set<std::string_view> acted = {
      "help", "version", "config-file", "log-level", "debug",
      // run.cc → etcdserver::server_config
      "name", "data-dir", "snapshot-count", "heartbeat-interval", "election-timeout",
      "quota-backend-bytes", "backend-batch-interval", "backend-batch-limit", "max-request-bytes",
      "initial-cluster-token", "auto-compaction-retention", "auto-compaction-mode",
      "experimental-snapshot-catchup-entries", "snapshot-catchup-entries",
      // run.cc → v3rpc::listener_options and the services
      "listen-client-urls", "listen-client-http-urls", "listen-metrics-urls",
      "max-concurrent-streams", "grpc-keepalive-min-time", "grpc-keepalive-interval",
      "grpc-keepalive-timeout", "socket-reuse-port", "max-txn-ops", "advertise-client-urls",
      "initial-advertise-peer-urls", "strict-reconfig-check",
      // run.cc → etcdserver::server_config (the initial members) and transport::peer_listener
      "initial-cluster", "listen-peer-urls", "initial-cluster-state",
      // run.cc → v3rpc::watch_options
      "experimental-watch-progress-notify-interval", "watch-progress-notify-interval",
      // run.cc → etcdserver::server_config (the lessor's checkpoints)
      "experimental-enable-lease-checkpoint", "experimental-enable-lease-checkpoint-persist",
      // run.cc → the corruption checks (etcdserver::check_initial_hash_kv, corrupt_check_loop)
      "experimental-initial-corrupt-check", "experimental-corrupt-check-time", "corrupt-check-time",
      // run.cc → http::with_access_control on the client URLs' HTTP side
      "cors", "host-whitelist",
      // run.cc → v3rpc::gateway
      "enable-grpc-gateway",
      // run.cc → metrics::exporter_options
      "metrics",
      // start.cc → the logger
      "log-outputs", "log-format",
      // run.cc → tls::tls_info for the client listener and the peer transport
      "cert-file", "key-file", "client-cert-auth", "client-crl-file",
      "client-cert-allowed-hostname", "trusted-ca-file", "auto-tls", "peer-cert-file",
      "peer-key-file", "peer-client-cert-file", "peer-client-key-file", "peer-client-cert-auth",
      "peer-trusted-ca-file", "peer-cert-allowed-cn", "peer-cert-allowed-hostname", "peer-auto-tls",
      "peer-crl-file", "self-signed-cert-validity", "cipher-suites", "tls-min-version",
      "tls-max-version",
      // run.cc → auth::store_options (bcrypt slots, token TTL, JWT) and v3rpc::auth_service
      "bcrypt-cost", "auth-token-ttl", "auth-token",
      // run.cc → v2http::install_keys
      "enable-v2"};
  std::set<std::string_view> seen;
  for (const auto& spec : flag_table()) {
    if (spec.status != flag_status::acted_on) continue;
    seen.insert(spec.name);
    EXPECT_TRUE(acted.contains(spec.name)) << "--" << spec.name << " claims to be acted on";
  }
  for (const auto& name : acted) EXPECT_TRUE(seen.contains(name)) << "--" << name;
}

TEST(Help, GroupsAndSpellings) {
  const std::string help = help_text();
  const std::size_t member = help.find("\nMember:\n");
  const std::size_t clustering = help.find("\nClustering:\n");
  const std::size_t security = help.find("\nSecurity:\n");
  ASSERT_NE(member, std::string::npos);
  ASSERT_NE(clustering, std::string::npos);
  EXPECT_LT(member, clustering);
  EXPECT_LT(clustering, security);
  EXPECT_LT(help.find("\n  --name 'default'"), clustering);
  EXPECT_NE(help.find("  --data-dir '${name}.cairn'"), std::string::npos);
  EXPECT_NE(help.find("  --experimental-watch-progress-notify-interval '10m'\n"
                      "    Period of progress notifications to watchers that asked for them.\n"
                      "    newer name: --watch-progress-notify-interval (the same setting; giving "
                      "both is an error)\n"),
            std::string::npos);
  EXPECT_NE(help.find("    etcd 3.6: --feature-gates=InitialCorruptCheck=true|false\n"),
            std::string::npos);
  EXPECT_NE(help.find("      InitialCorruptCheck=true|false (alpha, default false; 3.5 flag "
                      "--experimental-initial-corrupt-check)"),
            std::string::npos);
  EXPECT_NE(help.find("ETCD_SOME_FLAG"), std::string::npos);
}

TEST(Version, NamesCairnAndTheEtcdItBehavesAs) {
  const std::string text = version_text();
  EXPECT_EQ(text.rfind("cairn Version: " + std::string(base::cairn_version) + " (behaves as etcd " +
                           std::string(base::etcd_version) + ")\n",
                       0),
            0u)
      << text;
  EXPECT_NE(text.find("\netcd Version: " + std::string(base::etcd_version) + "\n"),
            std::string::npos);
  EXPECT_NE(text.find("\nAPI Version: 3.5\n"), std::string::npos);
  EXPECT_NE(text.find("\nOS/Arch: linux/"), std::string::npos);
}

}  // namespace
}  // namespace cairn::cmd
