#include "ctl/snapshot_file.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/crc32c.h"
#include "etcdserver/bbolt.h"
#include "etcdserver/etcd_import.h"
#include "mvcc/store.h"
#include "schema/schema.h"

namespace cairn::ctl {

std::string sha256(const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(out), n);
}

cairn::expected<snapshot_status, std::string> read_status(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return cairn::unexpected("cannot open " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string bytes = buf.str();
  snapshot_status st;
  // LMDB files are whole pages; 32 more bytes are the SHA-256 of the rest.
  const std::size_t page = 4096;
  if (bytes.size() % page == 32) {
    const std::string want = bytes.substr(bytes.size() - 32);
    bytes.resize(bytes.size() - 32);
    if (sha256(bytes) != want) {
      return cairn::unexpected(std::string(
          "snapshot file integrity check failed: the SHA-256 at its end does not match"));
    }
    st.has_sha256 = true;
  } else if (bytes.size() % page != 0 || bytes.empty()) {
    return cairn::unexpected(path + ": not a Cairn snapshot (" + std::to_string(bytes.size()) +
                             " bytes: neither whole database pages nor pages and a SHA-256)");
  }
  if (etcdserver::bbolt::looks_like_bbolt(bytes)) {
    auto es = etcdserver::read_etcd_db_status(path, bytes.size());
    if (!es) return cairn::unexpected(es.error());
    st.from_etcd = true;
    st.hash = es->hash;
    st.revision = es->revision;
    st.total_keys = es->total_keys;
    st.total_size = es->total_size;
    return st;
  }
  st.total_size = bytes.size();
  st.hash = base::crc32c_extend(0, bytes);

  // A private copy: opening a database writes to it.
  char tmpl[] = "/tmp/cairnctl-status-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return cairn::unexpected(std::string("cannot make a temp dir"));
  const std::filesystem::path dir = tmpl;
  struct cleanup {
    std::filesystem::path d;
    ~cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  } remove_dir{dir};
  const std::string db = (dir / "db").string();
  {
    std::ofstream out(db, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return cairn::unexpected("cannot write " + db);
  }
  backend::options o;
  o.quota_bytes = std::max<std::uint64_t>(bytes.size() * 2, std::uint64_t{1} << 30);
  auto be = schema::open_backend(db, o);
  if (!be) return cairn::unexpected(path + ": not a Cairn snapshot: " + be.error().message);
  auto store = mvcc::store::open(**be);
  st.revision = store->rev();
  st.compact_revision = std::max<std::int64_t>(store->compact_rev(), 0);
  mvcc::range_request all;
  all.key = std::string(1, '\0');
  all.range_end = std::string(1, '\0');
  all.count_only = true;
  auto r = store->range(all);
  if (!r) return cairn::unexpected(path + ": cannot count its keys");
  st.total_keys = r->count;
  return st;
}

}  // namespace cairn::ctl
