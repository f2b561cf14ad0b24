// Cairn's wire details against the real etcd 3.4.23 as the oracle:
//   - the error table: each error etcd can be made to answer without a cluster of several
//     members, compared with to_grpc_status (code and message, byte for byte);
//   - the HTTP side: the same raw requests to etcd's client port and to our client listener
//     must get the same bytes, except the Date values and the differences etcd 3.5 brought
//     (recorded in docs/compatibility.md): /health's "reason" key and /version's versions.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "http/health.h"
#include "http/router.h"
#include "http/test_client.h"
#include "support/e2e.h"
#include "v3rpc/client_listener.h"
#include "v3rpc/errors.h"

namespace cairn::v3rpc {
namespace {

using namespace std::chrono_literals;
using base::errc;
using http::testing::raw_client;

class live : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { etcd_ = new e2e::etcd_server(); }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  static e2e::etcd_server* etcd_;
};
e2e::etcd_server* live::etcd_ = nullptr;

// ---- the error table ------------------------------------------------------------------------

class live_errors : public live {
 protected:
  void SetUp() override {
    channel_ = grpc::CreateChannel(etcd_->endpoint(), grpc::InsecureChannelCredentials());
    kv_ = etcdserverpb::KV::NewStub(channel_);
    lease_ = etcdserverpb::Lease::NewStub(channel_);
    auth_ = etcdserverpb::Auth::NewStub(channel_);
    cluster_ = etcdserverpb::Cluster::NewStub(channel_);
    maintenance_ = etcdserverpb::Maintenance::NewStub(channel_);
  }

  template <class Stub, class Request, class Response>
  grpc::Status call(Stub& stub,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    Response local;
    return (stub.*method)(&ctx, request, response ? response : &local);
  }

  // etcd's answer must be exactly ours for `code`.
  static void expect_same(const grpc::Status& etcd, errc code) {
    const grpc::Status ours = to_grpc_status(code);
    EXPECT_EQ(etcd.error_code(), ours.error_code()) << base::name(code);
    EXPECT_EQ(etcd.error_message(), ours.error_message()) << base::name(code);
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
  std::unique_ptr<etcdserverpb::Auth::Stub> auth_;
  std::unique_ptr<etcdserverpb::Cluster::Stub> cluster_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance_;
};

using KV = etcdserverpb::KV::Stub;
using Lease = etcdserverpb::Lease::Stub;
using Auth = etcdserverpb::Auth::Stub;
using Cluster = etcdserverpb::Cluster::Stub;
using Maintenance = etcdserverpb::Maintenance::Stub;

TEST_F(live_errors, kv_requests) {
  etcdserverpb::RangeRequest range;
  expect_same(call(*kv_, &KV::Range, range), errc::empty_key);

  etcdserverpb::PutRequest put;
  put.set_key("live-missing");
  put.set_ignore_value(true);
  expect_same(call(*kv_, &KV::Put, put), errc::key_not_found);
  put.set_value("v");
  expect_same(call(*kv_, &KV::Put, put), errc::value_provided);
  put = {};
  put.set_key("live-k");
  put.set_lease(5);
  put.set_ignore_lease(true);
  expect_same(call(*kv_, &KV::Put, put), errc::lease_provided);

  etcdserverpb::TxnRequest txn;
  for (int i = 0; i < 129; ++i) {
    auto* p = txn.add_success()->mutable_request_put();
    p->set_key("live-txn-" + std::to_string(i));
  }
  expect_same(call(*kv_, &KV::Txn, txn), errc::too_many_ops);
  txn = {};
  txn.add_success()->mutable_request_put()->set_key("live-dup");
  txn.add_success()->mutable_request_put()->set_key("live-dup");
  expect_same(call(*kv_, &KV::Txn, txn), errc::duplicate_key);

  put = {};
  put.set_key("live-big");
  put.set_value(std::string(1572864 + 10, 'x'));
  expect_same(call(*kv_, &KV::Put, put), errc::request_too_large);
}

TEST_F(live_errors, revisions) {
  etcdserverpb::PutRequest put;
  put.set_key("live-rev");
  etcdserverpb::PutResponse put_response;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(*kv_, &KV::Put, put, &put_response).ok());
  const std::int64_t rev = put_response.header().revision();
  etcdserverpb::CompactionRequest compact;
  compact.set_revision(rev);
  ASSERT_TRUE(call(*kv_, &KV::Compact, compact).ok());
  etcdserverpb::RangeRequest range;
  range.set_key("live-rev");
  range.set_revision(rev - 1);
  expect_same(call(*kv_, &KV::Range, range), errc::compacted);
  range.set_revision(rev + 1000);
  expect_same(call(*kv_, &KV::Range, range), errc::future_rev);
}

TEST_F(live_errors, leases) {
  etcdserverpb::LeaseRevokeRequest revoke;
  revoke.set_id(123456789);
  expect_same(call(*lease_, &Lease::LeaseRevoke, revoke), errc::lease_not_found);
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(9000000001);
  expect_same(call(*lease_, &Lease::LeaseGrant, grant), errc::lease_ttl_too_large);
  grant.set_ttl(60);
  grant.set_id(777);
  ASSERT_TRUE(call(*lease_, &Lease::LeaseGrant, grant).ok());
  expect_same(call(*lease_, &Lease::LeaseGrant, grant), errc::lease_exist);
}

TEST_F(live_errors, auth_management) {
  etcdserverpb::AuthUserAddRequest user;
  expect_same(call(*auth_, &Auth::UserAdd, user), errc::user_empty);
  etcdserverpb::AuthRoleAddRequest role;
  expect_same(call(*auth_, &Auth::RoleAdd, role), errc::role_empty);
  etcdserverpb::AuthUserGetRequest get_user;
  get_user.set_name("live-nobody");
  expect_same(call(*auth_, &Auth::UserGet, get_user), errc::user_not_found);
  etcdserverpb::AuthRoleGetRequest get_role;
  get_role.set_role("live-nobody");
  expect_same(call(*auth_, &Auth::RoleGet, get_role), errc::role_not_found);

  user.set_name("live-u");
  user.set_password("p");
  ASSERT_TRUE(call(*auth_, &Auth::UserAdd, user).ok());
  expect_same(call(*auth_, &Auth::UserAdd, user), errc::user_already_exist);
  role.set_name("live-r");
  ASSERT_TRUE(call(*auth_, &Auth::RoleAdd, role).ok());
  expect_same(call(*auth_, &Auth::RoleAdd, role), errc::role_already_exist);

  etcdserverpb::AuthUserRevokeRoleRequest revoke_role;
  revoke_role.set_name("live-u");
  revoke_role.set_role("live-r");
  expect_same(call(*auth_, &Auth::UserRevokeRole, revoke_role), errc::role_not_granted);
  etcdserverpb::AuthRoleRevokePermissionRequest revoke_perm;
  revoke_perm.set_role("live-r");
  revoke_perm.set_key("x");
  expect_same(call(*auth_, &Auth::RoleRevokePermission, revoke_perm), errc::permission_not_granted);

  etcdserverpb::AuthenticateRequest login;
  login.set_name("live-u");
  login.set_password("p");
  expect_same(call(*auth_, &Auth::Authenticate, login), errc::auth_not_enabled);

  etcdserverpb::AuthEnableRequest enable;
  expect_same(call(*auth_, &Auth::AuthEnable, enable), errc::root_user_not_exist);
  etcdserverpb::AuthUserAddRequest root;
  root.set_name("root");
  root.set_password("r");
  ASSERT_TRUE(call(*auth_, &Auth::UserAdd, root).ok());
  expect_same(call(*auth_, &Auth::AuthEnable, enable), errc::root_role_not_exist);
}

TEST_F(live_errors, membership) {
  etcdserverpb::MemberListRequest list;
  etcdserverpb::MemberListResponse members;
  ASSERT_TRUE(call(*cluster_, &Cluster::MemberList, list, &members).ok());
  ASSERT_EQ(members.members_size(), 1);
  const auto& self = members.members(0);

  etcdserverpb::MemberRemoveRequest remove;
  remove.set_id(12345);
  expect_same(call(*cluster_, &Cluster::MemberRemove, remove), errc::member_not_found);
  etcdserverpb::MemberPromoteRequest promote;
  promote.set_id(self.id());
  expect_same(call(*cluster_, &Cluster::MemberPromote, promote), errc::member_not_learner);
  etcdserverpb::MemberAddRequest add;
  add.add_peerurls(self.peerurls(0));
  expect_same(call(*cluster_, &Cluster::MemberAdd, add), errc::peer_url_exist);
  add.clear_peerurls();
  add.add_peerurls("not a url");
  expect_same(call(*cluster_, &Cluster::MemberAdd, add), errc::member_bad_urls);

  etcdserverpb::MoveLeaderRequest move;
  move.set_targetid(12345);
  expect_same(call(*maintenance_, &Maintenance::MoveLeader, move), errc::bad_leader_transferee);
}

// ---- the HTTP side --------------------------------------------------------------------------

class fake_node final : public http::health_source {
 public:
  std::vector<http::alarm_type> alarms() override { return {}; }
  bool has_leader() override { return true; }
  cairn::expected<void, base::errc> read_probe(bool) override { return {}; }
  bool is_learner() override { return false; }
};

class live_http : public live {
 protected:
  void SetUp() override {
    node_ = std::make_shared<fake_node>();
    http::install_health(router_, node_, std::make_shared<http::health_counters>());
    http::install_version(router_, node_);
    listener_options o;
    o.client_urls = {{"http", "127.0.0.1", 0}};
    auto started =
        client_listener::start(o, nullptr, http::with_access_control(router_.as_handler(), {}),
                               [](const http::request&) { return http::not_found(); });
    ASSERT_TRUE(started) << started.error();
    listener_ = std::move(*started);
    const std::string address = listener_->client_addresses()[0];
    port_ = std::stoi(address.substr(address.rfind(':') + 1));
  }

  enum class until { response, head_response, close };

  // What a fresh connection receives for `request`, with Date values masked.
  static std::string exchange(int port, const std::string& request, until mode, int responses = 1) {
    raw_client c = raw_client::connect_tcp(port);
    c.send(request);
    std::string got;
    if (mode == until::close) {
      c.wait_eof();
      got = c.leftover();
    } else {
      for (int i = 0; i < responses; ++i) {
        auto r = c.read_response(mode == until::head_response);
        if (!r) return got + "<no response>";
        got += r->raw;
      }
    }
    static const std::regex date("Date: [^\r]*\r\n");
    return std::regex_replace(got, date, "Date: <masked>\r\n");
  }

  // etcd 3.4.23's bytes as etcd 3.5 (and Cairn) answer them: docs/compatibility.md. (No other
  // answer compared here has a 17- or 45-byte body.)
  static std::string as_35(std::string bytes) {
    const std::vector<std::pair<std::string, std::string>> differences = {
        {"{\"health\":\"true\"}", "{\"health\":\"true\",\"reason\":\"\"}"},
        {"Content-Length: 17\r\n", "Content-Length: 29\r\n"},
        {"{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}",
         "{\"etcdserver\":\"3.5.24\",\"etcdcluster\":\"3.5.0\",\"cairn\":\"0.1.0\"}"},
        {"Content-Length: 45\r\n", "Content-Length: 61\r\n"},
    };
    for (const auto& [from, to] : differences) {
      for (std::size_t at = 0; (at = bytes.find(from, at)) != std::string::npos; at += to.size()) {
        bytes.replace(at, from.size(), to);
      }
    }
    return bytes;
  }

  void compare(const std::string& request, until mode, int responses = 1) {
    const std::string etcd = exchange(etcd_->client_port(), request, mode, responses);
    const std::string ours = exchange(port_, request, mode, responses);
    EXPECT_EQ(ours, as_35(etcd)) << "request: " << request;
  }

  std::shared_ptr<fake_node> node_;
  http::router router_;
  std::unique_ptr<client_listener> listener_;
  int port_ = 0;
};

TEST_F(live_http, probes_answer_as_etcd) {
  compare("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", until::response);
  compare("GET /health?exclude=NOSPACE&serializable=true HTTP/1.1\r\nHost: x\r\n\r\n",
          until::response);
  compare("GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", until::response);
  compare("GET /version HTTP/1.1\r\nHost: evil.example\r\n\r\n", until::response);
  compare("GET /version HTTP/1.0\r\n\r\n", until::response);
  compare("GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", until::response);
  compare("GET /version HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
          until::response, 2);
}

TEST_F(live_http, refusals_answer_as_etcd) {
  compare("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", until::response);
  compare("GET /version/ HTTP/1.1\r\nHost: x\r\n\r\n", until::response);
  compare("GET //version HTTP/1.1\r\nHost: x\r\n\r\n", until::response);
  compare("POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", until::response);
  compare("HEAD /version HTTP/1.1\r\nHost: x\r\n\r\n", until::head_response);
  compare("OPTIONS /health HTTP/1.1\r\nHost: x\r\n\r\n", until::response);
  compare("GET / HTTP/1.1\r\n\r\n", until::close);
  compare("GET /version HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", until::close);
  compare("GET /version HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", until::close);
  compare("GET /version HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", until::close);
  compare("hello there\r\n\r\n", until::close);
  compare("GET\r\n\r\n", until::close);
}

TEST_F(live_http, etcd_34_has_no_livez_or_readyz) {
  // The endpoints Cairn adds as etcd 3.5.11+ does (docs/compatibility.md).
  for (const std::string path : {"/livez", "/readyz"}) {
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_TRUE(exchange(etcd_->client_port(), request, until::response)
                    .starts_with("HTTP/1.1 404 Not Found\r\n"));
    EXPECT_TRUE(exchange(port_, request, until::response).starts_with("HTTP/1.1 200 OK\r\n"));
  }
}

}  // namespace
}  // namespace cairn::v3rpc
