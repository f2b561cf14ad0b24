// The real etcdctl 3.4.23's lease commands against `cairn`, with the real etcd 3.4.23 as the
// oracle of what etcdctl prints: lease grant (TTL bounds), put --lease, lease timetolive [--keys]
// (simple and JSON), lease keep-alive (--once and streaming), lease revoke, lease list, and keys
// vanishing on expiry in one revision; then a cairn restart that keeps leases and their keys.
//
// Comparing with care. Lease ids differ between any two servers (etcd's generator and ours both
// mix the member id and the clock); each test knows the ids it created and replaces them, in hex
// (simple output) and decimal (JSON), by <lease> on both sides before the comparison; the
// normalizer (support/normalize.h) then masks member/cluster ids and terms. Remaining TTLs count
// down in real time, so they are checked to lie in a window and then masked. The number of
// "keepalived" lines of a streaming keep-alive depends on timing; the distinct lines are compared.
//
// Planted bugs caught here: REVOKE_SEPARATE_REVISIONS (etcdserver/server.cc) by
// EtcdctlLease.ExpiryDeletesKeysInOneRevisionLikeEtcd; LEASE_RENEW_NOOP (lease/lessor.cc) by
// EtcdctlLease.KeepAliveKeepsKeysUntilRevokedLikeEtcd.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/e2e.h"
#include "support/normalize.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;

e2e::run_result ctl(const std::string& endpoint, std::vector<std::string> args,
                    std::chrono::milliseconds timeout = 30s) {
  std::vector<std::string> argv = {e2e::etcdctl_binary().string(), "--endpoints=" + endpoint};
  argv.insert(argv.end(), args.begin(), args.end());
  return e2e::run(argv, {{"ETCDCTL_API", "3"}}, timeout);
}

// etcdctl's error line ("Error: ...") without its retry log lines.
std::string error_line(const std::string& err) {
  const auto at = err.find("Error: ");
  if (at == std::string::npos) return "";
  return err.substr(at, err.find('\n', at) - at);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// The lease id of "lease <hex> granted with TTL(...)".
std::int64_t granted_id(const e2e::run_result& r) {
  std::smatch m;
  static const std::regex re(R"(lease ([0-9a-f]+) granted)");
  if (!std::regex_search(r.out, m, re)) return 0;
  return static_cast<std::int64_t>(std::stoull(m[1], nullptr, 16));
}

std::string hex16(std::int64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

// Remaining TTLs ("remaining(57s)", "\"ttl\":57") must be within [lo, hi]; then masked.
std::string mask_remaining(const std::string& text, int lo, int hi, std::vector<int>* seen) {
  static const std::regex simple(R"(remaining\((-?\d+)s\))");
  static const std::regex json(R"("ttl":(-?\d+))");
  std::string out;
  auto one = [&](const std::string& in, const std::regex& re, const char* with) {
    std::string acc;
    auto begin = in.cbegin();
    std::smatch m;
    while (std::regex_search(begin, in.cend(), m, re)) {
      const int v = std::stoi(m[1]);
      seen->push_back(v);
      EXPECT_GE(v, lo) << in;
      EXPECT_LE(v, hi) << in;
      acc.append(begin, m[0].first);
      acc += with;
      begin = m[0].second;
    }
    acc.append(begin, in.cend());
    return acc;
  };
  out = one(text, simple, "remaining(<n>s)");
  return one(out, json, "\"ttl\":<n>");
}

// etcd lists a lease's keys in Go map order (random); Cairn sorts them (docs/compatibility.md).
// Sorts the lists of "attached keys([a b])" and of JSON "keys":["..",".."]; `sorted_already`
// tells whether they were in order before.
std::string sort_key_lists(const std::string& text, bool* sorted_already) {
  static const std::regex simple(R"(attached keys\(\[([^\]]*)\]\))");
  static const std::regex json(R"re("keys":\[([^\]]*)\])re");
  auto one = [&](const std::string& in, const std::regex& re, char sep, const char* open,
                 const char* close) {
    std::string acc;
    auto begin = in.cbegin();
    std::smatch m;
    while (std::regex_search(begin, in.cend(), m, re)) {
      std::vector<std::string> items;
      std::stringstream list(m[1].str());
      for (std::string item; std::getline(list, item, sep);) items.push_back(item);
      if (!std::is_sorted(items.begin(), items.end())) *sorted_already = false;
      std::sort(items.begin(), items.end());
      acc.append(begin, m[0].first);
      acc += open;
      for (std::size_t i = 0; i < items.size(); ++i)
        acc += (i ? std::string(1, sep) : "") + items[i];
      acc += close;
      begin = m[0].second;
    }
    acc.append(begin, in.cend());
    return acc;
  };
  return one(one(text, simple, ' ', "attached keys([", "])"), json, ',', "\"keys\":[", "]");
}

// One server's view of a script step: stdout, the error line and the exit code, with the lease
// ids this test made replaced (the i-th by <lease{i}>), then normalized.
std::string masked(const e2e::run_result& r, const std::vector<std::int64_t>& ids,
                   const std::string& heading = "") {
  std::string s =
      heading + r.out + error_line(r.err) + "\nexit " + std::to_string(r.exit_code) + "\n";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::string name = "<lease" + std::to_string(i) + ">";
    s = replace_all(s, hex16(ids[i]), name);
    s = replace_all(s, std::to_string(ids[i]), name);
    // etcdctl prints %x (no padding) in some messages.
    std::ostringstream h;
    h << std::hex << ids[i];
    s = replace_all(s, h.str(), name);
  }
  return e2e::normalize_etcdctl_output(s);
}

class EtcdctlLease : public ::testing::Test {
 protected:
  std::vector<std::string> eps() { return {etcd_.endpoint(), cairn_.endpoint()}; }

  e2e::etcd_server etcd_;
  e2e::temp_dir dir_{"cairn-etcdctl-lease"};
  e2e::cairn_server cairn_{dir_.path() / "data"};
};

TEST_F(EtcdctlLease, GrantAttachTimeToLiveRevokeLikeEtcd) {
  std::vector<std::string> transcript[2];
  for (int side = 0; side < 2; ++side) {
    const std::string ep = eps()[side];
    auto& out = transcript[side];
    std::vector<std::int64_t> ids;
    auto run = [&](std::vector<std::string> args) {
      auto r = ctl(ep, args);
      std::string heading = "$";
      for (const auto& a : args) heading += " " + a;
      out.push_back(masked(r, ids, heading + "\n"));
      return r;
    };
    // A grant's own output is masked once its id is known.
    auto grant = [&](const std::string& ttl) {
      auto r = ctl(ep, {"lease", "grant", ttl});
      ids.push_back(granted_id(r));
      out.push_back(masked(r, ids, "$ lease grant " + ttl + "\n"));
      return ids.back();
    };
    ASSERT_NE(grant("60"), 0) << out.back();
    ASSERT_NE(grant("1"), 0) << out.back();  // raised to the minimum: TTL(2s)
    ASSERT_NE(grant("120"), 0) << out.back();
    run({"lease", "grant", "9000000001"});
    const std::string id = hex16(ids[0]);
    run({"put", "--lease=" + id, "foo", "bar"});
    run({"put", "--lease=" + id, "foo2", "bar"});
    run({"put", "--lease=1234", "x", "y"});
    std::vector<int> seen;
    auto remaining = [&](std::vector<std::string> args) {
      auto r = ctl(ep, args);
      std::string heading = "$";
      for (const auto& a : args) heading += " " + a;
      bool sorted = true;
      out.push_back(
          sort_key_lists(mask_remaining(masked(r, ids, heading + "\n"), 50, 60, &seen), &sorted));
      if (side == 1) {
        EXPECT_TRUE(sorted) << out.back();
      }
    };
    remaining({"lease", "timetolive", id});
    remaining({"lease", "timetolive", "--keys", id});
    remaining({"lease", "timetolive", "--keys", "-w", "json", id});
    run({"lease", "timetolive", "1234"});
    run({"get", "foo", "-w", "json"});
    run({"lease", "keep-alive", "--once", id});
    run({"lease", "keep-alive", "--once", "1234"});
    run({"lease", "revoke", id});
    run({"lease", "revoke", id});
    run({"get", "foo", "--prefix"});
    run({"lease", "timetolive", "--keys", id});
    // The 2 s lease expires by itself; then only the 120 s one is left.
    for (int i = 0; i < 40; ++i) {
      if (ctl(ep, {"lease", "timetolive", hex16(ids[1])}).out.find("already expired") !=
          std::string::npos) {
        break;
      }
      std::this_thread::sleep_for(250ms);
    }
    run({"lease", "timetolive", hex16(ids[1])});
    run({"lease", "list"});
    EXPECT_EQ(seen.size(), 3u);
  }
  ASSERT_EQ(transcript[0].size(), transcript[1].size());
  if (std::getenv("CAIRN_TEST_VERBOSE") != nullptr) {
    for (const auto& t : transcript[1]) std::printf("%s", t.c_str());
  }
  for (std::size_t i = 0; i < transcript[0].size(); ++i) {
    EXPECT_EQ(transcript[1][i], transcript[0][i]) << "step " << i << "\n" << cairn_.proc().log();
  }
}

TEST_F(EtcdctlLease, KeepAliveKeepsKeysUntilRevokedLikeEtcd) {
  std::set<std::string> lines[2];
  std::string ends[2];
  for (int side = 0; side < 2; ++side) {
    const std::string ep = eps()[side];
    auto g = ctl(ep, {"lease", "grant", "3"});
    const auto id = granted_id(g);
    ASSERT_NE(id, 0) << g.err;
    ASSERT_EQ(ctl(ep, {"put", "--lease=" + hex16(id), "ka", "v"}).exit_code, 0);
    auto keeper = std::async(std::launch::async, [&] {
      return ctl(ep, {"lease", "keep-alive", hex16(id)}, 20s);
    });
    // Twice the TTL: without the keep-alive the key would be gone by now.
    std::this_thread::sleep_for(6s);
    auto get = ctl(ep, {"get", "ka", "--print-value-only"});
    EXPECT_EQ(get.out, "v\n") << (side == 0 ? "etcd" : "cairn");
    ASSERT_EQ(ctl(ep, {"lease", "revoke", hex16(id)}).exit_code, 0);
    auto r = keeper.get();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string text = masked(r, {id});
    std::istringstream in(text);
    int keepalived = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.find("keepalived") != std::string::npos) ++keepalived;
      if (!line.empty()) lines[side].insert(line);
    }
    // etcdctl renews every TTL/3 seconds: about 6 times in 6 s.
    EXPECT_GE(keepalived, 3) << text;
    ends[side] = text.substr(text.rfind("lease "));
    EXPECT_EQ(ctl(ep, {"get", "ka"}).out, "");
  }
  EXPECT_EQ(lines[1], lines[0]);
  EXPECT_EQ(ends[1], ends[0]);
  EXPECT_EQ(ends[1], "lease <lease0> expired or revoked.\n\nexit 0\n");
}

TEST_F(EtcdctlLease, ExpiryDeletesKeysInOneRevisionLikeEtcd) {
  std::vector<std::string> transcript[2];
  for (int side = 0; side < 2; ++side) {
    const std::string ep = eps()[side];
    auto g = ctl(ep, {"lease", "grant", "2"});
    const auto id = granted_id(g);
    ASSERT_NE(id, 0) << g.err;
    for (const char* k : {"e/1", "e/2", "e/3"}) {
      ASSERT_EQ(ctl(ep, {"put", "--lease=" + hex16(id), k, "v"}).exit_code, 0);
    }
    ASSERT_EQ(ctl(ep, {"put", "other", "v"}).exit_code, 0);
    bool gone = false;
    for (int i = 0; i < 40 && !gone; ++i) {
      std::this_thread::sleep_for(250ms);
      gone = ctl(ep, {"get", "e/", "--prefix", "--keys-only"}).out.empty();
    }
    EXPECT_TRUE(gone) << (side == 0 ? "etcd" : "cairn");
    // Revisions: 2-4 the leased puts, 5 "other", 6 the revoke deleting all three keys.
    transcript[side].push_back(masked(ctl(ep, {"get", "other", "-w", "json"}), {id}));
    transcript[side].push_back(masked(ctl(ep, {"get", "e/", "--prefix", "--rev=5"}), {id}));
    transcript[side].push_back(masked(ctl(ep, {"get", "e/", "--prefix", "--rev=6"}), {id}));
    transcript[side].push_back(masked(ctl(ep, {"lease", "timetolive", hex16(id)}), {id}));
    transcript[side].push_back(masked(ctl(ep, {"lease", "list"}), {id}));
  }
  EXPECT_NE(transcript[0][0].find("\"revision\":6"), std::string::npos) << transcript[0][0];
  for (std::size_t i = 0; i < transcript[0].size(); ++i) {
    EXPECT_EQ(transcript[1][i], transcript[0][i]) << "step " << i;
  }
}

TEST_F(EtcdctlLease, CairnRestartKeepsLeasesAndKeys) {
  const auto ep = cairn_.endpoint();
  const auto id = granted_id(ctl(ep, {"lease", "grant", "100"}));
  ASSERT_NE(id, 0);
  ASSERT_EQ(ctl(ep, {"put", "--lease=" + hex16(id), "r1", "v"}).exit_code, 0);
  ASSERT_EQ(ctl(ep, {"put", "--lease=" + hex16(id), "r2", "v"}).exit_code, 0);
  cairn_.restart();  // kill -9, then start on the same data
  auto t = ctl(ep, {"lease", "timetolive", "--keys", hex16(id)});
  std::vector<int> seen;
  EXPECT_EQ(mask_remaining(masked(t, {id}), 90, 101, &seen),
            "lease <lease0> granted with TTL(100s), remaining(<n>s), attached keys([r1 r2])\n\n"
            "exit 0\n")
      << cairn_.proc().log();
  EXPECT_EQ(masked(ctl(ep, {"lease", "list"}), {id}), "found 1 leases\n<lease0>\n\nexit 0\n");
  ASSERT_EQ(ctl(ep, {"lease", "revoke", hex16(id)}).exit_code, 0);
  EXPECT_EQ(ctl(ep, {"get", "r", "--prefix"}).out, "");
}

// The checkpoint flags (etcd 3.5's spellings and the feature gates) are taken and leases work
// with them across a restart. (Their effect, remaining TTLs kept across restarts, needs an
// interval shorter than etcd's fixed 5 minutes: LeaseServerTest.RestartKeepsRemainingTtl.)
TEST(EtcdctlLeaseFlags, CheckpointFlagsAreAccepted) {
  for (const auto& flags : std::vector<std::vector<std::string>>{
           {"--experimental-enable-lease-checkpoint",
            "--experimental-enable-lease-checkpoint-persist"},
           {"--feature-gates=LeaseCheckpoint=true,LeaseCheckpointPersist=true"}}) {
    e2e::temp_dir dir("cairn-etcdctl-lease-flags");
    e2e::cairn_server cairn(dir.path() / "data", flags);
    const auto ep = cairn.endpoint();
    const auto id = granted_id(ctl(ep, {"lease", "grant", "600"}));
    ASSERT_NE(id, 0) << cairn.proc().log();
    ASSERT_EQ(ctl(ep, {"put", "--lease=" + hex16(id), "k", "v"}).exit_code, 0);
    cairn.restart();
    std::vector<int> seen;
    EXPECT_EQ(mask_remaining(masked(ctl(ep, {"lease", "timetolive", "--keys", hex16(id)}), {id}),
                             590, 601, &seen),
              "lease <lease0> granted with TTL(600s), remaining(<n>s), attached keys([k])\n\n"
              "exit 0\n")
        << cairn.proc().log();
  }
}

}  // namespace
}  // namespace cairn
