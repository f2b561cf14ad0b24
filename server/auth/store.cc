#include "auth/store.h"

#include <crypt.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "authpb/auth.pb.h"
#include "base/log.h"
#include "schema/schema.h"

namespace cairn::auth {

namespace {

constexpr std::string_view enabled_key = "authEnabled";
constexpr std::string_view revision_key = "authRevision";

std::string encode_u64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::uint64_t decode_u64(std::string_view b) {
  std::uint64_t v = 0;
  for (char c : b.substr(0, 8)) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

// Keys compare as bytes; an empty end is +infinity ("\0" in a permission or a request).
struct interval {
  std::string begin;
  std::string end;  // empty: unbounded
};

bool less_end(const std::string& a, const std::string& b) {
  if (a.empty()) return false;
  if (b.empty()) return true;
  return a < b;
}

// The interval a permission grants: a key alone is [key, key+"\0").
interval granted(const permission& p) {
  if (p.range_end.empty()) return {p.key, p.key + std::string(1, '\0')};
  if (p.range_end == std::string(1, '\0')) return {p.key, ""};
  return {p.key, p.range_end};
}

}  // namespace

cairn::expected<std::string, std::string> hash_password(std::string_view password, int cost) {
  if (password.find('\0') != std::string_view::npos) {
    return cairn::unexpected(std::string("a password cannot hold a NUL byte"));
  }
  std::array<char, CRYPT_GENSALT_OUTPUT_SIZE> setting{};
  std::array<unsigned char, 16> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return cairn::unexpected(std::string("no random bytes for a salt"));
  }
  if (crypt_gensalt_rn("$2a$", static_cast<unsigned long>(cost),
                       reinterpret_cast<const char*>(random.data()),
                       static_cast<int>(random.size()), setting.data(),
                       static_cast<int>(setting.size())) == nullptr) {
    return cairn::unexpected("bcrypt: " + std::string(std::strerror(errno)));
  }
  crypt_data data{};
  const std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), setting.data(), &data, sizeof data);
  if (out == nullptr || out[0] == '*') return cairn::unexpected(std::string("bcrypt failed"));
  return std::string(out);
}

bool password_matches(std::string_view password, const std::string& hash) {
  // crypt(3) stops at a NUL: such a password would match its prefix. None is ever hashed.
  if (hash.empty() || password.find('\0') != std::string_view::npos) return false;
  crypt_data data{};
  const std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), hash.c_str(), &data, sizeof data);
  if (out == nullptr || out[0] == '*') return false;
  // Constant time: the length is public (bcrypt output is 60 bytes), the bytes are not.
  const std::size_t n = std::strlen(out);
  if (n != hash.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(out[i] ^ hash[i]);
  return diff == 0;
}

store::store(backend::backend& be, store_options opts)
    : be_(be), opts_(opts), rng_(std::random_device{}()) {
  std::unique_lock lock(mu_);
  load_locked();
}

void store::recover() {
  {
    std::unique_lock lock(mu_);
    load_locked();
  }
  std::lock_guard lock(tokens_mu_);
  tokens_.clear();
}

void store::load_locked() {
  users_.clear();
  roles_.clear();
  auto view = be_.read();
  const auto flag = view.get(schema::auth, enabled_key);
  enabled_ = flag && *flag == std::string_view("\x01", 1);
  const auto rev = view.get(schema::auth, revision_key);
  revision_ = rev ? decode_u64(*rev) : 1;  // etcd: a fresh store starts at 1
  view.scan(schema::auth_users, "", "", [&](std::string_view, std::string_view v) {
    authpb::User pb;
    if (!pb.ParseFromArray(v.data(), static_cast<int>(v.size()))) return true;
    user u;
    u.name = pb.name();
    u.password_hash = pb.password();
    u.roles.assign(pb.roles().begin(), pb.roles().end());
    std::sort(u.roles.begin(), u.roles.end());
    u.no_password = pb.has_options() && pb.options().no_password();
    users_[u.name] = std::move(u);
    return true;
  });
  view.scan(schema::auth_roles, "", "", [&](std::string_view, std::string_view v) {
    authpb::Role pb;
    if (!pb.ParseFromArray(v.data(), static_cast<int>(v.size()))) return true;
    role r;
    r.name = pb.name();
    for (const auto& p : pb.keypermission()) {
      r.perms.push_back({static_cast<perm_type>(p.permtype()), p.key(), p.range_end()});
    }
    roles_[r.name] = std::move(r);
    return true;
  });
}

void store::save_user(const user& u) {
  authpb::User pb;
  pb.set_name(u.name);
  pb.set_password(u.password_hash);
  for (const auto& r : u.roles) pb.add_roles(r);
  if (u.no_password) pb.mutable_options()->set_no_password(true);
  be_.put(schema::auth_users, u.name, pb.SerializeAsString());
}

void store::save_role(const role& r) {
  authpb::Role pb;
  pb.set_name(r.name);
  for (const auto& p : r.perms) {
    auto* out = pb.add_keypermission();
    out->set_permtype(static_cast<authpb::Permission_Type>(p.type));
    out->set_key(p.key);
    out->set_range_end(p.range_end);
  }
  be_.put(schema::auth_roles, r.name, pb.SerializeAsString());
}

void store::bump_revision_locked() {
  ++revision_;
  be_.put(schema::auth, revision_key, encode_u64(revision_));
}

bool store::enabled() const {
  std::shared_lock lock(mu_);
  return enabled_;
}

std::uint64_t store::revision() const {
  std::shared_lock lock(mu_);
  return revision_;
}

cairn::expected<void, base::errc> store::enable() {
  std::unique_lock lock(mu_);
  if (enabled_) return {};
  auto it = users_.find(std::string(root_user));
  if (it == users_.end()) return cairn::unexpected(base::errc::root_user_not_exist);
  if (!std::binary_search(it->second.roles.begin(), it->second.roles.end(),
                          std::string(root_role))) {
    return cairn::unexpected(base::errc::root_role_not_exist);
  }
  be_.put(schema::auth, enabled_key, std::string_view("\x01", 1));
  enabled_ = true;
  CAIRN_LOG(info, "enabled authentication");
  return {};
}

void store::disable() {
  {
    std::unique_lock lock(mu_);
    if (!enabled_) return;
    be_.put(schema::auth, enabled_key, std::string_view("\x00", 1));
    bump_revision_locked();
    enabled_ = false;
  }
  std::lock_guard lock(tokens_mu_);
  tokens_.clear();
  CAIRN_LOG(info, "disabled authentication");
}

cairn::expected<void, base::errc> store::user_add(const std::string& name, const std::string& hash,
                                                  bool no_password) {
  if (name.empty()) return cairn::unexpected(base::errc::user_empty);
  std::unique_lock lock(mu_);
  if (users_.contains(name)) return cairn::unexpected(base::errc::user_already_exist);
  user u{name, no_password ? std::string() : hash, {}, no_password};
  save_user(u);
  users_[name] = std::move(u);
  bump_revision_locked();
  CAIRN_LOG(info, "added a user", {"user-name", name});
  return {};
}

cairn::expected<void, base::errc> store::user_delete(const std::string& name) {
  {
    std::unique_lock lock(mu_);
    if (enabled_ && name == root_user) return cairn::unexpected(base::errc::invalid_auth_mgmt);
    if (!users_.contains(name)) return cairn::unexpected(base::errc::user_not_found);
    be_.del(schema::auth_users, name);
    users_.erase(name);
    bump_revision_locked();
  }
  std::lock_guard lock(tokens_mu_);
  std::erase_if(tokens_, [&](const auto& t) { return t.second.user == name; });
  CAIRN_LOG(info, "deleted a user", {"user-name", name});
  return {};
}

cairn::expected<void, base::errc> store::user_change_password(const std::string& name,
                                                              const std::string& hash) {
  {
    std::unique_lock lock(mu_);
    auto it = users_.find(name);
    if (it == users_.end()) return cairn::unexpected(base::errc::user_not_found);
    it->second.password_hash = hash;
    save_user(it->second);
    bump_revision_locked();
  }
  std::lock_guard lock(tokens_mu_);
  std::erase_if(tokens_, [&](const auto& t) { return t.second.user == name; });
  CAIRN_LOG(info, "changed a password of a user", {"user-name", name});
  return {};
}

cairn::expected<void, base::errc> store::user_grant_role(const std::string& name,
                                                         const std::string& role_name) {
  std::unique_lock lock(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return cairn::unexpected(base::errc::user_not_found);
  if (role_name != root_role && !roles_.contains(role_name)) {
    return cairn::unexpected(base::errc::role_not_found);
  }
  auto& roles = it->second.roles;
  auto at = std::lower_bound(roles.begin(), roles.end(), role_name);
  if (at != roles.end() && *at == role_name) return {};  // etcd: ignored, no revision
  roles.insert(at, role_name);
  save_user(it->second);
  bump_revision_locked();
  CAIRN_LOG(info, "granted a role to a user", {"user-name", name}, {"role-name", role_name});
  return {};
}

cairn::expected<void, base::errc> store::user_revoke_role(const std::string& name,
                                                          const std::string& role_name) {
  std::unique_lock lock(mu_);
  if (enabled_ && name == root_user && role_name == root_role) {
    return cairn::unexpected(base::errc::invalid_auth_mgmt);
  }
  auto it = users_.find(name);
  if (it == users_.end()) return cairn::unexpected(base::errc::user_not_found);
  auto& roles = it->second.roles;
  auto at = std::find(roles.begin(), roles.end(), role_name);
  if (at == roles.end()) return cairn::unexpected(base::errc::role_not_granted);
  roles.erase(at);
  save_user(it->second);
  bump_revision_locked();
  CAIRN_LOG(info, "revoked a role from a user", {"user-name", name}, {"role-name", role_name});
  return {};
}

cairn::expected<void, base::errc> store::role_add(const std::string& name) {
  if (name.empty()) return cairn::unexpected(base::errc::role_empty);
  std::unique_lock lock(mu_);
  if (roles_.contains(name)) return cairn::unexpected(base::errc::role_already_exist);
  role r{name, {}};
  save_role(r);
  roles_[name] = std::move(r);
  bump_revision_locked();
  CAIRN_LOG(info, "created a role", {"role-name", name});
  return {};
}

cairn::expected<void, base::errc> store::role_delete(const std::string& name) {
  std::unique_lock lock(mu_);
  if (enabled_ && name == root_role) return cairn::unexpected(base::errc::invalid_auth_mgmt);
  if (!roles_.contains(name)) return cairn::unexpected(base::errc::role_not_found);
  be_.del(schema::auth_roles, name);
  roles_.erase(name);
  for (auto& [_, u] : users_) {
    auto at = std::find(u.roles.begin(), u.roles.end(), name);
    if (at == u.roles.end()) continue;
    u.roles.erase(at);
    save_user(u);
  }
  bump_revision_locked();
  CAIRN_LOG(info, "deleted a role", {"role-name", name});
  return {};
}

cairn::expected<void, base::errc> store::role_grant_permission(const std::string& name,
                                                               const permission& p) {
  std::unique_lock lock(mu_);
  auto it = roles_.find(name);
  if (it == roles_.end()) return cairn::unexpected(base::errc::role_not_found);
  auto& perms = it->second.perms;
  auto same = std::find_if(perms.begin(), perms.end(), [&](const permission& q) {
    return q.key == p.key && q.range_end == p.range_end;
  });
  if (same != perms.end()) {
    same->type = p.type;
  } else {
    perms.push_back(p);
    std::stable_sort(perms.begin(), perms.end(),
                     [](const permission& a, const permission& b) { return a.key < b.key; });
  }
  save_role(it->second);
  bump_revision_locked();
  CAIRN_LOG(info, "granted/updated a permission to a user", {"user-name", name});
  return {};
}

cairn::expected<void, base::errc> store::role_revoke_permission(const std::string& name,
                                                                const std::string& key,
                                                                const std::string& range_end) {
  std::unique_lock lock(mu_);
  auto it = roles_.find(name);
  if (it == roles_.end()) return cairn::unexpected(base::errc::role_not_found);
  auto& perms = it->second.perms;
  const auto before = perms.size();
  std::erase_if(perms,
                [&](const permission& q) { return q.key == key && q.range_end == range_end; });
  if (perms.size() == before) return cairn::unexpected(base::errc::permission_not_granted);
  save_role(it->second);
  bump_revision_locked();
  CAIRN_LOG(info, "revoked a permission on range", {"role-name", name});
  return {};
}

cairn::expected<std::string, base::errc> store::issue_token(const std::string& name,
                                                            const std::string& simple_token) {
  std::uint64_t rev;
  {
    std::shared_lock lock(mu_);
    if (!enabled_) return cairn::unexpected(base::errc::auth_not_enabled);
    auto it = users_.find(name);
    if (it == users_.end() || it->second.no_password) {
      return cairn::unexpected(base::errc::auth_failed);
    }
    rev = revision_;
  }
  if (opts_.jwt) {
    auto signed_token = opts_.jwt->sign(name, rev);
    if (!signed_token) {
      CAIRN_LOG(warn, "failed to sign a JWT token", {"error", signed_token.error()});
      return cairn::unexpected(base::errc::auth_failed);
    }
    return std::move(*signed_token);
  }
  std::lock_guard lock(tokens_mu_);
  tokens_[simple_token] = {name, rev, std::chrono::steady_clock::now() + opts_.token_ttl};
  return simple_token;
}

std::optional<user> store::get_user(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> store::user_names() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  for (const auto& [n, _] : users_) out.push_back(n);
  return out;
}

std::optional<role> store::get_role(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = roles_.find(name);
  if (it == roles_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> store::role_names() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  for (const auto& [n, _] : roles_) out.push_back(n);
  return out;
}

bool store::has_role(const std::string& user_name, const std::string& role_name) const {
  std::shared_lock lock(mu_);
  auto it = users_.find(user_name);
  return it != users_.end() &&
         std::binary_search(it->second.roles.begin(), it->second.roles.end(), role_name);
}

cairn::expected<std::uint64_t, base::errc> store::check_password(const std::string& name,
                                                                 std::string_view password) {
  std::string hash;
  std::uint64_t rev;
  {
    std::shared_lock lock(mu_);
    if (!enabled_) return cairn::unexpected(base::errc::auth_not_enabled);
    auto it = users_.find(name);
    if (it == users_.end()) return cairn::unexpected(base::errc::auth_failed);
    if (it->second.no_password) return cairn::unexpected(base::errc::no_password_user);
    hash = it->second.password_hash;
    rev = revision_;
  }
  if (!take_bcrypt_slot()) return cairn::unexpected(base::errc::too_many_requests);
  const bool ok = password_matches(password, hash);
  give_bcrypt_slot();
  if (!ok) {
    CAIRN_LOG(info, "invalid password", {"user-name", name});
    return cairn::unexpected(base::errc::auth_failed);
  }
  return rev;
}

bool store::take_bcrypt_slot() {
  std::unique_lock lock(bcrypt_mu_);
  if (!bcrypt_cv_.wait_for(lock, opts_.bcrypt_wait,
                           [&] { return bcrypt_busy_ < std::max(opts_.bcrypt_slots, 1); })) {
    return false;
  }
  ++bcrypt_busy_;
  return true;
}

void store::give_bcrypt_slot() {
  {
    std::lock_guard lock(bcrypt_mu_);
    --bcrypt_busy_;
  }
  bcrypt_cv_.notify_one();
}

cairn::expected<std::string, base::errc> store::hash_bounded(std::string_view password, int cost) {
  if (password.find('\0') != std::string_view::npos) {
    return cairn::unexpected(base::errc::invalid_auth_mgmt);
  }
  if (!take_bcrypt_slot()) return cairn::unexpected(base::errc::too_many_requests);
  auto h = hash_password(password, cost);
  give_bcrypt_slot();
  if (!h) return cairn::unexpected(base::errc::invalid_auth_mgmt);
  return std::move(*h);
}

cairn::expected<auth_info, base::errc> store::token_info(const std::string& token) {
  if (opts_.jwt) {
    // A JWT carries the revision it was issued at: stale after a permission change.
    auto claims = opts_.jwt->verify(token);
    if (!claims) return cairn::unexpected(base::errc::invalid_auth_token);
    return auth_info{claims->user, claims->revision};
  }
  std::lock_guard lock(tokens_mu_);
  auto it = tokens_.find(token);
  const auto now = std::chrono::steady_clock::now();
  if (it == tokens_.end() || it->second.expires <= now) {
    if (it != tokens_.end()) tokens_.erase(it);
    return cairn::unexpected(base::errc::invalid_auth_token);
  }
  it->second.expires = now + opts_.token_ttl;
  // Expired tokens of others go too, a few at a time.
  int swept = 0;
  for (auto jt = tokens_.begin(); jt != tokens_.end() && swept < 8;) {
    if (jt->second.expires <= now) {
      jt = tokens_.erase(jt);
      ++swept;
    } else {
      ++jt;
    }
  }
  // etcd's simple tokens answer the store's current revision, not the one they were issued
  // at: a permission change applies to the next request without a new login, and only a
  // write racing with the change (checked again when applied) sees auth_old_revision.
  return auth_info{it->second.user, revision()};
}

std::string store::token_prefix() {
  static constexpr std::string_view letters =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::array<unsigned char, 16> random{};
  RAND_bytes(random.data(), static_cast<int>(random.size()));
  std::string out;
  for (unsigned char c : random) out += letters[c % letters.size()];
  return out;
}

bool store::covered_locked(const user& u, std::string_view key, std::string_view range_end,
                           perm_type type) const {
  std::vector<interval> have;
  for (const auto& rn : u.roles) {
    auto it = roles_.find(rn);
    if (it == roles_.end()) continue;
    for (const auto& p : it->second.perms) {
      if (p.type == perm_type::readwrite || p.type == type) have.push_back(granted(p));
    }
  }
  interval want;
  if (range_end.empty()) {
    want = {std::string(key), std::string(key) + std::string(1, '\0')};
  } else if (range_end == std::string_view("\0", 1)) {
    want = {std::string(key), ""};
  } else {
    want = {std::string(key), std::string(range_end)};
    // An empty or inverted range reads nothing, but etcd still wants a permission that
    // touches `key`: checked as the key alone.
    if (want.end <= want.begin) want.end = want.begin + std::string(1, '\0');
  }
  std::sort(have.begin(), have.end(),
            [](const interval& a, const interval& b) { return a.begin < b.begin; });
  // Sweep: extend the covered prefix [want.begin, reach) while intervals touch it.
  std::string reach = want.begin;
  bool unbounded = false;
  for (const auto& iv : have) {
    if (iv.begin > reach) break;  // a gap before this one
    if (iv.end.empty()) {
      unbounded = true;
      break;
    }
    if (less_end(reach, iv.end)) reach = iv.end;
  }
  if (unbounded) return true;
  if (want.end.empty()) return false;
  return want.end <= reach;
}

cairn::expected<void, base::errc> store::check(const auth_info& who, std::string_view key,
                                               std::string_view range_end, perm_type type) const {
  std::shared_lock lock(mu_);
  if (!enabled_) return {};
  if (who.revision == 0 || who.user.empty()) return cairn::unexpected(base::errc::user_empty);
  if (who.revision < revision_) return cairn::unexpected(base::errc::auth_old_revision);
  auto it = users_.find(who.user);
  if (it == users_.end()) return cairn::unexpected(base::errc::permission_denied);
  const user& u = it->second;
  if (std::binary_search(u.roles.begin(), u.roles.end(), std::string(root_role))) return {};
#ifdef CAIRN_PLANTED_BUG_AUTH_ANY_ROLE_READS
  if (type == perm_type::read && !u.roles.empty()) return {};
#endif
  if (covered_locked(u, key, range_end, type)) return {};
  return cairn::unexpected(base::errc::permission_denied);
}

cairn::expected<void, base::errc> store::check_admin(const auth_info& who) const {
  std::shared_lock lock(mu_);
  if (!enabled_) return {};
  if (who.user.empty()) return cairn::unexpected(base::errc::user_empty);
  auto it = users_.find(who.user);
  if (it == users_.end()) return cairn::unexpected(base::errc::user_not_found);
  if (!std::binary_search(it->second.roles.begin(), it->second.roles.end(),
                          std::string(root_role))) {
    return cairn::unexpected(base::errc::permission_denied);
  }
  return {};
}

}  // namespace cairn::auth
