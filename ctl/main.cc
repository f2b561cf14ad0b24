// cairnctl: operating Cairn where etcdctl cannot (its snapshot format, and etcd's for the move
// to Cairn) and what operators script around: snapshot save/status/restore, endpoint
// health/status/hashkv, members, alarms, defrag, move-leader, compaction, check perf, and the
// everyday key-value and lease commands (ctl/kv_commands.cc).
//
// Conventions follow etcdctl (ctl/common.h): global flags and their ETCDCTL_* variables, Go
// durations, TLS and --user; errors print "Error: <message>" with etcdctl's exit codes; a bad
// command line exits non-zero with CLI11's reason.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "ctl/common.h"
#include "ctl/kv_commands.h"
#include "ctl/snapshot_file.h"
#include "etcdserver/restore.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "fmt/format.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

using namespace std::chrono_literals;
namespace pb = etcdserverpb;

using namespace cairn::ctl;

// --- snapshot ---

void snapshot_save(const globals& g, const std::string& file) {
  auto c = connect_first(g);
  auto ctx = c.stream_ctx();  // no deadline: a large snapshot takes as long as it takes
  auto reader = c.maintenance().Snapshot(ctx.get(), {});
  const std::string part = file + ".part";
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) fail("cannot create " + part);
  pb::SnapshotResponse msg;
  std::string all;
  auto last_print = std::chrono::steady_clock::now();
  const bool tty = ::isatty(2) != 0;
  while (reader->Read(&msg)) {
    all += msg.blob();
    if (tty && std::chrono::steady_clock::now() - last_print > 1s) {
      std::fprintf(stderr, "\rreceived %s, %s to go ", humanize(all.size()).c_str(),
                   humanize(static_cast<std::uint64_t>(msg.remaining_bytes())).c_str());
      last_print = std::chrono::steady_clock::now();
    }
  }
  auto st = reader->Finish();
  if (!st.ok()) {
    ::close(fd);
    ::unlink(part.c_str());
    fail(st.error_message());
  }
  if (all.size() < 32 ||
      cairn::ctl::sha256(all.substr(0, all.size() - 32)) != all.substr(all.size() - 32)) {
    ::close(fd);
    ::unlink(part.c_str());
    fail("snapshot file integrity check failed: the stream's SHA-256 does not match its data");
  }
  for (std::size_t off = 0; off < all.size();) {
    const ssize_t n = ::write(fd, all.data() + off, all.size() - off);
    if (n <= 0) fail("cannot write " + part);
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) fail("cannot sync " + part);
  if (std::rename(part.c_str(), file.c_str()) != 0) fail("cannot rename " + part);
  const auto dir = std::filesystem::absolute(file).parent_path();
  if (int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); d >= 0) {
    ::fsync(d);
    ::close(d);
  }
  auto s = cairn::ctl::read_status(file);
  if (!s) fail(s.error());
  std::cout << fmt::format("Snapshot saved at {}: revision {}, {} keys, {}, hash {:x}\n", file,
                           s->revision, s->total_keys, humanize(s->total_size), s->hash);
}

void print_snapshot_status(const globals& g, const std::string& file) {
  auto s = cairn::ctl::read_status(file);
  if (!s) fail(s.error());
  const std::string hash = fmt::format("{:x}", s->hash);
  if (g.write_out == "json") {
    std::cout << fmt::format("{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}\n",
                             s->hash, s->revision, s->total_keys, s->total_size);
  } else if (g.write_out == "table") {
    std::cout << table({"HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"},
                       {{hash, std::to_string(s->revision), std::to_string(s->total_keys),
                         humanize(s->total_size)}});
  } else {
    std::cout << fmt::format("{}, {}, {}, {}\n", hash, s->revision, s->total_keys,
                             humanize(s->total_size));
  }
}

void snapshot_restore(const cairn::etcdserver::restore_config& rc) {
  // The bootstrap's own log lines go to stderr; the result goes to stdout.
  spdlog::set_default_logger(spdlog::stderr_color_mt("restore"));
  spdlog::set_level(spdlog::level::warn);
  auto r = cairn::etcdserver::restore_snapshot(rc);
  if (!r) fail(r.error());
  std::cout << fmt::format(
      "Snapshot restored into {}: member {:x} ({}) of cluster {:x}, revision {}\n", rc.data_dir,
      r->member_id, rc.name, r->cluster_id, r->revision);
}

// --- endpoint ---

int endpoint_health(const globals& g) {
  int unhealthy = 0;
  for (const auto& ep : endpoints(g)) {
    const auto start = std::chrono::steady_clock::now();
    conn c(ep, g);
    std::string why;
    if (!c.ok()) {
      why = "context deadline exceeded";
    } else {
      auto ctx = c.ctx();
      pb::RangeRequest req;
      req.set_key("health");
      pb::RangeResponse resp;
      auto st = c.kv().Range(ctx.get(), req, &resp);
      // etcdctl counts a permission error as healthy: the member answered.
      if (!st.ok() && st.error_code() != grpc::StatusCode::PERMISSION_DENIED) {
        why = st.error_message();
      } else {
        auto actx = c.ctx();
        pb::AlarmRequest areq;
        areq.set_action(pb::AlarmRequest::GET);
        pb::AlarmResponse aresp;
        auto ast = c.maintenance().Alarm(actx.get(), areq, &aresp);
        if (!ast.ok()) {
          why = ast.error_message();
        } else if (aresp.alarms_size() > 0) {
          why = "Active Alarm(s): " + pb::AlarmType_Name(aresp.alarms(0).alarm());
        }
      }
    }
    const double took =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (g.write_out == "json") {
      std::cout << fmt::format("{{\"endpoint\":\"{}\",\"health\":{},\"took\":\"{:.3f}ms\"{}}}\n",
                               ep, why.empty() ? "true" : "false", took,
                               why.empty() ? "" : ",\"error\":\"" + why + "\"");
    } else if (why.empty()) {
      std::cout << fmt::format("{} is healthy: successfully committed proposal: took = {:.6f}ms\n",
                               ep, took);
    } else {
      std::cout << fmt::format("{} is unhealthy: failed to commit proposal: {}\n", ep, why);
    }
    if (!why.empty()) ++unhealthy;
  }
  if (unhealthy > 0) fail("unhealthy cluster");
  return 0;
}

int endpoint_status(const globals& g) {
  std::vector<std::vector<std::string>> rows;
  std::string json = "[";
  bool failed = false;
  for (const auto& ep : endpoints(g)) {
    conn c(ep, g);
    auto ctx = c.ctx();
    pb::StatusResponse s;
    auto st = c.ok()
                  ? c.maintenance().Status(ctx.get(), {}, &s)
                  : grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "context deadline exceeded");
    if (!st.ok()) {
      std::cerr << fmt::format("Failed to get the status of endpoint {} ({})\n", ep,
                               st.error_message());
      failed = true;
      continue;
    }
    const std::string id = fmt::format("{:x}", s.header().member_id());
    const std::string leader = s.leader() == s.header().member_id() ? "true" : "false";
    rows.push_back({ep, id, s.version(), humanize(static_cast<std::uint64_t>(s.dbsize())), leader,
                    s.islearner() ? "true" : "false", std::to_string(s.raftterm()),
                    std::to_string(s.raftindex()), std::to_string(s.raftappliedindex()),
                    s.errors_size() > 0 ? s.errors(0) : ""});
    if (json.size() > 1) json += ",";
    json += fmt::format(
        "{{\"Endpoint\":\"{}\",\"Status\":{{\"header\":{{\"cluster_id\":{},\"member_id\":{},"
        "\"revision\":{},\"raft_term\":{}}},\"version\":\"{}\",\"dbSize\":{},\"leader\":{},"
        "\"raftIndex\":{},\"raftTerm\":{},\"raftAppliedIndex\":{},\"dbSizeInUse\":{}}}}}",
        ep, s.header().cluster_id(), s.header().member_id(), s.header().revision(),
        s.header().raft_term(), s.version(), s.dbsize(), s.leader(), s.raftindex(), s.raftterm(),
        s.raftappliedindex(), s.dbsizeinuse());
  }
  if (g.write_out == "json") {
    std::cout << json << "]\n";
  } else if (g.write_out == "table") {
    std::cout << table({"ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER",
                        "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS"},
                       rows);
  } else {
    for (const auto& r : rows) {
      std::string line;
      for (std::size_t i = 0; i < r.size(); ++i) line += (i ? ", " : "") + r[i];
      std::cout << line << "\n";
    }
  }
  if (failed) fail("some endpoints did not answer");
  return 0;
}

// --- members, alarms, maintenance ---

void member_list(const globals& g) {
  auto c = connect_first(g);
  auto ctx = c.ctx();
  pb::MemberListResponse resp;
  auto st = c.cluster().MemberList(ctx.get(), {}, &resp);
  if (!st.ok()) fail(st.error_message());
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : resp.members()) {
    std::string peers, clients;
    for (const auto& u : m.peerurls()) peers += (peers.empty() ? "" : ",") + u;
    for (const auto& u : m.clienturls()) clients += (clients.empty() ? "" : ",") + u;
    rows.push_back({fmt::format("{:x}", m.id()), m.name().empty() ? "unstarted" : "started",
                    m.name(), peers, clients, m.islearner() ? "true" : "false"});
  }
  if (g.write_out == "table") {
    std::cout << table({"ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"}, rows);
  } else if (g.write_out == "json") {
    std::string out = fmt::format(
        "{{\"header\":{{\"cluster_id\":{},\"member_id\":{},\"raft_term\":{}}},\"members\":[",
        resp.header().cluster_id(), resp.header().member_id(), resp.header().raft_term());
    for (int i = 0; i < resp.members_size(); ++i) {
      const auto& m = resp.members(i);
      out += fmt::format("{}{{\"ID\":{},\"name\":\"{}\"}}", i ? "," : "", m.id(), m.name());
    }
    std::cout << out << "]}\n";
  } else {
    for (const auto& r : rows) {
      std::string line;
      for (std::size_t i = 0; i < r.size(); ++i) line += (i ? ", " : "") + r[i];
      std::cout << line << "\n";
    }
  }
}

void alarm(const globals& g, pb::AlarmRequest::AlarmAction action) {
  auto c = connect_first(g);
  auto ctx = c.ctx();
  pb::AlarmRequest req;
  req.set_action(action);
  pb::AlarmResponse resp;
  if (action == pb::AlarmRequest::DEACTIVATE) {
    // Disarm every active alarm, as etcdctl does: list them first.
    pb::AlarmRequest list;
    list.set_action(pb::AlarmRequest::GET);
    pb::AlarmResponse active;
    auto lctx = c.ctx();
    auto st = c.maintenance().Alarm(lctx.get(), list, &active);
    if (!st.ok()) fail(st.error_message());
    for (const auto& a : active.alarms()) {
      pb::AlarmRequest one;
      one.set_action(pb::AlarmRequest::DEACTIVATE);
      one.set_memberid(a.memberid());
      one.set_alarm(a.alarm());
      auto octx = c.ctx();
      pb::AlarmResponse r;
      auto ost = c.maintenance().Alarm(octx.get(), one, &r);
      if (!ost.ok()) fail(ost.error_message());
      for (const auto& x : r.alarms()) resp.add_alarms()->CopyFrom(x);
    }
  } else {
    auto st = c.maintenance().Alarm(ctx.get(), req, &resp);
    if (!st.ok()) fail(st.error_message());
  }
  for (const auto& a : resp.alarms()) {
    std::cout << fmt::format("memberID:{} alarm:{} \n", a.memberid(),
                             pb::AlarmType_Name(a.alarm()));
  }
}

void defrag(const globals& g) {
  // One member at a time, the leader last (a defrag blocks the member it runs on).
  auto eps = endpoints(g);
  std::vector<std::string> order, leaders;
  for (const auto& ep : eps) {
    conn c(ep, g);
    auto ctx = c.ctx();
    pb::StatusResponse s;
    if (c.ok() && c.maintenance().Status(ctx.get(), {}, &s).ok() &&
        s.leader() == s.header().member_id()) {
      leaders.push_back(ep);
    } else {
      order.push_back(ep);
    }
  }
  order.insert(order.end(), leaders.begin(), leaders.end());
  bool failed = false;
  for (const auto& ep : order) {
    conn c(ep, g);
    auto ctx = c.stream_ctx();
    ctx->set_deadline(std::chrono::system_clock::now() + 10min);
    pb::DefragmentResponse resp;
    auto st = c.maintenance().Defragment(ctx.get(), {}, &resp);
    if (st.ok()) {
      std::cout << "Finished defragmenting etcd member[" << ep << "]\n";
    } else {
      std::cerr << "Failed to defragment etcd member[" << ep << "] (" << st.error_message()
                << ")\n";
      failed = true;
    }
  }
  if (failed) quit(1);
}

void compaction(const globals& g, std::int64_t rev, bool physical) {
  auto c = connect_first(g);
  auto ctx = c.ctx();
  pb::CompactionRequest req;
  req.set_revision(rev);
  req.set_physical(physical);
  pb::CompactionResponse resp;
  auto st = c.kv().Compact(ctx.get(), req, &resp);
  if (!st.ok()) fail(st.error_message());
  std::cout << "compacted revision " << rev << "\n";
}

std::uint64_t parse_id(const std::string& hex) {
  try {
    std::size_t used = 0;
    const auto id = std::stoull(hex, &used, 16);
    if (used == hex.size()) return id;
  } catch (const std::exception&) {
  }
  fail("bad member ID arg (strconv.ParseUint: parsing \"" + hex +
           "\": invalid syntax), expecting ID in Hex",
       exit_bad_args);
}

void endpoint_hashkv(const globals& g, std::int64_t rev) {
  std::vector<std::vector<std::string>> rows;
  std::string json = "[";
  bool failed = false;
  for (const auto& ep : endpoints(g)) {
    conn c(ep, g);
    auto ctx = c.ctx();
    pb::HashKVRequest req;
    req.set_revision(rev);
    pb::HashKVResponse resp;
    auto st = c.maintenance().HashKV(ctx.get(), req, &resp);
    if (!st.ok()) {
      std::cerr << fmt::format("Failed to get the hash of endpoint {} ({})\n", ep,
                               st.error_message());
      failed = true;
      continue;
    }
    rows.push_back({ep, std::to_string(resp.hash())});
    if (json.size() > 1) json += ",";
    json += fmt::format(
        "{{\"Endpoint\":\"{}\",\"HashKV\":{{\"header\":{{\"cluster_id\":{},\"member_id\":{},"
        "\"revision\":{},\"raft_term\":{}}},\"hash\":{},\"compact_revision\":{}}}}}",
        ep, resp.header().cluster_id(), resp.header().member_id(), resp.header().revision(),
        resp.header().raft_term(), resp.hash(), resp.compact_revision());
  }
  if (g.write_out == "json") {
    std::cout << json << "]\n";
  } else if (g.write_out == "table") {
    std::cout << table({"ENDPOINT", "HASH"}, rows);
  } else {
    for (const auto& r : rows) std::cout << r[0] << ", " << r[1] << "\n";
  }
  if (failed) fail("some endpoints did not answer");
}

void move_leader(const globals& g, const std::string& target_hex) {
  const auto target = parse_id(target_hex);
  // Find the leader among the endpoints: the transfer must be asked of it.
  for (const auto& ep : split(g.endpoints)) {
    conn c(ep, g);
    auto ctx = c.ctx();
    pb::StatusResponse s;
    if (!c.ok() || !c.maintenance().Status(ctx.get(), {}, &s).ok()) continue;
    if (s.leader() != s.header().member_id()) continue;
    auto mctx = c.ctx();
    pb::MoveLeaderRequest req;
    req.set_targetid(target);
    pb::MoveLeaderResponse resp;
    auto st = c.maintenance().MoveLeader(mctx.get(), req, &resp);
    if (!st.ok()) fail(st.error_message());
    std::cout << fmt::format("Leadership transferred from {:x} to {:x}\n", s.leader(), target);
    return;
  }
  fail("no leader endpoint given at [" + g.endpoints + "]");
}

void member_change(const globals& g, const std::string& what, const std::string& arg,
                   const std::string& peer_urls, bool learner) {
  auto c = connect_first(g);
  auto ctx = c.ctx();
  grpc::Status st;
  std::uint64_t cluster = 0;
  if (what == "add") {
    if (peer_urls.empty()) fail("member peer urls not provided", exit_bad_args);
    pb::MemberAddRequest req;
    for (const auto& u : split(peer_urls)) req.add_peerurls(u);
    req.set_islearner(learner);
    pb::MemberAddResponse resp;
    st = c.cluster().MemberAdd(ctx.get(), req, &resp);
    if (!st.ok()) fail(st.error_message());
    std::cout << fmt::format("Member {:16x} added to cluster {:16x}\n", resp.member().id(),
                             resp.header().cluster_id());
    std::string initial;
    for (const auto& m : resp.members()) {
      for (const auto& u : m.peerurls()) {
        if (!initial.empty()) initial += ",";
        initial += (m.id() == resp.member().id() ? arg : m.name()) + "=" + u;
      }
    }
    std::cout << fmt::format(
        "\nETCD_NAME=\"{}\"\nETCD_INITIAL_CLUSTER=\"{}\"\n"
        "ETCD_INITIAL_ADVERTISE_PEER_URLS=\"{}\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
        arg, initial, peer_urls);
    return;
  }
  const auto id = parse_id(arg);
  if (what == "remove") {
    pb::MemberRemoveRequest req;
    req.set_id(id);
    pb::MemberRemoveResponse resp;
    st = c.cluster().MemberRemove(ctx.get(), req, &resp);
    cluster = resp.header().cluster_id();
  } else if (what == "update") {
    if (peer_urls.empty()) fail("member peer urls not provided", exit_bad_args);
    pb::MemberUpdateRequest req;
    req.set_id(id);
    for (const auto& u : split(peer_urls)) req.add_peerurls(u);
    pb::MemberUpdateResponse resp;
    st = c.cluster().MemberUpdate(ctx.get(), req, &resp);
    cluster = resp.header().cluster_id();
  } else {
    pb::MemberPromoteRequest req;
    req.set_id(id);
    pb::MemberPromoteResponse resp;
    st = c.cluster().MemberPromote(ctx.get(), req, &resp);
    cluster = resp.header().cluster_id();
  }
  if (!st.ok()) fail(st.error_message());
  const char* verb = what == "remove"   ? "removed from"
                     : what == "update" ? "updated in"
                                        : "promoted in";
  std::cout << fmt::format("Member {:16x} {} cluster {:16x}\n", id, verb, cluster);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cairnctl: snapshots, endpoints, members, alarms and maintenance for Cairn"};
  app.require_subcommand(1);
  // Global flags may follow the command, as etcdctl allows (`snapshot status f -w json`);
  // subcommands made after this inherit it.
  app.fallthrough();
  globals g;
  check_env_conflicts(argc, argv);
  take_watch_exec(argc, argv);
  add_global_flags(app, g);
  add_kv_commands(app, g);

  auto* snap = app.add_subcommand("snapshot", "Save or inspect Cairn snapshots");
  snap->require_subcommand(1);
  std::string file;
  auto* save = snap->add_subcommand("save", "Stream a member's snapshot into a file");
  save->add_option("file", file, "Where to write it")->required();
  auto* status = snap->add_subcommand("status", "Revision, keys, size and hash of a snapshot file");
  status->add_option("file", file, "The snapshot file")->required();
  // etcdctl snapshot restore's flags and defaults.
  cairn::etcdserver::restore_config rc;
  std::string advertise_peer = "http://localhost:2380";
  rc.initial_cluster = "default=http://localhost:2380";
  auto* restore = snap->add_subcommand(
      "restore", "Make a snapshot the data directory of a member of a new cluster");
  restore->add_option("file", rc.snapshot_path, "The snapshot file")->required();
  restore->add_option("--name", rc.name, "The member's name (default \"default\")");
  restore->add_option("--data-dir", rc.data_dir,
                      "The data directory to create (default \"<name>.etcd\")");
  restore->add_option("--initial-cluster", rc.initial_cluster,
                      "The new cluster's members, name=peer-url,...");
  restore->add_option("--initial-cluster-token", rc.initial_cluster_token,
                      "The new cluster's token (default \"etcd-cluster\")");
  restore->add_option("--initial-advertise-peer-urls", advertise_peer,
                      "This member's peer URLs, comma-separated");
  restore->add_flag("--skip-hash-check", rc.skip_hash_check,
                    "Restore a file without (or ignoring) its SHA-256, e.g. a copied db");

  auto* ep = app.add_subcommand("endpoint", "Health and status of endpoints");
  ep->require_subcommand(1);
  auto* health = ep->add_subcommand("health", "Whether each endpoint commits and has no alarm");
  auto* st = ep->add_subcommand("status", "Version, db size, leader and raft state");
  std::int64_t hash_rev = 0;
  auto* hashkv = ep->add_subcommand("hashkv", "The KV hash of each endpoint (at --rev)");
  hashkv->add_option("--rev", hash_rev, "The revision to hash up to (0: the latest)");
  for (auto* sub : {health, st, hashkv}) {
    sub->add_flag("--cluster", g.cluster, "Every member's client URLs (from the member list)");
  }

  auto* member = app.add_subcommand("member", "Members of the cluster");
  member->require_subcommand(1);
  auto* mlist = member->add_subcommand("list", "List the members");
  std::string member_arg, peer_urls;
  bool learner = false;
  auto* madd =
      member->add_subcommand("add", "Add a member (then start it with the printed settings)");
  madd->add_option("name", member_arg, "The new member's name")->required();
  madd->add_option("--peer-urls", peer_urls, "Its comma-separated peer URLs")->required();
  madd->add_flag("--learner", learner, "Add it as a learner");
  auto* mremove = member->add_subcommand("remove", "Remove a member");
  mremove->add_option("id", member_arg, "The member's ID, in hex")->required();
  auto* mupdate = member->add_subcommand("update", "Change a member's peer URLs");
  mupdate->add_option("id", member_arg, "The member's ID, in hex")->required();
  mupdate->add_option("--peer-urls", peer_urls, "The new comma-separated peer URLs")->required();
  auto* mpromote = member->add_subcommand("promote", "Promote a learner to a voting member");
  mpromote->add_option("id", member_arg, "The learner's ID, in hex")->required();

  auto* al = app.add_subcommand("alarm", "Alarms");
  al->require_subcommand(1);
  auto* alist = al->add_subcommand("list", "List active alarms");
  auto* adisarm = al->add_subcommand("disarm", "Disarm every active alarm");

  auto* df = app.add_subcommand("defrag", "Defragment members' backends (the leader last)");
  df->add_flag("--cluster", g.cluster, "Every member of the cluster");

  std::string transferee;
  auto* ml = app.add_subcommand("move-leader", "Hand leadership to another member");
  ml->add_option("transferee", transferee, "The member's ID, in hex")->required();

  std::int64_t rev = 0;
  bool physical = false;
  auto* comp = app.add_subcommand("compaction", "Compact the history up to a revision");
  comp->add_option("revision", rev, "The revision")->required();
  comp->add_flag("--physical", physical, "Wait until the compaction is done on disk");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // etcdctl (cobra) exits 1 on an unknown command or flag or a bad flag value.
    std::cerr << "Error: " << e.what() << "\n";
    return exit_error;
  }
  if (*save) snapshot_save(g, file);
  if (*status) print_snapshot_status(g, file);
  if (*restore) {
    if (rc.data_dir.empty()) rc.data_dir = rc.name + ".etcd";
    rc.advertise_peer_urls = split(advertise_peer);
    snapshot_restore(rc);
  }
  if (*health) return endpoint_health(g);
  if (*st) return endpoint_status(g);
  if (*mlist) member_list(g);
  if (*madd) member_change(g, "add", member_arg, peer_urls, learner);
  if (*mremove) member_change(g, "remove", member_arg, "", false);
  if (*mupdate) member_change(g, "update", member_arg, peer_urls, false);
  if (*mpromote) member_change(g, "promote", member_arg, "", false);
  if (*hashkv) endpoint_hashkv(g, hash_rev);
  if (*ml) move_leader(g, transferee);
  if (*alist) alarm(g, pb::AlarmRequest::GET);
  if (*adisarm) alarm(g, pb::AlarmRequest::DEACTIVATE);
  if (*df) defrag(g);
  if (*comp) compaction(g, rev, physical);
  return 0;
}
