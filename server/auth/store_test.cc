#include "auth/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "mvcc/testing.h"

namespace cairn::auth {
namespace {

using base::errc;
using mvcc::testing::db;
using mvcc::testing::temp_dir;

class AuthStoreTest : public ::testing::Test {
 protected:
  AuthStoreTest() { st = std::make_unique<store>(*d.be, opts()); }
  static store_options opts() {
    store_options o;
    o.token_ttl = std::chrono::seconds(300);
    return o;
  }
  void reopen() {
    d.be->force_commit();
    st = std::make_unique<store>(*d.be, opts());
  }
  // root with the root role, auth on.
  void enable_with_root() {
    ASSERT_TRUE(st->user_add("root", *hash_password("rootpw", 4), false));
    ASSERT_TRUE(st->user_grant_role("root", "root"));
    ASSERT_TRUE(st->enable());
  }
  auth_info as(const std::string& user) { return {user, st->revision()}; }
  bool can(const std::string& user, std::string_view key, std::string_view end, perm_type t) {
    return st->check(as(user), key, end, t).has_value();
  }

  temp_dir dir;
  db d{dir};
  std::unique_ptr<store> st;
};

TEST_F(AuthStoreTest, EnableNeedsARootUserWithTheRootRole) {
  EXPECT_EQ(st->enable().error(), errc::root_user_not_exist);
  ASSERT_TRUE(st->user_add("root", "", true));
  EXPECT_EQ(st->enable().error(), errc::root_role_not_exist);
  ASSERT_TRUE(st->user_grant_role("root", "root"));  // the root role needs no role_add
  EXPECT_TRUE(st->enable());
  EXPECT_TRUE(st->enabled());
  // While enabled, root cannot be deleted nor lose its role, nor the root role be deleted.
  EXPECT_EQ(st->user_delete("root").error(), errc::invalid_auth_mgmt);
  EXPECT_EQ(st->user_revoke_role("root", "root").error(), errc::invalid_auth_mgmt);
  ASSERT_TRUE(st->role_add("root"));
  EXPECT_EQ(st->role_delete("root").error(), errc::invalid_auth_mgmt);
}

TEST_F(AuthStoreTest, UsersAndRolesAnswerEtcdsErrors) {
  EXPECT_EQ(st->user_add("", "", false).error(), errc::user_empty);
  ASSERT_TRUE(st->user_add("alice", "h", false));
  EXPECT_EQ(st->user_add("alice", "h", false).error(), errc::user_already_exist);
  EXPECT_EQ(st->user_delete("bob").error(), errc::user_not_found);
  EXPECT_EQ(st->user_grant_role("alice", "nope").error(), errc::role_not_found);
  EXPECT_EQ(st->user_grant_role("bob", "root").error(), errc::user_not_found);
  EXPECT_EQ(st->role_add("").error(), errc::role_empty);
  ASSERT_TRUE(st->role_add("r"));
  EXPECT_EQ(st->role_add("r").error(), errc::role_already_exist);
  EXPECT_EQ(st->user_revoke_role("alice", "r").error(), errc::role_not_granted);
  EXPECT_EQ(st->role_revoke_permission("r", "k", "").error(), errc::permission_not_granted);
  EXPECT_EQ(st->role_grant_permission("nope", {}).error(), errc::role_not_found);
  // Deleting a role takes it from its users.
  ASSERT_TRUE(st->user_grant_role("alice", "r"));
  EXPECT_TRUE(st->has_role("alice", "r"));
  ASSERT_TRUE(st->role_delete("r"));
  EXPECT_FALSE(st->has_role("alice", "r"));
  EXPECT_EQ(st->user_names(), (std::vector<std::string>{"alice"}));
}

TEST_F(AuthStoreTest, ChangesBumpTheRevisionAndSurviveAReopen) {
  const auto r0 = st->revision();
  EXPECT_EQ(r0, 1u);
  ASSERT_TRUE(st->user_add("alice", "h", false));
  ASSERT_TRUE(st->role_add("r"));
  ASSERT_TRUE(st->role_grant_permission("r", {perm_type::readwrite, "a", "c"}));
  ASSERT_TRUE(st->user_grant_role("alice", "r"));
  EXPECT_EQ(st->revision(), r0 + 4);
  ASSERT_TRUE(st->user_grant_role("alice", "r"));  // already granted: no change
  EXPECT_EQ(st->revision(), r0 + 4);
  enable_with_root();
  const auto rev = st->revision();
  reopen();
  EXPECT_TRUE(st->enabled());
  EXPECT_EQ(st->revision(), rev);
  auto r = st->get_role("r");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->perms.size(), 1u);
  EXPECT_EQ(r->perms[0], (permission{perm_type::readwrite, "a", "c"}));
  EXPECT_EQ(st->get_user("alice")->roles, (std::vector<std::string>{"r"}));
  st->disable();
  EXPECT_EQ(st->revision(), rev + 1);
}

TEST_F(AuthStoreTest, RangesNeedTheirWholeSpanCovered) {
  ASSERT_TRUE(st->user_add("u", "h", false));
  ASSERT_TRUE(st->role_add("a"));
  ASSERT_TRUE(st->role_add("b"));
  ASSERT_TRUE(st->role_grant_permission("a", {perm_type::read, "a", "c"}));
  ASSERT_TRUE(st->role_grant_permission("b", {perm_type::readwrite, "c", "e"}));
  ASSERT_TRUE(st->role_grant_permission("b", {perm_type::write, "k", ""}));
  ASSERT_TRUE(st->role_grant_permission("b", {perm_type::read, "x", std::string(1, '\0')}));
  ASSERT_TRUE(st->user_grant_role("u", "a"));
  ASSERT_TRUE(st->user_grant_role("u", "b"));
  enable_with_root();
  // Two roles' intervals join: [a, e) readable, [a, c) not writable.
  EXPECT_TRUE(can("u", "a", "e", perm_type::read));
  EXPECT_TRUE(can("u", "b", "d", perm_type::read));
  EXPECT_FALSE(can("u", "a", "f", perm_type::read));
  EXPECT_FALSE(can("u", "a", "d", perm_type::write));
  EXPECT_TRUE(can("u", "c", "e", perm_type::write));
  EXPECT_TRUE(can("u", "dzzz", "", perm_type::write));
  EXPECT_FALSE(can("u", "e", "", perm_type::read));
  // A single-key permission is that key only.
  EXPECT_TRUE(can("u", "k", "", perm_type::write));
  EXPECT_FALSE(can("u", "k", "", perm_type::read));
  EXPECT_FALSE(can("u", "k0", "", perm_type::write));
  EXPECT_FALSE(can("u", "k", "l", perm_type::write));
  // "\0" ends: everything from x.
  EXPECT_TRUE(can("u", "x", std::string(1, '\0'), perm_type::read));
  EXPECT_TRUE(can("u", "zzzz", "", perm_type::read));
  EXPECT_FALSE(can("u", "w", std::string(1, '\0'), perm_type::read));
  // An empty or inverted range still needs a permission on its key (etcd's interval check).
  EXPECT_TRUE(can("u", "b", "a", perm_type::read));
  EXPECT_FALSE(can("u", "f", "a", perm_type::read));
  EXPECT_FALSE(can("u", "f", "f", perm_type::read));
  // root reads anything; no user is user_empty; an unknown user is denied.
  EXPECT_TRUE(can("root", "anything", "", perm_type::write));
  EXPECT_EQ(st->check({"", st->revision()}, "a", "", perm_type::read).error(), errc::user_empty);
  EXPECT_EQ(st->check(as("ghost"), "a", "", perm_type::read).error(), errc::permission_denied);
  EXPECT_EQ(st->check_admin(as("u")).error(), errc::permission_denied);
  EXPECT_TRUE(st->check_admin(as("root")));
}

TEST_F(AuthStoreTest, AnOlderAuthRevisionIsRefused) {
  ASSERT_TRUE(st->user_add("u", "h", false));
  ASSERT_TRUE(st->role_add("r"));
  ASSERT_TRUE(st->role_grant_permission("r", {perm_type::read, "a", ""}));
  ASSERT_TRUE(st->user_grant_role("u", "r"));
  enable_with_root();
  const auth_info before = as("u");
  EXPECT_TRUE(st->check(before, "a", "", perm_type::read));
  ASSERT_TRUE(st->role_add("other"));
  EXPECT_EQ(st->check(before, "a", "", perm_type::read).error(), errc::auth_old_revision);
  EXPECT_TRUE(st->check(as("u"), "a", "", perm_type::read));
}

TEST_F(AuthStoreTest, PasswordsAndTokens) {
  ASSERT_TRUE(st->user_add("alice", *hash_password("pw", 4), false));
  ASSERT_TRUE(st->user_add("cert-only", "", true));
  EXPECT_EQ(st->check_password("alice", "pw").error(), errc::auth_not_enabled);
  enable_with_root();
  EXPECT_EQ(st->check_password("alice", "pw").value(), st->revision());
  EXPECT_EQ(st->check_password("alice", "nope").error(), errc::auth_failed);
  EXPECT_EQ(st->check_password("bob", "pw").error(), errc::auth_failed);
  EXPECT_EQ(st->check_password("cert-only", "").error(), errc::no_password_user);
  const std::string tok = st->token_prefix() + ".7";
  EXPECT_EQ(tok.size(), 18u);
  ASSERT_EQ(st->issue_token("alice", tok).value(), tok);
  auto who = st->token_info(tok);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->user, "alice");
  EXPECT_EQ(who->revision, st->revision());
  ASSERT_TRUE(st->role_add("later"));
  EXPECT_EQ(st->token_info(tok)->revision, st->revision());  // follows the store, as etcd
  EXPECT_EQ(st->token_info("forged.1").error(), errc::invalid_auth_token);
  // A new password drops the user's tokens.
  ASSERT_TRUE(st->user_change_password("alice", *hash_password("pw2", 4)));
  EXPECT_EQ(st->token_info(tok).error(), errc::invalid_auth_token);
  EXPECT_TRUE(st->check_password("alice", "pw2"));
}

TEST_F(AuthStoreTest, TokensExpireAfterTheirTtlSinceLastUse) {
  store_options o;
  o.token_ttl = std::chrono::seconds(1);
  st = std::make_unique<store>(*d.be, o);
  enable_with_root();
  ASSERT_TRUE(st->issue_token("root", "t.1"));
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    EXPECT_TRUE(st->token_info("t.1")) << i;  // each use extends it
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(st->token_info("t.1").error(), errc::invalid_auth_token);
}

TEST_F(AuthStoreTest, BcryptWorkIsBoundedUnderAFlood) {
  store_options o;
  o.bcrypt_slots = 1;
  o.bcrypt_wait = std::chrono::milliseconds(50);
  st = std::make_unique<store>(*d.be, o);
  ASSERT_TRUE(st->user_add("slow", *hash_password("pw", 12), false));  // ~0.2 s per check
  enable_with_root();
  std::atomic<int> refused{0}, failed{0};
  std::vector<std::thread> flood;
  for (int i = 0; i < 6; ++i) {
    flood.emplace_back([&] {
      auto r = st->check_password("slow", "wrong");
      if (!r && r.error() == errc::too_many_requests) ++refused;
      if (!r && r.error() == errc::auth_failed) ++failed;
    });
  }
  for (auto& t : flood) t.join();
  EXPECT_GE(refused.load(), 1);  // the slot was busy: refused rather than queued forever
  EXPECT_GE(failed.load(), 1);
}

TEST(Bcrypt, APasswordWithANulByteIsNeitherHashedNorMatched) {
  const std::string with_nul("pw\0tail", 7);
  EXPECT_FALSE(hash_password(with_nul, 4));
  auto h = hash_password("pw", 4);
  ASSERT_TRUE(h);
  EXPECT_FALSE(password_matches(with_nul, *h));  // crypt(3) would stop at the NUL: "pw"
}

TEST(Bcrypt, HashesInGoFormatAndChecks) {
  auto h = hash_password("secret", 4);
  ASSERT_TRUE(h) << h.error();
  EXPECT_TRUE(h->starts_with("$2a$04$"));
  EXPECT_EQ(h->size(), 60u);
  EXPECT_TRUE(password_matches("secret", *h));
  EXPECT_FALSE(password_matches("Secret", *h));
  EXPECT_FALSE(password_matches("secret", ""));
}

}  // namespace
}  // namespace cairn::auth
