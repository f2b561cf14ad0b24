#include "v3rpc/grpc_metrics.h"

#include <google/protobuf/message.h>

#include "base/log.h"

#include <chrono>
#include <string>

namespace cairn::v3rpc {
namespace {

using grpc::experimental::InterceptionHookPoints;

class interceptor final : public grpc::experimental::Interceptor {
 public:
  interceptor(grpc_stats& stats, method_stats* method, bool stream)
      : stats_(stats), method_(method), stream_(stream) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      start_ = std::chrono::steady_clock::now();
      method_->started.fetch_add(1, std::memory_order_relaxed);
      std::string version;
      if (auto* md = m->GetRecvInitialMetadata()) {
        auto it = md->find("client-api-version");
        if (it != md->end()) version.assign(it->second.data(), it->second.size());
      }
      stats_.count_client_request(stream_ ? "stream" : "unary", version);
    }
    if (m->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      if (void* msg = m->GetRecvMessage()) {
        method_->msg_received.fetch_add(1, std::memory_order_relaxed);
        const auto n = static_cast<const google::protobuf::Message*>(msg)->ByteSizeLong();
        stats_.received_bytes.fetch_add(n, std::memory_order_relaxed);
        request_bytes_ += n;
      }
    }
    if (m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      method_->msg_sent.fetch_add(1, std::memory_order_relaxed);
      if (const void* msg = m->GetSendMessage()) {
        const auto n = static_cast<const google::protobuf::Message*>(msg)->ByteSizeLong();
        stats_.sent_bytes.fetch_add(n, std::memory_order_relaxed);
        response_bytes_ += n;
      }
    }
    if (m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const auto code = static_cast<std::size_t>(m->GetSendStatus().error_code());
      if (code < method_->handled.size()) {
        method_->handled[code].fetch_add(1, std::memory_order_relaxed);
      }
      const auto took = std::chrono::steady_clock::now() - start_;
      method_->handling.observe(took);
      // etcd's warning for a unary request slower than 300 ms: its shape, never its content.
      if (!stream_ && took > std::chrono::milliseconds(300)) {
        CAIRN_LOG(warn, "request stats", {"took", base::go_duration(took)},
                  {"expected-duration", "300ms"},
                  {"method", "/" + method_->service + "/" + method_->method},
                  {"code", grpc_code_names[code < grpc_code_names.size() ? code : 2]},
                  {"request size", request_bytes_}, {"response size", response_bytes_});
      }
    }
    m->Proceed();
  }

 private:
  grpc_stats& stats_;
  method_stats* method_;
  bool stream_;
  std::size_t request_bytes_ = 0;
  std::size_t response_bytes_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

class factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit factory(grpc_stats& stats) : stats_(stats) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    method_stats* m = stats_.find(info->method());
    if (m == nullptr) return nullptr;  // not one of ours (the fallback, health)
    const bool stream = info->type() != grpc::experimental::ServerRpcInfo::Type::UNARY;
    return new interceptor(stats_, m, stream);
  }

 private:
  grpc_stats& stats_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> grpc_stats_interceptor(
    grpc_stats& stats) {
  return std::make_unique<factory>(stats);
}

}  // namespace cairn::v3rpc
