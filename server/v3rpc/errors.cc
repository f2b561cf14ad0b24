#include "v3rpc/errors.h"

#include <string>

namespace cairn::v3rpc {

namespace {

using base::grpc_code;

// base::grpc_code mirrors the protocol's numbers; gRPC's enum must agree on every one.
static_assert(static_cast<int>(grpc_code::ok) == grpc::StatusCode::OK);
static_assert(static_cast<int>(grpc_code::canceled) == grpc::StatusCode::CANCELLED);
static_assert(static_cast<int>(grpc_code::unknown) == grpc::StatusCode::UNKNOWN);
static_assert(static_cast<int>(grpc_code::invalid_argument) == grpc::StatusCode::INVALID_ARGUMENT);
static_assert(static_cast<int>(grpc_code::deadline_exceeded) ==
              grpc::StatusCode::DEADLINE_EXCEEDED);
static_assert(static_cast<int>(grpc_code::not_found) == grpc::StatusCode::NOT_FOUND);
static_assert(static_cast<int>(grpc_code::already_exists) == grpc::StatusCode::ALREADY_EXISTS);
static_assert(static_cast<int>(grpc_code::permission_denied) ==
              grpc::StatusCode::PERMISSION_DENIED);
static_assert(static_cast<int>(grpc_code::resource_exhausted) ==
              grpc::StatusCode::RESOURCE_EXHAUSTED);
static_assert(static_cast<int>(grpc_code::failed_precondition) ==
              grpc::StatusCode::FAILED_PRECONDITION);
static_assert(static_cast<int>(grpc_code::aborted) == grpc::StatusCode::ABORTED);
static_assert(static_cast<int>(grpc_code::out_of_range) == grpc::StatusCode::OUT_OF_RANGE);
static_assert(static_cast<int>(grpc_code::unimplemented) == grpc::StatusCode::UNIMPLEMENTED);
static_assert(static_cast<int>(grpc_code::internal) == grpc::StatusCode::INTERNAL);
static_assert(static_cast<int>(grpc_code::unavailable) == grpc::StatusCode::UNAVAILABLE);
static_assert(static_cast<int>(grpc_code::data_loss) == grpc::StatusCode::DATA_LOSS);
static_assert(static_cast<int>(grpc_code::unauthenticated) == grpc::StatusCode::UNAUTHENTICATED);

}  // namespace

grpc::StatusCode to_grpc_code(base::grpc_code c) { return static_cast<grpc::StatusCode>(c); }

grpc::Status to_grpc_status(base::errc e) {
  const base::error_info& info = base::error_info_of(e);
  return grpc::Status(to_grpc_code(info.status), std::string(info.message));
}

}  // namespace cairn::v3rpc
