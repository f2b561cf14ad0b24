// The `cairn` executable as users meet it: exit codes, one-line errors, warnings on stderr,
// --version and --help on stdout. Where etcd fails the same command line, the real etcd
// 3.4.23 runs beside it and both must fail for the same reason.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "base/version.h"
#include "support/e2e.h"

namespace cairn::cmd {
namespace {

e2e::run_result cairn(const std::vector<std::string>& args, const e2e::env_changes& env = {}) {
  std::vector<std::string> argv = {e2e::cairn_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return e2e::run(argv, env);
}

int count_lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST(CairnBinary, Version) {
  const auto r = cairn({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out.rfind("cairn Version: " + std::string(base::cairn_version) +
                            " (behaves as etcd " + std::string(base::etcd_version) + ")\n",
                        0),
            0u)
      << r.out;
  EXPECT_NE(r.out.find("etcd Version: " + std::string(base::etcd_version)), std::string::npos);
}

TEST(CairnBinary, Help) {
  const auto r = cairn({"-h"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("Usage:", 0), 0u);
  EXPECT_NE(r.out.find("[not acted on yet]"), std::string::npos);
}

TEST(CairnBinary, BadCommandLinesFailWithOneLine) {
  struct row {
    std::vector<std::string> args;
    e2e::env_changes env;
    std::string line;
  };
  const row rows[] = {
      {{"--foo"}, {}, "cairn: flag provided but not defined: --foo\n"},
      {{"--snapshot-count=abc"},
       {},
       "cairn: invalid value \"abc\" for flag --snapshot-count: not an unsigned integer\n"},
      {{"--name", "y"},
       {{"ETCD_NAME", "x"}},
       "cairn: conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding "
       "command-line flag (either unset environment variable or disable flag)\n"},
      {{},
       {{"ETCD_PRE_VOTE", "maybe"}},
       "cairn: invalid value \"maybe\" for ETCD_PRE_VOTE (--pre-vote): not a boolean (use true "
       "or false)\n"},
      {{"stray"}, {}, "cairn: \"stray\" is not a valid flag\n"},
      {{"--election-timeout=100"},
       {},
       "cairn: --election-timeout[100ms] should be at least as 5 times as "
       "--heartbeat-interval[100ms]\n"},
  };
  for (const auto& r : rows) {
    const auto got = cairn(r.args, r.env);
    EXPECT_EQ(got.exit_code, 1) << r.line;
    EXPECT_EQ(got.err, r.line);
    EXPECT_EQ(got.out, "");
  }
}

// A data dir the member cannot use (a regular file where the directory should be): the
// configuration is valid, the member starts and fails at once, before binding any port.
std::string unusable_data_dir(const e2e::temp_dir& dir) {
  const auto path = dir.path() / "not-a-dir";
  std::ofstream(path) << "x";
  return path.string();
}

TEST(CairnBinary, ValidConfigurationReachesTheMember) {
  e2e::temp_dir dir;
  const auto data = unusable_data_dir(dir);
  const auto r = cairn(
      {"--name", "m1", "--data-dir", data, "--experimental-watch-progress-notify-interval=5s"},
      {{"ETCD_FOO_BAR", "1"}, {"ETCD_SNAPSHOT_COUNT", "10000"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("cairn: warning: unrecognized environment variable ETCD_FOO_BAR\n"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("--snapshot-count=10000 (environment)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--experimental-watch-progress-notify-interval=5s (flag)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("cannot start the member"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::is_regular_file(data));  // left as it was
}

TEST(CairnBinary, LogLevelIsActedOn) {
  e2e::temp_dir dir;
  const auto data = "--data-dir=" + unusable_data_dir(dir);
  const auto quiet = cairn({"--log-level=error", data});
  EXPECT_EQ(quiet.exit_code, 1);
  EXPECT_EQ(quiet.err.find("\"level\":\"info\""), std::string::npos) << quiet.err;
  EXPECT_NE(quiet.err.find("\"level\":\"error\""), std::string::npos) << quiet.err;
  const auto loud = cairn({"--log-level=debug", data});
  EXPECT_NE(loud.err.find("\"level\":\"debug\""), std::string::npos);
  const auto by_debug_flag = cairn({"--debug", data});
  EXPECT_NE(by_debug_flag.err.find("\"level\":\"debug\""), std::string::npos);
}

TEST(CairnBinary, ConfigFileFromTheEnvironment) {
  e2e::temp_dir dir;
  const auto path = dir.path() / "cairn.yml";
  std::ofstream(path) << "name: from-file\nlog-level: debug\ndata-dir: " << unusable_data_dir(dir)
                      << "\n";
  const auto r = cairn({"--name=ignored"}, {{"ETCD_CONFIG_FILE", path.string()}});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("cairn: warning: --name is ignored because a config file is given"),
            std::string::npos);
  EXPECT_NE(r.err.find("--name=from-file (config file)"), std::string::npos) << r.err;
}

// The real etcd fails these command lines too, for the same reason. etcd exits 2 for a flag
// it cannot parse and 1 for the rest; Cairn exits 1 for every bad command line.
TEST(CairnBinary, FailsWhereEtcdFails) {
  e2e::temp_dir dir;
  const std::vector<std::string> safe = {"--data-dir",
                                         (dir.path() / "etcd").string(),
                                         "--listen-client-urls",
                                         "http://127.0.0.1:" + std::to_string(e2e::free_port()),
                                         "--advertise-client-urls",
                                         "http://127.0.0.1:1",
                                         "--listen-peer-urls",
                                         "http://127.0.0.1:" + std::to_string(e2e::free_port())};
  struct row {
    std::vector<std::string> args;
    e2e::env_changes env;
    std::string etcd_says;
    std::string cairn_says;
  };
  const row rows[] = {
      {{"--foo"},
       {},
       "flag provided but not defined: -foo",
       "flag provided but not defined: --foo"},
      {{"--snapshot-count=abc"},
       {},
       "invalid value \"abc\" for flag -snapshot-count",
       "invalid value \"abc\" for flag --snapshot-count"},
      {{"--initial-cluster-state=bogus"},
       {},
       "invalid value \"bogus\" for flag -initial-cluster-state",
       "invalid value \"bogus\" for flag --initial-cluster-state"},
      {{"--name=y"},
       {{"ETCD_NAME", "x"}},
       "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line "
       "flag",
       "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line "
       "flag"},
      {{},
       {{"ETCD_SNAPSHOT_COUNT", "abc"}},
       "invalid value \"abc\" for ETCD_SNAPSHOT_COUNT",
       "invalid value \"abc\" for ETCD_SNAPSHOT_COUNT"},
      {{"stray"}, {}, "is not a valid flag", "is not a valid flag"},
      {{"--election-timeout=100"},
       {},
       "--election-timeout[100ms] should be at least as 5 times",
       "--election-timeout[100ms] should be at least as 5 times"},
  };
  for (const auto& r : rows) {
    std::vector<std::string> etcd_argv = {e2e::etcd_binary().string()};
    etcd_argv.insert(etcd_argv.end(), safe.begin(), safe.end());
    etcd_argv.insert(etcd_argv.end(), r.args.begin(), r.args.end());
    const auto etcd = e2e::run(etcd_argv, r.env, std::chrono::seconds(20));
    EXPECT_TRUE(etcd.exit_code == 1 || etcd.exit_code == 2)
        << r.etcd_says << ": " << etcd.exit_code;
    EXPECT_NE(etcd.err.find(r.etcd_says), std::string::npos) << etcd.err;

    std::vector<std::string> cairn_args = safe;
    cairn_args.insert(cairn_args.end(), r.args.begin(), r.args.end());
    const auto ours = cairn(cairn_args, r.env);
    EXPECT_EQ(ours.exit_code, 1) << r.cairn_says;
    EXPECT_NE(ours.err.find(r.cairn_says), std::string::npos) << ours.err;
    EXPECT_EQ(count_lines(ours.err), 1) << ours.err;
  }
}

}  // namespace
}  // namespace cairn::cmd
