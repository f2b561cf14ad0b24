// cairn_startup_bench: how long `cairn` takes from process start to serving, with N keys.
//
// Loads N keys into a fresh data directory through the real server (gRPC, `--clients`
// concurrent connections; with `--txn=K`, each request is a Txn of K puts, the bulk path for
// large N) and kills it with SIGKILL as soon as the last write is answered (the db's open batch
// is lost; the WAL covers it). Then it starts `cairn` on that directory and measures from just
// before fork/exec to the first Range answered OK (linearizable, retried every 2 ms on a fresh
// channel until it succeeds), stops it with SIGTERM, and measures `--runs` more clean restarts.
//
//   cairn_startup_bench --keys=100000 [--txn=0] [--clients=16] [--value-bytes=100] [--runs=3]
//                       [--dir=<parent of the data dir>] [--cairn=<path to cairn>]
//
// Default `--cairn`: $CAIRN_TEST_BINARY_DIR/server/cmd/cairn. Prints one line per run and a
// summary; the data directory is removed at the end.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "support/e2e.h"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct options {
  long keys = 100000;
  int txn = 0;  // 0: one Put per key
  int clients = 16;
  int value_bytes = 100;
  int runs = 3;
  std::string dir;
  std::string cairn;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "%s\nusage: cairn_startup_bench --keys=N [--txn=K] [--clients=C] "
               "[--value-bytes=B] [--runs=R] [--dir=DIR] [--cairn=PATH]\n",
               why);
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int a = 1; a < argc; ++a) {
    std::string_view arg = argv[a];
    auto value = [&](std::string_view name) -> std::optional<std::string> {
      if (arg.substr(0, name.size()) == name && arg.size() > name.size() &&
          arg[name.size()] == '=') {
        return std::string(arg.substr(name.size() + 1));
      }
      return std::nullopt;
    };
    if (auto v = value("--keys")) {
      o.keys = std::atol(v->c_str());
    } else if (auto v = value("--txn")) {
      o.txn = std::atoi(v->c_str());
    } else if (auto v = value("--clients")) {
      o.clients = std::atoi(v->c_str());
    } else if (auto v = value("--value-bytes")) {
      o.value_bytes = std::atoi(v->c_str());
    } else if (auto v = value("--runs")) {
      o.runs = std::atoi(v->c_str());
    } else if (auto v = value("--dir")) {
      o.dir = *v;
    } else if (auto v = value("--cairn")) {
      o.cairn = *v;
    } else {
      usage(("unknown argument: " + std::string(arg)).c_str());
    }
  }
  if (o.keys <= 0 || o.txn < 0 || o.txn > 128 || o.clients <= 0 || o.runs <= 0) {
    usage("bad arguments");
  }
  if (o.cairn.empty()) o.cairn = cairn::e2e::cairn_binary().string();
  return o;
}

std::string key_of(long i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "bench/%08ld", i);
  return buf;
}

double ms(clock_type::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::uint64_t dir_bytes(const fs::path& p) {
  std::uint64_t n = 0;
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
  for (auto it = fs::recursive_directory_iterator(p, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  }
  return n;
}

class member {
 public:
  member(const options& o, fs::path data_dir)
      : o_(o),
        data_dir_(std::move(data_dir)),
        client_port_(cairn::e2e::free_port()),
        peer_port_(cairn::e2e::free_port()) {}

  // Starts `cairn` and returns the time from just before the spawn to the first Range answered.
  std::optional<clock_type::duration> start_and_time() {
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> argv = {o_.cairn,
                                     "--name=bench",
                                     "--data-dir=" + data_dir_.string(),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=bench=" + peer};
    proc_.reset();
    const auto t0 = clock_type::now();
    proc_.emplace(argv, data_dir_.parent_path() / ("cairn-" + std::to_string(starts_++) + ".log"));
    etcdserverpb::RangeRequest req;
    req.set_key(key_of(0));
    while (clock_type::now() - t0 < 600s) {
      if (proc_->exited()) return std::nullopt;
      // A fresh channel each try: a channel that failed to connect backs off for up to seconds.
      auto kv = etcdserverpb::KV::NewStub(channel(static_cast<int>(++channels_)));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 2s);
      etcdserverpb::RangeResponse resp;
      if (kv->Range(&ctx, req, &resp).ok()) return clock_type::now() - t0;
      std::this_thread::sleep_for(2ms);
    }
    return std::nullopt;
  }
  // SIGTERM and wait for a clean exit (true), or SIGKILL.
  bool stop(bool kill9) {
    if (!proc_) return true;
    if (kill9) {
      proc_->kill_now();
      return true;
    }
    ::kill(proc_->pid(), SIGTERM);
    const auto deadline = clock_type::now() + 120s;
    while (clock_type::now() < deadline) {
      if (auto st = proc_->exited()) return *st == 0;
      std::this_thread::sleep_for(5ms);
    }
    proc_->kill_now();
    return false;
  }
  std::string log() const { return proc_ ? proc_->log() : ""; }
  std::shared_ptr<grpc::Channel> channel(int n) const {
    grpc::ChannelArguments args;
    args.SetInt("cairn.bench.channel", n);
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(client_port_),
                                     grpc::InsecureChannelCredentials(), args);
  }

 private:
  const options& o_;
  fs::path data_dir_;
  int client_port_;
  int peer_port_;
  int starts_ = 0;
  long channels_ = 0;
  std::optional<cairn::e2e::process> proc_;
};

// Writes keys 0..keys-1 with `clients` threads; false on the first failed request.
bool load(const options& o, member& m) {
  const std::string value(static_cast<std::size_t>(o.value_bytes), 'v');
  const long per_request = o.txn == 0 ? 1 : o.txn;
  const long requests = (o.keys + per_request - 1) / per_request;
  std::atomic<long> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> ts;
  for (int c = 0; c < o.clients; ++c) {
    ts.emplace_back([&, ch = m.channel(10000 + c)] {
      auto kv = etcdserverpb::KV::NewStub(ch);
      while (!failed.load()) {
        const long r = next.fetch_add(1);
        if (r >= requests) break;
        const long first = r * per_request;
        const long last = std::min(o.keys, first + per_request);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 60s);
        grpc::Status st;
        if (o.txn == 0) {
          etcdserverpb::PutRequest req;
          req.set_key(key_of(first));
          req.set_value(value);
          etcdserverpb::PutResponse resp;
          st = kv->Put(&ctx, req, &resp);
        } else {
          etcdserverpb::TxnRequest req;
          for (long i = first; i < last; ++i) {
            auto* put = req.add_success()->mutable_request_put();
            put->set_key(key_of(i));
            put->set_value(value);
          }
          etcdserverpb::TxnResponse resp;
          st = kv->Txn(&ctx, req, &resp);
        }
        if (!st.ok()) {
          std::fprintf(stderr, "request %ld failed: %d %s\n", r, st.error_code(),
                       st.error_message().c_str());
          failed = true;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  return !failed.load();
}

// The number of keys the server holds (count_only over the prefix).
long count_keys(member& m) {
  auto kv = etcdserverpb::KV::NewStub(m.channel(999999));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 60s);
  etcdserverpb::RangeRequest req;
  req.set_key("bench/");
  req.set_range_end("bench0");
  req.set_count_only(true);
  etcdserverpb::RangeResponse resp;
  if (!kv->Range(&ctx, req, &resp).ok()) return -1;
  return static_cast<long>(resp.count());
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  std::optional<cairn::e2e::temp_dir> tmp;
  fs::path parent;
  if (o.dir.empty()) {
    tmp.emplace("cairn-startup-bench");
    parent = tmp->path();
  } else {
    parent = fs::path(o.dir) / ("cairn-startup-bench-" + std::to_string(::getpid()));
    fs::create_directories(parent);
  }
  const fs::path data = parent / "data";
  member m(o, data);

  if (!m.start_and_time()) {
    std::fprintf(stderr, "cairn did not start:\n%s\n", m.log().c_str());
    return 1;
  }
  const auto l0 = clock_type::now();
  if (!load(o, m)) {
    std::fprintf(stderr, "loading failed:\n%s\n", m.log().c_str());
    return 1;
  }
  const double load_ms = ms(clock_type::now() - l0);
  const long held = count_keys(m);
  std::printf(
      "loaded %ld keys (%d B values, %s, %d clients) in %.1f s: %.0f keys/s; server holds %ld\n",
      o.keys, o.value_bytes,
      o.txn == 0 ? "one Put each" : ("Txns of " + std::to_string(o.txn) + " puts").c_str(),
      o.clients, load_ms / 1000, o.keys / (load_ms / 1000), held);
  // First: kill -9 right after loading (the db's open batch is lost; the WAL covers it).
  m.stop(true);
  auto killed = m.start_and_time();
  if (!killed) {
    std::fprintf(stderr, "cairn did not serve after SIGKILL:\n%s\n", m.log().c_str());
    return 1;
  }
  std::printf("run after SIGKILL: start to first Range %.0f ms\n", ms(*killed));
  const long after_kill = count_keys(m);
  if (!m.stop(false)) {
    std::fprintf(stderr, "cairn did not stop cleanly:\n%s\n", m.log().c_str());
    return 1;
  }
  std::printf("data dir after a clean stop: wal %.1f MiB, snap %.1f MiB, db %.1f MiB\n",
              dir_bytes(data / "member/wal") / 1048576.0,
              dir_bytes(data / "member/snap") / 1048576.0,
              dir_bytes(data / "member/db") / 1048576.0);

  std::vector<double> clean;
  for (int r = 0; r < o.runs; ++r) {
    auto t = m.start_and_time();
    if (!t) {
      std::fprintf(stderr, "cairn did not serve:\n%s\n", m.log().c_str());
      return 1;
    }
    clean.push_back(ms(*t));
    std::printf("run %d (after SIGTERM): start to first Range %.0f ms\n", r + 1, clean.back());
    if (!m.stop(false)) {
      std::fprintf(stderr, "cairn did not stop cleanly:\n%s\n", m.log().c_str());
      return 1;
    }
  }
  std::sort(clean.begin(), clean.end());
  std::printf(
      "summary: %ld keys, start to serving: %.0f ms after SIGKILL, median %.0f ms (min %.0f, max "
      "%.0f) after SIGTERM; keys after the SIGKILL restart %ld\n",
      o.keys, ms(*killed), clean[clean.size() / 2], clean.front(), clean.back(), after_kill);
  if (!o.dir.empty()) fs::remove_all(parent);
  return after_kill == held ? 0 : 1;
}
