#include "v3rpc/grpc_stats.h"

#include <google/protobuf/descriptor.h>

#include "etcdserverpb/rpc.pb.h"
#include "v3electionpb/v3election.pb.h"
#include "v3lockpb/v3lock.pb.h"

namespace cairn::v3rpc {

grpc_stats::grpc_stats(const std::vector<std::string>& services) {
  // Link the generated files in, so that the pool knows their services.
  (void)etcdserverpb::RangeRequest::descriptor();
  (void)v3lockpb::LockRequest::descriptor();
  (void)v3electionpb::CampaignRequest::descriptor();
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const auto& name : services) {
    const auto* svc = pool->FindServiceByName(name);
    if (svc == nullptr) continue;
    for (int i = 0; i < svc->method_count(); ++i) {
      const auto* m = svc->method(i);
      auto s = std::make_unique<method_stats>();
      s->service = svc->full_name();
      s->method = m->name();
      if (m->client_streaming() && m->server_streaming()) {
        s->type = "bidi_stream";
      } else if (m->client_streaming()) {
        s->type = "client_stream";
      } else if (m->server_streaming()) {
        s->type = "server_stream";
      } else {
        s->type = "unary";
      }
      by_path_["/" + s->service + "/" + s->method] = s.get();
      methods_.push_back(std::move(s));
    }
  }
}

method_stats* grpc_stats::find(const std::string& path) {
  auto it = by_path_.find(path);
  return it == by_path_.end() ? nullptr : it->second;
}

void grpc_stats::count_client_request(const std::string& type, const std::string& api_version) {
  std::lock_guard lock(mu_);
  ++client_requests_[{type, api_version.empty() ? "unknown" : api_version}];
}

std::map<std::pair<std::string, std::string>, std::uint64_t> grpc_stats::client_requests() const {
  std::lock_guard lock(mu_);
  return client_requests_;
}

}  // namespace cairn::v3rpc
