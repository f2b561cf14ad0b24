// The client port end to end in one process: gRPC (the standard health service) and HTTP/1.1
// (the probes) on ONE loopback port, interleaved and on several connections at once; the
// metrics port; --listen-client-http-urls; refusals. The handlers run on a fake node.
#include "v3rpc/client_listener.h"

#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <thread>

#include "http/health.h"
#include "http/router.h"
#include "http/test_client.h"
#include "support/e2e.h"

namespace cairn::v3rpc {
namespace {

using namespace std::chrono_literals;
using http::testing::raw_client;

class fake_node final : public http::health_source {
 public:
  std::vector<http::alarm_type> alarms() override { return {}; }
  bool has_leader() override { return leader.load(); }
  cairn::expected<void, base::errc> read_probe(bool) override { return {}; }
  bool is_learner() override { return false; }
  std::atomic<bool> leader{true};
};

int port_of(const std::string& address) {
  return std::stoi(address.substr(address.rfind(':') + 1));
}

// grpc.health.v1.Health/Check by hand (no health.proto in Debian's gRPC packages): the request
// is HealthCheckRequest{service = 1}, the answer HealthCheckResponse{status = 1}.
struct health_answer {
  grpc::Status status;
  int serving_status = -1;  // 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN
};

health_answer health_check(grpc::Channel& channel, const std::string& service) {
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  std::string request;
  if (!service.empty()) {
    // field 1, wire type 2; lengths below 2^14 fit a two-byte varint
    request += '\x0a';
    std::size_t n = service.size();
    while (n >= 0x80) {
      request += static_cast<char>((n & 0x7f) | 0x80);
      n >>= 7;
    }
    request += static_cast<char>(n);
    request += service;
  }
  grpc::Slice slice(request.data(), request.size());
  grpc::ByteBuffer in(&slice, 1);
  grpc::ByteBuffer out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &in, &out,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  health_answer answer;
  answer.status = done.get_future().get();
  if (answer.status.ok()) {
    std::vector<grpc::Slice> slices;
    out.Dump(&slices);
    std::string bytes;
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    google::protobuf::UnknownFieldSet fields;
    if (fields.ParseFromString(bytes)) {
      answer.serving_status = 0;  // proto3 default when the field is absent
      for (int i = 0; i < fields.field_count(); ++i) {
        if (fields.field(i).number() == 1)
          answer.serving_status = static_cast<int>(fields.field(i).varint());
      }
    }
  }
  return answer;
}

std::shared_ptr<grpc::Channel> channel_to(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(INT_MAX);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

class client_port : public ::testing::Test {
 protected:
  // False (with the reason reported) if the listener did not start.
  [[nodiscard]] bool start(listener_options options) {
    client_router_ = std::make_unique<http::router>();
    http::install_health(*client_router_, node_, counters_);
    http::install_version(*client_router_, node_);
    http::install_metrics(*client_router_,
                          [this] { return http::health_metrics_text(*counters_); });
    metrics_router_ = std::make_unique<http::router>();
    http::install_metrics_endpoints(*metrics_router_, node_, counters_,
                                    [this] { return http::health_metrics_text(*counters_); });
    auto started = client_listener::start(
        options, nullptr, http::with_access_control(client_router_->as_handler(), {}),
        metrics_router_->as_handler());
    if (!started) {
      ADD_FAILURE() << started.error();
      return false;
    }
    listener_ = std::move(*started);
    return true;
  }

  static listener_options loopback() {
    listener_options o;
    o.client_urls = {{"http", "127.0.0.1", 0}};
    o.metrics_urls = {{"http", "127.0.0.1", 0}};
    return o;
  }

  void TearDown() override {
    if (listener_) listener_->stop();
  }

  std::shared_ptr<fake_node> node_ = std::make_shared<fake_node>();
  std::shared_ptr<http::health_counters> counters_ = std::make_shared<http::health_counters>();
  std::unique_ptr<http::router> client_router_;
  std::unique_ptr<http::router> metrics_router_;
  std::unique_ptr<client_listener> listener_;
};

TEST_F(client_port, grpc_health_and_http_probes_share_one_port) {
  ASSERT_TRUE(start(loopback()));
  ASSERT_EQ(listener_->client_addresses().size(), 1u);
  const std::string address = listener_->client_addresses()[0];
  const int port = port_of(address);

  auto channel = channel_to(address);
  const health_answer serving = health_check(*channel, "");
  ASSERT_TRUE(serving.status.ok()) << serving.status.error_message();
  EXPECT_EQ(serving.serving_status, 1);  // SERVING
  const health_answer unknown = health_check(*channel, "no.such.Service");
  EXPECT_EQ(unknown.status.error_code(), grpc::StatusCode::NOT_FOUND);
  {
    // Services the node has not registered (none yet): grpc-go's answer.
    grpc::GenericStub stub(channel);
    grpc::Slice nothing;
    grpc::ByteBuffer in(&nothing, 1);
    grpc::ByteBuffer out;
    grpc::ClientContext ctx;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, "/etcdserverpb.KV/Range", grpc::StubOptions(), &in, &out,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    const grpc::Status s = done.get_future().get();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(s.error_message(), "unknown service etcdserverpb.KV");
  }

  raw_client http = raw_client::connect_tcp(port);
  ASSERT_TRUE(http.send("GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  auto version = http.read_response();
  ASSERT_TRUE(version);
  EXPECT_EQ(version->status, 200);
  EXPECT_EQ(version->body, R"({"etcdserver":"3.5.24","etcdcluster":"3.5.0","cairn":"0.1.0"})");
  EXPECT_EQ(*http::find_header(version->headers, "Access-Control-Allow-Origin"), "*");

  // gRPC again on the same channel between HTTP requests on the same port.
  EXPECT_EQ(health_check(*channel, "").serving_status, 1);
  ASSERT_TRUE(http.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  auto health = http.read_response();
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, R"({"health":"true","reason":""})");
  node_->leader = false;
  ASSERT_TRUE(
      http.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                "GET /health?serializable=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  auto no_leader = http.read_response();
  auto serializable = http.read_response();
  ASSERT_TRUE(no_leader);
  ASSERT_TRUE(serializable);
  EXPECT_EQ(no_leader->status, 503);
  EXPECT_EQ(no_leader->body, "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}\n");
  EXPECT_EQ(serializable->status, 200);
  EXPECT_EQ(health_check(*channel, "").serving_status, 1);
}

TEST_F(client_port, many_connections_of_both_kinds_at_once) {
  ASSERT_TRUE(start(loopback()));
  const std::string address = listener_->client_addresses()[0];
  const int port = port_of(address);
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      auto channel = channel_to(address);
      raw_client http = raw_client::connect_tcp(port);
      for (int i = 0; i < 10; ++i) {
        if (health_check(*channel, "").serving_status != 1) ++failures;
        const std::string path = (i + t) % 2 == 0 ? "/version" : "/livez?verbose";
        if (!http.send("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) ++failures;
        auto r = http.read_response();
        if (!r || r->status != 200) ++failures;
        if (r && path == "/livez?verbose" && r->body != "[+]serializable_read ok\nok\n") ++failures;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(client_port, unknown_protocols_and_silent_clients_are_closed) {
  listener_options o = loopback();
  o.sniff_timeout = 300ms;
  ASSERT_TRUE(start(o));
  const int port = port_of(listener_->client_addresses()[0]);
  raw_client garbage = raw_client::connect_tcp(port);
  ASSERT_TRUE(garbage.send("hello there\r\n\r\n"));
  EXPECT_TRUE(garbage.wait_eof());
  EXPECT_EQ(garbage.leftover(), "");  // closed without a word, as etcd's cmux

  raw_client silent = raw_client::connect_tcp(port);
  EXPECT_TRUE(silent.wait_eof(20s));
  EXPECT_EQ(silent.leftover(), "");

  // Still serving both protocols afterwards.
  EXPECT_EQ(health_check(*channel_to(listener_->client_addresses()[0]), "").serving_status, 1);
}

TEST_F(client_port, a_request_line_may_arrive_in_pieces) {
  ASSERT_TRUE(start(loopback()));
  raw_client slow = raw_client::connect_tcp(port_of(listener_->client_addresses()[0]));
  ASSERT_TRUE(slow.send("GET /vers"));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(slow.send("ion HTTP/1.1\r\nHo"));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(slow.send("st: x\r\n\r\n"));
  auto r = slow.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"etcdserver":"3.5.24","etcdcluster":"3.5.0","cairn":"0.1.0"})");
}

TEST_F(client_port, an_http2_preface_in_pieces_reaches_grpc_whole) {
  ASSERT_TRUE(start(loopback()));
  raw_client h2 = raw_client::connect_tcp(port_of(listener_->client_addresses()[0]));
  ASSERT_TRUE(h2.send("PRI * HTTP/2.0\r\n"));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(h2.send("\r\nSM\r\n"));
  std::this_thread::sleep_for(50ms);
  // The rest of the preface, an empty SETTINGS frame and a PING (HTTP/2 frames: 24-bit length,
  // type, flags, 31-bit stream id, payload).
  const std::string settings("\0\0\0\x04\0\0\0\0\0", 9);
  const std::string ping = std::string("\0\0\x08\x06\0\0\0\0\0", 9) + "cairnpng";
  ASSERT_TRUE(h2.send("\r\n" + settings + ping));
  // gRPC must have read the whole preface: it acknowledges the PING instead of going away.
  bool acked = false;
  while (!acked) {
    ASSERT_TRUE(h2.wait_bytes(9)) << "no PING ACK came back";
    const std::string& in = h2.leftover();
    const std::size_t length = (static_cast<unsigned char>(in[0]) << 16) |
                               (static_cast<unsigned char>(in[1]) << 8) |
                               static_cast<unsigned char>(in[2]);
    ASSERT_TRUE(h2.wait_bytes(9 + length));
    const char type = h2.leftover()[3];
    const char flags = h2.leftover()[4];
    ASSERT_NE(type, '\x07') << "GOAWAY: the preface did not reach gRPC intact";
    acked = type == '\x06' && (flags & 1) != 0 && h2.leftover().substr(9, 8) == "cairnpng";
    h2.consume(9 + length);
  }
}

TEST_F(client_port, metrics_port_serves_only_the_probes) {
  ASSERT_TRUE(start(loopback()));
  ASSERT_EQ(listener_->metrics_addresses().size(), 1u);
  const int port = port_of(listener_->metrics_addresses()[0]);
  raw_client c = raw_client::connect_tcp(port);
  for (const std::string path : {"/metrics", "/health", "/livez", "/readyz", "/version",
                                 "/readyz/non_learner", "/livez/serializable_read"}) {
    ASSERT_TRUE(c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    // No access controller on the metrics port.
    EXPECT_EQ(http::find_header(r->headers, "Access-Control-Allow-Origin"), nullptr) << path;
  }
  ASSERT_TRUE(c.send("GET /v3/kv/range HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto other = c.read_response();
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
  // The metrics body counts the /health probes answered so far.
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto metrics = c.read_response();
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("etcd_server_health_success 1\n"), std::string::npos)
      << metrics->body;
  // gRPC is not spoken here.
  auto channel = channel_to(listener_->metrics_addresses()[0]);
  EXPECT_FALSE(health_check(*channel, "").status.ok());
}

TEST_F(client_port, client_http_urls_move_http_off_the_client_urls) {
  listener_options o = loopback();
  o.client_http_urls = {{"http", "127.0.0.1", 0}};
  ASSERT_TRUE(start(o));
  const std::string grpc_address = listener_->client_addresses()[0];
  const int http_port = port_of(listener_->client_http_addresses()[0]);
  EXPECT_EQ(health_check(*channel_to(grpc_address), "").serving_status, 1);

  raw_client on_grpc_port = raw_client::connect_tcp(port_of(grpc_address));
  ASSERT_TRUE(on_grpc_port.send("GET /version HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(on_grpc_port.wait_eof());
  EXPECT_EQ(on_grpc_port.leftover(), "");

  raw_client on_http_port = raw_client::connect_tcp(http_port);
  ASSERT_TRUE(on_http_port.send("GET /version HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = on_http_port.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(health_check(*channel_to(listener_->client_http_addresses()[0]), "").status.ok());
}

TEST_F(client_port, grpc_receive_limit_is_max_request_bytes_plus_512k) {
  listener_options o = loopback();
  o.max_request_bytes = 1000;  // limit: 1000 + 524288 bytes
  ASSERT_TRUE(start(o));
  auto channel = channel_to(listener_->client_addresses()[0]);
  // HealthCheckRequest{service: L bytes} is 1 + 3 + L bytes long (a 3-byte length varint).
  const std::size_t limit = 1000 + 524288;
  const std::size_t at_limit = limit - 4;
  // At the limit the request reaches the health service, which refuses so long a name; one
  // byte more and gRPC refuses the message itself.
  const grpc::Status fits = health_check(*channel, std::string(at_limit, 'a')).status;
  EXPECT_NE(fits.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << fits.error_message();
  EXPECT_FALSE(fits.ok());
  const grpc::Status over = health_check(*channel, std::string(at_limit + 1, 'a')).status;
  EXPECT_EQ(over.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << over.error_message();
}

TEST_F(client_port, max_concurrent_streams_applies_per_connection) {
  listener_options o = loopback();
  o.max_concurrent_streams = 1;
  ASSERT_TRUE(start(o));
  auto channel = channel_to(listener_->client_addresses()[0]);
  ASSERT_EQ(health_check(*channel, "").serving_status, 1);  // connected

  // Health/Watch holds the connection's one stream open.
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext watch_ctx;
  auto watch = stub.PrepareCall(&watch_ctx, "/grpc.health.v1.Health/Watch", &cq);
  auto wait = [&cq](std::intptr_t expected) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<std::intptr_t>(tag), expected);
    return ok;
  };
  watch->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(wait(1));
  grpc::Slice nothing;
  grpc::ByteBuffer request(&nothing, 1);
  watch->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(wait(2));
  grpc::ByteBuffer first;
  watch->Read(&first, reinterpret_cast<void*>(3));
  ASSERT_TRUE(wait(3));  // the first status: the stream is open

  // A second call on the same connection has to wait for a stream and runs out of time.
  grpc::ClientContext check_ctx;
  check_ctx.set_deadline(std::chrono::system_clock::now() + 1s);
  grpc::ByteBuffer in(&nothing, 1);
  grpc::ByteBuffer out;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&check_ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &in, &out,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  EXPECT_EQ(done.get_future().get().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  // Once the watch ends, calls go through again.
  watch_ctx.TryCancel();
  grpc::Status finished;
  watch->Finish(&finished, reinterpret_cast<void*>(4));
  wait(4);
  EXPECT_EQ(health_check(*channel, "").serving_status, 1);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(client_port, bind_errors_name_the_url) {
  ASSERT_TRUE(start(loopback()));
  const http::handler nowhere = [](const http::request&) { return http::not_found(); };
  const int taken = port_of(listener_->client_addresses()[0]);
  listener_options o;
  o.client_urls = {{"http", "127.0.0.1", static_cast<std::uint16_t>(taken)}};
  auto second = client_listener::start(o, nullptr, nowhere, nowhere);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), "listen tcp http://127.0.0.1:" + std::to_string(taken) +
                                ": bind: address already in use");
  o.client_urls = {{"https", "127.0.0.1", 0}};
  auto tls = client_listener::start(o, nullptr, nowhere, nowhere);
  ASSERT_FALSE(tls);
  EXPECT_EQ(tls.error(),
            "TLS key/cert (--cert-file, --key-file) must be provided for client url "
            "https://127.0.0.1:0 with HTTPS scheme");
}

TEST_F(client_port, curl_reads_the_probes) {
  const std::string curl = "/usr/bin/curl";
  if (::access(curl.c_str(), X_OK) != 0) GTEST_SKIP() << "curl is not installed";
  ASSERT_TRUE(start(loopback()));
  const std::string base = "http://" + listener_->client_addresses()[0];
  e2e::run_result r = e2e::run({curl, "-s", "-S", "-i", base + "/version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("HTTP/1.1 200 OK\r\n")) << r.out;
  EXPECT_TRUE(
      r.out.ends_with("\r\n\r\n{\"etcdserver\":\"3.5.24\",\"etcdcluster\":\"3.5.0\","
                      "\"cairn\":\"0.1.0\"}"))
      << r.out;
  r = e2e::run({curl, "-s", "-S", "-w", " %{http_code}", base + "/readyz?verbose"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n"
            "[+]non_learner ok\nok\n 200");
  // curl sends "Expect: 100-continue" for larger bodies; the answer must not wait for it.
  r = e2e::run({curl, "-s", "-S", "-w", "%{http_code}", "-o", "/dev/null", "-X", "POST",
                "--data-binary", std::string(4096, 'x'), base + "/health"},
               {}, 10s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "405");
}

}  // namespace
}  // namespace cairn::v3rpc
