// Test support for tests that drive real binaries: Cairn's own, and the real etcd 3.4.23 and
// etcdctl that scripts/install-deps.sh unpacks (never installs) for comparison.
//
// Every process started here listens on 127.0.0.1 only, on a port picked free, and is killed by
// PID when its `process` object is destroyed. Not thread-safe: one test thread uses one object.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <sys/types.h>

#include "support/peer_proxy.h"

namespace cairn::e2e {

// Where the real etcd was unpacked: $CAIRN_TEST_ETCD_ROOT, else $CAIRN_CACHE_DIR/etcd-3.4.23
// (the install script's cache, ~/.cache/cairn by default).
std::filesystem::path etcd_root();
std::filesystem::path etcd_binary();     // <root>/usr/bin/etcd
std::filesystem::path etcdctl_binary();  // <root>/usr/bin/etcdctl
// etcd's .proto sources from golang-etcd-server-dev: <root>/usr/share/gocode/src/go.etcd.io/etcd
std::filesystem::path etcd_go_source();
// The `cairn` binary of this build tree ($CAIRN_TEST_BINARY_DIR/server/cmd/cairn).
std::filesystem::path cairn_binary();
// The same server with armable failpoints (server/base/failpoint.h), beside it.
std::filesystem::path cairn_failpoints_binary();
// The source tree ($CAIRN_TEST_SOURCE_DIR, set by cairn_test for every test).
std::filesystem::path source_dir();

// A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range (so no
// outgoing connection takes it before the server binds it). Ports handed out by this process are
// never handed out twice, and a lock file under $TMPDIR/cairn-test-ports keeps tests running in
// parallel from picking the same port while this process lives.
int free_port();

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class temp_dir {
 public:
  explicit temp_dir(const std::string& prefix = "cairn-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Environment changes for a child: a value sets the variable, nullopt removes it. The child
// otherwise inherits the test's environment minus every ETCD_* and ETCDCTL_* variable, so that
// a developer's shell never leaks into a test.
using env_changes = std::map<std::string, std::optional<std::string>>;

struct run_result {
  int exit_code = -1;  // the exit status, or 128 + signal; -1 if it timed out (and was killed)
  std::string out;
  std::string err;
};

// Runs a command to completion (killed after `timeout`), capturing stdout and stderr.
run_result run(const std::vector<std::string>& argv, const env_changes& env = {},
               std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A long-running child (a server). Its stdout and stderr go to `log_path`.
class process {
 public:
  process(const std::vector<std::string>& argv, const std::filesystem::path& log_path,
          const env_changes& env = {});
  ~process();  // SIGKILL by PID, then reap
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const { return pid_; }
  // True once 127.0.0.1:port accepts a TCP connection; false after `timeout`, or as soon as
  // the child has exited.
  bool wait_for_port(int port, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Exit status if the child has exited (reaping it), else nullopt.
  std::optional<int> exited();
  void kill_now();
  // The child's log so far, for failure messages.
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_path_;
};

// A single-member real etcd 3.4.23 on free loopback ports, in a temp data dir.
class etcd_server {
 public:
  explicit etcd_server(const std::vector<std::string>& extra_flags = {});
  int client_port() const { return client_port_; }
  std::string endpoint() const;  // "127.0.0.1:<client port>"
  process& proc() { return *proc_; }

 private:
  temp_dir dir_;
  int client_port_;
  int peer_port_;
  std::optional<process> proc_;
};

// A single-member `cairn` on free loopback ports, named "e2e" like etcd_server, with its data in
// `data_dir` (kept across restart(), so tests can kill it and start it again on the same data).
class cairn_server {
 public:
  explicit cairn_server(const std::filesystem::path& data_dir,
                        const std::vector<std::string>& extra_flags = {});
  // Starts it (again); throws std::runtime_error with the log if it does not listen.
  void restart();
  void kill_now() { proc_->kill_now(); }
  int client_port() const { return client_port_; }
  std::string endpoint() const;  // "127.0.0.1:<client port>"
  process& proc() { return *proc_; }

 private:
  std::filesystem::path data_dir_;
  std::vector<std::string> extra_flags_;
  int client_port_;
  int peer_port_;
  int starts_ = 0;
  std::optional<process> proc_;
};

// One member of `binary` (cairn or the real etcd, to run the same flags on both) named `name`:
// data in <dir>/<name>.data, log in <dir>/<name>.log, the client URL
// <scheme>://127.0.0.1:<free port>, a plain peer URL, then `flags`. Throws std::runtime_error
// with the log if it does not listen.
class one_member {
 public:
  one_member(const std::filesystem::path& binary, const std::filesystem::path& dir,
             const std::string& name, const std::vector<std::string>& flags,
             const std::string& scheme = "http");
  std::string ep() const;   // "127.0.0.1:<port>"
  std::string url() const;  // "<scheme>://127.0.0.1:<port>"
  std::string log() const { return proc_->log(); }
  process& proc() { return *proc_; }

 private:
  std::string scheme_;
  int port_, peer_;
  std::unique_ptr<process> proc_;
};

// `size` members of one `cairn` cluster on free loopback ports (names m1..mN, token
// "cairn-e2e", heartbeat 50 ms and election timeout 500 ms unless `extra_flags` say otherwise),
// each with its data under `dir`. Members are numbered from 0. Nothing starts until start().
class cairn_cluster {
 public:
  static constexpr int election_ms = 500;
  cairn_cluster(const std::filesystem::path& dir, int size,
                const std::vector<std::string>& extra_flags = {});
  int size() const { return static_cast<int>(members_.size()); }
  // Starts every member at once (they elect among themselves); waits for their client ports.
  void start_all();
  // (Re)starts member i on its data directory, with `flags` after the usual ones.
  void start(int i, const std::vector<std::string>& flags = {});
  void kill(int i);  // SIGKILL
  bool running(int i) { return members_[i].proc && !members_[i].proc->exited(); }
  process& proc(int i) { return *members_[i].proc; }
  std::string name(int i) const { return "m" + std::to_string(i + 1); }
  std::string endpoint(int i) const;  // 127.0.0.1:<client port>
  std::string endpoints() const;      // every member's, comma-separated
  std::string peer_url(int i) const;  // http://127.0.0.1:<peer port>
  std::string initial_cluster() const;
  std::filesystem::path data_dir(int i) const;
  // The argument list start(i) uses (for tests that start a member their own way).
  std::vector<std::string> argv(int i) const;
  // Runs another binary with the same flags from now on (the real etcd, to compare).
  void use_binary(std::filesystem::path binary) { binary_ = std::move(binary); }
  // Environment changes for member i's later starts.
  void set_env(int i, env_changes env) { members_[i].env = std::move(env); }
  // Puts a TCP proxy (support/peer_proxy.h) in front of every member's peer listener; call
  // before the first start. peer_url(i) is then the proxy's, which the members advertise and
  // dial, so that partition() can cut the links between members.
  void with_peer_proxies();
  // With proxies: cuts every link between a member in `side` and a member outside it, both
  // ways; heal() restores every link. Open connections across a cut are closed, new ones are
  // closed as soon as they are accepted.
  void partition(const std::set<int>& side);
  // With proxies: cuts the links between a and b only (a bridge is several of these).
  void cut(int a, int b);
  // With proxies: every peer link forwards each chunk `d` late until heal().
  void delay_links(std::chrono::milliseconds d);
  void heal();

 private:
  struct member {
    int client_port;
    int peer_port;
    int starts = 0;
    std::unique_ptr<process> proc;
    int proxy_port = 0;  // 0: no proxy
    env_changes env;
  };
  std::string listen_peer_url(int i) const;
  void started(int i);
  std::filesystem::path dir_;
  std::vector<std::string> extra_flags_;
  std::filesystem::path binary_ = cairn_binary();
  std::vector<member> members_;
  std::shared_ptr<link_table> links_;
  std::vector<std::unique_ptr<peer_proxy>> proxies_;
};

}  // namespace cairn::e2e
