// to_grpc_status for every domain error, against this test's own list written with gRPC's
// enumerators (so a wrong number in base::grpc_code or a wrong mapping shows here).
#include "v3rpc/errors.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace cairn::v3rpc {
namespace {

using base::errc;
using grpc::StatusCode;

struct row {
  errc code;
  StatusCode status;
  const char* message;
};

const std::vector<row>& rows() {
  static const std::vector<row> r = {
      {errc::empty_key, StatusCode::INVALID_ARGUMENT, "etcdserver: key is not provided"},
      {errc::key_not_found, StatusCode::INVALID_ARGUMENT, "etcdserver: key not found"},
      {errc::value_provided, StatusCode::INVALID_ARGUMENT, "etcdserver: value is provided"},
      {errc::lease_provided, StatusCode::INVALID_ARGUMENT, "etcdserver: lease is provided"},
      {errc::too_many_ops, StatusCode::INVALID_ARGUMENT,
       "etcdserver: too many operations in txn request"},
      {errc::duplicate_key, StatusCode::INVALID_ARGUMENT,
       "etcdserver: duplicate key given in txn request"},
      {errc::compacted, StatusCode::OUT_OF_RANGE,
       "etcdserver: mvcc: required revision has been compacted"},
      {errc::future_rev, StatusCode::OUT_OF_RANGE,
       "etcdserver: mvcc: required revision is a future revision"},
      {errc::no_space, StatusCode::RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"},
      {errc::lease_not_found, StatusCode::NOT_FOUND, "etcdserver: requested lease not found"},
      {errc::lease_exist, StatusCode::FAILED_PRECONDITION, "etcdserver: lease already exists"},
      {errc::lease_ttl_too_large, StatusCode::OUT_OF_RANGE, "etcdserver: too large lease TTL"},
      {errc::watch_canceled, StatusCode::CANCELLED, "etcdserver: watch canceled"},
      {errc::member_exist, StatusCode::FAILED_PRECONDITION, "etcdserver: member ID already exist"},
      {errc::peer_url_exist, StatusCode::FAILED_PRECONDITION,
       "etcdserver: Peer URLs already exists"},
      {errc::member_not_enough_started, StatusCode::UNKNOWN,
       "etcdserver: re-configuration failed due to not enough started members"},
      {errc::member_bad_urls, StatusCode::INVALID_ARGUMENT,
       "etcdserver: given member URLs are invalid"},
      {errc::member_not_found, StatusCode::NOT_FOUND, "etcdserver: member not found"},
      {errc::member_not_learner, StatusCode::FAILED_PRECONDITION,
       "etcdserver: can only promote a learner member"},
      {errc::learner_not_ready, StatusCode::FAILED_PRECONDITION,
       "etcdserver: can only promote a learner member which is in sync with leader"},
      {errc::too_many_learners, StatusCode::FAILED_PRECONDITION,
       "etcdserver: too many learner members in cluster"},
      {errc::request_too_large, StatusCode::INVALID_ARGUMENT, "etcdserver: request is too large"},
      {errc::too_many_requests, StatusCode::RESOURCE_EXHAUSTED, "etcdserver: too many requests"},
      {errc::root_user_not_exist, StatusCode::FAILED_PRECONDITION,
       "etcdserver: root user does not exist"},
      {errc::root_role_not_exist, StatusCode::FAILED_PRECONDITION,
       "etcdserver: root user does not have root role"},
      {errc::user_already_exist, StatusCode::FAILED_PRECONDITION,
       "etcdserver: user name already exists"},
      {errc::user_empty, StatusCode::INVALID_ARGUMENT, "etcdserver: user name is empty"},
      {errc::user_not_found, StatusCode::FAILED_PRECONDITION, "etcdserver: user name not found"},
      {errc::role_already_exist, StatusCode::FAILED_PRECONDITION,
       "etcdserver: role name already exists"},
      {errc::role_not_found, StatusCode::FAILED_PRECONDITION, "etcdserver: role name not found"},
      {errc::role_empty, StatusCode::INVALID_ARGUMENT, "etcdserver: role name is empty"},
      {errc::auth_failed, StatusCode::INVALID_ARGUMENT,
       "etcdserver: authentication failed, invalid user ID or password"},
      {errc::permission_not_given, StatusCode::INVALID_ARGUMENT,
       "etcdserver: permission not given"},
      {errc::permission_denied, StatusCode::PERMISSION_DENIED, "etcdserver: permission denied"},
      {errc::role_not_granted, StatusCode::FAILED_PRECONDITION,
       "etcdserver: role is not granted to the user"},
      {errc::permission_not_granted, StatusCode::FAILED_PRECONDITION,
       "etcdserver: permission is not granted to the role"},
      {errc::auth_not_enabled, StatusCode::FAILED_PRECONDITION,
       "etcdserver: authentication is not enabled"},
      {errc::invalid_auth_token, StatusCode::UNAUTHENTICATED, "etcdserver: invalid auth token"},
      {errc::invalid_auth_mgmt, StatusCode::INVALID_ARGUMENT,
       "etcdserver: invalid auth management"},
      {errc::auth_old_revision, StatusCode::INVALID_ARGUMENT,
       "etcdserver: revision of auth store is old"},
      {errc::no_password_user, StatusCode::UNKNOWN,
       "auth: authentication failed, password was given for no password user"},
      {errc::no_leader, StatusCode::UNAVAILABLE, "etcdserver: no leader"},
      {errc::not_leader, StatusCode::FAILED_PRECONDITION, "etcdserver: not leader"},
      {errc::leader_changed, StatusCode::UNAVAILABLE, "etcdserver: leader changed"},
      {errc::not_capable, StatusCode::UNAVAILABLE, "etcdserver: not capable"},
      {errc::stopped, StatusCode::UNAVAILABLE, "etcdserver: server stopped"},
      {errc::timeout, StatusCode::UNAVAILABLE, "etcdserver: request timed out"},
      {errc::timeout_due_to_leader_fail, StatusCode::UNAVAILABLE,
       "etcdserver: request timed out, possibly due to previous leader failure"},
      {errc::timeout_due_to_connection_lost, StatusCode::UNAVAILABLE,
       "etcdserver: request timed out, possibly due to connection lost"},
      {errc::timeout_wait_applied_index, StatusCode::UNAVAILABLE,
       "etcdserver: request timed out, waiting for the applied index took too long"},
      {errc::unhealthy, StatusCode::UNAVAILABLE, "etcdserver: unhealthy cluster"},
      {errc::corrupt, StatusCode::DATA_LOSS, "etcdserver: corrupt cluster"},
      {errc::not_supported_for_learner, StatusCode::UNAVAILABLE,
       "etcdserver: rpc not supported for learner"},
      {errc::bad_leader_transferee, StatusCode::FAILED_PRECONDITION,
       "etcdserver: bad leader transferee"},
      {errc::cluster_version_unavailable, StatusCode::UNAVAILABLE,
       "etcdserver: cluster version not found during downgrade"},
      {errc::wrong_downgrade_version_format, StatusCode::INVALID_ARGUMENT,
       "etcdserver: wrong downgrade target version format"},
      {errc::invalid_downgrade_target_version, StatusCode::INVALID_ARGUMENT,
       "etcdserver: invalid downgrade target version"},
      {errc::downgrade_in_process, StatusCode::FAILED_PRECONDITION,
       "etcdserver: cluster has a downgrade job in progress"},
      {errc::no_inflight_downgrade, StatusCode::FAILED_PRECONDITION,
       "etcdserver: no inflight downgrade job"},
      {errc::canceled, StatusCode::CANCELLED, "etcdserver: request canceled"},
      {errc::deadline_exceeded, StatusCode::DEADLINE_EXCEEDED,
       "etcdserver: context deadline exceeded"},
  };
  return r;
}

TEST(v3rpc_errors, the_list_has_one_row_per_code) {
  EXPECT_EQ(rows().size(), base::errc_count);
  std::set<int> seen;
  for (const row& r : rows()) EXPECT_TRUE(seen.insert(static_cast<int>(r.code)).second);
}

TEST(v3rpc_errors, every_code_becomes_etcds_status) {
  for (const row& r : rows()) {
    const grpc::Status s = to_grpc_status(r.code);
    EXPECT_FALSE(s.ok()) << r.message;
    EXPECT_EQ(s.error_code(), r.status) << r.message;
    EXPECT_EQ(s.error_message(), r.message);
    EXPECT_TRUE(s.error_details().empty());
  }
}

TEST(v3rpc_errors, grpc_codes_convert_by_number) {
  EXPECT_EQ(to_grpc_code(base::grpc_code::ok), StatusCode::OK);
  EXPECT_EQ(to_grpc_code(base::grpc_code::aborted), StatusCode::ABORTED);
  EXPECT_EQ(to_grpc_code(base::grpc_code::unimplemented), StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(to_grpc_code(base::grpc_code::internal), StatusCode::INTERNAL);
  EXPECT_EQ(to_grpc_code(base::grpc_code::already_exists), StatusCode::ALREADY_EXISTS);
}

}  // namespace
}  // namespace cairn::v3rpc
