// The partition proxy must outlive the members it fronts: a member killed mid-stream closes its
// side, and the proxy's next write to it must fail quietly, not kill the test with SIGPIPE.
#include "support/peer_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "support/e2e.h"

namespace cairn::e2e {
namespace {

int listen_on(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 8) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(PeerProxy, AnUpstreamThatDiesMidStreamClosesTheLinkWithoutSigpipe) {
  const int target_port = free_port();
  const int proxy_port = free_port();
  const int listener = listen_on(target_port);
  ASSERT_GE(listener, 0);
  auto links = std::make_shared<link_table>();
  // A delayed link, so the member can die while the proxy holds data it has yet to forward.
  links->set_delay(std::chrono::milliseconds(300));
  peer_proxy proxy(proxy_port, target_port, 0, links);
  const int client = connect_to(proxy_port);
  ASSERT_GE(client, 0);
  const int member = accept(listener, nullptr, nullptr);
  ASSERT_GE(member, 0);

  // The proxy reads the first message and sleeps out the delay; meanwhile the member dies with
  // nothing unread (a clean FIN) and the client sends again. The proxy's late write reaches a
  // closed socket (answered by a reset), and its next write fails with EPIPE: a plain write()
  // raises SIGPIPE and kills this test process.
  const char a[] = "first";
  ASSERT_EQ(::send(client, a, sizeof a, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof a));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  close(member);
  const char b[] = "second";
  ASSERT_EQ(::send(client, b, sizeof b, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof b));

  bool closed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    pollfd p{client, POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      char c;
      if (::recv(client, &c, 1, MSG_DONTWAIT) <= 0) closed = true;
    }
  }
  close(client);
  close(listener);
  EXPECT_TRUE(closed) << "the proxy kept the link to a dead member open";
}

}  // namespace
}  // namespace cairn::e2e
