// The HTTP server over connected socket pairs: what goes out on the wire, connection lifetime
// (keep-alive, pipelining, close), refusals, streams, and that a stuck client holds only its own
// thread.
#include "http/server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <regex>
#include <thread>

#include "http/test_client.h"

namespace cairn::http {
namespace {

using namespace std::chrono_literals;
using testing::raw_client;

// A connected pair: the server end is handed to `s`, the client end returned.
raw_client connect(server& s, std::string already_read = {}) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  EXPECT_TRUE(s.serve(fds[0], std::move(already_read), "test"));
  return raw_client(fds[1]);
}

response echo(const request& r) {
  response out;
  out.headers = {{"X-Method", r.method}, {"Content-Type", "text/plain"}};
  out.body = r.method + " " + r.path + (r.raw_query.empty() ? "" : "?" + r.raw_query) +
             (r.body.empty() ? "" : " body=" + r.body);
  return out;
}

TEST(http_server, answers_with_gos_head_layout) {
  server s(echo);
  raw_client c = connect(s);
  ASSERT_TRUE(c.send("GET /version?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  // Handler headers sorted by name, then Date and Content-Length; no Connection header.
  const std::regex layout(
      "HTTP/1\\.1 200 OK\r\nContent-Type: text/plain\r\nX-Method: GET\r\n"
      "Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT\r\n"
      "Content-Length: 16\r\n\r\nGET /version\\?x=1");
  EXPECT_TRUE(std::regex_match(r->raw, layout)) << r->raw;
}

TEST(http_server, an_untyped_body_gets_a_sniffed_type_after_the_length) {
  server s([](const request& r) {
    response out;
    out.body = r.path == "/bin" ? std::string("\x00\x01", 2) : std::string("{\"health\":\"true\"}");
    return out;
  });
  raw_client c = connect(s);
  ASSERT_TRUE(c.send("GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  // As etcd 3.4.23's /health came out of Go: Content-Type last, then Connection.
  const std::regex layout(
      "HTTP/1\\.1 200 OK\r\nDate: [^\r]+\r\nContent-Length: 17\r\n"
      "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
      "\\{\"health\":\"true\"\\}");
  EXPECT_TRUE(std::regex_match(r->raw, layout)) << r->raw;
  raw_client d = connect(s);
  ASSERT_TRUE(d.send("GET /bin HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto b = d.read_response();
  ASSERT_TRUE(b);
  EXPECT_EQ(*find_header(b->headers, "Content-Type"), "application/octet-stream");
}

TEST(http_server, keeps_the_connection_for_more_requests) {
  server s(echo);
  raw_client c = connect(s);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        c.send("POST /n HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n" + std::to_string(i)));
    auto r = c.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "POST /n body=" + std::to_string(i));
  }
  // Connection: close is honoured and announced.
  ASSERT_TRUE(c.send("GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto last = c.read_response();
  ASSERT_TRUE(last);
  EXPECT_EQ(*find_header(last->headers, "Connection"), "close");
  EXPECT_TRUE(c.wait_eof());
}

TEST(http_server, pipelined_requests_are_all_answered_in_order) {
  server s(echo);
  raw_client c = connect(s);
  ASSERT_TRUE(c.send("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = c.read_response();
  auto second = c.read_response();
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  EXPECT_EQ(first->body, "GET /one");
  EXPECT_EQ(second->body, "GET /two");
}

TEST(http_server, bytes_read_before_handoff_come_first) {
  server s(echo);
  raw_client c = connect(s, "GET /sniffed HTTP/1.1\r\nHo");
  ASSERT_TRUE(c.send("st: x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /sniffed");
}

TEST(http_server, malformed_input_gets_gos_400_and_a_close) {
  server s(echo);
  raw_client c = connect(s);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_TRUE(c.wait_eof());
  EXPECT_EQ(c.leftover(),
            "HTTP/1.1 400 Bad Request: missing required Host header\r\nContent-Type: text/plain; "
            "charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: missing required Host "
            "header");

  raw_client d = connect(s);
  ASSERT_TRUE(d.send("this is not http\r\n\r\n"));
  EXPECT_TRUE(d.wait_eof());
  EXPECT_TRUE(d.leftover().starts_with("HTTP/1.1 400 Bad Request\r\n")) << d.leftover();
}

TEST(http_server, oversized_head_gets_431_and_a_close) {
  server_options o;
  o.request_limits.max_header_bytes = 512;
  server s(echo, o);
  raw_client c = connect(s);
  // The server answers as soon as the limit is passed, before the client finishes.
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8000, 'a')));
  EXPECT_TRUE(c.wait_eof());
  EXPECT_TRUE(c.leftover().starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
      << c.leftover();
}

TEST(http_server, a_stalled_client_does_not_hold_up_others) {
  std::atomic<int> answered{0};
  server s([&](const request& r) {
    ++answered;
    return echo(r);
  });
  raw_client stalled = connect(s);
  ASSERT_TRUE(stalled.send("GET /slow HTTP/1.1\r\nHost: x\r\nX-Partial: "));  // and nothing more
  raw_client other = connect(s);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(other.send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = other.read_response();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "GET /fast");
  }
  EXPECT_EQ(answered.load(), 5);
  // The stalled one is still served once it finishes.
  ASSERT_TRUE(stalled.send("1\r\n\r\n"));
  auto late = stalled.read_response();
  ASSERT_TRUE(late);
  EXPECT_EQ(late->body, "GET /slow");
}

TEST(http_server, expect_100_continue_gets_an_interim_answer) {
  server s(echo);
  raw_client c = connect(s);
  ASSERT_TRUE(
      c.send("PUT /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto interim = c.read_response();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->raw, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.send("hello"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "PUT /x body=hello");
}

TEST(http_server, http10_gets_an_http10_answer_and_a_close) {
  server s(echo);
  raw_client c = connect(s);
  ASSERT_TRUE(c.send("GET /old HTTP/1.0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->status_line == "HTTP/1.0 200 OK") << r->status_line;
  EXPECT_EQ(find_header(r->headers, "Connection"), nullptr);
  EXPECT_TRUE(c.wait_eof());
}

TEST(http_server, head_gets_no_body) {
  server s(echo);
  raw_client c = connect(s);
  ASSERT_TRUE(c.send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto head = c.read_response(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(*find_header(head->headers, "Content-Length"), "7");  // what GET would send
  auto after = c.read_response();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->body, "GET /after");  // so nothing of HEAD's body was in between
}

TEST(http_server, a_throwing_handler_answers_500) {
  server s([](const request&) -> response { throw std::runtime_error("boom"); });
  raw_client c = connect(s);
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

TEST(http_server, streams_chunks_then_keeps_the_connection) {
  server s([](const request& r) {
    if (r.path != "/watch") return echo(r);
    response out;
    out.headers = {{"Content-Type", "application/json"}};
    out.stream = [](stream_writer& w) {
      for (int i = 0; i < 3; ++i) {
        if (!w.write("{\"n\":" + std::to_string(i) + "}\n")) return;
      }
      w.write("");  // sends nothing (an empty chunk would end the body)
    };
    return out;
  });
  raw_client c = connect(s);
  ASSERT_TRUE(c.send("GET /watch HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->chunked);
  EXPECT_EQ(find_header(r->headers, "Content-Length"), nullptr);
  EXPECT_EQ(r->body, "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
  ASSERT_EQ(r->chunks.size(), 4u);
  EXPECT_EQ(r->chunks[0], "8\r\n{\"n\":0}\n\r\n");
  EXPECT_EQ(r->chunks[3], "0\r\n\r\n");
  ASSERT_TRUE(c.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto next = c.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "GET /next");
}

TEST(http_server, trailers_follow_the_last_chunk) {
  server s([](const request&) {
    response out;
    out.headers = {{"Trailer", "Grpc-Trailer-Content-Type"}};
    out.stream = [](stream_writer& w) { w.write("{}"); };
    out.trailers = {{"Grpc-Trailer-Content-Type", "application/grpc"}};
    return out;
  });
  raw_client c = connect(s);
  ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "{}");
  ASSERT_EQ(r->chunks.size(), 2u);
  EXPECT_EQ(r->chunks[1], "0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n");
  EXPECT_EQ(r->trailers, (header_list{{"Grpc-Trailer-Content-Type", "application/grpc"}}));
  // The connection is still usable.
  ASSERT_TRUE(c.send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_TRUE(c.read_response());
}

TEST(http_server, a_stream_notices_the_client_leaving) {
  std::promise<bool> ended;
  server s([&ended](const request&) {
    response out;
    out.stream = [&ended](stream_writer& w) {
      w.write("first\n");
      bool closed = false;
      for (int i = 0; i < 200 && !closed; ++i) closed = w.wait_closed(100ms);
      ended.set_value(closed);
    };
    return out;
  });
  auto result = ended.get_future();
  {
    raw_client c = connect(s);
    ASSERT_TRUE(c.send("GET /watch HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(c.wait_for("first\n"));
  }  // the client goes away
  ASSERT_EQ(result.wait_for(20s), std::future_status::ready);
  EXPECT_TRUE(result.get());
}

TEST(http_server, stop_ends_idle_connections_and_streams) {
  std::promise<void> streaming;
  std::atomic<bool> writer_failed{false};
  auto s = std::make_unique<server>([&](const request& r) {
    if (r.path != "/watch") return echo(r);
    response out;
    out.stream = [&](stream_writer& w) {
      w.write("x");
      streaming.set_value();
      while (!w.wait_closed(50ms)) {
      }
      writer_failed = !w.write("after");
    };
    return out;
  });
  raw_client idle = connect(*s);
  ASSERT_TRUE(idle.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.read_response());
  raw_client watcher = connect(*s);
  ASSERT_TRUE(watcher.send("GET /watch HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(streaming.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(s->connection_count(), 2u);
  s->stop();  // joins both connection threads
  EXPECT_TRUE(writer_failed.load());
  EXPECT_EQ(s->connection_count(), 0u);
  EXPECT_TRUE(idle.wait_eof());
  EXPECT_TRUE(watcher.wait_eof());
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  EXPECT_FALSE(s->serve(fds[0], {}));  // closed at once
  raw_client refused(fds[1]);
  EXPECT_TRUE(refused.wait_eof());
}

TEST(http_server, connection_limit_refuses_extra_connections) {
  server_options o;
  o.max_connections = 1;
  server s(echo, o);
  raw_client first = connect(s);
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  EXPECT_FALSE(s.serve(fds[0], {}));
  raw_client second(fds[1]);
  EXPECT_TRUE(second.wait_eof());
  ASSERT_TRUE(first.send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(first.read_response());
}

TEST(http_server, deadlines_close_idle_and_dawdling_connections) {
  server_options o;
  o.idle_timeout = 200ms;
  o.read_timeout = 200ms;
  server s(echo, o);
  raw_client idle = connect(s);
  ASSERT_TRUE(idle.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(idle.read_response());
  EXPECT_TRUE(idle.wait_eof(20s));  // nothing more sent: closed after idle_timeout

  raw_client dawdler = connect(s);
  ASSERT_TRUE(dawdler.send("GET /a HTTP/1.1\r\n"));
  // Trickling bytes does not extend the deadline of a request once started.
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    dawdler.send("X-A: b\r\n");
    closed = dawdler.wait_eof(50ms);
  }
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace cairn::http
