// Go's value syntax, as etcd's flags read it. Expected results are what Go's strconv and
// time.ParseDuration give for the same text.
#include "cmd/values.h"

#include <gtest/gtest.h>

namespace cairn::cmd {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(GoBool, AcceptsGoSpellingsOnly) {
  for (const char* t : {"1", "t", "T", "TRUE", "true", "True"}) {
    ASSERT_TRUE(parse_go_bool(t).has_value()) << t;
    EXPECT_TRUE(*parse_go_bool(t)) << t;
  }
  for (const char* f : {"0", "f", "F", "FALSE", "false", "False"}) {
    ASSERT_TRUE(parse_go_bool(f).has_value()) << f;
    EXPECT_FALSE(*parse_go_bool(f)) << f;
  }
  for (const char* bad : {"", "yes", "no", "on", "tRUE", "2", " true"}) {
    EXPECT_FALSE(parse_go_bool(bad).has_value()) << bad;
  }
}

TEST(GoUint, BaseZeroLikeStrconv) {
  struct row {
    const char* text;
    std::uint64_t value;
  };
  for (const row& r : std::initializer_list<row>{{"0", 0},
                                                 {"100000", 100000},
                                                 {"0x10", 16},
                                                 {"0X1f", 31},
                                                 {"0o17", 15},
                                                 {"017", 15},
                                                 {"0b101", 5},
                                                 {"1_000", 1000},
                                                 {"0x_ff", 255},
                                                 {"18446744073709551615", UINT64_MAX}}) {
    auto v = parse_go_uint(r.text);
    ASSERT_TRUE(v.has_value()) << r.text << ": " << v.error();
    EXPECT_EQ(*v, r.value) << r.text;
  }
  for (const char* bad : {"", "-1", "+1", "abc", "08", "1_", "_1", "1__0", "0x", "1.5", " 1"}) {
    EXPECT_FALSE(parse_go_uint(bad).has_value()) << bad;
  }
  EXPECT_EQ(parse_go_uint("18446744073709551616").error(), "value out of range");
  EXPECT_EQ(parse_go_uint("4294967296", 32).error(), "value out of range");
  EXPECT_EQ(*parse_go_uint("4294967295", 32), 4294967295u);
}

TEST(GoInt, SignsAndRange) {
  EXPECT_EQ(*parse_go_int("-5"), -5);
  EXPECT_EQ(*parse_go_int("+5"), 5);
  EXPECT_EQ(*parse_go_int("-0x10"), -16);
  EXPECT_EQ(*parse_go_int("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(*parse_go_int("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(parse_go_int("9223372036854775808").error(), "value out of range");
  EXPECT_FALSE(parse_go_int("--5").has_value());
  EXPECT_FALSE(parse_go_int("5-").has_value());
}

TEST(GoDuration, ParsesLikeTimeParseDuration) {
  struct row {
    const char* text;
    nanoseconds value;
  };
  for (const row& r : std::initializer_list<row>{
           {"0", nanoseconds(0)},
           {"-0", nanoseconds(0)},
           {"5s", seconds(5)},
           {"300ms", milliseconds(300)},
           {"10m", minutes(10)},
           {"2h", hours(2)},
           {"1h30m", minutes(90)},
           {"1.5s", milliseconds(1500)},
           {".5s", milliseconds(500)},
           {"1.s", seconds(1)},
           {"-1.5h", -minutes(90)},
           {"+5s", seconds(5)},
           {"100ns", nanoseconds(100)},
           {"7us", nanoseconds(7000)},
           {"7\xC2\xB5s", nanoseconds(7000)},
           {"7\xCE\xBCs", nanoseconds(7000)},
           {"1h1m1s1ms1us1ns",
            hours(1) + minutes(1) + seconds(1) + milliseconds(1) + nanoseconds(1001)},
           {"2562047h47m16.854775807s", nanoseconds(INT64_MAX)},
       }) {
    auto d = parse_go_duration(r.text);
    ASSERT_TRUE(d.has_value()) << r.text << ": " << d.error();
    EXPECT_EQ(d->count(), r.value.count()) << r.text;
  }
  for (const char* bad : {"", "5", "-", "s", "5x", "1d", ".s", "5 s", "1h 30m", "2562047h48m"}) {
    EXPECT_FALSE(parse_go_duration(bad).has_value()) << bad;
  }
  EXPECT_NE(parse_go_duration("5").error().find("missing unit"), std::string::npos);
  EXPECT_NE(parse_go_duration("5d").error().find("unknown unit \"d\""), std::string::npos);
}

TEST(GoDuration, FormatsLikeDurationString) {
  EXPECT_EQ(format_go_duration(nanoseconds(0)), "0s");
  EXPECT_EQ(format_go_duration(milliseconds(100)), "100ms");
  EXPECT_EQ(format_go_duration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(format_go_duration(seconds(5)), "5s");
  EXPECT_EQ(format_go_duration(minutes(10)), "10m0s");
  EXPECT_EQ(format_go_duration(hours(2)), "2h0m0s");
  EXPECT_EQ(format_go_duration(minutes(90) + seconds(5)), "1h30m5s");
  EXPECT_EQ(format_go_duration(nanoseconds(1500)), "1.5\xC2\xB5s");
  EXPECT_EQ(format_go_duration(nanoseconds(7)), "7ns");
  EXPECT_EQ(format_go_duration(-seconds(3)), "-3s");
  // Formatting then parsing gives the value back.
  for (const nanoseconds d : std::initializer_list<nanoseconds>{
           nanoseconds(1), milliseconds(10), minutes(1) + nanoseconds(1), nanoseconds(INT64_MAX),
           nanoseconds(INT64_MIN + 1)}) {
    EXPECT_EQ(parse_go_duration(format_go_duration(d))->count(), d.count());
  }
}

TEST(Url, AcceptsWhatEtcdAccepts) {
  auto u = parse_url("http://127.0.0.1:2379");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 2379);
  EXPECT_TRUE(u->host_is_ip());
  EXPECT_EQ(u->to_string(), "http://127.0.0.1:2379");

  auto v6 = parse_url("https://[::1]:2380");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_TRUE(v6->host_is_ip());
  EXPECT_EQ(v6->to_string(), "https://[::1]:2380");

  EXPECT_EQ(parse_url(" HTTP://localhost:1 ")->to_string(), "http://localhost:1");
  EXPECT_FALSE(parse_url("http://localhost:1")->host_is_ip());
  EXPECT_TRUE(parse_url("unix://localhost:12345").has_value());
  EXPECT_TRUE(parse_url("unixs://localhost:12345").has_value());
}

TEST(Url, RejectsWithEtcdsMessages) {
  EXPECT_EQ(parse_url("foo").error(), "URL scheme must be http, https, unix, or unixs: foo");
  EXPECT_EQ(parse_url("ftp://a:1").error(),
            "URL scheme must be http, https, unix, or unixs: ftp://a:1");
  EXPECT_EQ(parse_url("http://a").error(),
            "URL address does not have the form \"host:port\": http://a");
  EXPECT_EQ(parse_url("http://a:1/x").error(), "URL must not contain a path: http://a:1/x");
  for (const char* bad : {"http://::1:2379", "http://a:", "http://a:70000", "http://a:b",
                          "http:a:1", "unix:///tmp/sock"}) {
    EXPECT_FALSE(parse_url(bad).has_value()) << bad;
  }
}

TEST(UrlList, SortedWithoutDuplicates) {
  auto list = parse_url_list("http://b:1,http://a:1, http://b:1");
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(format_url_list(*list), "http://a:1,http://b:1");
  EXPECT_FALSE(parse_url_list("").has_value());
  EXPECT_FALSE(parse_url_list("http://a:1,").has_value());
}

TEST(Commas, SplitKeepsEmptyItemsAndSpaces) {
  EXPECT_TRUE(split_commas("").empty());
  EXPECT_EQ(split_commas("a, b,,c"), (std::vector<std::string>{"a", " b", "", "c"}));
  EXPECT_EQ(join_commas({"a", "b"}), "a,b");
}

}  // namespace
}  // namespace cairn::cmd
