// `etcdctl watch` (the real etcdctl 3.4.23) against `cairn` and against the real etcd 3.4.23:
// history with --rev, --prefix, --prev-kv, JSON output, a live watch, and interactive mode
// (`watch -i` reading "watch ..." lines from stdin). The same writes go to both servers, so
// revisions agree; each command's stdout must be the same once normalized (support/normalize.h)
// and the differences listed in docs/compatibility.md are masked.
//
// etcdctl watch never ends by itself: each command runs under /bin/sh for a fixed time and is
// then killed (or, in interactive mode, stops at the end of its input), and what it printed by
// then is compared.
//
// WatchStreamAnswersLikeEtcd drives the Watch stream itself (the generated stubs) through its
// edge cases on both servers and compares the answers field by field (ids and terms aside);
// ProgressNotifyIntervalIsActedOn checks that --experimental-watch-progress-notify-interval
// reaches the service (cmd/run.cc), against etcd started with the same flag.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "support/e2e.h"
#include "support/normalize.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;

std::string quote(const std::string& s) { return "'" + s + "'"; }

// The etcdctl command line for `endpoint`, quoted for sh.
std::string ctl(const std::string& endpoint) {
  return quote(e2e::etcdctl_binary().string()) + " --endpoints=" + endpoint;
}

e2e::run_result sh(const std::string& script, std::chrono::milliseconds timeout = 20s) {
  return e2e::run({"/bin/sh", "-c", script}, {{"ETCDCTL_API", "3"}}, timeout);
}

struct servers {
  e2e::temp_dir dir{"cairn-watch-e2e"};
  e2e::etcd_server etcd;
  e2e::cairn_server cairn{dir.path() / "data"};
  std::vector<std::string> endpoints() const { return {etcd.endpoint(), cairn.endpoint()}; }
};

class EtcdctlWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listed_ = e2e::read_listed_differences(e2e::source_dir() / "docs" / "compatibility.md");
    s_ = std::make_unique<servers>();
    // Revisions 2..7 on both.
    for (const auto& ep : s_->endpoints()) {
      auto r = sh(ctl(ep) + " put foo bar && " + ctl(ep) + " put foo baz && " + ctl(ep) +
                  " put foo/a 1 && " + ctl(ep) + " del foo && " + ctl(ep) + " put fop x && " +
                  ctl(ep) + " put foo again");
      ASSERT_EQ(r.exit_code, 0) << ep << ": " << r.err;
    }
  }

  std::string normalized(const std::string& text) const {
    return e2e::mask_listed(e2e::normalize_etcdctl_output(text), listed_);
  }

  // Runs `script(endpoint)` against both servers; stdout must agree. Returns Cairn's.
  std::string compare(const std::string& what,
                      const std::function<std::string(const std::string&)>& script,
                      std::chrono::milliseconds timeout) {
    std::vector<std::string> outs;
    for (const auto& ep : s_->endpoints()) {
      auto r = sh(script(ep), timeout);
      outs.push_back(r.out);
    }
    EXPECT_EQ(normalized(outs[1]), normalized(outs[0])) << what << "\n--- cairn:\n"
                                                        << outs[1] << "--- etcd:\n"
                                                        << outs[0];
    return outs[1];
  }

  // `etcdctl watch <args>` for `secs` seconds, then killed.
  std::string watch_for(const std::string& args, int secs = 2) {
    return compare(
        "etcdctl watch " + args,
        [&](const std::string& ep) {
          return ctl(ep) + " watch " + args + " & pid=$!; sleep " + std::to_string(secs) +
                 "; kill $pid; wait $pid 2>/dev/null; exit 0";
        },
        std::chrono::seconds(secs + 10));
  }

  std::vector<e2e::listed_difference> listed_;
  std::unique_ptr<servers> s_;
};

TEST_F(EtcdctlWatchTest, HistoryFromARevision) {
  const auto out = watch_for("--rev=1 foo");
  EXPECT_EQ(out, "PUT\nfoo\nbar\nPUT\nfoo\nbaz\nDELETE\nfoo\n\nPUT\nfoo\nagain\n");
}

TEST_F(EtcdctlWatchTest, HistoryOfAPrefix) {
  const auto out = watch_for("--rev=3 --prefix foo");
  EXPECT_EQ(out, "PUT\nfoo\nbaz\nPUT\nfoo/a\n1\nDELETE\nfoo\n\nPUT\nfoo\nagain\n");
}

TEST_F(EtcdctlWatchTest, PrevKv) {
  const auto out = watch_for("--rev=2 --prev-kv foo");
  // A put shows the previous pair first (none for a creation); a delete too.
  EXPECT_NE(out.find("PUT\nfoo\nbar\nfoo\nbaz\n"), std::string::npos) << out;
  EXPECT_NE(out.find("DELETE\nfoo\nbaz\nfoo\n\n"), std::string::npos) << out;
}

TEST_F(EtcdctlWatchTest, RangeAndJson) {
  const auto out = watch_for("--rev=1 foo fop -w json");
  EXPECT_NE(out.find("\"Events\""), std::string::npos) << out;
  const auto range = watch_for("--rev=1 foo foq");
  EXPECT_NE(range.find("PUT\nfop\nx\n"), std::string::npos) << range;
}

TEST_F(EtcdctlWatchTest, LiveEvents) {
  const auto out = compare(
      "live watch",
      [](const std::string& ep) {
        return ctl(ep) + " watch --prefix live/ --prev-kv & pid=$!; sleep 2; " + ctl(ep) +
               " put live/a 1 >/dev/null; " + ctl(ep) + " put live/a 2 >/dev/null; " + ctl(ep) +
               " del live/a >/dev/null; sleep 1; kill $pid; wait $pid 2>/dev/null; exit 0";
      },
      20s);
  EXPECT_EQ(out, "PUT\nlive/a\n1\nPUT\nlive/a\n1\nlive/a\n2\nDELETE\nlive/a\n2\nlive/a\n\n");
}

TEST_F(EtcdctlWatchTest, Interactive) {
  const auto out = compare(
      "etcdctl watch -i",
      [](const std::string& ep) {
        return "{ echo 'watch --rev=1 foo'; echo 'watch --prefix int/'; sleep 2; " + ctl(ep) +
               " put int/x 1 >/dev/null; " + ctl(ep) + " put int/y 2 >/dev/null; sleep 1; } | " +
               ctl(ep) + " watch -i; exit 0";
      },
      20s);
  EXPECT_NE(out.find("PUT\nfoo\nbar\n"), std::string::npos) << out;
  EXPECT_NE(out.find("PUT\nint/x\n1\nPUT\nint/y\n2\n"), std::string::npos) << out;
}

// One response as a line: ids, flags, events (not cluster/member ids or terms).
std::string describe(const etcdserverpb::WatchResponse& r) {
  std::string line =
      "id=" + std::to_string(r.watch_id()) + " rev=" + std::to_string(r.header().revision());
  if (r.created()) line += " created";
  if (r.canceled()) line += " canceled";
  if (!r.cancel_reason().empty()) line += " reason=" + r.cancel_reason();
  if (r.compact_revision() != 0) line += " compact=" + std::to_string(r.compact_revision());
  if (r.fragment()) line += " fragment";
  for (const auto& e : r.events()) {
    line += std::string(" ") + (e.type() == mvccpb::Event::PUT ? "PUT" : "DELETE") + ":" +
            e.kv().key() + "@" + std::to_string(e.kv().mod_revision());
    if (e.has_prev_kv()) line += "<" + e.prev_kv().value();
  }
  return line;
}

// What one stream answers to a fixed sequence of requests, one line per response.
std::string watch_transcript(const std::string& endpoint) {
  using etcdserverpb::WatchRequest;
  using etcdserverpb::WatchResponse;
  auto channel = grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
  auto stub = etcdserverpb::Watch::NewStub(channel);
  grpc::ClientContext ctx;
  auto rw = stub->Watch(&ctx);
  std::mutex mu;
  std::string out;
  std::thread reader([&] {
    WatchResponse r;
    while (rw->Read(&r)) {
      std::lock_guard lock(mu);
      out += describe(r) + "\n";
    }
  });
  auto send = [&](const WatchRequest& r) {
    rw->Write(r);
    std::this_thread::sleep_for(300ms);
  };
  auto create = [&](const std::string& key, const std::string& end, std::int64_t start,
                    std::int64_t id, bool prev_kv = false) {
    WatchRequest r;
    auto* c = r.mutable_create_request();
    c->set_key(key);
    c->set_range_end(end);
    c->set_start_revision(start);
    c->set_watch_id(id);
    c->set_prev_kv(prev_kv);
    send(r);
  };
  WatchRequest progress;
  progress.mutable_progress_request();
  send(progress);                             // no watchers yet
  create("foo", "", 0, 0);                    // server-chosen id 0
  create("fop", "", 0, 5);                    // client-chosen
  create("fox", "", 0, 5);                    // duplicate id
  create("z", "a", 0, 0);                     // empty range
  create("", std::string(1, '\0'), 6, 0);     // every key, from revision 6
  create("foo", "", 5, 9, /*prev_kv=*/true);  // history with prev_kv
  create("foo", "", 2, 0);                    // below the compaction (4)
  std::this_thread::sleep_for(700ms);
  send(progress);
  WatchRequest cancel;
  cancel.mutable_cancel_request()->set_watch_id(42);  // unknown: no answer
  send(cancel);
  cancel.mutable_cancel_request()->set_watch_id(5);
  send(cancel);
  ctx.TryCancel();
  reader.join();
  rw->Finish();
  std::lock_guard lock(mu);
  return out;
}

TEST_F(EtcdctlWatchTest, WatchStreamAnswersLikeEtcd) {
  for (const auto& ep : s_->endpoints()) {
    auto r = sh(ctl(ep) + " compact 4");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const std::string etcd = watch_transcript(s_->etcd.endpoint());
  const std::string cairn = watch_transcript(s_->cairn.endpoint());
  EXPECT_EQ(cairn, etcd);
  EXPECT_NE(cairn.find("reason=mvcc: duplicate watch ID provided on the WatchStream"),
            std::string::npos)
      << cairn;
}

// The first `lines` responses of a stream watching a quiet key with progress_notify.
std::string progress_notifications(const std::string& endpoint, std::size_t lines) {
  auto stub = etcdserverpb::Watch::NewStub(
      grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto rw = stub->Watch(&ctx);
  etcdserverpb::WatchRequest req;
  req.mutable_create_request()->set_key("quiet");
  req.mutable_create_request()->set_progress_notify(true);
  rw->Write(req);
  std::string out;
  etcdserverpb::WatchResponse r;
  for (std::size_t i = 0; i < lines && rw->Read(&r); ++i) out += describe(r) + "\n";
  ctx.TryCancel();
  rw->Finish();
  return out;
}

// --experimental-watch-progress-notify-interval (kubeadm's 5 s, shortened) reaches the watch
// service: a watcher that asked for notifications gets them, as from etcd.
TEST(EtcdctlWatchFlags, ProgressNotifyIntervalIsActedOn) {
  const std::vector<std::string> flags = {"--experimental-watch-progress-notify-interval=1s"};
  e2e::temp_dir dir{"cairn-watch-e2e"};
  e2e::etcd_server etcd(flags);
  e2e::cairn_server cairn(dir.path() / "data", flags);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string from_cairn = progress_notifications(cairn.endpoint(), 3);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1500ms);
  EXPECT_EQ(from_cairn, progress_notifications(etcd.endpoint(), 3));
  EXPECT_EQ(from_cairn, "id=0 rev=1 created\nid=0 rev=1\nid=0 rev=1\n");
}

}  // namespace
}  // namespace cairn
