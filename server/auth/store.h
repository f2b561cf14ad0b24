// auth/store.h: users, roles, permissions and the enabled flag (etcd's auth store), and the
// simple tokens handed out by Authenticate.
//
// State lives in memory (read by every request, under a shared lock) and in the backend's auth
// buckets in etcd's layout ("auth": authEnabled = 0x01/0x00, authRevision = 8 bytes big-endian;
// "authUsers": name -> authpb.User; "authRoles": name -> authpb.Role), written in the open
// batch by the apply thread so that they commit with the consistent index of the entry that
// made them. Every change but enable bumps the auth revision, as etcd. A request carries the
// revision it was checked at; a write whose revision is older than the store's when it is
// applied (the permissions changed in between) is refused with auth_old_revision ("revision of
// auth store is old"). Simple tokens, as etcd's, answer the current revision: a permission
// change applies to the very next request.
//
// Permission checks are etcd's: a key (range_end empty) or a range [key, range_end)
// (range_end "\0": every key from `key`) is allowed when the union of the user's READ (or
// WRITE) intervals over all its roles covers it; READWRITE counts for both; the root role
// allows everything. Deviation: etcd 3.4 never looks inside nested txns; callers here check
// them too (v3rpc).
//
// Passwords: bcrypt via libxcrypt ("$2a$" hashes, Go's bcrypt format), hashed by the API layer
// before proposing, so the raft log never holds a password. check_password runs at most
// `bcrypt_slots` comparisons at once; a caller waits up to `bcrypt_wait` for a slot and is then
// refused with too_many_requests, so a flood of logins cannot take every core.
//
// Thread-safety: mutations from the apply thread only; everything else from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string>
#include <vector>

#include "auth/jwt.h"
#include "backend/backend.h"
#include "base/errors.h"
#include "base/expected.h"

namespace cairn::auth {

enum class perm_type : std::uint8_t { read = 0, write = 1, readwrite = 2 };

struct permission {
  perm_type type = perm_type::read;
  std::string key;
  std::string range_end;  // empty: `key` only; "\0": every key >= key
  friend bool operator==(const permission&, const permission&) = default;
};

struct user {
  std::string name;
  std::string password_hash;       // empty for a no-password user
  std::vector<std::string> roles;  // sorted
  bool no_password = false;
};

struct role {
  std::string name;
  std::vector<permission> perms;  // sorted by key
};

// Who a request runs as: the user and the auth revision its token was issued at (0: nobody).
struct auth_info {
  std::string user;
  std::uint64_t revision = 0;
};

inline constexpr std::string_view root_user = "root";
inline constexpr std::string_view root_role = "root";

// bcrypt hash of `password` at `cost` (4..31), "$2a$" format.
cairn::expected<std::string, std::string> hash_password(std::string_view password, int cost);
// True if `password` matches the bcrypt `hash`.
bool password_matches(std::string_view password, const std::string& hash);

struct store_options {
  int bcrypt_slots = 1;
  std::chrono::milliseconds bcrypt_wait{std::chrono::seconds(5)};
  std::chrono::seconds token_ttl{300};  // --auth-token-ttl
  // --auth-token jwt,...: tokens are signed JWTs instead of simple tokens.
  std::shared_ptr<jwt_signer> jwt;
  // --client-cert-auth: a verified client certificate's common name logs in (etcd uses it
  // only then, even when a CA file alone makes certificates required).
  bool cert_login = false;
};

class store {
 public:
  explicit store(backend::backend& be, store_options opts = {});
  // Reads the buckets again (after the db was replaced by a snapshot); drops every token.
  void recover();

  bool enabled() const;
  bool cert_login() const { return opts_.cert_login; }
  bool uses_jwt() const { return opts_.jwt != nullptr; }
  std::uint64_t revision() const;

  // --- mutations: the apply thread, inside the entry's batch ---
  cairn::expected<void, base::errc> enable();
  void disable();
  cairn::expected<void, base::errc> user_add(const std::string& name, const std::string& hash,
                                             bool no_password);
  cairn::expected<void, base::errc> user_delete(const std::string& name);
  cairn::expected<void, base::errc> user_change_password(const std::string& name,
                                                         const std::string& hash);
  cairn::expected<void, base::errc> user_grant_role(const std::string& name,
                                                    const std::string& role);
  cairn::expected<void, base::errc> user_revoke_role(const std::string& name,
                                                     const std::string& role);
  cairn::expected<void, base::errc> role_add(const std::string& name);
  cairn::expected<void, base::errc> role_delete(const std::string& name);
  cairn::expected<void, base::errc> role_grant_permission(const std::string& name,
                                                          const permission& p);
  cairn::expected<void, base::errc> role_revoke_permission(const std::string& name,
                                                           const std::string& key,
                                                           const std::string& range_end);
  // Authenticate's apply (every member runs it): records `simple_token` for `name` and answers
  // it, or with JWT answers a token signed for `name` at the current revision.
  cairn::expected<std::string, base::errc> issue_token(const std::string& name,
                                                       const std::string& simple_token);

  // --- reads ---
  std::optional<user> get_user(const std::string& name) const;
  std::vector<std::string> user_names() const;  // sorted
  std::optional<role> get_role(const std::string& name) const;
  std::vector<std::string> role_names() const;  // sorted
  bool has_role(const std::string& user, const std::string& role) const;

  // The revision at which `password` was right for `name`: auth_not_enabled, auth_failed
  // (unknown user, a no-password user, or a wrong password), too_many_requests (no bcrypt
  // slot in time).
  cairn::expected<std::uint64_t, base::errc> check_password(const std::string& name,
                                                            std::string_view password);
  // The user of a token at the current revision, extending its life (tokens live token_ttl
  // after last use); invalid_auth_token when unknown or expired.
  cairn::expected<auth_info, base::errc> token_info(const std::string& token);
  // A fresh random token prefix (16 letters); the applied token is prefix + "." + index.
  std::string token_prefix();

  // hash_password within the bcrypt slots: too_many_requests when none frees in time;
  // invalid_auth_mgmt for a password with a NUL byte (bcrypt would stop at it).
  cairn::expected<std::string, base::errc> hash_bounded(std::string_view password, int cost);

  // etcd's isOpPermitted: ok when auth is off; user_empty without a user; auth_old_revision
  // when the token predates the current revision; permission_denied otherwise.
  cairn::expected<void, base::errc> check(const auth_info& who, std::string_view key,
                                          std::string_view range_end, perm_type type) const;
  // The root role: ok when auth is off; user_empty, user_not_found, permission_denied.
  cairn::expected<void, base::errc> check_admin(const auth_info& who) const;

 private:
  void load_locked();
  void save_user(const user& u);
  void save_role(const role& r);
  void bump_revision_locked();
  bool take_bcrypt_slot();
  void give_bcrypt_slot();
  bool covered_locked(const user& u, std::string_view key, std::string_view range_end,
                      perm_type type) const;

  backend::backend& be_;
  store_options opts_;
  mutable std::shared_mutex mu_;
  bool enabled_ = false;               // guarded by mu_
  std::uint64_t revision_ = 0;         // guarded by mu_
  std::map<std::string, user> users_;  // guarded by mu_
  std::map<std::string, role> roles_;  // guarded by mu_

  struct token_entry {
    std::string user;
    std::uint64_t revision = 0;
    std::chrono::steady_clock::time_point expires;
  };
  std::mutex tokens_mu_;
  std::map<std::string, token_entry> tokens_;  // guarded by tokens_mu_
  std::mt19937_64 rng_;                        // guarded by tokens_mu_

  std::mutex bcrypt_mu_;
  std::condition_variable bcrypt_cv_;
  int bcrypt_busy_ = 0;  // guarded by bcrypt_mu_
};

}  // namespace cairn::auth
