#include "support/peer_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace cairn::e2e {

void link_table::set_pid(int member, pid_t pid) {
  std::lock_guard lock(mu_);
  pids_[member] = pid;
}

void link_table::partition(const std::set<int>& side, int members) {
  std::lock_guard lock(mu_);
  for (int a = 0; a < members; ++a) {
    for (int b = a + 1; b < members; ++b) {
      if (side.contains(a) != side.contains(b)) cut_.insert({a, b});
    }
  }
}

void link_table::cut(int a, int b) {
  std::lock_guard lock(mu_);
  cut_.insert({std::min(a, b), std::max(a, b)});
}

void link_table::heal() {
  std::lock_guard lock(mu_);
  cut_.clear();
  delay_ms_ = 0;
}

bool link_table::is_cut(int a, int b) const {
#ifdef CAIRN_PLANTED_BUG_PROXY_NEVER_CUTS
  return false;
#endif
  if (a < 0 || b < 0) return false;
  std::lock_guard lock(mu_);
  return cut_.contains({std::min(a, b), std::max(a, b)});
}

int link_table::member_of_socket(unsigned long inode) const {
  const std::string want = "socket:[" + std::to_string(inode) + "]";
  std::map<int, pid_t> pids;
  {
    std::lock_guard lock(mu_);
    pids = pids_;
  }
  for (const auto& [member, pid] : pids) {
    std::error_code ec;
    for (const auto& fd :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
      std::error_code lec;
      if (std::filesystem::read_symlink(fd.path(), lec).string() == want) return member;
    }
  }
  return -1;
}

namespace {

// The inode of the socket whose local port is `local` and remote port `remote`, from
// /proc/net/tcp and /proc/net/tcp6 (gRPC may use v4-mapped IPv6 sockets); 0 if none.
unsigned long socket_inode(int local, int remote) {
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string sl, local_addr, remote_addr, state, queues, timer, retransmits, uid, timeout;
      unsigned long inode = 0;
      fields >> sl >> local_addr >> remote_addr >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      auto port = [](const std::string& addr) {
        return static_cast<int>(std::stoul(addr.substr(addr.find(':') + 1), nullptr, 16));
      };
      if (local_addr.find(':') == std::string::npos) continue;
      if (port(local_addr) == local && port(remote_addr) == remote) return inode;
    }
  }
  return 0;
}

}  // namespace

peer_proxy::peer_proxy(int listen_port, int target_port, int self,
                       std::shared_ptr<link_table> links)
    : listen_port_(listen_port), target_port_(target_port), self_(self), links_(std::move(links)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(listen_port));
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0) {
    close(listen_fd_);
    throw std::runtime_error("peer proxy cannot listen on port " + std::to_string(listen_port));
  }
  acceptor_ = std::thread([this] { accept_loop(); });
}

peer_proxy::~peer_proxy() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  close(listen_fd_);
  std::vector<std::thread> pumps;
  {
    std::lock_guard lock(mu_);
    pumps.swap(pumps_);
  }
  for (auto& t : pumps) t.join();
}

void peer_proxy::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    getpeername(client, reinterpret_cast<sockaddr*>(&peer), &len);
    const int from = links_->member_of_socket(socket_inode(ntohs(peer.sin_port), listen_port_));
    if (links_->is_cut(from, self_)) {
      ++refused_;
      close(client);
      continue;
    }
    const int upstream = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(target_port_));
    if (connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(upstream);
      close(client);
      continue;
    }
    std::lock_guard lock(mu_);
    pumps_.emplace_back([this, client, upstream, from] { pump(client, upstream, from); });
  }
}

void peer_proxy::pump(int client, int upstream, int from) {
  char buf[64 * 1024];
  auto forward = [&](int in, int out) {
    const ssize_t n = read(in, buf, sizeof buf);
    if (n <= 0) return false;
    if (const auto d = links_->delay(); d.count() > 0) std::this_thread::sleep_for(d);
    for (ssize_t done = 0; done < n;) {
      // A member killed mid-stream leaves a closed socket: send() with MSG_NOSIGNAL reports
      // EPIPE where write() would raise SIGPIPE and kill the test process.
#ifdef CAIRN_PLANTED_BUG_PROXY_WRITE_SIGPIPE
      const ssize_t w = write(out, buf + done, static_cast<size_t>(n - done));
#else
      const ssize_t w = ::send(out, buf + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
#endif
      if (w <= 0) return false;
      done += w;
    }
    return true;
  };
  while (!stop_ && !links_->is_cut(from, self_)) {
    pollfd p[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
    if (poll(p, 2, 50) < 0) break;
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !forward(client, upstream)) break;
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !forward(upstream, client)) break;
  }
  close(client);
  close(upstream);
}

}  // namespace cairn::e2e
