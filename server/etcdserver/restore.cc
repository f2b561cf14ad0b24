#include "etcdserver/restore.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "etcdserver/etcd_import.h"
#include "etcdserver/server.h"
#include "schema/schema.h"

namespace cairn::etcdserver {
namespace {

constexpr std::size_t sha256_size = 32;

struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0) ::close(fd);
  }
};

std::string sys_error(const std::string& what) {
  return absl::StrCat(what, ": ", std::strerror(errno));
}

// Go's %v of a byte slice: "[1 2 3]".
std::string go_bytes(const unsigned char* p, std::size_t n) {
  std::vector<int> v(p, p + n);
  return absl::StrCat("[", absl::StrJoin(v, " "), "]");
}

// Copies the first `size` bytes of `src` into a new file `dst` (none when empty), durably,
// hashing them.
cairn::expected<std::array<unsigned char, sha256_size>, std::string> copy_and_hash(
    int src, std::uint64_t size, const std::string& dst) {
  fd_closer out{dst.empty() ? -1
                            : ::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
  if (!dst.empty() && out.fd < 0) return cairn::unexpected(sys_error("create " + dst));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  std::uint64_t done = 0;
  while (done < size) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), size - done));
    const ssize_t n = ::pread(src, buf.data(), want, static_cast<off_t>(done));
    if (n < 0) return cairn::unexpected(sys_error("read the snapshot"));
    if (n == 0) return cairn::unexpected(std::string("the snapshot file shrank while read"));
    EVP_DigestUpdate(md.get(), buf.data(), static_cast<std::size_t>(n));
    for (ssize_t off = 0; out.fd >= 0 && off < n;) {
      const ssize_t w = ::write(out.fd, buf.data() + off, static_cast<std::size_t>(n - off));
      if (w < 0) return cairn::unexpected(sys_error("write " + dst));
      off += w;
    }
    done += static_cast<std::uint64_t>(n);
  }
  if (out.fd >= 0 && ::fsync(out.fd) != 0) return cairn::unexpected(sys_error("fsync " + dst));
  std::array<unsigned char, sha256_size> sum{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(md.get(), sum.data(), &len);
  return sum;
}

// bbolt's meta page: a 16-byte page header, then the magic 0xED0CDAED (little-endian).
bool is_bbolt(int fd) {
  unsigned char head[20];
  if (::pread(fd, head, sizeof head, 0) != static_cast<ssize_t>(sizeof head)) return false;
  return head[16] == 0xED && head[17] == 0xDA && head[18] == 0x0C && head[19] == 0xED;
}

// Removes the old cluster from the database: its members, removed members and alarms.
cairn::expected<void, std::string> trim_old_cluster(const std::string& db_path,
                                                    std::uint64_t db_size) {
  backend::options o;
  o.quota_bytes = std::max<std::uint64_t>(db_size * 2, std::uint64_t{1} << 30);
  auto be = schema::open_backend(db_path, o);
  if (!be) {
    return cairn::unexpected(
        absl::StrCat("the snapshot is not a Cairn database: ", be.error().message));
  }
  for (auto b : {schema::members, schema::members_removed, schema::alarm}) {
#ifdef CAIRN_PLANTED_BUG_RESTORE_KEEPS_OLD_MEMBERS
    if (b != schema::alarm) continue;
#endif
    (*be)->clear(b);
  }
  // The bootstrap that follows writes the new cluster's consistent index.
  if (!(*be)->sync())
    return cairn::unexpected(std::string("committing the cleared buckets failed"));
  return {};
}

cairn::expected<restore_result, std::string> restore_into(const restore_config& cfg) {
  fd_closer in{::open(cfg.snapshot_path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) return cairn::unexpected(sys_error("open " + cfg.snapshot_path));
  struct stat st {};
  if (::fstat(in.fd, &st) != 0) return cairn::unexpected(sys_error("stat " + cfg.snapshot_path));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const bool from_etcd = is_bbolt(in.fd);
  const bool has_hash = size % 512 == sha256_size;
  if (!has_hash && !cfg.skip_hash_check) {
    return cairn::unexpected(std::string("snapshot missing hash but --skip-hash-check=false"));
  }
  const std::uint64_t db_size = has_hash ? size - sha256_size : size;

  const std::string member = (std::filesystem::path(cfg.data_dir) / "member").string();
  std::error_code ec;
  std::filesystem::create_directories(member, ec);
  if (ec) return cairn::unexpected(absl::StrCat("mkdir ", member, ": ", ec.message()));
  ::chmod(cfg.data_dir.c_str(), 0700);
  ::chmod(member.c_str(), 0700);
  const std::string db_path = (std::filesystem::path(member) / "db").string();
  // An etcd snapshot is read in place and its keys written into a new Cairn database; a
  // Cairn snapshot is the database itself.
  auto sum = copy_and_hash(in.fd, db_size, from_etcd ? std::string() : db_path);
  if (!sum) return cairn::unexpected(sum.error());
  if (has_hash && !cfg.skip_hash_check) {
    std::array<unsigned char, sha256_size> want{};
    if (::pread(in.fd, want.data(), want.size(), static_cast<off_t>(db_size)) !=
        static_cast<ssize_t>(want.size())) {
      return cairn::unexpected(sys_error("read the snapshot's hash"));
    }
    if (want != *sum) {
      return cairn::unexpected(absl::StrCat("expected sha256 ", go_bytes(want.data(), want.size()),
                                            ", got ", go_bytes(sum->data(), sum->size())));
    }
  }
  if (from_etcd) {
    backend::options o;
    o.quota_bytes = std::max<std::uint64_t>(db_size * 2, std::uint64_t{1} << 30);
    auto be = schema::open_backend(db_path, o);
    if (!be) return cairn::unexpected(absl::StrCat("create ", db_path, ": ", be.error().message));
    auto imported = import_etcd_db(cfg.snapshot_path, db_size, **be);
    if (!imported) return cairn::unexpected(imported.error());
  } else if (auto r = trim_old_cluster(db_path, db_size); !r) {
    return cairn::unexpected(r.error());
  }

  // The bootstrap of a new member, over the database now in place.
  server_config sc;
  sc.name = cfg.name;
  sc.data_dir = cfg.data_dir;
  sc.initial_cluster = cfg.initial_cluster;
  sc.initial_cluster_token = cfg.initial_cluster_token;
  sc.advertise_peer_urls = cfg.advertise_peer_urls;
  sc.quota_bytes = std::max<std::uint64_t>(db_size * 2, std::uint64_t{1} << 30);
  auto s = server::open_stopped(sc);
  if (!s) return cairn::unexpected(s.error().message);
  restore_result out;
  out.member_id = (*s)->member_id();
  out.cluster_id = (*s)->cluster_id();
  out.revision = (*s)->status().revision;
  return out;
}

}  // namespace

cairn::expected<restore_result, std::string> restore_snapshot(const restore_config& cfg) {
  if (cfg.data_dir.empty()) return cairn::unexpected(std::string("a data directory is needed"));
  std::error_code ec;
  if (std::filesystem::exists(cfg.data_dir, ec)) {
    return cairn::unexpected(absl::StrCat("data-dir \"", cfg.data_dir, "\" exists"));
  }
  auto r = restore_into(cfg);
  if (!r) std::filesystem::remove_all(cfg.data_dir, ec);
  return r;
}

}  // namespace cairn::etcdserver
