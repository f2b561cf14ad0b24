#include "cmd/config_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace cairn::cmd {

namespace {

constexpr std::string_view client_tls = "client-transport-security";
constexpr std::string_view peer_tls = "peer-transport-security";

// etcd 3.5 spelled one key differently from its flag; etcd 3.6 reads both.
constexpr std::string_view catch_up_alias = "experimental-snapshot-catch-up-entries";

const flag_spec* find_by_file_key(std::string_view key) {
  if (key == catch_up_alias) return find_flag("experimental-snapshot-catchup-entries");
  for (const auto& spec : flag_table()) {
    if (!file_key(spec).empty() && file_key(spec) == key) return &spec;
  }
  return nullptr;
}

std::string line_of(const YAML::Node& node) {
  const auto mark = node.Mark();
  if (mark.line < 0) return "";
  return "line " + std::to_string(mark.line + 1) + ": ";
}

bool all_digits(std::string_view text) {
  if (!text.empty() && text[0] == '-') text.remove_prefix(1);
  if (text.empty()) return false;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// YAML 1.1 booleans that etcd's YAML reader (go-yaml v2) turns into true/false.
std::string yaml_bool(const std::string& text) {
  static const char* yes[] = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char* no[] = {"n", "N", "no", "No", "NO", "off", "Off", "OFF"};
  for (const char* t : yes) {
    if (text == t) return "true";
  }
  for (const char* f : no) {
    if (text == f) return "false";
  }
  return text;
}

// The text a YAML value stands for, in the syntax the flag parser reads.
std::expected<std::string, std::string> value_text(const flag_spec& spec, const YAML::Node& node) {
  if (node.IsSequence()) {
    if (spec.value.kind != value_kind::list) {
      return std::unexpected("expects a single value, not a list");
    }
    std::string joined;
    for (const auto& item : node) {
      if (!item.IsScalar()) return std::unexpected("list items must be plain values");
      if (!joined.empty()) joined += ',';
      joined += item.Scalar();
    }
    return joined;
  }
  if (!node.IsScalar()) return std::unexpected("expects a single value, not a map");
  std::string text = node.Scalar();
  switch (spec.value.kind) {
    case value_kind::boolean:
      return yaml_bool(text);
    case value_kind::duration:
      // etcd decodes a duration from the file as an integer of nanoseconds.
      if (all_digits(text)) return text == "0" ? text : text + "ns";
      return text;
    default:
      return text;
  }
}

struct reader {
  std::string_view where;
  config& cfg;
  std::map<std::string, origin>& given;
  std::vector<std::string>& warnings;

  std::expected<void, std::string> fail(const YAML::Node& node, std::string_view key,
                                        const std::string& why) const {
    return std::unexpected("config file " + std::string(where) + ": " + line_of(node) + "key " +
                           "\"" + std::string(key) + "\": " + why);
  }

  std::expected<void, std::string> apply(std::string_view key, const YAML::Node& value) {
    if (value.IsNull()) return {};  // "key:" with nothing after it keeps the default
    const flag_spec* spec = find_by_file_key(key);
    if (spec == nullptr) {
      const flag_spec* top_level_tls =
          key.find('.') == std::string_view::npos ? find_flag(key) : nullptr;
      if (top_level_tls != nullptr && !file_key(*top_level_tls).empty()) {
        const auto nested = file_key(*top_level_tls);
        const auto dot = nested.find('.');
        warnings.push_back("config file " + std::string(where) + ": key \"" + std::string(key) +
                           "\" is ignored at the top level (etcd ignores it too); put it under " +
                           std::string(nested.substr(0, dot)) + " as \"" +
                           std::string(nested.substr(dot + 1)) + "\"");
      } else {
        warnings.push_back("config file " + std::string(where) + ": unknown key \"" +
                           std::string(key) + "\" ignored");
      }
      return {};
    }
    auto text = value_text(*spec, value);
    if (!text) return fail(value, key, text.error());
    // An empty string leaves a non-text setting at its default (etcd: empty
    // initial-cluster-state means "new").
    if (text->empty() && spec->value.kind != value_kind::text &&
        spec->value.kind != value_kind::list) {
      return {};
    }
    if (auto ok = spec->value.set(cfg, *text); !ok) {
      return fail(value, key, "invalid value \"" + *text + "\": " + ok.error());
    }
    given[std::string(spec->name)] = origin::file;
    return {};
  }

  std::expected<void, std::string> apply_document(const YAML::Node& root) {
    if (root.IsNull()) return {};
    if (!root.IsMap()) {
      return std::unexpected("config file " + std::string(where) + ": " + line_of(root) +
                             "expected a map of settings at the top level");
    }
    for (const auto& entry : root) {
      if (!entry.first.IsScalar()) {
        return std::unexpected("config file " + std::string(where) + ": " + line_of(entry.first) +
                               "keys must be plain names");
      }
      const std::string key = entry.first.Scalar();
      const YAML::Node& value = entry.second;
      if (key == client_tls || key == peer_tls) {
        if (value.IsNull()) continue;
        if (!value.IsMap()) return fail(value, key, "expected a map of TLS settings");
        for (const auto& tls : value) {
          if (!tls.first.IsScalar()) return fail(tls.first, key, "keys must be plain names");
          if (auto ok = apply(key + "." + tls.first.Scalar(), tls.second); !ok) return ok;
        }
        continue;
      }
      if (auto ok = apply(key, value); !ok) return ok;
    }
    return {};
  }
};

}  // namespace

std::expected<void, std::string> read_config_text(std::string_view text, std::string_view where,
                                                  config& cfg, std::map<std::string, origin>& given,
                                                  std::vector<std::string>& warnings) {
  YAML::Node root;
  // yaml-cpp reports syntax errors by throwing; they stop here.
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return std::unexpected("config file " + std::string(where) + ": line " +
                           std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  reader r{where, cfg, given, warnings};
  return r.apply_document(root);
}

std::expected<void, std::string> read_config_file(const std::string& path, config& cfg,
                                                  std::map<std::string, origin>& given,
                                                  std::vector<std::string>& warnings) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected("config file " + path + ": cannot read it: " + std::strerror(errno));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  return read_config_text(contents.str(), path, cfg, given, warnings);
}

}  // namespace cairn::cmd
