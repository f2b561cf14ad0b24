// The real etcdctl 3.4.23 against a `cairn` member: the KV, maintenance and cluster commands a
// user runs first, their output, their errors, and the data surviving a SIGKILL.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/e2e.h"

namespace cairn {
namespace {

class cairn_member {
 public:
  explicit cairn_member(const std::filesystem::path& data_dir,
                        std::vector<std::string> extra_flags = {})
      : client_port_(e2e::free_port()),
        peer_port_(e2e::free_port()),
        data_dir_(data_dir),
        extra_flags_(std::move(extra_flags)) {
    start();
  }
  void start() {
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    proc_.reset();
    std::vector<std::string> argv = {e2e::cairn_binary().string(),
                                     "--name=e2e",
                                     "--data-dir=" + data_dir_.string(),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=e2e=" + peer};
    argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
    proc_.emplace(argv, data_dir_.parent_path() / ("cairn-" + std::to_string(starts_++) + ".log"));
    ASSERT_TRUE(proc_->wait_for_port(client_port_)) << proc_->log();
  }
  void kill() { proc_->kill_now(); }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }
  e2e::process& proc() { return *proc_; }

 private:
  int client_port_;
  int peer_port_;
  std::filesystem::path data_dir_;
  std::vector<std::string> extra_flags_;
  int starts_ = 0;
  std::optional<e2e::process> proc_;
};

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

class EtcdctlKv : public ::testing::Test {
 protected:
  e2e::temp_dir dir_{"cairn-etcdctl"};
  cairn_member member_{dir_.path() / "data"};
  std::string ep() const { return member_.endpoint(); }
};

TEST_F(EtcdctlKv, PutGetDelete) {
  auto r = ctl(ep(), {"put", "foo", "bar"});
  ASSERT_EQ(r.exit_code, 0) << r.err << member_.proc().log();
  EXPECT_EQ(r.out, "OK\n");
  ASSERT_EQ(ctl(ep(), {"put", "foo2", "bar2"}).exit_code, 0);
  ASSERT_EQ(ctl(ep(), {"put", "zoo", "z"}).exit_code, 0);

  EXPECT_EQ(ctl(ep(), {"get", "foo"}).out, "foo\nbar\n");
  EXPECT_EQ(ctl(ep(), {"get", "missing"}).out, "");
  EXPECT_EQ(ctl(ep(), {"get", "foo", "--prefix"}).out, "foo\nbar\nfoo2\nbar2\n");
  EXPECT_EQ(ctl(ep(), {"get", "foo", "--prefix", "--keys-only"}).out, "foo\n\nfoo2\n\n");
  EXPECT_EQ(ctl(ep(), {"get", "", "--prefix", "--limit=1"}).out, "foo\nbar\n");
  // foo was written at revision 2; overwrite and read the old one back.
  ASSERT_EQ(ctl(ep(), {"put", "foo", "new"}).exit_code, 0);
  EXPECT_EQ(ctl(ep(), {"get", "foo", "--rev=2"}).out, "foo\nbar\n");
  EXPECT_EQ(ctl(ep(), {"get", "foo"}).out, "foo\nnew\n");

  r = ctl(ep(), {"get", "foo", "-w", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Keys and values are base64 in etcdctl's JSON: "foo" is Zm9v, "new" is bmV3.
  EXPECT_NE(r.out.find("\"key\":\"Zm9v\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"value\":\"bmV3\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"revision\":5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"create_revision\":2,\"mod_revision\":5,\"version\":2"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"count\":1"), std::string::npos) << r.out;

  r = ctl(ep(), {"del", "foo", "--prev-kv"});
  EXPECT_EQ(r.out, "1\nfoo\nnew\n") << r.err;
  EXPECT_EQ(ctl(ep(), {"del", "foo"}).out, "0\n");
  EXPECT_EQ(ctl(ep(), {"del", "", "--prefix"}).out, "2\n");
}

TEST_F(EtcdctlKv, EmptyKeyIsRefused) {
  const auto r = ctl(ep(), {"put", "", "v"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("etcdserver: key is not provided"), std::string::npos) << r.err;
}

TEST_F(EtcdctlKv, Txn) {
  ASSERT_EQ(ctl(ep(), {"put", "k", "v1"}).exit_code, 0);
  const auto script = dir_.path() / "txn.txt";
  // Compares, blank line, success ops, blank line, failure ops.
  std::ofstream(script) << "value(\"k\") = \"v1\"\n\nput k v2\nget k\n\nput k failed\n\n";
  const std::string cmd = e2e::etcdctl_binary().string() + " --endpoints=" + ep() +
                          " txn --interactive=false < " + script.string();
  auto r = e2e::run({"/bin/sh", "-c", cmd}, {{"ETCDCTL_API", "3"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SUCCESS\n\nOK\n\nk\nv2\n");
  r = e2e::run({"/bin/sh", "-c", cmd}, {{"ETCDCTL_API", "3"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "FAILURE\n\nOK\n");
  EXPECT_EQ(ctl(ep(), {"get", "k"}).out, "k\nfailed\n");

  // A key written twice in one branch.
  std::ofstream(script, std::ios::trunc) << "\nput a 1\nput a 2\n\n\n";
  r = e2e::run({"/bin/sh", "-c", cmd}, {{"ETCDCTL_API", "3"}});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("etcdserver: duplicate key given in txn request"), std::string::npos)
      << r.err;
}

TEST_F(EtcdctlKv, Compaction) {
  for (int i = 0; i < 4; ++i) ASSERT_EQ(ctl(ep(), {"put", "c", std::to_string(i)}).exit_code, 0);
  // Revisions 2..5; compact at 4.
  auto r = ctl(ep(), {"compaction", "4"});
  EXPECT_EQ(r.out, "compacted revision 4\n") << r.err;
  r = ctl(ep(), {"get", "c", "--rev=3"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("etcdserver: mvcc: required revision has been compacted"), std::string::npos)
      << r.err;
  EXPECT_EQ(ctl(ep(), {"get", "c", "--rev=4"}).out, "c\n2\n");
  r = ctl(ep(), {"get", "c", "--rev=100"});
  EXPECT_NE(r.err.find("etcdserver: mvcc: required revision is a future revision"),
            std::string::npos)
      << r.err;
}

TEST_F(EtcdctlKv, EndpointAndMembers) {
  auto r = ctl(ep(), {"endpoint", "status", "-w", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"version\":\"3.5.24\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"dbSize\":"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"raftTerm\":"), std::string::npos) << r.out;

  r = ctl(ep(), {"endpoint", "health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // etcdctl 3.4 prints health on stderr.
  EXPECT_NE((r.out + r.err).find(ep() + " is healthy: successfully committed proposal"),
            std::string::npos)
      << r.out << r.err;

  r = ctl(ep(), {"member", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(", started, e2e, http://127.0.0.1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", http://" + ep() + ", false\n"), std::string::npos) << r.out;

  // Status's leader is the member itself, as the member list names it.
  r = ctl(ep(), {"endpoint", "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto id = ctl(ep(), {"member", "list"}).out.substr(0, 16);
  EXPECT_NE(r.out.find(id.substr(0, id.find(','))), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3.5.24"), std::string::npos) << r.out;
}

// A file system that stops taking writes, made without root (this machine cannot mount a small
// one) by a file size limit on the running member: every write past 4 KiB in any of its files
// fails with EFBIG, as a full disk fails it with ENOSPC. Puts get etcd's NOSPACE error,
// serializable gets go on; once files may grow, puts succeed again, and after a SIGKILL every
// acknowledged put is there and no refused one.
TEST_F(EtcdctlKv, AFileSystemThatStopsTakingWritesRefusesPutsAndResumes) {
  const std::string big(2000, 'v');
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(ctl(ep(), {"put", "k" + std::to_string(i), big}).exit_code, 0);
  }
  rlimit old_limit{};
  ASSERT_EQ(::prlimit(member_.proc().pid(), RLIMIT_FSIZE, nullptr, &old_limit), 0);
  rlimit limit = old_limit;
  limit.rlim_cur = 4096;
  ASSERT_EQ(::prlimit(member_.proc().pid(), RLIMIT_FSIZE, &limit, nullptr), 0);
  // The first put may wait for the disk (its entry is being saved) and time out; the ones
  // after it are refused at once.
  auto waiting = ctl(ep(), {"--command-timeout=2s", "put", "waiting", big});
  EXPECT_NE(waiting.exit_code, 0) << "a put succeeded on a file system that takes no writes";
  auto refused = ctl(ep(), {"--command-timeout=2s", "put", "refused", big});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_EQ(error_line(refused.err), "Error: etcdserver: mvcc: database space exceeded");
  auto read = ctl(ep(), {"get", "k3", "--consistency=s", "--print-value-only"});
  EXPECT_EQ(read.out, big + "\n") << read.err;

  ASSERT_EQ(::prlimit(member_.proc().pid(), RLIMIT_FSIZE, &old_limit, nullptr), 0);
  e2e::run_result after;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
       std::chrono::steady_clock::now() < until;) {
    after = ctl(ep(), {"--command-timeout=2s", "put", "after", "x"});
    if (after.exit_code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(after.exit_code, 0) << after.err << member_.proc().log();

  member_.kill();
  member_.start();
  auto keys = ctl(ep(), {"get", "", "--prefix", "--keys-only"});
  ASSERT_EQ(keys.exit_code, 0) << keys.err;
  std::string want = "after\n\n";
  for (int i = 0; i < 10; ++i) want += "k" + std::to_string(i) + "\n\n";
  // The put that waited went in once the disk took it: it was saved, so it was applied.
  if (keys.out.find("waiting") != std::string::npos) want += "waiting\n\n";
  EXPECT_EQ(keys.out, want) << member_.proc().log();
}

TEST_F(EtcdctlKv, SigkillKeepsTheData) {
  ASSERT_EQ(ctl(ep(), {"put", "durable", "yes"}).exit_code, 0);
  ASSERT_EQ(ctl(ep(), {"put", "durable2", "also"}).exit_code, 0);
  member_.kill();
  member_.start();
  auto r = ctl(ep(), {"get", "durable", "--prefix"});
  EXPECT_EQ(r.out, "durable\nyes\ndurable2\nalso\n") << r.err << member_.proc().log();
  r = ctl(ep(), {"put", "after", "x", "-w", "json"});
  EXPECT_NE(r.out.find("\"revision\":4"), std::string::npos) << r.out;
}

TEST(EtcdctlQuota, NoSpaceAlarmAndDisarm) {
  e2e::temp_dir dir{"cairn-etcdctl"};
  cairn_member m(dir.path() / "data", {"--quota-backend-bytes=200000"});
  // One argument may hold at most 128 KiB, so fill the quota with several puts.
  const std::string big(100000, 'x');
  e2e::run_result r;
  int written = 0;
  for (; written < 10; ++written) {
    r = ctl(m.endpoint(), {"put", "k" + std::to_string(written), big});
    if (r.exit_code != 0) break;
  }
  ASSERT_LT(written, 10) << "the quota never refused a put";
  EXPECT_GE(written, 1);
  EXPECT_NE(r.err.find("etcdserver: mvcc: database space exceeded"), std::string::npos) << r.err;
  r = ctl(m.endpoint(), {"alarm", "list"});
  EXPECT_NE(r.out.find("alarm:NOSPACE"), std::string::npos) << r.out << r.err;
  r = ctl(m.endpoint(), {"endpoint", "status", "-w", "json"});
  EXPECT_NE(r.out.find("alarm:NOSPACE "), std::string::npos) << r.out;
  // Free the space, then disarm: writes work again.
  ASSERT_EQ(ctl(m.endpoint(), {"del", "k", "--prefix"}).exit_code, 0);
  const auto rev = ctl(m.endpoint(), {"get", "k", "-w", "json"}).out;
  const auto at = rev.find("\"revision\":");
  ASSERT_NE(at, std::string::npos) << rev;
  const auto number = rev.substr(at + 11, rev.find_first_of(",}", at) - at - 11);
  ASSERT_EQ(ctl(m.endpoint(), {"compaction", "--physical", number}).exit_code, 0);
  ASSERT_EQ(ctl(m.endpoint(), {"defrag"}).exit_code, 0);
  r = ctl(m.endpoint(), {"alarm", "disarm"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ctl(m.endpoint(), {"alarm", "list"}).out, "");
  r = ctl(m.endpoint(), {"put", "c", "small"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// The same commands against the real etcd print the same (where the output has no ids).
TEST(EtcdctlKvOracle, SameOutputAsEtcd) {
  e2e::etcd_server etcd;
  e2e::temp_dir dir{"cairn-etcdctl"};
  cairn_member ours(dir.path() / "data");
  const std::vector<std::vector<std::string>> script = {
      {"put", "a", "1"},           {"put", "ab", "2"},        {"put", "a", "3", "--prev-kv"},
      {"get", "a", "--prefix"},    {"get", "a", "--rev=2"},   {"get", "", "--prefix", "--limit=1"},
      {"get", "a", "--keys-only"}, {"del", "a", "--prev-kv"}, {"put", "", "x"},
      {"compaction", "3"},         {"get", "a", "--rev=2"},   {"get", "ab", "--print-value-only"},
  };
  for (const auto& cmd : script) {
    const auto want = ctl(etcd.endpoint(), cmd);
    const auto got = ctl(ours.endpoint(), cmd);
    std::string line;
    for (const auto& a : cmd) line += a + " ";
    EXPECT_EQ(got.exit_code, want.exit_code) << line << got.err;
    EXPECT_EQ(got.out, want.out) << line;
    // Errors: the same "Error: ..." line (the client's retry warnings around it carry
    // timestamps and random target names).
    EXPECT_EQ(error_line(got.err), error_line(want.err)) << line;
  }
}

}  // namespace
}  // namespace cairn
