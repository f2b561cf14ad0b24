#include "base/sim_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

namespace cairn::base {
namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    const size_t j = std::min(path.find('/', i), path.size());
    const std::string_view part = path.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.emplace_back(part);
    }
    i = j + 1;
  }
  return parts;
}

}  // namespace

// A handle on one inode. Holds the file system's mutex for every call.
class sim_file final : public file {
 public:
  sim_file(sim_file_system* fs, std::string path, uint64_t ino, bool writable)
      : fs_(fs),
        path_(std::move(path)),
        ino_(ino),
        writable_(writable),
        generation_(fs->generation_) {
    fs_->inodes_[ino_].open_handles++;
  }
  ~sim_file() override { (void)close(); }

  const std::string& path() const override { return path_; }

  file_result<size_t> read_at(uint64_t offset, std::span<char> out) override {
    std::lock_guard lock(fs_->mu_);
    auto n = usable(sim_op::read, false, "read");
    if (!n) return cairn::unexpected(n.error());
    const std::string& data = (*n)->data;
    if (offset >= data.size()) return size_t{0};
    const size_t len = std::min<uint64_t>(out.size(), data.size() - offset);
    std::memcpy(out.data(), data.data() + offset, len);
    return len;
  }

  file_result<void> write_at(uint64_t offset, std::string_view bytes) override {
    std::lock_guard lock(fs_->mu_);
    size_t partial = 0;
    auto n = usable(sim_op::write, true, "write", &partial);
    if (!n && partial == 0) return cairn::unexpected(n.error());
    // An injected failure may still have written a prefix, as a short pwrite would.
    const std::string_view written = n ? bytes : bytes.substr(0, std::min(partial, bytes.size()));
    sim_file_system::inode& node = fs_->inodes_[ino_];
    if (!written.empty()) {
      if (node.data.size() < offset + written.size()) {
        const uint64_t old = node.data.size();
        node.data.resize(offset + written.size(), '\0');
        fs_->mark_dirty(node, old, node.data.size());
      }
      std::memcpy(node.data.data() + offset, written.data(), written.size());
      fs_->mark_dirty(node, offset, offset + written.size());
    }
    if (!n) return cairn::unexpected(n.error());
    return {};
  }

  file_result<void> sync_data() override {
    std::lock_guard lock(fs_->mu_);
    auto n = usable(sim_op::sync, true, "fdatasync");
    if (!n) return cairn::unexpected(n.error());
    fs_->sync_file(**n);
    return {};
  }

  file_result<void> preallocate(uint64_t length) override {
    std::lock_guard lock(fs_->mu_);
    auto n = usable(sim_op::preallocate, true, "fallocate");
    if (!n) return cairn::unexpected(n.error());
    sim_file_system::inode& node = **n;
    if (node.data.size() < length) {
      const uint64_t old = node.data.size();
      node.data.resize(length, '\0');
      fs_->mark_dirty(node, old, length);
    }
    return {};
  }

  file_result<void> truncate(uint64_t length) override {
    std::lock_guard lock(fs_->mu_);
    auto n = usable(sim_op::truncate, true, "ftruncate");
    if (!n) return cairn::unexpected(n.error());
    sim_file_system::inode& node = **n;
    const uint64_t old = node.data.size();
    node.data.resize(length, '\0');
    fs_->mark_dirty(node, std::min(old, length), std::max(old, length));
    return {};
  }

  file_result<uint64_t> size() override {
    std::lock_guard lock(fs_->mu_);
    auto n = usable(std::nullopt, false, "fstat");
    if (!n) return cairn::unexpected(n.error());
    return static_cast<uint64_t>((*n)->data.size());
  }

  file_result<void> close() override {
    std::lock_guard lock(fs_->mu_);
    if (closed_) return {};
    closed_ = true;
    if (generation_ == fs_->generation_) {
      auto it = fs_->inodes_.find(ino_);
      if (it != fs_->inodes_.end()) it->second.open_handles--;
      fs_->collect_garbage();
    }
    return {};
  }

 private:
  // The inode if this handle may do `op`, else the error. Caller holds the mutex.
  file_result<sim_file_system::inode*> usable(std::optional<sim_op> op, bool mutating,
                                              std::string_view what, size_t* partial = nullptr) {
    if (closed_ || generation_ != fs_->generation_) {
      return cairn::unexpected(fs_->error(EBADF, what, path_));
    }
    if (mutating && !writable_) return cairn::unexpected(fs_->error(EBADF, what, path_));
    if (op) {
      if (auto e = fs_->gate(*op, mutating, path_, partial)) return cairn::unexpected(*e);
    }
    return &fs_->inodes_[ino_];
  }

  sim_file_system* fs_;
  std::string path_;
  uint64_t ino_;
  bool writable_;
  uint64_t generation_;
  bool closed_ = false;
};

sim_file_system::sim_file_system(uint64_t seed) : rng_(seed) { inodes_[root_].dir = true; }

sim_file_system::~sim_file_system() = default;

file_error sim_file_system::error(int code, std::string_view op, std::string_view path) const {
  return file_error{code, std::string(op) + " " + std::string(path) + ": " + std::strerror(code)};
}

sim_file_system::lookup sim_file_system::resolve(const std::string& path) const {
  const auto parts = split_path(path);
  lookup out;
  if (parts.empty()) {
    out.ino = root_;
    return out;
  }
  uint64_t dir = root_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const inode& d = inodes_.at(dir);
    auto it = d.entries.find(parts[i]);
    if (it == d.entries.end() || !inodes_.at(it->second).dir) return out;
    dir = it->second;
  }
  out.parent = dir;
  out.name = parts.back();
  const inode& d = inodes_.at(dir);
  auto it = d.entries.find(out.name);
  if (it != d.entries.end()) out.ino = it->second;
  return out;
}

std::optional<file_error> sim_file_system::gate(sim_op op, bool mutating, std::string_view path,
                                                size_t* partial) {
  static constexpr std::string_view names[] = {"open",       "read",      "write",   "fdatasync",
                                               "fallocate",  "ftruncate", "rename",  "remove",
                                               "create_dir", "fsync",     "list_dir"};
  const std::string_view what = names[static_cast<int>(op)];
  if (down_) return error(EIO, what, path);
  if (mutating) {
    if (crash_countdown_) {
      if (*crash_countdown_ == 0) {
        down_ = true;
        crash_countdown_.reset();
        return error(EIO, what, path);
      }
      --*crash_countdown_;
    }
    ++mutating_calls_;
  }
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->op != op) continue;
    if (!it->path_contains.empty() && path.find(it->path_contains) == std::string_view::npos) {
      continue;
    }
    if (it->skip > 0) {
      --it->skip;
      continue;
    }
    const int code = it->code;
    if (partial != nullptr) *partial = it->partial_bytes;
    if (!it->sticky) faults_.erase(it);
    return error(code, what, path);
  }
  return std::nullopt;
}

void sim_file_system::mark_dirty(inode& n, uint64_t lo, uint64_t hi) {
  if (lo >= hi) return;
  n.dirty_lo = std::min(n.dirty_lo, lo);
  n.dirty_hi = std::max(n.dirty_hi, hi);
}

void sim_file_system::sync_file(inode& n) {
  if (n.dirty_lo >= n.dirty_hi) {
    n.durable.resize(n.data.size(), '\0');
    return;
  }
  n.durable.resize(n.data.size(), '\0');
  const uint64_t hi = std::min<uint64_t>(n.dirty_hi, n.data.size());
  if (n.dirty_lo < hi) {
    std::memcpy(n.durable.data() + n.dirty_lo, n.data.data() + n.dirty_lo, hi - n.dirty_lo);
  }
  n.dirty_lo = UINT64_MAX;
  n.dirty_hi = 0;
}

void sim_file_system::apply_now(const meta_op& op) {
  for (const auto& c : op) {
    auto& entries = inodes_.at(c.dir).entries;
    if (c.ino == 0) {
      entries.erase(c.name);
    } else {
      entries[c.name] = c.ino;
    }
  }
}

void sim_file_system::apply_durable(const meta_op& op) {
  for (const auto& c : op) {
    auto it = inodes_.find(c.dir);
    if (it == inodes_.end()) continue;
    auto& entries = it->second.durable_entries;
    if (c.ino == 0) {
      entries.erase(c.name);
    } else {
      entries[c.name] = c.ino;
    }
  }
}

// Frees inodes nothing can reach any more: no name now or after a crash, no queued name
// change, no open handle.
void sim_file_system::collect_garbage() {
  std::set<uint64_t> live = {root_};
  for (const auto& [ino, n] : inodes_) {
    if (n.open_handles > 0) live.insert(ino);
    for (const auto& [name, child] : n.entries) live.insert(child);
    for (const auto& [name, child] : n.durable_entries) live.insert(child);
  }
  for (const auto& op : pending_) {
    for (const auto& c : op) {
      live.insert(c.dir);
      if (c.ino != 0) live.insert(c.ino);
    }
  }
  std::erase_if(inodes_, [&](const auto& kv) { return !live.contains(kv.first); });
}

file_result<std::unique_ptr<file>> sim_file_system::open(const std::string& path, open_mode mode) {
  std::lock_guard lock(mu_);
  const bool creating = mode == open_mode::create_exclusive || mode == open_mode::create_truncate;
  if (auto e = gate(sim_op::open, creating, path)) return cairn::unexpected(*e);
  const lookup l = resolve(path);
  if (l.parent == 0 && l.ino != root_) return cairn::unexpected(error(ENOENT, "open", path));
  uint64_t ino = l.ino;
  if (ino != 0 && inodes_.at(ino).dir) return cairn::unexpected(error(EISDIR, "open", path));
  if (ino == 0) {
    if (!creating) return cairn::unexpected(error(ENOENT, "open", path));
    ino = next_ino_++;
    inodes_[ino];
    meta_op op = {link_change{l.parent, l.name, ino}};
    apply_now(op);
    pending_.push_back(std::move(op));
  } else if (mode == open_mode::create_exclusive) {
    return cairn::unexpected(error(EEXIST, "open", path));
  } else if (mode == open_mode::create_truncate) {
    inode& n = inodes_.at(ino);
    mark_dirty(n, 0, n.data.size());
    n.data.clear();
  }
  return std::unique_ptr<file>(
      std::make_unique<sim_file>(this, path, ino, mode != open_mode::read_only));
}

file_result<void> sim_file_system::rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  const std::string both = from + " to " + to;
  if (auto e = gate(sim_op::rename, true, both)) return cairn::unexpected(*e);
  const lookup src = resolve(from);
  if (src.ino == 0 || src.ino == root_) return cairn::unexpected(error(ENOENT, "rename", both));
  const lookup dst = resolve(to);
  if (dst.parent == 0) return cairn::unexpected(error(ENOENT, "rename", both));
  if (dst.ino == src.ino) return {};
  if (dst.ino != 0) {
    const inode& target = inodes_.at(dst.ino);
    if (target.dir != inodes_.at(src.ino).dir) {
      return cairn::unexpected(error(target.dir ? EISDIR : ENOTDIR, "rename", both));
    }
    if (target.dir && !target.entries.empty()) {
      return cairn::unexpected(error(ENOTEMPTY, "rename", both));
    }
  }
  meta_op op = {link_change{src.parent, src.name, 0}, link_change{dst.parent, dst.name, src.ino}};
  apply_now(op);
  pending_.push_back(std::move(op));
  collect_garbage();
  return {};
}

file_result<void> sim_file_system::remove(const std::string& path) {
  std::lock_guard lock(mu_);
  if (auto e = gate(sim_op::remove, true, path)) return cairn::unexpected(*e);
  const lookup l = resolve(path);
  if (l.ino == 0 || l.ino == root_) return cairn::unexpected(error(ENOENT, "remove", path));
  const inode& n = inodes_.at(l.ino);
  if (n.dir && !n.entries.empty()) return cairn::unexpected(error(ENOTEMPTY, "remove", path));
  meta_op op = {link_change{l.parent, l.name, 0}};
  apply_now(op);
  pending_.push_back(std::move(op));
  collect_garbage();
  return {};
}

file_result<void> sim_file_system::create_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (auto e = gate(sim_op::create_dir, true, path)) return cairn::unexpected(*e);
  const lookup l = resolve(path);
  if (l.ino != 0) return cairn::unexpected(error(EEXIST, "mkdir", path));
  if (l.parent == 0) return cairn::unexpected(error(ENOENT, "mkdir", path));
  const uint64_t ino = next_ino_++;
  inodes_[ino].dir = true;
  meta_op op = {link_change{l.parent, l.name, ino}};
  apply_now(op);
  pending_.push_back(std::move(op));
  return {};
}

file_result<void> sim_file_system::sync_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (auto e = gate(sim_op::sync_dir, true, path)) return cairn::unexpected(*e);
  const lookup l = resolve(path);
  if (l.ino == 0) return cairn::unexpected(error(ENOENT, "fsync", path));
  if (!inodes_.at(l.ino).dir) return cairn::unexpected(error(ENOTDIR, "fsync", path));
  // Makes durable every queued change to this directory's names, in order; changes to other
  // directories stay queued (POSIX promises no more).
  for (auto it = pending_.begin(); it != pending_.end();) {
    const bool touches =
        std::any_of(it->begin(), it->end(), [&](const link_change& c) { return c.dir == l.ino; });
    if (touches) {
      apply_durable(*it);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  collect_garbage();
  return {};
}

file_result<std::vector<std::string>> sim_file_system::list_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (auto e = gate(sim_op::list_dir, false, path)) return cairn::unexpected(*e);
  const lookup l = resolve(path);
  if (l.ino == 0) return cairn::unexpected(error(ENOENT, "opendir", path));
  const inode& n = inodes_.at(l.ino);
  if (!n.dir) return cairn::unexpected(error(ENOTDIR, "opendir", path));
  std::vector<std::string> names;
  for (const auto& [name, ino] : n.entries) names.push_back(name);
  return names;
}

file_result<uint64_t> sim_file_system::file_size(const std::string& path) {
  std::lock_guard lock(mu_);
  if (down_) return cairn::unexpected(error(EIO, "stat", path));
  const lookup l = resolve(path);
  if (l.ino == 0) return cairn::unexpected(error(ENOENT, "stat", path));
  return static_cast<uint64_t>(inodes_.at(l.ino).data.size());
}

file_result<bool> sim_file_system::exists(const std::string& path) {
  std::lock_guard lock(mu_);
  if (down_) return cairn::unexpected(error(EIO, "stat", path));
  return resolve(path).ino != 0;
}

file_result<bool> sim_file_system::is_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (down_) return cairn::unexpected(error(EIO, "stat", path));
  const lookup l = resolve(path);
  if (l.ino == 0) return cairn::unexpected(error(ENOENT, "stat", path));
  return inodes_.at(l.ino).dir;
}

void sim_file_system::inject(sim_fault fault) {
  std::lock_guard lock(mu_);
  faults_.push_back(std::move(fault));
}

void sim_file_system::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

void sim_file_system::crash_after(uint64_t n) {
  std::lock_guard lock(mu_);
  crash_countdown_ = n;
}

bool sim_file_system::down() const {
  std::lock_guard lock(mu_);
  return down_;
}

uint64_t sim_file_system::mutating_calls() const {
  std::lock_guard lock(mu_);
  return mutating_calls_;
}

void sim_file_system::crash(crash_mode mode) {
  std::lock_guard lock(mu_);
  const bool torn = mode == crash_mode::torn;
  auto coin = [&] { return (rng_() & 1) != 0; };
  if (torn && !pending_.empty()) {
    const size_t keep = rng_() % (pending_.size() + 1);
    for (size_t i = 0; i < keep; ++i) apply_durable(pending_[i]);
  }
  pending_.clear();
  for (auto& [ino, n] : inodes_) {
    n.open_handles = 0;
    if (n.dir) {
      n.entries = n.durable_entries;
      continue;
    }
    if (torn && (n.dirty_lo < n.dirty_hi || n.data.size() != n.durable.size())) {
      std::string out = n.durable;
      const uint64_t size =
          (n.data.size() != n.durable.size() && coin()) ? n.data.size() : n.durable.size();
      out.resize(size, '\0');
      const uint64_t hi = std::min(n.dirty_hi, size);
      for (uint64_t s = n.dirty_lo / sector_size * sector_size; s < hi; s += sector_size) {
        if (!coin()) continue;
        for (uint64_t i = s; i < std::min(s + sector_size, size); ++i) {
          out[i] = i < n.data.size() ? n.data[i] : '\0';
        }
      }
      n.durable = std::move(out);
    }
    n.data = n.durable;
    n.dirty_lo = UINT64_MAX;
    n.dirty_hi = 0;
  }
  // Whatever no durable name reaches is gone.
  std::set<uint64_t> reachable = {root_};
  std::vector<uint64_t> todo = {root_};
  while (!todo.empty()) {
    const uint64_t d = todo.back();
    todo.pop_back();
    for (const auto& [name, child] : inodes_.at(d).entries) {
      if (inodes_.contains(child) && reachable.insert(child).second && inodes_.at(child).dir) {
        todo.push_back(child);
      }
    }
  }
  std::erase_if(inodes_, [&](const auto& kv) { return !reachable.contains(kv.first); });
  faults_.clear();
  crash_countdown_.reset();
  down_ = false;
  ++generation_;
}

std::optional<std::string> sim_file_system::contents(const std::string& path) const {
  std::lock_guard lock(mu_);
  const lookup l = resolve(path);
  if (l.ino == 0 || inodes_.at(l.ino).dir) return std::nullopt;
  return inodes_.at(l.ino).data;
}

void sim_file_system::set_contents(const std::string& path, std::string data) {
  std::lock_guard lock(mu_);
  const lookup l = resolve(path);
  if (l.ino == 0 || inodes_.at(l.ino).dir) return;
  inode& n = inodes_.at(l.ino);
  n.data = std::move(data);
  n.durable = n.data;
  n.dirty_lo = UINT64_MAX;
  n.dirty_hi = 0;
}

uint64_t sim_file_system::unsynced_bytes() const {
  std::lock_guard lock(mu_);
  uint64_t total = 0;
  for (const auto& [ino, n] : inodes_) {
    if (!n.dir && n.dirty_lo < n.dirty_hi) total += n.dirty_hi - n.dirty_lo;
  }
  return total;
}

}  // namespace cairn::base
