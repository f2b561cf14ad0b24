#include "base/errors.h"

#include <array>
#include <cstdio>
#include <cstdlib>

namespace cairn::base {

namespace {

using enum grpc_code;

// The table, as a switch so that -Wswitch (an error with -Werror) names any enumerator left out.
// Messages and codes: etcd 3.5 (api/v3rpc/rpctypes/error.go), checked against 3.4.23's copy of
// the file; errors_test.cc holds its own copy of every row.
constexpr error_info entry(errc e) {
  switch (e) {
    case errc::empty_key:
      return {e, invalid_argument, "etcdserver: key is not provided", "empty_key"};
    case errc::key_not_found:
      return {e, invalid_argument, "etcdserver: key not found", "key_not_found"};
    case errc::value_provided:
      return {e, invalid_argument, "etcdserver: value is provided", "value_provided"};
    case errc::lease_provided:
      return {e, invalid_argument, "etcdserver: lease is provided", "lease_provided"};
    case errc::too_many_ops:
      return {e, invalid_argument, "etcdserver: too many operations in txn request",
              "too_many_ops"};
    case errc::duplicate_key:
      return {e, invalid_argument, "etcdserver: duplicate key given in txn request",
              "duplicate_key"};
    case errc::compacted:
#ifdef CAIRN_PLANTED_BUG_ERRC_TABLE
      // Planted bug: the code kube-apiserver branches on, turned into a retryable one.
      return {e, unavailable, "etcdserver: mvcc: required revision has been compacted",
              "compacted"};
#else
      return {e, out_of_range, "etcdserver: mvcc: required revision has been compacted",
              "compacted"};
#endif
    case errc::future_rev:
      return {e, out_of_range, "etcdserver: mvcc: required revision is a future revision",
              "future_rev"};
    case errc::no_space:
      return {e, resource_exhausted, "etcdserver: mvcc: database space exceeded", "no_space"};
    case errc::lease_not_found:
      return {e, not_found, "etcdserver: requested lease not found", "lease_not_found"};
    case errc::lease_exist:
      return {e, failed_precondition, "etcdserver: lease already exists", "lease_exist"};
    case errc::lease_ttl_too_large:
      return {e, out_of_range, "etcdserver: too large lease TTL", "lease_ttl_too_large"};
    case errc::watch_canceled:
      return {e, canceled, "etcdserver: watch canceled", "watch_canceled"};
    case errc::member_exist:
      return {e, failed_precondition, "etcdserver: member ID already exist", "member_exist"};
    case errc::peer_url_exist:
      return {e, failed_precondition, "etcdserver: Peer URLs already exists", "peer_url_exist"};
    case errc::member_not_enough_started:
      // etcd maps this one to its client-side error value, not to a gRPC status, so grpc-go
      // sends it as Unknown (seen live from 3.4.23; v3rpc/util.go's toGRPCErrorMap).
      return {e, unknown, "etcdserver: re-configuration failed due to not enough started members",
              "member_not_enough_started"};
    case errc::member_bad_urls:
      return {e, invalid_argument, "etcdserver: given member URLs are invalid", "member_bad_urls"};
    case errc::member_not_found:
      return {e, not_found, "etcdserver: member not found", "member_not_found"};
    case errc::member_not_learner:
      return {e, failed_precondition, "etcdserver: can only promote a learner member",
              "member_not_learner"};
    case errc::learner_not_ready:
      return {e, failed_precondition,
              "etcdserver: can only promote a learner member which is in sync with leader",
              "learner_not_ready"};
    case errc::too_many_learners:
      return {e, failed_precondition, "etcdserver: too many learner members in cluster",
              "too_many_learners"};
    case errc::request_too_large:
      return {e, invalid_argument, "etcdserver: request is too large", "request_too_large"};
    case errc::too_many_requests:
      return {e, resource_exhausted, "etcdserver: too many requests", "too_many_requests"};
    case errc::root_user_not_exist:
      return {e, failed_precondition, "etcdserver: root user does not exist",
              "root_user_not_exist"};
    case errc::root_role_not_exist:
      return {e, failed_precondition, "etcdserver: root user does not have root role",
              "root_role_not_exist"};
    case errc::user_already_exist:
      return {e, failed_precondition, "etcdserver: user name already exists", "user_already_exist"};
    case errc::user_empty:
      return {e, invalid_argument, "etcdserver: user name is empty", "user_empty"};
    case errc::user_not_found:
      return {e, failed_precondition, "etcdserver: user name not found", "user_not_found"};
    case errc::role_already_exist:
      return {e, failed_precondition, "etcdserver: role name already exists", "role_already_exist"};
    case errc::role_not_found:
      return {e, failed_precondition, "etcdserver: role name not found", "role_not_found"};
    case errc::role_empty:
      return {e, invalid_argument, "etcdserver: role name is empty", "role_empty"};
    case errc::auth_failed:
      return {e, invalid_argument, "etcdserver: authentication failed, invalid user ID or password",
              "auth_failed"};
    case errc::permission_not_given:
      return {e, invalid_argument, "etcdserver: permission not given", "permission_not_given"};
    case errc::permission_denied:
      return {e, permission_denied, "etcdserver: permission denied", "permission_denied"};
    case errc::role_not_granted:
      return {e, failed_precondition, "etcdserver: role is not granted to the user",
              "role_not_granted"};
    case errc::permission_not_granted:
      return {e, failed_precondition, "etcdserver: permission is not granted to the role",
              "permission_not_granted"};
    case errc::auth_not_enabled:
      return {e, failed_precondition, "etcdserver: authentication is not enabled",
              "auth_not_enabled"};
    case errc::invalid_auth_token:
      return {e, unauthenticated, "etcdserver: invalid auth token", "invalid_auth_token"};
    case errc::invalid_auth_mgmt:
      return {e, invalid_argument, "etcdserver: invalid auth management", "invalid_auth_mgmt"};
    case errc::auth_old_revision:
      return {e, invalid_argument, "etcdserver: revision of auth store is old",
              "auth_old_revision"};
    case errc::no_password_user:
      return {e, unknown, "auth: authentication failed, password was given for no password user",
              "no_password_user"};
    case errc::no_leader:
      return {e, unavailable, "etcdserver: no leader", "no_leader"};
    case errc::not_leader:
      return {e, failed_precondition, "etcdserver: not leader", "not_leader"};
    case errc::leader_changed:
      return {e, unavailable, "etcdserver: leader changed", "leader_changed"};
    case errc::not_capable:
      return {e, unavailable, "etcdserver: not capable", "not_capable"};
    case errc::stopped:
      return {e, unavailable, "etcdserver: server stopped", "stopped"};
    case errc::timeout:
      return {e, unavailable, "etcdserver: request timed out", "timeout"};
    case errc::timeout_due_to_leader_fail:
      return {e, unavailable,
              "etcdserver: request timed out, possibly due to previous leader failure",
              "timeout_due_to_leader_fail"};
    case errc::timeout_due_to_connection_lost:
      return {e, unavailable, "etcdserver: request timed out, possibly due to connection lost",
              "timeout_due_to_connection_lost"};
    case errc::timeout_wait_applied_index:
      return {e, unavailable,
              "etcdserver: request timed out, waiting for the applied index took too long",
              "timeout_wait_applied_index"};
    case errc::unhealthy:
      return {e, unavailable, "etcdserver: unhealthy cluster", "unhealthy"};
    case errc::corrupt:
      return {e, data_loss, "etcdserver: corrupt cluster", "corrupt"};
    case errc::not_supported_for_learner:
      return {e, unavailable, "etcdserver: rpc not supported for learner",
              "not_supported_for_learner"};
    case errc::bad_leader_transferee:
      return {e, failed_precondition, "etcdserver: bad leader transferee", "bad_leader_transferee"};
    case errc::cluster_version_unavailable:
      return {e, unavailable, "etcdserver: cluster version not found during downgrade",
              "cluster_version_unavailable"};
    case errc::wrong_downgrade_version_format:
      return {e, invalid_argument, "etcdserver: wrong downgrade target version format",
              "wrong_downgrade_version_format"};
    case errc::invalid_downgrade_target_version:
      return {e, invalid_argument, "etcdserver: invalid downgrade target version",
              "invalid_downgrade_target_version"};
    case errc::downgrade_in_process:
      return {e, failed_precondition, "etcdserver: cluster has a downgrade job in progress",
              "downgrade_in_process"};
    case errc::no_inflight_downgrade:
      return {e, failed_precondition, "etcdserver: no inflight downgrade job",
              "no_inflight_downgrade"};
    case errc::canceled:
      return {e, grpc_code::canceled, "etcdserver: request canceled", "canceled"};
    case errc::deadline_exceeded:
      return {e, grpc_code::deadline_exceeded, "etcdserver: context deadline exceeded",
              "deadline_exceeded"};
  }
  return {e, unknown, {}, {}};  // not an enumerator
}

constexpr std::array<error_info, errc_count> table = [] {
  std::array<error_info, errc_count> t{};
  for (std::size_t i = 0; i < errc_count; ++i) t[i] = entry(static_cast<errc>(i));
  return t;
}();

constexpr bool table_is_complete() {
  for (std::size_t i = 0; i < errc_count; ++i) {
    if (table[i].name.empty() || table[i].message.empty()) return false;
  }
  // An enumerator added after the last one (and given a case) without moving errc_count.
  return entry(static_cast<errc>(errc_count)).name.empty();
}
static_assert(table_is_complete(), "errc_count and the error table disagree with errc");

}  // namespace

const error_info* find_error_info(errc e) {
  const auto i = static_cast<std::size_t>(e);
  if (i >= errc_count) return nullptr;
  return &table[i];
}

const error_info& error_info_of(errc e) {
  const error_info* info = find_error_info(e);
  if (info == nullptr) {
    std::fprintf(stderr, "cairn: base::errc value %d is not an error code\n", static_cast<int>(e));
    std::abort();
  }
  return *info;
}

std::string_view to_string(grpc_code c) {
  switch (c) {
    case ok:
      return "OK";
    case grpc_code::canceled:
      return "Canceled";
    case unknown:
      return "Unknown";
    case invalid_argument:
      return "InvalidArgument";
    case grpc_code::deadline_exceeded:
      return "DeadlineExceeded";
    case not_found:
      return "NotFound";
    case already_exists:
      return "AlreadyExists";
    case grpc_code::permission_denied:
      return "PermissionDenied";
    case resource_exhausted:
      return "ResourceExhausted";
    case failed_precondition:
      return "FailedPrecondition";
    case aborted:
      return "Aborted";
    case out_of_range:
      return "OutOfRange";
    case unimplemented:
      return "Unimplemented";
    case internal:
      return "Internal";
    case unavailable:
      return "Unavailable";
    case data_loss:
      return "DataLoss";
    case unauthenticated:
      return "Unauthenticated";
  }
  return "Unknown";
}

}  // namespace cairn::base
