#include "ctl/display.h"

#include <absl/strings/escaping.h>
#include <google/protobuf/descriptor.h>

#include <iostream>

#include "fmt/format.h"

namespace cairn::ctl {

namespace pb = etcdserverpb;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

namespace {

// Go's base64.StdEncoding, as encoding/json writes []byte.
std::string base64(const std::string& in) { return absl::Base64Escape(in); }

// The length of the valid UTF-8 sequence at s[i] and its code point, or 0 when it is not one.
std::size_t utf8_at(const std::string& s, std::size_t i, char32_t& cp) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned c = b(i);
  std::size_t n = 0;
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (b(i + k) & 0x3f);
  }
  const char32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// Go's encoding/json string (HTML-safe, as json.Marshal).
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t n = utf8_at(s, i, cp);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (cp == '"' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == '<' || cp == '>' || cp == '&' || cp == 0x2028 || cp == 0x2029) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
    } else {
      out.append(s, i, n);
    }
    i += n;
  }
  return out + "\"";
}

std::string camel(const std::string& snake) {
  std::string out;
  bool up = true;
  for (char c : snake) {
    if (c == '_') {
      up = true;
    } else {
      out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      up = false;
    }
  }
  return out;
}

void json_value(const Message& m, const FieldDescriptor* f, int index, std::string& out);

void json_message(const Message& m, std::string& out) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  out += '{';
  bool first = true;
  auto key = [&](const std::string& name) {
    if (!first) out += ',';
    first = false;
    out += '"' + name + "\":";
  };
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (const auto* o = f->real_containing_oneof()) {
      // Go holds a oneof in one interface field, named after the oneof and never omitted,
      // whose value is a wrapper struct holding the chosen field.
      if (o->field(0) != f) continue;
      key(camel(o->name()));
      const auto* set = r->GetOneofFieldDescriptor(m, o);
      if (set == nullptr) {
        out += "null";
        continue;
      }
      // The wrapper's one field has no json tag: Go's field name, never omitted.
      out += "{\"" + camel(set->name()) + "\":";
      json_value(m, set, -1, out);
      out += '}';
      continue;
    }
    if (f->is_repeated()) {
      const int n = r->FieldSize(m, f);
      if (n == 0) continue;
      key(f->name());
      out += '[';
      for (int k = 0; k < n; ++k) {
        if (k) out += ',';
        json_value(m, f, k, out);
      }
      out += ']';
      continue;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!r->HasField(m, f)) continue;
    } else {
      std::string v;
      json_value(m, f, -1, v);
#ifndef CAIRN_PLANTED_BUG_CTL_JSON_KEEPS_ZEROS
      if (v == "0" || v == "false" || v == "\"\"") continue;
#endif
    }
    key(f->name());
    json_value(m, f, -1, out);
  }
  out += '}';
}

void json_value(const Message& m, const FieldDescriptor* f, int index, std::string& out) {
  const auto* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      out += std::to_string(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      out += std::to_string(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      out += std::to_string(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      out += std::to_string(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out += (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      out += std::to_string(rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f));
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string s = rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        out += '"' + base64(s) + '"';
      } else {
        out += json_string(s);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      json_message(rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f), out);
      break;
    default:
      out += "null";
  }
}

// The fields of a response header, flattened as Go flattens an embedded *pb.ResponseHeader.
std::string flat_header(const pb::ResponseHeader& h) {
  std::string s = go_json(h);
  return s.size() > 2 ? s.substr(1, s.size() - 2) + "," : "";
}

void fields_header(const pb::ResponseHeader& h) {
  std::cout << fmt::format(
      "\"ClusterID\" : {}\n\"MemberID\" : {}\n\"Revision\" : {}\n"
      "\"RaftTerm\" : {}\n",
      h.cluster_id(), h.member_id(), h.revision(), h.raft_term());
}

void fields_kv(const std::string& pfx, const mvccpb::KeyValue& kv) {
  std::cout << fmt::format(
      "\"{0}Key\" : {1}\n\"{0}CreateRevision\" : {2}\n\"{0}ModRevision\" : {3}\n"
      "\"{0}Version\" : {4}\n\"{0}Value\" : {5}\n\"{0}Lease\" : {6}\n",
      pfx, go_quote(kv.key()), kv.create_revision(), kv.mod_revision(), kv.version(),
      go_quote(kv.value()), kv.lease());
}

void print_protobuf(const Message& m) { std::cout << m.SerializeAsString(); }

}  // namespace

std::string go_json(const Message& m) {
  std::string out;
  json_message(m, out);
  return out;
}

std::string go_quote(const std::string& s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    const std::size_t n = utf8_at(s, i, cp);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    switch (cp) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (cp < 0x20 || cp == 0x7f) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned>(cp));
        } else if ((cp >= 0x80 && cp < 0xa0) || cp == 0xad) {
          // Not printable for Go's unicode.IsPrint (C1 controls, the soft hyphen).
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
        } else {
          out.append(s, i, n);
        }
    }
    i += n;
  }
  return out + "\"";
}

std::string display::bytes(const std::string& b) const {
  if (!hex_) return b;
  std::string out;
  for (unsigned char c : b) out += fmt::format("\\x{:02x}", c);
  return out;
}

void display::kv(const mvccpb::KeyValue& kv) const {
  if (!value_only_) std::cout << bytes(kv.key()) << "\n";
  std::cout << bytes(kv.value()) << "\n";
}

void display::get(const pb::RangeResponse& r) const {
  if (format_ == "json") {
    std::cout << go_json(r) << "\n";
  } else if (format_ == "fields") {
    fields_header(r.header());
    for (const auto& x : r.kvs()) fields_kv("", x);
    std::cout << fmt::format("\"More\" : {}\n\"Count\" : {}\n", r.more(), r.count());
  } else if (format_ == "protobuf") {
    print_protobuf(r);
  } else {
    for (const auto& x : r.kvs()) kv(x);
  }
}

void display::put(const pb::PutResponse& r) const {
  if (format_ == "json") {
    std::cout << go_json(r) << "\n";
  } else if (format_ == "fields") {
    fields_header(r.header());
    if (r.has_prev_kv()) fields_kv("Prev", r.prev_kv());
  } else if (format_ == "protobuf") {
    print_protobuf(r);
  } else {
    std::cout << "OK\n";
    if (r.has_prev_kv()) kv(r.prev_kv());
  }
}

void display::del(const pb::DeleteRangeResponse& r) const {
  if (format_ == "json") {
    std::cout << go_json(r) << "\n";
  } else if (format_ == "fields") {
    fields_header(r.header());
    std::cout << fmt::format("\"Deleted\" : {}\n", r.deleted());
    for (const auto& x : r.prev_kvs()) fields_kv("Prev", x);
  } else if (format_ == "protobuf") {
    print_protobuf(r);
  } else {
    std::cout << r.deleted() << "\n";
    for (const auto& x : r.prev_kvs()) kv(x);
  }
}

void display::txn(const pb::TxnResponse& r) const {
  if (format_ == "json") {
    std::cout << go_json(r) << "\n";
    return;
  }
  if (format_ == "protobuf") {
    print_protobuf(r);
    return;
  }
  const bool fields = format_ == "fields";
  if (fields) {
    fields_header(r.header());
    std::cout << fmt::format("\"Succeeded\" : {}\n", r.succeeded());
  } else {
    std::cout << (r.succeeded() ? "SUCCESS\n" : "FAILURE\n");
  }
  for (const auto& op : r.responses()) {
    if (!fields) std::cout << "\n";
    if (op.has_response_range()) get(op.response_range());
    if (op.has_response_put()) put(op.response_put());
    if (op.has_response_delete_range()) del(op.response_delete_range());
    if (op.has_response_txn()) txn(op.response_txn());
  }
}

void display::watch(const pb::WatchResponse& r) const {
  if (format_ == "json") {
    // clientv3.WatchResponse: exported fields without tags, none omitted.
    // clientv3 always makes the events slice: [] rather than null.
    std::string events = "[";
    for (int i = 0; i < r.events_size(); ++i) events += (i ? "," : "") + go_json(r.events(i));
    events += "]";
    std::cout << fmt::format(
        "{{\"Header\":{},\"Events\":{},\"CompactRevision\":{},\"Canceled\":{},\"Created\":{}}}\n",
        go_json(r.header()), events, r.compact_revision(), r.canceled(), r.created());
  } else if (format_ == "fields") {
    fields_header(r.header());
    for (const auto& e : r.events()) {
      std::cout << "\"Type\" : " << mvccpb::Event::EventType_Name(e.type()) << "\n";
      if (e.has_prev_kv()) fields_kv("Prev", e.prev_kv());
      fields_kv("", e.kv());
    }
  } else if (format_ == "protobuf") {
    print_protobuf(r);
  } else {
    for (const auto& e : r.events()) {
      std::cout << mvccpb::Event::EventType_Name(e.type()) << "\n";
      if (e.has_prev_kv()) kv(e.prev_kv());
      kv(e.kv());
    }
  }
}

void display::grant(const pb::LeaseGrantResponse& r) const {
  if (format_ == "json") {
    // clientv3.LeaseGrantResponse: the header embedded, then ID, TTL and Error.
    std::cout << fmt::format("{{{}\"ID\":{},\"TTL\":{},\"Error\":{}}}\n", flat_header(r.header()),
                             r.id(), r.ttl(), json_string(r.error()));
  } else if (format_ == "fields") {
    fields_header(r.header());
    std::cout << fmt::format("\"ID\" : {}\n\"TTL\" : {}\n", r.id(), r.ttl());
  } else if (format_ == "protobuf") {
    print_protobuf(r.header());  // clientv3 wraps it: only the header marshals
  } else {
    std::cout << fmt::format("lease {:016x} granted with TTL({}s)\n", r.id(), r.ttl());
  }
}

void display::revoke(std::int64_t id, const pb::LeaseRevokeResponse& r) const {
  if (format_ == "json") {
    std::cout << go_json(r) << "\n";
  } else if (format_ == "fields") {
    fields_header(r.header());
  } else if (format_ == "protobuf") {
    print_protobuf(r);
  } else {
    std::cout << fmt::format("lease {:016x} revoked\n", id);
  }
}

void display::keep_alive(const pb::LeaseKeepAliveResponse& r) const {
  if (format_ == "json") {
    std::cout << fmt::format("{{{}\"ID\":{},\"TTL\":{}}}\n", flat_header(r.header()), r.id(),
                             r.ttl());
  } else if (format_ == "fields") {
    fields_header(r.header());
    std::cout << fmt::format("\"ID\" : {}\n\"TTL\" : {}\n", r.id(), r.ttl());
  } else if (format_ == "protobuf") {
    print_protobuf(r.header());  // clientv3 wraps it: only the header marshals
  } else {
    std::cout << fmt::format("lease {:016x} keepalived with TTL({})\n", r.id(), r.ttl());
  }
}

void display::time_to_live(const pb::LeaseTimeToLiveResponse& r, bool keys) const {
  if (format_ == "json") {
    std::string ks = "null";
    if (r.keys_size() > 0) {
      ks = "[";
      for (int i = 0; i < r.keys_size(); ++i) ks += (i ? ",\"" : "\"") + base64(r.keys(i)) + "\"";
      ks += "]";
    }
    std::cout << fmt::format("{{{}\"id\":{},\"ttl\":{},\"granted-ttl\":{},\"keys\":{}}}\n",
                             flat_header(r.header()), r.id(), r.ttl(), r.grantedttl(), ks);
  } else if (format_ == "fields") {
    fields_header(r.header());
    std::cout << fmt::format("\"ID\" : {}\n\"TTL\" : {}\n\"GrantedTTL\" : {}\n", r.id(), r.ttl(),
                             r.grantedttl());
    for (const auto& k : r.keys()) std::cout << "\"Key\" : " << go_quote(k) << "\n";
  } else if (format_ == "protobuf") {
    print_protobuf(r.header());  // clientv3 wraps it: only the header marshals
  } else {
    if (r.grantedttl() == 0 && r.ttl() == -1) {
      std::cout << fmt::format("lease {:016x} already expired\n", r.id());
      return;
    }
    std::string txt = fmt::format("lease {:016x} granted with TTL({}s), remaining({}s)", r.id(),
                                  r.grantedttl(), r.ttl());
    if (keys) {
      std::string ks;
      for (int i = 0; i < r.keys_size(); ++i) ks += (i ? " " : "") + r.keys(i);
      txt += ", attached keys([" + ks + "])";
    }
    std::cout << txt << "\n";
  }
}

void display::leases(const pb::LeaseLeasesResponse& r) const {
  if (format_ == "json") {
    std::string ls;
    for (int i = 0; i < r.leases_size(); ++i) {
      ls += fmt::format("{}{{\"id\":{}}}", i ? "," : "", r.leases(i).id());
    }
    std::cout << fmt::format("{{{}\"leases\":{}}}\n", flat_header(r.header()),
                             "[" + ls + "]");  // clientv3 makes the slice: never null
  } else if (format_ == "fields") {
    fields_header(r.header());
    for (const auto& l : r.leases()) std::cout << "\"ID\" : " << l.id() << "\n";
  } else if (format_ == "protobuf") {
    print_protobuf(r.header());  // clientv3 wraps it: only the header marshals
  } else {
    std::cout << fmt::format("found {} leases\n", r.leases_size());
    for (const auto& l : r.leases()) std::cout << fmt::format("{:016x}\n", l.id());
  }
}

}  // namespace cairn::ctl
