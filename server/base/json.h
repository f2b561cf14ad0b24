// base/json.h: JSON string literals as Go's encoding/json writes them, for every answer that
// must match etcd's bytes (the HTTP side, the v2 API, JWT claims).
#pragma once

#include <string>
#include <string_view>

namespace cairn::base {

// `text` as a JSON string literal, escaped as Go's encoding/json does (including its HTML-safe
// \u003c, \u003e, \u0026 and \u2028/\u2029; invalid UTF-8 becomes \ufffd).
std::string json_quote(std::string_view text);

}  // namespace cairn::base
