#include "ctl/common.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <termios.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "fmt/format.h"

namespace cairn::ctl {

namespace pb = etcdserverpb;

void quit(int code) {
  std::cout << std::flush;
  std::cerr << std::flush;
  std::_Exit(code);
}

void fail(const std::string& message, int code) {
  std::cout << std::flush;
  std::cerr << "Error: " << message << "\n";
  quit(code);  // seen as a SIGSEGV after a refused TLS connection with std::exit
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= s.size()) {
    auto next = s.find(sep, at);
    if (next == std::string::npos) next = s.size();
    if (next > at) out.push_back(s.substr(at, next - at));
    at = next + 1;
  }
  return out;
}

std::optional<std::chrono::milliseconds> parse_go_duration(const std::string& s) {
  if (s == "0") return std::chrono::milliseconds(0);
  static const std::pair<const char*, double> units[] = {
      {"ns", 1e-6}, {"us", 1e-3}, {"µs", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 6e4}, {"h", 3.6e6}};
  double total = 0;
  std::size_t at = 0;
  if (s.empty()) return std::nullopt;
  while (at < s.size()) {
    std::size_t end = at;
    while (end < s.size() && (std::isdigit(static_cast<unsigned char>(s[end])) || s[end] == '.')) {
      ++end;
    }
    if (end == at) return std::nullopt;
    const double n = std::strtod(s.substr(at, end - at).c_str(), nullptr);
    std::size_t best = 0;
    double scale = 0;
    for (const auto& [u, f] : units) {
      const std::size_t len = std::char_traits<char>::length(u);
      if (s.compare(end, len, u) == 0 && len > best) {
        // "m" must not take the "m" of "ms".
        best = len;
        scale = f;
      }
    }
    if (best == 0) return std::nullopt;
    total += n * scale;
    at = end + best;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total)));
}

namespace {

struct flag_env {
  const char* flag;
  const char* env;
};
// Every global flag, and the variable etcdctl reads for it.
constexpr flag_env global_envs[] = {
    {"--endpoints", "ETCDCTL_ENDPOINTS"},
    {"--write-out", "ETCDCTL_WRITE_OUT"},
    {"--dial-timeout", "ETCDCTL_DIAL_TIMEOUT"},
    {"--command-timeout", "ETCDCTL_COMMAND_TIMEOUT"},
    {"--keepalive-time", "ETCDCTL_KEEPALIVE_TIME"},
    {"--keepalive-timeout", "ETCDCTL_KEEPALIVE_TIMEOUT"},
    {"--hex", "ETCDCTL_HEX"},
    {"--cacert", "ETCDCTL_CACERT"},
    {"--cert", "ETCDCTL_CERT"},
    {"--key", "ETCDCTL_KEY"},
    {"--insecure-skip-tls-verify", "ETCDCTL_INSECURE_SKIP_TLS_VERIFY"},
    {"--insecure-transport", "ETCDCTL_INSECURE_TRANSPORT"},
    {"--user", "ETCDCTL_USER"},
    {"--password", "ETCDCTL_PASSWORD"},
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(fmt::format("open {}: no such file or directory", path), exit_bad_args);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void add_duration(CLI::App& app, const std::string& name, std::chrono::milliseconds& into,
                  const std::string& env, const std::string& help) {
  app.add_option_function<std::string>(
         name,
         [&into, name](const std::string& v) {
           auto d = parse_go_duration(v);
           if (!d) {
             fail(
                 fmt::format("invalid argument \"{}\" for \"{}\" flag: time: invalid duration "
                             "\"{}\"",
                             v, name, v));
           }
           into = *d;
         },
         help)
      ->envname(env);
}

std::string prompt_password(const std::string& user) {
  std::cerr << "Password: ";
  termios old{};
  const bool tty = ::isatty(0) != 0 && ::tcgetattr(0, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(0, TCSANOW, &quiet);
  }
  std::string pw;
  std::getline(std::cin, pw);
  if (tty) ::tcsetattr(0, TCSANOW, &old);
  std::cerr << "\n";
  if (pw.empty() && !std::cin) fail("failed to read password of user " + user);
  return pw;
}

}  // namespace

void add_global_flags(CLI::App& app, globals& g) {
  app.add_option("--endpoints", g.endpoints, "gRPC endpoints (comma-separated)")
      ->envname("ETCDCTL_ENDPOINTS");
  app.add_option_function<std::string>(
         "-w,--write-out",
         [&g](const std::string& v) {
           if (v != "simple" && v != "json" && v != "fields" && v != "protobuf" && v != "table") {
             fail("unsupported output format", 4);  // etcdctl's ExitBadFeature
           }
           g.write_out = v;
         },
         "Output format: simple, json, fields, protobuf or table (default simple)")
      ->envname("ETCDCTL_WRITE_OUT");
  add_duration(app, "--dial-timeout", g.dial_timeout, "ETCDCTL_DIAL_TIMEOUT",
               "Dial timeout for client connections (default 2s)");
  add_duration(app, "--command-timeout", g.command_timeout, "ETCDCTL_COMMAND_TIMEOUT",
               "Timeout for short running commands (default 5s)");
  add_duration(app, "--keepalive-time", g.keepalive_time, "ETCDCTL_KEEPALIVE_TIME",
               "Keepalive time for client connections (default 2s)");
  add_duration(app, "--keepalive-timeout", g.keepalive_timeout, "ETCDCTL_KEEPALIVE_TIMEOUT",
               "Keepalive timeout for client connections (default 6s)");
  app.add_flag("--hex", g.hex, "Print byte strings as hex encoded strings")->envname("ETCDCTL_HEX");
  app.add_option("--cacert", g.cacert, "Verify servers' certificates with this CA bundle")
      ->envname("ETCDCTL_CACERT");
  app.add_option("--cert", g.cert, "Identify the client with this TLS certificate file")
      ->envname("ETCDCTL_CERT");
  app.add_option("--key", g.key, "Identify the client with this TLS key file")
      ->envname("ETCDCTL_KEY");
  app.add_flag("--insecure-skip-tls-verify", g.insecure_skip_tls_verify,
               "Skip server certificate verification (for testing only)")
      ->envname("ETCDCTL_INSECURE_SKIP_TLS_VERIFY");
  app.add_flag("--insecure-transport{true}", g.insecure_transport,
               "Disable transport security for client connections (default true)")
      ->envname("ETCDCTL_INSECURE_TRANSPORT");
  app.add_option("--user", g.user,
                 "username[:password] for authentication (prompts if no password is given)")
      ->envname("ETCDCTL_USER");
  app.add_option("--password", g.password,
                 "Password for authentication (then --user holds no password)")
      ->envname("ETCDCTL_PASSWORD");
}

void check_env_conflicts(int argc, char** argv) {
  for (const auto& fe : global_envs) {
    // Set counts, even when empty: etcdctl refuses ETCDCTL_ENDPOINTS= with --endpoints too.
    if (std::getenv(fe.env) == nullptr) continue;
    const std::string flag = fe.flag;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--") break;
      if (a == flag || a.rfind(flag + "=", 0) == 0 || (flag == "--write-out" && a == "-w")) {
        fail(
            fmt::format("conflicting environment variable \"{}\" is shadowed by corresponding "
                        "command-line flag (either unset environment variable or disable flag)",
                        fe.env));
      }
    }
  }
}

conn::conn(const std::string& endpoint, const globals& g) : endpoint_(endpoint), g_(g) {
  std::string target = endpoint;
  bool https = false;
  if (target.rfind("https://", 0) == 0) {
    https = true;
    target = target.substr(8);
  } else if (target.rfind("http://", 0) == 0) {
    target = target.substr(7);
  }
  // As clientv3: http:// is plaintext, https:// is TLS, and no scheme is TLS when a certificate
  // flag is given or --insecure-transport=false.
  const bool http = endpoint.rfind("http://", 0) == 0;
  const bool tls = !http && (https || !g.cacert.empty() || !g.cert.empty() || !g.key.empty() ||
                             !g.insecure_transport);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!tls) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    if (g.cert.empty() != g.key.empty()) {
      fail(g.cert.empty()
               ? "KeyFile and CertFile must both be present[key: " + g.key + ", cert: ]"
               : "KeyFile and CertFile must both be present[key: , cert: " + g.cert + "]",
           exit_bad_args);
    }
    std::string roots = g.cacert.empty() ? "" : read_file(g.cacert);
    std::vector<grpc::experimental::IdentityKeyCertPair> pairs;
    if (!g.cert.empty()) {
      pairs.push_back({read_file(g.key), read_file(g.cert)});
    }
    grpc::experimental::TlsChannelCredentialsOptions opts;
    if (!roots.empty() || !pairs.empty()) {
      opts.set_certificate_provider(
          std::make_shared<grpc::experimental::StaticDataCertificateProvider>(roots, pairs));
    }
    if (!roots.empty()) opts.watch_root_certs();
    if (!pairs.empty()) opts.watch_identity_key_cert_pairs();
    if (g.insecure_skip_tls_verify) {
      opts.set_verify_server_certs(false);
      opts.set_check_call_host(false);
      opts.set_certificate_verifier(
          std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
    }
    creds = grpc::experimental::TlsCredentials(opts);
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(g.keepalive_time.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(g.keepalive_timeout.count()));
  args.SetMaxReceiveMessageSize(-1);
  channel_ = grpc::CreateCustomChannel(target, creds, args);
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + g.dial_timeout)) {
    ok_ = false;
    return;
  }
  if (!g.user.empty()) {
    std::string name = g.user, pw = g.password;
    if (pw.empty()) {
      const auto colon = name.find(':');
      if (colon == std::string::npos) {
        pw = prompt_password(name);
      } else {
        pw = name.substr(colon + 1);
        name = name.substr(0, colon);
      }
    }
    auto auth = pb::Auth::NewStub(channel_);
    grpc::ClientContext actx;
    actx.set_deadline(std::chrono::system_clock::now() + g.dial_timeout + g.command_timeout);
    pb::AuthenticateRequest req;
    req.set_name(name);
    req.set_password(pw);
    pb::AuthenticateResponse resp;
    auto st = auth->Authenticate(&actx, req, &resp);
    // A failed login is a failure to make the client: etcdctl's ExitBadConnection. clientv3
    // goes on without a token when the server has auth disabled.
    if (!st.ok() && st.error_message() != "etcdserver: authentication is not enabled") {
      fail(st.error_message(), 2);
    }
    token_ = resp.token();
  }
}

std::unique_ptr<grpc::ClientContext> conn::ctx() const {
  auto c = stream_ctx();
  c->set_deadline(std::chrono::system_clock::now() + g_.command_timeout);
  return c;
}

std::unique_ptr<grpc::ClientContext> conn::stream_ctx() const {
  auto c = std::make_unique<grpc::ClientContext>();
#ifndef CAIRN_PLANTED_BUG_CTL_TOKEN_NOT_SENT
  if (!token_.empty()) c->AddMetadata("token", token_);
#endif
  return c;
}

pb::KV::Stub& conn::kv() {
  if (!kv_) kv_ = pb::KV::NewStub(channel_);
  return *kv_;
}
pb::Watch::Stub& conn::watch() {
  if (!w_) w_ = pb::Watch::NewStub(channel_);
  return *w_;
}
pb::Lease::Stub& conn::lease() {
  if (!l_) l_ = pb::Lease::NewStub(channel_);
  return *l_;
}
pb::Maintenance::Stub& conn::maintenance() {
  if (!m_) m_ = pb::Maintenance::NewStub(channel_);
  return *m_;
}
pb::Cluster::Stub& conn::cluster() {
  if (!c_) c_ = pb::Cluster::NewStub(channel_);
  return *c_;
}

conn connect_first(const globals& g) {
  // The first endpoint that answers, as clientv3's balancer picks one that is up.
  const auto eps = split(g.endpoints);
  if (eps.empty()) fail("context deadline exceeded");
  for (std::size_t i = 0; i + 1 < eps.size(); ++i) {
    conn c(eps[i], g);
    if (c.ok()) return c;
  }
  conn c(eps.back(), g);
  if (!c.ok()) fail("context deadline exceeded");
  return c;
}

std::vector<std::string> endpoints(const globals& g) {
  auto eps = split(g.endpoints);
  if (!g.cluster || eps.empty()) return eps;
  auto c = connect_first(g);
  auto ctx = c.ctx();
  pb::MemberListResponse resp;
  auto st = c.cluster().MemberList(ctx.get(), {}, &resp);
  if (!st.ok()) fail(st.error_message());
  std::vector<std::string> out;
  for (const auto& m : resp.members()) {
    for (const auto& u : m.clienturls()) out.push_back(u);
  }
  return out;
}

std::string humanize(std::uint64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string table(const std::vector<std::string>& head,
                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> w(head.size());
  for (std::size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  }
  std::string line = "+";
  for (auto x : w) line += std::string(x + 2, '-') + "+";
  line += "\n";
  auto row = [&](const std::vector<std::string>& cells, bool centre) {
    std::string out = "|";
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const std::size_t pad = w[i] - cells[i].size();
      const std::size_t left = centre ? pad / 2 : 0;
      out += " " + std::string(left, ' ') + cells[i] + std::string(pad - left, ' ') + " |";
    }
    return out + "\n";
  };
  std::string out = line + row(head, true) + line;
  for (const auto& r : rows) out += row(r, false);
  return out + line;
}

}  // namespace cairn::ctl
