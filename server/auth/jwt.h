// auth/jwt.h: etcd's JWT auth tokens (--auth-token jwt,pub-key=...,priv-key=...,sign-method=...).
//
// A token is header.claims.signature, each base64url without padding; the header is
// {"alg":"<method>","typ":"JWT"}, the claims {"exp":<unix seconds>,"revision":<auth
// revision>,"username":"<name>"} (jwt-go's MapClaims order, which etcd uses). Methods: RS256/
// 384/512 (PKCS#1 v1.5), PS256/384/512 (PSS, salt as long as the hash), ES256/384/512 (r||s),
// HS256/384/512 (the priv-key file's bytes are the secret). A member given only pub-key can
// check tokens but not issue them (etcd's verify-only mode).
//
// Unlike simple tokens, a JWT carries the auth revision it was issued at: after a permission
// change it is refused with "revision of auth store is old" and the client logs in again, as
// with etcd.
//
// Thread-safety: immutable after create(); sign and verify from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/expected.h"

using EVP_PKEY = struct evp_pkey_st;

namespace cairn::auth {

struct jwt_claims {
  std::string user;
  std::uint64_t revision = 0;
};

class jwt_signer {
 public:
  // From --auth-token's options: sign-method, pub-key, priv-key (paths); `ttl` is the tokens'
  // life (etcd's ttl option, default 5 minutes).
  static cairn::expected<std::shared_ptr<jwt_signer>, std::string> create(
      const std::map<std::string, std::string>& options, std::chrono::seconds ttl);
  ~jwt_signer();
  jwt_signer(const jwt_signer&) = delete;
  jwt_signer& operator=(const jwt_signer&) = delete;

  // A signed token for `user` at `revision`, expiring ttl from now. Error when verify-only.
  cairn::expected<std::string, std::string> sign(const std::string& user,
                                                 std::uint64_t revision) const;
  // The claims of a token this key signed with this method and that has not expired.
  std::optional<jwt_claims> verify(const std::string& token) const;

 private:
  jwt_signer() = default;
  std::string method_;
  std::string hmac_key_;
  EVP_PKEY* private_ = nullptr;
  EVP_PKEY* public_ = nullptr;
  std::chrono::seconds ttl_{300};
};

}  // namespace cairn::auth
