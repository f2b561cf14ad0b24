#include "v3rpc/lock_election.h"

#include "v3rpc/errors.h"
#include "v3rpc/recipes.h"
#include "v3rpc/services.h"

namespace cairn::v3rpc {
namespace {

std::optional<grpc::Status> refuse(const grpc::ServerContext* ctx, const etcdserver::server& node) {
  if (auto e = admit(ctx, node)) {
    return to_grpc_status(*e);
  }
  return std::nullopt;
}

// The end of the range of keys that start with `prefix` ("\0": no end).
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

// etcd's lock and election servers call the KV API as the caller: the keys under `name/`
// (or the one key given) need read, and write unless `read_only`. Refused with the KV error's
// text and code Unknown, as etcd's embedded client hands it back.
std::optional<grpc::Status> refuse_keys(const grpc::ServerContext* ctx, etcdserver::server& node,
                                        const std::string& key, bool prefix, bool read_only) {
  auto who = caller(ctx, node);
  if (!who)
    return grpc::Status(grpc::StatusCode::UNKNOWN, to_grpc_status(who.error()).error_message());
  const std::string from = prefix ? key + "/" : key;
  const std::string end = prefix ? prefix_end(from) : std::string();
  for (auto type : {auth::perm_type::read, auth::perm_type::write}) {
    if (read_only && type == auth::perm_type::write) break;
    if (auto ok = node.auth().check(*who, from, end, type); !ok) {
      return grpc::Status(grpc::StatusCode::UNKNOWN, to_grpc_status(ok.error()).error_message());
    }
  }
  return std::nullopt;
}

recipes::cancelled_fn cancelled_of(grpc::ServerContext* ctx) {
  return [ctx] { return ctx->IsCancelled(); };
}

grpc::Status missing_leader_key() {
  return grpc::Status(grpc::StatusCode::UNKNOWN, "\"leader\" field must be provided");
}

}  // namespace

grpc::Status lock_service::Lock(grpc::ServerContext* ctx, const v3lockpb::LockRequest* req,
                                v3lockpb::LockResponse* resp) {
  if (auto s = refuse(ctx, node_)) return *s;
  if (auto s = refuse_keys(ctx, node_, req->name(), true, false)) return *s;
  auto h = recipes::lock(node_, req->name(), req->lease(), cancelled_of(ctx));
  if (!h) return h.error();
  fill_header(node_, h->revision, resp->mutable_header());
  resp->set_key(h->key);
  return grpc::Status::OK;
}

grpc::Status lock_service::Unlock(grpc::ServerContext* ctx, const v3lockpb::UnlockRequest* req,
                                  v3lockpb::UnlockResponse* resp) {
  if (auto s = refuse(ctx, node_)) return *s;
  if (req->key().empty()) {
    return grpc::Status(grpc::StatusCode::UNKNOWN,
                        to_grpc_status(base::errc::empty_key).error_message());
  }
  if (auto s = refuse_keys(ctx, node_, req->key(), false, false)) return *s;
  auto r = recipes::unlock(node_, req->key());
  if (!r) return r.error();
  fill_header(node_, *r, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status election_service::Campaign(grpc::ServerContext* ctx,
                                        const v3electionpb::CampaignRequest* req,
                                        v3electionpb::CampaignResponse* resp) {
  if (auto s = refuse(ctx, node_)) return *s;
  if (auto s = refuse_keys(ctx, node_, req->name(), true, false)) return *s;
  auto h = recipes::campaign(node_, req->name(), req->lease(), req->value(), cancelled_of(ctx));
  if (!h) return h.error();
  fill_header(node_, h->revision, resp->mutable_header());
  auto* l = resp->mutable_leader();
  l->set_name(req->name());
  l->set_key(h->key);
  l->set_rev(h->create_revision);
  l->set_lease(h->lease);
  return grpc::Status::OK;
}

grpc::Status election_service::Proclaim(grpc::ServerContext* ctx,
                                        const v3electionpb::ProclaimRequest* req,
                                        v3electionpb::ProclaimResponse* resp) {
  if (auto s = refuse(ctx, node_)) return *s;
  if (!req->has_leader()) return missing_leader_key();
  const auto& l = req->leader();
  if (auto s = refuse_keys(ctx, node_, l.key(), false, false)) return *s;
  auto r = recipes::proclaim(node_, l.key(), l.rev(), l.lease(), req->value());
  if (!r) return r.error();
  fill_header(node_, *r, resp->mutable_header());
  return grpc::Status::OK;
}

grpc::Status election_service::Leader(grpc::ServerContext* ctx,
                                      const v3electionpb::LeaderRequest* req,
                                      v3electionpb::LeaderResponse* resp) {
  if (auto s = refuse(ctx, node_)) return *s;
  if (auto s = refuse_keys(ctx, node_, req->name(), true, true)) return *s;
  auto r = recipes::leader(node_, req->name());
  if (!r) return r.error();
  fill_header(node_, r->revision, resp->mutable_header());
  to_wire(r->kv, resp->mutable_kv());
  return grpc::Status::OK;
}

grpc::Status election_service::Observe(grpc::ServerContext* ctx,
                                       const v3electionpb::LeaderRequest* req,
                                       grpc::ServerWriter<v3electionpb::LeaderResponse>* writer) {
  if (auto s = refuse(ctx, node_)) return *s;
  if (auto s = refuse_keys(ctx, node_, req->name(), true, true)) return *s;
  return recipes::observe(
      node_, req->name(),
      [&](const recipes::leader_state& st) {
        v3electionpb::LeaderResponse resp;
        fill_header(node_, st.revision, resp.mutable_header());
        to_wire(st.kv, resp.mutable_kv());
        return writer->Write(resp);
      },
      cancelled_of(ctx));
}

grpc::Status election_service::Resign(grpc::ServerContext* ctx,
                                      const v3electionpb::ResignRequest* req,
                                      v3electionpb::ResignResponse* resp) {
  if (auto s = refuse(ctx, node_)) return *s;
  if (!req->has_leader()) return missing_leader_key();
  if (auto s = refuse_keys(ctx, node_, req->leader().key(), false, false)) return *s;
  auto r = recipes::resign(node_, req->leader().key(), req->leader().rev());
  if (!r) return r.error();
  fill_header(node_, *r, resp->mutable_header());
  return grpc::Status::OK;
}

}  // namespace cairn::v3rpc
