// Cairn's domain error codes: every failure a client can see from an etcd server, as one enum
// (`errc`) that any module may return (`cairn::expected<T, base::errc>`), and one table giving
// each code the exact message and gRPC status code etcd 3.5 answers with. Client libraries turn
// the message text back into typed errors (clientv3's rpctypes.errStringToError), so the text is
// part of the wire format: v3rpc (to_grpc_status) and the JSON gateway both read it from here.
//
// base/ never includes gRPC headers: `grpc_code` mirrors grpc::StatusCode's numbers (fixed by
// the gRPC protocol), and v3rpc checks at compile time that they agree.
//
// Thread-safety: immutable data and pure functions.
#pragma once

#include <cstddef>
#include <string_view>

namespace cairn::base {

// The canonical gRPC status codes (doc/statuscodes.md of the gRPC repository).
enum class grpc_code : int {
  ok = 0,
  canceled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  already_exists = 6,
  permission_denied = 7,
  resource_exhausted = 8,
  failed_precondition = 9,
  aborted = 10,
  out_of_range = 11,
  unimplemented = 12,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
  unauthenticated = 16,
};

// One code per distinct etcd error (etcd 3.5's api/v3rpc/rpctypes/error.go, plus the 3.4
// entries it kept). The comment is the etcd sentinel the code stands for.
enum class errc : int {
  // Request shape.
  empty_key,       // ErrGRPCEmptyKey
  key_not_found,   // ErrGRPCKeyNotFound (put with ignore_value/ignore_lease on a missing key)
  value_provided,  // ErrGRPCValueProvided
  lease_provided,  // ErrGRPCLeaseProvided
  too_many_ops,    // ErrGRPCTooManyOps
  duplicate_key,   // ErrGRPCDuplicateKey
  // Storage.
  compacted,   // ErrGRPCCompacted
  future_rev,  // ErrGRPCFutureRev
  no_space,    // ErrGRPCNoSpace
  // Leases.
  lease_not_found,      // ErrGRPCLeaseNotFound
  lease_exist,          // ErrGRPCLeaseExist
  lease_ttl_too_large,  // ErrGRPCLeaseTTLTooLarge
  // Watch.
  watch_canceled,  // ErrGRPCWatchCanceled
  // Membership.
  member_exist,               // ErrGRPCMemberExist
  peer_url_exist,             // ErrGRPCPeerURLExist
  member_not_enough_started,  // ErrGRPCMemberNotEnoughStarted
  member_bad_urls,            // ErrGRPCMemberBadURLs
  member_not_found,           // ErrGRPCMemberNotFound
  member_not_learner,         // ErrGRPCMemberNotLearner
  learner_not_ready,          // ErrGRPCLearnerNotReady
  too_many_learners,          // ErrGRPCTooManyLearners
  // Limits.
  request_too_large,  // ErrGRPCRequestTooLarge
  too_many_requests,  // ErrGRPCRequestTooManyRequests
  // Auth.
  root_user_not_exist,     // ErrGRPCRootUserNotExist
  root_role_not_exist,     // ErrGRPCRootRoleNotExist
  user_already_exist,      // ErrGRPCUserAlreadyExist
  user_empty,              // ErrGRPCUserEmpty
  user_not_found,          // ErrGRPCUserNotFound
  role_already_exist,      // ErrGRPCRoleAlreadyExist
  role_not_found,          // ErrGRPCRoleNotFound
  role_empty,              // ErrGRPCRoleEmpty
  auth_failed,             // ErrGRPCAuthFailed
  permission_not_given,    // ErrGRPCPermissionNotGiven (3.5.x)
  permission_denied,       // ErrGRPCPermissionDenied
  role_not_granted,        // ErrGRPCRoleNotGranted
  permission_not_granted,  // ErrGRPCPermissionNotGranted
  auth_not_enabled,        // ErrGRPCAuthNotEnabled
  invalid_auth_token,      // ErrGRPCInvalidAuthToken
  invalid_auth_mgmt,       // ErrGRPCInvalidAuthMgmt
  auth_old_revision,       // ErrGRPCAuthOldRevision
  // auth.ErrNoPasswordUser: not in etcd's gRPC table, so clients see it as Unknown with the
  // auth package's own text.
  no_password_user,
  // The node and its cluster.
  no_leader,                       // ErrGRPCNoLeader
  not_leader,                      // ErrGRPCNotLeader
  leader_changed,                  // ErrGRPCLeaderChanged
  not_capable,                     // ErrGRPCNotCapable
  stopped,                         // ErrGRPCStopped
  timeout,                         // ErrGRPCTimeout
  timeout_due_to_leader_fail,      // ErrGRPCTimeoutDueToLeaderFail
  timeout_due_to_connection_lost,  // ErrGRPCTimeoutDueToConnectionLost
  timeout_wait_applied_index,      // ErrGRPCTimeoutWaitAppliedIndex
  unhealthy,                       // ErrGRPCUnhealthy
  corrupt,                         // ErrGRPCCorrupt
  not_supported_for_learner,       // ErrGPRCNotSupportedForLearner
  bad_leader_transferee,           // ErrGRPCBadLeaderTransferee
  // Downgrades (3.5).
  cluster_version_unavailable,       // ErrGRPCClusterVersionUnavailable
  wrong_downgrade_version_format,    // ErrGRPCWrongDowngradeVersionFormat
  invalid_downgrade_target_version,  // ErrGRPCInvalidDowngradeTargetVersion
  downgrade_in_process,              // ErrGRPCDowngradeInProcess
  no_inflight_downgrade,             // ErrGRPCNoInflightDowngrade
  // A request's context ended (3.5 answers these instead of gRPC's own text).
  canceled,           // ErrGRPCCanceled
  deadline_exceeded,  // ErrGRPCDeadlineExceeded
};

// How many codes `errc` has: they are exactly 0 .. errc_count - 1.
inline constexpr std::size_t errc_count = static_cast<std::size_t>(errc::deadline_exceeded) + 1;

struct error_info {
  errc code;
  grpc_code status;          // the gRPC status code etcd answers with
  std::string_view message;  // the status message, byte for byte ("etcdserver: ...")
  std::string_view name;     // our enumerator's name, for logs ("empty_key")
};

// The table entry of `e`; nullptr for a value outside the enum.
const error_info* find_error_info(errc e);
// The table entry of `e`; aborts for a value outside the enum (a broken invariant).
const error_info& error_info_of(errc e);

inline std::string_view message(errc e) { return error_info_of(e).message; }
inline grpc_code status_code(errc e) { return error_info_of(e).status; }
inline std::string_view name(errc e) { return error_info_of(e).name; }

// "OK", "Canceled", ... "Unauthenticated": gRPC's names (grpc-go's codes.Code.String()).
std::string_view to_string(grpc_code c);

}  // namespace cairn::base
