#include "http/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cairn::http {
namespace {

using step = request_reader::step;

// Feeds `input` whole and collects every request up to the first non-ready step.
struct outcome {
  std::vector<request> requests;
  step last = step::need_more;
  parse_error error;
};

outcome read_all(std::string_view input, limits l = {}) {
  request_reader reader(l);
  reader.feed(input);
  outcome out;
  while (true) {
    out.last = reader.advance();
    if (out.last == step::send_continue) continue;
    if (out.last != step::ready) break;
    out.requests.push_back(reader.take());
  }
  out.error = reader.error();
  return out;
}

// The error a single request earns.
parse_error refusal(std::string_view input, limits l = {}) {
  const outcome out = read_all(input, l);
  EXPECT_EQ(out.last, step::failed) << input;
  return out.error;
}

TEST(http_parser, reads_a_get_request) {
  const outcome out = read_all(
      "GET /health?exclude=NOSPACE&serializable=true HTTP/1.1\r\nHost: 127.0.0.1:2379\r\n"
      "User-Agent: curl/7.88\r\nAccept: */*\r\n\r\n");
  ASSERT_EQ(out.requests.size(), 1u);
  const request& r = out.requests[0];
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/health?exclude=NOSPACE&serializable=true");
  EXPECT_EQ(r.path, "/health");
  EXPECT_EQ(r.raw_query, "exclude=NOSPACE&serializable=true");
  EXPECT_EQ(r.query_value("exclude"), "NOSPACE");
  EXPECT_EQ(r.minor_version, 1);
  EXPECT_EQ(r.host, "127.0.0.1:2379");
  EXPECT_TRUE(r.keep_alive);
  EXPECT_TRUE(r.body.empty());
  ASSERT_NE(find_header(r.headers, "user-agent"), nullptr);
  EXPECT_EQ(*find_header(r.headers, "user-agent"), "curl/7.88");
  EXPECT_EQ(out.last, step::need_more);
}

TEST(http_parser, byte_by_byte_gives_the_same_request) {
  const std::string input =
      "POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"key\":\"a\"}";
  request_reader reader;
  std::vector<request> got;
  for (char c : input) {
    reader.feed(std::string_view(&c, 1));
    step s = reader.advance();
    if (s == step::ready) got.push_back(reader.take());
    ASSERT_NE(s, step::failed);
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "{\"key\":\"a\"}");
  EXPECT_EQ(got[0].path, "/v3/kv/range");
  EXPECT_FALSE(reader.mid_request());
}

TEST(http_parser, pipelined_requests_come_out_in_order) {
  const outcome out = read_all(
      "GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
      "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(out.requests.size(), 3u);
  EXPECT_EQ(out.requests[0].path, "/version");
  EXPECT_EQ(out.requests[1].path, "/a");
  EXPECT_EQ(out.requests[1].body, "abc");
  EXPECT_EQ(out.requests[2].path, "/health");
  EXPECT_FALSE(out.requests[2].keep_alive);
}

TEST(http_parser, a_request_split_anywhere_is_read_whole) {
  const std::string input =
      "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer: t\r\n\r\n"
      "GET /y HTTP/1.1\r\nHost: h\r\n\r\n";
  for (std::size_t cut = 1; cut < input.size(); ++cut) {
    request_reader reader;
    reader.feed(input.substr(0, cut));
    std::vector<request> got;
    for (int round = 0; round < 2; ++round) {
      step s;
      while ((s = reader.advance()) == step::ready) got.push_back(reader.take());
      ASSERT_EQ(s, step::need_more) << "cut at " << cut;
      if (round == 0) reader.feed(input.substr(cut));
    }
    ASSERT_EQ(got.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(got[0].body, "abc0123456789abcdef") << "cut at " << cut;
    EXPECT_EQ(got[1].path, "/y");
  }
}

TEST(http_parser, expect_100_continue_is_reported_once_before_the_body) {
  request_reader reader;
  reader.feed("POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  EXPECT_EQ(reader.advance(), step::send_continue);
  EXPECT_EQ(reader.advance(), step::need_more);
  reader.feed("bo");
  EXPECT_EQ(reader.advance(), step::need_more);
  reader.feed("dy");
  ASSERT_EQ(reader.advance(), step::ready);
  EXPECT_EQ(reader.take().body, "body");
  // Body already there: nothing to wait for, no 100.
  reader.feed("POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz");
  EXPECT_EQ(reader.advance(), step::ready);
  // Another expectation: 417, as Go.
  EXPECT_EQ(refusal("POST /a HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n").status, 417);
}

TEST(http_parser, http10_and_connection_tokens) {
  const outcome out = read_all(
      "GET /a HTTP/1.0\r\n\r\n"
      "GET /b HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
      "GET /c HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n");
  ASSERT_EQ(out.requests.size(), 3u);
  EXPECT_EQ(out.requests[0].minor_version, 0);
  EXPECT_FALSE(out.requests[0].keep_alive);  // HTTP/1.0 needs no Host and closes by default
  EXPECT_TRUE(out.requests[1].keep_alive);
  EXPECT_FALSE(out.requests[2].keep_alive);
}

TEST(http_parser, odd_but_valid_forms) {
  const outcome out = read_all(
      "\r\n\r\nGET http://example.com:2379/version?x=1 HTTP/1.1\nHost: other\n"
      "X-Folded: one\r\n  two\r\n\ttwo-b\r\nX-Empty:\r\n\r\n"
      "GET /a%20b/%2Fc HTTP/1.1\r\nhost: x\r\n\r\n");
  ASSERT_EQ(out.requests.size(), 2u);
  const request& r = out.requests[0];
  EXPECT_EQ(r.path, "/version");
  EXPECT_EQ(r.raw_query, "x=1");
  EXPECT_EQ(r.host, "example.com:2379");  // the absolute-form authority wins, as in Go
  EXPECT_EQ(*find_header(r.headers, "X-Folded"), "one two two-b");
  EXPECT_EQ(*find_header(r.headers, "X-Empty"), "");
  EXPECT_EQ(out.requests[1].path, "/a b//c");
}

TEST(http_parser, refusals_are_gos) {
  struct row {
    std::string input;
    int status;
    std::string text;
  };
  const std::vector<row> rows = {
      {"GET / HTTP/1.1\r\n\r\n", 400, "400 Bad Request: missing required Host header"},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
       "400 Bad Request: too many Host headers"},
      {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "400 Bad Request: malformed Host header"},
      {"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400,
       "400 Bad Request: invalid header name"},
      {"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, "400 Bad Request"},
      {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, "400 Bad Request"},
      {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "400 Bad Request"},
      {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
       "400 Bad Request"},
      {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "501 Not Implemented"},
      {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
       "\r\n\r\n",
       501, "501 Not Implemented"},
      {"GET\r\n\r\n", 400, "400 Bad Request"},
      {"GET /\r\n\r\n", 400, "400 Bad Request"},
      {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400, "400 Bad Request: unsupported protocol version"},
      {"GET / HTTPS/1.1\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
      {"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
      {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
      {"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
      {"GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
      {std::string("GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "400 Bad Request"},
      {"GET / HTTP/1.1\r\n folded-first\r\nHost: x\r\n\r\n", 400, "400 Bad Request"},
      {std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n"), 400, "400 Bad Request"},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
       "400 Bad Request"},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400,
       "400 Bad Request"},
  };
  for (const row& r : rows) {
    const parse_error e = refusal(r.input);
    EXPECT_EQ(e.status, r.status) << r.input;
    EXPECT_EQ(e.public_text, r.text) << r.input;
  }
}

TEST(http_parser, error_bytes_are_what_go_sends) {
  // Captured from etcd 3.4.23 (Go's net/http) for a request without Host.
  EXPECT_EQ(format_parse_error(refusal("GET / HTTP/1.1\r\n\r\n")),
            "HTTP/1.1 400 Bad Request: missing required Host header\r\nContent-Type: text/plain; "
            "charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: missing required Host "
            "header");
  EXPECT_EQ(
      format_parse_error(refusal("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")),
      "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Connection: close\r\n\r\nUnsupported transfer encoding");
}

TEST(http_parser, head_limit_is_max_header_bytes_plus_4096) {
  const limits l{.max_header_bytes = 1000, .max_body_bytes = 100};
  const std::string start = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ";
  const std::string end = "\r\n\r\n";
  // Exactly at the limit: accepted.
  const std::string fits = start + std::string(5096 - start.size() - end.size(), 'a') + end;
  ASSERT_EQ(fits.size(), 5096u);
  EXPECT_EQ(read_all(fits, l).requests.size(), 1u);
  // One byte more: 431, whether the head is complete or still arriving.
  const std::string over = start + std::string(5097 - start.size() - end.size(), 'a') + end;
  EXPECT_EQ(refusal(over, l).status, 431);
  EXPECT_EQ(refusal(over, l).public_text, "431 Request Header Fields Too Large");
  EXPECT_EQ(refusal(start + std::string(6000, 'a'), l).status, 431);
}

TEST(http_parser, body_limit_is_413) {
  const limits l{.max_header_bytes = 1000, .max_body_bytes = 5};
  EXPECT_EQ(
      read_all("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12345", l).requests.size(),
      1u);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n", l).status, 413);
  EXPECT_EQ(refusal("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nabc\r\n3\r\ndef\r\n",
                    l)
                .status,
            413);
  EXPECT_EQ(
      refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", l)
          .status,
      400);
}

TEST(http_parser, mid_request_tells_a_clean_end_from_a_truncated_one) {
  request_reader reader;
  EXPECT_FALSE(reader.mid_request());
  reader.feed("\r\n");
  EXPECT_EQ(reader.advance(), step::need_more);
  EXPECT_FALSE(reader.mid_request());
  reader.feed("GET / HTTP/1.1\r\nHo");
  EXPECT_EQ(reader.advance(), step::need_more);
  EXPECT_TRUE(reader.mid_request());
  reader.feed("st: x\r\n\r\n");
  ASSERT_EQ(reader.advance(), step::ready);
  reader.take();
  EXPECT_FALSE(reader.mid_request());
}

}  // namespace
}  // namespace cairn::http
