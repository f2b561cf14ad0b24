// The real etcdctl 3.4.23 against a `cairn` member for the maintenance commands that need the
// Snapshot, MoveLeader and HashKV RPCs, with the real etcd 3.4.23 as the oracle of what etcdctl
// prints.
//
// Planted bug SNAPSHOT_NO_SHA256 (v3rpc/services.cc) is caught by
// EtcdctlMaintenance.SnapshotSaveLikeEtcd: the saved file then lacks its SHA-256 trailer.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "support/e2e.h"

namespace cairn {
namespace {

e2e::run_result ctl(const std::string& endpoint, std::vector<std::string> args) {
  std::vector<std::string> argv = {e2e::etcdctl_binary().string(), "--endpoints=" + endpoint};
  argv.insert(argv.end(), args.begin(), args.end());
  return e2e::run(argv, {{"ETCDCTL_API", "3"}});
}

std::string error_line(const std::string& err) {
  const auto at = err.find("Error: ");
  if (at == std::string::npos) return "";
  return err.substr(at, err.find('\n', at) - at);
}

// The "msg" of each of etcdctl's JSON log lines, in order (the lines also carry time stamps,
// ports, paths and sizes, which differ between any two runs).
std::vector<std::string> log_messages(const std::string& err) {
  std::vector<std::string> out;
  static const std::regex msg(R"re("msg":"([^"]*)")re");
  for (std::sregex_iterator it(err.begin(), err.end(), msg), end; it != end; ++it) {
    out.push_back((*it)[1]);
  }
  return out;
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

// A snapshot file as etcd's restore expects it: the db, then the SHA-256 of the db.
void expect_db_then_sha256(const std::string& file, const std::string& who) {
  ASSERT_GT(file.size(), 32u) << who;
  // etcd's restore finds the trailer by the size: whole 512-byte multiples of db, plus 32.
  EXPECT_EQ(file.size() % 512, 32u) << who;
  const std::string_view db = std::string_view(file).substr(0, file.size() - 32);
  EXPECT_EQ(file.substr(file.size() - 32), sha256(db)) << who;
}

std::string member_id(const std::string& endpoint) {
  const auto r = ctl(endpoint, {"member", "list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out.substr(0, r.out.find(','));
}

class EtcdctlMaintenance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { etcd_ = new e2e::etcd_server(); }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  static e2e::etcd_server* etcd_;

  e2e::temp_dir dir_{"cairn-etcdctl-maint"};
  e2e::cairn_server cairn_{dir_.path() / "data"};
};
e2e::etcd_server* EtcdctlMaintenance::etcd_ = nullptr;

TEST_F(EtcdctlMaintenance, SnapshotSaveLikeEtcd) {
  for (const auto& ep : {etcd_->endpoint(), cairn_.endpoint()}) {
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(ctl(ep, {"put", "k" + std::to_string(i), std::string(500, 'v')}).exit_code, 0);
    }
  }
  std::filesystem::create_directories(dir_.path() / "etcd");
  std::filesystem::create_directories(dir_.path() / "cairn");
  const auto etcd_file = dir_.path() / "etcd" / "snap.db";
  const auto cairn_file = dir_.path() / "cairn" / "snap.db";
  const auto want = ctl(etcd_->endpoint(), {"snapshot", "save", etcd_file.string()});
  const auto got = ctl(cairn_.endpoint(), {"snapshot", "save", cairn_file.string()});
  ASSERT_EQ(want.exit_code, 0) << want.err;
  ASSERT_EQ(got.exit_code, 0) << got.err << cairn_.proc().log();
  EXPECT_EQ(got.out, "Snapshot saved at " + cairn_file.string() + "\n");
  EXPECT_EQ(want.out, "Snapshot saved at " + etcd_file.string() + "\n");
  EXPECT_EQ(log_messages(got.err), log_messages(want.err)) << got.err << "\n---\n" << want.err;
  EXPECT_FALSE(log_messages(got.err).empty());
  EXPECT_FALSE(std::filesystem::exists(cairn_file.string() + ".part"));

  // Both files are the db bytes followed by their SHA-256.
  expect_db_then_sha256(read_all(etcd_file), "etcd");
  const std::string ours = read_all(cairn_file);
  expect_db_then_sha256(ours, "cairn");
  // Ours is an LMDB file, which etcdctl's snapshot status cannot read (docs/compatibility.md):
  // LMDB's magic number sits in the first meta page (after the 16-byte page header).
  ASSERT_GT(ours.size(), 32u);
  std::uint32_t magic = 0;
  std::memcpy(&magic, ours.data() + 16, 4);
  EXPECT_EQ(magic, 0xBEEFC0DEu);
  const auto status = ctl(cairn_.endpoint(), {"snapshot", "status", cairn_file.string()});
  EXPECT_NE(status.exit_code, 0) << status.out;
}

TEST_F(EtcdctlMaintenance, MoveLeaderLikeEtcd) {
  for (const auto& ep : {etcd_->endpoint(), cairn_.endpoint()}) {
    const std::string id = member_id(ep);
    // etcdctl prints ids with %x: an id with a leading zero digit has 15 (one in sixteen).
    ASSERT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{1,16}"))) << id;
    // To the leader itself: done at once.
    auto r = ctl(ep, {"move-leader", id});
    EXPECT_EQ(r.exit_code, 0) << ep << r.err;
    EXPECT_EQ(r.out, "Leadership transferred from " + id + " to " + id + "\n") << ep;
    // To a member that does not exist.
    r = ctl(ep, {"move-leader", "1234"});
    EXPECT_EQ(r.exit_code, 1) << ep;
    EXPECT_EQ(r.out, "") << ep;
    EXPECT_EQ(error_line(r.err), "Error: etcdserver: bad leader transferee") << ep << r.err;
  }
}

TEST_F(EtcdctlMaintenance, EndpointHashKv) {
  ASSERT_EQ(ctl(cairn_.endpoint(), {"put", "h", "1"}).exit_code, 0);
  const auto first = ctl(cairn_.endpoint(), {"endpoint", "hashkv"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(std::regex_match(first.out, std::regex(cairn_.endpoint() + ", [0-9]+\n")))
      << first.out;
  EXPECT_EQ(ctl(cairn_.endpoint(), {"endpoint", "hashkv"}).out, first.out);
  ASSERT_EQ(ctl(cairn_.endpoint(), {"put", "h", "2"}).exit_code, 0);
  EXPECT_NE(ctl(cairn_.endpoint(), {"endpoint", "hashkv"}).out, first.out);
  const auto json = ctl(cairn_.endpoint(), {"endpoint", "hashkv", "-w", "json"});
  EXPECT_NE(json.out.find("\"compact_revision\":-1"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"revision\":3"), std::string::npos) << json.out;
}

}  // namespace
}  // namespace cairn
