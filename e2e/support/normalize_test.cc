#include "support/normalize.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/e2e.h"

namespace cairn::e2e {
namespace {

TEST(normalize, masks_ids_terms_times_ports_and_sizes) {
  EXPECT_EQ(normalize_etcdctl_output(
                "127.0.0.1:41234, 8e9e05c52164694d, 3.5.24, 20 kB, true, false, 2, 4, 4, \n"),
            "127.0.0.1:<port>, <id>, 3.5.24, <size>, true, false, <term>, 4, 4, \n");
  EXPECT_EQ(normalize_etcdctl_output(
                R"({"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,)"
                R"("revision":5,"raft_term":2},"dbSize":20480,"leader":10276657743932975437})"),
            R"({"header":{"cluster_id":<id>,"member_id":<id>,"revision":5,"raft_term":<term>},)"
            R"("dbSize":<size>,"leader":<id>})");
  EXPECT_EQ(normalize_etcdctl_output("\"ClusterID\" : 123\n\"RaftTerm\" : 7\n\"Revision\" : 7\n"),
            "\"ClusterID\" : <id>\n\"RaftTerm\" : <term>\n\"Revision\" : 7\n");
  EXPECT_EQ(normalize_etcdctl_output("localhost:2379 is healthy: successfully committed proposal: "
                                     "took = 1.234567ms\n"),
            "localhost:<port> is healthy: successfully committed proposal: took = <time>\n");
  EXPECT_EQ(normalize_etcdctl_output(
                R"([{"endpoint":"127.0.0.1:2379","health":true,"took":"4.694562ms"}])"),
            R"([{"endpoint":"127.0.0.1:<port>","health":true,"took":"<time>"}])");
  EXPECT_EQ(normalize_etcdctl_output("{\"ts\":\"2026-11-22T07:31:02.123+0000\"}"),
            "{\"ts\":\"<time>\"}");
}

TEST(normalize, masks_the_padding_of_short_member_and_cluster_ids) {
  EXPECT_EQ(normalize_etcdctl_output("Member  5b339cd401c3336 added to cluster  7d1bd62e4f0bde6\n"),
            "Member <id> added to cluster <id>\n");
  EXPECT_EQ(normalize_etcdctl_output("Member 85b339cd401c3336 removed from cluster "
                                     "27d1bd62e4f0bde6\n"),
            "Member <id> removed from cluster <id>\n");
}

TEST(normalize, masks_the_member_id_of_alarm_list) {
  EXPECT_EQ(normalize_etcdctl_output("memberID:9111043226416186351 alarm:NOSPACE \n"),
            "memberID:<id> alarm:NOSPACE \n");
  EXPECT_EQ(normalize_etcdctl_output("notmemberID:12 revision:12"), "notmemberID:12 revision:12");
}

TEST(normalize, leaves_everything_else_alone) {
  // Keys, values, revisions, versions, counts, raft indexes and errors must still compare.
  for (const std::string s : {
           "foo\nbar\n",
           "{\"header\":{\"revision\":12},\"count\":3}",
           "\"Revision\" : 12\n\"RaftIndex\" : 9\n",
           "Error: etcdserver: mvcc: required revision has been compacted\n",
           "compacted revision 4\n",
           "deadbeef\n",  // a value that looks like hex but is too short for an id
           "3.5.24\n",
       }) {
    EXPECT_EQ(normalize_etcdctl_output(s), s);
  }
  // The raft index and applied index columns of `endpoint status` are not masked.
  EXPECT_EQ(normalize_etcdctl_output("127.0.0.1:1, 8e9e05c52164694d, 3.5.24, 20 kB, true, false, "
                                     "2, 4, 5, \n"),
            "127.0.0.1:<port>, <id>, 3.5.24, <size>, true, false, <term>, 4, 5, \n");
}

TEST(normalize, tables_compare_whatever_the_column_widths) {
  const std::string etcd =
      "+-----------------+------------------+---------+\n"
      "|    ENDPOINT     |        ID        | VERSION |\n"
      "+-----------------+------------------+---------+\n"
      "| 127.0.0.1:2379  | 8e9e05c52164694d |  3.4.23 |\n";
  const std::string ours =
      "+------------------+------------------+---------+\n"
      "|     ENDPOINT     |        ID        | VERSION |\n"
      "+------------------+------------------+---------+\n"
      "| 127.0.0.1:41234  | 1e9e05c52164694d |  3.4.23 |\n";
  EXPECT_EQ(normalize_etcdctl_output(etcd), normalize_etcdctl_output(ours));
  // A different cell is still different.
  std::string other = ours;
  other.replace(other.find("3.4.23"), 6, "3.4.22");
  EXPECT_NE(normalize_etcdctl_output(etcd), normalize_etcdctl_output(other));
}

TEST(normalize, the_status_table_term_column_is_masked) {
  EXPECT_EQ(normalize_etcdctl_output("| 127.0.0.1:2379 | 8e9e05c52164694d | 3.4.23 | 20 kB | true "
                                     "| false | 2 | 4 | 4 | |\n"),
            "| 127.0.0.1:<port> | <id> | 3.4.23 | <size> | true | false | <term> | 4 | 4 | |\n");
}

TEST(listed_differences, the_compatibility_document_has_a_block_that_compiles) {
  const auto listed = read_listed_differences(source_dir() / "docs" / "compatibility.md");
  EXPECT_FALSE(listed.empty());
}

TEST(listed_differences, masks_what_a_pattern_matches_and_nothing_else) {
  temp_dir dir;
  const auto md = dir.path() / "c.md";
  std::ofstream(md)
      << "text\n```etcdctl-differences\n# a comment\n\"version\":\"3\\.[45]\\.\\d+\"\n"
         "```\n";
  const auto listed = read_listed_differences(md);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(mask_listed(R"({"version":"3.4.23","x":1})", listed), R"({<differs>,"x":1})");
  EXPECT_EQ(mask_listed(R"({"version":"2.3.8"})", listed), R"({"version":"2.3.8"})");

  std::ofstream(md, std::ios::trunc) << "no block here\n";
  EXPECT_THROW(read_listed_differences(md), std::runtime_error);
  std::ofstream(md, std::ios::trunc) << "```etcdctl-differences\n(unclosed\n```\n";
  EXPECT_THROW(read_listed_differences(md), std::runtime_error);
}

}  // namespace
}  // namespace cairn::e2e
