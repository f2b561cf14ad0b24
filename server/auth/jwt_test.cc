#include "auth/jwt.h"

#include <absl/strings/escaping.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace cairn::auth {
namespace {

namespace fs = std::filesystem;

class JwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cairn-jwt-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    write_key(EVP_RSA_gen(2048), "rsa");
    write_key(EVP_EC_gen("P-256"), "ec");
    write_key(EVP_RSA_gen(2048), "other");
    std::ofstream(dir_ / "hmac.key") << "a shared secret of some length";
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write_key(EVP_PKEY* key, const std::string& name) {
    FILE* f = std::fopen((dir_ / (name + ".key")).c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    f = std::fopen((dir_ / (name + ".pub")).c_str(), "w");
    PEM_write_PUBKEY(f, key);
    std::fclose(f);
    EVP_PKEY_free(key);
  }
  std::string p(const std::string& f) const { return (dir_ / f).string(); }
  std::shared_ptr<jwt_signer> make(const std::string& method, const std::string& key,
                                   bool with_private = true,
                                   std::chrono::seconds ttl = std::chrono::seconds(300)) {
    std::map<std::string, std::string> o = {{"sign-method", method}};
    if (method.starts_with("HS")) {
      o["priv-key"] = p("hmac.key");
    } else {
      o["pub-key"] = p(key + ".pub");
      if (with_private) o["priv-key"] = p(key + ".key");
    }
    auto j = jwt_signer::create(o, ttl);
    EXPECT_TRUE(j) << (j ? "" : j.error());
    return j ? *j : nullptr;
  }
  fs::path dir_;
};

TEST_F(JwtTest, EveryMethodSignsWhatItVerifies) {
  for (const std::string m :
       {"RS256", "RS384", "RS512", "PS256", "PS512", "ES256", "HS256", "HS512"}) {
    auto j = make(m, m[0] == 'E' ? "ec" : "rsa");
    ASSERT_TRUE(j) << m;
    auto t = j->sign("alice", 7);
    ASSERT_TRUE(t) << m << " " << t.error();
    auto c = j->verify(*t);
    ASSERT_TRUE(c) << m;
    EXPECT_EQ(c->user, "alice");
    EXPECT_EQ(c->revision, 7u);
    // jwt-go's shapes: the header and the claims in MapClaims' key order.
    std::string header;
    ASSERT_TRUE(absl::WebSafeBase64Unescape(t->substr(0, t->find('.')), &header));
    EXPECT_EQ(header, R"({"alg":")" + m + R"(","typ":"JWT"})");
    // One flipped byte anywhere: refused.
    for (std::size_t i = 0; i < t->size(); i += 9) {
      std::string bent = *t;
      bent[i] = bent[i] == 'A' ? 'B' : 'A';
      if (bent == *t) continue;
      EXPECT_FALSE(j->verify(bent)) << m << " at " << i;
    }
  }
}

TEST_F(JwtTest, RefusesOtherKeysMethodsExpiredAndGarbage) {
  auto rs = make("RS256", "rsa");
  auto other = make("RS256", "other");
  auto t = rs->sign("alice", 1);
  ASSERT_TRUE(t);
  EXPECT_FALSE(other->verify(*t));
  // The same key with another method, and a token claiming "none".
  EXPECT_FALSE(make("RS512", "rsa")->verify(*t));
  const std::string none = absl::WebSafeBase64Escape(R"({"alg":"none","typ":"JWT"})") + "." +
                           t->substr(t->find('.') + 1, t->rfind('.') - t->find('.') - 1) + ".";
  EXPECT_FALSE(rs->verify(none));
  auto expired = make("RS256", "rsa", true, std::chrono::seconds(0));
  auto old = expired->sign("alice", 1);
  ASSERT_TRUE(old);
  EXPECT_FALSE(rs->verify(*old));
  for (const std::string& g :
       std::vector<std::string>{"", ".", "..", "a.b.c", "a.b", std::string(5000, 'x'), "a..b"}) {
    EXPECT_FALSE(rs->verify(g)) << g;
  }
  // A user name that needs escaping round-trips.
  auto odd = rs->sign("we\"ird\\name\n", 3);
  ASSERT_TRUE(odd);
  EXPECT_EQ(rs->verify(*odd)->user, "we\"ird\\name\n");
}

TEST_F(JwtTest, VerifyOnlyAndBadOptionsAreEtcdsErrors) {
  auto verify_only = make("ES256", "ec", false);
  EXPECT_EQ(verify_only->sign("a", 1).error(),
            "auth: token signing attempted with verify-only key");
  auto full = make("ES256", "ec");
  EXPECT_TRUE(verify_only->verify(*full->sign("a", 1)));
  auto bad = jwt_signer::create({{"sign-method", "XX256"}}, std::chrono::seconds(1));
  EXPECT_EQ(bad.error(), "auth: invalid auth signature method");
  auto missing = jwt_signer::create({{"sign-method", "RS256"}}, std::chrono::seconds(1));
  EXPECT_EQ(missing.error(), "auth: missing key data");
  auto mismatch = jwt_signer::create(
      {{"sign-method", "RS256"}, {"pub-key", p("other.pub")}, {"priv-key", p("rsa.key")}},
      std::chrono::seconds(1));
  EXPECT_EQ(mismatch.error(), "auth: public and private keys don't match");
  auto wrong_kind = jwt_signer::create({{"sign-method", "ES256"}, {"priv-key", p("rsa.key")}},
                                       std::chrono::seconds(1));
  EXPECT_FALSE(wrong_kind);
}

}  // namespace
}  // namespace cairn::auth
