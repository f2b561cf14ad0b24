// etcd's key-value semantics as a sequence of revisions, for the robustness checkers: what a txn
// answers and which events it makes, applied at the next revision when it writes anything (etcd
// bumps the revision only for a txn with changes), what a range answers at any revision, and
// undo of the latest revision (the checker backtracks).
//
// Semantics followed, from etcd 3.4 (server/mvcc, etcdserver/apply.go):
// - a put sets mod_revision to the txn's revision, keeps create_revision and bumps version when
//   the key exists (else create = mod, version 1), and sets the lease (0 detaches);
// - a delete leaves a tombstone; its event kv carries only the key and mod_revision;
// - ops of one txn apply in order, later ones see earlier ones, all at one revision;
// - a compare on a missing key: a VALUE compare is false, the others compare against zeros; a
//   compare over a range must hold for every key in it;
// - a range counts every key in range, returns at most `limit` and sets `more` beyond it;
// - revoking a lease deletes its keys in key order at one revision (none: no revision).
// Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "mvccpb/kv.pb.h"

namespace cairn::robustness {

class model {
 public:
  struct result {
    etcdserverpb::TxnResponse response;  // headers left empty
    std::vector<mvccpb::Event> events;   // empty: the txn wrote nothing (no revision)
  };

  // The revision before any write (etcd's empty store is at revision 1).
  explicit model(std::int64_t base_revision = 1) : base_(base_revision), rev_(base_revision) {}

  std::int64_t revision() const { return rev_; }
  std::int64_t base_revision() const { return base_; }

  // Evaluates the txn against the current state; when it changes anything, the changes become
  // revision()+1 (and events hold them). Nothing changes otherwise.
  result apply(const etcdserverpb::TxnRequest& txn);
  // Revokes a lease: deletes every key attached to it (a revision when there are any).
  result revoke(std::int64_t lease);
  // Removes the latest revision (revision() > base_revision()).
  void pop();

  // A range as the store answers it at `at` (0: the current revision); header left empty.
  etcdserverpb::RangeResponse range(const etcdserverpb::RangeRequest& req,
                                    std::int64_t at = 0) const;
  // The events of revision `rev` (base < rev <= revision()).
  const std::vector<mvccpb::Event>& events(std::int64_t rev) const;
  // The live kv of `key` at `at`, if any.
  const mvccpb::KeyValue* get(const std::string& key, std::int64_t at = 0) const;

 private:
  struct version {
    std::int64_t rev;
    bool live;
    mvccpb::KeyValue kv;
  };
  const version* at(const std::string& key, std::int64_t rev) const;
  template <typename F>
  void for_range(const std::string& key, const std::string& end, std::int64_t rev, F&& f) const;
  bool compare(const etcdserverpb::Compare& c, std::int64_t rev) const;
  void apply_op(const etcdserverpb::RequestOp& op, etcdserverpb::ResponseOp* out,
                std::vector<mvccpb::Event>* events);
  void write(const std::string& key, bool live, mvccpb::KeyValue kv,
             std::vector<mvccpb::Event>* events);
  void finish(std::vector<mvccpb::Event>& events);

  std::int64_t base_;
  std::int64_t rev_;
  std::map<std::string, std::vector<version>> keys_;
  // events_[r - base_ - 1]: the events of revision r, in the order the txn made them.
  std::vector<std::vector<mvccpb::Event>> events_;
};

// True when the two responses are equal, headers aside (nested responses included).
bool same_response(const etcdserverpb::TxnResponse& a, const etcdserverpb::TxnResponse& b,
                   std::string* difference = nullptr);
// A txn response with every header cleared (what the model answers).
etcdserverpb::TxnResponse without_headers(etcdserverpb::TxnResponse resp);

}  // namespace cairn::robustness
