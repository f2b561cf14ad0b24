#include "tls/tls.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

namespace cairn::tls {

namespace {

template <typename T, void (*Free)(T*)>
struct deleter {
  void operator()(T* p) const { Free(p); }
};
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;
using crl_ptr = std::unique_ptr<X509_CRL, deleter<X509_CRL, X509_CRL_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using ctx_ptr = std::unique_ptr<SSL_CTX, deleter<SSL_CTX, SSL_CTX_free>>;

// The oldest OpenSSL error of this thread, as text; clears the queue.
std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  std::array<char, 256> buf{};
  ERR_error_string_n(e, buf.data(), buf.size());
  return buf.data();
}

// Go's os.Open message for a file we cannot read ("open x: no such file or directory").
std::optional<std::string> unreadable(const std::string& path) {
  std::ifstream in(path);
  if (in) return std::nullopt;
  std::string text = std::strerror(errno);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return "open " + path + ": " + text;
}

struct cipher_name {
  std::string_view go;
  std::string_view openssl;  // empty: a TLS 1.3 suite, not part of a TLS 1.2 list
};
constexpr std::array<cipher_name, 27> cipher_names = {{
    {"TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA"},
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "ECDHE-ECDSA-RC4-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_RC4_128_SHA", "ECDHE-RSA-RC4-SHA"},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_AES_128_GCM_SHA256", ""},
    {"TLS_AES_256_GCM_SHA384", ""},
    {"TLS_CHACHA20_POLY1305_SHA256", ""},
}};

int openssl_version(version v) { return v == version::tls13 ? TLS1_3_VERSION : TLS1_2_VERSION; }

x509_ptr parse_pem_certificate(std::string_view pem) {
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return x509_ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// Go's VerifyHostname for one name: IP literals against IP SANs, names against DNS SANs
// (wildcards in the leftmost label), the subject's common name never.
bool valid_for(X509* cert, const std::string& host) {
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (X509_check_ip_asc(cert, h.c_str(), 0) == 1) return true;
  return X509_check_host(cert, h.data(), h.size(), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) ==
         1;
}

// The server, or the peer, a connection presented: checked beyond its chain.
class certificate_checker final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  // `client_side`: we dialed, so the certificate must also be valid for the name we dialed
  // (gRPC's own hostname check is what this verifier replaces).
  certificate_checker(tls_info info, bool client_side)
      : info_(std::move(info)), client_side_(client_side) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    const grpc::string_ref pem = request->peer_cert();
    if (pem.empty()) {
      *sync_status = client_side_ ? grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                                 "the peer presented no certificate")
                                  : grpc::Status::OK;
      return true;
    }
    x509_ptr cert = parse_pem_certificate(std::string_view(pem.data(), pem.size()));
    std::string reason;
    if (!cert) {
      reason = "unreadable peer certificate";
    } else {
      // The intermediates it sent, for the CRL.
      std::vector<x509_ptr> owned;
      std::vector<X509*> chain;
      const grpc::string_ref full = request->peer_cert_full_chain();
      bio_ptr bio(BIO_new_mem_buf(full.data(), static_cast<int>(full.size())));
      while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        owned.emplace_back(c);
        if (X509_cmp(c, cert.get()) != 0) chain.push_back(c);
      }
      ERR_clear_error();
      reason = check_certificate(info_, cert.get(), chain);
      if (reason.empty() && client_side_ && !info_.self_signed) {
        std::string target(request->target_name().data(), request->target_name().size());
        if (const auto colon = target.rfind(':'); colon != std::string::npos &&
                                                  target.find(']') == std::string::npos &&
                                                  target.find(':') == colon) {
          target.resize(colon);  // "host:port"
        } else if (target.starts_with('[') && target.find("]:") != std::string::npos) {
          target.resize(target.find("]:") + 1);
        }
        if (!target.empty() && !valid_for(cert.get(), target)) {
          reason = "x509: certificate is not valid for " + target;
        }
      }
    }
    if (reason.empty()) {
      *sync_status = grpc::Status::OK;
    } else {
      spdlog::warn("rejected connection: {}", reason);
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, reason);
    }
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  tls_info info_;
  bool client_side_;
};

std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> provider(
    const std::string& key, const std::string& cert, const std::string& ca,
    std::chrono::seconds interval) {
  const auto secs = static_cast<unsigned>(std::max<long long>(interval.count(), 1));
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(key, cert, ca, secs);
}

cairn::expected<ctx_ptr, std::string> build_server_ctx(const tls_info& info) {
  ERR_clear_error();
  ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return cairn::unexpected("tls: " + openssl_error());
  SSL_CTX_set_min_proto_version(ctx.get(), openssl_version(info.min_version));
  if (info.max_version)
    SSL_CTX_set_max_proto_version(ctx.get(), openssl_version(*info.max_version));
  if (!info.cipher_suites.empty()) {
    auto list = openssl_cipher_list(info.cipher_suites);
    if (!list) return cairn::unexpected(list.error());
    if (!list->empty() && SSL_CTX_set_cipher_list(ctx.get(), list->c_str()) != 1) {
      return cairn::unexpected("tls: cipher suites: " + openssl_error());
    }
  }
  for (const std::string* f : {&info.cert_file, &info.key_file}) {
    if (auto why = unreadable(*f)) return cairn::unexpected(*why);
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), info.cert_file.c_str()) != 1) {
    return cairn::unexpected("tls: failed to find any PEM data in certificate input (" +
                             info.cert_file + "): " + openssl_error());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), info.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return cairn::unexpected("tls: private key does not match public key (" + info.cert_file +
                               ", " + info.key_file + ")");
    }
    return cairn::unexpected("tls: failed to find any PEM data in key input (" + info.key_file +
                             "): " + openssl_error());
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return cairn::unexpected("tls: private key does not match public key (" + info.cert_file +
                             ", " + info.key_file + ")");
  }
  if (!info.trusted_ca_file.empty()) {
    if (auto why = unreadable(info.trusted_ca_file)) return cairn::unexpected(*why);
    if (SSL_CTX_load_verify_locations(ctx.get(), info.trusted_ca_file.c_str(), nullptr) != 1) {
      return cairn::unexpected("tls: cannot read the CA bundle " + info.trusted_ca_file + ": " +
                               openssl_error());
    }
    // Go sends the CA names in its certificate request; so do we.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(info.trusted_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx.get(), names);
    }
  }
  if (info.verifies_clients()) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  // ALPN: HTTP/1.1 only on this engine (gRPC's connections never reach it).
  SSL_CTX_set_alpn_select_cb(
      ctx.get(),
      [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
         unsigned int inlen, void*) -> int {
        static constexpr unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        unsigned char* chosen = nullptr;
        if (SSL_select_next_proto(&chosen, outlen, http11, sizeof http11, in, inlen) ==
            OPENSSL_NPN_NEGOTIATED) {
          *out = chosen;
          return SSL_TLSEXT_ERR_OK;
        }
        return SSL_TLSEXT_ERR_NOACK;
      },
      nullptr);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

// A CRL file, PEM or DER (Go's x509.ParseCRL takes both); null if it is neither.
crl_ptr read_crl(const std::string& path) {
  bio_ptr bio(BIO_new_file(path.c_str(), "r"));
  crl_ptr crl(bio ? PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!crl) {
    ERR_clear_error();
    bio_ptr der(BIO_new_file(path.c_str(), "rb"));
    crl.reset(der ? d2i_X509_CRL_bio(der.get(), nullptr) : nullptr);
  }
  ERR_clear_error();
  return crl;
}

std::string file_stamp(const std::string& path) {
  if (path.empty()) return "-";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "?";
  return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "/" +
         std::to_string(st.st_size) + "/" + std::to_string(st.st_ino);
}

}  // namespace

cairn::expected<std::string, std::string> openssl_cipher_list(const std::vector<std::string>& go) {
  std::string out;
  for (const std::string& name : go) {
    const auto it = std::find_if(cipher_names.begin(), cipher_names.end(),
                                 [&](const cipher_name& c) { return c.go == name; });
    if (it == cipher_names.end()) {
      return cairn::unexpected("unexpected TLS cipher suite \"" + name + "\"");
    }
    if (it->openssl.empty()) continue;
    if (!out.empty()) out += ':';
    out += it->openssl;
  }
  return out;
}

void apply_cipher_suites(const std::string& openssl_list) {
  if (!openssl_list.empty()) ::setenv("GRPC_SSL_CIPHER_SUITES", openssl_list.c_str(), 1);
}

cairn::expected<void, std::string> check_files(const tls_info& info) {
  if (info.cert_file.empty() || info.key_file.empty()) {
    return cairn::unexpected("KeyFile and CertFile must both be present[key: " + info.key_file +
                             ", cert: " + info.cert_file + "]");
  }
  auto ctx = build_server_ctx(info);
  if (!ctx) return cairn::unexpected(ctx.error());
  for (const std::string* f : {&info.client_cert_file, &info.client_key_file}) {
    if (f->empty()) continue;
    if (auto why = unreadable(*f)) return cairn::unexpected(*why);
  }
  if (!info.crl_file.empty()) {
    if (auto why = unreadable(info.crl_file)) return cairn::unexpected(*why);
    if (!read_crl(info.crl_file)) return cairn::unexpected("cannot parse the CRL " + info.crl_file);
  }
  return {};
}

cairn::expected<tls_info, std::string> self_cert(const std::string& dir,
                                                 const std::vector<std::string>& hosts, int years) {
  namespace fs = std::filesystem;
  tls_info info;
  info.cert_file = (fs::path(dir) / "cert.pem").string();
  info.key_file = (fs::path(dir) / "key.pem").string();
  info.self_signed = true;
  std::error_code ec;
  if (fs::exists(info.cert_file, ec) && fs::exists(info.key_file, ec)) return info;
  fs::create_directories(dir, ec);
  if (ec) return cairn::unexpected("cannot generate cert: mkdir " + dir + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, ec);  // 0700, as etcd

  ERR_clear_error();
  pkey_ptr key(EVP_EC_gen("P-256"));
  x509_ptr cert(X509_new());
  if (!key || !cert) return cairn::unexpected("cannot generate cert: " + openssl_error());
  X509_set_version(cert.get(), 2);
  {
    std::unique_ptr<BIGNUM, deleter<BIGNUM, BN_free>> serial(BN_new());
    BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
    BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("etcd"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                  static_cast<long>(std::max(years, 1)) * 365 * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  std::string san;
  for (const std::string& h : hosts) {
    std::string host = h;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (host.empty()) continue;
    const bool ip = host.find_first_not_of("0123456789.") == std::string::npos ||
                    host.find(':') != std::string::npos;
    if (!san.empty()) san += ',';
    san += (ip ? "IP:" : "DNS:") + host;
  }
  X509V3_CTX v3{};
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> exts = {
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, "serverAuth,clientAuth"},
      {NID_basic_constraints, "critical,CA:FALSE"}};
  if (!san.empty()) exts.emplace_back(NID_subject_alt_name, san);
  for (const auto& [nid, value] : exts) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (ext == nullptr) return cairn::unexpected("cannot generate cert: " + openssl_error());
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return cairn::unexpected("cannot generate cert: " + openssl_error());
  }
  const std::string tmp_cert = info.cert_file + ".tmp", tmp_key = info.key_file + ".tmp";
  {
    // Never readable by others, not even for an instant (etcd opens it 0600).
    ::unlink(tmp_key.c_str());
    const int fd = ::open(tmp_key.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return cairn::unexpected("cannot generate cert: open " + tmp_key);
    bio_ptr out(BIO_new_fd(fd, BIO_CLOSE));
    if (!out) {
      ::close(fd);
      return cairn::unexpected("cannot generate cert: open " + tmp_key);
    }
    PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  }
  {
    bio_ptr out(BIO_new_file(tmp_cert.c_str(), "w"));
    if (!out) return cairn::unexpected("cannot generate cert: open " + tmp_cert);
    PEM_write_bio_X509(out.get(), cert.get());
  }
  fs::rename(tmp_key, info.key_file, ec);
  if (!ec) fs::rename(tmp_cert, info.cert_file, ec);
  if (ec) return cairn::unexpected("cannot generate cert: " + ec.message());
  spdlog::info("generated a self-signed certificate {} for {}", info.cert_file, san);
  return info;
}

std::string check_certificate(const tls_info& info, X509* leaf, const std::vector<X509*>& chain) {
  if (!info.allowed_cns.empty()) {
    std::array<char, 256> cn{};
    const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn.data(),
                                            static_cast<int>(cn.size()));
    const std::string got =
        n < 0 ? std::string() : std::string(cn.data(), static_cast<std::size_t>(n));
    if (std::find(info.allowed_cns.begin(), info.allowed_cns.end(), got) ==
        info.allowed_cns.end()) {
      return "client certificate authentication failed (common name \"" + got +
             "\" is not allowed)";
    }
  }
  if (!info.allowed_hostnames.empty()) {
    bool ok = false;
    for (const std::string& h : info.allowed_hostnames) ok = ok || valid_for(leaf, h);
    if (!ok) return "client certificate authentication failed (not valid for the allowed hostname)";
  }
#ifndef CAIRN_PLANTED_BUG_TLS_IGNORES_CRL
  if (!info.crl_file.empty()) {
#else
  if ((false)) {
#endif
    // Read at each connection, as etcd's listener does, so a new CRL applies at once.
    crl_ptr crl = read_crl(info.crl_file);
    if (!crl) return "cannot read the CRL " + info.crl_file;
    std::vector<X509*> all = {leaf};
    all.insert(all.end(), chain.begin(), chain.end());
    for (X509* cert : all) {
      X509_REVOKED* revoked = nullptr;
      if (X509_CRL_get0_by_serial(crl.get(), &revoked,
                                  const_cast<ASN1_INTEGER*>(X509_get0_serialNumber(cert))) != 1) {
        continue;
      }
      std::unique_ptr<BIGNUM, deleter<BIGNUM, BN_free>> bn(
          ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
      char* hex = BN_bn2hex(bn.get());
      std::string serial = hex != nullptr ? hex : "?";
      OPENSSL_free(hex);
      for (char& c : serial) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return "certificate with serial " + serial + " revoked";
    }
  }
  return {};
}

std::shared_ptr<grpc::ServerCredentials> grpc_server_credentials(const tls_info& info) {
  const std::string ca = info.verifies_clients() ? info.trusted_ca_file : std::string();
  grpc::experimental::TlsServerCredentialsOptions opts(
      provider(info.key_file, info.cert_file, ca, info.reload_interval));
  opts.watch_identity_key_cert_pairs();
  if (!ca.empty()) opts.watch_root_certs();
#ifndef CAIRN_PLANTED_BUG_TLS_CLIENT_CERT_OPTIONAL
  opts.set_cert_request_type(info.verifies_clients()
                                 ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                 : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
#else
  opts.set_cert_request_type(info.verifies_clients()
                                 ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                                 : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
#endif
  if (!info.crl_file.empty() || !info.allowed_cns.empty() || !info.allowed_hostnames.empty()) {
    opts.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<certificate_checker>(info, false));
  }
  return grpc::experimental::TlsServerCredentials(opts);
}

std::shared_ptr<grpc::ChannelCredentials> grpc_channel_credentials(const tls_info& info) {
  const std::string& cert = info.client_cert_file.empty() ? info.cert_file : info.client_cert_file;
  const std::string& key = info.client_key_file.empty() ? info.key_file : info.client_key_file;
  grpc::experimental::TlsChannelCredentialsOptions opts;
  opts.set_certificate_provider(provider(key, cert, info.trusted_ca_file, info.reload_interval));
  if (!cert.empty()) opts.watch_identity_key_cert_pairs();
  if (!info.trusted_ca_file.empty()) opts.watch_root_certs();
  if (info.self_signed) {
    opts.set_verify_server_certs(false);
    opts.set_check_call_host(false);
    opts.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  } else {
    opts.set_check_call_host(false);
    opts.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<certificate_checker>(info, true));
  }
  return grpc::experimental::TlsCredentials(opts);
}

http_context::http_context(tls_info info) : info_(std::move(info)) {}
http_context::~http_context() = default;

std::string http_context::stamp() const {
  return file_stamp(info_.cert_file) + "|" + file_stamp(info_.key_file) + "|" +
         file_stamp(info_.trusted_ca_file);
}

std::shared_ptr<SSL_CTX> http_context::get() {
  const std::string now = stamp();
  std::lock_guard lock(mu_);
  if (ctx_ && now == stamp_) return ctx_;
  auto built = build_server_ctx(info_);
  if (!built) {
    if (ctx_) {
      spdlog::warn("TLS files changed but cannot be loaded, keeping the previous ones: {}",
                   built.error());
      stamp_ = now;  // warn once per change
      return ctx_;
    }
    spdlog::error("cannot load the TLS files: {}", built.error());
    return nullptr;
  }
  if (ctx_) spdlog::info("reloaded the TLS certificate files ({})", info_.cert_file);
  ctx_ = std::shared_ptr<SSL_CTX>(built->release(), SSL_CTX_free);
  stamp_ = now;
  return ctx_;
}

client_hello parse_client_hello(std::string_view b) {
  client_hello out;
  // Records: type 22 (handshake), version, 2-byte length. The ClientHello may span several.
  std::string hs;
  std::size_t pos = 0;
  while (true) {
    if (b.size() < pos + 5) {
      if (pos == 0 && !b.empty() && static_cast<unsigned char>(b[0]) != 22) {
        out.status = client_hello::state::not_tls;
      }
      return out;
    }
    const auto u = [&](std::size_t i) { return static_cast<unsigned char>(b[i]); };
    if (u(pos) != 22 || u(pos + 1) != 3) {
      out.status = client_hello::state::not_tls;
      return out;
    }
    const std::size_t len = (std::size_t{u(pos + 3)} << 8) | u(pos + 4);
    if (len == 0 || len > (1u << 14) + 2048) {
      out.status = client_hello::state::not_tls;
      return out;
    }
    if (b.size() < pos + 5 + len) return out;
    hs.append(b.substr(pos + 5, len));
    pos += 5 + len;
    if (hs.size() >= 4) {
      const auto h = [&](std::size_t i) { return static_cast<unsigned char>(hs[i]); };
      if (h(0) != 1) {
        out.status = client_hello::state::not_tls;
        return out;
      }
      const std::size_t body = (std::size_t{h(1)} << 16) | (std::size_t{h(2)} << 8) | h(3);
      if (body > (1u << 16)) {
        out.status = client_hello::state::not_tls;
        return out;
      }
      if (hs.size() >= 4 + body) {
        hs = hs.substr(4, body);
        break;
      }
    }
  }
  // ClientHello: version, random, session id, cipher suites, compression, extensions.
  std::size_t p = 0;
  const auto at = [&](std::size_t i) -> std::size_t {
    return i < hs.size() ? static_cast<unsigned char>(hs[i]) : 0;
  };
  auto bad = [&] {
    out.status = client_hello::state::not_tls;
    return out;
  };
  const std::size_t legacy = (at(0) << 8) | at(1);
  p = 2 + 32;
  if (p + 1 > hs.size()) return bad();
  p += 1 + at(p);
  if (p + 2 > hs.size()) return bad();
  p += 2 + ((at(p) << 8) | at(p + 1));
  if (p + 1 > hs.size()) return bad();
  p += 1 + at(p);
  out.status = client_hello::state::ok;
  bool saw_versions = false;
  if (p + 2 <= hs.size()) {
    const std::size_t end = std::min(hs.size(), p + 2 + ((at(p) << 8) | at(p + 1)));
    p += 2;
    while (p + 4 <= end) {
      const std::size_t type = (at(p) << 8) | at(p + 1);
      const std::size_t len = (at(p + 2) << 8) | at(p + 3);
      const std::size_t data = p + 4;
      if (data + len > end) return bad();
      if (type == 16 && len >= 2) {  // application_layer_protocol_negotiation
        std::size_t q = data + 2;
        while (q < data + len) {
          const std::size_t n = at(q);
          const std::string_view proto = std::string_view(hs).substr(q + 1, n);
          if (proto == "h2" || proto == "grpc-exp") out.alpn_h2 = true;
          if (proto == "http/1.1") out.alpn_http11 = true;
          q += 1 + n;
        }
      } else if (type == 43 && len >= 1) {  // supported_versions
        saw_versions = true;
        for (std::size_t q = data + 1; q + 1 < data + 1 + at(data) && q + 1 < data + len; q += 2) {
          const std::size_t v = (at(q) << 8) | at(q + 1);
          if (v == 0x0304) out.offers_tls13 = true;
          if (v == 0x0303) out.offers_tls12 = true;
        }
      }
      p = data + len;
    }
  }
  if (!saw_versions) out.offers_tls12 = legacy >= 0x0303;
  return out;
}

std::string_view protocol_version_alert() {
  static constexpr char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46};
  return {alert, sizeof alert};
}

}  // namespace cairn::tls
