// The command line and ETCD_* variables: Go flag syntax, etcd's environment rules, the 3.6
// spellings and feature gates, and the table's own consistency.
#include "cmd/parse.h"

#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "cmd/flags.h"

namespace cairn::cmd {
namespace {

std::expected<load_result, std::string> load_args(const std::vector<std::string>& args,
                                                  const environment& env = {}) {
  return load(args, env);
}

std::string error_of(const std::vector<std::string>& args, const environment& env = {}) {
  auto result = load_args(args, env);
  if (result) return "(no error)";
  return result.error();
}

// A value the flag accepts: its sample, else its --help default, else one per kind.
std::string sample_value(const flag_spec& spec) {
  if (!spec.sample.empty()) return std::string(spec.sample);
  if (!spec.default_text.empty() && spec.name != "data-dir") return std::string(spec.default_text);
  switch (spec.value.kind) {
    case value_kind::boolean:
      return "true";
    case value_kind::integer:
      return "7";
    case value_kind::duration:
      return "7s";
    case value_kind::text:
      return "some-text";
    case value_kind::choice:
      return std::string(spec.default_text);
    case value_kind::list:
      return "a,b";
  }
  return "";
}

// A value other than the default, for checking that a setting really changed.
std::string other_value(const flag_spec& spec) {
  static const std::map<std::string, std::string, std::less<>> not_default = {
      {"backend-bbolt-freelist-type", "array"},
      {"distributed-tracing-address", "collector:4317"},
      {"distributed-tracing-service-name", "cairn"},
      {"distributed-tracing-instance-id", "member-1"},
      {"log-outputs", "stdout"},
  };
  if (auto it = not_default.find(spec.name); it != not_default.end()) return it->second;
  switch (spec.value.kind) {
    case value_kind::boolean:
      return spec.default_text == "true" ? "false" : "true";
    case value_kind::integer:
      return spec.default_text == "7" ? "8" : "7";
    case value_kind::duration:
      return "7s";
    default:
      return sample_value(spec);
  }
}

TEST(FlagSyntax, GoForms) {
  struct row {
    std::vector<std::string> args;
    std::string (*get)(const config&);
    std::string expected;
  };
  auto name = [](const config& c) { return c.name; };
  auto enable_v2 = [](const config& c) { return std::string(c.enable_v2 ? "true" : "false"); };
  auto pre_vote = [](const config& c) { return std::string(c.pre_vote ? "true" : "false"); };
  const row rows[] = {
      {{"--name=a"}, name, "a"},
      {{"--name", "a"}, name, "a"},
      {{"-name", "a"}, name, "a"},
      {{"-name=a"}, name, "a"},
      {{"--name="}, name, ""},
      {{"--name", "--data-dir"}, name, "--data-dir"},  // Go takes the next argument as is
      {{"--name=a", "--name=b"}, name, "b"},           // the last one wins
      {{"--wal-dir=a=b"}, [](const config& c) { return c.wal_dir; }, "a=b"},
      {{"--enable-v2"}, enable_v2, "true"},
      {{"-enable-v2"}, enable_v2, "true"},
      {{"--enable-v2=true"}, enable_v2, "true"},
      {{"--enable-v2=1"}, enable_v2, "true"},
      {{"--enable-v2=T"}, enable_v2, "true"},
      {{"--enable-v2", "--enable-v2=false"}, enable_v2, "false"},
      {{"--pre-vote=false"}, pre_vote, "false"},
      {{"--pre-vote=F"}, pre_vote, "false"},
      {{"--name=a", "--"}, name, "a"},
  };
  for (const auto& r : rows) {
    auto result = load_args(r.args);
    ASSERT_TRUE(result.has_value()) << r.args[0] << ": " << result.error();
    EXPECT_EQ(r.get(result->cfg), r.expected) << r.args[0];
  }
}

TEST(FlagSyntax, ErrorsAreOneLineNamingTheFlag) {
  struct row {
    std::vector<std::string> args;
    std::string message;
  };
  const row rows[] = {
      {{"--foo"}, "flag provided but not defined: --foo"},
      {{"-foo=1"}, "flag provided but not defined: -foo"},
      {{"--name"}, "flag needs an argument: --name"},
      {{"--snapshot-count=abc"},
       "invalid value \"abc\" for flag --snapshot-count: not an unsigned integer"},
      {{"--snapshot-count", "-1"},
       "invalid value \"-1\" for flag --snapshot-count: not an unsigned integer"},
      {{"--pre-vote=maybe"},
       "invalid boolean value \"maybe\" for --pre-vote: not a boolean (use true or false)"},
      {{"--initial-cluster-state=bogus"},
       "invalid value \"bogus\" for flag --initial-cluster-state: must be one of: new, existing"},
      {{"--auto-compaction-mode=daily"},
       "invalid value \"daily\" for flag --auto-compaction-mode: must be one of: periodic, "
       "revision"},
      {{"--metrics=all"},
       "invalid value \"all\" for flag --metrics: must be one of: basic, extensive"},
      {{"--log-level=loud"},
       "invalid value \"loud\" for flag --log-level: must be one of: debug, info, warn, error, "
       "panic, fatal"},
      {{"--listen-client-urls=foo"},
       "invalid value \"foo\" for flag --listen-client-urls: URL scheme must be http, https, "
       "unix, or unixs: foo"},
      {{"--max-concurrent-streams=4294967296"},
       "invalid value \"4294967296\" for flag --max-concurrent-streams: value out of range"},
      {{"--grpc-keepalive-timeout=5"},
       "invalid value \"5\" for flag --grpc-keepalive-timeout: missing unit in duration (use "
       "ns, us, ms, s, m or h)"},
      {{"--logger=capnslog"},
       "invalid value \"capnslog\" for flag --logger: capnslog was removed in etcd 3.5; the only "
       "logger is zap"},
      {{"--feature-gates=Bogus=true"},
       "invalid value \"Bogus=true\" for flag --feature-gates: unrecognized feature gate: Bogus"},
      {{"---name=a"}, "bad flag syntax: ---name=a"},
      {{"stray"}, "\"stray\" is not a valid flag"},
      {{"--name=a", "stray", "--foo"}, "\"stray\" is not a valid flag"},
      {{"--enable-v2", "false"}, "\"false\" is not a valid flag"},  // booleans never take the next
      {{"--", "--name=a"}, "\"--name=a\" is not a valid flag"},
      {{"gateway", "start"}, "the etcd subcommand \"gateway\" is not supported by Cairn"},
      {{"grpc-proxy"}, "the etcd subcommand \"grpc-proxy\" is not supported by Cairn"},
      {{"--election-timeout=400"},
       "--election-timeout[400ms] should be at least as 5 times as --heartbeat-interval[100ms]"},
      {{"--listen-client-urls=http://127.0.0.1:2379"},
       "--advertise-client-urls is required when --listen-client-urls is set explicitly"},
      {{"--proxy=on"}, "--proxy=on: the v2 proxy is not supported by Cairn (etcd 3.6 removed it)"},
  };
  for (const auto& r : rows) {
    const std::string got = error_of(r.args);
    EXPECT_EQ(got, r.message) << r.args[0];
    EXPECT_EQ(got.find('\n'), std::string::npos);
  }
}

TEST(FlagSyntax, HelpAndVersion) {
  EXPECT_EQ(load_args({"--help"})->what, action::help);
  EXPECT_EQ(load_args({"-h"})->what, action::help);
  EXPECT_EQ(load_args({"-help"})->what, action::help);
  EXPECT_EQ(load_args({"--help", "--foo"})->what, action::help);  // Go stops at -help
  EXPECT_EQ(error_of({"--foo", "--help"}), "flag provided but not defined: --foo");
  EXPECT_EQ(load_args({"--version"})->what, action::version);
  EXPECT_EQ(load_args({"--version=false"})->what, action::run);
  EXPECT_EQ(error_of({"--version", "--foo"}), "flag provided but not defined: --foo");
  EXPECT_EQ(error_of({"--version", "stray"}), "\"stray\" is not a valid flag");
  // --version is answered before the environment and the other settings are checked.
  EXPECT_EQ(load_args({"--name=y", "--version"}, {{"ETCD_NAME", "x"}})->what, action::version);
  EXPECT_EQ(load_args({"--version", "--election-timeout=1"})->what, action::version);
}

TEST(Environment, SetsSettingsLikeFlags) {
  auto result = load_args({}, {{"ETCD_NAME", "x"},
                               {"ETCD_PRE_VOTE", "false"},
                               {"ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL", "5s"},
                               {"ETCD_LISTEN_CLIENT_URLS", "http://127.0.0.1:12379"},
                               {"ETCD_ADVERTISE_CLIENT_URLS", "http://127.0.0.1:12379"}});
  ASSERT_TRUE(result.has_value()) << result.error();
  EXPECT_EQ(result->cfg.name, "x");
  EXPECT_FALSE(result->cfg.pre_vote);
  EXPECT_EQ(result->cfg.watch_progress_notify_interval, std::chrono::seconds(5));
  EXPECT_EQ(result->given.at("name"), origin::env);
  EXPECT_TRUE(result->warnings.empty());
}

TEST(Environment, EveryFlagHasAVariableThatMatchesIt) {
  for (const auto& spec : flag_table()) {
    if (!spec.from_env) continue;
    const std::string value = other_value(spec);
    load_result by_flag;
    ASSERT_TRUE(parse_command_line(
        std::vector<std::string>{"--" + std::string(spec.name) + "=" + value}, by_flag))
        << spec.name << "=" << value;
    load_result by_env;
    const std::string variable = env_name(spec.name);
    ASSERT_TRUE(apply_environment({{variable, value}}, by_env)) << variable << "=" << value;
    EXPECT_EQ(spec.value.get(by_env.cfg), spec.value.get(by_flag.cfg)) << variable;
    EXPECT_EQ(by_env.given.at(std::string(spec.name)), origin::env) << variable;
    EXPECT_TRUE(by_env.warnings.empty()) << variable;
  }
}

TEST(Environment, FlagAndVariableTogetherIsFatal) {
  const std::string conflict =
      "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding command-line "
      "flag (either unset environment variable or disable flag)";
  EXPECT_EQ(error_of({"--name=y"}, {{"ETCD_NAME", "x"}}), conflict);
  EXPECT_EQ(error_of({"--name=y"}, {{"ETCD_NAME", "y"}}), conflict);  // even when they agree
  EXPECT_EQ(error_of({"--name=y"}, {{"ETCD_NAME", ""}}), conflict);   // etcd: set is set
  // A conflict wins over a bad value elsewhere, as in etcd.
  EXPECT_EQ(error_of({"--name=y"}, {{"ETCD_NAME", "x"}, {"ETCD_SNAPSHOT_COUNT", "abc"}}), conflict);
}

TEST(Environment, UnknownVariablesWarnAndOthersAreIgnored) {
  auto result = load_args({}, {{"ETCD_FOO_BAR", "secret-value"},
                               {"ETCD_ROOT_PASSWORD", "hunter2"},
                               {"ETCDCTL_API", "3"},
                               {"ETCDCTL_ENDPOINTS", "x"},
                               {"HOME", "/root"},
                               {"ETCD_NAME", ""}});
  ASSERT_TRUE(result.has_value()) << result.error();
  ASSERT_EQ(result->warnings.size(), 2u);
  EXPECT_EQ(result->warnings[0], "unrecognized environment variable ETCD_FOO_BAR");
  EXPECT_EQ(result->warnings[1], "unrecognized environment variable ETCD_ROOT_PASSWORD");
  EXPECT_EQ(result->cfg.name, "default");  // an empty variable is not a value
  EXPECT_FALSE(result->given.contains("name"));
}

TEST(Environment, BadValueNamesTheVariableAndFlag) {
  EXPECT_EQ(error_of({}, {{"ETCD_SNAPSHOT_COUNT", "abc"}}),
            "invalid value \"abc\" for ETCD_SNAPSHOT_COUNT (--snapshot-count): not an unsigned "
            "integer");
  EXPECT_EQ(error_of({}, {{"ETCD_INITIAL_CLUSTER_STATE", "bogus"}}),
            "invalid value \"bogus\" for ETCD_INITIAL_CLUSTER_STATE (--initial-cluster-state): "
            "must be one of: new, existing");
}

TEST(Environment, SpecialVariables) {
  auto result = load_args({}, {{"ETCD_VERSION", "true"}, {"ETCD_HELP", "1"}});
  ASSERT_TRUE(result.has_value()) << result.error();
  EXPECT_EQ(result->what, action::run);
  EXPECT_EQ(result->warnings,
            (std::vector<std::string>{"unrecognized environment variable ETCD_HELP",
                                      "cannot set special environment variable ETCD_VERSION; "
                                      "ignored"}));
}

TEST(Spellings, EtcdThreeSixNamesSetTheSameSetting) {
  int pairs = 0;
  for (const auto& old_spec : flag_table()) {
    if (old_spec.replaced_by.empty()) continue;
    ++pairs;
    const flag_spec* new_spec = find_flag(old_spec.replaced_by);
    ASSERT_NE(new_spec, nullptr) << old_spec.replaced_by;
    const std::string value = other_value(*new_spec);
    load_result by_old;
    ASSERT_TRUE(parse_command_line(
        std::vector<std::string>{"--" + std::string(old_spec.name) + "=" + value}, by_old));
    load_result by_new;
    ASSERT_TRUE(parse_command_line(
        std::vector<std::string>{"--" + std::string(new_spec->name) + "=" + value}, by_new));
    EXPECT_EQ(new_spec->value.get(by_old.cfg), new_spec->value.get(by_new.cfg)) << old_spec.name;
    EXPECT_NE(new_spec->value.get(by_old.cfg), new_spec->value.get(config{})) << old_spec.name;
    EXPECT_EQ(old_spec.value.get(by_new.cfg), old_spec.value.get(by_old.cfg)) << old_spec.name;
  }
  EXPECT_GE(pairs, 20);
}

TEST(Spellings, BothSpellingsAreAnErrorAsInEtcd36) {
  EXPECT_EQ(error_of({"--experimental-watch-progress-notify-interval=5s",
                      "--watch-progress-notify-interval=5s"}),
            "cannot set --experimental-watch-progress-notify-interval and "
            "--watch-progress-notify-interval at the same time, please use "
            "--watch-progress-notify-interval only");
  EXPECT_EQ(error_of({"--compaction-batch-limit=10"},
                     {{"ETCD_EXPERIMENTAL_COMPACTION_BATCH_LIMIT", "20"}}),
            "cannot set --experimental-compaction-batch-limit and --compaction-batch-limit at the "
            "same time, please use --compaction-batch-limit only");
  EXPECT_EQ(error_of({"--log-output=stdout", "--log-outputs=stderr"}),
            "cannot set --log-output and --log-outputs at the same time, please use "
            "--log-outputs only");
  // Each spelling alone is fine.
  ASSERT_TRUE(load_args({"--watch-progress-notify-interval=5s"}).has_value());
  ASSERT_TRUE(load_args({"--experimental-watch-progress-notify-interval=5s"}).has_value());
}

TEST(FeatureGates, ExperimentalFlagsAndGatesSetTheSameSetting) {
  for (const auto& gate : feature_gate_table()) {
    if (gate.experimental_flag.empty()) continue;
    const feature_gates defaults;
    const std::string flipped = defaults.*gate.field ? "false" : "true";
    auto by_flag = load_args({"--" + std::string(gate.experimental_flag) + "=" + flipped,
                              "--experimental-enable-lease-checkpoint=true"});
    auto by_gate = load_args(
        {"--feature-gates=" + std::string(gate.name) + "=" + flipped + ",LeaseCheckpoint=true"});
    if (gate.name == "LeaseCheckpoint") {
      by_flag = load_args({"--" + std::string(gate.experimental_flag) + "=" + flipped});
      by_gate = load_args({"--feature-gates=" + std::string(gate.name) + "=" + flipped});
    }
    ASSERT_TRUE(by_flag.has_value()) << gate.name << ": " << by_flag.error();
    ASSERT_TRUE(by_gate.has_value()) << gate.name << ": " << by_gate.error();
    EXPECT_EQ(by_flag->cfg.features.*gate.field, flipped == "true") << gate.name;
    EXPECT_EQ(by_gate->cfg.features, by_flag->cfg.features) << gate.name;
  }
}

TEST(FeatureGates, KubeadmSpellings) {
  // kubeadm 1.26-1.33 and 1.34+ ask for the same thing two ways.
  auto old_way = load_args({"--experimental-initial-corrupt-check=true",
                            "--experimental-watch-progress-notify-interval=5s"});
  auto new_way = load_args(
      {"--feature-gates=InitialCorruptCheck=true", "--watch-progress-notify-interval=5s"});
  ASSERT_TRUE(old_way.has_value()) << old_way.error();
  ASSERT_TRUE(new_way.has_value()) << new_way.error();
  EXPECT_TRUE(new_way->cfg.features.initial_corrupt_check);
  EXPECT_EQ(old_way->cfg.features, new_way->cfg.features);
  EXPECT_EQ(old_way->cfg.watch_progress_notify_interval, std::chrono::seconds(5));
  EXPECT_EQ(new_way->cfg.watch_progress_notify_interval, std::chrono::seconds(5));
}

TEST(FeatureGates, FlagAndGateTogetherIsAnError) {
  EXPECT_EQ(error_of({"--experimental-initial-corrupt-check=true",
                      "--feature-gates=InitialCorruptCheck=false"}),
            "cannot specify both flags: --experimental-initial-corrupt-check=true and "
            "--feature-gates=InitialCorruptCheck=false at the same time, please just use "
            "--feature-gates=InitialCorruptCheck=false");
  EXPECT_NE(error_of({"--feature-gates=CompactHashCheck=true"},
                     {{"ETCD_EXPERIMENTAL_COMPACT_HASH_CHECK_ENABLED", "true"}})
                .find("cannot specify both flags"),
            std::string::npos);
  // A gate that only shares a prefix with the flag's gate is no conflict (etcd 3.6 compares
  // substrings and would refuse this).
  EXPECT_TRUE(load_args({"--experimental-enable-lease-checkpoint=true",
                         "--feature-gates=LeaseCheckpointPersist=true"})
                  .has_value());
}

TEST(FeatureGates, RepeatedFlagAccumulates) {
  auto result = load_args(
      {"--feature-gates=InitialCorruptCheck=true", "--feature-gates=CompactHashCheck=true"});
  ASSERT_TRUE(result.has_value()) << result.error();
  EXPECT_TRUE(result->cfg.features.initial_corrupt_check);
  EXPECT_TRUE(result->cfg.features.compact_hash_check);
}

TEST(ConfigFileChoice, FileWinsAndIgnoredInputsAreNamed) {
  const std::string path = ::testing::TempDir() + "/cairn_parse_test.yml";
  {
    std::ofstream out(path);
    out << "name: from-file\nsnapshot-count: 42\n";
  }
  auto by_flag = load_args({"--config-file", path, "--name=flag-name"},
                           {{"ETCD_SNAPSHOT_COUNT", "7"}, {"ETCDCTL_API", "3"}});
  ASSERT_TRUE(by_flag.has_value()) << by_flag.error();
  EXPECT_EQ(by_flag->cfg.name, "from-file");
  EXPECT_EQ(by_flag->cfg.snapshot_count, 42u);
  EXPECT_EQ(by_flag->cfg.config_file, path);
  EXPECT_EQ(by_flag->given.at("name"), origin::file);
  EXPECT_EQ(
      by_flag->warnings,
      (std::vector<std::string>{"--name is ignored because a config file is given",
                                "ETCD_SNAPSHOT_COUNT is ignored because a config file is given"}));

  // ETCD_CONFIG_FILE works too, and then a flag and a variable for the same setting do not
  // conflict: neither is read.
  auto by_env = load_args({"--name=y"}, {{"ETCD_CONFIG_FILE", path}, {"ETCD_NAME", "x"}});
  ASSERT_TRUE(by_env.has_value()) << by_env.error();
  EXPECT_EQ(by_env->cfg.name, "from-file");
  EXPECT_EQ(by_env->warnings.size(), 2u);

  EXPECT_NE(error_of({"--config-file=/nonexistent/cairn.yml"}).find("cannot read it"),
            std::string::npos);
}

TEST(InertFlags, AreAcceptedWithAWarning) {
  auto result = load_args({"--enable-pprof", "--v", "--backend-bbolt-freelist-type=array"});
  ASSERT_TRUE(result.has_value()) << result.error();
  EXPECT_EQ(result->warnings,
            (std::vector<std::string>{
                "--backend-bbolt-freelist-type (flag) has no effect in Cairn; accepted for etcd "
                "compatibility",
                "--enable-pprof (flag) has no effect in Cairn; accepted for etcd compatibility",
                "flag --v is no longer supported; ignoring it"}));
}

TEST(Table, IsConsistent) {
  std::set<std::string> names;
  std::set<std::string> variables;
  std::set<std::string> keys;
  for (const auto& spec : flag_table()) {
    EXPECT_TRUE(names.insert(std::string(spec.name)).second) << "duplicate --" << spec.name;
    if (spec.from_env) {
      EXPECT_TRUE(variables.insert(env_name(spec.name)).second) << env_name(spec.name);
    }
    if (!file_key(spec).empty()) {
      EXPECT_TRUE(keys.insert(std::string(file_key(spec))).second) << file_key(spec);
    }
    if (spec.group != flag_group::ignored) {
      EXPECT_FALSE(spec.help.empty()) << spec.name;
    }
    if (!spec.replaced_by.empty()) {
      const flag_spec* target = find_flag(spec.replaced_by);
      ASSERT_NE(target, nullptr) << spec.name << " → " << spec.replaced_by;
      EXPECT_TRUE(target->replaced_by.empty()) << spec.replaced_by;
      EXPECT_EQ(target->value.kind, spec.value.kind) << spec.name;
    }
  }
  for (const auto& gate : feature_gate_table()) {
    if (gate.experimental_flag.empty()) continue;
    const flag_spec* flag = find_flag(gate.experimental_flag);
    ASSERT_NE(flag, nullptr) << gate.experimental_flag;
    EXPECT_EQ(flag->value.kind, value_kind::boolean) << gate.experimental_flag;
  }
  EXPECT_EQ(env_name("experimental-watch-progress-notify-interval"),
            "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL");
}

TEST(Table, HelpDefaultsAreTheRealDefaults) {
  // What --help shows as the default must read back as the default, except where the text
  // describes a derived value.
  const std::set<std::string> described = {"data-dir", "initial-cluster", "backend-batch-interval"};
  const config defaults;
  for (const auto& spec : flag_table()) {
    if (spec.group == flag_group::ignored || spec.group == flag_group::usage ||
        described.contains(std::string(spec.name))) {
      continue;
    }
    config cfg;
    ASSERT_TRUE(spec.value.set(cfg, spec.default_text).has_value())
        << spec.name << " '" << spec.default_text << "'";
    EXPECT_EQ(spec.value.get(cfg), spec.value.get(defaults)) << spec.name;
  }
}

}  // namespace
}  // namespace cairn::cmd
