#include "robustness/model.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>

#include <stdexcept>

namespace cairn::robustness {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::RequestOp;
using etcdserverpb::ResponseOp;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;
using mvccpb::Event;
using mvccpb::KeyValue;

const model::version* model::at(const std::string& key, std::int64_t rev) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return nullptr;
  const auto& versions = it->second;  // by revision
  auto after = std::upper_bound(versions.begin(), versions.end(), rev,
                                [](std::int64_t r, const version& v) { return r < v.rev; });
  return after == versions.begin() ? nullptr : &*std::prev(after);
}

template <typename F>
void model::for_range(const std::string& key, const std::string& end, std::int64_t rev,
                      F&& f) const {
  auto visit = [&](const std::string& k, const std::vector<version>&) {
    if (const version* v = at(k, rev); v != nullptr && v->live) f(v->kv);
  };
  if (end.empty()) {
    if (auto it = keys_.find(key); it != keys_.end()) visit(it->first, it->second);
    return;
  }
  const bool to_the_end = end == std::string(1, '\0');
  for (auto it = keys_.lower_bound(key); it != keys_.end(); ++it) {
    if (!to_the_end && it->first >= end) break;
    visit(it->first, it->second);
  }
}

const KeyValue* model::get(const std::string& key, std::int64_t rev) const {
  const version* v = at(key, rev == 0 ? rev_ : rev);
  return v != nullptr && v->live ? &v->kv : nullptr;
}

RangeResponse model::range(const RangeRequest& req, std::int64_t rev) const {
  RangeResponse resp;
  std::int64_t count = 0;
  for_range(req.key(), req.range_end(), rev == 0 ? rev_ : rev, [&](const KeyValue& kv) {
    ++count;
    if (req.count_only()) return;
    if (req.limit() > 0 && resp.kvs_size() > req.limit()) return;  // one past the limit: `more`
    KeyValue* out = resp.add_kvs();
    *out = kv;
    if (req.keys_only()) out->clear_value();
  });
  if (req.limit() > 0 && resp.kvs_size() > req.limit()) {
    resp.mutable_kvs()->RemoveLast();
    resp.set_more(true);
  }
  resp.set_count(count);
  return resp;
}

namespace {

bool holds(Compare::CompareResult result, int cmp) {
  switch (result) {
    case Compare::EQUAL:
      return cmp == 0;
    case Compare::GREATER:
      return cmp > 0;
    case Compare::LESS:
      return cmp < 0;
    case Compare::NOT_EQUAL:
      return cmp != 0;
    default:
      return false;
  }
}

int sign(std::int64_t a, std::int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); }

bool compare_kv(const Compare& c, const KeyValue& kv) {
  switch (c.target()) {
    case Compare::VALUE:
      return holds(c.result(), kv.value().compare(c.value()));
    case Compare::VERSION:
      return holds(c.result(), sign(kv.version(), c.version()));
    case Compare::CREATE:
      return holds(c.result(), sign(kv.create_revision(), c.create_revision()));
    case Compare::MOD:
      return holds(c.result(), sign(kv.mod_revision(), c.mod_revision()));
    case Compare::LEASE:
      return holds(c.result(), sign(kv.lease(), c.lease()));
    default:
      return false;
  }
}

void clear_headers(TxnResponse* resp) {
  resp->clear_header();
  for (ResponseOp& op : *resp->mutable_responses()) {
    if (op.has_response_range()) op.mutable_response_range()->clear_header();
    if (op.has_response_put()) op.mutable_response_put()->clear_header();
    if (op.has_response_delete_range()) op.mutable_response_delete_range()->clear_header();
    if (op.has_response_txn()) clear_headers(op.mutable_response_txn());
  }
}

}  // namespace

bool model::compare(const Compare& c, std::int64_t rev) const {
  bool any = false, all = true;
  for_range(c.key(), c.range_end(), rev, [&](const KeyValue& kv) {
    any = true;
    if (!compare_kv(c, kv)) all = false;
  });
  if (any) return all;
  if (c.target() == Compare::VALUE) return false;
  return compare_kv(c, KeyValue{});
}

void model::write(const std::string& key, bool live, KeyValue kv, std::vector<Event>* events) {
  const std::int64_t r = rev_ + 1;
  const version* prev = at(key, r);
  Event ev;
  ev.set_type(live ? Event::PUT : Event::DELETE);
  if (prev != nullptr && prev->live) *ev.mutable_prev_kv() = prev->kv;
  *ev.mutable_kv() = kv;
  events->push_back(std::move(ev));
  auto& versions = keys_[key];
  if (!versions.empty() && versions.back().rev == r) {
    versions.back() = version{r, live, std::move(kv)};
  } else {
    versions.push_back(version{r, live, std::move(kv)});
  }
}

void model::apply_op(const RequestOp& op, ResponseOp* out, std::vector<Event>* events) {
  const std::int64_t r = rev_ + 1;  // reads inside the txn see its own writes
  if (op.has_request_range()) {
    const RangeRequest& req = op.request_range();
    *out->mutable_response_range() = range(req, req.revision() > 0 ? req.revision() : r);
  } else if (op.has_request_put()) {
    const auto& put = op.request_put();
    auto* resp = out->mutable_response_put();
    const version* prev = at(put.key(), r);
    KeyValue kv;
    kv.set_key(put.key());
    kv.set_value(put.value());
    kv.set_lease(put.lease());
    kv.set_mod_revision(r);
    if (prev != nullptr && prev->live) {
      if (put.prev_kv()) *resp->mutable_prev_kv() = prev->kv;
      kv.set_create_revision(prev->kv.create_revision());
      kv.set_version(prev->kv.version() + 1);
    } else {
      kv.set_create_revision(r);
      kv.set_version(1);
    }
    write(put.key(), true, std::move(kv), events);
  } else if (op.has_request_delete_range()) {
    const auto& del = op.request_delete_range();
    auto* resp = out->mutable_response_delete_range();
    std::vector<KeyValue> doomed;
    for_range(del.key(), del.range_end(), r, [&](const KeyValue& kv) { doomed.push_back(kv); });
    for (KeyValue& kv : doomed) {
      if (del.prev_kv()) *resp->add_prev_kvs() = kv;
      KeyValue tomb;
      tomb.set_key(kv.key());
      tomb.set_mod_revision(r);
      write(kv.key(), false, std::move(tomb), events);
    }
    resp->set_deleted(static_cast<std::int64_t>(doomed.size()));
  } else if (op.has_request_txn()) {
    const TxnRequest& txn = op.request_txn();
    TxnResponse* resp = out->mutable_response_txn();
    bool ok = true;
    for (const Compare& c : txn.compare()) ok = ok && compare(c, r);
    resp->set_succeeded(ok);
    for (const RequestOp& sub : ok ? txn.success() : txn.failure())
      apply_op(sub, resp->add_responses(), events);
  }
}

void model::finish(std::vector<Event>& events) {
  if (events.empty()) return;
  ++rev_;
  events_.push_back(events);
}

model::result model::apply(const TxnRequest& txn) {
  result res;
  bool ok = true;
  for (const Compare& c : txn.compare()) ok = ok && compare(c, rev_);
  res.response.set_succeeded(ok);
  for (const RequestOp& op : ok ? txn.success() : txn.failure())
    apply_op(op, res.response.add_responses(), &res.events);
  finish(res.events);
  return res;
}

model::result model::revoke(std::int64_t lease) {
  result res;
  std::vector<std::string> doomed;  // keys_ is ordered: key order, as etcd's lessor sorts them
  for (const auto& [key, versions] : keys_) {
    const version& v = versions.back();
    if (v.live && v.kv.lease() == lease) doomed.push_back(key);
  }
  for (const std::string& key : doomed) {
    KeyValue tomb;
    tomb.set_key(key);
    tomb.set_mod_revision(rev_ + 1);
    write(key, false, std::move(tomb), &res.events);
  }
  finish(res.events);
  return res;
}

void model::pop() {
  if (rev_ <= base_) throw std::logic_error("model::pop below the base revision");
  for (const Event& ev : events_.back()) {
    auto it = keys_.find(ev.kv().key());
    if (it != keys_.end() && !it->second.empty() && it->second.back().rev == rev_) {
      it->second.pop_back();
      if (it->second.empty()) keys_.erase(it);
    }
  }
  events_.pop_back();
  --rev_;
}

const std::vector<Event>& model::events(std::int64_t rev) const {
  return events_.at(static_cast<size_t>(rev - base_ - 1));
}

TxnResponse without_headers(TxnResponse resp) {
  clear_headers(&resp);
  return resp;
}

bool same_response(const TxnResponse& a, const TxnResponse& b, std::string* difference) {
  google::protobuf::util::MessageDifferencer diff;
  std::string report;
  if (difference != nullptr) diff.ReportDifferencesToString(&report);
  const bool same = diff.Compare(without_headers(a), without_headers(b));
  if (difference != nullptr) *difference = report;
  return same;
}

}  // namespace cairn::robustness
