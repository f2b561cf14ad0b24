// mvcc/testing.h: helpers shared by mvcc's tests and benchmarks (a temporary database
// directory, a backend plus store opened on it, printing). Not part of cairn_mvcc.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>

#include "backend/backend.h"
#include "mvcc/kv.h"
#include "mvcc/store.h"
#include "schema/schema.h"

namespace cairn::mvcc::testing {

class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cairn-mvcc-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~temp_dir() { std::filesystem::remove_all(path_); }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A backend and a store on `<dir>/db`, reopened at will (the store first, then the backend).
struct db {
  explicit db(const temp_dir& dir, backend::options bopts = {}, store_options sopts = {})
      : path(dir.file("db")), bopts(std::move(bopts)), sopts(sopts) {
    open();
  }
  ~db() { close(); }
  void open() {
    auto b = schema::open_backend(path, bopts);
    if (!b) std::abort();
    be = std::move(*b);
    st = store::open(*be, sopts);
  }
  void close() {
    st.reset();
    be.reset();
  }
  // A process crash: the open batch is lost; committed batches stay.
  void crash() {
    st.reset();
    be->simulate_crash();
    be.reset();
  }
  void reopen() {
    close();
    open();
  }

  std::string path;
  backend::options bopts;
  store_options sopts;
  std::unique_ptr<backend::backend> be;
  std::unique_ptr<store> st;
};

inline std::ostream& operator<<(std::ostream& os, const key_value& kv) {
  return os << "{" << kv.key << " c" << kv.create_revision << " m" << kv.mod_revision << " v"
            << kv.version << " '" << kv.value << "' l" << kv.lease << "}";
}

inline std::ostream& operator<<(std::ostream& os, const event& e) {
  os << (e.type == event_type::put ? "PUT" : "DEL") << e.kv;
  if (e.prev_kv) os << " prev=" << *e.prev_kv;
  return os;
}

}  // namespace cairn::mvcc::testing

namespace cairn::mvcc {
using testing::operator<<;
}  // namespace cairn::mvcc
