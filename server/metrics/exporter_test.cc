// The exporter over an in-process node, scraped as Prometheus would and asserted on behaviour:
// the families dashboards use exist with etcd's types and buckets; db size grows with writes and
// in-use size falls after compaction and defrag; the NOSPACE alarm gauge follows the alarm;
// leader changes and WAL fsyncs are counted; mvcc operations are counted as etcd counts them;
// gRPC calls are counted by method and code through the interceptor, every method pre-set to
// zero; and the page-fault signal: after the db's pages are evicted, reads raise the major-fault
// counter and lower the residency gauge.
#include "metrics/exporter.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "fmt/format.h"
#include "v3rpc/grpc_metrics.h"
#include "v3rpc/services.h"

namespace cairn::metrics {
namespace {

using namespace std::chrono_literals;

// "name{a="b",c="d"}" → value, and "# TYPE name type" → type.
struct scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  double at(const std::string& series) const {
    auto it = samples.find(series);
    if (it == samples.end()) {
      ADD_FAILURE() << "no series " << series;
      return -1;
    }
    return it->second;
  }
  bool has(const std::string& series) const { return samples.contains(series); }
};

scrape parse(const std::string& text) {
  scrape s;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      s.types[name] = type;
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    s.samples[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return s;
}

class ExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-metrics-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    etcdserver::server_config cfg;
    cfg.name = "m";
    cfg.data_dir = dir_ + "/data";
    cfg.initial_cluster = "m=http://127.0.0.1:2380";
    cfg.heartbeat = 10ms;
    cfg.election = 100ms;
    cfg.quota_bytes = 1 << 20;
    cfg.backend_batch_interval = 10ms;  // sizes move soon after the writes
    auto n = etcdserver::server::start(cfg);
    ASSERT_TRUE(n) << n.error().message;
    node_ = std::move(*n);
    grpc_ = std::make_unique<v3rpc::grpc_stats>(
        std::vector<std::string>{"etcdserverpb.KV", "etcdserverpb.Maintenance"});
    exporter_ = std::make_unique<exporter>(*node_, grpc_.get(), health_);
  }
  void TearDown() override {
    exporter_.reset();
    node_.reset();
    std::filesystem::remove_all(dir_);
  }
  scrape now() { return parse(exporter_->text()); }
  void put(const std::string& k, std::size_t bytes) {
    auto r = node_->put({k, std::string(bytes, 'v')});
    ASSERT_TRUE(r) << base::message(r.error());
  }

  std::string dir_;
  std::unique_ptr<etcdserver::server> node_;
  std::unique_ptr<v3rpc::grpc_stats> grpc_;
  std::shared_ptr<http::health_counters> health_ = std::make_shared<http::health_counters>();
  std::unique_ptr<exporter> exporter_;
};

TEST_F(ExporterTest, FamiliesHaveEtcdsTypesAndBuckets) {
  auto s = now();
  EXPECT_EQ(s.types["etcd_server_has_leader"], "gauge");
  EXPECT_EQ(s.types["etcd_server_leader_changes_seen_total"], "counter");
  EXPECT_EQ(s.types["etcd_server_proposals_committed_total"], "gauge");  // a gauge in etcd
  EXPECT_EQ(s.types["etcd_disk_wal_fsync_duration_seconds"], "histogram");
  EXPECT_EQ(s.types["etcd_disk_backend_commit_duration_seconds"], "histogram");
  EXPECT_EQ(s.types["etcd_mvcc_db_total_size_in_bytes"], "gauge");
  EXPECT_EQ(s.types["grpc_server_handled_total"], "counter");
  EXPECT_EQ(s.types["process_major_page_faults_total"], "counter");
  // ExponentialBuckets(0.001, 2, 14): 1 ms ... 8.192 s, then +Inf.
  EXPECT_TRUE(s.has("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"}"));
  EXPECT_TRUE(s.has("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"8.192\"}"));
  EXPECT_TRUE(s.has("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"}"));
  EXPECT_EQ(s.at("etcd_server_has_leader"), 1);
  EXPECT_EQ(s.at("etcd_server_is_leader"), 1);
  EXPECT_EQ(s.at("etcd_server_quota_backend_bytes"), 1 << 20);
  EXPECT_EQ(s.at("etcd_server_version{server_version=\"3.5.24\"}"), 1);
  EXPECT_EQ(s.at("etcd_cluster_version{cluster_version=\"3.5\"}"), 1);
  EXPECT_GE(s.at("etcd_server_leader_changes_seen_total"), 1);
  EXPECT_GT(s.at("process_resident_memory_bytes"), 0);
  EXPECT_GT(s.at("process_open_fds"), 0);
  EXPECT_GT(s.at("process_start_time_seconds"), 1.7e9);
}

TEST_F(ExporterTest, SizesFsyncsAndOperationsMoveWithTheWork) {
  auto before = now();
  for (int i = 0; i < 200; ++i) put("k" + std::to_string(i), 1000);
  ASSERT_TRUE(node_->range({.key = "k1"}));
  std::this_thread::sleep_for(100ms);  // committed
  auto after = now();
  EXPECT_GT(after.at("etcd_mvcc_db_total_size_in_bytes"),
            before.at("etcd_mvcc_db_total_size_in_bytes"));
  EXPECT_EQ(after.at("etcd_debugging_mvcc_db_total_size_in_bytes"),
            after.at("etcd_mvcc_db_total_size_in_bytes"));
  EXPECT_GE(after.at("etcd_disk_wal_fsync_duration_seconds_count"),
            before.at("etcd_disk_wal_fsync_duration_seconds_count") + 1);
  EXPECT_GT(after.at("etcd_disk_wal_write_bytes_total"), 200 * 1000);
  EXPECT_EQ(after.at("etcd_mvcc_put_total") - before.at("etcd_mvcc_put_total"), 200);
  EXPECT_EQ(after.at("etcd_mvcc_range_total") - before.at("etcd_mvcc_range_total"), 1);
  EXPECT_EQ(after.at("etcd_debugging_mvcc_current_revision"), 201);
  EXPECT_EQ(after.at("etcd_debugging_mvcc_keys_total"), 200);
  EXPECT_EQ(after.at("etcd_server_proposals_applied_total"), node_->applied_index());

  // A txn with two operations is a txn; its put counts as a put.
  mvcc::txn_request t;
  t.success.push_back({mvcc::put_request{"t", "1"}});
  t.success.push_back({mvcc::range_request{.key = "t"}});
  ASSERT_TRUE(node_->txn(t));
  std::this_thread::sleep_for(100ms);
  auto txn = now();
  EXPECT_EQ(txn.at("etcd_mvcc_txn_total") - after.at("etcd_mvcc_txn_total"), 1);
  EXPECT_EQ(txn.at("etcd_mvcc_put_total") - after.at("etcd_mvcc_put_total"), 1);

  // Delete most, compact and defrag: the in-use size falls, and so does the file.
  ASSERT_TRUE(node_->delete_range({.key = "k", .range_end = "l"}));
  ASSERT_TRUE(node_->compact(node_->store().rev(), true));
  ASSERT_TRUE(node_->defrag());
  auto small = now();
  EXPECT_LT(small.at("etcd_mvcc_db_total_size_in_use_in_bytes"),
            txn.at("etcd_mvcc_db_total_size_in_use_in_bytes"));
  EXPECT_LT(small.at("etcd_mvcc_db_total_size_in_bytes"),
            txn.at("etcd_mvcc_db_total_size_in_bytes"));
  EXPECT_EQ(small.at("etcd_disk_backend_defrag_duration_seconds_count"), 1);
  EXPECT_GT(small.at("etcd_debugging_mvcc_db_compaction_keys_total"), 0);
  EXPECT_EQ(small.at("etcd_debugging_mvcc_compact_revision"), node_->store().compact_rev());
}

TEST_F(ExporterTest, TheNoSpaceGaugeFollowsTheAlarm) {
  const std::string series = "etcd_debugging_server_alarms{alarm_type=\"NOSPACE\",member_id=\"" +
                             fmt::format("{:x}", node_->member_id()) + "\"}";
  EXPECT_EQ(now().at(series), 0);
  // Fill the 1 MiB quota.
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    auto r = node_->put({"big" + std::to_string(i), std::string(64 * 1024, 'x')});
    if (!r) {
      EXPECT_EQ(r.error(), base::errc::no_space);
      refused = true;
    }
    std::this_thread::sleep_for(15ms);  // let the batch commit so that the size shows
  }
  ASSERT_TRUE(refused);
  EXPECT_EQ(now().at(series), 1);
  ASSERT_TRUE(node_->delete_range({.key = "big", .range_end = "bih"}));
  ASSERT_TRUE(node_->compact(node_->store().rev(), true));
  ASSERT_TRUE(node_->defrag());
  etcdserver::alarm_request disarm;
  disarm.action = etcdserver::alarm_action::deactivate;
  disarm.member_id = node_->member_id();
  disarm.alarm = etcdserver::alarm_type::nospace;
  ASSERT_TRUE(node_->alarm(disarm));
  EXPECT_EQ(now().at(series), 0);
}

TEST_F(ExporterTest, GrpcCallsAreCountedByMethodAndCode) {
  v3rpc::kv_service kv(*node_, {});
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> icpt;
  icpt.push_back(v3rpc::grpc_stats_interceptor(*grpc_));
  b.experimental().SetInterceptorCreators(std::move(icpt));
  kv.register_on(b);
  auto server = b.BuildAndStart();
  auto stub = etcdserverpb::KV::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  const std::string range =
      R"(grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary")";
  // Pre-initialised at zero, Maintenance's methods too.
  auto zero = now();
  EXPECT_EQ(zero.at("grpc_server_started_total{" + range + "}"), 0);
  EXPECT_EQ(zero.at("grpc_server_handled_total{grpc_code=\"OK\"," + range + "}"), 0);
  EXPECT_TRUE(zero.has(
      R"(grpc_server_started_total{grpc_method="Snapshot",grpc_service="etcdserverpb.Maintenance",grpc_type="server_stream"})"));
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("client-api-version", "3.5");
    etcdserverpb::RangeRequest req;
    req.set_key("a");
    etcdserverpb::RangeResponse resp;
    ASSERT_TRUE(stub->Range(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    etcdserverpb::RangeRequest req;  // empty key: InvalidArgument
    etcdserverpb::RangeResponse resp;
    EXPECT_EQ(stub->Range(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  auto s = now();
  EXPECT_EQ(s.at("grpc_server_started_total{" + range + "}"), 4);
  EXPECT_EQ(s.at("grpc_server_handled_total{grpc_code=\"OK\"," + range + "}"), 3);
  EXPECT_EQ(s.at("grpc_server_handled_total{grpc_code=\"InvalidArgument\"," + range + "}"), 1);
  EXPECT_EQ(s.at("grpc_server_msg_received_total{" + range + "}"), 4);
  EXPECT_EQ(s.at("grpc_server_msg_sent_total{" + range + "}"), 3);
  EXPECT_GT(s.at("etcd_network_client_grpc_received_bytes_total"), 0);
  EXPECT_GT(s.at("etcd_network_client_grpc_sent_bytes_total"), 0);
  EXPECT_EQ(s.at(R"(etcd_server_client_requests_total{client_api_version="3.5",type="unary"})"), 3);
  EXPECT_EQ(s.at(R"(etcd_server_client_requests_total{client_api_version="unknown",type="unary"})"),
            1);
  EXPECT_FALSE(s.has("grpc_server_handling_seconds_count{" + range + "}"));  // basic level
  // Put is served through the asynchronous API: counted the same way.
  {
    grpc::ClientContext ctx;
    etcdserverpb::PutRequest req;
    req.set_key("a");
    etcdserverpb::PutResponse resp;
    ASSERT_TRUE(stub->Put(&ctx, req, &resp).ok());
  }
  const std::string put = R"(grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary")";
  auto after = now();
  EXPECT_EQ(after.at("grpc_server_started_total{" + put + "}"), 1);
  EXPECT_EQ(after.at("grpc_server_handled_total{grpc_code=\"OK\"," + put + "}"), 1);
  EXPECT_EQ(after.at("grpc_server_msg_received_total{" + put + "}"), 1);
  EXPECT_EQ(after.at("grpc_server_msg_sent_total{" + put + "}"), 1);
  server->Shutdown();
  kv.stop();  // before the server is destroyed
}

TEST_F(ExporterTest, EvictedPagesShowAsMajorFaultsAndLowerResidency) {
  for (int i = 0; i < 200; ++i) put("p" + std::to_string(i), 2000);  // 400 KB of values
  std::this_thread::sleep_for(100ms);  // past the batch interval: the values are in the file
  const double size = now().at("etcd_mvcc_db_total_size_in_bytes");
  node_->backend().warm();
  auto warm = now();
  EXPECT_GT(warm.at("cairn_mvcc_db_resident_bytes"), size / 2);
  node_->backend().drop_cached_pages();
  auto cold = now();
  if (cold.at("cairn_mvcc_db_resident_bytes") >= warm.at("cairn_mvcc_db_resident_bytes")) {
    // tmpfs and some overlay file systems cannot evict a file's pages.
    GTEST_SKIP() << "the file system of " << dir_ << " keeps evicted pages";
  }
  // Reading every value faults the pages back in, from disk.
  for (int i = 0; i < 200; ++i) {
    auto r = node_->range({.key = "p" + std::to_string(i)}, true);
    ASSERT_TRUE(r);
  }
  auto after = now();
  EXPECT_GT(after.at("process_major_page_faults_total"),
            cold.at("process_major_page_faults_total"));
  EXPECT_GT(after.at("cairn_mvcc_db_resident_bytes"), cold.at("cairn_mvcc_db_resident_bytes"));
}

}  // namespace
}  // namespace cairn::metrics

namespace cairn::metrics {
namespace {

// A clustered member's peers: etcd's families and labels (To/From/Local/Remote, ids in hex), and
// the round-trip histogram on etcd's buckets (100 µs doubling, 16 bounds) once a probe returned.
TEST_F(ExporterTest, PeerFamiliesCarryEtcdsLabelsAndBuckets) {
  EXPECT_FALSE(now().types.contains("etcd_network_active_peers"));  // a lone member: none
  std::vector<double> bounds;
  for (int i = 0; i < 16; ++i) bounds.push_back(0.0001 * (1 << i));
  base::histogram rtt(bounds);
  rtt.observe(0.0003);
  exporter_options o;
  o.peers = [&] {
    return std::vector<peer_sample>{{0xabc, 100, 2, 300, 4, true, 1, rtt.snapshot()},
                                    {0x7f, 0, 0, 0, 0, false, 3, {}}};
  };
  exporter e(*node_, grpc_.get(), health_, o);
  auto s = parse(e.text());
  const std::string local = fmt::format("{:x}", node_->member_id());
  EXPECT_EQ(s.types["etcd_network_peer_sent_bytes_total"], "counter");
  EXPECT_EQ(s.types["etcd_network_active_peers"], "gauge");
  EXPECT_EQ(s.types["etcd_network_peer_round_trip_time_seconds"], "histogram");
  EXPECT_EQ(s.at("etcd_network_peer_sent_bytes_total{To=\"abc\"}"), 100);
  EXPECT_EQ(s.at("etcd_network_peer_sent_failures_total{To=\"abc\"}"), 2);
  EXPECT_EQ(s.at("etcd_network_peer_received_bytes_total{From=\"abc\"}"), 300);
  EXPECT_EQ(s.at("etcd_network_peer_received_failures_total{From=\"abc\"}"), 4);
  EXPECT_EQ(s.at("etcd_network_active_peers{Local=\"" + local + "\",Remote=\"abc\"}"), 1);
  EXPECT_EQ(s.at("etcd_network_active_peers{Local=\"" + local + "\",Remote=\"7f\"}"), 0);
  EXPECT_EQ(s.at("etcd_network_disconnected_peers_total{Local=\"" + local + "\",Remote=\"7f\"}"),
            3);
  EXPECT_EQ(s.at("etcd_network_peer_round_trip_time_seconds_bucket{To=\"abc\",le=\"0.0002\"}"), 0);
  EXPECT_EQ(s.at("etcd_network_peer_round_trip_time_seconds_bucket{To=\"abc\",le=\"0.0004\"}"), 1);
  EXPECT_TRUE(s.has("etcd_network_peer_round_trip_time_seconds_bucket{To=\"abc\",le=\"3.2768\"}"));
  EXPECT_EQ(s.at("etcd_network_peer_round_trip_time_seconds_count{To=\"abc\"}"), 1);
  EXPECT_FALSE(s.has("etcd_network_peer_round_trip_time_seconds_count{To=\"7f\"}"));
}

}  // namespace
}  // namespace cairn::metrics
