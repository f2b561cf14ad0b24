// What every cairnctl command shares, as etcdctl has it: the global flags (and their ETCDCTL_*
// variables), connections with TLS and auth tokens, errors and exit codes, tables and sizes.
#pragma once

#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace cairn::ctl {

struct globals {
  std::string endpoints = "127.0.0.1:2379";
  std::string write_out = "simple";
  std::chrono::milliseconds dial_timeout{2000};
  std::chrono::milliseconds command_timeout{5000};
  std::chrono::milliseconds keepalive_time{2000};
  std::chrono::milliseconds keepalive_timeout{6000};
  bool hex = false;
  std::string cacert, cert, key;
  bool insecure_skip_tls_verify = false;
  bool insecure_transport = true;
  std::string user, password;
  bool cluster = false;  // --cluster of the endpoint and defrag commands
};

// etcdctl's exit codes (cobrautl): ExitError 1, ExitBadArgs 128.
constexpr int exit_error = 1;
constexpr int exit_bad_args = 128;

// Prints "Error: <message>" to stderr and exits, as etcdctl's ExitWithError.
[[noreturn]] void fail(const std::string& message, int code = exit_error);
// Flushes stdout and stderr and exits without static destructors: gRPC's threads may still be
// at work (a failing handshake, a watch stream's reader), and tearing its globals down under
// them crashes.
[[noreturn]] void quit(int code);

std::vector<std::string> split(const std::string& s, char sep = ',');

// A Go duration ("2s", "500ms", "1m30s", "0"); nullopt when it is not one.
std::optional<std::chrono::milliseconds> parse_go_duration(const std::string& s);

// The global flags on `app`, with their ETCDCTL_* variables. A variable that is set while its
// flag is given too is an error, as etcdctl's "conflicting environment variable" (checked before
// parsing, against argv).
void add_global_flags(CLI::App& app, globals& g);
void check_env_conflicts(int argc, char** argv);

// One member, with the credentials the flags ask for. A failed dial makes !ok(); every request
// context carries the command timeout and, with --user, the auth token.
class conn {
 public:
  conn(const std::string& endpoint, const globals& g);
  bool ok() const { return ok_; }
  const std::string& endpoint() const { return endpoint_; }
  std::unique_ptr<grpc::ClientContext> ctx() const;
  // A context with no deadline (watch, keep-alive, snapshot) but the token.
  std::unique_ptr<grpc::ClientContext> stream_ctx() const;
  etcdserverpb::KV::Stub& kv();
  etcdserverpb::Watch::Stub& watch();
  etcdserverpb::Lease::Stub& lease();
  etcdserverpb::Maintenance::Stub& maintenance();
  etcdserverpb::Cluster::Stub& cluster();

 private:
  std::string endpoint_;
  const globals& g_;
  std::shared_ptr<grpc::Channel> channel_;
  bool ok_ = true;
  std::string token_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  std::unique_ptr<etcdserverpb::Watch::Stub> w_;
  std::unique_ptr<etcdserverpb::Lease::Stub> l_;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> m_;
  std::unique_ptr<etcdserverpb::Cluster::Stub> c_;
};

// The first endpoint, connected, or exits with etcdctl's "context deadline exceeded".
conn connect_first(const globals& g);

// The endpoints to talk to: --endpoints, or with --cluster every member's client URLs.
std::vector<std::string> endpoints(const globals& g);

// 1.2 kB, as Go's humanize.Bytes.
std::string humanize(std::uint64_t bytes);

// A table like etcdctl's (tablewriter): +---+ borders, centred headers, left-aligned cells.
std::string table(const std::vector<std::string>& head,
                  const std::vector<std::vector<std::string>>& rows);

}  // namespace cairn::ctl
