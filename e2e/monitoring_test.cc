// The dashboard and the alert rules in docs/monitoring/ against a live member: every metric
// they use is exported; promtool checks the rules and runs their unit tests; promtool lints a
// live /metrics, where only findings about names that come from etcd are allowed (etcd's own
// names break some of Prometheus' conventions, and dashboards depend on those names).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "support/e2e.h"

namespace cairn {
namespace {

std::filesystem::path promtool() {
  const char* cache = std::getenv("CAIRN_CACHE_DIR");
  const std::string root = cache ? cache : std::string(std::getenv("HOME")) + "/.cache/cairn";
  return std::filesystem::path(root) / "prometheus/usr/bin/promtool";
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Family names of a scrape, with the series names histograms add.
std::set<std::string> exported(const std::string& text) {
  std::set<std::string> names;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream t(line.substr(7));
    std::string name, type;
    t >> name >> type;
    names.insert(name);
    if (type == "histogram") {
      for (const char* s : {"_bucket", "_sum", "_count"}) names.insert(name + s);
    }
  }
  return names;
}

std::set<std::string> used(const std::string& text) {
  std::set<std::string> names;
  static const std::regex re(R"(\b(?:etcd|grpc|process|cairn|os)_[a-z0-9_]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    names.insert(it->str());
  }
  return names;
}

std::string scrape(const std::string& endpoint) {
  return e2e::run({"/usr/bin/curl", "-s", "http://" + endpoint + "/metrics"}).out;
}

class Monitoring : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(promtool().c_str(), X_OK) != 0) {
      GTEST_FAIL() << promtool() << " is missing: run scripts/install-deps.sh";
    }
  }
};

TEST_F(Monitoring, EveryMetricTheDashboardAndAlertsUseIsExported) {
  e2e::temp_dir dir("cairn-monitoring");
  e2e::cairn_server cairn(dir.path() / "data", {"--metrics=extensive"});
  e2e::run({e2e::etcdctl_binary().string(), "--endpoints=" + cairn.endpoint(), "put", "a", "b"},
           {{"ETCDCTL_API", "3"}});
  const std::string text = scrape(cairn.endpoint());
  const auto have = exported(text);
  std::set<std::string> labels;
  static const std::regex label_re(R"re([{,]([a-z_]+)=")re");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), label_re);
       it != std::sregex_iterator(); ++it) {
    labels.insert((*it)[1]);
  }
  ASSERT_GT(have.size(), 40u);
  const auto docs = e2e::source_dir() / "docs" / "monitoring";
  for (const char* file : {"cairn-dashboard.json", "cairn-alerts.yaml"}) {
    const auto names = used(read(docs / file));
    EXPECT_GT(names.size(), 10u) << file;
    for (const auto& n : names) {
      if (labels.contains(n)) continue;  // grpc_method and friends are label names
      EXPECT_TRUE(have.contains(n)) << file << " uses " << n;
    }
  }
}

TEST_F(Monitoring, PromtoolChecksAndTestsTheRules) {
  const auto docs = e2e::source_dir() / "docs" / "monitoring";
  auto check =
      e2e::run({promtool().string(), "check", "rules", (docs / "cairn-alerts.yaml").string()});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("SUCCESS: 12 rules found"), std::string::npos) << check.out;
  // promtool resolves rule_files relative to the test file.
  auto test =
      e2e::run({promtool().string(), "test", "rules", (docs / "alerts-test.yaml").string()});
  EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
  EXPECT_NE(test.out.find("SUCCESS"), std::string::npos) << test.out;
}

TEST_F(Monitoring, MetricsPassPromtoolsLintButForEtcdsOwnNames) {
  e2e::temp_dir dir("cairn-monitoring");
  e2e::cairn_server cairn(dir.path() / "data");
  const auto file = dir.path() / "metrics.txt";
  { std::ofstream(file) << scrape(cairn.endpoint()); }
  auto r = e2e::run(
      {"/bin/sh", "-c", "'" + promtool().string() + "' check metrics < '" + file.string() + "'"});
  EXPECT_EQ(r.err.find("error while linting"), std::string::npos) << r.err;
  std::istringstream lines(r.out + r.err);
  int findings = 0;
  for (std::string l; std::getline(lines, l);) {
    if (l.empty()) continue;
    ++findings;
    // "<name> <problem>": our own names (cairn_*) and the process family must be clean.
    const std::string name = l.substr(0, l.find(' '));
    EXPECT_TRUE(name.rfind("etcd_", 0) == 0 || name.rfind("grpc_", 0) == 0 ||
                name.rfind("os_", 0) == 0)
        << l;
  }
  std::cout << findings << " lint findings, all on etcd's names\n";
}

}  // namespace
}  // namespace cairn
