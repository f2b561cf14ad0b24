// kill -9 at a random moment under a concurrent write load, against the real `cairn` binary.
//
// 16 client threads put 100,000 distinct keys (key i → a value derived from i) over gRPC; a
// separate thread SIGKILLs the server once a random number of puts (1..100,000, drawn from the
// seed) have been acknowledged. The server restarts on the same data directory and every
// acknowledged put must be there, at the revision it was acknowledged with; the revisions must form
// one unbroken history (each key was written once, so the store's revision is 1 + the number of
// keys). Then the keys not there are written and all 100,000 are checked.
//
// What this can and cannot catch: SIGKILL ends the process but not the machine, so whatever the
// server handed to the kernel (write()) survives in the page cache even if it never called
// fdatasync. A server that acknowledges before its WAL write reaches the kernel (entries held in
// a user-space buffer, an ack sent before the append) fails here; one that writes but skips
// fdatasync does not, and is left to the power-cut test on the simulated file layer
// (server/etcdserver/durability_test.cc). Planted bug caught here: WAL_USER_BUFFER.
//
// CAIRN_TEST_SEED=<n> replays a seed (the seed is in every failure message).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "support/e2e.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;

constexpr int total_keys = 100000;
constexpr int writer_threads = 16;
const std::string prefix = "dur/";

std::string key_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "dur/%06d", i);
  return buf;
}

std::string value_of(int i) {
  return "value-" + std::to_string(i) + "-" + std::string(40, static_cast<char>('a' + i % 26));
}

// One `cairn` on free loopback ports over a data directory that outlives restarts.
class cairn_member {
 public:
  explicit cairn_member(std::filesystem::path data_dir)
      : client_port_(e2e::free_port()),
        peer_port_(e2e::free_port()),
        data_dir_(std::move(data_dir)) {}
  // Starts the process; true once the client port accepts connections.
  bool start() {
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    proc_.reset();
    std::vector<std::string> argv = {e2e::cairn_binary().string(),
                                     "--name=dur",
                                     "--data-dir=" + data_dir_.string(),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=dur=" + peer};
    proc_.emplace(argv, data_dir_.parent_path() / ("cairn-" + std::to_string(starts_++) + ".log"));
    return proc_->wait_for_port(client_port_);
  }
  pid_t pid() const { return proc_->pid(); }
  // Reaps the process (killing it first if it still runs).
  void reap() { proc_->kill_now(); }
  std::string log() const { return proc_ ? proc_->log() : ""; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }
  // A channel of its own (a distinct connection): gRPC shares one between channels with equal
  // arguments.
  std::shared_ptr<grpc::Channel> channel(int n) const {
    grpc::ChannelArguments args;
    args.SetInt("cairn.test.channel", n);
    return grpc::CreateCustomChannel(endpoint(), grpc::InsecureChannelCredentials(), args);
  }

 private:
  int client_port_;
  int peer_port_;
  std::filesystem::path data_dir_;
  int starts_ = 0;
  std::optional<e2e::process> proc_;
};

grpc::Status put(etcdserverpb::KV::Stub& kv, int i, std::int64_t* revision) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 20s);
  etcdserverpb::PutRequest req;
  req.set_key(key_of(i));
  req.set_value(value_of(i));
  etcdserverpb::PutResponse resp;
  grpc::Status st = kv.Put(&ctx, req, &resp);
  if (st.ok()) *revision = resp.header().revision();
  return st;
}

// Puts keys from a shared work list with `writer_threads` threads, each on its own connection.
// acked_rev[i] gets the revision of every put answered OK. Stops early once `stop` is set (puts
// then failing are not errors); any other failure is recorded in `errors`.
struct writer_pool {
  const std::vector<int>* work = nullptr;
  std::vector<std::int64_t>* acked_rev = nullptr;
  std::atomic<bool>* stop = nullptr;
  std::atomic<int> next{0};
  std::atomic<int> acks{0};
  std::atomic<int> done{0};
  std::mutex err_mu;
  std::vector<std::string> errors;  // guarded by err_mu
  std::vector<std::thread> threads;

  void run(const cairn_member& m) {
    for (int t = 0; t < writer_threads; ++t) {
      threads.emplace_back([this, ch = m.channel(t)] {
        auto kv = etcdserverpb::KV::NewStub(ch);
        while (stop == nullptr || !stop->load()) {
          const int j = next.fetch_add(1);
          if (j >= static_cast<int>(work->size())) break;
          const int i = (*work)[j];
          std::int64_t rev = 0;
          grpc::Status st = put(*kv, i, &rev);
          if (st.ok()) {
            (*acked_rev)[i] = rev;  // slot i belongs to this thread alone
            ++acks;
          } else if (stop == nullptr || !stop->load()) {
            std::lock_guard lock(err_mu);
            errors.push_back(key_of(i) + ": " + std::to_string(st.error_code()) + " " +
                             st.error_message());
          }
        }
        ++done;
      });
    }
  }
  void join() {
    for (auto& t : threads) t.join();
    threads.clear();
  }
};

// Every key under the prefix, paged, all pages read at the revision of the first.
bool read_all(const cairn_member& m, std::vector<mvccpb::KeyValue>* out, std::int64_t* revision,
              std::string* error) {
  auto kv = etcdserverpb::KV::NewStub(m.channel(1000));
  etcdserverpb::RangeRequest req;
  req.set_key(prefix);
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);
  req.set_range_end(end);
  req.set_limit(20000);
  out->clear();
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    etcdserverpb::RangeResponse resp;
    grpc::Status st = kv->Range(&ctx, req, &resp);
    if (!st.ok()) {
      *error = std::to_string(st.error_code()) + " " + st.error_message();
      return false;
    }
    if (req.revision() == 0) {
      req.set_revision(resp.header().revision());
      *revision = resp.header().revision();
    }
    for (auto& kv_pair : *resp.mutable_kvs()) out->push_back(std::move(kv_pair));
    if (!resp.more() || resp.kvs().empty()) return true;
    req.set_key(out->back().key() + '\0');
  }
}

// The first successful Range after a start: the server answers (retries while it comes up).
bool wait_serving(const cairn_member& m, std::chrono::seconds timeout) {
  auto kv = etcdserverpb::KV::NewStub(m.channel(1001));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    etcdserverpb::RangeRequest req;
    req.set_key(key_of(0));
    etcdserverpb::RangeResponse resp;
    if (kv->Range(&ctx, req, &resp).ok()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Checks the store against what was acknowledged and fills `present` (by key number).
void verify(const cairn_member& m, const std::vector<std::int64_t>& acked_rev,
            std::vector<char>& present) {
  std::vector<mvccpb::KeyValue> kvs;
  std::int64_t rev = 0;
  std::string error;
  ASSERT_TRUE(read_all(m, &kvs, &rev, &error)) << error << "\n" << m.log();
  present.assign(acked_rev.size(), 0);
  std::vector<std::int64_t> mods;
  int bad = 0;
  for (const auto& kv : kvs) {
    const int i = std::atoi(kv.key().c_str() + prefix.size());
    if (i < 0 || i >= static_cast<int>(acked_rev.size()) || kv.key() != key_of(i)) {
      ADD_FAILURE() << "unexpected key " << kv.key();
      continue;
    }
    present[i] = 1;
    mods.push_back(kv.mod_revision());
    if (kv.value() != value_of(i) || kv.version() != 1 ||
        kv.create_revision() != kv.mod_revision()) {
      if (++bad <= 10) {
        ADD_FAILURE() << kv.key() << ": value '" << kv.value() << "' version " << kv.version()
                      << " create " << kv.create_revision() << " mod " << kv.mod_revision();
      }
    }
    if (acked_rev[i] != 0 && kv.mod_revision() != acked_rev[i] && ++bad <= 10) {
      ADD_FAILURE() << kv.key() << " acknowledged at revision " << acked_rev[i]
                    << " but holds mod revision " << kv.mod_revision();
    }
  }
  int missing = 0;
  std::string first_missing;
  for (std::size_t i = 0; i < acked_rev.size(); ++i) {
    if (acked_rev[i] != 0 && !present[i] && missing++ < 5) {
      first_missing += " " + key_of(static_cast<int>(i));
    }
  }
  EXPECT_EQ(missing, 0) << "acknowledged puts lost, first:" << first_missing;
  EXPECT_EQ(rev, 1 + static_cast<std::int64_t>(kvs.size()))
      << "the store's revision does not match the keys it holds";
  std::sort(mods.begin(), mods.end());
  for (std::size_t j = 0; j < mods.size(); ++j) {
    if (mods[j] != static_cast<std::int64_t>(j) + 2) {
      ADD_FAILURE() << "revision history has a hole or a repeat near " << mods[j];
      break;
    }
  }
}

std::uint64_t test_seed() {
  if (const char* s = std::getenv("CAIRN_TEST_SEED"); s != nullptr && *s != '\0') {
    return std::strtoull(s, nullptr, 10);
  }
  return std::random_device{}();
}

long long ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t)
      .count();
}

TEST(durability, kill9_at_random_moment_keeps_every_acknowledged_put) {
  const std::uint64_t seed = test_seed();
  std::mt19937_64 rng(seed);
  const int kill_after = std::uniform_int_distribution<int>(1, total_keys)(rng);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (CAIRN_TEST_SEED), SIGKILL after " +
               std::to_string(kill_after) + " acknowledged puts");
  std::printf("seed %llu: SIGKILL after %d acknowledged puts\n",
              static_cast<unsigned long long>(seed), kill_after);

  e2e::temp_dir dir("cairn-durability");
  cairn_member member(dir.path() / "data");
  ASSERT_TRUE(member.start()) << member.log();
  ASSERT_TRUE(wait_serving(member, 20s)) << member.log();

  // --- phase 1: concurrent puts; SIGKILL from another thread at the chosen acknowledgement ---
  std::vector<int> all(total_keys);
  for (int i = 0; i < total_keys; ++i) all[i] = i;
  std::vector<std::int64_t> acked_rev(total_keys, 0);
  std::atomic<bool> killed{false};
  writer_pool load;
  load.work = &all;
  load.acked_rev = &acked_rev;
  load.stop = &killed;
  auto t0 = std::chrono::steady_clock::now();
  load.run(member);
  const pid_t pid = member.pid();
  std::thread killer([&] {
    while (load.acks.load() < kill_after && load.done.load() < writer_threads) {
      std::this_thread::sleep_for(100us);
    }
    // Set first, so that writers see their failures as the kill's.
    killed = true;
    ::kill(pid, SIGKILL);
  });
  killer.join();
  load.join();
  member.reap();
  const int acked = load.acks.load();
  const auto load_ms = ms_since(t0);
  {
    std::lock_guard lock(load.err_mu);
    EXPECT_TRUE(load.errors.empty())
        << load.errors.size() << " puts failed before the kill, first: " << load.errors.front();
  }

  // --- restart on the same data directory: every acknowledged put is there ---
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(member.start()) << member.log();
  ASSERT_TRUE(wait_serving(member, 60s)) << member.log();
  const auto restart_ms = ms_since(t0);
  std::vector<char> present;
  verify(member, acked_rev, present);
  if (HasFailure()) return;
  const auto survived = std::count(present.begin(), present.end(), 1);

  // --- phase 2: write what is missing, then all 100,000 must be there ---
  std::vector<int> rest;
  for (int i = 0; i < total_keys; ++i) {
    if (!present[i]) rest.push_back(i);
  }
  t0 = std::chrono::steady_clock::now();
  writer_pool finish;
  finish.work = &rest;
  finish.acked_rev = &acked_rev;
  finish.run(member);
  finish.join();
  {
    std::lock_guard lock(finish.err_mu);
    ASSERT_TRUE(finish.errors.empty())
        << finish.errors.size()
        << " puts failed after the restart, first: " << finish.errors.front() << "\n"
        << member.log();
  }
  const auto finish_ms = ms_since(t0);
  verify(member, acked_rev, present);
  EXPECT_EQ(std::count(present.begin(), present.end(), 1), total_keys);
  std::printf(
      "%d puts acknowledged before the kill (%lld ms); restart to serving %lld ms; %lld keys "
      "there after restart; %zu written after it (%lld ms)\n",
      acked, load_ms, restart_ms, static_cast<long long>(survived), rest.size(), finish_ms);
}

}  // namespace
}  // namespace cairn
