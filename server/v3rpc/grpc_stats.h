// v3rpc/grpc_stats.h: what the gRPC server counts per method for the metrics, as
// go-grpc-prometheus counts it for etcd (grpc_server_started_total, grpc_server_handled_total,
// grpc_server_msg_received_total, grpc_server_msg_sent_total, grpc_server_handling_seconds),
// plus etcd's own etcd_network_client_grpc_{received,sent}_bytes_total (the encoded size of
// every message) and etcd_server_client_requests_total{type, client_api_version}.
//
// Every method of every service the member serves is known from the start (the descriptors of
// the generated services), so its counters exist at zero before its first call, as
// go-grpc-prometheus pre-initialises them. This header does not include gRPC: the exporter
// reads it; the interceptor that fills it (grpc_stats_interceptor, in grpc_metrics.h) does.
//
// Thread-safety: the method table is fixed at construction; counters are atomics; the
// client-version map has its own mutex.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/stats.h"

namespace cairn::v3rpc {

// gRPC status codes 0 (OK) to 16 (UNAUTHENTICATED), by number.
inline constexpr std::array<const char*, 17> grpc_code_names = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

struct method_stats {
  std::string service;  // "etcdserverpb.KV"
  std::string method;   // "Range"
  std::string type;     // "unary", "client_stream", "server_stream", "bidi_stream"
  base::counter started{0};
  std::array<base::counter, 17> handled{};
  base::counter msg_received{0};
  base::counter msg_sent{0};
  // go-grpc-prometheus' default buckets, in seconds (only exported with --metrics=extensive).
  base::histogram handling{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
};

class grpc_stats {
 public:
  // The full names of the services to count ("etcdserverpb.KV", ...); their methods come from
  // the generated descriptor pool.
  explicit grpc_stats(const std::vector<std::string>& services);

  // nullptr for a method that is not counted ("/pkg.Service/Method" form).
  method_stats* find(const std::string& path);
  const std::vector<std::unique_ptr<method_stats>>& methods() const { return methods_; }

  base::counter received_bytes{0};
  base::counter sent_bytes{0};

  // etcd_server_client_requests_total: type "unary" or "stream", and the client's
  // `client-api-version` metadata ("unknown" when absent, as etcd).
  void count_client_request(const std::string& type, const std::string& api_version);
  std::map<std::pair<std::string, std::string>, std::uint64_t> client_requests() const;

 private:
  std::vector<std::unique_ptr<method_stats>> methods_;
  std::map<std::string, method_stats*> by_path_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> client_requests_;  // mu_
};

}  // namespace cairn::v3rpc
