// cairn-bench: a load generator for the etcd v3 API (etcd or Cairn alike). See bench/load.h.
//
//   cairn-bench [global options] put|range|txn-put|mixed|watch|lease-keepalive [options]
//
// It prints a summary (throughput, latency histogram and percentiles, errors by gRPC code) or,
// with --json, one JSON object.
#include <absl/synchronization/mutex.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "bench/load.h"

namespace {

using namespace cairn::bench;

void add_keys(CLI::App* cmd, key_options& k) {
  cmd->add_option("--key-size", k.key_size, "Digits of a key's number (after the prefix)");
  cmd->add_option("--val-size", k.value_size, "Value size in bytes");
  cmd->add_option("--key-space-size", k.key_space, "Keys are chosen among this many");
  cmd->add_flag("--sequential-keys", k.sequential, "Key n is n modulo the key space");
  cmd->add_option("--key-prefix", k.prefix, "Prepended to every key");
}

}  // namespace

int main(int argc, char** argv) {
  // As in cairn's main: no deadlock graph for gRPC's mutexes (Debian's Abseil keeps it on).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"cairn-bench: load for the etcd v3 gRPC API (etcd or Cairn)"};
  app.require_subcommand(1);
  common_options c;
  std::string endpoints = "127.0.0.1:2379";
  std::string duration;
  bool json = false;
  app.add_option("--endpoints", endpoints, "Comma-separated host:port list");
  app.add_option("--conns", c.conns, "gRPC connections");
  app.add_option("--clients", c.clients, "Concurrent requesters over the connections");
  app.add_option("--total", c.total, "Requests in all (0 with --duration)");
  app.add_option("--duration", duration, "Run this long instead of --total (e.g. 30s, 2m)");
  app.add_option("--rate", c.rate, "Requests a second (0: as fast as possible)");
  app.add_flag("--target-leader", c.target_leader, "Send every request to the leader");
  app.add_option("--threads", c.threads, "Worker threads (0: one a core, at most 4)");
  app.add_flag("--json", json, "Print the result as JSON");
  bool quiet = false;
  app.add_flag("--no-progress", quiet, "No progress line on stderr");

  unary_options put;
  put.kind = unary_kind::put;
  auto* put_cmd = app.add_subcommand("put", "Put keys");
  add_keys(put_cmd, put.keys);

  unary_options range;
  range.kind = unary_kind::range;
  std::string consistency = "l";
  auto* range_cmd = app.add_subcommand("range", "Read one key, or every key of a prefix");
  add_keys(range_cmd, range.keys);
  range_cmd->add_option("--consistency", consistency, "l (linearizable) or s (serializable)");
  range_cmd->add_option("--prefix", range.range_prefix, "Read every key with this prefix");
  range_cmd->add_option("--limit", range.range_limit, "Range limit");

  unary_options txn;
  txn.kind = unary_kind::txn_put;
  auto* txn_cmd = app.add_subcommand("txn-put", "Txns of puts");
  add_keys(txn_cmd, txn.keys);
  txn_cmd->add_option("--txn-ops", txn.txn_ops, "Puts in each txn");

  unary_options mixed;
  mixed.kind = unary_kind::mixed;
  auto* mixed_cmd = app.add_subcommand("mixed", "Ranges and puts in a ratio");
  add_keys(mixed_cmd, mixed.keys);
  mixed_cmd->add_option("--read-ratio", mixed.read_ratio, "Share of ranges (0 to 1)");
  std::string mixed_consistency = "l";
  mixed_cmd->add_option("--consistency", mixed_consistency, "l or s");

  watch_options watch;
  watch.keys.value_size = 32;
  auto* watch_cmd = app.add_subcommand("watch", "Watchers on streams while writers put");
  add_keys(watch_cmd, watch.keys);
  watch_cmd->add_option("--watchers", watch.watchers, "Watchers in all");
  watch_cmd->add_option("--streams", watch.streams, "Watch streams they are spread over");
  watch_cmd->add_option("--writers", watch.writers, "Concurrent putters");
  watch_cmd->add_flag("--watch-prefix", watch.watch_prefix,
                      "Every watcher watches the whole key prefix");

  keepalive_options keep;
  auto* keep_cmd = app.add_subcommand("lease-keepalive", "Renew leases on KeepAlive streams");
  keep_cmd->add_option("--ttl", keep.ttl, "The leases' TTL");

  CLI11_PARSE(app, argc, argv);

  c.endpoints.clear();
  for (std::size_t at = 0; at <= endpoints.size();) {
    auto comma = endpoints.find(',', at);
    if (comma == std::string::npos) comma = endpoints.size();
    if (comma > at) c.endpoints.push_back(endpoints.substr(at, comma - at));
    at = comma + 1;
  }
  if (!duration.empty()) {
    char unit = duration.back();
    double v = std::strtod(duration.c_str(), nullptr);
    double ms = unit == 'm' ? v * 60000 : unit == 'h' ? v * 3600000 : v * 1000;
    if (duration.size() > 2 && duration.substr(duration.size() - 2) == "ms") ms = v;
    c.duration = std::chrono::milliseconds(static_cast<long long>(ms));
    c.total = 0;
  }
  c.progress = !quiet && !json;

  report r;
  if (*put_cmd) {
    r = run_unary(c, put);
  } else if (*range_cmd) {
    range.serializable = consistency == "s";
    r = run_unary(c, range);
  } else if (*txn_cmd) {
    r = run_unary(c, txn);
  } else if (*mixed_cmd) {
    mixed.serializable = mixed_consistency == "s";
    r = run_unary(c, mixed);
  } else if (*watch_cmd) {
    r = run_watch(c, watch);
  } else {
    r = run_keepalive(c, keep);
  }
  std::cout << (json ? r.json() : r.text());
  return r.rec.count() > 0 ? 0 : 1;
}
