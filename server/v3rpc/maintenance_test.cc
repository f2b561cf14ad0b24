// Maintenance.Snapshot, Hash and MoveLeader of an in-process node, driven through a real gRPC
// channel on 127.0.0.1 (the KV service writes the data they look at).
//
// The backend's batch interval is set far longer than any test, so every write is still in the
// open batch when Snapshot or Hash is called: both must commit it first.
//
// Planted bugs (-DCAIRN_PLANTED_BUG=..., or a #define at the top of the file they live in):
//   SNAPSHOT_NO_SHA256 (services.cc: the trailing SHA-256 message is not sent) is caught by
//     MaintenanceTest.SnapshotStreamsTheDbInChunksThenItsSha256 (and the e2e test);
//   HASH_KEYS_ONLY (server.cc: the hash skips values) is caught by
//     MaintenanceTest.HashDiffersWhenOnlyAValueDiffers.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "etcdserver/server.h"
#include "mvcc/store.h"
#include "schema/schema.h"
#include "v3rpc/services.h"

namespace cairn::v3rpc {
namespace {

using namespace std::chrono_literals;

class temp_dir {
 public:
  temp_dir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "cairn-maintenance-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() { std::filesystem::remove_all(path_); }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

// One node and the gRPC server in front of it.
class node_under_test {
 public:
  explicit node_under_test(const std::filesystem::path& dir, std::string name = "m") {
    etcdserver::server_config cfg;
    cfg.name = std::move(name);
    cfg.data_dir = dir.string();
    // Member ids hash the peer URLs (as etcd's), so each name gets its own port.
    cfg.initial_cluster = cfg.name + "=http://127.0.0.1:" +
                          std::to_string(2380 + std::hash<std::string>{}(cfg.name) % 1000);
    cfg.heartbeat = 10ms;
    cfg.election = 100ms;
    cfg.backend_batch_interval = 1h;
    auto n = etcdserver::server::start(cfg);
    EXPECT_TRUE(n) << (n ? "" : n.error().message);
    if (!n) return;
    node = std::move(*n);
    kv = std::make_unique<kv_service>(*node, service_options{});
    maintenance = std::make_unique<maintenance_service>(*node);
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    kv->register_on(b);
    b.RegisterService(maintenance.get());
    grpc_server = b.BuildAndStart();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                       grpc::InsecureChannelCredentials());
    kv_stub = etcdserverpb::KV::NewStub(channel);
    m_stub = etcdserverpb::Maintenance::NewStub(channel);
  }
  ~node_under_test() {
    if (grpc_server) grpc_server->Shutdown(std::chrono::system_clock::now() + 5s);
    if (kv) kv->stop();  // before the server is destroyed
  }

  std::int64_t put(const std::string& k, const std::string& v) {
    grpc::ClientContext ctx;
    etcdserverpb::PutRequest req;
    req.set_key(k);
    req.set_value(v);
    etcdserverpb::PutResponse resp;
    auto st = kv_stub->Put(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.header().revision();
  }

  etcdserverpb::HashResponse hash() {
    grpc::ClientContext ctx;
    etcdserverpb::HashResponse resp;
    auto st = m_stub->Hash(&ctx, etcdserverpb::HashRequest{}, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  std::unique_ptr<etcdserver::server> node;
  std::unique_ptr<kv_service> kv;
  std::unique_ptr<maintenance_service> maintenance;
  std::unique_ptr<grpc::Server> grpc_server;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_stub;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> m_stub;
};

// Every key-value in a db file (a snapshot's bytes), read back through our own backend and store.
std::map<std::string, std::string> read_db(const std::filesystem::path& path) {
  auto be = schema::open_backend(path.string(), backend::options{});
  EXPECT_TRUE(be) << (be ? "" : be.error().message);
  if (!be) return {};
  std::map<std::string, std::string> out;
  {
    auto store = mvcc::store::open(**be);
    mvcc::range_request r;
    r.key = std::string(1, '\0');
    r.range_end = std::string(1, '\0');
    auto res = store->range(r);
    EXPECT_TRUE(res);
    if (res) {
      for (const auto& kv : res->kvs) out[kv.key] = kv.value;
    }
  }
  return out;
}

class MaintenanceTest : public ::testing::Test {
 protected:
  temp_dir dir_;
  node_under_test n_{dir_.path() / "data"};
};

struct snapshot_stream {
  std::vector<etcdserverpb::SnapshotResponse> messages;
  grpc::Status status;
  std::string bytes() const {
    std::string all;
    for (const auto& m : messages) all += m.blob();
    return all;
  }
};

snapshot_stream fetch_snapshot(etcdserverpb::Maintenance::Stub& stub,
                               const std::function<void(int)>& after_message = nullptr) {
  snapshot_stream out;
  grpc::ClientContext ctx;
  auto reader = stub.Snapshot(&ctx, etcdserverpb::SnapshotRequest{});
  etcdserverpb::SnapshotResponse m;
  while (reader->Read(&m)) {
    out.messages.push_back(m);
    if (after_message) after_message(static_cast<int>(out.messages.size()));
  }
  out.status = reader->Finish();
  return out;
}

TEST_F(MaintenanceTest, SnapshotStreamsTheDbInChunksThenItsSha256) {
  // Enough data for several chunks: 300 values of 1 KiB.
  std::int64_t last = 0;
  for (int i = 0; i < 300; ++i) {
    last = n_.put("key-" + std::to_string(i), std::string(1024, static_cast<char>('a' + i % 26)));
  }
  const auto s = fetch_snapshot(*n_.m_stub);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_GE(s.messages.size(), 4u);

  // Data chunks: 32 KiB each but the last, remaining_bytes counting down to 0.
  const auto& msgs = s.messages;
  const std::size_t data_chunks = msgs.size() - 1;
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < data_chunks; ++i) total += msgs[i].blob().size();
  std::uint64_t sent = 0;
  for (std::size_t i = 0; i < data_chunks; ++i) {
    if (i + 1 < data_chunks) {
      EXPECT_EQ(msgs[i].blob().size(), snapshot_chunk_bytes) << i;
    }
    EXPECT_GT(msgs[i].blob().size(), 0u) << i;
    sent += msgs[i].blob().size();
    EXPECT_EQ(msgs[i].remaining_bytes(), total - sent) << i;
  }
  // The first message says what it holds; the others carry no header.
  EXPECT_EQ(msgs[0].header().member_id(), n_.node->member_id());
  EXPECT_EQ(msgs[0].header().cluster_id(), n_.node->cluster_id());
  EXPECT_GE(msgs[0].header().revision(), last);
  EXPECT_GT(msgs[0].header().raft_term(), 0u);
  EXPECT_FALSE(msgs[1].has_header());

  // The last message: the SHA-256 of every db byte before it, nothing remaining.
  const std::string all = s.bytes();
  ASSERT_EQ(all.size(), total + 32);
  EXPECT_EQ(msgs.back().remaining_bytes(), 0u);
  EXPECT_EQ(msgs.back().blob(), sha256(std::string_view(all).substr(0, total)));
  // An LMDB file is whole pages: what etcd's restore uses to find the trailer (size % 512 == 32).
  EXPECT_EQ(all.size() % 512, 32u);

  // The db bytes are a database holding every key written (still in the open batch when the
  // snapshot was asked for).
  const auto path = dir_.path() / "snapshot.db";
  std::ofstream(path, std::ios::binary).write(all.data(), static_cast<std::streamsize>(total));
  auto kvs = read_db(path);
  ASSERT_EQ(kvs.size(), 300u);
  EXPECT_EQ(kvs["key-0"], std::string(1024, 'a'));
  EXPECT_EQ(kvs["key-299"], std::string(1024, static_cast<char>('a' + 299 % 26)));
}

TEST_F(MaintenanceTest, WritesDuringTheStreamDoNotChangeIt) {
  for (int i = 0; i < 200; ++i) n_.put("before-" + std::to_string(i), std::string(1024, 'b'));
  std::atomic<bool> stop{false};
  std::thread writer;
  int during = 0;
  // Once the first chunk has arrived, write and commit (Hash commits the open batch) while the
  // rest streams; the stream is slowed so that the writes overlap it.
  const auto s = fetch_snapshot(*n_.m_stub, [&](int received) {
    if (received == 1) {
      writer = std::thread([&] {
        while (!stop.load()) {
          n_.put("during-" + std::to_string(during++), std::string(1024, 'd'));
          // Overwrite data the snapshot holds too.
          n_.put("before-" + std::to_string(during % 200), "changed");
          (void)n_.hash();
        }
      });
    }
    std::this_thread::sleep_for(20ms);
  });
  stop = true;
  writer.join();
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_GT(during, 0);

  const std::string all = s.bytes();
  ASSERT_GT(all.size(), 32u);
  const std::size_t total = all.size() - 32;
  ASSERT_EQ(all.substr(total), sha256(std::string_view(all).substr(0, total)));
  const auto path = dir_.path() / "snapshot.db";
  std::ofstream(path, std::ios::binary).write(all.data(), static_cast<std::streamsize>(total));
  auto kvs = read_db(path);
  EXPECT_EQ(kvs.size(), 200u);
  for (const auto& [k, v] : kvs) {
    EXPECT_TRUE(k.starts_with("before-")) << k;
    EXPECT_EQ(v, std::string(1024, 'b')) << k;
  }
}

TEST_F(MaintenanceTest, HashIsStableAndIncludesTheOpenBatch) {
  const auto empty = n_.hash();
  EXPECT_EQ(empty.hash(), n_.hash().hash());
  const auto rev = n_.put("a", "1");
  const auto h1 = n_.hash();
  EXPECT_NE(h1.hash(), empty.hash());
  EXPECT_EQ(h1.header().revision(), rev);
  EXPECT_EQ(h1.header().member_id(), n_.node->member_id());
  EXPECT_EQ(h1.header().cluster_id(), n_.node->cluster_id());
  // Reads change nothing; nor does time (the consistent index is not hashed).
  grpc::ClientContext ctx;
  etcdserverpb::RangeRequest range;
  range.set_key("a");
  etcdserverpb::RangeResponse range_resp;
  ASSERT_TRUE(n_.kv_stub->Range(&ctx, range, &range_resp).ok());
  EXPECT_EQ(n_.hash().hash(), h1.hash());
}

// The whole db is hashed (members bucket included, as etcd's Hash does), so the same member
// over another data directory: e2e/cluster_test.cc compares the members of one cluster.
TEST_F(MaintenanceTest, SameDataInAnotherDataDirectoryHashesTheSame) {
  temp_dir other_dir;
  node_under_test other(other_dir.path() / "data");
  for (auto* n : {&n_, &other}) {
    n->put("a", "1");
    n->put("b", "2");
  }
  // An alarm list goes through raft: on one of them it moves only the consistent index.
  const auto before = other.node->applied_index();
  grpc::ClientContext ctx;
  etcdserverpb::AlarmResponse alarm_resp;
  ASSERT_TRUE(other.m_stub->Alarm(&ctx, etcdserverpb::AlarmRequest{}, &alarm_resp).ok());
  ASSERT_GT(other.node->applied_index(), before);
  EXPECT_EQ(n_.hash().hash(), other.hash().hash());
}

TEST_F(MaintenanceTest, HashDiffersWhenOnlyAValueDiffers) {
  temp_dir other_dir;
  node_under_test other(other_dir.path() / "data");
  n_.put("a", "1");
  other.put("a", "2");
  EXPECT_NE(n_.hash().hash(), other.hash().hash());
}

TEST_F(MaintenanceTest, MoveLeaderToItselfSucceedsAndToAStrangerFails) {
  grpc::ClientContext ctx;
  etcdserverpb::MoveLeaderRequest req;
  req.set_targetid(n_.node->member_id());
  etcdserverpb::MoveLeaderResponse resp;
  auto st = n_.m_stub->MoveLeader(&ctx, req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(resp.has_header());  // as etcd
  EXPECT_EQ(n_.node->leader(), n_.node->member_id());

  for (std::uint64_t target : {std::uint64_t{0}, n_.node->member_id() + 1}) {
    grpc::ClientContext ctx2;
    req.set_targetid(target);
    st = n_.m_stub->MoveLeader(&ctx2, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << target;
    EXPECT_EQ(st.error_message(), "etcdserver: bad leader transferee") << target;
  }
}

TEST(MoveLeaderCheck, EtcdsOrderOfChecks) {
  const std::vector<std::uint64_t> voters = {1, 2, 3};
  EXPECT_EQ(check_move_leader(1, 1, voters, 2), std::nullopt);
  EXPECT_EQ(check_move_leader(1, 1, voters, 1), std::nullopt);
  // Not the leader: refused before the target is looked at.
  EXPECT_EQ(check_move_leader(2, 1, voters, 3), base::errc::not_leader);
  EXPECT_EQ(check_move_leader(2, 1, voters, 9), base::errc::not_leader);
  EXPECT_EQ(check_move_leader(2, 0, voters, 2), base::errc::not_leader);
  EXPECT_EQ(check_move_leader(1, 1, voters, 9), base::errc::bad_leader_transferee);
  EXPECT_EQ(check_move_leader(1, 1, voters, 0), base::errc::bad_leader_transferee);
}

}  // namespace
}  // namespace cairn::v3rpc
