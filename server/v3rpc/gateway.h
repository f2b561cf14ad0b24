// v3rpc/gateway.h: etcd's gRPC-JSON gateway on the HTTP side of the client URLs (etcd's
// grpc-gateway v1 mux under /v3/; /v3beta/ is rewritten to /v3/ by http::with_access_control).
//
// Every path of the reference §3.1 maps to one gRPC method (routes() lists them). A POST body is
// the request message in protobuf's JSON mapping (proto field names or their JSON names;
// unknown fields ignored; an empty body is an empty request). The gateway calls the method
// through a gRPC channel to this member's own server, so answers, errors and limits are exactly
// those of the gRPC API, and replies in etcd's JSON:
//
//   unary       200, Content-Type application/json, the response message with proto field
//               names, int64 as strings, bytes as base64, enums by name, default values left
//               out (`{"header":{...},"kvs":[...],"count":"1"}`).
//   streams     Watch and LeaseKeepAlive take a body of zero or more JSON request objects one
//               after another; Snapshot and Observe take one. The answer is chunked, one line
//               `{"result":{...}}\n` per response message, until the call ends or the client
//               goes away (then the call is cancelled).
//   errors      the HTTP status of the gRPC code (grpc-gateway v1's table: InvalidArgument and
//               OutOfRange 400, NotFound 404, FailedPrecondition 412, ResourceExhausted 429,
//               Unavailable 503, Unknown 500, ...) and `{"error":m,"message":m,"code":c}`,
//               chunked with the trailer `Grpc-Trailer-Content-Type: application/grpc`, as etcd
//               sends it. A body that is not JSON: 400, code 3 (unary) or 500, code 2 (streams),
//               with protobuf's parser message instead of Go's.
//   other       a method other than POST: 405 "Method Not Allowed"; an unknown path under /v3/:
//               404 "Not Found" (both text/plain, as etcd's mux).
// The `Authorization` header is passed on as the gRPC metadata `authorization` (etcd reads a
// token from it).
//
// Thread-safety: handle() runs on many HTTP connection threads at once; the channel is set once
// the gRPC server is up (set_channel), before that every call answers 503 "etcdserver: not
// ready" (code 14).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "http/router.h"

namespace cairn::v3rpc {

enum class rpc_kind { unary, server_stream, bidi_stream };

struct gateway_route {
  std::string path;    // "/v3/kv/range"
  std::string method;  // "etcdserverpb.KV.Range" (the descriptor's full name)
  rpc_kind kind = rpc_kind::unary;
};
// Every gateway path, etcd 3.5's set.
const std::vector<gateway_route>& gateway_routes();

// grpc-gateway v1's HTTPStatusFromCode.
int http_status_of(grpc::StatusCode code);

class gateway {
 public:
  gateway();
  // The channel to the member's own gRPC server (an in-process channel in the server).
  void set_channel(std::shared_ptr<grpc::Channel> channel);
  http::response handle(const http::request& r) const;
  // Registers "/v3/" on `router`; `this` must outlive it.
  void install(http::router& router) const;

 private:
  struct route_info;
  std::shared_ptr<grpc::Channel> channel() const;

  std::vector<std::shared_ptr<const route_info>> routes_;
  mutable std::mutex mu_;
  std::shared_ptr<grpc::Channel> channel_;  // guarded by mu_
};

// Splits a body of concatenated JSON values (objects, whitespace between them allowed) into the
// values; nullopt if one is unterminated or something other than an object starts.
std::optional<std::vector<std::string_view>> split_json_objects(std::string_view body);

}  // namespace cairn::v3rpc
