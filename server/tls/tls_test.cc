#include "tls/tls.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tls/terminator.h"

namespace cairn::tls {
namespace {

// The first flight of a real OpenSSL client with these ALPN protocols and version range.
std::string client_hello_bytes(const std::vector<std::string>& alpn, int max_version = 0) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (max_version != 0) SSL_CTX_set_max_proto_version(ctx, max_version);
  std::string wire;
  for (const auto& p : alpn) {
    wire += static_cast<char>(p.size());
    wire += p;
  }
  if (!wire.empty()) {
    SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
  }
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);
  std::string bytes(BIO_ctrl_pending(out), '\0');
  BIO_read(out, bytes.data(), static_cast<int>(bytes.size()));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return bytes;
}

TEST(ClientHello, TellsGrpcFromHttpByAlpn) {
  auto grpc_go = parse_client_hello(client_hello_bytes({"h2"}));
  ASSERT_EQ(grpc_go.status, client_hello::state::ok);
  EXPECT_TRUE(grpc_go.wants_grpc());
  EXPECT_TRUE(grpc_go.offers_tls13);
  EXPECT_TRUE(grpc_go.offers_tls12);
  EXPECT_TRUE(parse_client_hello(client_hello_bytes({"grpc-exp", "h2"})).wants_grpc());
  auto curl = parse_client_hello(client_hello_bytes({"h2", "http/1.1"}));
  ASSERT_EQ(curl.status, client_hello::state::ok);
  EXPECT_FALSE(curl.wants_grpc());
  EXPECT_TRUE(curl.alpn_http11);
  auto bare = parse_client_hello(client_hello_bytes({}));
  ASSERT_EQ(bare.status, client_hello::state::ok);
  EXPECT_FALSE(bare.wants_grpc());
}

TEST(ClientHello, ReadsTheOfferedVersions) {
  auto old = parse_client_hello(client_hello_bytes({"h2"}, TLS1_2_VERSION));
  ASSERT_EQ(old.status, client_hello::state::ok);
  EXPECT_FALSE(old.offers_tls13);
  EXPECT_TRUE(old.offers_tls12);
}

TEST(ClientHello, WaitsForTheWholeHelloAndRefusesWhatIsNotTls) {
  const std::string hello = client_hello_bytes({"h2"});
  for (std::size_t cut :
       {std::size_t{0}, std::size_t{3}, std::size_t{5}, hello.size() / 2, hello.size() - 1}) {
    EXPECT_EQ(parse_client_hello(hello.substr(0, cut)).status, client_hello::state::need_more)
        << cut;
  }
  EXPECT_EQ(parse_client_hello("GET / HTTP/1.1\r\n").status, client_hello::state::not_tls);
  EXPECT_EQ(parse_client_hello("PRI * HTTP/2.0\r\n").status, client_hello::state::not_tls);
  std::string garbled = hello;
  garbled[5] = 2;  // a ServerHello where the ClientHello should be
  EXPECT_EQ(parse_client_hello(garbled).status, client_hello::state::not_tls);
  // Lengths that point past the message never read out of bounds.
  for (std::size_t i = 5; i < hello.size(); i += 7) {
    std::string bent = hello;
    bent[i] = static_cast<char>(0xff);
    (void)parse_client_hello(bent);
  }
}

TEST(CipherSuites, GoNamesBecomeAnOpensslList) {
  auto list =
      openssl_cipher_list({"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                           "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_AES_128_GCM_SHA256"});
  ASSERT_TRUE(list.has_value()) << list.error();
  EXPECT_EQ(*list, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
  auto bad = openssl_cipher_list({"TLS_NOPE"});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error(), "unexpected TLS cipher suite \"TLS_NOPE\"");
}

X509* read_cert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  X509* c = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return c;
}

std::filesystem::path scratch(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("cairn-tls-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(SelfCert, MakesACertificateForTheHostsAndKeepsIt) {
  const auto dir = scratch("self");
  auto info = self_cert(dir.string(), {"127.0.0.1", "localhost", "[::1]"}, 1);
  ASSERT_TRUE(info.has_value()) << info.error();
  EXPECT_TRUE(info->self_signed);
  EXPECT_TRUE(check_files(*info).has_value());
  X509* cert = read_cert(info->cert_file);
  ASSERT_NE(cert, nullptr);
  tls_info want = *info;
  for (std::string host : {"127.0.0.1", "localhost", "::1"}) {
    want.allowed_hostnames = {host};
    EXPECT_EQ(check_certificate(want, cert), "") << host;
  }
  want.allowed_hostnames = {"example.com"};
  EXPECT_NE(check_certificate(want, cert), "");
  want.allowed_hostnames = {};
  want.allowed_cns = {"etcd"};  // the subject is O=etcd, with no common name
  EXPECT_NE(check_certificate(want, cert), "");
  X509_free(cert);
  EXPECT_EQ(
      std::filesystem::status(info->key_file).permissions() & std::filesystem::perms::others_read,
      std::filesystem::perms::none);

  std::ifstream first(info->cert_file);
  std::stringstream before;
  before << first.rdbuf();
  auto again = self_cert(dir.string(), {"127.0.0.1"}, 1);
  ASSERT_TRUE(again.has_value());
  std::ifstream second(again->cert_file);
  std::stringstream after;
  after << second.rdbuf();
  EXPECT_EQ(before.str(), after.str());
  std::filesystem::remove_all(dir);
}

TEST(CheckFiles, NamesWhatIsWrong) {
  const auto dir = scratch("files");
  auto a = self_cert((dir / "a").string(), {"127.0.0.1"}, 1);
  auto b = self_cert((dir / "b").string(), {"127.0.0.1"}, 1);
  ASSERT_TRUE(a && b);
  tls_info mixed = *a;
  mixed.key_file = b->key_file;
  auto r = check_files(mixed);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("private key does not match public key"), std::string::npos)
      << r.error();
  tls_info missing = *a;
  missing.trusted_ca_file = (dir / "nope.crt").string();
  r = check_files(missing);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), "open " + missing.trusted_ca_file + ": no such file or directory");
  tls_info half = *a;
  half.key_file.clear();
  EXPECT_FALSE(check_files(half).has_value());
  std::filesystem::remove_all(dir);
}

// A terminator over one end of a socketpair, with a fresh self-signed certificate; the test
// speaks TLS on net[1] and plaintext on `plain`.
struct terminated {
  explicit terminated(const std::string& name,
                      std::chrono::milliseconds handshake = std::chrono::seconds(5))
      : dir(scratch(name)), info(*self_cert(dir.string(), {"127.0.0.1"}, 1)), ctx(info) {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, net), 0);
    ::fcntl(net[0], F_SETFL, O_NONBLOCK);
    plain = term.start(net[0], "", ctx.get(), info, handshake, "test");
  }
  ~terminated() {
    term.stop();
    std::filesystem::remove_all(dir);
  }
  std::filesystem::path dir;
  tls_info info;
  http_context ctx;
  int net[2] = {-1, -1};
  terminator term;
  int plain = -1;
};

TEST(Terminator, CarriesPlaintextBothWaysAfterTheHandshake) {
  terminated t("term");
  const int plain = t.plain;
  const int* net = t.net;
  ASSERT_GE(plain, 0);

  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(cctx, alpn, sizeof alpn);
  SSL* client = SSL_new(cctx);
  SSL_set_fd(client, net[1]);
  ASSERT_EQ(SSL_connect(client), 1);
  const unsigned char* chosen = nullptr;
  unsigned chosen_len = 0;
  SSL_get0_alpn_selected(client, &chosen, &chosen_len);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(chosen), chosen_len), "http/1.1");
  ASSERT_EQ(SSL_write(client, "ping", 4), 4);
  char buf[16] = {};
  ASSERT_EQ(::recv(plain, buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  ASSERT_EQ(::send(plain, "pong!", 5, 0), 5);
  ASSERT_EQ(SSL_read(client, buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "pong!");
  // The server side closing ends the TLS session with close_notify.
  ::close(plain);
  EXPECT_LE(SSL_read(client, buf, sizeof buf), 0);
  EXPECT_EQ(SSL_get_error(client, 0) == SSL_ERROR_ZERO_RETURN ||
                SSL_get_shutdown(client) & SSL_RECEIVED_SHUTDOWN,
            true);
  SSL_free(client);
  SSL_CTX_free(cctx);
  ::close(net[1]);
}

// A client that sends a large body while the server writes a large answer before reading it:
// the pump buffers both ways instead of blocking on one side (which wedged both threads).
TEST(Terminator, BothDirectionsFlowAtOnce) {
  terminated t("both");
  const int plain = t.plain;
  const int* net = t.net;
  ASSERT_GE(plain, 0);
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL* client = SSL_new(cctx);
  SSL_set_fd(client, net[1]);
  ASSERT_EQ(SSL_connect(client), 1);
  const std::string big(600 * 1024, 'x');
  std::thread app([&] {
    // Writes everything before reading anything.
    std::size_t sent = 0;
    while (sent < big.size()) {
      const ssize_t n = ::send(plain, big.data() + sent, big.size() - sent, MSG_NOSIGNAL);
      ASSERT_GT(n, 0);
      sent += static_cast<std::size_t>(n);
    }
    std::size_t got = 0;
    char buf[65536];
    while (got < big.size()) {
      const ssize_t n = ::recv(plain, buf, sizeof buf, 0);
      ASSERT_GT(n, 0);
      got += static_cast<std::size_t>(n);
    }
  });
  std::size_t sent = 0;
  while (sent < big.size()) {
    const int n = SSL_write(client, big.data() + sent, static_cast<int>(big.size() - sent));
    ASSERT_GT(n, 0);
    sent += static_cast<std::size_t>(n);
  }
  std::size_t got = 0;
  char buf[65536];
  while (got < big.size()) {
    const int n = SSL_read(client, buf, sizeof buf);
    ASSERT_GT(n, 0);
    got += static_cast<std::size_t>(n);
  }
  app.join();
  ::close(plain);
  SSL_free(client);
  SSL_CTX_free(cctx);
  ::close(net[1]);
}

TEST(Terminator, ASilentClientIsDroppedAtTheHandshakeDeadline) {
  terminated t("silent", std::chrono::milliseconds(200));
  ASSERT_GE(t.plain, 0);
  char c;
  EXPECT_EQ(::recv(t.plain, &c, 1, 0), 0);  // closed without a byte
  ::close(t.plain);
  ::close(t.net[1]);
}

}  // namespace
}  // namespace cairn::tls
