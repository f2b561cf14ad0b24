// One script of etcdctl 3.4.23 commands run against a fresh `cairn` and a fresh etcd 3.4.23, in
// the same order: every command must exit alike and print alike once both outputs go through
// the normalizer (support/normalize.h: ids, terms, times, ports and sizes) and the differences
// listed in docs/compatibility.md are masked. The script covers what part 1 of the server
// offers: put/get with their flags, del, txn, compaction and compacted reads, endpoint health
// and status, alarms, defrag, member list, and the errors of each.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/e2e.h"
#include "support/normalize.h"

namespace cairn {
namespace {

struct step {
  std::vector<std::string> args;
  std::string input;  // fed on stdin when not empty (txn)
};

struct outcome {
  int exit_code;
  std::string out;
  std::string err;  // the "Error: ..." line only
};

std::string error_line(const std::string& err) {
  const auto at = err.find("Error: ");
  if (at == std::string::npos) return "";
  return err.substr(at, err.find('\n', at) - at);
}

outcome run_step(const std::string& endpoint, const step& s, const std::filesystem::path& dir) {
  std::vector<std::string> argv = {e2e::etcdctl_binary().string(), "--endpoints=" + endpoint};
  argv.insert(argv.end(), s.args.begin(), s.args.end());
  e2e::run_result r;
  if (s.input.empty()) {
    r = e2e::run(argv, {{"ETCDCTL_API", "3"}});
  } else {
    const auto in = dir / "stdin.txt";
    std::ofstream(in, std::ios::trunc) << s.input;
    std::string cmd;
    for (const auto& a : argv) cmd += "'" + a + "' ";
    r = e2e::run({"/bin/sh", "-c", cmd + "< '" + in.string() + "'"}, {{"ETCDCTL_API", "3"}});
  }
  return {r.exit_code, r.out, error_line(r.err)};
}

std::string describe(const step& s) {
  std::string line = "etcdctl";
  for (const auto& a : s.args) line += " " + a;
  if (!s.input.empty()) line += " <<< " + s.input;
  return line;
}

std::vector<step> script() {
  const std::string many_ops = [] {
    std::string t = "\n";
    for (int i = 0; i < 129; ++i) t += "put m" + std::to_string(i) + " v\n";
    return t + "\n\n";
  }();
  return {
      // put and its flags
      {{"put", "a", "1"}},
      {{"put", "a", "2", "--prev-kv"}},
      {{"put", "a", "3", "--prev-kv", "-w", "json"}},
      {{"put", "b", "1", "-w", "fields"}},
      {{"put", "ab", "2"}},
      {{"put", "b", "--ignore-value"}},
      {{"put", "nothere", "--ignore-value"}},
      {{"put", "c", "x", "--ignore-lease"}},
      {{"put", "", "x"}},
      // get and its flags
      {{"get", "a"}},
      {{"get", "missing"}},
      {{"get", "a", "-w", "json"}},
      {{"get", "a", "-w", "fields"}},
      {{"get", "a", "--prefix"}},
      {{"get", "a", "--from-key"}},
      {{"get", "a", "b"}},
      {{"get", "", "--prefix", "--limit=1"}},
      {{"get", "", "--prefix", "--limit=2", "-w", "json"}},
      {{"get", "a", "--rev=2"}},
      {{"get", "a", "--rev=3", "-w", "json"}},
      {{"get", "a", "--prefix", "--keys-only"}},
      {{"get", "a", "--print-value-only"}},
      {{"get", "", "--prefix", "--order=DESCEND", "--sort-by=KEY"}},
      {{"get", "", "--prefix", "--sort-by=VERSION"}},
      {{"get", "", "--prefix", "--sort-by=CREATE", "--order=DESCEND"}},
      {{"get", "", "--prefix", "--sort-by=MODIFY"}},
      {{"get", "", "--prefix", "--sort-by=VALUE", "--order=DESCEND"}},
      {{"get", "", "--prefix", "--order=ASCEND"}},
      {{"get", "a", "--consistency=s"}},
      {{"get", "a", "--rev=100"}},
      // txn
      {{"txn", "--interactive=false"}, "value(\"a\") = \"3\"\n\nput a 4\nget a\n\nput a no\n\n"},
      {{"txn", "--interactive=false"}, "version(\"a\") = \"1\"\n\nput a no\n\nget b\n\n"},
      {{"txn", "--interactive=false", "-w", "json"},
       "create(\"ab\") > \"0\"\nmod(\"a\") < \"100\"\n\ndel ab\n\nput x y\n\n"},
      {{"txn", "--interactive=false"}, "\nput d 1\nput d 2\n\n\n"},
      {{"txn", "--interactive=false"}, many_ops},
      // interactive: etcdctl prompts for each part on stdout
      {{"txn", "-i"}, "value(\"a\") = \"4\"\n\nget a\n\nput a no\n\n"},
      {{"txn", "-i", "-w", "json"}, "mod(\"a\") > \"1\"\n\nput i 1\n\n\n"},
      // del
      {{"del", "a", "--prev-kv"}},
      {{"del", "a"}},
      {{"del", "b", "--prev-kv", "-w", "json"}},
      {{"put", "k1", "v"}},
      {{"put", "k2", "v"}},
      {{"del", "k", "--prefix"}},
      {{"put", "z1", "v"}},
      {{"del", "z", "--from-key"}},
      // compaction
      {{"compaction", "3"}},
      {{"get", "a", "--rev=2"}},
      {{"compaction", "2"}},
      {{"compaction", "1000"}},
      {{"compaction", "--physical", "5"}},
      {{"get", "", "--prefix", "--rev=5"}},
      // maintenance and cluster
      {{"endpoint", "health"}},
      {{"endpoint", "health", "-w", "json"}},
      {{"endpoint", "status"}},
      {{"endpoint", "status", "-w", "json"}},
      {{"endpoint", "status", "-w", "fields"}},
      {{"endpoint", "status", "-w", "table"}},
      {{"alarm", "list"}},
      {{"alarm", "disarm"}},
      {{"defrag"}},
      {{"member", "list"}},
      {{"member", "list", "-w", "json"}},
      {{"member", "list", "-w", "fields"}},
      {{"member", "list", "-w", "table"}},
      // membership changes a one-member cluster refuses (ids that are not a member, bad URLs)
      {{"member", "remove", "1234"}},
      {{"member", "update", "1234", "--peer-urls=http://127.0.0.1:9"}},
      {{"member", "promote", "1234"}},
      {{"member", "add", "x", "--peer-urls=http://127.0.0.1"}},
      {{"member", "add", "x", "--peer-urls=ftp://127.0.0.1:9"}},
      {{"member", "add", "x", "--peer-urls=http://127.0.0.1:9/path"}},
      // auth, disabled and without users or roles
      {{"user", "list"}},
      {{"role", "list"}},
      {{"user", "get", "root"}},
      {{"role", "get", "r"}},
      {{"auth", "enable"}},
      {{"auth", "disable"}},
      {{"user", "delete", "u"}},
      {{"user", "grant-role", "u", "r"}},
      {{"user", "revoke-role", "u", "r"}},
      {{"role", "delete", "r"}},
      {{"role", "grant-permission", "r", "read", "k"}},
      {{"role", "revoke-permission", "r", "k"}},
      {{"--user=root:pw", "get", "a"}},
      {{"get", "", "--prefix", "-w", "json"}},
  };
}

TEST(EtcdctlCompare, SameOutputAsEtcdAfterNormalizing) {
  const auto listed = e2e::read_listed_differences(e2e::source_dir() / "docs" / "compatibility.md");
  e2e::etcd_server etcd;
  e2e::temp_dir dir{"cairn-compare"};
  e2e::cairn_server ours(dir.path() / "data");
  int compared = 0;
  for (const step& s : script()) {
    const outcome want = run_step(etcd.endpoint(), s, dir.path());
    const outcome got = run_step(ours.endpoint(), s, dir.path());
    auto norm = [&](const std::string& t) {
      return e2e::mask_listed(e2e::normalize_etcdctl_output(t), listed);
    };
    EXPECT_EQ(got.exit_code, want.exit_code) << describe(s) << "\n" << got.err << want.err;
    EXPECT_EQ(norm(got.out), norm(want.out)) << describe(s);
    EXPECT_EQ(norm(got.err), norm(want.err)) << describe(s);
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(script().size()));
}

// Limits with small settings on both servers: a request over --max-request-bytes, then writes
// until the backend quota raises NOSPACE (how many fit differs: the two databases grow
// differently), then what etcd allows under the alarm, and recovery once space is freed.
TEST(EtcdctlCompare, RequestSizeAndQuotaLikeEtcd) {
  const auto listed = e2e::read_listed_differences(e2e::source_dir() / "docs" / "compatibility.md");
  const std::vector<std::string> flags = {"--max-request-bytes=8192",
                                          "--quota-backend-bytes=262144"};
  e2e::etcd_server etcd(flags);
  e2e::temp_dir dir{"cairn-compare"};
  e2e::cairn_server ours(dir.path() / "data", flags);
  auto norm = [&](const std::string& t) {
    return e2e::mask_listed(e2e::normalize_etcdctl_output(t), listed);
  };
  auto both = [&](const step& s) {
    const outcome want = run_step(etcd.endpoint(), s, dir.path());
    const outcome got = run_step(ours.endpoint(), s, dir.path());
    EXPECT_EQ(got.exit_code, want.exit_code) << describe(s) << "\n" << got.err << want.err;
    EXPECT_EQ(norm(got.out), norm(want.out)) << describe(s);
    EXPECT_EQ(norm(got.err), norm(want.err)) << describe(s);
    return want;
  };
  const std::string big(10000, 'x');
  EXPECT_EQ(both({{"put", "big", big}}).err, "Error: etcdserver: request is too large");
  // Fill each server until it refuses.
  const std::string value(6000, 'v');
  for (const std::string& ep : {etcd.endpoint(), ours.endpoint()}) {
    outcome r{};
    for (int i = 0; i < 2000; ++i) {
      r = run_step(ep, {{"put", "fill" + std::to_string(i % 50), value}}, dir.path());
      if (r.exit_code != 0) break;
    }
    EXPECT_EQ(r.err, "Error: etcdserver: mvcc: database space exceeded") << ep;
  }
  both({{"put", "more", "x"}});
  both({{"alarm", "list"}});
  both({{"endpoint", "health"}});
  both({{"get", "fill1", "--keys-only"}});  // reads go on
  // Deletes too (each server holds as many keys as fitted, so only the exit code compares).
  // Then etcd's documented recovery: compact, defragment, disarm. (Without the compaction and
  // the defragmentation, whether the file still has room after the deletes' own pages depends
  // on how each B+tree reused its free pages: a put after the disarm failed now and then.)
  for (const std::string& ep : {etcd.endpoint(), ours.endpoint()}) {
    EXPECT_EQ(run_step(ep, {{"del", "fill", "--prefix"}}, dir.path()).exit_code, 0) << ep;
    const std::string json = run_step(ep, {{"get", "fill0", "-w", "json"}}, dir.path()).out;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(json, m, std::regex(R"("revision":(\d+))"))) << json;
    EXPECT_EQ(run_step(ep, {{"compaction", "--physical", m[1].str()}}, dir.path()).exit_code, 0)
        << ep;
    EXPECT_EQ(run_step(ep, {{"defrag"}}, dir.path()).exit_code, 0) << ep;
  }
  both({{"alarm", "disarm"}});
  both({{"put", "after", "1"}});
  both({{"get", "after", "--print-value-only"}});
}

// Periodic auto compaction with a short retention: both servers compact the first revisions
// on their own within a few retention periods.
TEST(EtcdctlCompare, PeriodicAutoCompaction) {
  const std::vector<std::string> flags = {"--auto-compaction-mode=periodic",
                                          "--auto-compaction-retention=1s"};
  e2e::etcd_server etcd(flags);
  e2e::temp_dir dir{"cairn-compare"};
  e2e::cairn_server ours(dir.path() / "data", flags);
  for (const std::string& ep : {etcd.endpoint(), ours.endpoint()}) {
    ASSERT_EQ(run_step(ep, {{"put", "k", "1"}}, dir.path()).exit_code, 0);
    ASSERT_EQ(run_step(ep, {{"put", "k", "2"}}, dir.path()).exit_code, 0);
  }
  for (const std::string& ep : {etcd.endpoint(), ours.endpoint()}) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    outcome r{};
    do {
      r = run_step(ep, {{"get", "k", "--rev=2"}}, dir.path());
      if (r.exit_code != 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    } while (std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(r.err, "Error: etcdserver: mvcc: required revision has been compacted")
        << ep << (ep == ours.endpoint() ? ours.proc().log() : "");
    // The latest value is still there.
    EXPECT_EQ(run_step(ep, {{"get", "k", "--print-value-only"}}, dir.path()).out, "2\n");
  }
}

// The strict reconfiguration check (on by default) on a single member: a second voter may be
// added (etcd's exception for growing a one-member cluster), but while it has not started a
// third voter is refused for want of started members, and a learner because a voter is not
// connected. Both servers must answer alike.
TEST(EtcdctlCompare, StrictReconfigurationLikeEtcd) {
  const auto listed = e2e::read_listed_differences(e2e::source_dir() / "docs" / "compatibility.md");
  e2e::etcd_server etcd;
  e2e::temp_dir dir{"cairn-compare"};
  e2e::cairn_server ours(dir.path() / "data");
  // Members come in the order of their ids, which are random here (the time of the add): the
  // lines of a member list and the items of ETCD_INITIAL_CLUSTER are compared as sets.
  auto norm = [&](const std::string& t) {
    const std::string text = e2e::mask_listed(e2e::normalize_etcdctl_output(t), listed);
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      const std::string key = "ETCD_INITIAL_CLUSTER=\"";
      if (line.starts_with(key)) {
        std::vector<std::string> items;
        std::istringstream list(line.substr(key.size(), line.size() - key.size() - 1));
        for (std::string item; std::getline(list, item, ',');) items.push_back(item);
        std::sort(items.begin(), items.end());
        line = key;
        for (const auto& item : items) line += item + (&item == &items.back() ? "\"" : ",");
      }
      lines.push_back(line);
    }
    if (!lines.empty() && lines[0].find("started, ") != std::string::npos) {
      std::sort(lines.begin(), lines.end());  // a member list
    }
    std::string joined;
    for (const auto& line : lines) joined += line + "\n";
    return joined;
  };
  std::vector<outcome> wanted;
  const std::vector<std::string> endpoints = {etcd.endpoint(), ours.endpoint()};
  for (std::size_t server = 0; server < endpoints.size(); ++server) {
    const auto url = [](int port) {
      return "--peer-urls=http://127.0.0.1:" + std::to_string(port);
    };
    const std::vector<step> steps = {
        {{"member", "add", "m2", url(e2e::free_port())}},
        {{"member", "add", "m3", url(e2e::free_port())}},
        {{"member", "add", "m4", "--learner", url(e2e::free_port())}},
        {{"member", "list"}},
    };
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const outcome got = run_step(endpoints[server], steps[i], dir.path());
      if (server == 0) {
        wanted.push_back(got);
        continue;
      }
      const outcome& want = wanted[i];
      EXPECT_EQ(got.exit_code, want.exit_code) << describe(steps[i]) << "\n" << got.err << want.err;
      EXPECT_EQ(norm(got.out), norm(want.out)) << describe(steps[i]);
      EXPECT_EQ(norm(got.err), norm(want.err)) << describe(steps[i]);
    }
  }
  ASSERT_EQ(wanted.size(), 4u);
  EXPECT_EQ(wanted[0].exit_code, 0) << wanted[0].err;
  EXPECT_EQ(wanted[1].err,
            "Error: etcdserver: re-configuration failed due to not enough started members");
  EXPECT_EQ(wanted[2].err, "Error: etcdserver: unhealthy cluster");
}

}  // namespace
}  // namespace cairn
