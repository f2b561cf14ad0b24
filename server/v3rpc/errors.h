// v3rpc/errors.h: Cairn's domain errors (base/errors.h) as the gRPC statuses etcd answers with.
// The table itself lives in base/ so that layers without gRPC (the JSON gateway) share it; this
// is the only place the two meet.
//
// Thread-safety: pure functions.
#pragma once

#include <grpcpp/support/status.h>

#include "base/errors.h"

namespace cairn::v3rpc {

grpc::StatusCode to_grpc_code(base::grpc_code c);
// etcd's status for `e`: its gRPC code and its message, byte for byte.
grpc::Status to_grpc_status(base::errc e);

}  // namespace cairn::v3rpc
