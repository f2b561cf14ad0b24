// Every flag the real etcd lists in `etcd --help` (Debian's 3.4.23, unpacked under
// $CAIRN_TEST_ETCD_ROOT or ~/.cache/cairn/etcd-3.4.23) is in Cairn's table, parses with a
// plausible value, and appears in `cairn --help`. A flag dropped from the table (see
// CAIRN_PLANTED_BUG_CMD_DROP_FLAG in flags.cc) fails this test.
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "cmd/flags.h"
#include "cmd/parse.h"
#include "support/e2e.h"

namespace cairn::cmd {
namespace {

struct etcd_help {
  std::set<std::string> flags;                  // every --flag mentioned anywhere
  std::map<std::string, std::string> defaults;  // "  --flag 'value'" lines
};

etcd_help read_etcd_help() {
  const auto binary = e2e::etcd_binary();
  if (!std::filesystem::exists(binary)) {
    ADD_FAILURE() << "the real etcd is not unpacked at " << binary
                  << " (set CAIRN_TEST_ETCD_ROOT or run scripts/install-deps.sh)";
    return {};
  }
  const auto r = e2e::run({binary.string(), "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // etcd prints the usage part on stderr and the flags on stdout.
  const std::string text = r.err + "\n" + r.out;
  etcd_help help;
  const std::regex mention(R"((?:^|[^A-Za-z0-9-])--([a-z0-9][a-z0-9.-]*[a-z0-9]))");
  for (std::sregex_iterator it(text.begin(), text.end(), mention), end; it != end; ++it) {
    help.flags.insert((*it)[1]);
  }
  const std::regex flag_line(R"(^  --([a-z0-9.-]+) '?([^']*)'?$)");
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, flag_line)) help.defaults[m[1]] = m[2];
  }
  return help;
}

// Defaults etcd 3.4.23's --help prints that are not values Cairn takes, and why.
const std::map<std::string, std::string> not_a_value = {
    {"max-concurrent-streams", "'math.MaxUint32' is Go source text, not a number"},
    {"logger", "capnslog was the 3.4 default; etcd 3.5, which Cairn behaves as, removed it"},
};

std::string plausible_value(const flag_spec& spec, const etcd_help& help) {
  const auto shown = help.defaults.find(std::string(spec.name));
  if (shown != help.defaults.end() && !shown->second.empty() &&
      !not_a_value.contains(std::string(spec.name))) {
    return shown->second;
  }
  if (!spec.sample.empty()) return std::string(spec.sample);
  if (!spec.default_text.empty()) return std::string(spec.default_text);
  switch (spec.value.kind) {
    case value_kind::boolean:
      return "true";
    case value_kind::integer:
      return "3";
    case value_kind::duration:
      return "3s";
    default:
      return "cairn-test";
  }
}

TEST(EtcdFlags, EveryEtcdFlagIsInTheTableAndParses) {
  const etcd_help help = read_etcd_help();
  ASSERT_GE(help.flags.size(), 80u) << "could not read etcd's --help";
  for (const auto& name : help.flags) {
    const flag_spec* spec = find_flag(name);
    ASSERT_NE(spec, nullptr) << "--" << name << " (in etcd --help) is not in Cairn's flag table";
    const std::string value = plausible_value(*spec, help);
    load_result result;
    const std::vector<std::string> args = {"--" + name + "=" + value};
    auto parsed = parse_command_line(args, result);
    ASSERT_TRUE(parsed.has_value()) << args[0] << ": " << parsed.error();
    if (name == "help") {
      EXPECT_EQ(result.what, action::help);
    } else {
      EXPECT_TRUE(result.given.contains(name)) << args[0];
    }
  }
}

TEST(EtcdFlags, EtcdDefaultsCairnRefusesAreTheDocumentedOnes) {
  const etcd_help help = read_etcd_help();
  for (const auto& [name, why] : not_a_value) {
    const auto shown = help.defaults.find(name);
    ASSERT_NE(shown, help.defaults.end()) << name;
    load_result result;
    const std::vector<std::string> args = {"--" + name + "=" + shown->second};
    auto parsed = parse_command_line(args, result);
    ASSERT_FALSE(parsed.has_value()) << args[0] << " was accepted; drop it from not_a_value";
    EXPECT_NE(parsed.error().find("--" + name), std::string::npos) << parsed.error();
  }
}

TEST(EtcdFlags, CairnHelpListsEveryEtcdFlag) {
  const etcd_help help = read_etcd_help();
  ASSERT_FALSE(help.flags.empty());
  const auto r = e2e::run({e2e::cairn_binary().string(), "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& name : help.flags) {
    const bool listed = r.out.find("\n  --" + name + " ") != std::string::npos ||
                        r.out.find("\n  --" + name + "\n") != std::string::npos ||
                        r.out.find("\n  cairn --" + name) != std::string::npos ||
                        (name == "help" && r.out.find("cairn -h | --help") != std::string::npos);
    EXPECT_TRUE(listed) << "--" << name << " (in etcd --help) is missing from cairn --help";
  }
}

}  // namespace
}  // namespace cairn::cmd
