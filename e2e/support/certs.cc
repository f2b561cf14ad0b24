#include "support/certs.h"

#include <fstream>
#include <stdexcept>

#include "support/e2e.h"

namespace cairn::e2e {

void openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run(argv);
  if (r.exit_code != 0) {
    std::string what;
    for (const auto& a : argv) what += a + " ";
    throw std::runtime_error(what + "failed: " + r.err);
  }
}

void make_ca(const std::filesystem::path& dir, const std::string& name) {
  std::filesystem::create_directories(dir);
  openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + name,
           "-keyout", (dir / (name + ".key")).string(), "-out", (dir / (name + ".crt")).string()});
}

void make_cert(const std::filesystem::path& dir, const std::string& ca, const std::string& name,
               const std::string& cn, const std::string& san) {
  const auto p = [&](const std::string& suffix) { return (dir / (name + suffix)).string(); };
  {
    std::ofstream ext(p(".ext"));
    if (!san.empty()) ext << "subjectAltName=" << san << "\n";
    ext << "extendedKeyUsage=serverAuth,clientAuth\n";
  }
  openssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout", p(".key"),
           "-out", p(".csr")});
  openssl({"x509", "-req", "-in", p(".csr"), "-CA", (dir / (ca + ".crt")).string(), "-CAkey",
           (dir / (ca + ".key")).string(), "-CAcreateserial", "-days", "2", "-extfile", p(".ext"),
           "-out", p(".crt")});
}

void make_crl(const std::filesystem::path& dir, const std::string& ca,
              const std::vector<std::string>& revoked) {
  const auto p = [&](const std::string& suffix) { return (dir / (ca + suffix)).string(); };
  std::ofstream(p(".index"), std::ios::trunc);
  std::ofstream(p(".crlnumber"), std::ios::trunc) << "01\n";
  std::ofstream(p(".cnf"), std::ios::trunc)
      << "[ca]\ndefault_ca=d\n[d]\ndatabase=" << p(".index") << "\ncrlnumber=" << p(".crlnumber")
      << "\ndefault_md=sha256\ndefault_crl_days=2\n";
  for (const auto& name : revoked) {
    openssl({"ca", "-config", p(".cnf"), "-keyfile", p(".key"), "-cert", p(".crt"), "-revoke",
             (dir / (name + ".crt")).string()});
  }
  openssl({"ca", "-config", p(".cnf"), "-keyfile", p(".key"), "-cert", p(".crt"), "-gencrl", "-out",
           p(".crl")});
}

}  // namespace cairn::e2e
