// The linearizability checker for a recorded KV history, against model.h.
//
// Revisions are global across keys, so the history is checked as one sequence, not per key.
// What fixes the order:
// - an acknowledged write that changed something carries its revision in the response header;
// - every put writes a value no other operation writes (the traffic makes them unique), so a
//   value seen anywhere (a read, a prev_kv, a watch event) with its mod_revision names the
//   operation that made that revision, even one whose client never heard back;
// - every revision from the base to the highest one seen must be explained by exactly one
//   write. A revision nothing claims is filled from the writes left open (timed out or lost,
//   which may or may not have happened, and acknowledged lease revokes, whose responses do not
//   say whether they deleted anything), by a depth-first search with a step and time budget.
//   Watch events of that revision, when some watch saw it, order the candidates.
// Given that sequence, each write's linearization point is set as early as real time allows:
// t(R) = max(t(R-1), call of the write at R, call of every linearizable read answered at R-1),
// which must not pass the write's return; a linearizable read (or a write that changed nothing)
// answered at revision R must have been able to happen after t(R), so t(R) must not pass its
// return. Taking every point as early as possible satisfies every bound that any choice can, so
// the check is exact once the sequence is fixed. Each response is compared with what the model
// answers at its revision; serializable reads only with their revision's state.
//
// Verdicts: linearizable; violation (with the reasons, the furthest point the search reached);
// unknown (the budget ran out first).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "robustness/history.h"
#include "robustness/model.h"

namespace cairn::robustness {

enum class verdict { linearizable, violation, unknown };
const char* to_string(verdict v);

struct linearizability_report {
  verdict result = verdict::unknown;
  std::vector<std::string> anomalies;
  std::int64_t last_revision = 0;  // the highest revision the history shows
  int operations = 0;
  int acknowledged = 0;
  int failed = 0;
  int open = 0;          // outcome unknown
  int open_applied = 0;  // of those, how many the accepted sequence says were applied
  long long search_steps = 0;
  std::optional<model> replayed;  // the accepted sequence (linearizable only), for watch checks
};

struct linearizability_options {
  std::int64_t base_revision = 1;
  long long max_steps = 2'000'000;
  std::chrono::milliseconds budget{std::chrono::seconds(30)};
};

linearizability_report check_linearizability(const std::vector<operation>& ops,
                                             const std::vector<watch_record>& watches,
                                             const linearizability_options& options = {});

}  // namespace cairn::robustness
