// The v2 keys API beside the real etcd 3.4.23, both with --enable-v2: etcdctl (ETCDCTL_API=2)
// and curl run the same script on each, and the outputs must match once indexes are shifted by
// the number of internal writes etcd makes to its v2 store before the first user write (its
// member attributes and cluster version; Cairn has none there).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/e2e.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;

class V2E2E : public ::testing::Test {
 protected:
  void SetUp() override {
    cairn_ = std::make_unique<e2e::one_member>(e2e::cairn_binary(), dir_.path(), "cairn",
                                               std::vector<std::string>{"--enable-v2"});
    etcd_ = std::make_unique<e2e::one_member>(e2e::etcd_binary(), dir_.path(), "etcd",
                                              std::vector<std::string>{"--enable-v2"});
    // The first user write on each tells the shift.
    const auto a = index_of(curl(*cairn_, {"-XPUT", "/v2/keys/first", "-d", "value=x"}).out);
    const auto b = index_of(curl(*etcd_, {"-XPUT", "/v2/keys/first", "-d", "value=x"}).out);
    ASSERT_GT(a, 0);
    shift_ = b - a;
    ASSERT_GE(shift_, 0);
  }
  static long index_of(const std::string& json) {
    std::smatch m;
    if (!std::regex_search(json, m, std::regex(R"("modifiedIndex":(\d+))"))) return -1;
    return std::stol(m[1]);
  }
  e2e::run_result curl(e2e::one_member& m, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-s", "--max-time", "5"};
    for (auto& a : args) {
      if (a.starts_with("/v2/")) a = "http://" + m.ep() + a;
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return e2e::run(argv);
  }
  e2e::run_result etcdctl(e2e::one_member& m, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {e2e::etcdctl_binary().string(), "--endpoints",
                                     "http://" + m.ep()};
    argv.insert(argv.end(), args.begin(), args.end());
    return e2e::run(argv, {{"ETCDCTL_API", "2"}});
  }
  // etcd's numbers shifted back: indexes in JSON, in-order key names, etcdctl's "[N]".
  std::string unshift(const std::string& text) const {
    static const std::regex re(
        R"(("modifiedIndex":|"createdIndex":|"index":|\[| != )(\d+)|(/0000)(\d{16}))");
    std::string out;
    auto begin = std::sregex_iterator(text.begin(), text.end(), re);
    std::size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      const auto& m = *it;
      out += text.substr(last, static_cast<std::size_t>(m.position()) - last);
      if (m[1].matched) {
        const long v = std::stol(m[2]);
        out += m[1].str() + std::to_string(v == 0 ? 0 : v - shift_);
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%020ld", std::stol(m[4]) - shift_);
        out += std::string("/") + buf;
      }
      last = static_cast<std::size_t>(m.position() + m.length());
    }
    return out + text.substr(last);
  }
  // The same on both: exit code, stdout and stderr (etcd's shifted).
  e2e::run_result both_ctl(const std::vector<std::string>& args) {
    return both_ctl_at([&](long) { return args; });
  }
  // Arguments that may name an index: made for each server with its own shift.
  e2e::run_result both_ctl_at(const std::function<std::vector<std::string>(long)>& args) {
    auto want = etcdctl(*etcd_, args(shift_));
    auto got = etcdctl(*cairn_, args(0));
    std::string what;
    for (const auto& a : args(0)) what += a + " ";
    EXPECT_EQ(got.exit_code, want.exit_code) << what << got.err << want.err;
    EXPECT_EQ(got.out, unshift(want.out)) << what;
    EXPECT_EQ(got.err, unshift(want.err)) << what;
    return got;
  }
  e2e::run_result both_curl(const std::vector<std::string>& args) {
    auto want = curl(*etcd_, args);
    auto got = curl(*cairn_, args);
    std::string what;
    for (const auto& a : args) what += a + " ";
    EXPECT_EQ(got.out, unshift(want.out)) << what;
    return got;
  }
  long shift_ = 0;
  e2e::temp_dir dir_{"cairn-v2"};
  std::unique_ptr<e2e::one_member> cairn_, etcd_;
};

TEST_F(V2E2E, EtcdctlV2CommandsAnswerAsEtcd) {
  both_ctl({"set", "/foo", "bar"});
  both_ctl({"get", "/foo"});
  both_ctl({"mk", "/foo", "x"});
  both_ctl({"mk", "/new", "x"});
  both_ctl({"update", "/foo", "baz"});
  both_ctl({"update", "/nothing", "baz"});
  both_ctl({"set", "--swap-with-value", "nope", "/foo", "q"});
  both_ctl({"set", "--swap-with-value", "baz", "/foo", "q"});
  const long foo = index_of(curl(*cairn_, {"/v2/keys/foo"}).out);
  both_ctl_at([&](long d) {
    return std::vector<std::string>{"set", "--swap-with-index", std::to_string(foo - 1 + d), "/foo",
                                    "r"};
  });
  both_ctl_at([&](long d) {
    return std::vector<std::string>{"set", "--swap-with-index", std::to_string(foo + d), "/foo",
                                    "s"};
  });
  both_ctl({"mkdir", "/dir"});
  both_ctl({"mkdir", "/dir"});
  both_ctl({"setdir", "/dir2"});
  both_ctl({"updatedir", "/dir2"});
  both_ctl({"set", "/dir/a", "1"});
  both_ctl({"set", "/dir/sub/b", "2"});
  both_ctl({"set", "/dir/_hidden", "h"});
  both_ctl({"ls", "--sort", "/dir"});
  both_ctl({"ls", "--sort", "--recursive", "-p", "/dir"});
  both_ctl({"get", "/dir/_hidden"});
  both_ctl({"get", "/dir"});
  both_ctl({"get", "/dir/a/x"});
  both_ctl({"rmdir", "/dir"});
  both_ctl({"rm", "/dir"});
  both_ctl({"rm", "--dir", "/dir2"});
  both_ctl({"rm", "--with-value", "nope", "/foo"});
  both_ctl({"rm", "--with-value", "q", "/foo"});
  both_ctl({"rm", "--with-value", "s", "/foo"});
  both_ctl({"rm", "--recursive", "/dir"});
  both_ctl({"rm", "/nope"});
  both_ctl({"set", "--ttl", "100", "/ttl", "v"});
  both_ctl({"get", "/ttl"});
  both_ctl({"mkdir", "--ttl", "100", "/tdir"});
  both_ctl({"ls", "--sort", "/"});
}

TEST_F(V2E2E, CurlSeesEtcdsJsonStatusesAndErrors) {
  both_curl({"-XPUT", "/v2/keys/k", "-d", "value=v1"});
  both_curl({"-w", "\n%{http_code}", "-XPUT", "/v2/keys/k", "-d", "value=v2"});
  both_curl({"-XPUT", "/v2/keys/k?prevExist=false", "-d", "value=v3"});
  both_curl({"-XPUT", "/v2/keys/k?prevValue=v2", "-d", "value=v3"});
  both_curl({"-XPUT", "/v2/keys/k?prevValue=nope", "-d", "value=v4"});
  both_curl({"-XPUT", "/v2/keys/k?prevValue=", "-d", "value=v4"});
  both_curl({"-XPUT", "/v2/keys/k?prevExist=maybe", "-d", "value=v4"});
  both_curl({"-XPUT", "/v2/keys/k", "-d", "value=v4", "-d", "ttl=abc"});
  both_curl({"-XPUT", "/v2/keys/k?refresh=true", "-d", "value=x", "-d", "ttl=5"});
  both_curl({"-XPUT", "/v2/keys/k?refresh=true"});
  both_curl({"-w", "\n%{http_code}", "-XDELETE", "/v2/keys/k?prevValue=nope"});
  both_curl({"-XDELETE", "/v2/keys/k?prevValue=v3"});
  both_curl({"-w", "\n%{http_code}", "/v2/keys/k"});
  // In-order keys, sorted listing, hidden keys.
  both_curl({"-w", "\n%{http_code}", "-XPOST", "/v2/keys/queue", "-d", "value=job1"});
  both_curl({"-XPOST", "/v2/keys/queue", "-d", "value=job2"});
  both_curl({"/v2/keys/queue?recursive=true&sorted=true"});
  both_curl({"-XPUT", "/v2/keys/_hidden", "-d", "value=h"});
  both_curl({"/v2/keys/_hidden"});
  both_curl({"/v2/keys/queue?recursive=maybe"});
  both_curl({"-XPUT", "/v2/keys/", "-d", "value=root"});
  both_curl({"-XPUT", "/v2/keys/d?dir=true"});
  both_curl({"-w", "\n%{http_code}", "-XDELETE", "/v2/keys/d"});
  both_curl({"-XDELETE", "/v2/keys/d?dir=true"});
  both_curl({"/v2/keys/queue?quorum=true&sorted=true&recursive=true"});
  both_curl({"-w", "\n%{http_code}", "-XPATCH", "/v2/keys/x"});
  both_curl({"-XPOST", "/v2/keys/w?wait=true"});
}

TEST_F(V2E2E, WatchesLongPollFromTheHistoryAndAfterWritesAsEtcd) {
  both_curl({"-XPUT", "/v2/keys/w", "-d", "value=1"});
  both_curl({"-XPUT", "/v2/keys/w", "-d", "value=2"});
  // From an index in the history: at once.
  const long base = index_of(curl(*cairn_, {"/v2/keys/w"}).out);
  auto c = curl(*cairn_, {"/v2/keys/w?wait=true&waitIndex=" + std::to_string(base)});
  auto e = curl(*etcd_, {"/v2/keys/w?wait=true&waitIndex=" + std::to_string(base + shift_)});
  EXPECT_EQ(c.out, unshift(e.out));
  EXPECT_NE(c.out.find(R"("value":"2")"), std::string::npos) << c.out;
  // Waiting: the next write below a recursive watch answers it.
  for (auto* m : {cairn_.get(), etcd_.get()}) {
    std::string out;
    std::thread waiter([&] { out = curl(*m, {"/v2/keys/dir?wait=true&recursive=true"}).out; });
    std::this_thread::sleep_for(500ms);
    curl(*m, {"-XPUT", "/v2/keys/dir/inside", "-d", "value=x"});
    waiter.join();
    EXPECT_NE(out.find(R"("action":"set","node":{"key":"/dir/inside","value":"x")"),
              std::string::npos)
        << out;
  }
  // etcdctl watch --after-index prints the value of that event.
  both_ctl_at([&](long d) {
    return std::vector<std::string>{"watch", "--after-index", std::to_string(base - 1 + d), "/w"};
  });
  // More than 1000 events later, an old index is cleared (401 with the store's index).
  for (auto* m : {cairn_.get(), etcd_.get()}) {
    std::string script;
    for (int i = 0; i < 1010; ++i)
      script += "url = \"http://" + m->ep() +
                "/v2/keys/many\"\nrequest = \"PUT\"\ndata = \"value=" + std::to_string(i) +
                "\"\noutput = \"/dev/null\"\n";
    const auto cfg = dir_.path() / "curl.cfg";
    FILE* f = std::fopen(cfg.c_str(), "w");
    std::fputs(script.c_str(), f);
    std::fclose(f);
    e2e::run({"/usr/bin/curl", "-s", "-K", cfg.string()}, {}, 120s);
  }
  both_curl({"-w", "\n%{http_code}", "/v2/keys/w?wait=true&waitIndex=2"});
}

TEST_F(V2E2E, ADirectoryTtlExpiresAndItsWatcherHearsIt) {
  for (auto* m : {cairn_.get(), etcd_.get()}) {
    curl(*m, {"-XPUT", "/v2/keys/tdir?dir=true&ttl=1"});
    curl(*m, {"-XPUT", "/v2/keys/tdir/f", "-d", "value=v"});
  }
  std::string outs[2];
  std::vector<std::thread> waiters;
  int i = 0;
  for (auto* m : {cairn_.get(), etcd_.get()}) {
    waiters.emplace_back([&, m, i] { outs[i] = curl(*m, {"/v2/keys/tdir/f?wait=true"}).out; });
    ++i;
  }
  for (auto& t : waiters) t.join();
  EXPECT_EQ(outs[0].substr(0, 30), outs[1].substr(0, 30));
  EXPECT_NE(outs[0].find(R"({"action":"expire","node":{"key":"/tdir","dir":true)"),
            std::string::npos)
      << outs[0];
  both_curl({"/v2/keys/tdir"});
}

// etcdctl's v2 member and health commands and the stats endpoints: the same shapes on both once
// each server's own id, name and ports are replaced by placeholders.
TEST_F(V2E2E, MembersClusterHealthAndStatsAsEtcd) {
  // Ids (12 to 16 hex digits), loopback URLs, the member's name, times and counters.
  auto mask = [](const std::string& text, const std::string& name) {
    std::string out = text;
    for (const auto& [re, with] : std::vector<std::pair<std::string, std::string>>{
             {R"(\b[0-9a-f]{12,16}\b)", "<id>"},
             {"http://127\\.0\\.0\\.1:[0-9]+", "<url>"},
             {"\\b" + name + "\\b", "<name>"},
             {R"x("(startTime|uptime)":"[^"]*")x", "\"$1\":\"<t>\""},
             {R"("(recv|send)AppendRequestCnt":[0-9]+)", "\"$1AppendRequestCnt\":<n>"}}) {
      out = std::regex_replace(out, std::regex(re), with);
    }
    // ETCD_INITIAL_CLUSTER lists members by id, which differ between the servers: sorted.
    static const std::regex ic("ETCD_INITIAL_CLUSTER=\"([^\"]*)\"");
    if (std::smatch found; std::regex_search(out, found, ic)) {
      std::vector<std::string> parts;
      std::stringstream ss(found[1].str());
      for (std::string part; std::getline(ss, part, ',');) parts.push_back(part);
      std::sort(parts.begin(), parts.end());
      std::string joined;
      for (const auto& part : parts) joined += (joined.empty() ? "" : ",") + part;
      out = found.prefix().str() + "ETCD_INITIAL_CLUSTER=\"" + joined + "\"" + found.suffix().str();
    }
    return out;
  };
  auto both_masked = [&](const std::vector<std::string>& args) {
    auto want = etcdctl(*etcd_, args);
    auto got = etcdctl(*cairn_, args);
    std::string what;
    for (const auto& a : args) what += a + " ";
    EXPECT_EQ(got.exit_code, want.exit_code) << what << got.err << want.err;
    EXPECT_EQ(mask(got.out, "cairn"), mask(want.out, "etcd")) << what;
    return got;
  };
  EXPECT_NE(curl(*cairn_, {"/v2/stats/self"}).out.find(R"("state":"StateLeader")"),
            std::string::npos);
  EXPECT_NE(both_masked({"member", "list"}).out.find("isLeader=true"), std::string::npos);
  EXPECT_NE(both_masked({"cluster-health"}).out.find("cluster is healthy"), std::string::npos);
  auto added = both_masked({"member", "add", "m2", "http://127.0.0.1:1"});
  EXPECT_NE(added.out.find("Added member named m2"), std::string::npos) << added.out;
  both_masked({"member", "add", "m3", "http://127.0.0.1:1"});  // the URL is taken
  auto list = etcdctl(*cairn_, {"member", "list"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(list.out, m, std::regex(R"(([0-9a-f]+)\[unstarted\])")))
      << list.out;
  auto listed_etcd = etcdctl(*etcd_, {"member", "list"});
  std::smatch me;
  ASSERT_TRUE(std::regex_search(listed_etcd.out, me, std::regex(R"(([0-9a-f]+)\[unstarted\])")));
  auto rc = etcdctl(*cairn_, {"member", "remove", m[1]});
  auto re = etcdctl(*etcd_, {"member", "remove", me[1]});
  EXPECT_EQ(rc.exit_code, re.exit_code);
  EXPECT_EQ(mask(rc.out, "cairn"), mask(re.out, "etcd"));
  both_masked({"member", "remove", "abcdef"});
  // Stats: the same fields in the same order.
  for (const std::string& path : std::vector<std::string>{"/v2/stats/self", "/v2/stats/store"}) {
    auto c = curl(*cairn_, {path});
    auto e = curl(*etcd_, {path});
    auto keys = [](const std::string& json) {
      std::string out;
      static const std::regex key(R"x("([a-zA-Z]+)":)x");
      for (auto it = std::sregex_iterator(json.begin(), json.end(), key);
           it != std::sregex_iterator(); ++it) {
        out += (*it)[1].str() + " ";
      }
      return out;
    };
    EXPECT_EQ(keys(c.out), keys(e.out)) << path << "\n" << c.out << "\n" << e.out;
  }
}

// etcdctl watch --forever and exec-watch over the v2 long polls. (etcdctl 3.4's exec-watch
// finds its key only when some flag is given, hence --recursive.)
TEST_F(V2E2E, WatchForeverAndExecWatchSeeEveryChange) {
  for (auto* m : {cairn_.get(), etcd_.get()}) {
    const std::string ctl =
        "ETCDCTL_API=2 '" + e2e::etcdctl_binary().string() + "' --endpoints http://" + m->ep();
    const std::string forever = (dir_.path() / "forever.out").string();
    const std::string exec = (dir_.path() / "exec.out").string();
    // The watchers start after the store's current index, so a watcher that connects late
    // still sees every change; they are killed once both files hold what they should (or after
    // 10 s), not after a fixed sleep: a loaded machine made either one flaky.
    const std::string script =
        "(I=$(curl -s -o /dev/null -D - http://" + m->ep() +
        "/v2/keys/ | tr -d '\\r' | awk 'tolower($1)==\"x-etcd-index:\" {print $2}'); " + ctl +
        " watch --forever --after-index $I /f > " + forever + " & W=$!; " + ctl +
        " exec-watch --after-index $I --recursive /g -- sh -c "
        "'echo $ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE' > " +
        exec + " & X=$!; " + ctl + " set /f 1 >/dev/null; " + ctl + " set /f 2 >/dev/null; " + ctl +
        " set /g/x a >/dev/null; for i in $(seq 100); do grep -q 2 " + forever + " && grep -q x " +
        exec + " && break; sleep 0.1; done; kill $W $X)";
    e2e::run({"/bin/sh", "-c", script}, {{"ETCDCTL_API", "2"}});
    std::ifstream f(forever), g(exec);
    std::stringstream fs, gs;
    fs << f.rdbuf();
    gs << g.rdbuf();
    EXPECT_EQ(fs.str(), "1\n2\n") << (m == cairn_.get() ? "cairn" : "etcd");
    EXPECT_EQ(gs.str(), "set /g/x a\n") << (m == cairn_.get() ? "cairn" : "etcd");
  }
}

// /v2/stats/leader in three members: the leader lists both followers with etcd's latency and
// count fields; a follower answers 403 as etcd ("not current leader").
TEST(V2Cluster, LeaderStatsListTheFollowers) {
  e2e::temp_dir dir("cairn-v2-cluster");
  e2e::cairn_cluster c(dir.path(), 3, {"--enable-v2"});
  c.start_all();
  int leader = -1;
  for (int tries = 0; tries < 100 && leader < 0; ++tries) {
    for (int i = 0; i < 3; ++i) {
      auto r = e2e::run({"/usr/bin/curl", "-s", "http://" + c.endpoint(i) + "/v2/stats/self"});
      if (r.out.find(R"("state":"StateLeader")") != std::string::npos) leader = i;
    }
    if (leader < 0) std::this_thread::sleep_for(100ms);
  }
  ASSERT_GE(leader, 0);
  auto stats =
      e2e::run({"/usr/bin/curl", "-s", "http://" + c.endpoint(leader) + "/v2/stats/leader"});
  const std::regex shape(
      R"x(\{"leader":"[0-9a-f]+","followers":\{("[0-9a-f]+":\{"latency":\{"current":[0-9.e-]+,"average":[0-9.e-]+,"standardDeviation":[0-9.e-]+,"minimum":[0-9.e-]+,"maximum":[0-9.e-]+\},"counts":\{"fail":[0-9]+,"success":[0-9]+\}\},?){2}\}\})x");
  EXPECT_TRUE(std::regex_match(stats.out, shape)) << stats.out;
  const int follower = (leader + 1) % 3;
  auto refused = e2e::run({"/usr/bin/curl", "-s", "-w", "\n%{http_code}",
                           "http://" + c.endpoint(follower) + "/v2/stats/leader"});
  EXPECT_EQ(refused.out, "{\"message\":\"not current leader\"}\n403");
  // Keys written through one member are read on another.
  e2e::run({"/usr/bin/curl", "-s", "-XPUT", "http://" + c.endpoint(follower) + "/v2/keys/k", "-d",
            "value=v"});
  auto got =
      e2e::run({"/usr/bin/curl", "-s", "http://" + c.endpoint(leader) + "/v2/keys/k?quorum=true"});
  EXPECT_NE(got.out.find(R"("value":"v")"), std::string::npos) << got.out;
  // Without a quorum a write cannot commit: etcd's raft errors (300/301, HTTP 500), index 0.
  c.kill(follower);
  c.kill(3 - leader - follower);
  auto lost = e2e::run({"/usr/bin/curl", "-s", "--max-time", "30", "-w", "\n%{http_code}", "-XPUT",
                        "http://" + c.endpoint(leader) + "/v2/keys/k", "-d", "value=w"},
                       {}, std::chrono::seconds(40));
  EXPECT_TRUE(std::regex_search(
      lost.out,
      std::regex(
          R"x(^\{"errorCode":30[01],"message":"(Raft Internal Error|During Leader Election)","cause":"etcdserver: [^"]+","index":0\}\n\n500$)x")))
      << lost.out;
}

}  // namespace
}  // namespace cairn
