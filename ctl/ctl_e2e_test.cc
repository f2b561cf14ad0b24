// cairnctl against a live `cairn`: snapshot save then status (revision and key count as the
// server says), a snapshot saved by the real etcdctl from Cairn read by cairnctl, truncated and
// bit-flipped files refused, endpoint health and status (simple, json, table, --cluster),
// member list, alarm list and disarm under NOSPACE, defrag and compaction.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "support/e2e.h"

namespace cairn {
namespace {

std::filesystem::path ctl_binary() {
  return e2e::cairn_binary().parent_path().parent_path().parent_path() / "ctl" / "cairnctl";
}

e2e::run_result ctl(const std::string& endpoint, std::vector<std::string> args) {
  std::vector<std::string> argv = {ctl_binary().string(), "--endpoints=" + endpoint};
  argv.insert(argv.end(), args.begin(), args.end());
  return e2e::run(argv);
}

e2e::run_result etcdctl(const std::string& endpoint, std::vector<std::string> args) {
  std::vector<std::string> argv = {e2e::etcdctl_binary().string(), "--endpoints=" + endpoint};
  argv.insert(argv.end(), args.begin(), args.end());
  return e2e::run(argv, {{"ETCDCTL_API", "3"}});
}

TEST(Cairnctl, SnapshotSaveStatusAndDamagedFiles) {
  e2e::temp_dir dir("cairnctl");
  e2e::cairn_server cairn(dir.path() / "data");
  const std::string ep = cairn.endpoint();
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(etcdctl(ep, {"put", "k" + std::to_string(i), "v"}).exit_code, 0);
  ASSERT_EQ(etcdctl(ep, {"del", "k3"}).exit_code, 0);  // revision 22, 19 keys

  const auto file = (dir.path() / "snap.db").string();
  auto save = ctl(ep, {"snapshot", "save", file});
  ASSERT_EQ(save.exit_code, 0) << save.out << save.err;
  EXPECT_NE(save.out.find("revision 22, 19 keys"), std::string::npos) << save.out;
  EXPECT_FALSE(std::filesystem::exists(file + ".part"));

  auto status = ctl(ep, {"snapshot", "status", file});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(status.out, m, std::regex(R"(([0-9a-f]+), 22, 19, (.+)\n)")))
      << status.out;
  auto json = ctl(ep, {"snapshot", "status", file, "-w", "json"});
  EXPECT_NE(json.out.find("\"revision\":22,\"totalKey\":19"), std::string::npos) << json.out;
  auto table = ctl(ep, {"-w", "table", "snapshot", "status", file});
  EXPECT_NE(table.out.find("   HASH   | REVISION | TOTAL KEYS |"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("| 22 "), std::string::npos) << table.out;

  // A snapshot saved by the real etcdctl from Cairn is the same kind of file.
  const auto by_etcdctl = (dir.path() / "etcdctl.db").string();
  ASSERT_EQ(etcdctl(ep, {"snapshot", "save", by_etcdctl}).exit_code, 0);
  auto other = ctl(ep, {"snapshot", "status", by_etcdctl});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(other.out.find(", 22, 19, "), std::string::npos) << other.out;

  // Damaged files are refused with a clear message, never read as something else.
  const auto size = std::filesystem::file_size(file);
  const auto truncated = (dir.path() / "truncated.db").string();
  std::filesystem::copy_file(file, truncated);
  std::filesystem::resize_file(truncated, size - 1000);
  auto t = ctl(ep, {"snapshot", "status", truncated});
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_NE(t.err.find("Error: "), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("not a Cairn snapshot"), std::string::npos) << t.err;
  const auto flipped = (dir.path() / "flipped.db").string();
  std::filesystem::copy_file(file, flipped);
  {
    std::fstream f(flipped, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(size / 2));
    c = static_cast<char>(c ^ 0x40);
    f.write(&c, 1);
  }
  auto fl = ctl(ep, {"snapshot", "status", flipped});
  EXPECT_EQ(fl.exit_code, 1);
  EXPECT_NE(fl.err.find("snapshot file integrity check failed"), std::string::npos) << fl.err;
}

TEST(Cairnctl, EndpointsMembersAlarmsDefragCompaction) {
  e2e::temp_dir dir("cairnctl");
  e2e::cairn_server cairn(dir.path() / "data", {"--quota-backend-bytes=262144"});
  const std::string ep = cairn.endpoint();
  auto h = ctl(ep, {"endpoint", "health"});
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_NE(h.out.find(ep + " is healthy: successfully committed proposal: took = "),
            std::string::npos)
      << h.out;
  auto hc = ctl(ep, {"endpoint", "health", "--cluster"});
  EXPECT_NE(hc.out.find("is healthy"), std::string::npos) << hc.out << hc.err;
  auto s = ctl(ep, {"endpoint", "status"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find(ep + ", "), std::string::npos);
  EXPECT_NE(s.out.find(", 3.5.24, "), std::string::npos) << s.out;
  EXPECT_NE(s.out.find(", true, false, "), std::string::npos) << s.out;  // leader, not learner
  auto sj = ctl(ep, {"-w", "json", "endpoint", "status"});
  EXPECT_NE(sj.out.find("\"version\":\"3.5.24\""), std::string::npos) << sj.out;
  auto st = ctl(ep, {"-w", "table", "endpoint", "status"});
  EXPECT_NE(st.out.find("| IS LEADER |"), std::string::npos) << st.out;
  auto ml = ctl(ep, {"member", "list"});
  EXPECT_NE(ml.out.find(", started, e2e, http://"), std::string::npos) << ml.out;

  // Fill the quota: NOSPACE, then health says so, alarm list shows it, disarm after freeing.
  const std::string value(6000, 'v');
  int code = 0;
  for (int i = 0; i < 2000 && code == 0; ++i) {
    code = etcdctl(ep, {"put", "f" + std::to_string(i % 50), value}).exit_code;
  }
  ASSERT_NE(code, 0);
  auto unhealthy = ctl(ep, {"endpoint", "health"});
  EXPECT_EQ(unhealthy.exit_code, 1);
  EXPECT_NE(unhealthy.out.find("is unhealthy: failed to commit proposal: Active Alarm(s): NOSPACE"),
            std::string::npos)
      << unhealthy.out;
  auto al = ctl(ep, {"alarm", "list"});
  EXPECT_NE(al.out.find(" alarm:NOSPACE"), std::string::npos) << al.out;
  ASSERT_EQ(etcdctl(ep, {"del", "f", "--prefix"}).exit_code, 0);
  auto rev = etcdctl(ep, {"endpoint", "status", "-w", "json"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(rev.out, m, std::regex(R"re("revision":(\d+))re")));
  auto comp = ctl(ep, {"compaction", "--physical", m[1]});
  EXPECT_EQ(comp.exit_code, 0) << comp.err;
  EXPECT_EQ(comp.out, "compacted revision " + m[1].str() + "\n");
  auto df = ctl(ep, {"defrag"});
  EXPECT_EQ(df.out, "Finished defragmenting etcd member[" + ep + "]\n") << df.err;
  auto dis = ctl(ep, {"alarm", "disarm"});
  EXPECT_NE(dis.out.find(" alarm:NOSPACE"), std::string::npos) << dis.out;
  EXPECT_EQ(ctl(ep, {"alarm", "list"}).out, "");
  EXPECT_EQ(ctl(ep, {"endpoint", "health"}).exit_code, 0);
  EXPECT_EQ(etcdctl(ep, {"put", "after", "1"}).exit_code, 0);
  // An unreachable endpoint is an error with etcdctl's wording and exit code.
  auto down = ctl("127.0.0.1:1", {"--dial-timeout=1", "endpoint", "health"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.out.find("is unhealthy"), std::string::npos) << down.out;
}

// Where cairnctl and etcdctl do the same thing, they print the same against the same server.
TEST(Cairnctl, SameOutputAsEtcdctlForHashkvMoveLeaderAndMemberChanges) {
  e2e::temp_dir dir("cairnctl");
  e2e::cairn_server cairn(dir.path() / "data");
  const std::string ep = cairn.endpoint();
  ASSERT_EQ(etcdctl(ep, {"put", "a", "1"}).exit_code, 0);
  auto status = etcdctl(ep, {"endpoint", "status", "-w", "json"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(status.out, m, std::regex(R"re("member_id":(\d+))re")));
  char self[32];
  std::snprintf(self, sizeof self, "%llx", std::stoull(m[1]));
  auto error_line = [](const std::string& err) {
    const auto at = err.find("Error: ");
    return at == std::string::npos ? std::string() : err.substr(at, err.find('\n', at) - at);
  };
  const std::vector<std::vector<std::string>> cases = {
      {"endpoint", "hashkv"},        {"endpoint", "hashkv", "--rev=2"},
      {"move-leader", self},         {"member", "remove", "1234"},
      {"member", "promote", "1234"}, {"member", "update", "1234", "--peer-urls=http://127.0.0.1:9"},
      {"member", "promote", self},   {"member", "remove", "zz"},
  };
  for (const auto& c : cases) {
    auto want = etcdctl(ep, c);
    auto got = ctl(ep, c);
    std::string what;
    for (const auto& a : c) what += a + " ";
    EXPECT_EQ(got.exit_code, want.exit_code) << what << got.err << want.err;
    EXPECT_EQ(got.out, want.out) << what;
    EXPECT_EQ(error_line(got.err), error_line(want.err)) << what;
  }
}

}  // namespace
}  // namespace cairn
