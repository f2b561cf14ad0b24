// An independent client: Debian's python3-etcd3 library (e2e/python/etcd3_client.py: KV, txns,
// watches, leases, locks, maintenance) against `cairn`, and against the real etcd 3.4.23 so that
// the script itself is known to hold for etcd.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "support/e2e.h"

namespace cairn {
namespace {

// Debian's interpreter: python3-etcd3 lives in its dist-packages, which a python3 earlier on
// PATH (pyenv, a virtualenv) would not see.
constexpr const char* python = "/usr/bin/python3";

e2e::run_result run_client(int port) {
  const std::string script = (e2e::source_dir() / "e2e" / "python" / "etcd3_client.py").string();
  return e2e::run({python, script, "127.0.0.1", std::to_string(port)}, {},
                  std::chrono::seconds(60));
}

bool have_python_etcd3() {
  if (::access(python, X_OK) != 0) return false;
  return e2e::run({python, "-c", "import etcd3"}).exit_code == 0;
}

TEST(PythonEtcd3, TheScriptHoldsForEtcd) {
  if (!have_python_etcd3()) GTEST_FAIL() << "python3-etcd3 is missing: run scripts/install-deps.sh";
  e2e::etcd_server etcd;
  auto r = run_client(etcd.client_port());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all checks passed"), std::string::npos) << r.out;
}

TEST(PythonEtcd3, CairnServesTheLibrary) {
  if (!have_python_etcd3()) GTEST_FAIL() << "python3-etcd3 is missing: run scripts/install-deps.sh";
  e2e::temp_dir dir("cairn-python");
  e2e::cairn_server cairn(dir.path() / "data");
  auto r = run_client(cairn.client_port());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("all checks passed"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace cairn
