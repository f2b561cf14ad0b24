#include "robustness/linearizability.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace cairn::robustness {

using etcdserverpb::RequestOp;
using etcdserverpb::ResponseOp;
using etcdserverpb::TxnResponse;
using google::protobuf::RepeatedPtrField;
using mvccpb::KeyValue;

const char* to_string(verdict v) {
  switch (v) {
    case verdict::linearizable:
      return "linearizable";
    case verdict::violation:
      return "violation";
    case verdict::unknown:
      return "unknown";
  }
  return "?";
}

namespace {

constexpr nanos before_all = std::numeric_limits<nanos>::min();

// How an operation bears on the sequence of revisions.
enum class effect {
  ignored,  // failed, or an open read: no effect to place
  writes,   // acknowledged and changed something: it is the write of its revision
  none,     // acknowledged, changed nothing: answered at its revision
  maybe,    // an acknowledged lease revoke: either the write of its revision or no change at it
  open,     // outcome unknown and it could write: a candidate for a revision nothing claims
};

// Whether the executed ops changed anything, from their responses.
bool wrote(const RepeatedPtrField<RequestOp>& reqs, const RepeatedPtrField<ResponseOp>& resps) {
  for (int i = 0; i < reqs.size() && i < resps.size(); ++i) {
    const RequestOp& q = reqs[i];
    const ResponseOp& r = resps[i];
    if (q.has_request_put()) return true;
    if (q.has_request_delete_range() && r.response_delete_range().deleted() > 0) return true;
    if (q.has_request_txn()) {
      const auto& t = q.request_txn();
      const auto& tr = r.response_txn();
      if (wrote(tr.succeeded() ? t.success() : t.failure(), tr.responses())) return true;
    }
  }
  return false;
}

// Whether any branch could write.
bool may_write(const RepeatedPtrField<RequestOp>& ops) {
  for (const RequestOp& op : ops) {
    if (op.has_request_put() || op.has_request_delete_range()) return true;
    if (op.has_request_txn() &&
        (may_write(op.request_txn().success()) || may_write(op.request_txn().failure())))
      return true;
  }
  return false;
}

void put_values(const RepeatedPtrField<RequestOp>& ops, std::vector<std::string>* out) {
  for (const RequestOp& op : ops) {
    if (op.has_request_put()) out->push_back(op.request_put().value());
    if (op.has_request_txn()) {
      put_values(op.request_txn().success(), out);
      put_values(op.request_txn().failure(), out);
    }
  }
}

template <typename F>
void each_kv(const TxnResponse& resp, F&& f) {
  for (const ResponseOp& r : resp.responses()) {
    if (r.has_response_range())
      for (const KeyValue& kv : r.response_range().kvs()) f(kv);
    if (r.has_response_put() && r.response_put().has_prev_kv()) f(r.response_put().prev_kv());
    if (r.has_response_delete_range())
      for (const KeyValue& kv : r.response_delete_range().prev_kvs()) f(kv);
    if (r.has_response_txn()) each_kv(r.response_txn(), f);
  }
}

class checker {
 public:
  checker(const std::vector<operation>& ops, const std::vector<watch_record>& watches,
          const linearizability_options& opt, linearizability_report& rep)
      : ops_(ops), watches_(watches), opt_(opt), rep_(rep), m_(opt.base_revision) {}

  void run();

 private:
  struct frame {
    std::int64_t rev;
    nanos t_before;  // t(rev - 1)
    nanos push;      // the latest call among linearizable answers at rev - 1
    int push_op;
    std::vector<int> candidates;
    size_t next = 0;
    int placed = -1;
  };

  void classify();
  void gather_evidence();
  void violation(std::string why) {
    rep_.result = verdict::violation;
    rep_.anomalies.push_back(std::move(why));
  }
  std::vector<int> candidates(std::int64_t rev) const;
  model::result apply(int i) {
    return ops_[i].kind == op_kind::lease_revoke ? m_.revoke(ops_[i].lease) : m_.apply(ops_[i].txn);
  }
  // Checks the answers given at `rev` (the model is at rev); t = t(rev).
  bool check_answers(std::int64_t rev, int placed, nanos t, nanos* push, int* push_op,
                     std::string* why);
  void fail_at(std::int64_t rev, std::string why);
  bool out_of_budget();

  const std::vector<operation>& ops_;
  const std::vector<watch_record>& watches_;
  const linearizability_options& opt_;
  linearizability_report& rep_;
  model m_;
  std::vector<effect> eff_;
  std::vector<char> used_;                                      // op → placed on the current path
  std::map<std::int64_t, int> claim_;                           // revision → the op that wrote it
  std::map<int, std::int64_t> claimed_;                         // op → its revision
  std::map<std::int64_t, std::vector<int>> answered_;           // revision → ops answered there
  std::vector<int> open_;                                       // unclaimed open ops, by call time
  std::map<std::int64_t, std::set<std::string>> deleted_seen_;  // watch evidence
  std::map<std::int64_t, nanos> bound_;  // revision → min return of answers at >= it
  std::int64_t last_ = 0;
  std::int64_t deepest_ = -1;
  std::vector<std::string> deepest_why_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

void checker::classify() {
  eff_.assign(ops_.size(), effect::ignored);
  used_.assign(ops_.size(), 0);
  last_ = opt_.base_revision;
  for (size_t i = 0; i < ops_.size(); ++i) {
    const operation& op = ops_[i];
    ++rep_.operations;
    if (op.result == outcome::failed) {
      ++rep_.failed;
      continue;
    }
    const bool revoke = op.kind == op_kind::lease_revoke;
    if (op.result == outcome::unknown) {
      ++rep_.open;
      if (revoke || may_write(op.txn.success()) || may_write(op.txn.failure()))
        eff_[i] = effect::open;
      continue;
    }
    ++rep_.acknowledged;
    last_ = std::max(last_, op.revision);
    if (op.revision < opt_.base_revision) {
      violation(describe(op) + ": revision below the base " + std::to_string(opt_.base_revision));
      continue;
    }
    if (revoke) {
      eff_[i] = effect::maybe;
      answered_[op.revision].push_back(static_cast<int>(i));
      continue;
    }
    const auto& branch = op.txn_resp.succeeded() ? op.txn.success() : op.txn.failure();
    if (wrote(branch, op.txn_resp.responses())) {
      eff_[i] = effect::writes;
      auto [it, fresh] = claim_.emplace(op.revision, static_cast<int>(i));
      if (!fresh) {
        violation("two acknowledged writes at revision " + std::to_string(op.revision) + ": " +
                  describe(ops_[it->second]) + " and " + describe(op));
        continue;
      }
      claimed_[static_cast<int>(i)] = op.revision;
    } else {
      eff_[i] = effect::none;
      answered_[op.revision].push_back(static_cast<int>(i));
    }
  }
}

void checker::gather_evidence() {
  // value → the op whose request writes it (ambiguous values are no evidence)
  std::unordered_map<std::string, int> owner;
  std::set<std::string> ambiguous;
  for (size_t i = 0; i < ops_.size(); ++i) {
    std::vector<std::string> values;
    put_values(ops_[i].txn.success(), &values);
    put_values(ops_[i].txn.failure(), &values);
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    for (const std::string& v : values) {
      if (v.empty()) continue;
      if (!owner.emplace(v, static_cast<int>(i)).second) ambiguous.insert(v);
    }
  }
  auto observe = [&](const KeyValue& kv, const std::string& where) {
    last_ = std::max(last_, kv.mod_revision());
    if (kv.value().empty() || ambiguous.count(kv.value()) != 0) return;
    auto it = owner.find(kv.value());
    const std::string seen = where + " saw " + kv.key() + "=" + kv.value() + " at revision " +
                             std::to_string(kv.mod_revision());
    if (it == owner.end()) {
      violation(seen + ", a value no operation wrote");
      return;
    }
    const int w = it->second;
    switch (eff_[w]) {
      case effect::writes:
        if (ops_[w].revision != kv.mod_revision())
          violation(seen + ", but it was acknowledged at revision " +
                    std::to_string(ops_[w].revision) + ": " + describe(ops_[w]));
        return;
      case effect::open: {
        auto [c, fresh] = claimed_.emplace(w, kv.mod_revision());
        if (!fresh && c->second != kv.mod_revision()) {
          violation(seen + ", and elsewhere at revision " + std::to_string(c->second) + ": " +
                    describe(ops_[w]));
          return;
        }
        auto [r, free] = claim_.emplace(kv.mod_revision(), w);
        if (!free && r->second != w)
          violation(seen + ", but revision " + std::to_string(kv.mod_revision()) +
                    " is the write of " + describe(ops_[r->second]));
        return;
      }
      default:
        violation(seen + ", written by an operation that did not write it: " + describe(ops_[w]));
        return;
    }
  };
  for (const operation& op : ops_) {
    if (op.result != outcome::ok) continue;
    each_kv(op.txn_resp, [&](const KeyValue& kv) { observe(kv, describe(op)); });
  }
  for (const watch_record& w : watches_) {
    const std::string who = "watch of c" + std::to_string(w.client) + " on " + w.member;
    for (const watch_response& r : w.responses) {
      last_ = std::max(last_, r.header_revision);
      for (const mvccpb::Event& ev : r.events) {
        if (ev.type() == mvccpb::Event::PUT)
          observe(ev.kv(), who);
        else
          deleted_seen_[ev.kv().mod_revision()].insert(ev.kv().key());
        last_ = std::max(last_, ev.kv().mod_revision());
        if (ev.has_prev_kv()) observe(ev.prev_kv(), who);
      }
    }
  }
  for (size_t i = 0; i < ops_.size(); ++i) {
    if (eff_[i] == effect::open && claimed_.count(static_cast<int>(i)) == 0)
      open_.push_back(static_cast<int>(i));
  }
  std::stable_sort(open_.begin(), open_.end(),
                   [&](int a, int b) { return ops_[a].call < ops_[b].call; });
  // A write placed at rev must have been called before every answer at rev or later returned.
  auto lower = [&](std::int64_t rev, nanos ret) {
    auto [b, fresh] = bound_.emplace(rev, ret);
    if (!fresh) b->second = std::min(b->second, ret);
  };
  for (const auto& [rev, i] : claim_) lower(rev, ops_[i].ret);
  for (const auto& [rev, list] : answered_)
    for (int i : list)
      if (!ops_[i].serializable) lower(rev, ops_[i].ret);
  nanos running = never;
  for (auto it = bound_.rbegin(); it != bound_.rend(); ++it) {
    running = std::min(running, it->second);
    it->second = running;
  }
}

std::vector<int> checker::candidates(std::int64_t rev) const {
  if (auto it = claim_.find(rev); it != claim_.end()) return {it->second};
  const auto b = bound_.lower_bound(rev);
  const nanos latest_call = b == bound_.end() ? never : b->second;
  std::vector<int> preferred, rest;
  const auto seen = deleted_seen_.find(rev);
  for (int i : open_) {
    if (ops_[i].call > latest_call) break;  // sorted by call
    bool deletes_seen_key = false;
    if (seen != deleted_seen_.end()) {
      if (ops_[i].kind == op_kind::lease_revoke) deletes_seen_key = true;
      for (const RequestOp& q : ops_[i].txn.success())
        if (q.has_request_delete_range() && seen->second.count(q.request_delete_range().key()))
          deletes_seen_key = true;
    }
    (deletes_seen_key ? preferred : rest).push_back(i);
  }
  if (auto a = answered_.find(rev); a != answered_.end()) {
    for (int i : a->second)
      if (eff_[i] == effect::maybe) preferred.insert(preferred.begin(), i);
  }
  preferred.insert(preferred.end(), rest.begin(), rest.end());
  return preferred;
}

bool checker::check_answers(std::int64_t rev, int placed, nanos t, nanos* push, int* push_op,
                            std::string* why) {
  *push = before_all;
  *push_op = -1;
  auto it = answered_.find(rev);
  if (it == answered_.end()) return true;
  for (int i : it->second) {
    const operation& op = ops_[i];
    if (i == placed) continue;
    model::result res = apply(i);
    if (!res.events.empty()) {
      m_.pop();
      *why = describe(op) + " changed nothing, but at revision " + std::to_string(rev) +
             " it would have";
      return false;
    }
    std::string diff;
    if (op.kind != op_kind::lease_revoke && !same_response(res.response, op.txn_resp, &diff)) {
      *why = describe(op) + " answered differently from the state at revision " +
             std::to_string(rev) + ": " + diff;
      return false;
    }
    if (op.serializable) continue;
    if (t > op.ret) {
      *why = describe(op) + " returned at " + seconds(op.ret) + " with revision " +
             std::to_string(rev) + ", before revision " + std::to_string(rev) +
             " can have been written (not before " + seconds(t) + ")";
      return false;
    }
    if (op.call > *push) {
      *push = op.call;
      *push_op = i;
    }
  }
  return true;
}

void checker::fail_at(std::int64_t rev, std::string why) {
  if (rev > deepest_) {
    deepest_ = rev;
    deepest_why_.clear();
  }
  if (rev == deepest_ && deepest_why_.size() < 8) deepest_why_.push_back(std::move(why));
}

bool checker::out_of_budget() {
  ++rep_.search_steps;
  if (rep_.search_steps > opt_.max_steps) return true;
  return (rep_.search_steps & 1023) == 0 && std::chrono::steady_clock::now() - start_ > opt_.budget;
}

void checker::run() {
  classify();
  gather_evidence();
  rep_.last_revision = last_;
  if (rep_.result == verdict::violation) return;
  for (const auto& [rev, op] : claim_) {
    if (rev <= opt_.base_revision || rev > last_) {
      violation("revision " + std::to_string(rev) + " claimed by " + describe(ops_[op]) +
                " is outside (base, last]");
      return;
    }
  }
  nanos push = before_all;
  int push_op = -1;
  std::string why;
  if (!check_answers(opt_.base_revision, -1, before_all, &push, &push_op, &why)) {
    violation(why);
    return;
  }
  std::vector<frame> stack;
  stack.push_back(
      frame{opt_.base_revision + 1, before_all, push, push_op, candidates(opt_.base_revision + 1)});
  while (!stack.empty()) {
    frame& f = stack.back();
    if (f.rev > last_) {
      rep_.result = verdict::linearizable;
      break;
    }
    if (f.placed != -1) {  // back from a dead end further on
      m_.pop();
      used_[f.placed] = false;
      f.placed = -1;
    }
    bool advanced = false;
    while (f.next < f.candidates.size()) {
      const int c = f.candidates[f.next++];
      if (out_of_budget()) {
        rep_.result = verdict::unknown;
        rep_.anomalies.push_back("search budget exhausted at revision " + std::to_string(f.rev) +
                                 " after " + std::to_string(rep_.search_steps) + " steps");
        return;
      }
      if (used_[c]) continue;
      const operation& op = ops_[c];
      const nanos t = std::max({f.t_before, op.call, f.push});
      if (t > op.ret) {
        std::string forced = f.push == t && f.push_op >= 0
                                 ? " (forced by " + describe(ops_[f.push_op]) + ", answered at " +
                                       std::to_string(f.rev - 1) + ")"
                                 : "";
        fail_at(f.rev, "revision " + std::to_string(f.rev) + ": " + describe(op) + " returned at " +
                           seconds(op.ret) + ", before it can have been written (not before " +
                           seconds(t) + ")" + forced);
        continue;
      }
      model::result res = apply(c);
      if (res.events.empty()) {
        fail_at(f.rev, "revision " + std::to_string(f.rev) + ": " + describe(op) +
                           " would change nothing there");
        continue;
      }
      std::string diff;
      if (op.result == outcome::ok && op.kind != op_kind::lease_revoke &&
          !same_response(res.response, op.txn_resp, &diff)) {
        m_.pop();
        fail_at(f.rev, "revision " + std::to_string(f.rev) + ": " + describe(op) +
                           " answered differently from the model: " + diff);
        continue;
      }
      nanos next_push;
      int next_push_op;
      if (!check_answers(f.rev, c, t, &next_push, &next_push_op, &why)) {
        m_.pop();
        fail_at(f.rev,
                "revision " + std::to_string(f.rev) + " written by " + describe(op) + ": " + why);
        continue;
      }
      f.placed = c;
      used_[c] = true;
      const std::int64_t next_rev = f.rev + 1;
      stack.push_back(frame{next_rev, t, next_push, next_push_op, candidates(next_rev)});
      advanced = true;
      break;
    }
    if (advanced) continue;
    if (f.candidates.empty())
      fail_at(f.rev, "revision " + std::to_string(f.rev) + ": no operation can have written it");
    stack.pop_back();
  }
  if (rep_.result != verdict::linearizable) {
    rep_.result = verdict::violation;
    for (std::string& w : deepest_why_) rep_.anomalies.push_back(std::move(w));
    if (rep_.anomalies.empty()) rep_.anomalies.push_back("no sequence explains the history");
    return;
  }
  for (const frame& g : stack)
    if (g.placed >= 0 && ops_[g.placed].result == outcome::unknown) ++rep_.open_applied;
  rep_.replayed = std::move(m_);
}

}  // namespace

linearizability_report check_linearizability(const std::vector<operation>& ops,
                                             const std::vector<watch_record>& watches,
                                             const linearizability_options& options) {
  linearizability_report rep;
  checker(ops, watches, options, rep).run();
  return rep;
}

}  // namespace cairn::robustness
