// Value syntax of etcd's command line, re-implemented: Go's strconv and time.ParseDuration
// rules, and etcd's URL-list rules (pkg/types.NewURLs). Every flag, ETCD_* variable and
// config-file scalar goes through these, so the three sources accept exactly the same text.
//
// Failures are values: an error string that completes the sentence
// `invalid value "<text>" for flag --<name>: <error>`.
//
// Pure functions; safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::cmd {

using duration = std::chrono::nanoseconds;

// One endpoint URL as etcd accepts it: scheme://host:port, nothing after the port.
struct url {
  std::string scheme;  // lower case: http, https, unix or unixs
  std::string host;    // without the brackets of an IPv6 literal
  std::uint16_t port = 0;

  std::string to_string() const;  // scheme://host:port, IPv6 hosts in brackets
  bool host_is_ip() const;
  friend bool operator==(const url&, const url&) = default;
};

// Go's strconv.ParseBool: 1 t T TRUE true True 0 f F FALSE false False.
std::expected<bool, std::string> parse_go_bool(std::string_view text);
// Go's strconv.ParseUint / ParseInt with base 0 (0x, 0o, 0b and leading-0 octal prefixes,
// underscores between digits), limited to `bits` bits.
std::expected<std::uint64_t, std::string> parse_go_uint(std::string_view text, int bits = 64);
std::expected<std::int64_t, std::string> parse_go_int(std::string_view text, int bits = 64);
// Go's time.ParseDuration: "300ms", "1h30m", "-1.5h", "0". Units ns us µs ms s m h.
std::expected<duration, std::string> parse_go_duration(std::string_view text);
// Formats like Go's Duration.String(): 0s, 100ms, 5s, 2h0m0s, 1m30s, 1.5s.
std::string format_go_duration(duration d);

// One URL (etcd's rules: scheme http/https/unix/unixs, "host:port", no path).
std::expected<url, std::string> parse_url(std::string_view text);
// A comma-separated list of URLs; sorted and without duplicates, as etcd stores them.
std::expected<std::vector<url>, std::string> parse_url_list(std::string_view text);
std::string format_url_list(const std::vector<url>& urls);

// Comma-separated strings, spaces around items kept as given (etcd does not trim).
std::vector<std::string> split_commas(std::string_view text);
std::string join_commas(const std::vector<std::string>& items);

}  // namespace cairn::cmd
