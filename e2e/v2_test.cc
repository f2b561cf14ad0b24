// The v2 keys API beside the real etcd 3.4.23, both with --enable-v2: etcdctl (ETCDCTL_API=2)
// and curl run the same script on each, and the outputs must match once indexes are shifted by
// the number of internal writes etcd makes to its v2 store before the first user write (its
// member attributes and cluster version; Cairn has none there).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <regex>
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
    auto want = etcdctl(*etcd_, args);
    auto got = etcdctl(*cairn_, args);
    std::string what;
    for (const auto& a : args) what += a + " ";
    EXPECT_EQ(got.exit_code, want.exit_code) << what << got.err << want.err;
    EXPECT_EQ(got.out, unshift(want.out)) << what;
    EXPECT_EQ(got.err, unshift(want.err)) << what;
    return got;
  }
  // Arguments that name an index: made for each server with its own shift.
  e2e::run_result both_ctl_at(const std::function<std::vector<std::string>(long)>& args) {
    auto want = etcdctl(*etcd_, args(shift_));
    auto got = etcdctl(*cairn_, args(0));
    EXPECT_EQ(got.exit_code, want.exit_code) << got.err << want.err;
    EXPECT_EQ(got.out, unshift(want.out));
    EXPECT_EQ(got.err, unshift(want.err));
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

}  // namespace
}  // namespace cairn
