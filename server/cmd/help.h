// The text of `cairn --help` and `cairn --version`, generated from the flag table.
//
// Pure functions; safe from any thread.
#pragma once

#include <string>

namespace cairn::cmd {

// Usage, then every flag grouped as etcd groups them, each with its default and, unless this
// build acts on it, a status mark ([not acted on yet] or [no effect in Cairn]).
std::string help_text();

// Cairn's version, the etcd release it behaves as, and etcd's other --version lines where they
// mean something for a C++ program.
std::string version_text();

}  // namespace cairn::cmd
