// v3rpc/grpc_metrics.h: the server interceptor that fills grpc_stats (v3rpc/grpc_stats.h) for
// every call: started when the call's metadata arrives, each message received and sent (with
// its encoded size), handled with its status code, and the handling time.
//
// Thread-safety: one interceptor per call, on gRPC's threads; grpc_stats is thread-safe and
// must outlive the server.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "v3rpc/grpc_stats.h"

namespace cairn::v3rpc {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> grpc_stats_interceptor(
    grpc_stats& stats);

}  // namespace cairn::v3rpc
