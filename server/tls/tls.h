// tls/tls.h: TLS for the client and peer URLs, configured as etcd's transport.TLSInfo.
//
// Two engines serve one configuration:
//   - gRPC's own TLS (TlsServerCredentials / TlsCredentials) for gRPC connections, on the client
//     URLs and on the peer URLs. Its file watcher reloads the certificate, key and CA bundle
//     when their files change (every `reload_interval`), so rotation needs no restart. Our
//     verifier adds what gRPC lacks: the CRL (--client-crl-file, --peer-crl-file) and the
//     allowed common name / hostname checks.
//   - OpenSSL directly (http_context) for HTTP/1.1 over TLS on the client URLs (the JSON
//     gateway, /health, /metrics, curl). The SSL_CTX is rebuilt when a file's modification time
//     or size changes, looked at for each new connection (etcd reads its files per handshake).
//
// Which engine takes a connection is the client listener's choice, from the ClientHello
// (parse_client_hello): ALPN offering h2 and not http/1.1 (every gRPC client) goes to gRPC,
// anything else (curl offers both; no ALPN means HTTP/1.1) to OpenSSL.
//
// etcd's rules kept here: a trusted CA file alone already makes the server require and verify
// client certificates; TLS 1.2 is the oldest version; cipher suites use Go's names (Go 1.19's
// crypto/tls list, CHACHA20 names with or without the _SHA256 suffix) and apply to TLS 1.2 only.
//
// Differences from Go: gRPC 1.51 has no public setting for the TLS version range, so gRPC
// connections accept TLS 1.2 and 1.3 whatever --tls-max-version says; --tls-min-version=TLS1.3
// is enforced for them by the listener, which refuses a ClientHello that does not offer 1.3.
// --cipher-suites reaches gRPC through its process-wide GRPC_SSL_CIPHER_SUITES setting, which
// apply_cipher_suites() sets before any credentials exist.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.h"

using SSL_CTX = struct ssl_ctx_st;
using X509 = struct x509_st;

namespace cairn::tls {

enum class version { tls12, tls13 };

struct tls_info {
  std::string cert_file;
  std::string key_file;
  // What this member presents when it dials (peers); empty: cert_file/key_file.
  std::string client_cert_file;
  std::string client_key_file;
  std::string trusted_ca_file;
  std::string crl_file;
  bool client_cert_auth = false;
  // Peers only: a peer certificate's common name must be one of these.
  std::vector<std::string> allowed_cns;
  // A certificate must be valid for one of these (DNS names or IP addresses, as Go's
  // VerifyHostname: subject alternative names only).
  std::vector<std::string> allowed_hostnames;
  version min_version = version::tls12;
  std::optional<version> max_version;      // nullopt: the newest
  std::vector<std::string> cipher_suites;  // Go names, checked by openssl_cipher_list()
  // --auto-tls / --peer-auto-tls: a certificate we made; who dials it does not verify it.
  bool self_signed = false;
  std::chrono::seconds reload_interval{2};

  bool empty() const { return cert_file.empty() && key_file.empty(); }
  // etcd: ClientAuth = RequireAndVerifyClientCert when a CA file is given or client-cert-auth.
  bool verifies_clients() const { return client_cert_auth || !trusted_ca_file.empty(); }
};

// Go cipher-suite names → an OpenSSL cipher list ("A:B"); TLS 1.3 names add nothing (OpenSSL
// and Go alike ignore a TLS 1.2 list for 1.3). Unknown name: etcd's "unexpected TLS cipher
// suite \"X\"".
cairn::expected<std::string, std::string> openssl_cipher_list(const std::vector<std::string>& go);

// Hands the cipher list to gRPC (GRPC_SSL_CIPHER_SUITES). Call before any TLS credentials are
// made; the setting is process-wide, as etcd's one --cipher-suites is for clients and peers.
void apply_cipher_suites(const std::string& openssl_list);

// Reads every file once so that a bad path, a key that does not match its certificate, an
// unreadable CA bundle or CRL fail the start with a clear message.
cairn::expected<void, std::string> check_files(const tls_info& info);

// --auto-tls: dir/cert.pem and dir/key.pem, made once (kept across restarts, as etcd): an
// ECDSA P-256 key, organization "etcd", the hosts as subject alternative names (IP literals
// as IP addresses), valid `years`, for server and client authentication.
cairn::expected<tls_info, std::string> self_cert(const std::string& dir,
                                                 const std::vector<std::string>& hosts, int years);

// "" when `leaf` passes the CRL and allowed-name checks of `info`, else the reason. The CRL
// applies to every certificate of `chain` too (the intermediates the peer sent), as etcd's.
std::string check_certificate(const tls_info& info, X509* leaf,
                              const std::vector<X509*>& chain = {});

// gRPC credentials for a listening port, and for dialing a peer.
std::shared_ptr<grpc::ServerCredentials> grpc_server_credentials(const tls_info& info);
std::shared_ptr<grpc::ChannelCredentials> grpc_channel_credentials(const tls_info& info);

// The SSL_CTX for HTTP/1.1 over TLS, rebuilt when one of the files changed.
class http_context {
 public:
  explicit http_context(tls_info info);
  ~http_context();
  http_context(const http_context&) = delete;
  http_context& operator=(const http_context&) = delete;
  // The current context (a new one if a file changed); the last good one if a rebuild fails.
  std::shared_ptr<SSL_CTX> get();
  const tls_info& info() const { return info_; }

 private:
  std::string stamp() const;  // modification times and sizes of the files
  tls_info info_;
  std::mutex mu_;
  std::string stamp_;             // guarded by mu_
  std::shared_ptr<SSL_CTX> ctx_;  // guarded by mu_
};

// What the first bytes of a TLS connection say.
struct client_hello {
  enum class state { need_more, not_tls, ok } status = state::need_more;
  bool alpn_h2 = false;       // offers "h2" (or gRPC's "grpc-exp")
  bool alpn_http11 = false;   // offers "http/1.1"
  bool offers_tls13 = false;  // supported_versions lists 0x0304
  bool offers_tls12 = false;  // supported_versions lists 0x0303, or no such extension
  // gRPC connections: ALPN h2 without http/1.1.
  bool wants_grpc() const { return alpn_h2 && !alpn_http11; }
};
client_hello parse_client_hello(std::string_view bytes);

// A TLS alert record: fatal protocol_version (70), sent before closing a connection whose
// ClientHello offers no version we accept.
std::string_view protocol_version_alert();

}  // namespace cairn::tls
