#include "bench/load.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "fmt/format.h"

namespace cairn::bench {
namespace {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::vector<std::string> targets(const common_options& c) {
  if (c.target_leader) {
    if (auto l = find_leader(c.endpoints)) return {*l};
    std::fprintf(stderr, "cairn-bench: no endpoint knows a leader; using them all\n");
  }
  return c.endpoints;
}

std::vector<std::shared_ptr<grpc::Channel>> dial(const common_options& c) {
  const auto eps = targets(c);
  std::vector<std::shared_ptr<grpc::Channel>> out;
  for (int i = 0; i < std::max(1, c.conns); ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a TCP connection of its own
    args.SetInt("cairn.bench.conn", i);
    args.SetMaxReceiveMessageSize(-1);
    out.push_back(grpc::CreateCustomChannel(eps[static_cast<std::size_t>(i) % eps.size()],
                                            grpc::InsecureChannelCredentials(), args));
  }
  return out;
}

int worker_count(const common_options& c) {
  int n = c.threads;
  if (n <= 0) n = static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
  return std::max(1, std::min(n, std::max(1, c.clients)));
}

// Hands out request numbers until the total or the deadline is reached.
class budget {
 public:
  budget(std::uint64_t total, std::chrono::milliseconds duration)
      : total_(total), deadline_(steady::now() + duration) {}
  std::optional<std::uint64_t> take() {
    const std::uint64_t n = issued_.fetch_add(1);
    if (total_ > 0) {
      if (n >= total_) return std::nullopt;
    } else if (steady::now() >= deadline_) {
      return std::nullopt;
    }
    return n;
  }

 private:
  std::uint64_t total_;
  steady::time_point deadline_;
  std::atomic<std::uint64_t> issued_{0};
};

// The --rate schedule: request i may start at start + i / rate.
class pacer {
 public:
  explicit pacer(double rate) : rate_(rate), start_(steady::now()) {}
  bool active() const { return rate_ > 0; }
  steady::time_point next() {
    const auto i = n_.fetch_add(1);
    return start_ + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * i / rate_));
  }

 private:
  double rate_;
  steady::time_point start_;
  std::atomic<std::uint64_t> n_{0};
};

struct call {
  virtual ~call() = default;
  virtual void start(grpc::CompletionQueue* cq, void* tag) = 0;
  grpc::ClientContext ctx;
  grpc::Status status;
  steady::time_point started;
};

template <typename Stub, typename Req, typename Resp,
          std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> (Stub::*Method)(
              grpc::ClientContext*, const Req&, grpc::CompletionQueue*)>
struct unary_call final : call {
  explicit unary_call(Stub* s) : stub(s) {}
  void start(grpc::CompletionQueue* cq, void* tag) override {
    rpc = (stub->*Method)(&ctx, req, cq);
    rpc->Finish(&resp, &status, tag);
  }
  Stub* stub;
  Req req;
  Resp resp;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> rpc;
};

using put_call = unary_call<etcdserverpb::KV::Stub, etcdserverpb::PutRequest,
                            etcdserverpb::PutResponse, &etcdserverpb::KV::Stub::AsyncPut>;
using range_call = unary_call<etcdserverpb::KV::Stub, etcdserverpb::RangeRequest,
                              etcdserverpb::RangeResponse, &etcdserverpb::KV::Stub::AsyncRange>;
using txn_call = unary_call<etcdserverpb::KV::Stub, etcdserverpb::TxnRequest,
                            etcdserverpb::TxnResponse, &etcdserverpb::KV::Stub::AsyncTxn>;

std::string prefix_end(std::string p) {
  while (!p.empty() && static_cast<unsigned char>(p.back()) == 0xff) p.pop_back();
  if (p.empty()) return std::string(1, '\0');
  p.back() = static_cast<char>(p.back() + 1);
  return p;
}

struct slot {
  std::unique_ptr<call> c;
  grpc::Alarm alarm;
  bool waiting = false;  // for the pacer's alarm, not for an answer
  std::uint64_t n = 0;   // the request it waits to send
  std::size_t conn = 0;
};

// Prints "N requests (R/s)" on stderr every second while the run lasts.
class progress_line {
 public:
  progress_line(bool on, const std::atomic<std::uint64_t>& done) : done_(done) {
    if (!on) return;
    thread_ = std::thread([this] {
      const auto start = steady::now();
      std::uint64_t last = 0;
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, 1s, [&] { return stop_; })) {
        const std::uint64_t n = done_.load();
        std::fprintf(stderr, "\r  %llu requests, %llu/s, %.0f s ",
                     static_cast<unsigned long long>(n), static_cast<unsigned long long>(n - last),
                     std::chrono::duration<double>(steady::now() - start).count());
        last = n;
      }
      if (last > 0) std::fprintf(stderr, "\n");
    });
  }
  ~progress_line() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  const std::atomic<std::uint64_t>& done_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

std::string make_key(const key_options& k, std::uint64_t n) {
  std::string digits = std::to_string(n);
  const auto width = static_cast<std::size_t>(std::max(0, k.key_size));
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return k.prefix + digits;
}

std::optional<std::string> find_leader(const std::vector<std::string>& endpoints) {
  for (const auto& ep : endpoints) {
    auto stub = etcdserverpb::Maintenance::NewStub(
        grpc::CreateChannel(ep, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    etcdserverpb::StatusResponse resp;
    if (!stub->Status(&ctx, {}, &resp).ok()) continue;
    if (resp.leader() != 0 && resp.leader() == resp.header().member_id()) return ep;
  }
  return std::nullopt;
}

report run_unary(const common_options& c, const unary_options& u) {
  auto channels = dial(c);
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kv;
  for (auto& ch : channels) kv.push_back(etcdserverpb::KV::NewStub(ch));
  budget b(c.total, c.duration);
  pacer p(c.rate);
  const std::string value(static_cast<std::size_t>(std::max(0, u.keys.value_size)), 'v');
  std::atomic<std::uint64_t> done{0};

  const int workers = worker_count(c);
  std::vector<recorder> recs(static_cast<std::size_t>(workers));
  const auto start = steady::now();
  {
    progress_line line(c.progress, done);
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        std::mt19937_64 rng(static_cast<std::uint64_t>(w) * 7919 + 1);
        std::uniform_real_distribution<double> coin(0, 1);
        auto key_for = [&](std::uint64_t n) {
          const std::uint64_t space = std::max<std::uint64_t>(1, u.keys.key_space);
          return make_key(u.keys, u.keys.sequential ? n % space : rng() % space);
        };
        auto make = [&](std::uint64_t n, std::size_t conn) -> std::unique_ptr<call> {
          auto* stub = kv[conn].get();
          unary_kind kind = u.kind;
          if (kind == unary_kind::mixed) {
            kind = coin(rng) < u.read_ratio ? unary_kind::range : unary_kind::put;
          }
          switch (kind) {
            case unary_kind::put: {
              auto x = std::make_unique<put_call>(stub);
              x->req.set_key(key_for(n));
              x->req.set_value(value);
              return x;
            }
            case unary_kind::range: {
              auto x = std::make_unique<range_call>(stub);
              if (!u.range_prefix.empty()) {
                x->req.set_key(u.range_prefix);
                x->req.set_range_end(prefix_end(u.range_prefix));
              } else {
                x->req.set_key(key_for(n));
              }
              x->req.set_limit(u.range_limit);
              x->req.set_serializable(u.serializable);
              return x;
            }
            default: {
              auto x = std::make_unique<txn_call>(stub);
              // Distinct keys (etcd refuses a txn that writes a key twice): consecutive ones
              // from a starting key, which wraps around the key space.
              const std::uint64_t space = std::max<std::uint64_t>(1, u.keys.key_space);
              const auto ops = static_cast<std::uint64_t>(std::max(1, u.txn_ops));
              const std::uint64_t first = u.keys.sequential ? n * ops : rng();
              for (std::uint64_t i = 0; i < std::min(ops, space); ++i) {
                auto* put = x->req.add_success()->mutable_request_put();
                put->set_key(make_key(u.keys, (first + i) % space));
                put->set_value(value);
              }
              return x;
            }
          }
        };
        grpc::CompletionQueue cq;
        std::vector<std::unique_ptr<slot>> slots;
        for (int i = w; i < std::max(1, c.clients); i += workers) {
          auto s = std::make_unique<slot>();
          s->conn = static_cast<std::size_t>(i) % kv.size();
          slots.push_back(std::move(s));
        }
        auto send = [&](slot& s, std::uint64_t n) {
          s.c = make(n, s.conn);
          s.c->ctx.set_deadline(std::chrono::system_clock::now() + c.timeout);
          s.c->started = steady::now();
          s.c->start(&cq, &s);
        };
        auto issue = [&](slot& s) {
          auto n = b.take();
          if (!n) return false;
          if (p.active()) {
            const auto at = p.next();
            if (at > steady::now()) {
              s.waiting = true;
              s.n = *n;
              s.alarm.Set(&cq, std::chrono::system_clock::now() + (at - steady::now()), &s);
              return true;
            }
          }
          send(s, *n);
          return true;
        };
        std::size_t outstanding = 0;
        for (auto& s : slots) outstanding += issue(*s) ? 1 : 0;
        void* tag;
        bool ok;
        auto& rec = recs[static_cast<std::size_t>(w)];
        while (outstanding > 0 && cq.Next(&tag, &ok)) {
          auto& s = *static_cast<slot*>(tag);
          if (s.waiting) {
            s.waiting = false;
            send(s, s.n);
            continue;
          }
          if (s.c->status.ok()) {
            rec.ok(steady::now() - s.c->started);
          } else {
            rec.error(s.c->status.error_code());
          }
          done.fetch_add(1);
          if (!issue(s)) --outstanding;
        }
        cq.Shutdown();
        while (cq.Next(&tag, &ok)) {
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  report r;
  r.workload = u.kind == unary_kind::put       ? "put"
               : u.kind == unary_kind::range   ? "range"
               : u.kind == unary_kind::txn_put ? "txn-put"
                                               : "mixed";
  r.seconds = std::chrono::duration<double>(steady::now() - start).count();
  for (auto& x : recs) r.rec.merge(x);
  return r;
}

report run_watch(const common_options& c, const watch_options& w) {
  auto channels = dial(c);
  const int streams = std::max(1, w.streams);
  const std::uint64_t space = std::max<std::uint64_t>(1, w.keys.key_space);
  std::atomic<int> created{0};
  std::atomic<std::uint64_t> events{0};
  std::atomic<steady::time_point::rep> last_event{0};
  std::vector<recorder> recs(static_cast<std::size_t>(streams));
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  for (int s = 0; s < streams; ++s) ctxs.push_back(std::make_unique<grpc::ClientContext>());
  const auto epoch = steady::now();

  std::vector<std::thread> readers;
  for (int s = 0; s < streams; ++s) {
    readers.emplace_back([&, s] {
      auto stub =
          etcdserverpb::Watch::NewStub(channels[static_cast<std::size_t>(s) % channels.size()]);
      auto stream = stub->Watch(ctxs[static_cast<std::size_t>(s)].get());
      int mine = 0;
      for (int i = s; i < w.watchers; i += streams) {
        etcdserverpb::WatchRequest req;
        auto* cr = req.mutable_create_request();
        if (w.watch_prefix) {
          cr->set_key(w.keys.prefix);
          cr->set_range_end(prefix_end(w.keys.prefix));
        } else {
          cr->set_key(make_key(w.keys, static_cast<std::uint64_t>(i) % space));
        }
        if (!stream->Write(req)) return;
        ++mine;
      }
      etcdserverpb::WatchResponse resp;
      auto& rec = recs[static_cast<std::size_t>(s)];
      while (stream->Read(&resp)) {
        if (resp.created()) {
          created.fetch_add(1);
          continue;
        }
        const auto now = steady::now();
        for (const auto& ev : resp.events()) {
          // The writer put its send time (ns since the run's epoch) at the value's start.
          const auto sent = std::strtoll(ev.kv().value().c_str(), nullptr, 10);
          rec.ok(std::chrono::nanoseconds((now - epoch).count() - sent));
          events.fetch_add(1);
        }
        last_event.store((now - epoch).count());
      }
      (void)mine;
    });
  }
  // Every watcher created before the writers start.
  const auto wait_until = steady::now() + 60s;
  while (created.load() < w.watchers && steady::now() < wait_until)
    std::this_thread::sleep_for(5ms);

  const int writer_count = std::max(1, w.writers);
  const auto start = steady::now();
  // The writers' values carry their send time, in nanoseconds since the run's epoch.
  budget b(c.total, c.duration);
  std::vector<std::thread> writers;
  std::atomic<std::uint64_t> puts{0};
  recorder put_errors;
  std::mutex put_mu;
  for (int i = 0; i < writer_count; ++i) {
    writers.emplace_back([&, i] {
      auto stub =
          etcdserverpb::KV::NewStub(channels[static_cast<std::size_t>(i) % channels.size()]);
      std::mt19937_64 rng(static_cast<std::uint64_t>(i) + 17);
      while (auto n = b.take()) {
        etcdserverpb::PutRequest req;
        req.set_key(make_key(w.keys, w.keys.sequential ? *n % space : rng() % space));
        std::string v = std::to_string((steady::now() - epoch).count());
        if (static_cast<int>(v.size()) < w.keys.value_size) {
          v.resize(static_cast<std::size_t>(w.keys.value_size), ' ');
        }
        req.set_value(v);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + c.timeout);
        etcdserverpb::PutResponse resp;
        auto st = stub->Put(&ctx, req, &resp);
        if (st.ok()) {
          puts.fetch_add(1);
        } else {
          std::lock_guard lock(put_mu);
          put_errors.error(st.error_code());
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  const double put_seconds = std::chrono::duration<double>(steady::now() - start).count();
  // Let the events drain: until none came for a second (or 30 s).
  const auto drain_until = steady::now() + 30s;
  const auto writers_done = steady::now();
  while (steady::now() < drain_until) {
    const auto since_epoch = steady::now() - epoch;
    const auto last_seen = steady::duration(last_event.load());
    const auto quiet =
        last_seen.count() == 0 ? steady::now() - writers_done : since_epoch - last_seen;
    if (quiet > 1s) break;
    std::this_thread::sleep_for(50ms);
  }
  const auto last = std::chrono::nanoseconds(last_event.load());
  for (auto& ctx : ctxs) ctx->TryCancel();
  for (auto& t : readers) t.join();

  report r;
  r.workload = "watch";
  const double event_seconds =
      std::max(1e-9, std::chrono::duration<double>(epoch + last - start).count());
  r.seconds = event_seconds;
  for (auto& x : recs) r.rec.merge(x);
  r.rec.merge(put_errors);
  r.extra = {{"watchers", static_cast<double>(w.watchers)},
             {"puts", static_cast<double>(puts.load())},
             {"puts_per_sec", static_cast<double>(puts.load()) / put_seconds},
             {"events", static_cast<double>(events.load())},
             {"events_per_sec", static_cast<double>(events.load()) / event_seconds}};
  return r;
}

report run_keepalive(const common_options& c, const keepalive_options& k) {
  auto channels = dial(c);
  budget b(c.total, c.duration);
  std::atomic<std::uint64_t> done{0};
  const int clients = std::max(1, c.clients);
  std::vector<recorder> recs(static_cast<std::size_t>(clients));
  const auto start = steady::now();
  {
    progress_line line(c.progress, done);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back([&, i] {
        auto stub =
            etcdserverpb::Lease::NewStub(channels[static_cast<std::size_t>(i) % channels.size()]);
        auto& rec = recs[static_cast<std::size_t>(i)];
        grpc::ClientContext gctx;
        etcdserverpb::LeaseGrantRequest g;
        g.set_ttl(k.ttl);
        etcdserverpb::LeaseGrantResponse lease;
        if (auto st = stub->LeaseGrant(&gctx, g, &lease); !st.ok()) {
          rec.error(st.error_code());
          return;
        }
        grpc::ClientContext ctx;
        auto stream = stub->LeaseKeepAlive(&ctx);
        etcdserverpb::LeaseKeepAliveRequest req;
        req.set_id(lease.id());
        etcdserverpb::LeaseKeepAliveResponse resp;
        while (b.take()) {
          const auto t0 = steady::now();
          if (!stream->Write(req) || !stream->Read(&resp)) {
            rec.error(stream->Finish().error_code());
            return;
          }
          rec.ok(steady::now() - t0);
          done.fetch_add(1);
        }
        stream->WritesDone();
        (void)stream->Finish();
      });
    }
    for (auto& t : threads) t.join();
  }
  report r;
  r.workload = "lease-keepalive";
  r.seconds = std::chrono::duration<double>(steady::now() - start).count();
  for (auto& x : recs) r.rec.merge(x);
  return r;
}

}  // namespace cairn::bench
