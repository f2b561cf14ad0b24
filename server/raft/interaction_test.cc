// Runs every testdata/*.txt script through interaction_env and compares the transcript with the
// one recorded in the file. CAIRN_TEST_REWRITE=1 rewrites the files with what the code now does
// (then read the diff: the transcripts are the specification).
//
// File format: blocks of optional `#` comment lines, one command line, a `----` line, the
// expected output (no blank lines inside), and a blank line.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "raft/interaction_env.h"

namespace cairn::raft::testing {
namespace {

namespace fs = std::filesystem;

struct block {
  std::vector<std::string> comments;  // lines before the command, kept verbatim on rewrite
  std::string command;
  int line = 0;
  std::string expected;
};

std::vector<block> parse_script(const fs::path& path, std::string* error) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::vector<block> out;
  std::size_t i = 0;
  while (i < lines.size()) {
    block b;
    while (i < lines.size() && (lines[i].empty() || lines[i][0] == '#'))
      b.comments.push_back(lines[i++]);
    if (i >= lines.size()) {
      if (!b.comments.empty()) {
        b.command.clear();
        out.push_back(std::move(b));  // trailing comments only
      }
      break;
    }
    b.command = lines[i];
    b.line = static_cast<int>(i + 1);
    ++i;
    if (i >= lines.size() || lines[i] != "----") {
      *error = path.string() + ":" + std::to_string(b.line) + ": expected ---- after the command";
      return {};
    }
    ++i;
    while (i < lines.size() && !lines[i].empty()) b.expected += lines[i++] + "\n";
    if (i < lines.size()) ++i;  // the blank line that ends the block
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<std::string> script_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(CAIRN_RAFT_TESTDATA_DIR)) {
    if (e.path().extension() == ".txt") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class interaction : public ::testing::TestWithParam<std::string> {};

TEST_P(interaction, transcript_matches) {
  const fs::path path = fs::path(CAIRN_RAFT_TESTDATA_DIR) / (GetParam() + ".txt");
  std::string error;
  std::vector<block> blocks = parse_script(path, &error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_FALSE(blocks.empty()) << path << " has no commands";

  const char* rewrite_env = std::getenv("CAIRN_TEST_REWRITE");
  const bool rewrite = rewrite_env != nullptr && std::string(rewrite_env) == "1";
  interaction_env env;
  std::ostringstream rewritten;
  for (block& b : blocks) {
    for (const auto& c : b.comments) rewritten << c << "\n";
    if (b.command.empty()) continue;
    const std::string actual = env.handle(parse_command(b.command, b.line));
    rewritten << b.command << "\n----\n" << actual << "\n";
    if (!rewrite) {
      EXPECT_EQ(b.expected, actual) << path.string() << ":" << b.line << ": " << b.command;
      if (b.expected != actual) return;  // later blocks diverge anyway
    }
  }
  if (rewrite) {
    std::string text = rewritten.str();
    while (text.size() >= 2 && text.ends_with("\n\n")) text.pop_back();
    std::ofstream(path) << text;
  }
}

INSTANTIATE_TEST_SUITE_P(scripts, interaction, ::testing::ValuesIn(script_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace cairn::raft::testing
