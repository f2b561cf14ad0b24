#include "support/normalize.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace cairn::e2e {
namespace {

struct rule {
  std::regex re;
  const char* replacement;
};

const std::vector<rule>& rules() {
  static const std::vector<rule> r = [] {
    const auto flags = std::regex::ECMAScript | std::regex::optimize;
    std::vector<rule> v;
    auto add = [&](const char* re, const char* with) {
      v.push_back({std::regex(re, flags), with});
    };
    // Times first: a time stamp's digits must not be taken for anything else.
    add(R"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?( ?Z| ?[+-]\d{2}:?\d{2})?( [A-Z]{3,4})?)",
        "<time>");
    add(R"(took = (\d+(\.\d+)?(ns|µs|us|ms|s|m|h))+)", "took = <time>");
    add(R"re("took":"[^"]*")re", "\"took\":\"<time>\"");
    // Ports.
    add(R"((127\.0\.0\.1|localhost):\d+)", "$1:<port>");
    // Ids in JSON ("key":123) and in etcdctl's fields output ("Key" : 123).
    add(R"re("(cluster_id|member_id|leader|ID|clusterID|memberID)":\d+)re", "\"$1\":<id>");
    add(R"re("(ClusterID|MemberID|Leader|ID)" : \d+)re", "\"$1\" : <id>");
    // `alarm list`'s "memberID:<decimal> alarm:NOSPACE".
    add(R"re(\bmemberID:\d+)re", "memberID:<id>");
    // etcdctl's "Member %16x added to cluster %16x": the padding of an id shorter than 16
    // digits (a leading zero) goes with the id.
    add(R"re(\b(Member|cluster) +[0-9a-f]{10,16}\b)re", "$1 <id>");
    // Ids printed in hex (%x): 10 to 16 hex digits standing alone.
    add(R"re(\b[0-9a-f]{10,16}\b)re", "<id>");
    // Terms.
    add(R"re("(raft_term|raftTerm)":\d+)re", "\"$1\":<term>");
    add(R"re("RaftTerm" : \d+)re", "\"RaftTerm\" : <term>");
    // Sizes.
    add(R"re("(dbSize|dbSizeInUse|db_size|db_size_in_use)":\d+)re", "\"$1\":<size>");
    add(R"re("(DBSize|DBSizeInUse)" : \d+)re", "\"$1\" : <size>");
    add(R"(\b\d+(\.\d+)? (B|kB|MB|GB|TB)\b)", "<size>");
    return v;
  }();
  return r;
}

// `endpoint status` prints the raft term as a bare number in a fixed column: simple output
// "endpoint, id, version, size, leader, learner, TERM, index, applied, errors", and the same
// columns in a table row. Applied after the rules above, so the id and size are masked.
const std::regex& status_simple_term() {
  static const std::regex re(
      R"(^([^,\n]*:<port>, <id>, [^,\n]*, <size>, (true|false), (true|false), )\d+)",
      std::regex::ECMAScript | std::regex::multiline);
  return re;
}
const std::regex& status_table_term() {
  static const std::regex re(
      R"(^(\| [^|\n]*:<port> \| <id> \| [^|\n]* \| <size> \| (true|false) \| (true|false) \| )\d+ \|)",
      std::regex::ECMAScript | std::regex::multiline);
  return re;
}

// Tables pad their columns to the widest cell, and masking changes widths: collapse the padding
// of table lines (those starting with '|' or '+').
std::string collapse_tables(const std::string& text) {
  std::istringstream in(text);
  std::string out, line;
  bool first = true;
  while (std::getline(in, line)) {
    if (!first) out += '\n';
    first = false;
    if (!line.empty() && (line[0] == '|' || line[0] == '+')) {
      static const std::regex spaces(" +");
      static const std::regex dashes("-+");
      line = std::regex_replace(std::regex_replace(line, spaces, " "), dashes, "-");
    }
    out += line;
  }
  if (!text.empty() && text.back() == '\n') out += '\n';
  return out;
}

}  // namespace

std::string normalize_etcdctl_output(const std::string& text) {
  std::string s = text;
  for (const rule& r : rules()) s = std::regex_replace(s, r.re, r.replacement);
  s = collapse_tables(s);
  s = std::regex_replace(s, status_simple_term(), "$1<term>");
  s = std::regex_replace(s, status_table_term(), "$1<term> |");
  return s;
}

std::vector<listed_difference> read_listed_differences(const std::filesystem::path& markdown) {
  std::ifstream in(markdown);
  if (!in) throw std::runtime_error("cannot read " + markdown.string());
  std::vector<listed_difference> out;
  std::string line;
  bool inside = false, found = false;
  while (std::getline(in, line)) {
    if (!inside) {
      if (line == "```etcdctl-differences") inside = found = true;
      continue;
    }
    if (line == "```") {
      inside = false;
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    try {
      out.push_back({line, std::regex(line, std::regex::ECMAScript)});
    } catch (const std::regex_error& e) {
      throw std::runtime_error(markdown.string() + ": bad pattern '" + line + "': " + e.what());
    }
  }
  if (!found) throw std::runtime_error(markdown.string() + " has no ```etcdctl-differences block");
  return out;
}

std::string mask_listed(const std::string& text, const std::vector<listed_difference>& listed) {
  std::string s = text;
  for (const auto& d : listed) s = std::regex_replace(s, d.re, "<differs>");
  return s;
}

}  // namespace cairn::e2e
