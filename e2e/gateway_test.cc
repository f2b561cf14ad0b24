// The JSON gateway of `cairn` with curl, against the real etcd 3.4.23's: each request goes to
// both, and the status line, the headers a client sees (Content-Type, Grpc-Metadata-*, Trailer,
// Transfer-Encoding), the body and the trailers must match once ids, sizes and versions are
// masked. Where Cairn answers as etcd 3.5 does and 3.4.23 did not, the test checks Cairn's
// answer on its own (docs/compatibility.md lists these). Then the HTTP side of the real binary:
// CORS headers and OPTIONS, --enable-grpc-gateway=false, and the gateway on
// --listen-client-http-urls.
#include <absl/strings/escaping.h>
#include <absl/strings/str_format.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/e2e.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;

struct answer {
  std::string head;  // status line and the compared headers, one per line
  std::string body;
  int exit_code = 0;
};

// POSTs `body` to `path` with curl (or `method` instead of POST); `max_time` bounds streams.
answer curl(const std::string& endpoint, const std::string& path, const std::string& body,
            const std::string& method = "POST", const std::string& max_time = "10") {
  std::vector<std::string> argv = {
      "/usr/bin/curl", "-s", "-i", "-N", "-m", max_time, "-X", method, "http://" + endpoint + path};
  if (method == "POST") {
    argv.push_back("--data-binary");
    argv.push_back(body);
  }
  auto r = e2e::run(argv, {}, 30s);
  answer a;
  a.exit_code = r.exit_code;
  std::string out = r.out;
  const auto split = out.find("\r\n\r\n");
  const std::string head = out.substr(0, split);
  a.body = split == std::string::npos ? "" : out.substr(split + 4);
  std::size_t pos = 0;
  while (pos < head.size()) {
    auto nl = head.find("\r\n", pos);
    if (nl == std::string::npos) nl = head.size();
    const std::string line = head.substr(pos, nl - pos);
    pos = nl + 2;
    static const std::regex kept(
        R"(^(HTTP/|Content-Type:|Grpc-|Trailer:|Transfer-Encoding:|Access-Control-|X-Content))");
    if (std::regex_search(line, kept)) a.head += line + "\n";
  }
  return a;
}

// Ids, terms, sizes, versions, raft indexes (docs/compatibility.md: Cairn's log is 2 entries
// shorter) and lease-derived keys are masked; nothing else.
std::string mask(std::string s) {
  static const std::vector<std::pair<std::regex, std::string>> masks = {
      {std::regex(R"re("(cluster_id|member_id|leader|ID|raft_term|raftTerm)":"\d+")re"),
       "\"$1\":\"<id>\""},
      {std::regex(R"re("(dbSize|dbSizeInUse)":"\d+")re"), "\"$1\":\"<size>\""},
      {std::regex(R"re("(raftIndex|raftAppliedIndex)":"\d+")re"), "\"$1\":\"<index>\""},
      {std::regex(R"re("version":"3\.\d+\.\d+")re"), "\"version\":\"<version>\""},
      {std::regex(R"re("peerURLs":\["[^"]*"\])re"), "\"peerURLs\":[<url>]"},
      {std::regex(R"re("clientURLs":\["[^"]*"\])re"), "\"clientURLs\":[<url>]"},
      {std::regex(R"re("name":"[^"]*","peerURLs")re"), "\"name\":<name>,\"peerURLs\""},
  };
  for (const auto& [re, with] : masks) s = std::regex_replace(s, re, with);
  return s;
}

struct step {
  std::string name;
  std::string path;
  std::string body;
  std::string method = "POST";
};

// Requests that both servers answer alike. Order matters (revisions).
const std::vector<step>& same_steps() {
  static const std::vector<step> steps = {
      {"put", "/v3/kv/put", R"({"key":"Zm9v","value":"YmFy"})"},
      {"put prev_kv", "/v3/kv/put", R"({"key":"Zm9v","value":"YmF6","prev_kv":true})"},
      {"range", "/v3/kv/range", R"({"key":"Zm9v"})"},
      {"range by JSON name", "/v3/kv/range", R"({"key":"Zm9v","keysOnly":true})"},
      {"range unknown field", "/v3/kv/range", R"({"key":"Zm9v","bogus":1})"},
      {"range empty body", "/v3/kv/range", ""},
      {"range empty key", "/v3/kv/range", R"({"key":""})"},
      {"range future revision", "/v3/kv/range", R"({"key":"Zm9v","revision":"99"})"},
      {"range count only prefix", "/v3/kv/range",
       R"({"key":"Zg==","range_end":"Zw==","count_only":true})"},
      {"range as GET", "/v3/kv/range", "", "GET"},
      {"range as PUT", "/v3/kv/range", "{}", "PUT"},
      {"unknown path", "/v3/kv/nothing", "{}"},
      {"v3beta alias", "/v3beta/kv/range", R"({"key":"Zm9v","keys_only":true})"},
      {"v3alpha is gone", "/v3alpha/kv/range", R"({"key":"Zm9v"})"},
      {"txn", "/v3/kv/txn",
       R"({"compare":[{"key":"Zm9v","target":"VALUE","result":"EQUAL","value":"YmF6"}],)"
       R"("success":[{"request_put":{"key":"Zm9v","value":"Yg=="}},{"request_range":{"key":"Zm9v"}}],)"
       R"("failure":[{"request_range":{"key":"Zm9v"}}]})"},
      {"txn fails", "/v3/kv/txn",
       R"({"compare":[{"key":"Zm9v","target":"MOD","result":"EQUAL","mod_revision":"1"}],)"
       R"("failure":[{"request_range":{"key":"Zm9v"}}]})"},
      {"txn duplicate key", "/v3/kv/txn",
       R"({"success":[{"request_put":{"key":"YQ=="}},{"request_put":{"key":"YQ=="}}]})"},
      {"deleterange", "/v3/kv/deleterange", R"({"key":"eA==","prev_kv":true})"},
      {"compaction", "/v3/kv/compaction", R"({"revision":"2"})"},
      {"compaction again", "/v3/kv/compaction", R"({"revision":"2"})"},
      {"range compacted", "/v3/kv/range", R"({"key":"Zm9v","revision":"1"})"},
      {"lease timetolive unknown", "/v3/kv/lease/timetolive", R"({"ID":"5"})"},
      {"lease revoke unknown", "/v3/lease/revoke", R"({"ID":"5"})"},
      {"lease grant too large", "/v3/lease/grant", R"({"TTL":"9000000001"})"},
      {"keepalive unknown", "/v3/lease/keepalive", R"({"ID":"5"})"},
      {"member list", "/v3/cluster/member/list", "{}"},
      {"member remove unknown", "/v3/cluster/member/remove", R"({"ID":"5"})"},
      {"status", "/v3/maintenance/status", "{}"},
      {"transfer to a stranger", "/v3/maintenance/transfer-leadership", R"({"targetID":"5"})"},
      {"election leader none", "/v3/election/leader", R"({"name":"ZQ=="})"},
      {"proclaim without leader", "/v3/election/proclaim", R"({"value":"dg=="})"},
      {"unlock empty", "/v3/lock/unlock", "{}"},
      {"user get", "/v3/auth/user/get", R"({"name":"x"})"},
      {"role list", "/v3/auth/role/list", "{}"},
      {"auth enable without root", "/v3/auth/enable", "{}"},
      {"watch history", "/v3/watch", R"({"create_request":{"key":"Zm9v","start_revision":"3"}})"},
      {"watch compacted", "/v3/watch", R"({"create_request":{"key":"Zm9v","start_revision":"1"}})"},
  };
  return steps;
}

std::vector<std::string> transcript(const std::string& endpoint) {
  std::vector<std::string> out;
  for (const auto& s : same_steps()) {
    const bool stream = s.path == "/v3/watch" || s.path == "/v3/lease/keepalive";
    auto a = curl(endpoint, s.path, s.body, s.method, stream ? "1" : "10");
    out.push_back("## " + s.name + "\n" + a.head + mask(a.body));
  }
  return out;
}

TEST(Gateway, SameAnswersAsEtcd) {
  e2e::etcd_server etcd;
  const auto want = transcript(etcd.endpoint());
  e2e::temp_dir dir("cairn-gateway");
  e2e::cairn_server cairn(dir.path() / "data");
  const auto got = transcript(cairn.endpoint());
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]);
  // The transcript is about what it claims: a few answers spelled out.
  EXPECT_NE(want[0].find("HTTP/1.1 200 OK\n"), std::string::npos) << want[0];
  EXPECT_NE(want[6].find(R"("error":"etcdserver: key is not provided")"), std::string::npos);
  EXPECT_NE(want[9].find("405 Method Not Allowed"), std::string::npos);
}

// What Cairn answers as etcd 3.5 and 3.4.23 did not (docs/compatibility.md).
TEST(Gateway, ThreeFiveAnswers) {
  e2e::temp_dir dir("cairn-gateway");
  e2e::cairn_server cairn(dir.path() / "data");
  const std::string ep = cairn.endpoint();
  auto status = curl(ep, "/v3/auth/status", "{}");
  EXPECT_NE(status.head.find("200 OK"), std::string::npos) << status.head;
  EXPECT_NE(status.body.find(R"("authRevision":"1")"), std::string::npos) << status.body;
  auto hashkv = curl(ep, "/v3/maintenance/hashkv", "{}");
  EXPECT_NE(hashkv.body.find(R"("hash":)"), std::string::npos) << hashkv.body;
  // A progress request is answered after the history it covers (3.4.23 answered it first).
  curl(ep, "/v3/kv/put", R"({"key":"aw==","value":"dg=="})");
  auto w = curl(ep, "/v3/watch",
                R"({"create_request":{"key":"aw==","start_revision":"1"}}{"progress_request":{}})",
                "POST", "1");
  const auto events = w.body.find(R"("events")");
  const auto progress = w.body.find(R"("watch_id":"-1")");
  ASSERT_NE(events, std::string::npos) << w.body;
  ASSERT_NE(progress, std::string::npos) << w.body;
  EXPECT_LT(events, progress);
}

TEST(Gateway, LocksAndSnapshotsThroughTheGateway) {
  e2e::temp_dir dir("cairn-gateway");
  e2e::cairn_server cairn(dir.path() / "data");
  const std::string ep = cairn.endpoint();
  auto grant = curl(ep, "/v3/lease/grant", R"({"TTL":"60"})");
  std::smatch m;
  const std::string grant_body = grant.body;
  ASSERT_TRUE(std::regex_search(grant_body, m, std::regex(R"re("ID":"(\d+)")re"))) << grant.body;
  const std::string id = m[1];
  auto lock = curl(ep, "/v3/lock/lock", R"({"name":"bA==","lease":")" + id + "\"}");
  EXPECT_NE(lock.head.find("200 OK"), std::string::npos) << lock.head << lock.body;
  // The owner key is the name, '/', and the lease id in hex. Its base64 depends on the id's
  // first hex digit, so the test encodes the whole key rather than matching a prefix.
  const std::string owner = absl::StrFormat("l/%x", std::stoll(id));
  EXPECT_NE(lock.body.find("\"key\":\"" + absl::Base64Escape(owner) + "\""), std::string::npos)
      << owner << "\n"
      << lock.body;
  auto keep = curl(ep, "/v3/lease/keepalive", R"({"ID":")" + id + "\"}", "POST", "2");
  EXPECT_NE(keep.body.find(R"({"result":{"header")"), std::string::npos) << keep.body;
  EXPECT_NE(keep.body.find(R"("TTL":"60")"), std::string::npos) << keep.body;
  auto snap = curl(ep, "/v3/maintenance/snapshot", "{}", "POST", "5");
  EXPECT_NE(snap.body.find(R"({"result":{"header")"), std::string::npos)
      << snap.body.substr(0, 200);
  EXPECT_NE(snap.body.find(R"("blob":)"), std::string::npos);
  // The last message carries the SHA-256 (32 bytes: 44 base64 characters) and remaining 0.
  EXPECT_NE(snap.body.rfind("{\"result\":{\"blob\":\""), std::string::npos);
}

TEST(Gateway, TheBinaryAppliesCorsAndTheGatewayFlag) {
  e2e::temp_dir dir("cairn-gateway");
  {
    e2e::cairn_server cairn(dir.path() / "a", {"--cors=http://allowed.example:8080"});
    auto opt = curl(cairn.endpoint(), "/v3/kv/range", "", "OPTIONS");
    EXPECT_NE(opt.head.find("HTTP/1.1 200 OK"), std::string::npos) << opt.head;
    auto r = e2e::run({"/usr/bin/curl", "-s", "-i", "-H", "Origin: http://allowed.example:8080",
                       "-X", "POST", "--data-binary", R"({"key":"YQ=="})",
                       "http://" + cairn.endpoint() + "/v3/kv/range"});
    EXPECT_NE(r.out.find("Access-Control-Allow-Origin: http://allowed.example:8080"),
              std::string::npos)
        << r.out;
    auto other = e2e::run({"/usr/bin/curl", "-s", "-i", "-H", "Origin: http://other.example:8080",
                           "http://" + cairn.endpoint() + "/health"});
    EXPECT_EQ(other.out.find("Access-Control-Allow-Origin"), std::string::npos) << other.out;
  }
  {
    e2e::cairn_server cairn(dir.path() / "b", {"--enable-grpc-gateway=false"});
    auto r = curl(cairn.endpoint(), "/v3/kv/range", R"({"key":"YQ=="})");
    EXPECT_NE(r.head.find("404"), std::string::npos) << r.head;
    EXPECT_EQ(r.body, "404 page not found\n");
  }
  {
    const int http_port = e2e::free_port();
    const std::string http_url = "http://127.0.0.1:" + std::to_string(http_port);
    e2e::cairn_server cairn(dir.path() / "c", {"--listen-client-http-urls=" + http_url});
    const std::string ep = "127.0.0.1:" + std::to_string(http_port);
    auto r = curl(ep, "/v3/kv/put", R"({"key":"YQ==","value":"Yg=="})");
    EXPECT_NE(r.head.find("200 OK"), std::string::npos) << r.head << r.body;
    auto h = e2e::run({"/usr/bin/curl", "-s", "http://" + ep + "/health"});
    EXPECT_EQ(h.out, R"({"health":"true","reason":""})");
  }
}

}  // namespace
}  // namespace cairn
