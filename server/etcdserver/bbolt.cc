#include "etcdserver/bbolt.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace cairn::etcdserver::bbolt {
namespace {

constexpr std::uint32_t magic = 0xED0CDAED;
constexpr std::uint32_t version = 2;
constexpr std::size_t header_size = 16;   // page header
constexpr std::size_t element_size = 16;  // branch and leaf elements alike
constexpr std::size_t meta_size = 64;     // with the checksum
constexpr std::uint16_t branch_flag = 0x01;
constexpr std::uint16_t leaf_flag = 0x02;
constexpr std::uint32_t bucket_leaf_flag = 0x01;
constexpr int max_depth = 64;

template <typename T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;  // the file is little-endian, as this machine
}

std::uint64_t fnv1a64(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

struct meta {
  std::uint32_t page_size = 0;
  std::uint64_t root = 0;
  std::uint64_t high_water = 0;
  std::uint64_t txid = 0;
};

// The meta in the page at `at`, if it is a sound one.
std::optional<meta> read_meta(const char* data, std::uint64_t size, std::uint64_t at) {
  if (at + header_size + meta_size > size) return std::nullopt;
  const char* m = data + at + header_size;
  if (load<std::uint32_t>(m) != magic || load<std::uint32_t>(m + 4) != version) {
    return std::nullopt;
  }
  if (load<std::uint64_t>(m + 56) != fnv1a64({m, 56})) return std::nullopt;
  meta out;
  out.page_size = load<std::uint32_t>(m + 8);
  out.root = load<std::uint64_t>(m + 16);
  out.high_water = load<std::uint64_t>(m + 40);
  out.txid = load<std::uint64_t>(m + 48);
  return out;
}

}  // namespace

struct file::seen_pages {
  std::unordered_set<std::uint64_t> ids;
};

bool looks_like_bbolt(std::string_view head) {
  return head.size() >= header_size + 4 && load<std::uint32_t>(head.data() + header_size) == magic;
}

cairn::expected<file, std::string> file::open(const std::string& path, std::uint64_t size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cairn::unexpected(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return cairn::unexpected(absl::StrCat("stat ", path, ": ", std::strerror(e)));
  }
  file f;
  f.path_ = path;
  f.mapped_ = static_cast<std::uint64_t>(st.st_size);
  f.size_ = size == 0 ? f.mapped_ : std::min<std::uint64_t>(size, f.mapped_);
  if (f.mapped_ > 0) {
    void* p = ::mmap(nullptr, f.mapped_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      return cairn::unexpected(absl::StrCat("mmap ", path, ": ", std::strerror(e)));
    }
    f.data_ = static_cast<const char*>(p);
  }
  ::close(fd);
  auto m0 = read_meta(f.data_, f.size_, 0);
  // The second meta is one page further; the first one tells the page size (4096 if it is
  // damaged, the size bbolt uses on this machine).
  const std::uint64_t page = m0 ? m0->page_size : 4096;
  auto m1 = page >= header_size + meta_size ? read_meta(f.data_, f.size_, page) : std::nullopt;
  std::optional<meta> m;
  if (m0 && m1) {
    m = m0->txid >= m1->txid ? m0 : m1;
  } else {
    m = m0 ? m0 : m1;
  }
  if (!m) {
    return cairn::unexpected(
        absl::StrCat(path, ": not a bbolt database (no valid meta page: damaged or truncated)"));
  }
  if (m->page_size < 512 || m->page_size > (1u << 16) || (m->page_size & (m->page_size - 1)) != 0) {
    return cairn::unexpected(
        absl::StrCat(path, ": bbolt meta gives an invalid page size ", m->page_size));
  }
  f.page_size_ = m->page_size;
  f.root_ = m->root;
  f.high_water_ = m->high_water;
  f.txid_ = m->txid;
  if (f.high_water_ > f.size_ / f.page_size_) {
    return cairn::unexpected(absl::StrCat(path, ": truncated: the database has ", f.high_water_,
                                          " pages of ", f.page_size_, " bytes, the file ", f.size_,
                                          " bytes"));
  }
  return f;
}

file::file(file&& other) noexcept { *this = std::move(other); }

file& file::operator=(file&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), mapped_);
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    mapped_ = std::exchange(other.mapped_, 0);
    size_ = other.size_;
    page_size_ = other.page_size_;
    root_ = other.root_;
    high_water_ = other.high_water_;
    txid_ = other.txid_;
  }
  return *this;
}

file::~file() {
  if (data_ != nullptr) ::munmap(const_cast<char*>(data_), mapped_);
}

cairn::expected<std::string_view, std::string> file::page_bytes(std::uint64_t id) const {
  if (id < 2 || id >= high_water_) {
    return cairn::unexpected(
        absl::StrCat(path_, ": damaged: a reference to page ", id, " of ", high_water_));
  }
  const char* p = data_ + id * page_size_;
  const std::uint64_t overflow = load<std::uint32_t>(p + 12);
  if (id + 1 + overflow > high_water_) {
    return cairn::unexpected(
        absl::StrCat(path_, ": damaged: page ", id, " runs past the end of the database"));
  }
  return std::string_view(p, (1 + overflow) * page_size_);
}

cairn::expected<void, std::string> file::walk(std::uint64_t page, std::string_view inline_page,
                                              const visit& fn, seen_pages& seen, int depth) const {
  if (depth > max_depth) {
    return cairn::unexpected(
        absl::StrCat(path_, ": damaged: the tree is over ", max_depth, " levels deep"));
  }
  if (!inline_page.empty()) return walk_page(inline_page, fn, seen, depth);
  if (!seen.ids.insert(page).second) {
    return cairn::unexpected(absl::StrCat(path_, ": damaged: page ", page, " is reached twice"));
  }
  auto bytes = page_bytes(page);
  if (!bytes) return cairn::unexpected(bytes.error());
  return walk_page(*bytes, fn, seen, depth);
}

cairn::expected<void, std::string> file::walk_page(std::string_view page, const visit& fn,
                                                   seen_pages& seen, int depth) const {
  if (page.size() < header_size) {
    return cairn::unexpected(
        absl::StrCat(path_, ": damaged: an inline page of ", page.size(), " bytes"));
  }
  const auto flags = load<std::uint16_t>(page.data() + 8);
  const std::uint64_t count = load<std::uint16_t>(page.data() + 10);
  const std::uint64_t id = load<std::uint64_t>(page.data());
  if (header_size + count * element_size > page.size()) {
    return cairn::unexpected(
        absl::StrCat(path_, ": damaged: page ", id, " claims ", count, " elements"));
  }
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t e = header_size + i * element_size;
    const char* el = page.data() + e;
    if (flags & branch_flag) {
      const std::uint64_t pos = load<std::uint32_t>(el);
      const std::uint64_t ksize = load<std::uint32_t>(el + 4);
      if (e + pos + ksize > page.size()) {
        return cairn::unexpected(
            absl::StrCat(path_, ": damaged: a key runs past the end of page ", id));
      }
      if (auto r = walk(load<std::uint64_t>(el + 8), {}, fn, seen, depth + 1); !r) return r;
    } else if (flags & leaf_flag) {
      const std::uint32_t eflags = load<std::uint32_t>(el);
      const std::uint64_t pos = load<std::uint32_t>(el + 4);
      const std::uint64_t ksize = load<std::uint32_t>(el + 8);
      const std::uint64_t vsize = load<std::uint32_t>(el + 12);
#ifndef CAIRN_PLANTED_BUG_BBOLT_UNCHECKED_LEAF
      if (e + pos + ksize + vsize > page.size()) {
        return cairn::unexpected(
            absl::StrCat(path_, ": damaged: a key or value runs past the end of page ", id));
      }
#endif
      const std::string_view key(el + pos, ksize);
      const std::string_view value(el + pos + ksize, vsize);
      fn(key, value, (eflags & bucket_leaf_flag) != 0);
    } else {
      return cairn::unexpected(absl::StrCat(path_, ": damaged: page ", id,
                                            " is neither a branch nor a leaf (flags ", flags, ")"));
    }
  }
  return {};
}

cairn::expected<void, std::string> file::for_each_bucket(
    const std::function<void(std::string_view)>& fn) const {
  seen_pages seen;
  return walk(
      root_, {},
      [&](std::string_view key, std::string_view, bool bucket) {
        if (bucket) fn(key);
      },
      seen, 0);
}

cairn::expected<bool, std::string> file::find_bucket(std::string_view name, std::uint64_t& root,
                                                     std::string_view& inline_page) const {
  std::optional<std::string_view> header;
  seen_pages seen;
  auto r = walk(
      root_, {},
      [&](std::string_view key, std::string_view value, bool bucket) {
        if (bucket && key == name) header = value;
      },
      seen, 0);
  if (!r) return cairn::unexpected(r.error());
  if (!header) return false;
  if (header->size() < 16) {
    return cairn::unexpected(absl::StrCat(path_, ": damaged: bucket ", std::string(name), " has a ",
                                          header->size(), "-byte header"));
  }
  root = load<std::uint64_t>(header->data());
  if (root == 0) inline_page = header->substr(16);
  return true;
}

cairn::expected<bool, std::string> file::for_each(std::string_view name, const visit& fn) const {
  std::uint64_t root = 0;
  std::string_view inline_page;
  auto found = find_bucket(name, root, inline_page);
  if (!found || !*found) return found;
  if (root == 0 && inline_page.empty()) {
    return cairn::unexpected(
        absl::StrCat(path_, ": damaged: bucket ", std::string(name), " has no root"));
  }
  seen_pages seen;
  if (auto r = walk(root, inline_page, fn, seen, 0); !r) return cairn::unexpected(r.error());
  return true;
}

}  // namespace cairn::etcdserver::bbolt
