#include "http/health.h"

#include <spdlog/spdlog.h>

#include <set>
#include <utility>

#include "base/version.h"

namespace cairn::http {

namespace {

response health_answer(bool healthy, std::string_view reason) {
  std::string json = "{\"health\":";
  json += healthy ? "\"true\"" : "\"false\"";
  json += ",\"reason\":" + json_quote(reason) + "}";
  if (!healthy) return error_response(503, json);  // Go: http.Error, so a trailing newline
  response r;
  r.status = 200;
  r.body = std::move(json);  // no Content-Type: etcd sets none and Go sniffs "text/plain"
  return r;
}

std::string probe_error(base::errc e) { return std::string(base::message(e)); }

// /health: the checks in etcd's order; the first failure decides.
response check_health(health_source& source, const request& req) {
  std::set<std::string, std::less<>> excluded;
  for (std::string& v : req.query_values("exclude")) {
    if (!v.empty()) excluded.insert(std::move(v));
  }
#ifdef CAIRN_PLANTED_BUG_HEALTH_SERIALIZABLE
  // Planted bug: ?serializable=true is ignored, so a member without a leader fails the probe.
  const bool serializable = false;
#else
  const bool serializable = req.query_value("serializable") == "true";
#endif
  for (const alarm_type a : source.alarms()) {
    if (excluded.contains(to_string(a))) continue;
    spdlog::warn("serving /health false due to an alarm {}", to_string(a));
    switch (a) {
      case alarm_type::nospace:
        return health_answer(false, "ALARM NOSPACE");
      case alarm_type::corrupt:
        return health_answer(false, "ALARM CORRUPT");
      default:
        return health_answer(false, "ALARM UNKNOWN");
    }
  }
  if (!serializable && !source.has_leader()) {
    spdlog::warn("serving /health false; no leader");
    return health_answer(false, "RAFT NO LEADER");
  }
  if (auto probe = source.read_probe(serializable); !probe) {
    spdlog::warn("serving /health false; Range fails: {}", base::message(probe.error()));
    return health_answer(false, "RANGE ERROR:" + probe_error(probe.error()));
  }
  return health_answer(true, "");
}

// One /livez or /readyz check: empty when it passes, else what failed.
using check = std::function<std::string(health_source&)>;
struct named_check {
  std::string name;
  check run;
};

std::string read_check(health_source& s, bool serializable) {
  auto probe = s.read_probe(serializable);
  return probe ? std::string() : probe_error(probe.error());
}

std::vector<named_check> livez_checks() {
  return {{"serializable_read", [](health_source& s) { return read_check(s, true); }}};
}

std::vector<named_check> readyz_checks() {
  return {
      {"data_corruption",
       [](health_source& s) -> std::string {
         for (const alarm_type a : s.alarms()) {
           if (a == alarm_type::corrupt) return "alarm activated: CORRUPT";
         }
         return {};
       }},
      {"serializable_read", [](health_source& s) { return read_check(s, true); }},
      {"linearizable_read", [](health_source& s) { return read_check(s, false); }},
      {"non_learner",
       [](health_source& s) -> std::string {
         return s.is_learner() ? "not supported for learner" : std::string();
       }},
  };
}

// Runs `checks` in order; the answer etcd's CheckRegistry gives for them.
response run_checks(health_source& source, const request& req, const std::string& path,
                    const std::vector<const named_check*>& checks) {
  std::string lines;
  bool failed = false;
  for (const named_check* c : checks) {
    const std::string error = c->run(source);
    if (error.empty()) {
      lines += "[+]" + c->name + " ok\n";
    } else {
      lines += "[-]" + c->name + " failed: " + error + "\n";
      failed = true;
    }
  }
  if (failed) {
    spdlog::error("Health check error on {}: {}", path, lines);
    return error_response(503, lines);
  }
  response r;
  r.headers = {{"Content-Type", "text/plain; charset=utf-8"},
               {"X-Content-Type-Options", "nosniff"}};
  if (req.has_query("verbose")) r.body = lines;
  r.body += "ok\n";
  return r;
}

void install_checks(router& r, const std::string& root, std::shared_ptr<health_source> source,
                    std::vector<named_check> list) {
  auto checks = std::make_shared<const std::vector<named_check>>(std::move(list));
  r.handle(root, [source, checks, root](const request& req) -> response {
    if (req.method != "GET") return method_not_allowed("GET");
    std::set<std::string, std::less<>> excluded;
    for (std::string& v : req.query_values("exclude")) {
      if (!v.empty()) excluded.insert(std::move(v));
    }
    std::vector<const named_check*> chosen;
    for (const named_check& c : *checks) {
      if (excluded.erase(c.name) == 0) chosen.push_back(&c);
    }
    for (const std::string& unknown : excluded) {
      // etcd keeps answering for compatibility; it only warns.
      spdlog::warn("some health checks cannot be excluded: \"{}\"", unknown);
    }
    return run_checks(*source, req, root, chosen);
  });
  for (const named_check& c : *checks) {
    const std::string path = root + "/" + c.name;
    r.handle(path, [source, checks, check = &c, path](const request& req) -> response {
      if (req.method != "GET") return method_not_allowed("GET");
      return run_checks(*source, req, path, {check});
    });
  }
}

}  // namespace

std::string_view to_string(alarm_type a) {
  switch (a) {
    case alarm_type::none:
      return "NONE";
    case alarm_type::nospace:
      return "NOSPACE";
    case alarm_type::corrupt:
      return "CORRUPT";
  }
  return "UNKNOWN";
}

std::optional<std::string> health_source::cluster_version() {
  return std::string(base::etcd_cluster_version);
}

std::string health_metrics_text(const health_counters& counters) {
  return "# HELP etcd_server_health_failures The total number of failed health checks\n"
         "# TYPE etcd_server_health_failures counter\n"
         "etcd_server_health_failures " +
         std::to_string(counters.failures.load()) +
         "\n"
         "# HELP etcd_server_health_success The total number of successful health checks\n"
         "# TYPE etcd_server_health_success counter\n"
         "etcd_server_health_success " +
         std::to_string(counters.success.load()) + "\n";
}

void install_health(router& r, std::shared_ptr<health_source> source,
                    std::shared_ptr<health_counters> counters) {
  if (!counters) counters = std::make_shared<health_counters>();
  r.handle("/health", [source, counters](const request& req) -> response {
    if (req.method != "GET") {
      spdlog::warn("/health error (status code 405)");
      return method_not_allowed("GET");
    }
    response answer = check_health(*source, req);
    (answer.status == 200 ? counters->success : counters->failures).fetch_add(1);
    return answer;
  });
  install_checks(r, "/livez", source, livez_checks());
  install_checks(r, "/readyz", source, readyz_checks());
}

void install_version(router& r, std::shared_ptr<health_source> source) {
  r.handle("/version", [source](const request& req) -> response {
    if (req.method != "GET") return method_not_allowed("GET");
    const std::optional<std::string> cluster = source->cluster_version();
    response out;
    out.headers = {{"Content-Type", "application/json"}};
    out.body = "{\"etcdserver\":" + json_quote(base::etcd_version) +
               ",\"etcdcluster\":" + json_quote(cluster ? *cluster : "not_decided") +
               ",\"cairn\":" + json_quote(base::cairn_version) + "}";
    return out;
  });
}

void install_metrics(router& r, std::function<std::string()> gather) {
  r.handle("/metrics", [gather = std::move(gather)](const request&) -> response {
    response out;
    out.headers = {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}};
    out.body = gather();
    return out;
  });
}

void install_metrics_endpoints(router& r, std::shared_ptr<health_source> source,
                               std::shared_ptr<health_counters> counters,
                               std::function<std::string()> gather) {
  install_metrics(r, std::move(gather));
  install_health(r, source, std::move(counters));
  install_version(r, std::move(source));
}

}  // namespace cairn::http
