// file_system over the real POSIX calls.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/file.h"

namespace cairn::base {
namespace {

file_error errno_error(std::string_view op, std::string_view path, int code) {
  return file_error{code, std::string(op) + " " + std::string(path) + ": " + std::strerror(code)};
}

cairn::unexpected<file_error> fail(std::string_view op, std::string_view path, int code = errno) {
  return cairn::unexpected(errno_error(op, path, code));
}

class posix_file final : public file {
 public:
  posix_file(std::string path, int fd, bool writable)
      : path_(std::move(path)), fd_(fd), writable_(writable) {}
  ~posix_file() override { (void)close(); }

  const std::string& path() const override { return path_; }

  file_result<size_t> read_at(uint64_t offset, std::span<char> out) override {
    if (fd_ < 0) return fail("read", path_, EBADF);
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail("read", path_);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  file_result<void> write_at(uint64_t offset, std::string_view data) override {
    if (fd_ < 0 || !writable_) return fail("write", path_, EBADF);
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n =
          ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail("write", path_);
      }
      done += static_cast<size_t>(n);
    }
    return {};
  }

  file_result<void> sync_data() override {
    if (fd_ < 0) return fail("fdatasync", path_, EBADF);
    if (::fdatasync(fd_) != 0) return fail("fdatasync", path_);
    return {};
  }

  file_result<void> preallocate(uint64_t length) override {
    if (fd_ < 0 || !writable_) return fail("fallocate", path_, EBADF);
    int rc;
    do {
      rc = ::fallocate(fd_, 0, 0, static_cast<off_t>(length));
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return {};
    if (errno != EOPNOTSUPP && errno != ENOSYS) return fail("fallocate", path_);
    // The file system cannot reserve blocks: at least give the file its size, zero-filled.
    auto current = size();
    if (!current) return cairn::unexpected(current.error());
    if (*current < length && ::ftruncate(fd_, static_cast<off_t>(length)) != 0) {
      return fail("ftruncate", path_);
    }
    return {};
  }

  file_result<void> truncate(uint64_t length) override {
    if (fd_ < 0 || !writable_) return fail("ftruncate", path_, EBADF);
    if (::ftruncate(fd_, static_cast<off_t>(length)) != 0) return fail("ftruncate", path_);
    return {};
  }

  file_result<uint64_t> size() override {
    if (fd_ < 0) return fail("fstat", path_, EBADF);
    struct stat st;
    if (::fstat(fd_, &st) != 0) return fail("fstat", path_);
    return static_cast<uint64_t>(st.st_size);
  }

  file_result<void> close() override {
    if (fd_ < 0) return {};
    const int fd = fd_;
    fd_ = -1;
    // Linux releases the descriptor even when close fails; never retry it.
    if (::close(fd) != 0 && errno != EINTR) return fail("close", path_);
    return {};
  }

 private:
  std::string path_;
  int fd_;
  bool writable_;
};

class posix_fs final : public file_system {
 public:
  file_result<std::unique_ptr<file>> open(const std::string& path, open_mode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case open_mode::read_only:
        flags |= O_RDONLY;
        break;
      case open_mode::read_write:
        flags |= O_RDWR;
        break;
      case open_mode::create_exclusive:
        flags |= O_RDWR | O_CREAT | O_EXCL;
        break;
      case open_mode::create_truncate:
        flags |= O_RDWR | O_CREAT | O_TRUNC;
        break;
    }
    int fd;
    do {
      fd = ::open(path.c_str(), flags, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return fail("open", path);
    return std::unique_ptr<file>(
        std::make_unique<posix_file>(path, fd, mode != open_mode::read_only));
  }

  file_result<void> rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return fail("rename", from + " to " + to);
    return {};
  }

  file_result<void> remove(const std::string& path) override {
    if (::remove(path.c_str()) != 0) return fail("remove", path);
    return {};
  }

  file_result<void> create_dir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0700) != 0) return fail("mkdir", path);
    return {};
  }

  file_result<void> sync_dir(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail("open", path);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return fail("fsync", path, err);
    return {};
  }

  file_result<std::vector<std::string>> list_dir(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return fail("opendir", path);
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return fail("readdir", path, err);
    std::sort(names.begin(), names.end());
    return names;
  }

  file_result<uint64_t> file_size(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return fail("stat", path);
    return static_cast<uint64_t>(st.st_size);
  }

  file_result<bool> exists(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) return true;
    if (errno == ENOENT) return false;
    return fail("stat", path);
  }

  file_result<bool> is_dir(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return fail("stat", path);
    return S_ISDIR(st.st_mode);
  }
};

}  // namespace

file_system& posix_file_system() {
  static posix_fs fs;
  return fs;
}

}  // namespace cairn::base
