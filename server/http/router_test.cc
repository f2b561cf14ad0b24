#include "http/router.h"

#include <gtest/gtest.h>

namespace cairn::http {
namespace {

request get(std::string path, std::string host = "127.0.0.1:2379") {
  request r;
  r.method = "GET";
  r.path = std::move(path);
  r.host = std::move(host);
  return r;
}

response answer(std::string text) {
  response r;
  r.body = std::move(text);
  return r;
}

TEST(http_router, exact_and_subtree_patterns_longest_first) {
  router r;
  r.handle("/health", [](const request&) { return answer("health"); });
  r.handle("/v3/", [](const request&) { return answer("v3"); });
  r.handle("/v3/kv/", [](const request&) { return answer("kv"); });
  EXPECT_EQ(r.route(get("/health")).body, "health");
  EXPECT_EQ(r.route(get("/v3/lease/grant")).body, "v3");
  EXPECT_EQ(r.route(get("/v3/kv/range")).body, "kv");
  EXPECT_EQ(r.route(get("/v3/")).body, "v3");
  // Exact patterns match only themselves.
  EXPECT_EQ(r.route(get("/health/")).status, 404);
  EXPECT_EQ(r.route(get("/healthz")).status, 404);
  const response nf = r.route(get("/nope"));
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.body, "404 page not found\n");
  EXPECT_DEATH(r.handle("/health", [](const request&) { return answer(""); }), "twice");
}

TEST(http_router, unclean_paths_are_redirected_as_by_servemux) {
  router r;
  r.handle("/version", [](const request&) { return answer("v"); });
  request req = get("//version");
  const response moved = r.route(req);
  EXPECT_EQ(moved.status, 301);
  EXPECT_EQ(*find_header(moved.headers, "Location"), "/version");
  EXPECT_EQ(moved.body, "<a href=\"/version\">Moved Permanently</a>.\n\n");
  req = get("/a/../version");
  req.raw_query = "x=1";
  EXPECT_EQ(*find_header(r.route(req).headers, "Location"), "/version?x=1");
  EXPECT_EQ(r.route(get("*")).status, 400);
}

TEST(http_router, clean_path_is_gos) {
  EXPECT_EQ(clean_path(""), "/");
  EXPECT_EQ(clean_path("/"), "/");
  EXPECT_EQ(clean_path("//a//b"), "/a/b");
  EXPECT_EQ(clean_path("/a/./b/../c/"), "/a/c/");
  EXPECT_EQ(clean_path("/../../x"), "/x");
  EXPECT_EQ(clean_path("/a/b/.."), "/a");
  EXPECT_EQ(clean_path("/v3/kv/range"), "/v3/kv/range");
}

TEST(http_router, access_control_adds_cors_and_answers_options) {
  request seen;
  handler h = with_access_control(
      [&seen](const request& r) {
        seen = r;
        return answer("inner");
      },
      {});
  const response ok = h(get("/version"));
  EXPECT_EQ(ok.body, "inner");
  EXPECT_EQ(*find_header(ok.headers, "Access-Control-Allow-Origin"), "*");
  EXPECT_EQ(*find_header(ok.headers, "Access-Control-Allow-Methods"),
            "POST, GET, OPTIONS, PUT, DELETE");
  EXPECT_EQ(*find_header(ok.headers, "Access-Control-Allow-Headers"),
            "accept, content-type, authorization");

  request options = get("/anything");
  options.method = "OPTIONS";
  seen.path.clear();
  const response pre = h(options);
  EXPECT_EQ(pre.status, 200);
  EXPECT_TRUE(pre.body.empty());
  EXPECT_TRUE(seen.path.empty());  // never reached the handler

  h(get("/v3beta/kv/range"));
  EXPECT_EQ(seen.path, "/v3/kv/range");
}

TEST(http_router, cors_list_echoes_only_listed_origins) {
  handler h = with_access_control([](const request&) { return answer(""); },
                                  {.cors = {"http://a.example"}, .host_whitelist = {}});
  request r = get("/version");
  r.headers = {{"Origin", "http://a.example"}};
  EXPECT_EQ(*find_header(h(r).headers, "Access-Control-Allow-Origin"), "http://a.example");
  r.headers = {{"Origin", "http://b.example"}};
  EXPECT_EQ(find_header(h(r).headers, "Access-Control-Allow-Origin"), nullptr);
}

TEST(http_router, host_whitelist_refuses_other_hosts_with_421) {
  handler h = with_access_control([](const request&) { return answer("inner"); },
                                  {.cors = {"*"}, .host_whitelist = {"localhost", "::1"}});
  EXPECT_EQ(h(get("/version", "localhost:2379")).body, "inner");
  EXPECT_EQ(h(get("/version", "[::1]:2379")).body, "inner");
  EXPECT_EQ(h(get("/version", "localhost")).body, "inner");
  const response refused = h(get("/version", "evil.example:2379"));
  EXPECT_EQ(refused.status, 421);
  EXPECT_EQ(refused.body,
            "\netcd received your request, but the Host header was unrecognized.\n\n"
            "To fix this, choose one of the following options:\n"
            "- Enable TLS, then any HTTPS request will be allowed.\n"
            "- Add the hostname you want to use to the whitelist in settings.\n"
            "  - e.g. etcd --host-whitelist \"evil.example\"\n\n"
            "This requirement has been added to help prevent \"DNS Rebinding\" attacks "
            "(CVE-2018-5702).\n\n");
  EXPECT_EQ(find_header(refused.headers, "Access-Control-Allow-Origin"), nullptr);
  // Over TLS the Host is not checked.
  request secure = get("/version", "evil.example");
  secure.secure = true;
  EXPECT_EQ(h(secure).body, "inner");
}

}  // namespace
}  // namespace cairn::http
