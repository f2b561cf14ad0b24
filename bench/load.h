// bench/load.h: cairn-bench's load engine. It speaks the etcd v3 gRPC API through the generated
// stubs, so it drives etcd and Cairn alike.
//
// Unary workloads (put, range, txn-put, mixed) run `clients` concurrent requesters spread over
// `conns` gRPC connections (each its own TCP connection) and over worker threads, each thread
// driving its requesters on one completion queue: a requester sends its next request as soon as
// the previous answer arrives (or when the --rate pacer allows). The run stops after `total`
// requests or `duration`. The watch workload opens watchers across streams and measures the
// events they receive while writers put at full speed; lease-keepalive renews leases on
// KeepAlive streams.
//
// Thread-safety: run_* start and join their own threads; call them from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bench/stats.h"

namespace cairn::bench {

struct common_options {
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  int conns = 1;
  int clients = 1;
  std::uint64_t total = 10000;            // requests (0: run for `duration`)
  std::chrono::milliseconds duration{0};  // when total is 0
  double rate = 0;                        // requests a second, 0: as fast as possible
  bool target_leader = false;             // send everything to the leader's endpoint
  int threads = 0;                        // worker threads (0: one per core, at most 4)
  bool progress = true;                   // a progress line on stderr every second
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // per request
};

struct key_options {
  int key_size = 8;
  int value_size = 8;
  std::uint64_t key_space = 1;  // keys are chosen among this many
  bool sequential = false;      // key n is n % key_space (else uniform at random)
  std::string prefix;           // prepended to every key
};

enum class unary_kind { put, range, txn_put, mixed };

struct unary_options {
  unary_kind kind = unary_kind::put;
  key_options keys;
  bool serializable = false;     // range: --consistency=s
  std::string range_prefix;      // range: read every key with this prefix (else one key)
  std::int64_t range_limit = 0;  // range: limit
  int txn_ops = 1;               // txn-put: puts in one txn
  double read_ratio = 0.5;       // mixed: the share of ranges
};

report run_unary(const common_options& c, const unary_options& u);

struct watch_options {
  int watchers = 100;
  int streams = 10;
  int writers = 1;            // concurrent putters
  key_options keys;           // the keys written and watched
  bool watch_prefix = false;  // every watcher watches the whole prefix (fan-out to all)
};

report run_watch(const common_options& c, const watch_options& w);

struct keepalive_options {
  std::int64_t ttl = 60;
};

report run_keepalive(const common_options& c, const keepalive_options& k);

// The endpoint of the leader among `endpoints` (Maintenance.Status); nullopt if none answers.
std::optional<std::string> find_leader(const std::vector<std::string>& endpoints);

// The key for number n: `prefix` then n zero-padded to key_size digits (at least).
std::string make_key(const key_options& k, std::uint64_t n);

}  // namespace cairn::bench
