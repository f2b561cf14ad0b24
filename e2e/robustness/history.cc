#include "robustness/history.h"

#include <google/protobuf/util/json_util.h>

#include <cstdio>

#include "base/json.h"

namespace cairn::robustness {

void history::add(operation op) {
  std::lock_guard lock(mu_);
  ops_.push_back(std::move(op));
}

void history::add(watch_record w) {
  std::lock_guard lock(mu_);
  watches_.push_back(std::move(w));
}

std::vector<operation> history::operations() const {
  std::lock_guard lock(mu_);
  return ops_;
}

std::vector<watch_record> history::watches() const {
  std::lock_guard lock(mu_);
  return watches_;
}

const char* to_string(op_kind k) {
  switch (k) {
    case op_kind::range:
      return "range";
    case op_kind::put:
      return "put";
    case op_kind::del:
      return "delete";
    case op_kind::txn:
      return "txn";
    case op_kind::lease_revoke:
      return "lease-revoke";
  }
  return "?";
}

const char* to_string(outcome o) {
  switch (o) {
    case outcome::ok:
      return "ok";
    case outcome::failed:
      return "failed";
    case outcome::unknown:
      return "unknown";
  }
  return "?";
}

std::string seconds(nanos t) {
  if (t == never) return "never";
  if (t == std::numeric_limits<nanos>::min()) return "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6fs", static_cast<double>(t) / 1e9);
  return buf;
}

namespace {

std::string json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opt;
  if (!google::protobuf::util::MessageToJsonString(m, &out, opt).ok()) return "null";
  return out.empty() ? "{}" : out;
}

// The first op of the txn, short: "k2=v-3-17", "k1..k9", "cas k3".
std::string target(const operation& op) {
  if (op.kind == op_kind::lease_revoke) return std::to_string(op.lease);
  if (op.kind == op_kind::txn) {
    std::string s = "if";
    for (const auto& c : op.txn.compare()) s += " " + c.key();
    return s;
  }
  if (op.txn.success().empty()) return "";
  const auto& q = op.txn.success(0);
  if (q.has_request_put()) {
    std::string s = q.request_put().key() + "=" + q.request_put().value();
    if (q.request_put().lease() != 0) s += " lease " + std::to_string(q.request_put().lease());
    return s;
  }
  const std::string& key =
      q.has_request_range() ? q.request_range().key() : q.request_delete_range().key();
  const std::string& end =
      q.has_request_range() ? q.request_range().range_end() : q.request_delete_range().range_end();
  return end.empty() ? key : key + ".." + (end == std::string(1, '\0') ? "" : end);
}

}  // namespace

std::string describe(const operation& op) {
  std::string s = "c" + std::to_string(op.client) + " " + to_string(op.kind);
  if (op.serializable) s += " (serializable)";
  s += " " + target(op) + " " + to_string(op.result);
  if (op.result == outcome::ok) {
    s += " rev " + std::to_string(op.revision);
    if (op.kind == op_kind::txn) s += op.txn_resp.succeeded() ? " succeeded" : " failed-compare";
  } else if (!op.error.empty()) {
    s += " (" + op.error + ")";
  }
  s += " [" + seconds(op.call) + ", " + seconds(op.ret) + "]";
  if (!op.member.empty()) s += " @" + op.member;
  return s;
}

std::string history::to_json() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const operation& op : ops_) {
    out += "{\"client\":" + std::to_string(op.client) + ",\"kind\":\"" + to_string(op.kind) +
           "\",\"call\":" + std::to_string(op.call) +
           ",\"return\":" + (op.ret == never ? std::string("null") : std::to_string(op.ret)) +
           ",\"outcome\":\"" + to_string(op.result) + "\",\"error\":" + base::json_quote(op.error) +
           ",\"member\":" + base::json_quote(op.member) +
           ",\"serializable\":" + (op.serializable ? "true" : "false") +
           ",\"lease\":" + std::to_string(op.lease) + ",\"request\":" + json(op.txn) +
           ",\"response\":" + json(op.txn_resp) + "}\n";
  }
  for (const watch_record& w : watches_) {
    out += "{\"watch\":" + json(w.request) + ",\"client\":" + std::to_string(w.client) +
           ",\"member\":" + base::json_quote(w.member) + ",\"end\":" + base::json_quote(w.end) +
           ",\"responses\":[";
    bool first = true;
    for (const watch_response& r : w.responses) {
      if (!first) out += ",";
      first = false;
      out += "{\"at\":" + std::to_string(r.at) +
             ",\"revision\":" + std::to_string(r.header_revision) +
             ",\"created\":" + (r.created ? "true" : "false") +
             ",\"canceled\":" + (r.canceled ? "true" : "false") +
             ",\"compact_revision\":" + std::to_string(r.compact_revision) + ",\"events\":[";
      for (size_t i = 0; i < r.events.size(); ++i) out += (i ? "," : "") + json(r.events[i]);
      out += "]}";
    }
    out += "]}\n";
  }
  return out;
}

}  // namespace cairn::robustness
