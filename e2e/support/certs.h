// e2e/support/certs.h: a small PKI made with the openssl binary for TLS tests: CAs, leaf
// certificates signed by them (server and client usage, chosen subject alternative names),
// and CRLs. Files land in one directory as <name>.crt and <name>.key. Failures throw
// std::runtime_error with openssl's stderr.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace cairn::e2e {

// /usr/bin/openssl with `args`; throws if it fails.
void openssl(const std::vector<std::string>& args);

// A self-signed CA, CN=<name>: <dir>/<name>.crt and <dir>/<name>.key.
void make_ca(const std::filesystem::path& dir, const std::string& name);

// A certificate signed by CA `ca` (made by make_ca in the same dir): CN=<cn>, the given
// subjectAltName ("IP:127.0.0.1", "DNS:a.example,IP:127.0.0.1", or "" for none), for server
// and client authentication, valid two days.
void make_cert(const std::filesystem::path& dir, const std::string& ca, const std::string& name,
               const std::string& cn, const std::string& san = "IP:127.0.0.1");

// <dir>/<ca>.crl: a CRL of `ca` revoking the certificates <dir>/<name>.crt in `revoked`.
void make_crl(const std::filesystem::path& dir, const std::string& ca,
              const std::vector<std::string>& revoked);

}  // namespace cairn::e2e
