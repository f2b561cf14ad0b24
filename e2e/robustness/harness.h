// One robustness run against a real `cairn` cluster on loopback: concurrent clients record
// every operation (history.h) while a nemesis injects one fault at a time; at the end every
// fault is healed, every member restarted, and the history is checked: linearizability of the
// KV operations, the watches, durability (every acknowledged write is in the final state, which
// the linearizability check covers: the final reads are part of the history) and convergence
// (every member's HashKV equal at one revision).
//
// Traffic profiles (after etcd's tests/robustness/traffic):
// - etcd: get, list with limits, serializable get and list, put, delete, multi-key txn, put with
//   a lease, lease revoke, compare-and-set on ten keys "k0".."k9";
// - kubernetes: create (mod == 0), update (mod == known), delete (mod == known), get,
//   serializable get, paged list (the second page at the first page's revision) on
//   "/registry/pods/".
// Every put writes a value no other does ("c<client>-<n>"). Watchers on every member watch the
// traffic's prefix with prev_kv and progress_notify and ask for progress notifications; a
// broken stream resumes from the revision after the last it saw. A compactor compacts to 100
// revisions back every 300 ms.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "robustness/history.h"
#include "robustness/linearizability.h"
#include "robustness/watch_check.h"

namespace cairn::robustness {

enum class traffic_profile { etcd, kubernetes };

enum class fault {
  kill_random,      // SIGKILL a random member, restart it after 0.3-1 s
  kill_leader,      // SIGKILL the leader, restart it after 0.3-1 s
  pause_random,     // SIGSTOP a random member for 0.5-2 s, then SIGCONT
  pause_leader,     // SIGSTOP the leader for 0.5-2 s
  isolate_leader,   // cut every peer link of the leader for 1-2 s
  isolate_random,   // cut every peer link of a random member for 1-2 s
  minority_leader,  // the leader with a minority (5 members: leader + 1) apart from the rest
  majority_leader,  // a minority without the leader cut away (5 members: two followers)
  bridge,           // 5 members: {a,b} | c | {d,e}, c talks to both sides, which cannot talk
  delay_peers,      // every peer link forwards each chunk 20-80 ms late for 1-2 s
  // With `cairn-failpoints` (server/base/failpoint.h), one of the scenario's failpoints:
  failpoint_crash,  // armed to crash a random member at hit 1-20 (defrag*: a Defragment is
                    // sent; *ApplySnap: the member is cut off until it needs the leader's
                    // snapshot); restarted once it died (3 s at most, else disarmed)
  failpoint_sleep,  // armed to sleep 20-150 ms per hit on a random member for 1-2 s
  // Membership change under load (3 or more members): MemberRemove of a random member, which
  // stops on its own; its data wiped; MemberAdd of a new member on the same peer URL, started
  // with --initial-cluster-state=existing. Each call is retried for 10 s while the cluster
  // refuses it (etcd's strict reconfiguration checks: a 5 s health interval after any fault).
  replace_member,
};
const char* to_string(fault f);

struct scenario {
  std::string name;
  int members = 3;
  traffic_profile traffic = traffic_profile::etcd;
  std::vector<fault> faults;  // drawn from at random, one at a time
  std::chrono::milliseconds duration{std::chrono::seconds(8)};
  int clients = 6;                      // each pinned to member (i % members)
  std::vector<std::string> flags;       // extra flags for every member
  std::vector<std::string> failpoints;  // names for the failpoint faults
  std::uint64_t seed = 1;
};

struct injected_fault {
  fault what;
  int member = -1;     // the member it hit (-1: several)
  std::string detail;  // the failpoint, and whether it fired
  nanos at = 0;
  nanos healed = 0;
  nanos recovered = -1;  // the first acknowledged write called after `healed` returned here
};

struct run_report {
  std::string scenario;
  std::uint64_t seed = 0;
  std::vector<injected_fault> faults;
  linearizability_report kv;
  watch_report watch;
  std::vector<std::string> anomalies;  // all of them: kv, watch, convergence, harness
  int watch_streams = 0;
  std::map<std::string, int> errors;  // client-side errors by status, most common first in summary
  std::string artifacts;              // where the history and logs were saved (on failure)
  std::string summary() const;
  bool ok() const { return anomalies.empty() && kv.result == verdict::linearizable; }
};

// Runs the scenario in `dir` (members' data and logs); on anomalies saves the history, the
// report and the member logs under `artifacts_root`/<name>-<seed>.
run_report run(const scenario& s, const std::filesystem::path& dir,
               const std::filesystem::path& artifacts_root);

}  // namespace cairn::robustness
