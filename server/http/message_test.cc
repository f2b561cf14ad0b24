#include "http/message.h"

#include <gtest/gtest.h>

#include <chrono>

namespace cairn::http {
namespace {

TEST(http_message, json_quote_escapes_as_go_does) {
  EXPECT_EQ(json_quote(""), R"("")");
  EXPECT_EQ(json_quote("plain text"), R"("plain text")");
  EXPECT_EQ(json_quote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_quote("line\nfeed\r\ttab"), R"("line\nfeed\r\ttab")");
  EXPECT_EQ(json_quote(std::string_view("\x01\x1f", 2)), R"("\u0001\u001f")");
  // Go's encoder is HTML-safe by default.
  EXPECT_EQ(json_quote("<a&b>"), R"("\u003ca\u0026b\u003e")");
  // Valid UTF-8 passes through; invalid bytes become U+FFFD one byte at a time.
  EXPECT_EQ(json_quote("h\xc3\xa9"), "\"h\xc3\xa9\"");
  EXPECT_EQ(json_quote("\xff\xc3"), R"("\ufffd\ufffd")");
  EXPECT_EQ(json_quote("\xe2\x80\xa8"), R"("\u2028")");
  // An overlong encoding of '/' and a UTF-16 surrogate are not valid UTF-8.
  EXPECT_EQ(json_quote("\xc0\xaf"), R"("\ufffd\ufffd")");
  EXPECT_EQ(json_quote("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");
}

TEST(http_message, unescape_and_query_follow_go) {
  EXPECT_EQ(unescape("a%20b+c", false), "a b+c");
  EXPECT_EQ(unescape("a%20b+c", true), "a b c");
  EXPECT_EQ(unescape("%2F%2f", false), "//");
  EXPECT_FALSE(unescape("%zz", false));
  EXPECT_FALSE(unescape("abc%2", false));
  EXPECT_FALSE(unescape("%", true));

  using kv = std::pair<std::string, std::string>;
  EXPECT_EQ(
      parse_query("exclude=NOSPACE&exclude=CORRUPT&serializable=true"),
      (std::vector<kv>{{"exclude", "NOSPACE"}, {"exclude", "CORRUPT"}, {"serializable", "true"}}));
  // A key without '=' has an empty value; bad escapes and ';' drop only their own pair.
  EXPECT_EQ(parse_query("verbose&x=%zz&y=1;z=2&&k=a+b%21"),
            (std::vector<kv>{{"verbose", ""}, {"k", "a b!"}}));
  EXPECT_TRUE(parse_query("").empty());
}

TEST(http_message, request_query_helpers) {
  request r;
  r.query = parse_query("verbose&exclude=a&exclude=b");
  EXPECT_TRUE(r.has_query("verbose"));
  EXPECT_FALSE(r.has_query("serializable"));
  EXPECT_EQ(r.query_value("exclude"), "a");
  EXPECT_EQ(r.query_value("missing"), "");
  EXPECT_EQ(r.query_values("exclude"), (std::vector<std::string>{"a", "b"}));
}

TEST(http_message, headers_match_in_any_case) {
  header_list h = {{"Content-Type", "a"}, {"content-type", "b"}, {"X-Y", "c"}};
  ASSERT_NE(find_header(h, "CONTENT-TYPE"), nullptr);
  EXPECT_EQ(*find_header(h, "CONTENT-TYPE"), "a");
  EXPECT_EQ(find_header(h, "X-Z"), nullptr);
  EXPECT_TRUE(iequals("Keep-Alive", "keep-alive"));
  EXPECT_FALSE(iequals("keep-alive", "keep-aliv"));
}

TEST(http_message, go_error_bodies) {
  const response nf = not_found();
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.body, "404 page not found\n");
  EXPECT_EQ(nf.headers, (header_list{{"Content-Type", "text/plain; charset=utf-8"},
                                     {"X-Content-Type-Options", "nosniff"}}));
  const response na = method_not_allowed("GET");
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(na.body, "Method Not Allowed\n");
  ASSERT_NE(find_header(na.headers, "Allow"), nullptr);
  EXPECT_EQ(*find_header(na.headers, "Allow"), "GET");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(503), "Service Unavailable");
  EXPECT_EQ(reason_phrase(299), "");
}

TEST(http_message, date_is_imf_fixdate) {
  // 2026-11-22 04:30:27 UTC (the Date header of a captured etcd answer).
  const auto t = std::chrono::system_clock::time_point(std::chrono::seconds(1795321827));
  EXPECT_EQ(http_date(t), "Sun, 22 Nov 2026 04:30:27 GMT");
}

}  // namespace
}  // namespace cairn::http
