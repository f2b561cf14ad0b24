// The HTTP side of the real `cairn` binary, beside the real etcd 3.4.23 with the same flags:
// /health (with ?serializable=true and ?exclude=NOSPACE), /livez, /readyz, /version and
// /metrics on the client URL and on --listen-metrics-urls, which serves nothing else; then
// /health under a NOSPACE alarm. Where 3.5 differs from 3.4.23 (docs/compatibility.md: the
// "reason" field, /livez and /readyz) Cairn's answer is checked on its own.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/e2e.h"

namespace cairn {
namespace {

struct got {
  int status = 0;
  std::string body;
};

got get(const std::string& url, const std::string& method = "GET") {
  auto r = e2e::run({"/usr/bin/curl", "-s", "-X", method, "-w", "\n%{http_code}", url});
  got g;
  const auto nl = r.out.rfind('\n');
  g.body = r.out.substr(0, nl);
  g.status = std::atoi(r.out.c_str() + nl + 1);
  return g;
}

TEST(HttpProbes, ClientAndMetricsUrlsOfTheBinary) {
  const int etcd_metrics = e2e::free_port();
  const int cairn_metrics = e2e::free_port();
  e2e::etcd_server etcd({"--listen-metrics-urls=http://127.0.0.1:" + std::to_string(etcd_metrics)});
  e2e::temp_dir dir("cairn-probes");
  e2e::cairn_server cairn(dir.path() / "data", {"--listen-metrics-urls=http://127.0.0.1:" +
                                                std::to_string(cairn_metrics)});
  const std::string e = "http://" + etcd.endpoint();
  const std::string c = "http://" + cairn.endpoint();
  const std::string em = "http://127.0.0.1:" + std::to_string(etcd_metrics);
  const std::string cm = "http://127.0.0.1:" + std::to_string(cairn_metrics);

  for (const std::string path :
       {"/health", "/health?serializable=true", "/health?exclude=NOSPACE"}) {
    auto want = get(e + path);
    auto ours = get(c + path);
    EXPECT_EQ(want.status, 200) << path;
    EXPECT_EQ(want.body, R"({"health":"true"})") << path;  // 3.4.23
    EXPECT_EQ(ours.status, 200) << path;
    EXPECT_EQ(ours.body, R"({"health":"true","reason":""})") << path;  // 3.5
    // The metrics URL answers the same probes.
    EXPECT_EQ(get(em + path).body, want.body) << path;
    EXPECT_EQ(get(cm + path).body, ours.body) << path;
  }
  for (const std::string& base : {c, cm}) {
    EXPECT_EQ(get(base + "/livez").status, 200) << base;
    EXPECT_EQ(get(base + "/livez").body, "ok\n");
    EXPECT_NE(get(base + "/readyz?verbose").body.find("[+]linearizable_read ok"), std::string::npos)
        << base;
    auto v = get(base + "/version");
    EXPECT_EQ(v.body.rfind(R"({"etcdserver":"3.5.24","etcdcluster":"3.5.0")", 0), 0u) << v.body;
  }
  EXPECT_EQ(get(e + "/livez").status, 404);  // 3.4.23 has no /livez
  // /metrics: the families dashboards read, on both URLs of both servers.
  for (const std::string& base : {e, em, c, cm}) {
    auto m = get(base + "/metrics");
    EXPECT_EQ(m.status, 200) << base;
    for (const char* name :
         {"etcd_server_has_leader 1", "etcd_server_leader_changes_seen_total",
          "etcd_disk_wal_fsync_duration_seconds_bucket", "etcd_mvcc_db_total_size_in_bytes",
          "grpc_server_handled_total", "process_resident_memory_bytes"}) {
      EXPECT_NE(m.body.find(name), std::string::npos) << base << " lacks " << name;
    }
  }
  // The metrics URL serves nothing else.
  EXPECT_EQ(get(em + "/v3/kv/range", "POST").status, 404);
  EXPECT_EQ(get(cm + "/v3/kv/range", "POST").status, 404);
}

TEST(HttpProbes, HealthUnderANoSpaceAlarm) {
  e2e::temp_dir dir("cairn-probes");
  e2e::cairn_server cairn(dir.path() / "data", {"--quota-backend-bytes=262144"});
  const std::string c = "http://" + cairn.endpoint();
  const std::string value(6000, 'v');
  int code = 0;
  for (int i = 0; i < 2000 && code == 0; ++i) {
    code = e2e::run({e2e::etcdctl_binary().string(), "--endpoints=" + cairn.endpoint(), "put",
                     "k" + std::to_string(i % 50), value},
                    {{"ETCDCTL_API", "3"}})
               .exit_code;
  }
  ASSERT_NE(code, 0);
  auto h = get(c + "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(h.body, "{\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}\n");
  auto ex = get(c + "/health?exclude=NOSPACE");
  EXPECT_EQ(ex.status, 200);
  EXPECT_EQ(ex.body, R"({"health":"true","reason":""})");
  auto ready = get(c + "/readyz");
  EXPECT_EQ(ready.status, 200);  // an alarm does not make a member unready
  auto m = get(c + "/metrics");
  EXPECT_NE(m.body.find("etcd_debugging_server_alarms{alarm_type=\"NOSPACE\""), std::string::npos);
  EXPECT_NE(m.body.find("etcd_server_health_failures 1"), std::string::npos)
      << m.body.substr(0, 400);
}

}  // namespace
}  // namespace cairn
