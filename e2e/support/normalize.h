// The normalizer of the etcdctl comparison (e2e/etcdctl_compare_test.cc): the same command run
// against Cairn and against the real etcd prints the same text once the values that are
// legitimately different between two servers are masked. It masks only these, and only where
// etcdctl prints them in a form that says what they are:
//
//   ids    member and cluster ids: hex tokens of 10 to 16 digits (simple and table output, where
//          ids are printed with %x), and the decimal values of JSON/fields keys that hold ids
//          (cluster_id, member_id, leader, ID, ClusterID, MemberID, …) and the
//          decimal memberID:N of `alarm list`                                  → <id>
//   terms  raft_term / raftTerm / "RaftTerm", and the term column of `endpoint status`  → <term>
//   times  "took = 1.2ms" durations and RFC 3339 / Go time stamps                      → <time>
//   ports  127.0.0.1:N and localhost:N                                                  → :<port>
//   sizes  dbSize / dbSizeInUse values and humanized sizes ("20 kB")                    → <size>
//
// Everything else (keys, values, revisions, versions, counts, raft indexes, errors) is left as
// printed, so a difference there fails the comparison unless `docs/compatibility.md` lists it.
// The listed differences are regexes in a fenced block of that file (```etcdctl-differences);
// `mask_listed` replaces what they match with <differs> on both sides.
#pragma once

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

namespace cairn::e2e {

std::string normalize_etcdctl_output(const std::string& text);

struct listed_difference {
  std::string pattern;  // as written in the document
  std::regex re;
};

// The patterns of the ```etcdctl-differences block of a Markdown file, one per non-empty line
// (lines starting with '#' are comments). Throws std::runtime_error if the block is missing
// or a pattern does not compile.
std::vector<listed_difference> read_listed_differences(const std::filesystem::path& markdown);

// Replaces every match of every listed pattern by "<differs>".
std::string mask_listed(const std::string& text, const std::vector<listed_difference>& listed);

}  // namespace cairn::e2e
