// The binary's logs: zap-style JSON lines by default (level, ts, msg, and caller plus fields on
// structured lines), --log-format=console, --log-outputs to a file and to stdout, --log-level;
// one line for the start, the leader, a compaction, a defrag and an alarm; and a stored value
// never appears in them.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "support/e2e.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

e2e::run_result ctl(const std::string& ep, std::vector<std::string> args) {
  std::vector<std::string> argv = {e2e::etcdctl_binary().string(), "--endpoints=" + ep};
  argv.insert(argv.end(), args.begin(), args.end());
  return e2e::run(argv, {{"ETCDCTL_API", "3"}});
}

TEST(Logs, JsonLinesToAFileWithTheEventsAndNoValues) {
  e2e::temp_dir dir("cairn-logs");
  const auto file = dir.path() / "cairn.log";
  e2e::cairn_server cairn(dir.path() / "data",
                          {"--log-outputs=" + file.string(), "--quota-backend-bytes=262144"});
  const std::string ep = cairn.endpoint();
  ASSERT_EQ(ctl(ep, {"put", "k", "s3cr3t-value-never-logged"}).exit_code, 0);
  ASSERT_EQ(ctl(ep, {"compaction", "2"}).exit_code, 0);
  ASSERT_EQ(ctl(ep, {"defrag"}).exit_code, 0);
  const std::string big(6000, 'v');
  for (int i = 0; i < 2000 && ctl(ep, {"put", "f" + std::to_string(i % 50), big}).exit_code == 0;
       ++i) {
  }
  std::this_thread::sleep_for(300ms);
  const std::string log = read(file);
  std::istringstream lines(log);
  int n = 0;
  static const std::regex line_re(
      R"re(\{"level":"(debug|info|warn|error|fatal)","ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",("caller":"[a-z0-9_/]+\.cc:\d+",)?"msg":".*\})re");
  for (std::string l; std::getline(lines, l);) {
    EXPECT_TRUE(std::regex_match(l, line_re)) << l;
    ++n;
  }
  EXPECT_GT(n, 5);
  for (const char* event :
       {"\"msg\":\"starting member", "\"msg\":\"elected leader\"",
        "\"msg\":\"scheduled compaction\",\"compact-revision\":2", "defragmented the db",
        "\"msg\":\"alarm raised\",\"alarm\":\"NOSPACE\""}) {
    EXPECT_NE(log.find(event), std::string::npos) << event << "\n" << log;
  }
  EXPECT_EQ(log.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(log.find(big.substr(0, 100)), std::string::npos);
}

TEST(Logs, ConsoleFormatOnStdoutAndTheLevel) {
  e2e::temp_dir dir("cairn-logs");
  {
    e2e::cairn_server cairn(dir.path() / "a", {"--log-format=console", "--log-outputs=stdout"});
    std::this_thread::sleep_for(200ms);
    const std::string log = cairn.proc().log();
    std::regex elected(
        R"re(\d{4}-\d\d-\d\dT[\d:.]+Z	INFO	etcdserver/server\.cc:\d+	elected leader	\{"local-member-id":"[0-9a-f]+")re");
    EXPECT_TRUE(std::regex_search(log, elected)) << log;
  }
  {
    e2e::cairn_server cairn(dir.path() / "b", {"--log-level=warn"});
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(cairn.proc().log().find("elected leader"), std::string::npos) << cairn.proc().log();
  }
}

}  // namespace
}  // namespace cairn
