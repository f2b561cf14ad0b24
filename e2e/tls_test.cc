// TLS on the client and peer URLs with the real etcdctl, curl and openssl s_client, beside the
// real etcd 3.4.23 started with the same flags where etcd 3.4 has them: mutual TLS, a CA file
// alone requiring client certificates, wrong CAs and plaintext refused, CRLs, allowed hostnames,
// cipher suites, --auto-tls; Cairn alone: rotation of the certificate and the CA bundle while
// serving, --tls-min-version/--tls-max-version, and a 3-member cluster over peer mutual TLS
// refusing a member with a foreign CA or common name.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/certs.h"
#include "support/e2e.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// One member with an https client URL (e2e::one_member), cairn or etcd.
struct member : e2e::one_member {
  member(const fs::path& binary, const fs::path& dir, const std::string& name,
         const std::vector<std::string>& flags, const std::string& scheme = "https")
      : one_member(binary, dir, name, flags, scheme) {}
};

e2e::run_result etcdctl(const std::string& ep, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {e2e::etcdctl_binary().string(), "--endpoints=" + ep,
                                   "--dial-timeout=2s", "--command-timeout=3s"};
  argv.insert(argv.end(), args.begin(), args.end());
  return e2e::run(argv, {{"ETCDCTL_API", "3"}});
}

e2e::run_result curl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/curl", "-s", "--max-time", "5"};
  argv.insert(argv.end(), args.begin(), args.end());
  return e2e::run(argv);
}

// openssl s_client's handshake with these options: true if it completed.
bool handshake(const std::string& ep, const std::vector<std::string>& opts) {
  std::vector<std::string> argv = {"/usr/bin/openssl", "s_client", "-connect", ep};
  argv.insert(argv.end(), opts.begin(), opts.end());
  auto r = e2e::run({"/bin/sh", "-c", [&] {
                       std::string cmd;
                       for (const auto& a : argv) cmd += "'" + a + "' ";
                       return cmd + "</dev/null";
                     }()});
  return r.exit_code == 0 && r.out.find("Cipher is (NONE)") == std::string::npos &&
         r.out.find("CONNECTED") != std::string::npos;
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Waits (up to 15 s) until `ok` holds; gRPC's file watcher looks every 2 s.
template <typename F>
bool eventually(F ok) {
  const auto until = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < until) {
    if (ok()) return true;
    std::this_thread::sleep_for(250ms);
  }
  return ok();
}

class ClientTls : public ::testing::Test {
 protected:
  void SetUp() override {
    e2e::make_ca(d(), "ca");
    e2e::make_ca(d(), "other");
    e2e::make_cert(d(), "ca", "server", "127.0.0.1");
    e2e::make_cert(d(), "ca", "client", "alice", "");
    e2e::make_cert(d(), "other", "stranger", "alice", "");
  }
  const fs::path& d() const { return dir_.path(); }
  std::string p(const std::string& f) const { return (d() / f).string(); }
  std::vector<std::string> server_flags() const {
    return {"--cert-file=" + p("server.crt"), "--key-file=" + p("server.key")};
  }
  std::vector<std::string> client(const std::string& who = "client",
                                  const std::string& ca = "ca") const {
    return {"--cacert=" + p(ca + ".crt"), "--cert=" + p(who + ".crt"), "--key=" + p(who + ".key")};
  }

  // The same etcdctl command against both: exit codes and stdout must match.
  e2e::run_result both(member& cairn, member& etcd, const std::vector<std::string>& args) {
    auto want = etcdctl(etcd.ep(), args);
    auto got = etcdctl(cairn.ep(), args);
    std::string what;
    for (const auto& a : args) what += a + " ";
    EXPECT_EQ(got.exit_code, want.exit_code)
        << what << "\ncairn: " << got.err << "\netcd: " << want.err;
    EXPECT_EQ(got.out, want.out) << what;
    return got;
  }
  // The same curl against both: success or failure must match, and the body too on success.
  e2e::run_result both_curl(member& cairn, member& etcd, const std::vector<std::string>& args,
                            const std::string& path) {
    auto want = curl(with(args, {etcd.url() + path}));
    auto got = curl(with(args, {cairn.url() + path}));
    EXPECT_EQ(got.exit_code == 0, want.exit_code == 0)
        << path << " cairn " << got.exit_code << " etcd " << want.exit_code;
    if (got.exit_code == 0 && want.exit_code == 0 && path == "/health") {
      // 3.4's body has no "reason" (3.5's has).
      EXPECT_TRUE(got.out.starts_with(R"({"health":"true")")) << got.out;
      EXPECT_TRUE(want.out.starts_with(R"({"health":"true")")) << want.out;
    }
    return got;
  }

  e2e::temp_dir dir_{"cairn-tls"};
};

TEST_F(ClientTls, MutualTlsAcceptsAndRefusesAsEtcd) {
  const auto flags =
      with(server_flags(), {"--trusted-ca-file=" + p("ca.crt"), "--client-cert-auth"});
  member cairn(e2e::cairn_binary(), d(), "cairn", flags);
  member etcd(e2e::etcd_binary(), d(), "etcd", flags);

  EXPECT_EQ(both(cairn, etcd, with(client(), {"put", "k", "1"})).exit_code, 0);
  EXPECT_EQ(both(cairn, etcd, with(client(), {"get", "k"})).out, "k\n1\n");
  // No client certificate, a client certificate from another CA, a server we cannot verify,
  // plaintext to a TLS port: all refused.
  EXPECT_NE(both(cairn, etcd, {"--cacert=" + p("ca.crt"), "get", "k"}).exit_code, 0);
  EXPECT_NE(both(cairn, etcd, with(client("stranger"), {"get", "k"})).exit_code, 0);
  EXPECT_NE(both(cairn, etcd, with(client("client", "other"), {"get", "k"})).exit_code, 0);
  EXPECT_NE(both(cairn, etcd, {"get", "k"}).exit_code, 0);
  // A watch stream over TLS sees a put.
  {
    auto w = e2e::run({"/bin/sh", "-c",
                       "'" + e2e::etcdctl_binary().string() + "' --endpoints=" + cairn.ep() +
                           " --cacert=" + p("ca.crt") + " --cert=" + p("client.crt") +
                           " --key=" + p("client.key") + " watch w --rev=1 & sleep 1.5; kill $!"},
                      {{"ETCDCTL_API", "3"}});
    (void)w;
    EXPECT_EQ(etcdctl(cairn.ep(), with(client(), {"put", "w", "x"})).exit_code, 0);
    auto seen =
        e2e::run({"/bin/sh", "-c",
                  "timeout 3 '" + e2e::etcdctl_binary().string() + "' --endpoints=" + cairn.ep() +
                      " --cacert=" + p("ca.crt") + " --cert=" + p("client.crt") +
                      " --key=" + p("client.key") + " watch w --rev=1 | head -3"},
                 {{"ETCDCTL_API", "3"}});
    EXPECT_EQ(seen.out, "PUT\nw\nx\n") << seen.err;
  }

  // HTTP over TLS (curl offers h2 and http/1.1): the probes and the gateway, with and without
  // a client certificate; plain HTTP is closed without an answer.
  const std::vector<std::string> with_cert = {"--cacert",      p("ca.crt"), "--cert",
                                              p("client.crt"), "--key",     p("client.key")};
  EXPECT_EQ(both_curl(cairn, etcd, with_cert, "/health").exit_code, 0);
  EXPECT_NE(both_curl(cairn, etcd, {"--cacert", p("ca.crt")}, "/health").exit_code, 0);
  auto range = curl(with(with_cert, {"-d", R"({"key":"aw=="})", cairn.url() + "/v3/kv/range"}));
  EXPECT_NE(range.out.find(R"("value":"MQ==")"), std::string::npos) << range.out;
  auto plain_cairn = curl({"http://" + cairn.ep() + "/health"});
  auto plain_etcd = curl({"http://" + etcd.ep() + "/health"});
  EXPECT_EQ(plain_cairn.out, plain_etcd.out);
  EXPECT_EQ(plain_cairn.exit_code, plain_etcd.exit_code);  // curl: empty reply (52)
}

TEST_F(ClientTls, ACaFileAloneRequiresClientCertificatesAsEtcd) {
  const auto flags = with(server_flags(), {"--trusted-ca-file=" + p("ca.crt")});
  member cairn(e2e::cairn_binary(), d(), "cairn", flags);
  member etcd(e2e::etcd_binary(), d(), "etcd", flags);
  EXPECT_NE(both(cairn, etcd, {"--cacert=" + p("ca.crt"), "put", "k", "1"}).exit_code, 0);
  EXPECT_EQ(both(cairn, etcd, with(client(), {"put", "k", "1"})).exit_code, 0);
  // Server-side TLS only: any client that trusts the CA.
  member open(e2e::cairn_binary(), d(), "open", server_flags());
  EXPECT_EQ(etcdctl(open.ep(), {"--cacert=" + p("ca.crt"), "put", "k", "2"}).exit_code, 0);
  EXPECT_EQ(curl({"--cacert", p("ca.crt"), open.url() + "/health"}).out,
            "{\"health\":\"true\",\"reason\":\"\"}");
}

TEST_F(ClientTls, RevokedAndWrongHostnameClientCertificatesAreRefusedAsEtcd) {
  e2e::make_cert(d(), "ca", "revoked", "mallory", "");
  e2e::make_cert(d(), "ca", "named", "bob", "DNS:good.example");
  e2e::make_crl(d(), "ca", {"revoked"});
  const auto flags = with(server_flags(), {"--trusted-ca-file=" + p("ca.crt"), "--client-cert-auth",
                                           "--client-crl-file=" + p("ca.crl")});
  {
    member cairn(e2e::cairn_binary(), d(), "cairn", flags);
    member etcd(e2e::etcd_binary(), d(), "etcd", flags);
    EXPECT_EQ(both(cairn, etcd, with(client(), {"put", "k", "1"})).exit_code, 0);
    EXPECT_NE(both(cairn, etcd, with(client("revoked"), {"get", "k"})).exit_code, 0);
    const std::vector<std::string> revoked = {"--cacert",       p("ca.crt"), "--cert",
                                              p("revoked.crt"), "--key",     p("revoked.key")};
    EXPECT_NE(both_curl(cairn, etcd, revoked, "/health").exit_code, 0);
    EXPECT_NE(cairn.log().find("revoked"), std::string::npos) << cairn.log();
  }
  const auto named = with(server_flags(), {"--trusted-ca-file=" + p("ca.crt"), "--client-cert-auth",
                                           "--client-cert-allowed-hostname=good.example"});
  member cairn(e2e::cairn_binary(), d(), "cairn2", named);
  member etcd(e2e::etcd_binary(), d(), "etcd2", named);
  EXPECT_EQ(both(cairn, etcd, with(client("named"), {"put", "k", "1"})).exit_code, 0);
  EXPECT_NE(both(cairn, etcd, with(client(), {"get", "k"})).exit_code, 0);
}

TEST_F(ClientTls, AutoTlsServesASelfSignedCertificateKeptAcrossRestarts) {
  member etcd(e2e::etcd_binary(), d(), "etcd", {"--auto-tls"});
  EXPECT_EQ(etcdctl(etcd.ep(),
                    {"--insecure-transport=false", "--insecure-skip-tls-verify", "put", "k", "1"})
                .exit_code,
            0);
  std::string first;
  {
    member cairn(e2e::cairn_binary(), d(), "cairn", {"--auto-tls"});
    EXPECT_EQ(etcdctl(cairn.ep(),
                      {"--insecure-transport=false", "--insecure-skip-tls-verify", "put", "k", "1"})
                  .exit_code,
              0);
    // Not trusted by anyone: verification fails.
    EXPECT_NE(etcdctl(cairn.ep(), {"get", "k", "--cacert=" + p("ca.crt")}).exit_code, 0);
    first = slurp(d() / "cairn.data" / "fixtures" / "client" / "cert.pem");
    ASSERT_NE(first.find("BEGIN CERTIFICATE"), std::string::npos);
    EXPECT_EQ(curl({"-k", cairn.url() + "/health"}).out, "{\"health\":\"true\",\"reason\":\"\"}");
  }
  member again(e2e::cairn_binary(), d(), "cairn", {"--auto-tls"});
  EXPECT_EQ(slurp(d() / "cairn.data" / "fixtures" / "client" / "cert.pem"), first);
  EXPECT_EQ(etcdctl(again.ep(), {"--insecure-transport=false", "--insecure-skip-tls-verify", "get",
                                 "k", "--print-value-only"})
                .out,
            "1\n");
}

TEST_F(ClientTls, CipherSuitesAndVersionsLimitTheHandshake) {
  // --cipher-suites exists in etcd 3.4: the same handshakes succeed and fail.
  const auto flags =
      with(server_flags(), {"--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"});
  {
    member cairn(e2e::cairn_binary(), d(), "cairn", flags);
    member etcd(e2e::etcd_binary(), d(), "etcd", flags);
    for (const std::string alpn : {"h2", "http/1.1"}) {
      for (const std::string cipher :
           {"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"}) {
        const std::vector<std::string> o = {"-tls1_2", "-cipher", cipher, "-alpn", alpn};
        const bool want = cipher == "ECDHE-RSA-AES128-GCM-SHA256";
        EXPECT_EQ(handshake(etcd.ep(), o), want) << alpn << " " << cipher << " (etcd)";
        EXPECT_EQ(handshake(cairn.ep(), o), want) << alpn << " " << cipher;
      }
    }
    EXPECT_EQ(etcdctl(cairn.ep(), {"--cacert=" + p("ca.crt"), "put", "k", "1"}).exit_code, 0);
  }
  // etcd 3.6's --tls-min-version / --tls-max-version.
  {
    member cairn(e2e::cairn_binary(), d(), "min13",
                 with(server_flags(), {"--tls-min-version=TLS1.3"}));
    for (const std::string alpn : {"h2", "http/1.1"}) {
      EXPECT_FALSE(handshake(cairn.ep(), {"-tls1_2", "-alpn", alpn})) << alpn;
      EXPECT_TRUE(handshake(cairn.ep(), {"-tls1_3", "-alpn", alpn})) << alpn;
    }
    EXPECT_EQ(etcdctl(cairn.ep(), {"--cacert=" + p("ca.crt"), "put", "k", "1"}).exit_code, 0);
  }
  {
    member cairn(e2e::cairn_binary(), d(), "max12",
                 with(server_flags(), {"--tls-max-version=TLS1.2"}));
    EXPECT_FALSE(handshake(cairn.ep(), {"-tls1_3", "-alpn", "http/1.1"}));
    EXPECT_TRUE(handshake(cairn.ep(), {"-tls1_2", "-alpn", "http/1.1"}));
  }
}

TEST_F(ClientTls, BadCertificateFilesStopTheStartWithAClearError) {
  const fs::path data = d() / "bad.data";
  auto start = [&](const std::vector<std::string>& flags) {
    const int port = e2e::free_port(), peer = e2e::free_port();
    const std::string purl = "http://127.0.0.1:" + std::to_string(peer);
    std::vector<std::string> argv = {
        e2e::cairn_binary().string(),
        "--name=bad",
        "--data-dir=" + data.string(),
        "--listen-client-urls=https://127.0.0.1:" + std::to_string(port),
        "--advertise-client-urls=https://127.0.0.1:" + std::to_string(port),
        "--listen-peer-urls=" + purl,
        "--initial-advertise-peer-urls=" + purl,
        "--initial-cluster=bad=" + purl};
    return e2e::run(with(argv, flags), {}, 20s);
  };
  auto none = start({});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("TLS key/cert (--cert-file, --key-file) must be provided for client url "
                          "https://127.0.0.1:"),
            std::string::npos)
      << none.err;
  auto missing = start({"--cert-file=" + p("nope.crt"), "--key-file=" + p("server.key")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("open " + p("nope.crt") + ": no such file or directory"),
            std::string::npos)
      << missing.err;
  auto mismatch = start({"--cert-file=" + p("server.crt"), "--key-file=" + p("client.key")});
  EXPECT_EQ(mismatch.exit_code, 1);
  EXPECT_NE(mismatch.err.find("private key does not match public key"), std::string::npos)
      << mismatch.err;
  auto cipher = start(with(server_flags(), {"--cipher-suites=TLS_NOPE"}));
  EXPECT_EQ(cipher.exit_code, 1);
  EXPECT_NE(cipher.err.find("unexpected TLS cipher suite \\\"TLS_NOPE\\\""), std::string::npos)
      << cipher.err;
}

TEST_F(ClientTls, CertificateAndCaRotateWhileServing) {
  e2e::make_ca(d(), "ca2");
  e2e::make_cert(d(), "ca2", "server2", "127.0.0.1");
  e2e::make_cert(d(), "ca2", "client2", "alice", "");
  // The member reads live copies, which the test replaces by rename as a deployment would.
  fs::copy_file(p("server.crt"), p("live.crt"));
  fs::copy_file(p("server.key"), p("live.key"));
  fs::copy_file(p("ca.crt"), p("trusted.crt"));
  member cairn(e2e::cairn_binary(), d(), "cairn",
               {"--cert-file=" + p("live.crt"), "--key-file=" + p("live.key"),
                "--trusted-ca-file=" + p("trusted.crt"), "--client-cert-auth"});
  EXPECT_EQ(etcdctl(cairn.ep(), with(client(), {"put", "k", "1"})).exit_code, 0);
  const std::vector<std::string> old_http = {"--cacert",      p("ca.crt"), "--cert",
                                             p("client.crt"), "--key",     p("client.key")};
  EXPECT_EQ(curl(with(old_http, {cairn.url() + "/health"})).exit_code, 0);

  // New server certificate from another CA: clients that trust only ca2 get in, on gRPC and
  // on HTTP, with no restart.
  auto replace = [&](const std::string& from, const std::string& to) {
    fs::copy_file(p(from), p(to + ".tmp"), fs::copy_options::overwrite_existing);
    fs::rename(p(to + ".tmp"), p(to));
  };
  replace("server2.key", "live.key");
  replace("server2.crt", "live.crt");
  const std::vector<std::string> ca2_trust = {
      "--cacert=" + p("ca2.crt"), "--cert=" + p("client.crt"), "--key=" + p("client.key")};
  EXPECT_TRUE(eventually([&] {
    return etcdctl(cairn.ep(), with(ca2_trust, {"get", "k"})).exit_code == 0;
  })) << cairn.log();
  EXPECT_TRUE(eventually([&] {
    return curl({"--cacert", p("ca2.crt"), "--cert", p("client.crt"), "--key", p("client.key"),
                 cairn.url() + "/health"})
               .exit_code == 0;
  }));
  EXPECT_NE(etcdctl(cairn.ep(), with(client(), {"get", "k"})).exit_code, 0);  // trusts only ca

  // New CA bundle: ca2's clients are accepted, ca's refused.
  replace("ca2.crt", "trusted.crt");
  const std::vector<std::string> new_client = {
      "--cacert=" + p("ca2.crt"), "--cert=" + p("client2.crt"), "--key=" + p("client2.key")};
  EXPECT_TRUE(eventually([&] {
    return etcdctl(cairn.ep(), with(new_client, {"get", "k"})).exit_code == 0;
  })) << cairn.log();
  EXPECT_NE(etcdctl(cairn.ep(), with(ca2_trust, {"get", "k"})).exit_code, 0);
  EXPECT_TRUE(eventually([&] {
    return curl({"--cacert", p("ca2.crt"), "--cert", p("client2.crt"), "--key", p("client2.key"),
                 cairn.url() + "/health"})
               .exit_code == 0;
  }));
}

// Three members over peer mutual TLS; a fourth with a certificate from another CA, then one
// with a common name outside --peer-cert-allowed-cn, is refused and logged, and never joins.
TEST(PeerTls, ThreeMembersOverMutualTlsRefuseAForeignPeer) {
  e2e::temp_dir dir("cairn-peer-tls");
  const auto d = dir.path();
  const auto p = [&](const std::string& f) { return (d / f).string(); };
  e2e::make_ca(d, "ca");
  e2e::make_ca(d, "other");
  e2e::make_cert(d, "ca", "member", "member");
  e2e::make_cert(d, "other", "foreign", "member");
  e2e::make_cert(d, "ca", "intruder", "intruder");
  struct m {
    int client, peer;
  };
  std::vector<m> ports;
  for (int i = 0; i < 4; ++i) ports.push_back({e2e::free_port(), e2e::free_port()});
  const auto purl = [&](int i) { return "https://127.0.0.1:" + std::to_string(ports[i].peer); };
  std::string cluster;
  for (int i = 0; i < 3; ++i) {
    cluster += (i ? "," : "") + ("m" + std::to_string(i + 1)) + "=" + purl(i);
  }
  auto argv = [&](int i, const std::string& cert, const std::string& ca, const std::string& ic,
                  const std::string& state) {
    const std::string curl_ = "http://127.0.0.1:" + std::to_string(ports[i].client);
    return std::vector<std::string>{e2e::cairn_binary().string(),
                                    "--name=m" + std::to_string(i + 1),
                                    "--data-dir=" + p("m" + std::to_string(i + 1) + "-" + cert),
                                    "--listen-client-urls=" + curl_,
                                    "--advertise-client-urls=" + curl_,
                                    "--listen-peer-urls=" + purl(i),
                                    "--initial-advertise-peer-urls=" + purl(i),
                                    "--initial-cluster=" + ic,
                                    "--initial-cluster-state=" + state,
                                    "--initial-cluster-token=peer-tls",
                                    "--heartbeat-interval=50",
                                    "--election-timeout=500",
                                    "--peer-cert-file=" + p(cert + ".crt"),
                                    "--peer-key-file=" + p(cert + ".key"),
                                    "--peer-trusted-ca-file=" + p(ca + ".crt"),
                                    "--peer-client-cert-auth",
                                    "--peer-cert-allowed-cn=member"};
  };
  std::vector<std::unique_ptr<e2e::process>> procs;
  for (int i = 0; i < 3; ++i) {
    procs.push_back(std::make_unique<e2e::process>(argv(i, "member", "ca", cluster, "new"),
                                                   d / ("m" + std::to_string(i + 1) + ".log")));
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(procs[i]->wait_for_port(ports[i].client));
  std::string eps;
  for (int i = 0; i < 3; ++i)
    eps += (i ? "," : "") + ("127.0.0.1:" + std::to_string(ports[i].client));
  ASSERT_TRUE(eventually([&] {
    return etcdctl(eps, {"endpoint", "health"}).exit_code == 0;
  })) << etcdctl(eps, {"endpoint", "health"}).err
      << procs[0]->log();
  EXPECT_EQ(etcdctl("127.0.0.1:" + std::to_string(ports[0].client), {"put", "k", "v"}).exit_code,
            0);
  EXPECT_TRUE(eventually([&] {
    return etcdctl("127.0.0.1:" + std::to_string(ports[2].client),
                   {"get", "k", "--print-value-only"})
               .out == "v\n";
  }));

  // Retried: a member refuses reconfiguration until every member has been up for a while.
  e2e::run_result add;
  ASSERT_TRUE(eventually([&] {
    add = etcdctl(eps, {"member", "add", "m4", "--peer-urls=" + purl(3)});
    return add.exit_code == 0;
  })) << add.err;
  const std::string joined = cluster + ",m4=" + purl(3);
  for (const auto& [cert, ca, why] : {std::tuple{"foreign", "ca", "certificate verify failed"},
                                      std::tuple{"intruder", "ca", "intruder"}}) {
    e2e::process m4(argv(3, cert, ca, joined, "existing"),
                    d / (std::string("m4-") + cert + ".log"));
    // The members refuse it and say so; it never becomes a started member.
    EXPECT_TRUE(eventually([&] {
      std::string logs;
      for (auto& pr : procs) logs += pr->log();
      return logs.find(why) != std::string::npos;
    })) << cert
        << "\n"
        << procs[0]->log();
    auto list = etcdctl(eps, {"member", "list"});
    EXPECT_NE(list.out.find("unstarted"), std::string::npos) << cert << list.out;
    EXPECT_EQ(etcdctl(eps, {"endpoint", "health"}).exit_code, 0);
    m4.kill_now();
  }
}

// --peer-auto-tls: each member makes its own certificate; members do not verify each other's
// (as etcd), and the cluster works over TLS.
TEST(PeerTls, AutoTlsMembersFormAClusterOverTls) {
  e2e::temp_dir dir("cairn-peer-auto");
  std::vector<std::pair<int, int>> ports;
  for (int i = 0; i < 3; ++i) ports.emplace_back(e2e::free_port(), e2e::free_port());
  std::string cluster;
  for (int i = 0; i < 3; ++i) {
    cluster += (i ? "," : "") + ("m" + std::to_string(i + 1)) +
               "=https://127.0.0.1:" + std::to_string(ports[i].second);
  }
  std::vector<std::unique_ptr<e2e::process>> procs;
  std::string eps;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "m" + std::to_string(i + 1);
    const std::string c = "http://127.0.0.1:" + std::to_string(ports[i].first);
    const std::string purl = "https://127.0.0.1:" + std::to_string(ports[i].second);
    procs.push_back(std::make_unique<e2e::process>(
        std::vector<std::string>{
            e2e::cairn_binary().string(), "--name=" + name,
            "--data-dir=" + (dir.path() / name).string(), "--listen-client-urls=" + c,
            "--advertise-client-urls=" + c, "--listen-peer-urls=" + purl,
            "--initial-advertise-peer-urls=" + purl, "--initial-cluster=" + cluster,
            "--peer-auto-tls", "--heartbeat-interval=50", "--election-timeout=500"},
        dir.path() / (name + ".log")));
    eps += (i ? "," : "") + ("127.0.0.1:" + std::to_string(ports[i].first));
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(procs[i]->wait_for_port(ports[i].first));
  ASSERT_TRUE(eventually([&] {
    return etcdctl(eps, {"endpoint", "health"}).exit_code == 0;
  })) << procs[0]->log();
  EXPECT_EQ(etcdctl("127.0.0.1:" + std::to_string(ports[0].first), {"put", "k", "v"}).exit_code, 0);
  EXPECT_TRUE(eventually([&] {
    return etcdctl("127.0.0.1:" + std::to_string(ports[2].first),
                   {"get", "k", "--print-value-only"})
               .out == "v\n";
  }));
  EXPECT_NE(slurp(dir.path() / "m1" / "fixtures" / "peer" / "cert.pem").find("BEGIN CERTIFICATE"),
            std::string::npos);
}

}  // namespace
}  // namespace cairn
