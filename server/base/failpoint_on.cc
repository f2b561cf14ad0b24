// The test side of failpoint.h, linked only into `cairn-failpoints`.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "base/failpoint.h"

namespace cairn::base {

extern const bool failpoints_compiled = true;

namespace {

struct action {
  enum class kind { crash, sleep } what = kind::crash;
  long after = 0;   // crash: hits let through first
  long ms = 0;      // sleep
  long times = -1;  // sleep: how many hits (-1: all)
  std::atomic<long> hits{0};
};

using table = std::map<std::string, std::shared_ptr<action>>;

// "a=crash;b=crash-after(3);c=sleep(10)*5"; unparsable terms are reported and skipped.
table parse(const std::string& text) {
  table t;
  std::stringstream in(text);
  std::string term;
  while (std::getline(in, term, ';')) {
    while (!term.empty() && (term.back() == '\n' || term.back() == ' ')) term.pop_back();
    while (!term.empty() && (term.front() == '\n' || term.front() == ' ')) term.erase(0, 1);
    if (term.empty()) continue;
    const auto eq = term.find('=');
    auto a = std::make_shared<action>();
    const std::string name = term.substr(0, eq);
    const std::string what = eq == std::string::npos ? "" : term.substr(eq + 1);
    long n = 0, m = 0;
    if (what == "crash") {
      a->what = action::kind::crash;
    } else if (std::sscanf(what.c_str(), "crash-after(%ld)", &n) == 1) {
      a->what = action::kind::crash;
      a->after = n;
    } else if (std::sscanf(what.c_str(), "sleep(%ld)*%ld", &n, &m) == 2) {
      a->what = action::kind::sleep;
      a->ms = n;
      a->times = m;
    } else if (std::sscanf(what.c_str(), "sleep(%ld)", &n) == 1) {
      a->what = action::kind::sleep;
      a->ms = n;
    } else {
      const std::string msg = "failpoint: cannot parse \"" + term + "\"\n";
      (void)!::write(2, msg.data(), msg.size());
      continue;
    }
    t[name] = std::move(a);
  }
  return t;
}

class registry {
 public:
  registry() {
    if (const char* e = std::getenv("CAIRN_FAILPOINTS")) set(parse(e));
    if (const char* f = std::getenv("CAIRN_FAILPOINTS_FILE"); f != nullptr && *f != '\0') {
      std::thread([this, path = std::string(f)] {
        std::string last;
        while (true) {
          std::ifstream in(path);
          std::stringstream text;
          text << in.rdbuf();
          if (text.str() != last) {
            last = text.str();
            set(parse(last));
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }).detach();
    }
  }
  std::shared_ptr<action> find(const char* name) {
    std::lock_guard lock(mu_);
    if (armed_.empty()) return nullptr;
    auto it = armed_.find(name);
    return it == armed_.end() ? nullptr : it->second;
  }

 private:
  void set(table t) {
    std::lock_guard lock(mu_);
    armed_ = std::move(t);
  }
  std::mutex mu_;
  table armed_;
};

registry& the_registry() {
  static registry* r = new registry();  // never destroyed: hits may come during exit
  return *r;
}

// Armed from the start (the file is read before the first hit needs it).
[[maybe_unused]] const bool started = (the_registry(), true);

}  // namespace

void failpoint_hit(const char* name) {
  std::shared_ptr<action> a = the_registry().find(name);
  if (!a) return;
  const long hit = a->hits.fetch_add(1);
  if (a->what == action::kind::sleep) {
    if (a->times < 0 || hit < a->times)
      std::this_thread::sleep_for(std::chrono::milliseconds(a->ms));
    return;
  }
  if (hit < a->after) return;
  const std::string msg = std::string("failpoint ") + name + ": crash\n";
  (void)!::write(2, msg.data(), msg.size());
  ::kill(::getpid(), SIGKILL);
}

}  // namespace cairn::base
