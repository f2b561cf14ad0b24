// TCP proxies on members' peer links, for partition tests on loopback.
//
// Every member's advertised peer URL is a proxy in front of its real peer listener, so every
// connection one member opens to another passes through the callee's proxy. All of them come
// from 127.0.0.1, so the proxy tells the caller apart by its process: the connecting socket's
// inode (from /proc/net/tcp and tcp6) among the open files of each member's process
// (/proc/<pid>/fd). A cut between two members closes the connections between them, both ways,
// and closes new ones as soon as they are accepted, until healed.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace cairn::e2e {

// Which members run as which process, and which member pairs are cut. Shared by the proxies
// of one cluster; any thread.
class link_table {
 public:
  void set_pid(int member, pid_t pid);
  // Cuts every link between a member in `side` and one outside it (of `members`).
  void partition(const std::set<int>& side, int members);
  // Cuts the links between a and b only.
  void cut(int a, int b);
  // Every byte through a proxy waits this long before it is forwarded (0: none); heal() clears it.
  void set_delay(std::chrono::milliseconds d) { delay_ms_ = static_cast<int>(d.count()); }
  std::chrono::milliseconds delay() const { return std::chrono::milliseconds(delay_ms_.load()); }
  void heal();
  bool is_cut(int a, int b) const;
  // The member whose process holds the socket with this inode; -1 if none does.
  int member_of_socket(unsigned long inode) const;

 private:
  mutable std::mutex mu_;
  std::map<int, pid_t> pids_;
  std::set<std::pair<int, int>> cut_;  // (low, high)
  std::atomic<int> delay_ms_{0};
};

// A proxy listening on 127.0.0.1:listen_port for member `self`, forwarding to
// 127.0.0.1:target_port. Stops (closing every connection) on destruction.
class peer_proxy {
 public:
  peer_proxy(int listen_port, int target_port, int self, std::shared_ptr<link_table> links);
  ~peer_proxy();
  peer_proxy(const peer_proxy&) = delete;
  peer_proxy& operator=(const peer_proxy&) = delete;

  // Connections accepted and closed because their link was cut (for test diagnostics).
  int refused() const { return refused_.load(); }

 private:
  void accept_loop();
  void pump(int client, int upstream, int from);

  int listen_fd_ = -1;
  int listen_port_;
  int target_port_;
  int self_;
  std::shared_ptr<link_table> links_;
  std::atomic<bool> stop_{false};
  std::atomic<int> refused_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> pumps_;  // guarded by mu_
};

}  // namespace cairn::e2e
