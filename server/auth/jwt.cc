#include "auth/jwt.h"

#include <absl/strings/escaping.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <array>
#include <fstream>
#include <sstream>
#include <vector>

#include "base/json.h"

namespace cairn::auth {

namespace {

const EVP_MD* digest_of(std::string_view method) {
  if (method.ends_with("256")) return EVP_sha256();
  if (method.ends_with("384")) return EVP_sha384();
  if (method.ends_with("512")) return EVP_sha512();
  return nullptr;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ECDSA: OpenSSL's DER signature <-> JWT's fixed-width r||s.
std::optional<std::string> der_to_raw(std::string_view der, int width) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) return std::nullopt;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string out(static_cast<std::size_t>(2 * width), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  const bool ok = BN_bn2binpad(r, o, width) == width && BN_bn2binpad(s, o + width, width) == width;
  ECDSA_SIG_free(sig);
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::string> raw_to_der(std::string_view raw) {
  if (raw.empty() || raw.size() % 2 != 0) return std::nullopt;
  const int width = static_cast<int>(raw.size() / 2);
  const auto* b = reinterpret_cast<const unsigned char*>(raw.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(b, width, nullptr);
  BIGNUM* s = BN_bin2bn(b + width, width, nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  const int n = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (n <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

int ec_width(EVP_PKEY* key) { return (EVP_PKEY_get_bits(key) + 7) / 8; }

}  // namespace

cairn::expected<std::shared_ptr<jwt_signer>, std::string> jwt_signer::create(
    const std::map<std::string, std::string>& options, std::chrono::seconds ttl) {
  std::shared_ptr<jwt_signer> j(new jwt_signer());
  j->ttl_ = ttl;
  auto method = options.find("sign-method");
  j->method_ = method == options.end() ? "" : method->second;
  static const std::array<std::string_view, 12> methods = {"RS256", "RS384", "RS512", "PS256",
                                                           "PS384", "PS512", "ES256", "ES384",
                                                           "ES512", "HS256", "HS384", "HS512"};
  if (std::find(methods.begin(), methods.end(), j->method_) == methods.end()) {
    return cairn::unexpected(std::string("auth: invalid auth signature method"));
  }
  const auto pub = options.find("pub-key");
  const auto priv = options.find("priv-key");
  if (j->method_.starts_with("HS")) {
    if (priv == options.end()) return cairn::unexpected(std::string("auth: missing key data"));
    auto bytes = read_file(priv->second);
    if (!bytes || bytes->empty())
      return cairn::unexpected("open " + priv->second + ": cannot read");
    j->hmac_key_ = std::move(*bytes);
    return j;
  }
  if (pub == options.end() && priv == options.end()) {
    return cairn::unexpected(std::string("auth: missing key data"));
  }
  if (priv != options.end()) {
    BIO* bio = BIO_new_file(priv->second.c_str(), "r");
    if (bio == nullptr) return cairn::unexpected("open " + priv->second + ": cannot read");
    j->private_ = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (j->private_ == nullptr) {
      return cairn::unexpected("auth: cannot parse the private key " + priv->second);
    }
  }
  if (pub != options.end()) {
    BIO* bio = BIO_new_file(pub->second.c_str(), "r");
    if (bio == nullptr) return cairn::unexpected("open " + pub->second + ": cannot read");
    j->public_ = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (j->public_ == nullptr) {
      return cairn::unexpected("auth: cannot parse the public key " + pub->second);
    }
  } else {
    EVP_PKEY_up_ref(j->private_);
    j->public_ = j->private_;
  }
  if (j->private_ != nullptr && EVP_PKEY_eq(j->private_, j->public_) != 1) {
    return cairn::unexpected(std::string("auth: public and private keys don't match"));
  }
  const int type = EVP_PKEY_get_base_id(j->public_);
  const bool rsa = j->method_[0] == 'R' || j->method_[0] == 'P';
  if ((rsa && type != EVP_PKEY_RSA) || (!rsa && type != EVP_PKEY_EC)) {
    return cairn::unexpected("auth: the key does not fit sign-method " + j->method_);
  }
  ERR_clear_error();
  return j;
}

jwt_signer::~jwt_signer() {
  if (private_ != nullptr) EVP_PKEY_free(private_);
  if (public_ != nullptr) EVP_PKEY_free(public_);
}

cairn::expected<std::string, std::string> jwt_signer::sign(const std::string& user,
                                                           std::uint64_t revision) const {
  if (private_ == nullptr && hmac_key_.empty()) {
    return cairn::unexpected(std::string("auth: token signing attempted with verify-only key"));
  }
  const auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch() + ttl_)
                       .count();
  const std::string header = R"({"alg":")" + method_ + R"(","typ":"JWT"})";
  const std::string claims = R"({"exp":)" + std::to_string(exp) + R"(,"revision":)" +
                             std::to_string(revision) + R"(,"username":)" + base::json_quote(user) +
                             "}";
  const std::string input =
      absl::WebSafeBase64Escape(header) + "." + absl::WebSafeBase64Escape(claims);
  const EVP_MD* md = digest_of(method_);
  std::string sig;
  if (!hmac_key_.empty()) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int len = 0;
    HMAC(md, hmac_key_.data(), static_cast<int>(hmac_key_.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac.data(), &len);
    sig.assign(reinterpret_cast<char*>(mac.data()), len);
  } else {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX* pctx = nullptr;
    bool ok = EVP_DigestSignInit(ctx, &pctx, md, nullptr, private_) == 1;
    if (ok && method_[0] == 'P') {
      ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
    }
    std::size_t len = 0;
    ok = ok &&
         EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                        input.size()) == 1;
    sig.resize(len);
    ok = ok &&
         EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
      ERR_clear_error();
      return cairn::unexpected(std::string("auth: cannot sign a token"));
    }
    sig.resize(len);
    if (method_[0] == 'E') {
      auto raw = der_to_raw(sig, ec_width(private_));
      if (!raw) return cairn::unexpected(std::string("auth: cannot sign a token"));
      sig = std::move(*raw);
    }
  }
  return input + "." + absl::WebSafeBase64Escape(sig);
}

std::optional<jwt_claims> jwt_signer::verify(const std::string& token) const {
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string::npos || token.find('.', dot2 + 1) != std::string::npos) {
    return std::nullopt;
  }
  std::string header, claims, sig;
  if (!absl::WebSafeBase64Unescape(token.substr(0, dot1), &header) ||
      !absl::WebSafeBase64Unescape(token.substr(dot1 + 1, dot2 - dot1 - 1), &claims) ||
      !absl::WebSafeBase64Unescape(token.substr(dot2 + 1), &sig)) {
    return std::nullopt;
  }
  google::protobuf::Struct h, c;
  if (!google::protobuf::util::JsonStringToMessage(header, &h).ok() ||
      !google::protobuf::util::JsonStringToMessage(claims, &c).ok()) {
    return std::nullopt;
  }
  // The method is ours, never the token's choice (no "none", no RS/HS confusion).
  auto alg = h.fields().find("alg");
  if (alg == h.fields().end() || alg->second.string_value() != method_) return std::nullopt;
  const std::string input = token.substr(0, dot2);
  const EVP_MD* md = digest_of(method_);
  if (!hmac_key_.empty()) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int len = 0;
    HMAC(md, hmac_key_.data(), static_cast<int>(hmac_key_.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac.data(), &len);
    if (sig.size() != len || CRYPTO_memcmp(sig.data(), mac.data(), len) != 0) return std::nullopt;
  } else {
    if (method_[0] == 'E') {
      if (sig.size() != static_cast<std::size_t>(2 * ec_width(public_))) return std::nullopt;
      auto der = raw_to_der(sig);
      if (!der) return std::nullopt;
      sig = std::move(*der);
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX* pctx = nullptr;
    bool ok = EVP_DigestVerifyInit(ctx, &pctx, md, nullptr, public_) == 1;
    if (ok && method_[0] == 'P') {
      ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) == 1;
    }
    ok = ok &&
         EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok) return std::nullopt;
  }
  const auto& f = c.fields();
  auto user = f.find("username");
  auto rev = f.find("revision");
  auto exp = f.find("exp");
  if (user == f.end() || rev == f.end() || exp == f.end() || !user->second.has_string_value() ||
      !rev->second.has_number_value() || !exp->second.has_number_value()) {
    return std::nullopt;
  }
  const double now = static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  if (exp->second.number_value() <= now) return std::nullopt;
  if (rev->second.number_value() < 0) return std::nullopt;
  return jwt_claims{user->second.string_value(),
                    static_cast<std::uint64_t>(rev->second.number_value())};
}

}  // namespace cairn::auth
