// Helpers shared by every file_system implementation.
#include <cerrno>

#include "base/file.h"

namespace cairn::base {

std::string join_path(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  if (out.back() != '/') out.push_back('/');
  out.append(name);
  return out;
}

std::string parent_dir(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string_view base_name(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

file_result<std::string> read_file(file_system& fs, const std::string& path) {
  auto f = fs.open(path, open_mode::read_only);
  if (!f) return cairn::unexpected(f.error());
  auto size = (*f)->size();
  if (!size) return cairn::unexpected(size.error());
  std::string data(*size, '\0');
  auto n = (*f)->read_at(0, data);
  if (!n) return cairn::unexpected(n.error());
  data.resize(*n);
  return data;
}

file_result<void> write_file_atomically(file_system& fs, const std::string& path,
                                        std::string_view data) {
  const std::string tmp = path + ".tmp";
  auto f = fs.open(tmp, open_mode::create_truncate);
  if (!f) return cairn::unexpected(f.error());
  if (auto r = (*f)->write_at(0, data); !r) return r;
  if (auto r = (*f)->sync_data(); !r) return r;
  if (auto r = (*f)->close(); !r) return r;
  if (auto r = fs.rename(tmp, path); !r) return r;
  return fs.sync_dir(parent_dir(path));
}

file_result<void> create_dirs(file_system& fs, const std::string& path) {
  auto there = fs.exists(path);
  if (!there) return cairn::unexpected(there.error());
  if (*there) {
    auto dir = fs.is_dir(path);
    if (!dir) return cairn::unexpected(dir.error());
    if (!*dir) return cairn::unexpected(file_error{ENOTDIR, "mkdir " + path + ": not a directory"});
    return {};
  }
  const std::string parent = parent_dir(path);
  if (parent != path) {
    if (auto r = create_dirs(fs, parent); !r) return r;
  }
  if (auto r = fs.create_dir(path); !r) return r;
  return fs.sync_dir(parent);
}

}  // namespace cairn::base
