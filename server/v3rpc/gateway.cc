#include "v3rpc/gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>

#include <chrono>
#include <map>
#include <optional>
#include <utility>

#include "spdlog/spdlog.h"

// The generated messages must be linked in for the descriptor pool to know them.
#include "etcdserverpb/rpc.grpc.pb.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace cairn::v3rpc {
namespace {

namespace pb = google::protobuf;
using namespace std::chrono_literals;

constexpr auto poll_interval = 200ms;

}  // namespace

const std::vector<gateway_route>& gateway_routes() {
  using k = rpc_kind;
  static const std::vector<gateway_route> routes = {
      {"/v3/kv/range", "etcdserverpb.KV.Range", k::unary},
      {"/v3/kv/put", "etcdserverpb.KV.Put", k::unary},
      {"/v3/kv/deleterange", "etcdserverpb.KV.DeleteRange", k::unary},
      {"/v3/kv/txn", "etcdserverpb.KV.Txn", k::unary},
      {"/v3/kv/compaction", "etcdserverpb.KV.Compact", k::unary},
      {"/v3/watch", "etcdserverpb.Watch.Watch", k::bidi_stream},
      {"/v3/lease/grant", "etcdserverpb.Lease.LeaseGrant", k::unary},
      {"/v3/lease/revoke", "etcdserverpb.Lease.LeaseRevoke", k::unary},
      {"/v3/kv/lease/revoke", "etcdserverpb.Lease.LeaseRevoke", k::unary},
      {"/v3/lease/keepalive", "etcdserverpb.Lease.LeaseKeepAlive", k::bidi_stream},
      {"/v3/lease/timetolive", "etcdserverpb.Lease.LeaseTimeToLive", k::unary},
      {"/v3/kv/lease/timetolive", "etcdserverpb.Lease.LeaseTimeToLive", k::unary},
      {"/v3/lease/leases", "etcdserverpb.Lease.LeaseLeases", k::unary},
      {"/v3/kv/lease/leases", "etcdserverpb.Lease.LeaseLeases", k::unary},
      {"/v3/cluster/member/add", "etcdserverpb.Cluster.MemberAdd", k::unary},
      {"/v3/cluster/member/remove", "etcdserverpb.Cluster.MemberRemove", k::unary},
      {"/v3/cluster/member/update", "etcdserverpb.Cluster.MemberUpdate", k::unary},
      {"/v3/cluster/member/list", "etcdserverpb.Cluster.MemberList", k::unary},
      {"/v3/cluster/member/promote", "etcdserverpb.Cluster.MemberPromote", k::unary},
      {"/v3/maintenance/alarm", "etcdserverpb.Maintenance.Alarm", k::unary},
      {"/v3/maintenance/status", "etcdserverpb.Maintenance.Status", k::unary},
      {"/v3/maintenance/defragment", "etcdserverpb.Maintenance.Defragment", k::unary},
      {"/v3/maintenance/hash", "etcdserverpb.Maintenance.Hash", k::unary},
      {"/v3/maintenance/hashkv", "etcdserverpb.Maintenance.HashKV", k::unary},
      {"/v3/maintenance/snapshot", "etcdserverpb.Maintenance.Snapshot", k::server_stream},
      {"/v3/maintenance/transfer-leadership", "etcdserverpb.Maintenance.MoveLeader", k::unary},
      {"/v3/maintenance/downgrade", "etcdserverpb.Maintenance.Downgrade", k::unary},
      {"/v3/auth/enable", "etcdserverpb.Auth.AuthEnable", k::unary},
      {"/v3/auth/disable", "etcdserverpb.Auth.AuthDisable", k::unary},
      {"/v3/auth/status", "etcdserverpb.Auth.AuthStatus", k::unary},
      {"/v3/auth/authenticate", "etcdserverpb.Auth.Authenticate", k::unary},
      {"/v3/auth/user/add", "etcdserverpb.Auth.UserAdd", k::unary},
      {"/v3/auth/user/get", "etcdserverpb.Auth.UserGet", k::unary},
      {"/v3/auth/user/list", "etcdserverpb.Auth.UserList", k::unary},
      {"/v3/auth/user/delete", "etcdserverpb.Auth.UserDelete", k::unary},
      {"/v3/auth/user/changepw", "etcdserverpb.Auth.UserChangePassword", k::unary},
      {"/v3/auth/user/grant", "etcdserverpb.Auth.UserGrantRole", k::unary},
      {"/v3/auth/user/revoke", "etcdserverpb.Auth.UserRevokeRole", k::unary},
      {"/v3/auth/role/add", "etcdserverpb.Auth.RoleAdd", k::unary},
      {"/v3/auth/role/get", "etcdserverpb.Auth.RoleGet", k::unary},
      {"/v3/auth/role/list", "etcdserverpb.Auth.RoleList", k::unary},
      {"/v3/auth/role/delete", "etcdserverpb.Auth.RoleDelete", k::unary},
      {"/v3/auth/role/grant", "etcdserverpb.Auth.RoleGrantPermission", k::unary},
      {"/v3/auth/role/revoke", "etcdserverpb.Auth.RoleRevokePermission", k::unary},
      {"/v3/election/campaign", "v3electionpb.Election.Campaign", k::unary},
      {"/v3/election/proclaim", "v3electionpb.Election.Proclaim", k::unary},
      {"/v3/election/leader", "v3electionpb.Election.Leader", k::unary},
      {"/v3/election/observe", "v3electionpb.Election.Observe", k::server_stream},
      {"/v3/election/resign", "v3electionpb.Election.Resign", k::unary},
      {"/v3/lock/lock", "v3lockpb.Lock.Lock", k::unary},
      {"/v3/lock/unlock", "v3lockpb.Lock.Unlock", k::unary},
  };
  return routes;
}

int http_status_of(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 408;
    case grpc::StatusCode::UNKNOWN:
      return 500;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 412;
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::INTERNAL:
      return 500;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DATA_LOSS:
      return 500;
    default:
      return 500;
  }
}

std::optional<std::vector<std::string_view>> split_json_objects(std::string_view body) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (true) {
    while (i < body.size() && space(body[i])) ++i;
    if (i == body.size()) return out;
    if (body[i] != '{') return std::nullopt;
    const std::size_t start = i;
    int depth = 0;
    bool in_string = false;
    for (; i < body.size(); ++i) {
      const char c = body[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) break;
      }
    }
    if (i >= body.size()) return std::nullopt;
    out.push_back(body.substr(start, i + 1 - start));
    ++i;
  }
}

struct gateway::route_info {
  gateway_route route;
  std::string grpc_path;  // "/etcdserverpb.KV/Range"
  const pb::Message* request = nullptr;
  const pb::Message* response = nullptr;
};

namespace {

// One generic call on its own completion queue, one operation at a time (a read may be left
// pending and awaited again later).
class generic_call {
 public:
  enum class got { message, end, pending };

  generic_call(const std::shared_ptr<grpc::Channel>& channel, const std::string& path,
               const http::request& r)
      : stub_(channel) {
    if (const std::string* auth = http::find_header(r.headers, "Authorization")) {
      ctx_.AddMetadata("authorization", *auth);
    }
    stream_ = stub_.PrepareCall(&ctx_, path, &cq_);
    stream_->StartCall(tag());
    started_ = wait();
  }
  ~generic_call() {
    if (!finished_) {
      ctx_.TryCancel();
      if (reading_) wait();
      (void)finish();
    }
    cq_.Shutdown();
    void* t;
    bool ok;
    while (cq_.Next(&t, &ok)) {
    }
  }
  generic_call(const generic_call&) = delete;
  generic_call& operator=(const generic_call&) = delete;

  bool write(const pb::Message& m) {
    if (!started_) return false;
    std::string bytes;
    m.SerializeToString(&bytes);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer buf(&slice, 1);
    stream_->Write(buf, tag());
    return wait();
  }
  bool writes_done() {
    if (!started_) return false;
    stream_->WritesDone(tag());
    return wait();
  }
  // Waits for the next message (into `out`) or the end of the call, for at most `budget`
  // (nullopt: as long as it takes); then `pending`, and a later call waits on. Every poll
  // interval it asks `abandon`, and cancels the call once that says so.
  got read(pb::Message& out, std::optional<std::chrono::milliseconds> budget = std::nullopt,
           const std::function<bool()>& abandon = {}) {
    if (!started_) return got::end;
    if (!reading_) {
      buf_.Clear();
      stream_->Read(&buf_, tag());
      reading_ = true;
    }
    const auto until = std::chrono::steady_clock::now() + budget.value_or(0ms);
    bool ok = false;
    void* t;
    while (true) {
      auto step = std::chrono::system_clock::now() + poll_interval;
      if (budget)
        step = std::min(
            step, std::chrono::system_clock::now() + (until - std::chrono::steady_clock::now()));
      auto st = cq_.AsyncNext(&t, &ok, step);
      if (st == grpc::CompletionQueue::GOT_EVENT) break;
      if (st == grpc::CompletionQueue::SHUTDOWN) return got::end;
      if (abandon && abandon()) ctx_.TryCancel();
      if (budget && std::chrono::steady_clock::now() >= until) return got::pending;
    }
    reading_ = false;
    if (!ok) return got::end;
    grpc::Slice slice;
    if (!buf_.DumpToSingleSlice(&slice).ok()) return got::end;
    if (!out.ParseFromArray(slice.begin(), static_cast<int>(slice.size()))) return got::end;
    return got::message;
  }
  grpc::Status finish() {
    grpc::Status status;
    stream_->Finish(&status, tag());
    wait();
    finished_ = true;
    return status;
  }

 private:
  static void* tag() { return reinterpret_cast<void*>(1); }
  bool wait() {
    void* t;
    bool ok = false;
    if (!cq_.Next(&t, &ok)) return false;
    return ok;
  }

  grpc::GenericStub stub_;
  grpc::ClientContext ctx_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream_;
  grpc::ByteBuffer buf_;
  bool started_ = false;
  bool reading_ = false;
  bool finished_ = false;
};

std::string to_json(const pb::Message& m) {
  pb::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  std::string out;
  if (auto s = pb::util::MessageToJsonString(m, &out, o); !s.ok()) {
    spdlog::error("gateway: cannot print a {} as JSON: {}", m.GetTypeName(), s.ToString());
    return "{}";
  }
  return out;
}

// Parses `json` into `m`; an error message (protobuf's) if it is not the message's JSON.
std::optional<std::string> from_json(std::string_view json, pb::Message& m) {
  pb::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  auto s = pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()), &m, o);
  if (s.ok()) return std::nullopt;
  return std::string(s.message());
}

http::response json_ok(std::string body) {
  http::response out;
  out.headers = {{"Content-Type", "application/json"},
                 {"Grpc-Metadata-Content-Type", "application/grpc"}};
  out.body = std::move(body);
  return out;
}

std::string error_body(grpc::StatusCode code, std::string_view message) {
  const std::string m = http::json_quote(message);
  return "{\"error\":" + m + ",\"message\":" + m + ",\"code\":" + std::to_string(code) + "}";
}

// An error from the call: chunked, with the gRPC trailer, as grpc-gateway v1 sends it.
http::response call_error(const grpc::Status& st) {
  http::response out;
  out.status = http_status_of(st.error_code());
  out.headers = {{"Content-Type", "application/json"}, {"Trailer", "Grpc-Trailer-Content-Type"}};
  std::string body = error_body(st.error_code(), st.error_message());
  out.stream = [body](http::stream_writer& w) { w.write(body); };
  out.trailers = {{"Grpc-Trailer-Content-Type", "application/grpc"}};
  return out;
}

// An error before any call (the body did not parse): one plain JSON answer.
http::response request_error(grpc::StatusCode code, std::string_view message) {
  http::response out;
  out.status = http_status_of(code);
  out.headers = {{"Content-Type", "application/json"}};
  out.body = error_body(code, message);
  return out;
}

// grpc-gateway v1's stream error chunk.
std::string stream_error_line(const grpc::Status& st) {
  const int http = http_status_of(st.error_code());
  return "{\"error\":{\"grpc_code\":" + std::to_string(st.error_code()) +
         ",\"http_code\":" + std::to_string(http) +
         ",\"message\":" + http::json_quote(st.error_message()) +
         ",\"http_status\":" + http::json_quote(http::reason_phrase(http)) + "}}\n";
}

std::string result_line(const pb::Message& m) { return "{\"result\":" + to_json(m) + "}\n"; }

}  // namespace

gateway::gateway() {
  // Referencing one message of each file links it in and registers it with the pool (a static
  // library's unreferenced objects would otherwise be left out).
  (void)etcdserverpb::RangeRequest::descriptor();
  (void)v3lockpb::LockRequest::descriptor();
  (void)v3electionpb::CampaignRequest::descriptor();
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  pb::MessageFactory* factory = pb::MessageFactory::generated_factory();
  for (const auto& r : gateway_routes()) {
    const pb::MethodDescriptor* m = pool->FindMethodByName(r.method);
    if (m == nullptr) {
      spdlog::critical("gateway: no method {} in the descriptor pool", r.method);
      std::abort();
    }
    auto info = std::make_shared<route_info>();
    info->route = r;
    info->grpc_path = "/" + m->service()->full_name() + "/" + m->name();
    info->request = factory->GetPrototype(m->input_type());
    info->response = factory->GetPrototype(m->output_type());
    routes_.push_back(std::move(info));
  }
}

void gateway::set_channel(std::shared_ptr<grpc::Channel> channel) {
  std::lock_guard lock(mu_);
  channel_ = std::move(channel);
}

std::shared_ptr<grpc::Channel> gateway::channel() const {
  std::lock_guard lock(mu_);
  return channel_;
}

void gateway::install(http::router& router) const {
  router.handle("/v3/", [this](const http::request& r) { return handle(r); });
}

http::response gateway::handle(const http::request& r) const {
  const route_info* info = nullptr;
  for (const auto& ri : routes_) {
    if (ri->route.path == r.path) info = ri.get();
  }
  if (info == nullptr) return http::error_response(404, "Not Found");
  if (r.method != "POST") return http::error_response(405, "Method Not Allowed");
  auto ch = channel();
  if (!ch) return request_error(grpc::StatusCode::UNAVAILABLE, "etcdserver: not ready");

  const bool bidi = info->route.kind == rpc_kind::bidi_stream;
  // The request messages: every object of the body for a bidi stream, else the first (an
  // empty body is an empty request).
  std::vector<std::unique_ptr<pb::Message>> requests;
  auto objects = split_json_objects(r.body);
  const grpc::StatusCode bad_body =
      bidi ? grpc::StatusCode::UNKNOWN : grpc::StatusCode::INVALID_ARGUMENT;
  if (!objects) return request_error(bad_body, "the body is not a sequence of JSON objects");
  if (!bidi && objects->empty()) objects->push_back("{}");
  if (!bidi && objects->size() > 1) objects->resize(1);
  for (std::string_view o : *objects) {
    std::unique_ptr<pb::Message> m(info->request->New());
    if (auto e = from_json(o, *m)) return request_error(bad_body, *e);
    requests.push_back(std::move(m));
  }

  auto call = std::make_shared<generic_call>(ch, info->grpc_path, r);
  for (const auto& m : requests) {
    if (!call->write(*m)) break;  // the call ended; finish() says why
  }
  call->writes_done();
  std::shared_ptr<pb::Message> first(info->response->New());
  // A unary answer, or a stream's first message: waited for here, so that an error before it
  // gets its own HTTP status. A stream that stays silent for a while (a watch with nothing to
  // say, Observe without a leader) answers 200 and goes on waiting inside the stream, where a
  // client that leaves is noticed.
  const bool unary = info->route.kind == rpc_kind::unary;
  const auto got =
      call->read(*first, unary ? std::nullopt : std::optional<std::chrono::milliseconds>(1s));
  if (got == generic_call::got::end) {
    grpc::Status st = call->finish();
    if (st.ok()) return json_ok("");  // a stream that ended without a message
    return call_error(st);
  }
  if (unary) {
    grpc::Status st = call->finish();
    if (!st.ok()) return call_error(st);
    return json_ok(to_json(*first));
  }
  http::response out = json_ok("");
  const pb::Message* prototype = info->response;
  const bool have_first = got == generic_call::got::message;
  out.stream = [call, first, prototype, have_first](http::stream_writer& w) {
    if (have_first && !w.write(result_line(*first))) return;
    std::unique_ptr<pb::Message> next(prototype->New());
    bool gone = false;
    auto abandon = [&] { return gone = gone || w.wait_closed(0ms); };
    while (call->read(*next, std::nullopt, abandon) == generic_call::got::message) {
      if (!w.write(result_line(*next))) {
        gone = true;
        break;
      }
      next->Clear();
    }
    if (gone) return;  // the destructor cancels the call
    grpc::Status st = call->finish();
    if (!st.ok()) w.write(stream_error_line(st));
  };
  return out;
}

}  // namespace cairn::v3rpc
