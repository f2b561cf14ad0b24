// The error table against a second copy written from etcd's rpctypes/error.go (3.5, with the 3.4
// rows it kept): a typo in either copy fails here. gRPC codes are written as numbers, the way
// they travel, so this test does not trust grpc_code's own values either.
#include "base/errors.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::base {
namespace {

struct expected_row {
  errc code;
  int grpc;  // 1 Canceled, 3 InvalidArgument, 4 DeadlineExceeded, 5 NotFound,
             // 7 PermissionDenied, 8 ResourceExhausted, 9 FailedPrecondition, 11 OutOfRange,
             // 14 Unavailable, 15 DataLoss, 16 Unauthenticated
  std::string_view message;
};

const std::vector<expected_row>& expected_rows() {
  static const std::vector<expected_row> rows = {
      {errc::empty_key, 3, "etcdserver: key is not provided"},
      {errc::key_not_found, 3, "etcdserver: key not found"},
      {errc::value_provided, 3, "etcdserver: value is provided"},
      {errc::lease_provided, 3, "etcdserver: lease is provided"},
      {errc::too_many_ops, 3, "etcdserver: too many operations in txn request"},
      {errc::duplicate_key, 3, "etcdserver: duplicate key given in txn request"},
      {errc::compacted, 11, "etcdserver: mvcc: required revision has been compacted"},
      {errc::future_rev, 11, "etcdserver: mvcc: required revision is a future revision"},
      {errc::no_space, 8, "etcdserver: mvcc: database space exceeded"},
      {errc::lease_not_found, 5, "etcdserver: requested lease not found"},
      {errc::lease_exist, 9, "etcdserver: lease already exists"},
      {errc::lease_ttl_too_large, 11, "etcdserver: too large lease TTL"},
      {errc::watch_canceled, 1, "etcdserver: watch canceled"},
      {errc::member_exist, 9, "etcdserver: member ID already exist"},
      {errc::peer_url_exist, 9, "etcdserver: Peer URLs already exists"},
      {errc::member_not_enough_started, 2,
       "etcdserver: re-configuration failed due to not enough started members"},
      {errc::member_bad_urls, 3, "etcdserver: given member URLs are invalid"},
      {errc::member_not_found, 5, "etcdserver: member not found"},
      {errc::member_not_learner, 9, "etcdserver: can only promote a learner member"},
      {errc::learner_not_ready, 9,
       "etcdserver: can only promote a learner member which is in sync with leader"},
      {errc::too_many_learners, 9, "etcdserver: too many learner members in cluster"},
      {errc::request_too_large, 3, "etcdserver: request is too large"},
      {errc::too_many_requests, 8, "etcdserver: too many requests"},
      {errc::root_user_not_exist, 9, "etcdserver: root user does not exist"},
      {errc::root_role_not_exist, 9, "etcdserver: root user does not have root role"},
      {errc::user_already_exist, 9, "etcdserver: user name already exists"},
      {errc::user_empty, 3, "etcdserver: user name is empty"},
      {errc::user_not_found, 9, "etcdserver: user name not found"},
      {errc::role_already_exist, 9, "etcdserver: role name already exists"},
      {errc::role_not_found, 9, "etcdserver: role name not found"},
      {errc::role_empty, 3, "etcdserver: role name is empty"},
      {errc::auth_failed, 3, "etcdserver: authentication failed, invalid user ID or password"},
      {errc::permission_not_given, 3, "etcdserver: permission not given"},
      {errc::permission_denied, 7, "etcdserver: permission denied"},
      {errc::role_not_granted, 9, "etcdserver: role is not granted to the user"},
      {errc::permission_not_granted, 9, "etcdserver: permission is not granted to the role"},
      {errc::auth_not_enabled, 9, "etcdserver: authentication is not enabled"},
      {errc::invalid_auth_token, 16, "etcdserver: invalid auth token"},
      {errc::invalid_auth_mgmt, 3, "etcdserver: invalid auth management"},
      {errc::auth_old_revision, 3, "etcdserver: revision of auth store is old"},
      {errc::no_password_user, 2,
       "auth: authentication failed, password was given for no password user"},
      {errc::no_leader, 14, "etcdserver: no leader"},
      {errc::not_leader, 9, "etcdserver: not leader"},
      {errc::leader_changed, 14, "etcdserver: leader changed"},
      {errc::not_capable, 14, "etcdserver: not capable"},
      {errc::stopped, 14, "etcdserver: server stopped"},
      {errc::timeout, 14, "etcdserver: request timed out"},
      {errc::timeout_due_to_leader_fail, 14,
       "etcdserver: request timed out, possibly due to previous leader failure"},
      {errc::timeout_due_to_connection_lost, 14,
       "etcdserver: request timed out, possibly due to connection lost"},
      {errc::timeout_wait_applied_index, 14,
       "etcdserver: request timed out, waiting for the applied index took too long"},
      {errc::unhealthy, 14, "etcdserver: unhealthy cluster"},
      {errc::corrupt, 15, "etcdserver: corrupt cluster"},
      {errc::not_supported_for_learner, 14, "etcdserver: rpc not supported for learner"},
      {errc::bad_leader_transferee, 9, "etcdserver: bad leader transferee"},
      {errc::cluster_version_unavailable, 14,
       "etcdserver: cluster version not found during downgrade"},
      {errc::wrong_downgrade_version_format, 3,
       "etcdserver: wrong downgrade target version format"},
      {errc::invalid_downgrade_target_version, 3, "etcdserver: invalid downgrade target version"},
      {errc::downgrade_in_process, 9, "etcdserver: cluster has a downgrade job in progress"},
      {errc::no_inflight_downgrade, 9, "etcdserver: no inflight downgrade job"},
      {errc::canceled, 1, "etcdserver: request canceled"},
      {errc::deadline_exceeded, 4, "etcdserver: context deadline exceeded"},
  };
  return rows;
}

TEST(errors, the_test_list_covers_every_code_once) {
  EXPECT_EQ(expected_rows().size(), errc_count);
  std::set<int> seen;
  for (const auto& row : expected_rows()) {
    EXPECT_TRUE(seen.insert(static_cast<int>(row.code)).second)
        << "listed twice: " << static_cast<int>(row.code);
  }
  // Together with the size check: exactly 0 .. errc_count - 1.
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(*seen.begin(), 0);
  EXPECT_EQ(*seen.rbegin(), static_cast<int>(errc_count) - 1);
}

TEST(errors, every_code_has_etcds_message_and_grpc_code) {
  for (const auto& row : expected_rows()) {
    const error_info* info = find_error_info(row.code);
    ASSERT_NE(info, nullptr) << row.message;
    EXPECT_EQ(info->code, row.code) << row.message;
    EXPECT_EQ(info->message, row.message) << info->name;
    EXPECT_EQ(static_cast<int>(info->status), row.grpc) << info->name;
    EXPECT_EQ(message(row.code), row.message);
    EXPECT_EQ(static_cast<int>(status_code(row.code)), row.grpc);
  }
}

TEST(errors, messages_and_names_are_unique) {
  std::set<std::string_view> messages;
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < errc_count; ++i) {
    const error_info& info = error_info_of(static_cast<errc>(i));
    EXPECT_TRUE(messages.insert(info.message).second) << info.message;
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    // Only auth.ErrNoPasswordUser reaches clients with its package's own prefix.
    EXPECT_TRUE(
        info.message.starts_with(info.code == errc::no_password_user ? "auth: " : "etcdserver: "))
        << info.message;
  }
}

TEST(errors, values_outside_the_enum_have_no_entry) {
  EXPECT_EQ(find_error_info(static_cast<errc>(errc_count)), nullptr);
  EXPECT_EQ(find_error_info(static_cast<errc>(-1)), nullptr);
  EXPECT_DEATH(error_info_of(static_cast<errc>(errc_count + 3)), "not an error code");
}

TEST(errors, grpc_code_names_are_grpcs) {
  EXPECT_EQ(to_string(grpc_code::ok), "OK");
  EXPECT_EQ(to_string(grpc_code::out_of_range), "OutOfRange");
  EXPECT_EQ(to_string(grpc_code::unauthenticated), "Unauthenticated");
  EXPECT_EQ(static_cast<int>(grpc_code::unauthenticated), 16);
  EXPECT_EQ(static_cast<int>(grpc_code::data_loss), 15);
}

}  // namespace
}  // namespace cairn::base
