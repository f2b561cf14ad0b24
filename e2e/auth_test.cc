// Authentication and permissions with the real etcdctl 3.4.23 against Cairn and the real etcd
// 3.4.23 side by side: one script of user/role commands and permission checks on get, put, del,
// txn, watch, lease and admin calls, every exit code, stdout and error line compared; then over
// gRPC directly: token expiry (--auth-token-ttl), a permission change applying to a token
// issued before it, forged tokens; mutual TLS where the certificate's common name is the user; a
// wrong-password flood that leaves other clients served; and no password or token in Cairn's log.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "authpb/auth.pb.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "support/certs.h"
#include "support/e2e.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using member = e2e::one_member;

e2e::run_result etcdctl(const std::string& ep, const std::vector<std::string>& args,
                        const std::string& stdin_text = "") {
  std::string cmd = "'" + e2e::etcdctl_binary().string() + "' --endpoints=" + ep +
                    " --dial-timeout=2s --command-timeout=3s";
  for (const auto& a : args) cmd += " '" + a + "'";
  if (!stdin_text.empty()) cmd = "printf '%s' '" + stdin_text + "' | " + cmd;
  return e2e::run({"/bin/sh", "-c", cmd}, {{"ETCDCTL_API", "3"}});
}

// The line etcdctl prints for a failed command ("Error: ..."), or "".
std::string error_line(const std::string& err) {
  const auto at = err.rfind("Error: ");
  if (at == std::string::npos) return "";
  return err.substr(at, err.find('\n', at) - at);
}

class AuthE2E : public ::testing::Test {
 protected:
  // Runs the command on both; exit code, stdout and the error line must match.
  e2e::run_result both(const std::vector<std::string>& args, const std::string& in = "") {
    auto want = etcdctl(etcd_->ep(), args, in);
    auto got = etcdctl(cairn_->ep(), args, in);
    std::string what;
    for (const auto& a : args) what += a + " ";
    EXPECT_EQ(got.exit_code, want.exit_code)
        << what << "\ncairn: " << got.err << "\netcd: " << want.err;
    EXPECT_EQ(got.out, want.out) << what;
    EXPECT_EQ(error_line(got.err), error_line(want.err)) << what;
    return got;
  }
  void start(const std::vector<std::string>& flags = {}) {
    cairn_ = std::make_unique<member>(e2e::cairn_binary(), dir_.path(), "cairn", flags);
    etcd_ = std::make_unique<member>(e2e::etcd_binary(), dir_.path(), "etcd", flags);
  }
  // root, alice (read a, readwrite the prefix p/), bob (nothing), auth on.
  void setup_users() {
    EXPECT_NE(both({"auth", "enable"}).exit_code, 0);  // no root yet
    EXPECT_EQ(both({"user", "add", "root:rootpw"}).exit_code, 0);
    EXPECT_EQ(both({"user", "add", "alice:alicepw"}).exit_code, 0);
    EXPECT_EQ(both({"user", "add", "bob:bobpw"}).exit_code, 0);
    EXPECT_EQ(both({"role", "add", "reader"}).exit_code, 0);
    EXPECT_EQ(both({"role", "grant-permission", "reader", "read", "a"}).exit_code, 0);
    EXPECT_EQ(both({"role", "grant-permission", "reader", "--prefix", "readwrite", "p/"}).exit_code,
              0);
    EXPECT_EQ(both({"user", "grant-role", "alice", "reader"}).exit_code, 0);
    EXPECT_EQ(both({"put", "a", "1"}).exit_code, 0);
    EXPECT_EQ(both({"put", "b", "2"}).exit_code, 0);
    EXPECT_EQ(both({"auth", "enable"}).out, "Authentication Enabled\n");  // grants root its role
  }
  std::vector<std::string> as(const std::string& who, std::vector<std::string> args) {
    args.insert(args.begin(), "--user=" + who);
    return args;
  }

  e2e::temp_dir dir_{"cairn-auth"};
  std::unique_ptr<member> cairn_, etcd_;
};

TEST_F(AuthE2E, UsersRolesAndPermissionsAnswerAsEtcd) {
  start();
  // Before any user: the errors of an empty store.
  both({"user", "get", "nobody"});
  both({"role", "get", "nothing"});
  both({"user", "delete", "nobody"});
  both({"role", "revoke-permission", "nothing", "k"});
  setup_users();
  const auto root = [&](std::vector<std::string> a) { return as("root:rootpw", std::move(a)); };
  const auto alice = [&](std::vector<std::string> a) { return as("alice:alicepw", std::move(a)); };
  const auto bob = [&](std::vector<std::string> a) { return as("bob:bobpw", std::move(a)); };

  // Without a user, with a wrong password, an unknown user.
  both({"get", "a"});
  both({"put", "a", "x"});
  EXPECT_EQ(both(as("alice:nope", {"get", "a"})).exit_code, 2);
  both(as("mallory:pw", {"get", "a"}));
  // Reads and writes as alice: a readable only, p/ read-write, b not at all.
  EXPECT_EQ(both(alice({"get", "a"})).out, "a\n1\n");
  both(alice({"put", "a", "x"}));
  both(alice({"get", "b"}));
  both(alice({"get", "a", "c"}));  // a range wider than the permission
  EXPECT_EQ(both(alice({"put", "p/1", "v"})).out, "OK\n");
  EXPECT_EQ(both(alice({"get", "p/", "--prefix"})).out, "p/1\nv\n");
  both(alice({"del", "p/1"}));
  both(alice({"del", "a"}));
  both(alice({"del", "b", "--prev-kv"}));
  // Txn: each compare and op needs its permission.
  both(alice({"txn"}), "value(\"a\") = \"1\"\n\nput p/2 x\n\n\n");
  both(alice({"txn"}), "value(\"b\") = \"2\"\n\nput p/2 x\n\n\n");
  both(alice({"txn"}), "value(\"a\") = \"1\"\n\nput b x\n\n\n");
  both(alice({"txn"}), "\nget b\n\n");
  // Watch: a range the user cannot read is canceled at once.
  {
    auto w = both(alice({"watch", "b"}));
    EXPECT_NE(w.exit_code, 0);
  }
  // Leases: a lease with a key the user cannot write cannot be revoked by it.
  {
    auto g = etcdctl(cairn_->ep(), root({"lease", "grant", "100"}));
    auto ge = etcdctl(etcd_->ep(), root({"lease", "grant", "100"}));
    ASSERT_EQ(g.exit_code, 0) << g.err;
    ASSERT_EQ(ge.exit_code, 0) << ge.err;
    const std::string id = g.out.substr(6, g.out.find(' ', 6) - 6);
    const std::string ide = ge.out.substr(6, ge.out.find(' ', 6) - 6);
    EXPECT_EQ(etcdctl(cairn_->ep(), root({"put", "b", "leased", "--lease=" + id})).exit_code, 0);
    EXPECT_EQ(etcdctl(etcd_->ep(), root({"put", "b", "leased", "--lease=" + ide})).exit_code, 0);
    auto c = etcdctl(cairn_->ep(), alice({"lease", "revoke", id}));
    auto e = etcdctl(etcd_->ep(), alice({"lease", "revoke", ide}));
    EXPECT_EQ(c.exit_code, e.exit_code);
    EXPECT_EQ(error_line(c.err), error_line(e.err));
    EXPECT_EQ(error_line(c.err), "Error: failed to revoke lease (etcdserver: permission denied)");
    // Attaching a key it may write to that lease is refused too (the lease holds b).
    c = etcdctl(cairn_->ep(), alice({"put", "p/3", "x", "--lease=" + id}));
    e = etcdctl(etcd_->ep(), alice({"put", "p/3", "x", "--lease=" + ide}));
    EXPECT_EQ(error_line(c.err), error_line(e.err));
    EXPECT_EQ(etcdctl(cairn_->ep(), root({"lease", "revoke", id})).exit_code, 0);
    EXPECT_EQ(etcdctl(etcd_->ep(), root({"lease", "revoke", ide})).exit_code, 0);
  }
  // Admin calls: root only.
  both(alice({"user", "list"}));
  both(alice({"role", "list"}));
  both(alice({"user", "add", "eve:evepw"}));
  both(alice({"member", "add", "x", "--peer-urls=http://127.0.0.1:1"}));
  both(alice({"defrag"}));
  both(alice({"user", "get", "alice"}));   // itself: allowed
  both(alice({"role", "get", "reader"}));  // its own role: allowed
  both(alice({"role", "get", "root"}));
  EXPECT_EQ(both(root({"user", "list"})).out, "alice\nbob\nroot\n");
  both(root({"role", "list"}));
  both(root({"user", "get", "alice"}));
  both(root({"role", "get", "reader"}));
  both(bob({"get", "a"}));
  // Management errors.
  both(root({"user", "add", "alice:again"}));
  both(root({"role", "add", "reader"}));
  both(root({"user", "grant-role", "bob", "nosuch"}));
  both(root({"user", "revoke-role", "bob", "reader"}));
  both(root({"role", "revoke-permission", "reader", "zzz"}));
  both(root({"user", "delete", "root"}));
  both(root({"role", "delete", "root"}));
  both(root({"user", "revoke-role", "root", "root"}));
  // Changes take effect at once: bob gets the role, then loses it when the role goes.
  both(root({"user", "grant-role", "bob", "reader"}));
  EXPECT_EQ(both(bob({"get", "a"})).out, "a\n1\n");
  both(root({"role", "revoke-permission", "reader", "a"}));
  both(bob({"get", "a"}));
  both(root({"role", "delete", "reader"}));
  both(bob({"get", "p/1"}));
  both(root({"user", "get", "bob"}));
  both(root({"user", "passwd", "bob", "--interactive=false"}), "newpw\n");
  both(bob({"get", "a"}));
  both(as("bob:newpw", {"get", "a"}));
  both(root({"user", "delete", "bob"}));
  both(as("bob:newpw", {"get", "a"}));
  // The JSON gateway: log in, then the token in the Authorization header; without it, etcd's
  // error body.
  std::vector<std::string> refused;
  for (member* m : {cairn_.get(), etcd_.get()}) {
    const std::string base = "http://" + m->ep();
    auto login = e2e::run({"/usr/bin/curl", "-s", "-X", "POST", base + "/v3/auth/authenticate",
                           "-d", R"({"name":"root","password":"rootpw"})"});
    const auto at = login.out.find(R"("token":")");
    ASSERT_NE(at, std::string::npos) << login.out;
    const std::string token = login.out.substr(at + 9, login.out.find('"', at + 9) - at - 9);
    auto got = e2e::run({"/usr/bin/curl", "-s", "-H", "Authorization: " + token,
                         base + "/v3/kv/range", "-d", R"({"key":"YQ=="})"});
    EXPECT_NE(got.out.find(R"("value":"MQ==")"), std::string::npos) << got.out;
    refused.push_back(
        e2e::run({"/usr/bin/curl", "-s", base + "/v3/kv/range", "-d", R"({"key":"YQ=="})"}).out);
  }
  EXPECT_EQ(refused[0], refused[1]);
  EXPECT_NE(refused[0].find("user name is empty"), std::string::npos) << refused[0];
  EXPECT_EQ(both(root({"auth", "disable"})).out, "Authentication Disabled\n");
  EXPECT_EQ(both({"get", "a"}).out, "a\n1\n");
  both({"user", "list"});
}

// Raw gRPC: the token metadata etcd's clients send.
class grpc_client {
 public:
  explicit grpc_client(const std::string& ep)
      : ch_(grpc::CreateChannel(ep, grpc::InsecureChannelCredentials())),
        kv_(etcdserverpb::KV::NewStub(ch_)),
        auth_(etcdserverpb::Auth::NewStub(ch_)) {}
  grpc::Status login(const std::string& user, const std::string& pw, std::string* token) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    etcdserverpb::AuthenticateRequest req;
    req.set_name(user);
    req.set_password(pw);
    etcdserverpb::AuthenticateResponse resp;
    auto st = auth_->Authenticate(&ctx, req, &resp);
    if (token != nullptr) *token = resp.token();
    return st;
  }
  grpc::Status get(const std::string& key, const std::string& token) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    if (!token.empty()) ctx.AddMetadata("token", token);
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    etcdserverpb::RangeResponse resp;
    return kv_->Range(&ctx, req, &resp);
  }
  std::uint64_t auth_revision() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    etcdserverpb::AuthStatusRequest req;
    etcdserverpb::AuthStatusResponse resp;
    auth_->AuthStatus(&ctx, req, &resp);
    return resp.authrevision();
  }
  grpc::Status grant_type(const std::string& role, int type, const std::string& token) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    ctx.AddMetadata("token", token);
    etcdserverpb::AuthRoleGrantPermissionRequest req;
    req.set_name(role);
    req.mutable_perm()->set_key("k");
    req.mutable_perm()->set_permtype(static_cast<authpb::Permission_Type>(type));
    etcdserverpb::AuthRoleGrantPermissionResponse resp;
    return auth_->RoleGrantPermission(&ctx, req, &resp);
  }
  grpc::Status alarm(int action, int type) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    etcdserverpb::AlarmRequest req;
    req.set_action(static_cast<etcdserverpb::AlarmRequest_AlarmAction>(action));
    req.set_alarm(static_cast<etcdserverpb::AlarmType>(type));
    etcdserverpb::AlarmResponse resp;
    return etcdserverpb::Maintenance::NewStub(ch_)->Alarm(&ctx, req, &resp);
  }
  grpc::Status grant(const std::string& role, const std::string& key, const std::string& token) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    ctx.AddMetadata("token", token);
    etcdserverpb::AuthRoleGrantPermissionRequest req;
    req.set_name(role);
    req.mutable_perm()->set_key(key);
    etcdserverpb::AuthRoleGrantPermissionResponse resp;
    return auth_->RoleGrantPermission(&ctx, req, &resp);
  }

 private:
  std::shared_ptr<grpc::Channel> ch_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Auth::Stub> auth_;
};

std::string describe(const grpc::Status& st) {
  return std::to_string(st.error_code()) + " " + st.error_message();
}

TEST_F(AuthE2E, TokensExpireFollowPermissionChangesAndCannotBeForgedAsEtcd) {
  start({"--auth-token-ttl=2"});
  setup_users();
  for (member* m : {cairn_.get(), etcd_.get()}) {
    SCOPED_TRACE(m == cairn_.get() ? "cairn" : "etcd");
    grpc_client c(m->ep());
    std::string alice, root;
    ASSERT_TRUE(c.login("alice", "alicepw", &alice).ok());
    ASSERT_TRUE(c.login("root", "rootpw", &root).ok());
    EXPECT_TRUE(c.get("a", alice).ok());
    // Forged and garbled tokens. (etcd waits for the raft index a token names before it
    // answers, so the forged one names an index already applied.)
    EXPECT_EQ(describe(c.get("a", "forged.1")), "16 etcdserver: invalid auth token");
    EXPECT_EQ(describe(c.get("a", alice + "x")), "16 etcdserver: invalid auth token");
    EXPECT_EQ(describe(c.get("a", std::string(4096, 'z'))), "16 etcdserver: invalid auth token");
    // A permission change applies to the next request of a token issued before it (simple
    // tokens follow the store's revision; only writes racing the change are refused as stale).
    EXPECT_EQ(describe(c.get("c", alice)), "7 etcdserver: permission denied");
    ASSERT_TRUE(c.grant("reader", "c", root).ok());
    EXPECT_TRUE(c.get("c", alice).ok());
    EXPECT_TRUE(c.get("a", alice).ok());
    // Unused for longer than the TTL: gone.
    std::this_thread::sleep_for(3500ms);
    EXPECT_EQ(describe(c.get("a", alice)), "16 etcdserver: invalid auth token");
    // Wrong password, unknown user: the same answer.
    EXPECT_EQ(describe(c.login("alice", "nope", nullptr)),
              "3 etcdserver: authentication failed, invalid user ID or password");
    EXPECT_EQ(describe(c.login("ghost", "x", nullptr)),
              "3 etcdserver: authentication failed, invalid user ID or password");
  }
}

// JWT tokens with the same key pair: etcd's are accepted by Cairn and Cairn's by etcd; both go
// stale after a permission change (a JWT carries its auth revision) and refuse a bent one.
TEST_F(AuthE2E, JwtTokensOfEtcdAndCairnAreInterchangeable) {
  const auto key = (dir_.path() / "jwt.key").string(), pub = (dir_.path() / "jwt.pub").string();
  e2e::openssl({"genrsa", "-out", key, "2048"});
  e2e::openssl({"rsa", "-in", key, "-pubout", "-out", pub});
  start({"--auth-token=jwt,pub-key=" + pub + ",priv-key=" + key + ",sign-method=RS256,ttl=10m"});
  setup_users();
  EXPECT_EQ(both(as("alice:alicepw", {"get", "a"})).out, "a\n1\n");
  grpc_client cairn(cairn_->ep()), etcd(etcd_->ep());
  EXPECT_GT(cairn.auth_revision(), 1u);  // (etcd 3.4 has no AuthStatus)
  std::string from_cairn, from_etcd, root;
  ASSERT_TRUE(cairn.login("alice", "alicepw", &from_cairn).ok());
  ASSERT_TRUE(etcd.login("alice", "alicepw", &from_etcd).ok());
  EXPECT_EQ(std::count(from_cairn.begin(), from_cairn.end(), '.'), 2) << from_cairn;
  EXPECT_TRUE(cairn.get("a", from_etcd).ok()) << describe(cairn.get("a", from_etcd));
  EXPECT_TRUE(etcd.get("a", from_cairn).ok()) << describe(etcd.get("a", from_cairn));
  std::string bent = from_cairn;
  bent[bent.size() - 5] = bent[bent.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(describe(cairn.get("a", bent)), describe(etcd.get("a", bent)));
  EXPECT_EQ(describe(cairn.get("a", bent)), "16 etcdserver: invalid auth token");
  for (grpc_client* c : {&cairn, &etcd}) {
    ASSERT_TRUE(c->login("root", "rootpw", &root).ok());
    ASSERT_TRUE(c->grant("reader", "c", root).ok());
  }
  EXPECT_EQ(describe(cairn.get("a", from_etcd)), describe(etcd.get("a", from_etcd)));
  EXPECT_EQ(describe(cairn.get("a", from_cairn)), "3 etcdserver: revision of auth store is old");
}

TEST_F(AuthE2E, APasswordFloodLeavesOtherClientsServedAndNothingSecretIsLogged) {
  start({"--bcrypt-cost=12"});  // slow hashes: each wrong password costs ~0.2 s of a core
  setup_users();
  grpc_client c(cairn_->ep());
  std::string root;
  ASSERT_TRUE(c.login("root", "rootpw", &root).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> tries{0};
  std::vector<std::thread> flood;
  for (int i = 0; i < 8; ++i) {
    flood.emplace_back([&] {
      grpc_client f(cairn_->ep());
      while (!stop) {
        auto st = f.login("root", "guess" + std::to_string(tries++), nullptr);
        EXPECT_FALSE(st.ok());
      }
    });
  }
  // While it runs, a client with a token is answered promptly (a liveness bound, not a speed
  // measurement).
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto st = c.get("a", root);
    EXPECT_TRUE(st.ok()) << describe(st);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    std::this_thread::sleep_for(100ms);
  }
  stop = true;
  for (auto& t : flood) t.join();
  EXPECT_GT(tries.load(), 8);
  const std::string log = cairn_->log();
  for (const std::string& secret : std::vector<std::string>{"rootpw", "alicepw", "bobpw", root}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " is in the log";
  }
}

// Values outside the protocol's enums are refused before raft (an entry no member could apply
// would stop them all), and the member goes on serving.
TEST_F(AuthE2E, OutOfRangeEnumsAreRefusedAndTheMemberLives) {
  cairn_ = std::make_unique<member>(e2e::cairn_binary(), dir_.path(), "cairn",
                                    std::vector<std::string>{});
  grpc_client c(cairn_->ep());
  ASSERT_EQ(etcdctl(cairn_->ep(), {"role", "add", "r"}).exit_code, 0);
  EXPECT_EQ(c.grant_type("r", 7, "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(c.alarm(9, 1).ok());
  EXPECT_TRUE(c.alarm(1, 77).ok());
  EXPECT_EQ(etcdctl(cairn_->ep(), {"put", "k", "v"}).out, "OK\n");
  EXPECT_EQ(etcdctl(cairn_->ep(), {"role", "get", "r"}).out, "Role r\nKV Read:\nKV Write:\n");
}

// With a CA file but without --client-cert-auth, certificates are required but their common
// name is not a login (etcd's rule): CN=root without a token is nobody.
TEST_F(AuthE2E, ACommonNameLogsInOnlyWithClientCertAuthAsEtcd) {
  const fs::path d = dir_.path();
  e2e::make_ca(d, "ca");
  e2e::make_cert(d, "ca", "server", "127.0.0.1");
  e2e::make_cert(d, "ca", "root", "root", "");
  const auto p = [&](const std::string& f) { return (d / f).string(); };
  const std::vector<std::string> flags = {"--cert-file=" + p("server.crt"),
                                          "--key-file=" + p("server.key"),
                                          "--trusted-ca-file=" + p("ca.crt")};
  cairn_ = std::make_unique<member>(e2e::cairn_binary(), d, "cairn", flags, "https");
  etcd_ = std::make_unique<member>(e2e::etcd_binary(), d, "etcd", flags, "https");
  const std::vector<std::string> tls = {"--cacert=" + p("ca.crt"), "--cert=" + p("root.crt"),
                                        "--key=" + p("root.key")};
  const auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), tls.begin(), tls.end());
    return args;
  };
  EXPECT_EQ(both(with({"user", "add", "root:rootpw"})).exit_code, 0);
  EXPECT_EQ(both(with({"auth", "enable"})).exit_code, 0);
  EXPECT_EQ(error_line(both(with({"get", "a"})).err), "Error: etcdserver: user name is empty");
  EXPECT_EQ(both(with({"--user=root:rootpw", "get", "a"})).exit_code, 0);
}

TEST_F(AuthE2E, ACertificatesCommonNameIsTheUserAsEtcd) {
  const fs::path d = dir_.path();
  e2e::make_ca(d, "ca");
  e2e::make_cert(d, "ca", "server", "127.0.0.1");
  e2e::make_cert(d, "ca", "alice", "alice", "");
  e2e::make_cert(d, "ca", "root", "root", "");
  const auto p = [&](const std::string& f) { return (d / f).string(); };
  const std::vector<std::string> flags = {"--cert-file=" + p("server.crt"),
                                          "--key-file=" + p("server.key"),
                                          "--trusted-ca-file=" + p("ca.crt"), "--client-cert-auth"};
  cairn_ = std::make_unique<member>(e2e::cairn_binary(), d, "cairn", flags, "https");
  etcd_ = std::make_unique<member>(e2e::etcd_binary(), d, "etcd", flags, "https");
  const auto with = [&](const std::string& who, std::vector<std::string> args) {
    args.insert(args.begin(), {"--cacert=" + p("ca.crt"), "--cert=" + p(who + ".crt"),
                               "--key=" + p(who + ".key")});
    return args;
  };
  EXPECT_EQ(both(with("root", {"user", "add", "root", "--no-password"})).exit_code, 0);
  EXPECT_EQ(both(with("root", {"user", "add", "alice", "--no-password"})).exit_code, 0);
  EXPECT_EQ(both(with("root", {"role", "add", "reader"})).exit_code, 0);
  EXPECT_EQ(both(with("root", {"role", "grant-permission", "reader", "read", "a"})).exit_code, 0);
  EXPECT_EQ(both(with("root", {"user", "grant-role", "alice", "reader"})).exit_code, 0);
  EXPECT_EQ(both(with("root", {"put", "a", "1"})).exit_code, 0);
  EXPECT_EQ(both(with("root", {"auth", "enable"})).exit_code, 0);
  // No token: the certificate's common name logs in.
  EXPECT_EQ(both(with("alice", {"get", "a"})).out, "a\n1\n");
  both(with("alice", {"put", "a", "2"}));
  EXPECT_EQ(both(with("root", {"put", "a", "3"})).out, "OK\n");
  both(with("root", {"user", "list"}));
  // A no-password user cannot log in with a password.
  both(with("root", {"--user=alice:x", "get", "a"}));
}

// Three members: the auth state and the tokens travel through raft, so a user added on one
// member logs in on another, a token from one works on the others, and a restarted member
// still enforces the permissions (its auth buckets came back with its db).
TEST(AuthCluster, UsersTokensAndPermissionsAreTheSameOnEveryMember) {
  e2e::temp_dir dir("cairn-auth-cluster");
  e2e::cairn_cluster c(dir.path(), 3);
  c.start_all();
  const auto on = [&](int i, std::vector<std::string> args) {
    return etcdctl(c.endpoint(i), args);
  };
  for (int tries = 0; tries < 100 && etcdctl(c.endpoints(), {"endpoint", "health"}).exit_code != 0;
       ++tries) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(on(0, {"user", "add", "root:rootpw"}).exit_code, 0);
  ASSERT_EQ(on(1, {"user", "add", "alice:alicepw"}).exit_code, 0);
  ASSERT_EQ(on(2, {"role", "add", "reader"}).exit_code, 0);
  ASSERT_EQ(on(0, {"role", "grant-permission", "reader", "read", "a"}).exit_code, 0);
  ASSERT_EQ(on(1, {"user", "grant-role", "alice", "reader"}).exit_code, 0);
  ASSERT_EQ(on(2, {"put", "a", "1"}).exit_code, 0);
  ASSERT_EQ(on(0, {"auth", "enable"}).exit_code, 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(on(i, {"--user=alice:alicepw", "get", "a", "--print-value-only"}).out, "1\n") << i;
    EXPECT_EQ(error_line(on(i, {"--user=alice:alicepw", "put", "a", "2"}).err),
              "Error: etcdserver: permission denied")
        << i;
    EXPECT_EQ(error_line(on(i, {"get", "a"}).err), "Error: etcdserver: user name is empty") << i;
  }
  grpc_client first(c.endpoint(0));
  std::string token;
  ASSERT_TRUE(first.login("alice", "alicepw", &token).ok());
  for (int i = 1; i < 3; ++i) {
    grpc_client other(c.endpoint(i));
    EXPECT_TRUE(other.get("a", token).ok()) << i << " " << describe(other.get("a", token));
  }
  c.kill(2);
  c.start(2);
  e2e::run_result again;
  for (int tries = 0; tries < 50; ++tries) {
    again = on(2, {"--user=alice:alicepw", "get", "a", "--print-value-only"});
    if (again.exit_code == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(again.out, "1\n") << again.err;
  EXPECT_EQ(error_line(on(2, {"get", "a"}).err), "Error: etcdserver: user name is empty");
}

}  // namespace
}  // namespace cairn
