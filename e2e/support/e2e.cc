#include "support/e2e.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace cairn::e2e {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

// The child's environment: ours minus ETCD_*/ETCDCTL_*, then `changes` applied.
std::vector<std::string> child_environment(const env_changes& changes) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    std::string name = entry.substr(0, eq);
    if (name.starts_with("ETCD_") || name.starts_with("ETCDCTL_")) continue;
    vars[name] = entry.substr(eq + 1);
  }
  for (const auto& [name, value] : changes) {
    if (value) {
      vars[name] = *value;
    } else {
      vars.erase(name);
    }
  }
  std::vector<std::string> out;
  for (const auto& [name, value] : vars) out.push_back(name + "=" + value);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// fork + exec with stdout/stderr sent to the given descriptors. Aborts the test on failure.
pid_t spawn(const std::vector<std::string>& argv, const env_changes& env, int out_fd, int err_fd) {
  if (argv.empty()) throw std::invalid_argument("spawn: empty argv");
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = child_environment(env);
  auto c_args = c_strings(args);
  auto c_envs = c_strings(envs);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Own process group, so that killing it takes any grandchildren too.
    setpgid(0, 0);
    const int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execve(c_args[0], c_args.data(), c_envs.data());
    const std::string msg = "exec " + argv[0] + ": " + std::strerror(errno) + "\n";
    (void)!write(2, msg.data(), msg.size());
    _exit(127);
  }
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

fs::path etcd_root() {
  // scripts/install-deps.sh unpacks into $CAIRN_CACHE_DIR (default ~/.cache/cairn).
  const std::string cache = env_or("CAIRN_CACHE_DIR", env_or("HOME", "/root") + "/.cache/cairn");
  return env_or("CAIRN_TEST_ETCD_ROOT", cache + "/etcd-3.4.23");
}
fs::path etcd_binary() { return etcd_root() / "usr/bin/etcd"; }
fs::path etcdctl_binary() { return etcd_root() / "usr/bin/etcdctl"; }
fs::path etcd_go_source() { return etcd_root() / "usr/share/gocode/src/go.etcd.io/etcd"; }
fs::path cairn_binary() {
  return fs::path(env_or("CAIRN_TEST_BINARY_DIR", ".")) / "server/cmd/cairn";
}
fs::path cairn_failpoints_binary() {
  return fs::path(env_or("CAIRN_TEST_BINARY_DIR", ".")) / "server/cmd/cairn-failpoints";
}
fs::path source_dir() { return env_or("CAIRN_TEST_SOURCE_DIR", "."); }

// Ports come from below the kernel's ephemeral range, so no outgoing connection (etcdctl's,
// a peer's) can take a port between the moment a test picks it and the moment its server binds
// it. Tests running in parallel claim a port with a lock file held until the process exits.
int free_port() {
  static std::set<int> handed_out;
  int ephemeral_low = 32768;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> ephemeral_low;
  const int low = 10000;
  const int high = std::max(low + 1000, ephemeral_low);
  const fs::path claims = fs::temp_directory_path() / "cairn-test-ports";
  std::error_code ec;
  fs::create_directories(claims, ec);
  std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(getpid()));
  std::uniform_int_distribution<int> pick(low, high - 1);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = pick(rng);
    if (handed_out.contains(port)) continue;
    const std::string claim = (claims / std::to_string(port)).string();
    const int lock_fd = open(claim.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock_fd < 0) continue;
    if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      close(lock_fd);
      continue;
    }
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (!bound) {
      close(lock_fd);
      continue;
    }
    handed_out.insert(port);  // the lock stays held (lock_fd open) until this process exits
    return port;
  }
  throw std::runtime_error("free_port: no free port found");
}

temp_dir::temp_dir(const std::string& prefix) {
  std::string pattern = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

run_result run(const std::vector<std::string>& argv, const env_changes& env,
               std::chrono::milliseconds timeout) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  const pid_t pid = spawn(argv, env, out_pipe[1], err_pipe[1]);
  close(out_pipe[1]);
  close(err_pipe[1]);

  run_result result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    const int n = poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[65536];
      const ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  if (timed_out) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = timed_out ? -1 : decode_status(status);
  return result;
}

process::process(const std::vector<std::string>& argv, const fs::path& log_path,
                 const env_changes& env)
    : log_path_(log_path) {
  const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open log " + log_path.string());
  pid_ = spawn(argv, env, fd, fd);
  close(fd);
}

process::~process() { kill_now(); }

void process::kill_now() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

std::optional<int> process::exited() {
  if (pid_ <= 0) return -1;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return decode_status(status);
  }
  return std::nullopt;
}

bool process::wait_for_port(int port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (exited()) return false;
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::string process::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

etcd_server::etcd_server(const std::vector<std::string>& extra_flags)
    : dir_("cairn-etcd"), client_port_(free_port()), peer_port_(free_port()) {
  const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> argv = {
      etcd_binary().string(),
      "--name=e2e",
      "--data-dir=" + (dir_.path() / "data").string(),
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + peer,
      "--initial-cluster=e2e=" + peer,
  };
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  proc_.emplace(argv, dir_.path() / "etcd.log");
  if (!proc_->wait_for_port(client_port_)) {
    throw std::runtime_error("etcd did not start; log:\n" + proc_->log());
  }
}

std::string etcd_server::endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }

cairn_server::cairn_server(const fs::path& data_dir, const std::vector<std::string>& extra_flags)
    : data_dir_(data_dir),
      extra_flags_(extra_flags),
      client_port_(free_port()),
      peer_port_(free_port()) {
  restart();
}

void cairn_server::restart() {
  const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> argv = {
      cairn_binary().string(),
      "--name=e2e",
      "--data-dir=" + data_dir_.string(),
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + peer,
      "--initial-cluster=e2e=" + peer,
  };
  argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
  proc_.reset();
  const fs::path log = data_dir_.parent_path() / (data_dir_.filename().string() + "-cairn-" +
                                                  std::to_string(starts_++) + ".log");
  proc_.emplace(argv, log);
  if (!proc_->wait_for_port(client_port_)) {
    throw std::runtime_error("cairn did not start; log:\n" + proc_->log());
  }
}

std::string cairn_server::endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }

cairn_cluster::cairn_cluster(const fs::path& dir, int size,
                             const std::vector<std::string>& extra_flags)
    : dir_(dir), extra_flags_(extra_flags) {
  fs::create_directories(dir_);
  for (int i = 0; i < size; ++i) members_.push_back({free_port(), free_port(), 0, nullptr});
}

std::string cairn_cluster::endpoint(int i) const {
  return "127.0.0.1:" + std::to_string(members_[i].client_port);
}

std::string cairn_cluster::endpoints() const {
  std::string out;
  for (int i = 0; i < size(); ++i) out += (i ? "," : "") + endpoint(i);
  return out;
}

std::string cairn_cluster::peer_url(int i) const {
  const auto& m = members_[i];
  return "http://127.0.0.1:" + std::to_string(m.proxy_port != 0 ? m.proxy_port : m.peer_port);
}

std::string cairn_cluster::listen_peer_url(int i) const {
  return "http://127.0.0.1:" + std::to_string(members_[i].peer_port);
}

void cairn_cluster::with_peer_proxies() {
  links_ = std::make_shared<link_table>();
  for (int i = 0; i < size(); ++i) {
    members_[i].proxy_port = free_port();
    proxies_.push_back(
        std::make_unique<peer_proxy>(members_[i].proxy_port, members_[i].peer_port, i, links_));
  }
}

void cairn_cluster::partition(const std::set<int>& side) {
  if (!links_) throw std::logic_error("partition() needs with_peer_proxies()");
  links_->partition(side, size());
}

void cairn_cluster::cut(int a, int b) {
  if (!links_) throw std::logic_error("cut() needs with_peer_proxies()");
  links_->cut(a, b);
}

void cairn_cluster::delay_links(std::chrono::milliseconds d) {
  if (!links_) throw std::logic_error("delay_links() needs with_peer_proxies()");
  links_->set_delay(d);
}

void cairn_cluster::heal() {
  if (links_) links_->heal();
}

void cairn_cluster::started(int i) {
  if (links_) links_->set_pid(i, members_[i].proc->pid());
}

std::string cairn_cluster::initial_cluster() const {
  std::string out;
  for (int i = 0; i < size(); ++i) out += (i ? "," : "") + name(i) + "=" + peer_url(i);
  return out;
}

fs::path cairn_cluster::data_dir(int i) const { return dir_ / name(i); }

std::vector<std::string> cairn_cluster::argv(int i) const {
  const std::string client = "http://" + endpoint(i);
  std::vector<std::string> argv = {
      binary_.string(),
      "--name=" + name(i),
      "--data-dir=" + data_dir(i).string(),
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      "--listen-peer-urls=" + listen_peer_url(i),
      "--initial-advertise-peer-urls=" + peer_url(i),
      "--initial-cluster=" + initial_cluster(),
      "--initial-cluster-token=cairn-e2e",
      "--heartbeat-interval=50",
      "--election-timeout=" + std::to_string(election_ms),
  };
  argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
  return argv;
}

void cairn_cluster::start(int i, const std::vector<std::string>& flags) {
  auto& m = members_[i];
  auto args = argv(i);
  args.insert(args.end(), flags.begin(), flags.end());
  m.proc.reset();
  m.proc = std::make_unique<process>(
      args, dir_ / (name(i) + "-" + std::to_string(m.starts++) + ".log"), m.env);
  started(i);
  if (!m.proc->wait_for_port(m.client_port)) {
    throw std::runtime_error(name(i) + " did not start; log:\n" + m.proc->log());
  }
}

void cairn_cluster::start_all() {
  for (int i = 0; i < size(); ++i) {
    auto& m = members_[i];
    m.proc.reset();
    m.proc = std::make_unique<process>(
        argv(i), dir_ / (name(i) + "-" + std::to_string(m.starts++) + ".log"), m.env);
    started(i);
  }
  for (int i = 0; i < size(); ++i) {
    if (!members_[i].proc->wait_for_port(members_[i].client_port)) {
      throw std::runtime_error(name(i) + " did not start; log:\n" + members_[i].proc->log());
    }
  }
}

void cairn_cluster::kill(int i) {
  if (members_[i].proc) members_[i].proc->kill_now();
}

one_member::one_member(const std::filesystem::path& binary, const std::filesystem::path& dir,
                       const std::string& name, const std::vector<std::string>& flags,
                       const std::string& scheme)
    : scheme_(scheme), port_(free_port()), peer_(free_port()) {
  const std::string purl = "http://127.0.0.1:" + std::to_string(peer_);
  std::vector<std::string> argv = {binary.string(),
                                   "--name=" + name,
                                   "--data-dir=" + (dir / (name + ".data")).string(),
                                   "--listen-client-urls=" + url(),
                                   "--advertise-client-urls=" + url(),
                                   "--listen-peer-urls=" + purl,
                                   "--initial-advertise-peer-urls=" + purl,
                                   "--initial-cluster=" + name + "=" + purl};
  argv.insert(argv.end(), flags.begin(), flags.end());
  proc_ = std::make_unique<process>(argv, dir / (name + ".log"));
  if (!proc_->wait_for_port(port_)) throw std::runtime_error(name + " did not start:\n" + log());
}

std::string one_member::ep() const { return "127.0.0.1:" + std::to_string(port_); }
std::string one_member::url() const { return scheme_ + "://" + ep(); }

}  // namespace cairn::e2e
