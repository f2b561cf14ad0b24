// The probe endpoints against a fake node. Expected bodies are etcd 3.5's (health.go of
// release-3.5); where 3.4.23 differs (no "reason", no /livez or /readyz) the comparison test
// against the real binary lives in v3rpc's integration test and docs/compatibility.md.
#include "http/health.h"

#include <gtest/gtest.h>

#include <mutex>

#include "base/version.h"

namespace cairn::http {
namespace {

class fake_source final : public health_source {
 public:
  std::vector<alarm_type> alarms() override {
    std::lock_guard lock(mu_);
    return alarms_;
  }
  bool has_leader() override { return leader_; }
  cairn::expected<void, base::errc> read_probe(bool serializable) override {
    std::lock_guard lock(mu_);
    probes_.push_back(serializable);
    const auto& failure = serializable ? serializable_failure_ : linearizable_failure_;
    if (failure) return cairn::unexpected(*failure);
    return {};
  }
  bool is_learner() override { return learner_; }
  std::optional<std::string> cluster_version() override {
    if (!decided_) return std::nullopt;
    return health_source::cluster_version();
  }

  std::vector<bool> take_probes() {
    std::lock_guard lock(mu_);
    return std::exchange(probes_, {});
  }

  std::mutex mu_;
  std::vector<alarm_type> alarms_;
  bool leader_ = true;
  bool learner_ = false;
  bool decided_ = true;
  std::optional<base::errc> serializable_failure_;
  std::optional<base::errc> linearizable_failure_;
  std::vector<bool> probes_;
};

class health_endpoints : public ::testing::Test {
 protected:
  health_endpoints() {
    install_health(router_, source_, counters_);
    install_version(router_, source_);
    install_metrics(router_, [] { return std::string("etcd_fake 1\n"); });
  }

  response get(const std::string& target, std::string method = "GET") {
    request r;
    r.method = std::move(method);
    const std::size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.raw_query = target.substr(q + 1);
    r.query = parse_query(r.raw_query);
    return router_.route(r);
  }

  std::shared_ptr<fake_source> source_ = std::make_shared<fake_source>();
  std::shared_ptr<health_counters> counters_ = std::make_shared<health_counters>();
  router router_;
};

TEST_F(health_endpoints, health_ok) {
  const response r = get("/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"health":"true","reason":""})");
  EXPECT_TRUE(r.headers.empty());  // the server sniffs text/plain, as Go does for etcd
  // Linearizable by default: the probe is not serializable.
  EXPECT_EQ(source_->take_probes(), std::vector<bool>{false});
  EXPECT_EQ(counters_->success.load(), 1u);
  EXPECT_EQ(counters_->failures.load(), 0u);
}

TEST_F(health_endpoints, health_reports_the_first_alarm_not_excluded) {
  source_->alarms_ = {alarm_type::nospace, alarm_type::corrupt};
  response r = get("/health");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "{\"health\":\"false\",\"reason\":\"ALARM NOSPACE\"}\n");
  EXPECT_EQ(*find_header(r.headers, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(get("/health?exclude=NOSPACE").body,
            "{\"health\":\"false\",\"reason\":\"ALARM CORRUPT\"}\n");
  EXPECT_EQ(get("/health?exclude=NOSPACE&exclude=CORRUPT").status, 200);
  EXPECT_EQ(get("/health?exclude=&exclude=nospace").status, 503);  // names are exact
  source_->alarms_ = {alarm_type::none};
  EXPECT_EQ(get("/health").body, "{\"health\":\"false\",\"reason\":\"ALARM UNKNOWN\"}\n");
  EXPECT_EQ(counters_->failures.load(), 4u);
  EXPECT_EQ(counters_->success.load(), 1u);
}

TEST_F(health_endpoints, health_without_leader_unless_serializable) {
  source_->leader_ = false;
  response r = get("/health");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}\n");
  EXPECT_TRUE(source_->take_probes().empty());  // the read is not tried
  r = get("/health?serializable=true");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(source_->take_probes(), std::vector<bool>{true});
  EXPECT_EQ(get("/health?serializable=yes").status, 503);  // only "true" counts
}

TEST_F(health_endpoints, health_reports_a_failed_read) {
  source_->linearizable_failure_ = base::errc::timeout;
  const response r = get("/health");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body,
            "{\"health\":\"false\",\"reason\":\"RANGE ERROR:etcdserver: request timed out\"}\n");
  EXPECT_EQ(get("/health?serializable=true").status, 200);
}

TEST_F(health_endpoints, probes_take_only_get) {
  for (const std::string path :
       {"/health", "/livez", "/readyz", "/readyz/non_learner", "/version"}) {
    const response r = get(path, "POST");
    EXPECT_EQ(r.status, 405) << path;
    EXPECT_EQ(r.body, "Method Not Allowed\n") << path;
    EXPECT_EQ(*find_header(r.headers, "Allow"), "GET") << path;
  }
  EXPECT_EQ(get("/health", "HEAD").status, 405);  // as Go's handler: HEAD is not GET
}

TEST_F(health_endpoints, livez_and_readyz_pass) {
  response r = get("/livez");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
  EXPECT_EQ(r.headers, (header_list{{"Content-Type", "text/plain; charset=utf-8"},
                                    {"X-Content-Type-Options", "nosniff"}}));
  EXPECT_EQ(source_->take_probes(), std::vector<bool>{true});
  EXPECT_EQ(get("/livez?verbose").body, "[+]serializable_read ok\nok\n");
  EXPECT_EQ(get("/readyz?verbose=false").body,
            "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n"
            "[+]non_learner ok\nok\n");
  EXPECT_EQ(get("/readyz").body, "ok\n");
}

TEST_F(health_endpoints, readyz_failures_list_every_check) {
  source_->alarms_ = {alarm_type::corrupt};
  source_->linearizable_failure_ = base::errc::no_leader;
  source_->learner_ = true;
  const response r = get("/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body,
            "[-]data_corruption failed: alarm activated: CORRUPT\n"
            "[+]serializable_read ok\n"
            "[-]linearizable_read failed: etcdserver: no leader\n"
            "[-]non_learner failed: not supported for learner\n\n");
  // Excluding checks (unknown names are ignored).
  EXPECT_EQ(get("/readyz?exclude=data_corruption&exclude=linearizable_read&exclude=nope").body,
            "[+]serializable_read ok\n[-]non_learner failed: not supported for learner\n\n");
  EXPECT_EQ(
      get("/readyz?exclude=data_corruption&exclude=linearizable_read&exclude=non_learner").status,
      200);
  // NOSPACE is not corruption.
  source_->alarms_ = {alarm_type::nospace};
  EXPECT_EQ(get("/readyz/data_corruption").status, 200);
}

TEST_F(health_endpoints, single_checks_have_their_own_paths) {
  source_->learner_ = true;
  EXPECT_EQ(get("/readyz/non_learner").body,
            "[-]non_learner failed: not supported for learner\n\n");
  EXPECT_EQ(get("/readyz/serializable_read?verbose").body, "[+]serializable_read ok\nok\n");
  source_->serializable_failure_ = base::errc::stopped;
  EXPECT_EQ(get("/livez/serializable_read").body,
            "[-]serializable_read failed: etcdserver: server stopped\n\n");
  EXPECT_EQ(get("/livez/non_learner").status, 404);  // not a liveness check
  EXPECT_EQ(get("/livez/").status, 404);
}

TEST_F(health_endpoints, version_reports_35_and_cairn) {
  response r = get("/version");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, std::string("{\"etcdserver\":\"") + std::string(base::etcd_version) +
                        "\",\"etcdcluster\":\"" + std::string(base::etcd_cluster_version) +
                        "\",\"cairn\":\"" + std::string(base::cairn_version) + "\"}");
  EXPECT_EQ(r.body, R"({"etcdserver":"3.5.24","etcdcluster":"3.5.0","cairn":"0.1.0"})");
  EXPECT_EQ(r.headers, (header_list{{"Content-Type", "application/json"}}));
  source_->decided_ = false;
  EXPECT_EQ(get("/version").body,
            R"({"etcdserver":"3.5.24","etcdcluster":"not_decided","cairn":"0.1.0"})");
}

TEST_F(health_endpoints, metrics_serves_the_gathered_text) {
  const response r = get("/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "etcd_fake 1\n");
  EXPECT_EQ(*find_header(r.headers, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  get("/health");
  source_->leader_ = false;
  get("/health");
  get("/health");
  EXPECT_EQ(health_metrics_text(*counters_),
            "# HELP etcd_server_health_failures The total number of failed health checks\n"
            "# TYPE etcd_server_health_failures counter\n"
            "etcd_server_health_failures 2\n"
            "# HELP etcd_server_health_success The total number of successful health checks\n"
            "# TYPE etcd_server_health_success counter\n"
            "etcd_server_health_success 1\n");
}

}  // namespace
}  // namespace cairn::http
