#include <gtest/gtest.h>

#include <string>

#include "v3rpc/client_listener.h"

namespace cairn::v3rpc {
namespace {

TEST(v3rpc_sniff, http2_preface_is_grpc_at_any_split) {
  const std::string preface = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + "\x00\x00\x12\x04";
  for (std::size_t n = 0; n < 24; ++n) {
    EXPECT_EQ(sniff(preface.substr(0, n)), sniffed::undecided) << n;
  }
  EXPECT_EQ(sniff(preface.substr(0, 24)), sniffed::grpc);
  EXPECT_EQ(sniff(preface), sniffed::grpc);
  EXPECT_EQ(sniff("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), sniffed::other);
}

TEST(v3rpc_sniff, an_http1_request_line_is_http) {
  EXPECT_EQ(sniff("GET /version HTTP/1.1\r\n"), sniffed::http1);
  EXPECT_EQ(sniff("POST /v3/kv/range HTTP/1.0\nHost: x\n\n"), sniffed::http1);
  EXPECT_EQ(sniff("ANYTHING * HTTP/1.1\r\n"), sniffed::http1);    // cmux does not check the method
  EXPECT_EQ(sniff("GET /version HTTP/1.1"), sniffed::undecided);  // line not finished yet
  EXPECT_EQ(sniff("G"), sniffed::undecided);
  EXPECT_EQ(sniff(""), sniffed::undecided);
}

TEST(v3rpc_sniff, anything_else_is_closed) {
  EXPECT_EQ(sniff("hello there\r\n"), sniffed::other);
  EXPECT_EQ(sniff("GET\r\n"), sniffed::other);
  EXPECT_EQ(sniff("GET /\r\n"), sniffed::other);
  EXPECT_EQ(sniff("GET / HTTP/2.0\r\n"), sniffed::other);
  EXPECT_EQ(sniff("GET / HTTP/1.\r\n"), sniffed::other);
  EXPECT_EQ(sniff("GET /a b HTTP/1.1\r\n"), sniffed::other);
  EXPECT_EQ(sniff(std::string("\x16\x03\x01\x02\x00\x01", 6)), sniffed::undecided);  // TLS: wait
  EXPECT_EQ(sniff(std::string(4096, 'x')), sniffed::other);  // no line within cmux's 4096 bytes
  EXPECT_EQ(sniff(std::string(4095, 'x')), sniffed::undecided);
}

TEST(v3rpc_sniff, grpc_receive_limit_is_etcds) {
  EXPECT_EQ(grpc_receive_limit(1572864), 1572864 + 524288);
  EXPECT_EQ(grpc_receive_limit(0), 524288);
  EXPECT_EQ(grpc_receive_limit(1ULL << 40), 2147483647);
}

}  // namespace
}  // namespace cairn::v3rpc
