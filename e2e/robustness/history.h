// What a robustness run records: every client operation with its call and return times, and
// every watch response, so that the checkers (linearizability.h, watch_check.h) can judge the
// run afterwards. Times are nanoseconds of one steady clock since the run started.
//
// Every KV operation is kept as the TxnRequest it is equivalent to (a Put is a txn with no
// compares and one put in `success`, a Range one range, ...), the way etcd's own robustness
// model does, so the model has one apply function. `kind` remembers what was sent, for reports.
#pragma once

#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "etcdserverpb/rpc.pb.h"
#include "mvccpb/kv.pb.h"

namespace cairn::robustness {

using nanos = std::int64_t;
constexpr nanos never = std::numeric_limits<nanos>::max();

// How an operation ended. `failed` means it certainly had no effect (the server refused it
// before or at apply: invalid argument, lease not found, compacted revision); `unknown` means
// it may or may not have been applied (a timeout, a lost connection, "leader changed").
enum class outcome { ok, failed, unknown };

enum class op_kind { range, put, del, txn, lease_revoke };

struct operation {
  int client = 0;
  op_kind kind = op_kind::range;
  nanos call = 0;
  nanos ret = never;  // never when the outcome is unknown
  outcome result = outcome::unknown;
  std::string error;          // the status when not ok
  std::string member;         // the endpoint it went to, for reports
  bool serializable = false;  // a Range with serializable=true: checked against its revision only
  etcdserverpb::TxnRequest txn;        // the request, as a txn (lease_revoke: empty)
  etcdserverpb::TxnResponse txn_resp;  // the response as a txn (ok only)
  std::int64_t lease = 0;              // lease_revoke: the lease
  std::int64_t revision = 0;           // ok only: the response header's revision
};

// One Watch creation on a stream and everything it delivered until it ended.
struct watch_response {
  nanos at = 0;
  std::int64_t header_revision = 0;
  bool created = false;
  bool canceled = false;
  std::int64_t compact_revision = 0;
  std::vector<mvccpb::Event> events;
};

struct watch_record {
  int client = 0;
  std::string member;
  etcdserverpb::WatchCreateRequest request;
  std::vector<watch_response> responses;
  std::string end;  // why it ended ("stream broken: ...", "canceled", "run ended")
};

// Thread-safe collection of a run's records.
class history {
 public:
  void add(operation op);
  void add(watch_record w);
  // Snapshots (call after every client has stopped).
  std::vector<operation> operations() const;
  std::vector<watch_record> watches() const;
  // The whole history as JSON lines (one operation or watch per line), for failure reports.
  std::string to_json() const;

 private:
  mutable std::mutex mu_;
  std::vector<operation> ops_;
  std::vector<watch_record> watches_;
};

const char* to_string(op_kind k);
const char* to_string(outcome o);
// A time for reports: "1.203456s", "never", "-inf" (before everything).
std::string seconds(nanos t);
// One line for reports: "c3 put k2=v-3-17 ok rev 42 [1.203s, 1.207s] @127.0.0.1:1234".
std::string describe(const operation& op);

}  // namespace cairn::robustness
