// etcd's YAML config file (--config-file), read into a `config`.
//
// The keys are the flag names (`name:`, `data-dir:`, `initial-cluster:`), except the TLS
// settings, which etcd nests under `client-transport-security:` and
// `peer-transport-security:` (`cert-file`, `key-file`, `client-cert-file`, `client-key-file`,
// `client-cert-auth`, `trusted-ca-file`, `auto-tls`, `allowed-cn`, `allowed-hostname`,
// `skip-client-san-verification`). URL lists are comma-separated strings; `log-outputs` and
// `cipher-suites` are YAML lists (a comma-separated string works too). Durations are
// integers of nanoseconds, as etcd's JSON decoding reads them; Cairn also takes Go durations
// such as "5s", which etcd rejects.
//
// Cairn is stricter than etcd in one way: it warns about keys it does not know (etcd ignores
// them silently) and about TLS keys placed at the top level, where etcd does not read them.
//
// Safe from any thread (yaml-cpp keeps no global state).
#pragma once

#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cmd/config.h"
#include "cmd/flags.h"

namespace cairn::cmd {

// Applies the file at `path` onto `cfg`; `given` receives the flag names it sets (origin
// file). Errors name the file and the key.
std::expected<void, std::string> read_config_file(const std::string& path, config& cfg,
                                                  std::map<std::string, origin>& given,
                                                  std::vector<std::string>& warnings);

// The same, from text; `where` names the source in messages.
std::expected<void, std::string> read_config_text(std::string_view text, std::string_view where,
                                                  config& cfg, std::map<std::string, origin>& given,
                                                  std::vector<std::string>& warnings);

}  // namespace cairn::cmd
