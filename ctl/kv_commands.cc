#include "ctl/kv_commands.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "ctl/display.h"
#include "fmt/format.h"

namespace cairn::ctl {

namespace pb = etcdserverpb;

namespace {

constexpr int exit_invalid_input = 3;
constexpr int exit_bad_feature = 4;
constexpr int exit_interrupted = 5;
constexpr int exit_bad_connection = 2;

// The end of the range of keys with `key` as prefix, as clientv3.GetPrefixRangeEnd; "\0" (every
// key from `key` on) when there is none.
std::string prefix_end(const std::string& key) {
  std::string end = key;
  while (!end.empty()) {
    auto& c = end.back();
    if (static_cast<unsigned char>(c) < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

// --prefix and --from-key as clientv3 applies them: an empty key means every key ("\0" on).
void apply_range(std::string& key, std::string& end, bool prefix, bool from_key) {
  if (prefix) {
    if (key.empty()) {
      key = std::string(1, '\0');
      end = std::string(1, '\0');
    } else {
      end = prefix_end(key);
    }
  }
  if (from_key) {
    if (key.empty()) key = std::string(1, '\0');
    end = std::string(1, '\0');
  }
}

struct get_flags {
  std::string consistency = "l";
  bool from_key = false, keys_only = false, prefix = false, value_only = false;
  std::int64_t limit = 0, rev = 0;
  std::string order, sort_by;
};

struct put_flags {
  bool ignore_lease = false, ignore_value = false, prev_kv = false;
  std::string lease = "0";
};

struct del_flags {
  bool from_key = false, prefix = false, prev_kv = false;
};

pb::RangeRequest get_request(const get_flags& f, const std::vector<std::string>& args) {
  if (args.empty()) {
    fail("get command needs one argument as key and an optional argument as range_end",
         exit_bad_args);
  }
  if (f.prefix && f.from_key) {
    fail("`--prefix` and `--from-key` cannot be set at the same time, choose one", exit_bad_args);
  }
  pb::RangeRequest req;
  if (f.consistency == "s") {
    req.set_serializable(true);
  } else if (f.consistency != "l") {
    fail(fmt::format("unknown consistency flag \"{}\"", f.consistency), exit_bad_feature);
  }
  std::string key = args[0];
  if (args.size() > 1) {
    if (f.prefix || f.from_key) {
      fail("too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
           exit_bad_args);
    }
    req.set_range_end(args[1]);
  }
  req.set_limit(f.limit);
  if (f.rev > 0) req.set_revision(f.rev);
  std::string order = f.order, target = f.sort_by;
  std::transform(order.begin(), order.end(), order.begin(), ::toupper);
  std::transform(target.begin(), target.end(), target.begin(), ::toupper);
  auto sort_order = pb::RangeRequest::NONE;
  if (order == "ASCEND") {
    sort_order = pb::RangeRequest::ASCEND;
  } else if (order == "DESCEND") {
    sort_order = pb::RangeRequest::DESCEND;
  } else if (!order.empty()) {
    fail("bad sort order " + f.order, exit_bad_feature);
  }
  auto sort_target = pb::RangeRequest::KEY;
  if (target == "CREATE") {
    sort_target = pb::RangeRequest::CREATE;
  } else if (target == "MODIFY") {
    sort_target = pb::RangeRequest::MOD;
  } else if (target == "VALUE") {
    sort_target = pb::RangeRequest::VALUE;
  } else if (target == "VERSION") {
    sort_target = pb::RangeRequest::VERSION;
  } else if (!target.empty() && target != "KEY") {
    fail("bad sort target " + f.sort_by, exit_bad_feature);
  }
  // clientv3.WithSort: keys come in ascending key order anyway, so that order is sent as none.
  if (sort_target == pb::RangeRequest::KEY && sort_order == pb::RangeRequest::ASCEND) {
    sort_order = pb::RangeRequest::NONE;
  }
  req.set_sort_order(sort_order);
  req.set_sort_target(sort_target);
  apply_range(key, *req.mutable_range_end(), f.prefix, f.from_key);
  req.set_key(key);
  req.set_keys_only(f.keys_only);
  return req;
}

std::string read_stdin() { return std::string(std::istreambuf_iterator<char>(std::cin), {}); }

std::int64_t parse_hex_id(const std::string& s, const char* what) {
  // strconv.ParseInt(s, 16, 64): an optional sign, then hex digits only (no 0x, no spaces).
  const std::size_t from = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  const bool digits_only =
      s.size() > from &&
      std::all_of(s.begin() + static_cast<std::ptrdiff_t>(from), s.end(),
                  [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
  if (!digits_only) {
    fail(fmt::format("bad {} (strconv.ParseInt: parsing \"{}\": invalid syntax), expecting ID "
                     "in Hex",
                     what, s),
         exit_bad_args);
  }
  try {
    std::size_t used = 0;
    const auto v = std::stoll(s, &used, 16);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  fail(fmt::format("bad {} (strconv.ParseInt: parsing \"{}\": invalid syntax), expecting ID "
                   "in Hex",
                   what, s),
       exit_bad_args);
}

pb::PutRequest put_request(const put_flags& f, const std::vector<std::string>& args,
                           bool stdin_allowed) {
  if (args.empty()) {
    fail("put command needs 1 argument and input from stdin or 2 arguments", exit_bad_args);
  }
  if (f.ignore_value && args.size() > 1) {
    fail("put command needs only 1 argument when 'ignore-value' is set", exit_bad_args);
  }
  pb::PutRequest req;
  req.set_key(args[0]);
  if (!f.ignore_value) {
    if (args.size() > 1) {
      req.set_value(args[1]);
    } else {
      std::string v = stdin_allowed ? read_stdin() : "";
      if (v.empty()) {
        fail("put command needs 1 argument and input from stdin or 2 arguments", exit_bad_args);
      }
      req.set_value(v);
    }
  }
  req.set_lease(parse_hex_id(f.lease, "lease ID"));
  req.set_prev_kv(f.prev_kv);
  req.set_ignore_value(f.ignore_value);
  req.set_ignore_lease(f.ignore_lease);
  return req;
}

pb::DeleteRangeRequest del_request(const del_flags& f, const std::vector<std::string>& args) {
  if (args.empty() || args.size() > 2) {
    fail("del command needs one argument as key and an optional argument as range_end",
         exit_bad_args);
  }
  if (f.prefix && f.from_key) {
    fail("`--prefix` and `--from-key` cannot be set at the same time, choose one", exit_bad_args);
  }
  pb::DeleteRangeRequest req;
  std::string key = args[0];
  if (args.size() > 1) {
    if (f.prefix || f.from_key) {
      fail("too many arguments, only accept one argument when `--prefix` or `--from-key` is set",
           exit_bad_args);
    }
    req.set_range_end(args[1]);
  }
  apply_range(key, *req.mutable_range_end(), f.prefix, f.from_key);
  req.set_key(key);
  req.set_prev_kv(f.prev_kv);
  return req;
}

// The key-value and lease commands have no table format, as etcdctl's (checked after the
// arguments, before connecting).
void no_table(const globals& g) {
  if (g.write_out == "table") fail("table not supported as output format", exit_bad_feature);
}

void check(const grpc::Status& st) {
  if (!st.ok()) fail(st.error_message());
}

// --- txn ---

// Appends code point `cp` as UTF-8.
void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Go's fmt %q scanning (strconv.Unquote) of one double-quoted string at s[at]; the unquoted
// text, with `at` moved past it; nullopt when there is none or an escape is invalid.
std::optional<std::string> scan_quoted(const std::string& s, std::size_t& at) {
  while (at < s.size() && std::isspace(static_cast<unsigned char>(s[at]))) ++at;
  if (at >= s.size() || s[at] != '"') return std::nullopt;
  std::string out;
  const auto digits = [&](std::size_t from, std::size_t n, int base) -> std::optional<char32_t> {
    if (from + n > s.size()) return std::nullopt;
    char32_t v = 0;
    for (std::size_t k = from; k < from + n; ++k) {
      const char c = s[k];
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0 || d >= base) return std::nullopt;
      v = v * static_cast<char32_t>(base) + static_cast<char32_t>(d);
    }
    return v;
  };
  for (std::size_t i = at + 1; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"') {
      at = i + 1;
      return out;
    }
    if (c == '\n') return std::nullopt;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= s.size()) return std::nullopt;
    const char e = s[i];
    static const std::string simple = "abfnrtv\\\"";
    static const std::string value = "\a\b\f\n\r\t\v\\\"";
    if (const auto k = simple.find(e); k != std::string::npos) {
      out += value[k];
    } else if (e == 'x') {
      auto v = digits(i + 1, 2, 16);
      if (!v) return std::nullopt;
      out += static_cast<char>(*v);
      i += 2;
    } else if (e >= '0' && e <= '7') {
      auto v = digits(i, 3, 8);
      if (!v || *v > 255) return std::nullopt;
      out += static_cast<char>(*v);
      i += 2;
    } else if (e == 'u' || e == 'U') {
      const std::size_t n = e == 'u' ? 4 : 8;
      auto v = digits(i + 1, n, 16);
      if (!v || *v > 0x10ffff || (*v >= 0xd800 && *v <= 0xdfff)) return std::nullopt;
      append_utf8(out, *v);
      i += n;
    } else {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// One line of the compares: target("key") op "value", as etcdctl's parseCompare.
pb::Compare parse_compare(const std::string& line) {
  const auto lparen = line.find('(');
  if (lparen == std::string::npos) fail("malformed comparison: " + line, exit_invalid_input);
  const std::string target = line.substr(0, lparen);
  std::size_t at = lparen + 1;
  auto key = scan_quoted(line, at);
  std::string op, val;
  bool ok = key.has_value() && at < line.size() && line[at] == ')';
  if (ok) {
    ++at;
    while (at < line.size() && std::isspace(static_cast<unsigned char>(line[at]))) ++at;
    while (at < line.size() && !std::isspace(static_cast<unsigned char>(line[at]))) {
      op += line[at++];
    }
    auto v = scan_quoted(line, at);
    ok = !op.empty() && v.has_value();
    if (v) val = *v;
  }
  if (!ok) {
    // etcdctl's Sscanf stopped early: it shows what it had read.
    fail(fmt::format("malformed comparison: {}; got {}({}) {} {}", line, target,
                     go_quote(key.value_or("")), op, go_quote(val)),
         exit_invalid_input);
  }
  pb::Compare c;
  c.set_key(*key);
  if (op == "=") {
    c.set_result(pb::Compare::EQUAL);
  } else if (op == "!=") {
    c.set_result(pb::Compare::NOT_EQUAL);
  } else if (op == "<") {
    c.set_result(pb::Compare::LESS);
  } else if (op == ">") {
    c.set_result(pb::Compare::GREATER);
  } else {
    fail("malformed comparison: " + line + " (unknown op " + op + ")", exit_invalid_input);
  }
  auto number = [&](int base) -> std::int64_t {
    try {
      std::size_t used = 0;
      const auto n = std::stoll(val, &used, base);
      if (used == val.size()) return n;
    } catch (const std::exception&) {
    }
    fail("invalid txn compare request: " + line, exit_invalid_input);
  };
  if (target == "ver" || target == "version") {
    c.set_target(pb::Compare::VERSION);
    c.set_version(number(10));
  } else if (target == "c" || target == "create") {
    c.set_target(pb::Compare::CREATE);
    c.set_create_revision(number(10));
  } else if (target == "m" || target == "mod") {
    c.set_target(pb::Compare::MOD);
    c.set_mod_revision(number(10));
  } else if (target == "val" || target == "value") {
    c.set_target(pb::Compare::VALUE);
    c.set_value(val);
  } else if (target == "lease") {
    c.set_target(pb::Compare::LEASE);
    c.set_lease(number(16));
  } else {
    fail("malformed comparison: " + line + " (unknown target " + target + ")", exit_invalid_input);
  }
  return c;
}

// etcdctl's argify: double-quoted (Go-unquoted), single-quoted, or bare words. Scanned by hand
// (std::regex recurses per character and overflows the stack on long values).
std::vector<std::string> argify(const std::string& line) {
  std::vector<std::string> out;
  const auto space = [&](std::size_t i) {
    return std::isspace(static_cast<unsigned char>(line[i])) != 0;
  };
  std::size_t i = 0;
  while (i < line.size()) {
    if (space(i)) {
      ++i;
      continue;
    }
    if (line[i] == '"') {
      std::size_t at = i;
      auto q = scan_quoted(line, at);
      if (!q) fail("invalid syntax", exit_invalid_input);
      out.push_back(*q);
      i = at;
    } else if (line[i] == '\'') {
      const auto end = line.find('\'', i + 1);
      if (end == std::string::npos) {
        ++i;  // an unmatched quote starts no word, as the pattern etcdctl uses
        continue;
      }
      out.push_back(line.substr(i + 1, end - i - 1));
      i = end + 1;
    } else {
      std::size_t end = i;
      while (end < line.size() && !space(end)) ++end;
      out.push_back(line.substr(i, end - i));
      i = end;
    }
  }
  return out;
}

// One request line of a txn: `put|get|del [flags] args`, with the commands' own flags.
pb::RequestOp parse_request(const std::string& line) {
  auto args = argify(line);
  const auto bad = [&]() { fail("invalid txn request: " + line, exit_invalid_input); };
  if (args.empty()) bad();
  const std::string cmd = args[0];
  CLI::App sub{cmd};
  sub.allow_extras(false);
  std::vector<std::string> pos;
  sub.add_option("args", pos);
  pb::RequestOp op;
  get_flags gf;
  put_flags pf;
  del_flags df;
  if (cmd == "get") {
    sub.add_option("--consistency", gf.consistency);
    sub.add_flag("--from-key", gf.from_key);
    sub.add_flag("--keys-only", gf.keys_only);
    sub.add_option("--limit", gf.limit);
    sub.add_option("--order", gf.order);
    sub.add_flag("--prefix", gf.prefix);
    sub.add_flag("--print-value-only", gf.value_only);
    sub.add_option("--rev", gf.rev);
    sub.add_option("--sort-by", gf.sort_by);
  } else if (cmd == "put") {
    sub.add_flag("--ignore-lease", pf.ignore_lease);
    sub.add_flag("--ignore-value", pf.ignore_value);
    sub.add_option("--lease", pf.lease);
    sub.add_flag("--prev-kv", pf.prev_kv);
  } else if (cmd == "del" || cmd == "delete") {
    sub.add_flag("--from-key", df.from_key);
    sub.add_flag("--prefix", df.prefix);
    sub.add_flag("--prev-kv", df.prev_kv);
  } else {
    bad();
  }
  std::vector<std::string> rest(args.rbegin(), args.rend() - 1);
  try {
    sub.parse(rest);
  } catch (const CLI::ParseError&) {
    bad();
  }
  if (cmd == "get") {
    *op.mutable_request_range() = get_request(gf, pos);
  } else if (cmd == "put") {
    *op.mutable_request_put() = put_request(pf, pos, false);
  } else {
    *op.mutable_request_delete_range() = del_request(df, pos);
  }
  return op;
}

// Lines up to an empty one; end of input before it is etcdctl's "EOF" (invalid input).
std::vector<std::string> read_block() {
  std::vector<std::string> out;
  std::string line;
  while (true) {
    if (!std::getline(std::cin, line)) fail("EOF", exit_invalid_input);
    const auto b = line.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return out;
    const auto e = line.find_last_not_of(" \t\r\n");
    out.push_back(line.substr(b, e - b + 1));
  }
}

void run_txn(const globals& g, bool interactive) {
  pb::TxnRequest req;
  if (interactive) std::cout << "compares:\n" << std::flush;
  for (const auto& l : read_block()) *req.add_compare() = parse_compare(l);
  if (interactive) std::cout << "success requests (get, put, del):\n" << std::flush;
  for (const auto& l : read_block()) *req.add_success() = parse_request(l);
  if (interactive) std::cout << "failure requests (get, put, del):\n" << std::flush;
  for (const auto& l : read_block()) *req.add_failure() = parse_request(l);
  no_table(g);
  auto c = connect_first(g);
  auto ctx = c.ctx();
  pb::TxnResponse resp;
  check(c.kv().Txn(ctx.get(), req, &resp));
  display(g.write_out, g.hex).txn(resp);
}

// --- watch ---

std::vector<std::string>& watch_exec() {
  static std::vector<std::string> exec;
  return exec;
}
bool& watch_separator() {
  static bool found = false;
  return found;
}

struct watch_flags {
  bool interactive = false, prefix = false, prev_kv = false, progress_notify = false;
  std::int64_t rev = 0;
};

void run_exec(const std::vector<std::string>& argv, const pb::WatchResponse& resp,
              const mvccpb::Event& ev) {
  // Everything the child needs is made before fork: only exec runs in it (gRPC's threads may
  // hold locks at the fork).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back("ETCD_WATCH_REVISION=" + std::to_string(resp.header().revision()));
  env_strings.push_back("ETCD_WATCH_EVENT_TYPE=" +
                        go_quote(mvccpb::Event::EventType_Name(ev.type())));
  env_strings.push_back("ETCD_WATCH_KEY=" + go_quote(ev.kv().key()));
  env_strings.push_back("ETCD_WATCH_VALUE=" + go_quote(ev.kv().value()));
  std::vector<char*> envp, a;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const auto& x : argv) a.push_back(const_cast<char*>(x.c_str()));
  a.push_back(nullptr);
  std::cout << std::flush;
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Go's exec.Cmd without Stdin: the command reads /dev/null, never our input.
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execvpe(a[0], a.data(), envp.data());
    std::_Exit(127);
  }
  if (devnull >= 0) ::close(devnull);
  if (pid < 0) fail("fork: " + std::string(std::strerror(errno)));
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string q;
    for (const auto& s : argv) q += (q.empty() ? "" : " ") + go_quote(s);
    std::cerr << fmt::format("command [{}] error (exit status {})\n", q,
                             WIFEXITED(status) ? WEXITSTATUS(status) : 1);
    quit(1);  // a watch -i reader thread may still be in gRPC
  }
}

pb::WatchCreateRequest watch_create(const watch_flags& f, const std::vector<std::string>& args) {
  pb::WatchCreateRequest create;
  std::string key = args[0];
  if (args.size() == 2) create.set_range_end(args[1]);  // etcdctl ignores a third and its range
  apply_range(key, *create.mutable_range_end(), f.prefix, false);
  create.set_key(key);
  create.set_start_revision(f.rev);
  create.set_prev_kv(f.prev_kv);
  create.set_progress_notify(f.progress_notify);
  return create;
}

// Prints one watch response (and runs `exec` for each event); true when the watch was cancelled.
bool show_watch_response(const pb::WatchResponse& resp, const display& d,
                         const std::vector<std::string>& exec) {
  if (resp.created() && resp.events_size() == 0 && !resp.canceled()) return false;
  if (resp.canceled()) {
    std::string why = resp.cancel_reason();
    if (resp.compact_revision() > 0) why = "etcdserver: mvcc: required revision has been compacted";
    std::cerr << "watch was canceled (" << why << ")\n";
  }
  if (resp.events_size() == 0 && !resp.canceled() && resp.compact_revision() == 0) {
    std::cout << "progress notify: " << resp.header().revision() << "\n";
  }
  d.watch(resp);
  std::cout << std::flush;
  for (const auto& ev : resp.events()) {
    if (!exec.empty()) run_exec(exec, resp, ev);
  }
  return resp.canceled();
}

void run_watch(const globals& g, const watch_flags& f, std::vector<std::string> args) {
  // `watch key [range_end] [--] [exec-command arg...]`: the command was cut off argv before
  // parsing (take_watch_exec).
  const auto& exec = watch_exec();
  if (watch_separator() && exec.empty()) {
    fail("bad number of arguments (found separator --, but no commands)", exit_bad_args);
  }
  // The key and range may come from ETCDCTL_WATCH_KEY and ETCDCTL_WATCH_RANGE_END.
  const char* env_key = std::getenv("ETCDCTL_WATCH_KEY");
  const char* env_end = std::getenv("ETCDCTL_WATCH_RANGE_END");
  if ((env_key == nullptr || *env_key == 0) && env_end != nullptr && *env_end != 0) {
    fail(fmt::format("ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END={}",
                     go_quote(env_end)),
         exit_bad_args);
  }
  if (env_key != nullptr && *env_key != 0) {
    if (!args.empty()) {
      fail("bad number of arguments (found conflicting environment key)", exit_bad_args);
    }
    args.push_back(env_key);
    if (env_end != nullptr && *env_end != 0) args.push_back(env_end);
  }
  if (args.empty()) fail("bad number of arguments", exit_bad_args);
  if (f.prefix && args.size() == 2) {
    fail("`range_end` and `--prefix` are mutually exclusive", exit_bad_args);
  }
  const auto create = watch_create(f, args);
  no_table(g);
  auto c = connect_first(g);
  auto ctx = c.stream_ctx();
  // clientv3.WithRequireLeader, as etcdctl: a member without a leader cancels the watch.
  ctx->AddMetadata("hasleader", "true");
  auto stream = c.watch().Watch(ctx.get());
  pb::WatchRequest wr;
  *wr.mutable_create_request() = create;
  if (!stream->Write(wr)) fail("watch is canceled by the server", exit_interrupted);
  const display d(g.write_out, g.hex);
  pb::WatchResponse resp;
  while (stream->Read(&resp)) {
    if (show_watch_response(resp, d, exec)) break;
  }
  stream->WritesDone();
  fail("watch is canceled by the server", exit_interrupted);
}

// watch -i: lines `watch [flags] key [range_end] [-- command...]` start watchers on one stream,
// `progress` asks the server for a progress notification; the end of input ends it, as etcdctl
// ("Error reading watch request line: EOF", invalid input).
void run_watch_interactive(const globals& g) {
  no_table(g);
  auto c = connect_first(g);
  auto ctx = c.stream_ctx();
  // clientv3.WithRequireLeader, as etcdctl: a member without a leader cancels the watch.
  ctx->AddMetadata("hasleader", "true");
  auto stream = c.watch().Watch(ctx.get());
  const display d(g.write_out, g.hex);
  std::mutex mu;
  std::deque<std::vector<std::string>> pending;  // exec commands of creates not yet answered
  std::map<std::int64_t, std::vector<std::string>> execs;
  std::thread reader([&]() {
    pb::WatchResponse resp;
    while (stream->Read(&resp)) {
      std::vector<std::string> exec;
      {
        std::lock_guard<std::mutex> l(mu);
        if (resp.created() && !pending.empty()) {
          execs[resp.watch_id()] = pending.front();
          pending.pop_front();
        }
        exec = execs[resp.watch_id()];
      }
      show_watch_response(resp, d, exec);
    }
  });
  reader.detach();
  std::string line;
  while (std::getline(std::cin, line)) {
    auto args = argify(line);
    if (args.empty()) {
      std::cerr << "Invalid command: " << line << " (watch and progress supported)\n";
      continue;
    }
    pb::WatchRequest wr;
    if (args[0] == "progress") {
      wr.mutable_progress_request();
      stream->Write(wr);
      continue;
    }
    if (args[0] != "watch") {
      std::cerr << "Invalid command " << line << " (only support watch)\n";
      continue;
    }
    if (args.size() < 2) {
      std::cerr << "Invalid command " << line << " (command type or key is not provided)\n";
      continue;
    }
    std::vector<std::string> exec;
    if (auto dash = std::find(args.begin(), args.end(), "--"); dash != args.end()) {
      exec.assign(dash + 1, args.end());
      if (exec.empty()) {
        fail("bad number of arguments (found separator --, but no commands)", exit_bad_args);
      }
      args.erase(dash, args.end());
    }
    CLI::App sub{"watch"};
    watch_flags f;
    std::vector<std::string> pos;
    sub.add_option("args", pos);
    sub.add_flag("--prefix", f.prefix);
    sub.add_option("--rev", f.rev);
    sub.add_flag("--prev-kv", f.prev_kv);
    sub.add_flag("--progress-notify", f.progress_notify);
    std::vector<std::string> rest(args.rbegin(), args.rend() - 1);
    try {
      sub.parse(rest);
    } catch (const CLI::ParseError& e) {
      fail(e.what(), exit_bad_args);
    }
    if (pos.empty()) {
      std::cerr << "Invalid command " << line << " (command type or key is not provided)\n";
      continue;
    }
    if (f.prefix && pos.size() == 2) {
      std::cerr << "Invalid command " << line
                << " (`range_end` and `--prefix` are mutually exclusive)\n";
      continue;
    }
    {
      std::lock_guard<std::mutex> l(mu);
      pending.push_back(exec);
    }
    *wr.mutable_create_request() = watch_create(f, pos);
    stream->Write(wr);
  }
  fail("Error reading watch request line: EOF", exit_invalid_input);  // the reader still reads
}

// --- lease ---

// The one lease ID argument of revoke, timetolive and keep-alive (etcdctl's usage error when it
// is missing or extra).
std::int64_t lease_id_arg(const std::vector<std::string>& args, const char* usage) {
  if (args.size() != 1) fail(usage, exit_bad_args);
  return parse_hex_id(args[0], "lease ID arg");
}

void add_lease_commands(CLI::App& app, globals& g) {
  auto* lease = app.add_subcommand("lease", "Lease related commands");
  // Without a subcommand: its help, exit 0, as etcdctl.
  lease->callback([lease]() {
    if (lease->get_subcommands().empty()) {
      std::cout << lease->help();
      quit(0);
    }
  });
  static std::vector<std::string> largs;
  static bool keys = false, once = false;

  auto* grant = lease->add_subcommand("grant", "Creates leases");
  grant->add_option("ttl", largs, "TTL in seconds");
  grant->callback([&g]() {
    if (largs.size() != 1) fail("lease grant command needs TTL argument", exit_bad_args);
    std::int64_t ttl = 0;
    try {
      std::size_t used = 0;
      ttl = std::stoll(largs[0], &used, 10);
      if (used != largs[0].size()) throw std::invalid_argument("x");
    } catch (const std::exception&) {
      fail(fmt::format("bad TTL (strconv.ParseInt: parsing \"{}\": invalid syntax)", largs[0]),
           exit_bad_args);
    }
    no_table(g);
    auto c = connect_first(g);
    auto ctx = c.ctx();
    pb::LeaseGrantRequest req;
    req.set_ttl(ttl);
    pb::LeaseGrantResponse resp;
    auto st = c.lease().LeaseGrant(ctx.get(), req, &resp);
    if (!st.ok()) fail("failed to grant lease (" + st.error_message() + ")");
    display(g.write_out, g.hex).grant(resp);
  });

  auto* revoke = lease->add_subcommand("revoke", "Revokes leases");
  revoke->add_option("leaseID", largs, "The lease's ID, in hex");
  revoke->callback([&g]() {
    const auto id = lease_id_arg(largs, "lease revoke command needs 1 argument");
    no_table(g);
    auto c = connect_first(g);
    auto ctx = c.ctx();
    pb::LeaseRevokeRequest req;
    req.set_id(id);
    pb::LeaseRevokeResponse resp;
    auto st = c.lease().LeaseRevoke(ctx.get(), req, &resp);
    if (!st.ok()) fail("failed to revoke lease (" + st.error_message() + ")");
    display(g.write_out, g.hex).revoke(id, resp);
  });

  auto* ttl = lease->add_subcommand("timetolive", "Get lease information");
  ttl->add_option("leaseID", largs, "The lease's ID, in hex");
  ttl->add_flag("--keys", keys, "Get keys attached to this lease");
  ttl->callback([&g]() {
    const auto id = lease_id_arg(largs, "lease timetolive command needs lease ID as argument");
    no_table(g);
    auto c = connect_first(g);
    auto ctx = c.ctx();
    pb::LeaseTimeToLiveRequest req;
    req.set_id(id);
    req.set_keys(keys);
    pb::LeaseTimeToLiveResponse resp;
    auto st = c.lease().LeaseTimeToLive(ctx.get(), req, &resp);
    if (!st.ok()) fail(st.error_message(), exit_bad_connection);
    display(g.write_out, g.hex).time_to_live(resp, keys);
  });

  auto* list = lease->add_subcommand("list", "List all active leases");
  list->callback([&g]() {
    no_table(g);
    auto c = connect_first(g);
    auto ctx = c.ctx();
    pb::LeaseLeasesResponse resp;
    auto st = c.lease().LeaseLeases(ctx.get(), {}, &resp);
    if (!st.ok()) fail(st.error_message(), exit_bad_connection);
    display(g.write_out, g.hex).leases(resp);
  });

  auto* ka = lease->add_subcommand("keep-alive", "Keeps leases alive (renew)");
  ka->add_option("leaseID", largs, "The lease's ID, in hex");
  ka->add_flag("--once", once, "Resets the keep-alive time to its original value once");
  ka->callback([&g]() {
    const auto id = lease_id_arg(largs, "lease keep-alive command needs lease ID as argument");
    no_table(g);
    auto c = connect_first(g);
    const display d(g.write_out, g.hex);
    auto ctx = once ? c.ctx() : c.stream_ctx();
    auto stream = c.lease().LeaseKeepAlive(ctx.get());
    pb::LeaseKeepAliveRequest req;
    req.set_id(id);
    pb::LeaseKeepAliveResponse resp;
    while (true) {
      if (!stream->Write(req) || !stream->Read(&resp)) {
        if (once) fail(stream->Finish().error_message(), exit_bad_connection);
        break;
      }
      if (resp.ttl() <= 0) {
        if (once) fail("etcdserver: requested lease not found", exit_bad_connection);
        break;
      }
      d.keep_alive(resp);
      std::cout << std::flush;
      if (once) return;
      // clientv3 renews at a third of the TTL.
      std::this_thread::sleep_for(std::chrono::milliseconds(resp.ttl() * 1000 / 3));
    }
    if (d.simple()) std::cout << fmt::format("lease {:016x} expired or revoked.\n", id);
  });
}

// --- check perf ---

struct perf_load {
  const char* names[2];
  double limit;  // writes per second
  int clients;
};
constexpr perf_load perf_loads[] = {{{"s", "small"}, 150, 50},
                                    {{"m", "medium"}, 1000, 200},
                                    {{"l", "large"}, 8000, 500},
                                    {{"xl", "xLarge"}, 15000, 1000}};

struct perf_flags {
  std::string load = "s";
  std::string prefix = "/etcdctl-check-perf/";
  bool auto_compact = false, auto_defrag = false;
  std::string duration = "60s";  // cairnctl's own: etcdctl always runs a minute
};

// etcdctl check perf: `clients` connections put 256-byte keys (a random varint, then NULs)
// under the prefix with 1 KiB values, at the load's rate for a minute; then the prefix is
// deleted (and compacted and defragmented when asked), and the verdict printed: throughput above
// 90% of the rate, the slowest request under 0.5 s, the standard deviation under 0.1 s.
void run_check_perf(const globals& g, const perf_flags& f) {
  const perf_load* load = nullptr;
  for (const auto& l : perf_loads) {
    if (f.load == l.names[0] || f.load == l.names[1]) load = &l;
  }
  if (load == nullptr) fail("unknown load option " + f.load, exit_bad_feature);
  const auto duration = parse_go_duration(f.duration);
  if (!duration || duration->count() <= 0) fail("bad --duration " + f.duration, exit_bad_args);
  auto first = connect_first(g);
  {
    auto ctx = first.ctx();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    pb::RangeRequest req;
    std::string key = f.prefix;
    apply_range(key, *req.mutable_range_end(), true, false);
    req.set_key(key);
    req.set_limit(1);
    pb::RangeResponse resp;
    check(first.kv().Range(ctx.get(), req, &resp));
    if (resp.kvs_size() > 0) {
      fail(fmt::format("prefix {} has keys. Delete with etcdctl del --prefix {} first",
                       go_quote(f.prefix), f.prefix),
           exit_invalid_input);
    }
  }
  const auto eps = split(g.endpoints);
  std::vector<std::unique_ptr<conn>> conns;
  for (int i = 0; i < load->clients; ++i) {
    conns.push_back(std::make_unique<conn>(eps[static_cast<std::size_t>(i) % eps.size()], g));
  }
  std::mutex mu;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + *duration;
  const auto interval = std::chrono::duration<double>(1.0 / load->limit);
  auto next_slot = start;
  std::vector<double> lat;
  std::map<std::string, int> errors;
  std::vector<std::thread> workers;
  for (int i = 0; i < load->clients; ++i) {
    workers.emplace_back([&, i]() {
      std::mt19937_64 rng(static_cast<std::uint64_t>(i) * 7919 + 1);
      const std::string value(1024, '\0');
      while (true) {
        std::chrono::steady_clock::time_point slot;
        {
          std::lock_guard<std::mutex> l(mu);
          slot = std::max(next_slot, std::chrono::steady_clock::now());
          next_slot =
              slot + std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
        }
        if (slot >= end) return;
        std::this_thread::sleep_until(slot);
        // binary.PutVarint of a random non-negative int63 into a 256-byte buffer.
        std::string k(256, '\0');
        std::uint64_t zz = (rng() >> 1) << 1;  // zigzag of a non-negative number
        std::size_t at = 0;
        while (zz >= 0x80) {
          k[at++] = static_cast<char>(zz | 0x80);
          zz >>= 7;
        }
        k[at] = static_cast<char>(zz);
        pb::PutRequest req;
        req.set_key(f.prefix + k);
        req.set_value(value);
        pb::PutResponse resp;
        auto& c = *conns[static_cast<std::size_t>(i)];
        auto ctx = c.ctx();
        const auto t0 = std::chrono::steady_clock::now();
        auto st =
            c.ok() ? c.kv().Put(ctx.get(), req, &resp)
                   : grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "context deadline exceeded");
        const double took =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::lock_guard<std::mutex> l(mu);
        if (st.ok()) {
          lat.push_back(took);
        } else {
          ++errors[st.error_message()];
        }
      }
    });
  }
  const bool tty = ::isatty(1) != 0;
  const auto total_s = std::chrono::duration_cast<std::chrono::seconds>(*duration).count();
  for (std::int64_t sec = 1; tty && sec <= total_s; ++sec) {
    std::this_thread::sleep_until(start + std::chrono::seconds(sec));
    std::cout << fmt::format("\r {} / {} {:7.2f}%", sec, total_s, 100.0 * sec / total_s)
              << std::flush;
  }
  for (auto& w : workers) w.join();
  if (tty) std::cout << "\n";
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Clean up before the verdict, as etcdctl.
  pb::DeleteRangeResponse dresp;
  {
    auto ctx = first.ctx();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    pb::DeleteRangeRequest req;
    std::string key = f.prefix;
    apply_range(key, *req.mutable_range_end(), true, false);
    req.set_key(key);
    check(first.kv().DeleteRange(ctx.get(), req, &dresp));
  }
  if (f.auto_compact) {
    const auto rev = dresp.header().revision();
    std::cout << "Compacting with revision " << rev << "\n";
    auto ctx = first.ctx();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    pb::CompactionRequest req;
    req.set_revision(rev);
    req.set_physical(true);
    pb::CompactionResponse resp;
    check(first.kv().Compact(ctx.get(), req, &resp));
    std::cout << "Compacted with revision " << rev << "\n";
  }
  if (f.auto_defrag) {
    for (const auto& ep : eps) {
      std::cout << "Defragmenting " << go_quote(ep) << "\n";
      conn c(ep, g);
      auto ctx = c.stream_ctx();
      ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      pb::DefragmentResponse resp;
      check(c.ok()
                ? c.maintenance().Defragment(ctx.get(), {}, &resp)
                : grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "context deadline exceeded"));
      std::cout << "Defragmented " << go_quote(ep) << "\n";
    }
  }

  bool ok = true;
  if (!errors.empty()) {
    ok = false;
    std::cout << "FAIL: too many errors\n";
    for (const auto& [e, n] : errors) std::cout << fmt::format("FAIL: ERROR({}) -> {}\n", e, n);
  }
  const double rps = elapsed > 0 ? static_cast<double>(lat.size()) / elapsed : 0;
  double slowest = 0, mean = 0, var = 0;
  for (double x : lat) {
    slowest = std::max(slowest, x);
    mean += x;
  }
  if (!lat.empty()) mean /= static_cast<double>(lat.size());
  for (double x : lat) var += (x - mean) * (x - mean);
  const double stddev = lat.empty() ? 0 : std::sqrt(var / static_cast<double>(lat.size()));
  if (rps / load->limit <= 0.9) {
    ok = false;
    std::cout << fmt::format("FAIL: Throughput too low: {} writes/s\n",
                             static_cast<std::int64_t>(rps) + 1);
  } else {
    std::cout << fmt::format("PASS: Throughput is {} writes/s\n",
                             static_cast<std::int64_t>(rps) + 1);
  }
  if (slowest > 0.5) {
    ok = false;
    std::cout << fmt::format("Slowest request took too long: {:.6f}s\n", slowest);
  } else {
    std::cout << fmt::format("PASS: Slowest request took {:.6f}s\n", slowest);
  }
  if (stddev > 0.1) {
    ok = false;
    std::cout << fmt::format("Stddev too high: {:.6f}s\n", stddev);
  } else {
    std::cout << fmt::format("PASS: Stddev is {:.6f}s\n", stddev);
  }
  std::cout << (ok ? "PASS\n" : "FAIL\n");
  quit(ok ? 0 : 1);  // its channels may still be closing
}

}  // namespace

void take_watch_exec(int& argc, char** argv) {
  int watch_at = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (watch_at < 0 && a == "watch") watch_at = i;
    if (watch_at >= 0 && a == "--") {
      watch_separator() = true;
      for (int k = i + 1; k < argc; ++k) watch_exec().push_back(argv[k]);
      argc = i;
      return;
    }
  }
}

void add_kv_commands(CLI::App& app, globals& g) {
  static std::vector<std::string> args;

  static get_flags gf;
  auto* get = app.add_subcommand("get", "Gets the key or a range of keys");
  get->add_option("args", args, "<key> [range_end]");
  get->add_option("--consistency", gf.consistency, "Linearizable(l) or Serializable(s)");
  get->add_flag("--from-key", gf.from_key,
                "Get keys that are greater than or equal to the given key using byte compare");
  get->add_flag("--keys-only", gf.keys_only, "Get only the keys");
  get->add_option("--limit", gf.limit, "Maximum number of results");
  get->add_option("--order", gf.order, "Order of results; ASCEND or DESCEND (ASCEND by default)");
  get->add_flag("--prefix", gf.prefix, "Get keys with matching prefix");
  get->add_flag("--print-value-only", gf.value_only,
                "Only write values when using the \"simple\" output format");
  get->add_option("--rev", gf.rev, "Specify the kv revision");
  get->add_option("--sort-by", gf.sort_by, "Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION");
  get->callback([&g]() {
    auto req = get_request(gf, args);
    no_table(g);
    auto c = connect_first(g);
    auto ctx = c.ctx();
    pb::RangeResponse resp;
    check(c.kv().Range(ctx.get(), req, &resp));
    if (gf.value_only && g.write_out != "simple") {
      fail("print-value-only is only for `--write-out=simple`", exit_bad_args);
    }
    display(g.write_out, g.hex, gf.value_only).get(resp);
  });

  static put_flags pf;
  auto* put = app.add_subcommand("put", "Puts the given key into the store");
  put->add_option("args", args, "<key> <value> (the value from stdin when left out)");
  put->add_flag("--ignore-lease", pf.ignore_lease, "Updates the key using its current lease");
  put->add_flag("--ignore-value", pf.ignore_value, "Updates the key using its current value");
  put->add_option("--lease", pf.lease, "Lease ID (in hexadecimal) to attach to the key");
  put->add_flag("--prev-kv", pf.prev_kv, "Return the previous key-value pair before modification");
  put->callback([&g]() {
    auto req = put_request(pf, args, true);
    no_table(g);
    auto c = connect_first(g);
    auto ctx = c.ctx();
    pb::PutResponse resp;
    check(c.kv().Put(ctx.get(), req, &resp));
    display(g.write_out, g.hex).put(resp);
  });

  static del_flags df;
  auto* del =
      app.add_subcommand("del", "Removes the specified key or range of keys [key, range_end)");
  del->add_option("args", args, "<key> [range_end]");
  del->add_flag("--from-key", df.from_key,
                "delete keys that are greater than or equal to the given key using byte compare");
  del->add_flag("--prefix", df.prefix, "delete keys with matching prefix");
  del->add_flag("--prev-kv", df.prev_kv, "return deleted key-value pairs");
  del->callback([&g]() {
    auto req = del_request(df, args);
    no_table(g);
    auto c = connect_first(g);
    auto ctx = c.ctx();
    pb::DeleteRangeResponse resp;
    check(c.kv().DeleteRange(ctx.get(), req, &resp));
    display(g.write_out, g.hex).del(resp);
  });

  static bool interactive = false;
  auto* txn = app.add_subcommand("txn", "Txn processes all the requests in one transaction");
  txn->add_flag("-i,--interactive", interactive, "Input transaction in interactive mode");
  static std::vector<std::string> txn_args;
  txn->add_option("args", txn_args, "(none: the transaction comes from standard input)");
  txn->callback([&g]() {
    if (!txn_args.empty()) fail("txn command does not accept argument", exit_bad_args);
    run_txn(g, interactive);
  });

  static watch_flags wf;
  auto* watch = app.add_subcommand("watch", "Watches events stream on keys or prefixes");
  watch->add_option("args", args, "[key or prefix] [range_end] [--] [exec-command arg1 ...]");
  watch->add_flag("-i,--interactive", wf.interactive, "Interactive mode");
  watch->add_flag("--prefix", wf.prefix, "Watch on a prefix if prefix is set");
  watch->add_option("--rev", wf.rev, "Revision to start watching");
  watch->add_flag("--prev-kv", wf.prev_kv,
                  "get the previous key-value pair before the event happens");
  watch->add_flag("--progress-notify", wf.progress_notify,
                  "get periodic watch progress notification from server");
  watch->positionals_at_end(false);
  watch->callback([&g]() {
    if (wf.interactive) {
      run_watch_interactive(g);
    } else {
      run_watch(g, wf, args);
    }
  });

  add_lease_commands(app, g);

  static perf_flags cf;
  auto* chk = app.add_subcommand("check", "commands for checking properties of the cluster");
  chk->callback([chk]() {
    if (chk->get_subcommands().empty()) {
      std::cout << chk->help();
      quit(0);
    }
  });
  auto* perf = chk->add_subcommand("perf", "Check the performance of the cluster");
  perf->add_option("--load", cf.load, "The performance check's workload model: s, m, l, xl");
  perf->add_option("--prefix", cf.prefix, "The prefix for writing the performance check's keys");
  perf->add_flag("--auto-compact", cf.auto_compact,
                 "Compact storage with the last revision after the test is finished");
  perf->add_flag("--auto-defrag", cf.auto_defrag, "Defragment storage after the test is finished");
  perf->add_option("--duration", cf.duration,
                   "How long the load runs (cairnctl only; etcdctl always runs 60s)");
  perf->callback([&g]() { run_check_perf(g, cf); });
}

}  // namespace cairn::ctl
