// The request encoding (version 1). Integers are little-endian and fixed width; a string is a
// u32 length then its bytes; a bool is one byte 0/1; enums are one byte.
//
//   request      := u8 version (= 1) | u64 id | u8 kind | body
//                 | u8 version (= 2) | u64 id | user | u64 auth_revision | u8 kind | body
//                   (version 2 when the request carries a user; version 1 otherwise)
//   kind 1 put   := key | value | i64 lease | bool prev_kv | bool ignore_value | bool ignore_lease
//   kind 2 del   := key | range_end | bool prev_kv
//   kind 3 txn   := u32 n | n × compare | u32 n | n × op (success) | u32 n | n × op (failure)
//     compare    := key | range_end | u8 target | u8 result | i64 number | value
//     op         := u8 0 range | u8 1 put | u8 2 del | u8 3 txn, then that request's body
//     range body := key | range_end | i64 limit | i64 revision | u8 order | u8 target |
//                   bool keys_only | bool count_only | i64 min_mod | i64 max_mod |
//                   i64 min_create | i64 max_create
//   kind 4 compact := i64 revision | bool physical
//   kind 5 alarm   := u8 action | u64 member_id | u8 alarm type
//   kind 6 lease grant      := i64 id | i64 ttl
//   kind 7 lease revoke     := i64 id
//   kind 8 lease checkpoint := u32 n | n × (i64 id | i64 remaining_ttl)
//   kind 9 member attributes := u64 member_id | name | u32 n | n × client url
//   kind 10 auth := u8 op | name | role | secret | bool no_password | u8 perm_type | key |
//                   range_end
//   kind 11 v2 := method | path | value | bool dir | u8 prev_exist (0 unset, 1 false, 2 true) |
//                 prev_value | u64 prev_index | bool recursive | bool sorted | bool refresh |
//                 i64 expiration | i64 time
//   (kinds 6-9 were added without a version change: entries written before them decode as
//   before, and an older build refuses the new kinds instead of misreading them)
//
// Decoding rejects trailing bytes, short input and out-of-range enum values. Nesting depth of
// txns is bounded (64) so hostile bytes cannot exhaust the stack.
#include "etcdserver/request.h"

#include <cstring>

namespace cairn::etcdserver {
namespace {

constexpr std::uint8_t format_version = 1;
constexpr int max_depth = 64;

class writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void b(bool v) { u8(v ? 1 : 0); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  std::uint8_t u8() {
    if (in_.empty()) return fail(), 0;
    auto v = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{u8()} << (8 * i);
    return v;
  }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{u8()} << (8 * i);
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  bool b() {
    auto v = u8();
    if (v > 1) fail();
    return v == 1;
  }
  std::string str() {
    auto n = u32();
    if (!ok_ || n > in_.size()) return fail(), std::string();
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  // An enum stored as one byte, at most `max`.
  template <class E>
  E en(std::uint8_t max) {
    auto v = u8();
    if (v > max) fail();
    return static_cast<E>(v);
  }
  void fail() { ok_ = false; }

 private:
  std::string_view in_;
  bool ok_ = true;
};

void put_range(writer& w, const mvcc::range_request& r) {
  w.str(r.key);
  w.str(r.range_end);
  w.i64(r.limit);
  w.i64(r.revision);
  w.u8(static_cast<std::uint8_t>(r.order));
  w.u8(static_cast<std::uint8_t>(r.target));
  w.b(r.keys_only);
  w.b(r.count_only);
  w.i64(r.min_mod_revision);
  w.i64(r.max_mod_revision);
  w.i64(r.min_create_revision);
  w.i64(r.max_create_revision);
}

mvcc::range_request get_range(reader& r) {
  mvcc::range_request q;
  q.key = r.str();
  q.range_end = r.str();
  q.limit = r.i64();
  q.revision = r.i64();
  q.order = r.en<mvcc::sort_order>(2);
  q.target = r.en<mvcc::sort_target>(4);
  q.keys_only = r.b();
  q.count_only = r.b();
  q.min_mod_revision = r.i64();
  q.max_mod_revision = r.i64();
  q.min_create_revision = r.i64();
  q.max_create_revision = r.i64();
  return q;
}

void put_put(writer& w, const mvcc::put_request& p) {
  w.str(p.key);
  w.str(p.value);
  w.i64(p.lease);
  w.b(p.prev_kv);
  w.b(p.ignore_value);
  w.b(p.ignore_lease);
}

mvcc::put_request get_put(reader& r) {
  mvcc::put_request p;
  p.key = r.str();
  p.value = r.str();
  p.lease = r.i64();
  p.prev_kv = r.b();
  p.ignore_value = r.b();
  p.ignore_lease = r.b();
  return p;
}

void put_del(writer& w, const mvcc::delete_range_request& d) {
  w.str(d.key);
  w.str(d.range_end);
  w.b(d.prev_kv);
}

mvcc::delete_range_request get_del(reader& r) {
  mvcc::delete_range_request d;
  d.key = r.str();
  d.range_end = r.str();
  d.prev_kv = r.b();
  return d;
}

void put_txn(writer& w, const mvcc::txn_request& t);

void put_ops(writer& w, const std::vector<mvcc::request_op>& ops) {
  w.u32(static_cast<std::uint32_t>(ops.size()));
  for (const auto& op : ops) {
    w.u8(static_cast<std::uint8_t>(op.op.index()));
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, mvcc::range_request>) {
            put_range(w, v);
          } else if constexpr (std::is_same_v<T, mvcc::put_request>) {
            put_put(w, v);
          } else if constexpr (std::is_same_v<T, mvcc::delete_range_request>) {
            put_del(w, v);
          } else {
            put_txn(w, *v);
          }
        },
        op.op);
  }
}

void put_txn(writer& w, const mvcc::txn_request& t) {
  w.u32(static_cast<std::uint32_t>(t.compares.size()));
  for (const auto& c : t.compares) {
    w.str(c.key);
    w.str(c.range_end);
    w.u8(static_cast<std::uint8_t>(c.target));
    w.u8(static_cast<std::uint8_t>(c.result));
    w.i64(c.number);
    w.str(c.value);
  }
  put_ops(w, t.success);
  put_ops(w, t.failure);
}

mvcc::txn_request get_txn(reader& r, int depth);

std::vector<mvcc::request_op> get_ops(reader& r, int depth) {
  std::vector<mvcc::request_op> ops;
  auto n = r.u32();
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    mvcc::request_op op;
    switch (r.u8()) {
      case 0:
        op.op = get_range(r);
        break;
      case 1:
        op.op = get_put(r);
        break;
      case 2:
        op.op = get_del(r);
        break;
      case 3:
        op.op = mvcc::box<mvcc::txn_request>(get_txn(r, depth + 1));
        break;
      default:
        r.fail();
        break;
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

mvcc::txn_request get_txn(reader& r, int depth) {
  mvcc::txn_request t;
  if (depth > max_depth) {
    r.fail();
    return t;
  }
  auto n = r.u32();
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    mvcc::compare c;
    c.key = r.str();
    c.range_end = r.str();
    c.target = r.en<mvcc::compare_target>(4);
    c.result = r.en<mvcc::compare_result>(3);
    c.number = r.i64();
    c.value = r.str();
    t.compares.push_back(std::move(c));
  }
  if (r.ok()) t.success = get_ops(r, depth);
  if (r.ok()) t.failure = get_ops(r, depth);
  return t;
}

std::int64_t branch_cost(const std::vector<mvcc::request_op>& ops) {
  std::int64_t sum = 0;
  for (const auto& op : ops) {
    if (const auto* p = std::get_if<mvcc::put_request>(&op.op)) sum += quota_cost(*p);
    if (const auto* t = std::get_if<mvcc::box<mvcc::txn_request>>(&op.op)) sum += quota_cost(**t);
  }
  return sum;
}

bool ops_write(const std::vector<mvcc::request_op>& ops) {
  for (const auto& op : ops) {
    if (std::holds_alternative<mvcc::put_request>(op.op) ||
        std::holds_alternative<mvcc::delete_range_request>(op.op)) {
      return true;
    }
    if (const auto* t = std::get_if<mvcc::box<mvcc::txn_request>>(&op.op)) {
      if (txn_has_writes(**t)) return true;
    }
  }
  return false;
}

}  // namespace

std::string encode_request(const request& r) {
  writer w;
  const bool header = !r.user.empty() || r.auth_revision != 0;
  w.u8(header ? format_version + 1 : format_version);
  w.u64(r.id);
  if (header) {
    w.str(r.user);
    w.u64(r.auth_revision);
  }
  w.u8(static_cast<std::uint8_t>(r.op.index() + 1));
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, mvcc::put_request>) {
          put_put(w, v);
        } else if constexpr (std::is_same_v<T, mvcc::delete_range_request>) {
          put_del(w, v);
        } else if constexpr (std::is_same_v<T, mvcc::txn_request>) {
          put_txn(w, v);
        } else if constexpr (std::is_same_v<T, compact_request>) {
          w.i64(v.revision);
          w.b(v.physical);
        } else if constexpr (std::is_same_v<T, alarm_request>) {
          w.u8(static_cast<std::uint8_t>(v.action));
          w.u64(v.member_id);
          w.u8(static_cast<std::uint8_t>(v.alarm));
        } else if constexpr (std::is_same_v<T, lease_grant_request>) {
          w.i64(v.id);
          w.i64(v.ttl);
        } else if constexpr (std::is_same_v<T, lease_revoke_request>) {
          w.i64(v.id);
        } else if constexpr (std::is_same_v<T, lease_checkpoint_request>) {
          w.u32(static_cast<std::uint32_t>(v.checkpoints.size()));
          for (const auto& c : v.checkpoints) {
            w.i64(c.id);
            w.i64(c.remaining_ttl);
          }
        } else if constexpr (std::is_same_v<T, v2_request>) {
          w.str(v.method);
          w.str(v.path);
          w.str(v.value);
          w.b(v.dir);
          w.u8(!v.prev_exist ? 0 : (*v.prev_exist ? 2 : 1));
          w.str(v.prev_value);
          w.u64(v.prev_index);
          w.b(v.recursive);
          w.b(v.sorted);
          w.b(v.refresh);
          w.i64(v.expiration);
          w.i64(v.time);
        } else if constexpr (std::is_same_v<T, auth_request>) {
          w.u8(static_cast<std::uint8_t>(v.op));
          w.str(v.name);
          w.str(v.role);
          w.str(v.secret);
          w.b(v.no_password);
          w.u8(v.perm_type);
          w.str(v.key);
          w.str(v.range_end);
        } else {
          static_assert(std::is_same_v<T, member_attributes_request>);
          w.u64(v.member_id);
          w.str(v.name);
          w.u32(static_cast<std::uint32_t>(v.client_urls.size()));
          for (const auto& u : v.client_urls) w.str(u);
        }
      },
      r.op);
  return w.take();
}

std::optional<request> decode_request(std::string_view bytes) {
  reader r(bytes);
  const std::uint8_t version = r.u8();
  if (version != format_version && version != format_version + 1) return std::nullopt;
  request q;
  q.id = r.u64();
  if (version == format_version + 1) {
    q.user = r.str();
    q.auth_revision = r.u64();
  }
  switch (r.u8()) {
    case 1:
      q.op = get_put(r);
      break;
    case 2:
      q.op = get_del(r);
      break;
    case 3:
      q.op = get_txn(r, 0);
      break;
    case 4: {
      compact_request c;
      c.revision = r.i64();
      c.physical = r.b();
      q.op = c;
      break;
    }
    case 5: {
      alarm_request a;
      a.action = r.en<alarm_action>(2);
      a.member_id = r.u64();
      a.alarm = r.en<alarm_type>(2);
      q.op = a;
      break;
    }
    case 6: {
      lease_grant_request g;
      g.id = r.i64();
      g.ttl = r.i64();
      q.op = g;
      break;
    }
    case 7:
      q.op = lease_revoke_request{r.i64()};
      break;
    case 8: {
      lease_checkpoint_request c;
      auto n = r.u32();
      for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
        lease_checkpoint cp;
        cp.id = r.i64();
        cp.remaining_ttl = r.i64();
        c.checkpoints.push_back(cp);
      }
      q.op = std::move(c);
      break;
    }
    case 9: {
      member_attributes_request m;
      m.member_id = r.u64();
      m.name = r.str();
      auto n = r.u32();
      for (std::uint32_t i = 0; i < n && r.ok(); ++i) m.client_urls.push_back(r.str());
      q.op = std::move(m);
      break;
    }
    case 10: {
      auth_request a;
      a.op = r.en<auth_op>(static_cast<std::uint8_t>(auth_op::authenticate));
      a.name = r.str();
      a.role = r.str();
      a.secret = r.str();
      a.no_password = r.b();
      a.perm_type = r.u8();
      if (a.perm_type > 2) return std::nullopt;
      a.key = r.str();
      a.range_end = r.str();
      q.op = std::move(a);
      break;
    }
    case 11: {
      v2_request v;
      v.method = r.str();
      v.path = r.str();
      v.value = r.str();
      v.dir = r.b();
      const std::uint8_t pe = r.u8();
      if (pe > 2) return std::nullopt;
      if (pe != 0) v.prev_exist = pe == 2;
      v.prev_value = r.str();
      v.prev_index = r.u64();
      v.recursive = r.b();
      v.sorted = r.b();
      v.refresh = r.b();
      v.expiration = r.i64();
      v.time = r.i64();
      q.op = std::move(v);
      break;
    }
    default:
      return std::nullopt;
  }
  if (!r.done()) return std::nullopt;
  return q;
}

bool txn_has_writes(const mvcc::txn_request& t) {
  return ops_write(t.success) || ops_write(t.failure);
}

std::int64_t quota_cost(const mvcc::put_request& p) {
  return 256 + static_cast<std::int64_t>(p.key.size() + p.value.size());
}

std::int64_t quota_cost(const mvcc::txn_request& t) {
  return std::max(branch_cost(t.success), branch_cost(t.failure));
}

}  // namespace cairn::etcdserver
