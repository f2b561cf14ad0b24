// Test support for proto/proto_descriptor_test.cc: loading .proto sources that import option
// files we do not have (etcd's gogoproto and google.api annotations), and comparing two sets of
// descriptors element by element, so that "our .proto files are wire-identical to etcd's" is a
// check and not a claim. Test-only code (not part of cairn_proto). Stateless free functions;
// safe to call from any thread with distinct pools.
#pragma once

#include <expected>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>

namespace cairn::proto {

// .proto sources by import path ("etcd/mvcc/mvccpb/kv.proto") → file contents.
using proto_sources = std::map<std::string, std::string>;

// Parses every file of `sources` into `pool`, dependencies first. Imports named in
// `dropped_imports` are removed, and so is every custom option (an option whose name is in
// parentheses, e.g. `(gogoproto.marshaler_all)` or `(google.api.http)`): such options never
// change the wire format, and removing them means their definitions need not exist. Everything
// else (messages, fields, enums, services, standard options) is kept as written. Returns the
// files in `sources` order, or every parse/build error as text.
std::expected<std::vector<const google::protobuf::FileDescriptor*>, std::string> load_sources(
    const proto_sources& sources, const std::set<std::string>& dropped_imports,
    google::protobuf::DescriptorPool& pool);

// Elements `ours` may have that the reference lacks: full name → one-line reason. A message,
// enum or service entry covers everything inside it; fields are "pkg.Message.field", enum values
// "pkg.Enum.VALUE" (the enum's full name, then the value), methods "pkg.Service.Method".
using allow_list = std::map<std::string, std::string, std::less<>>;

// Every difference between `reference` and `ours`, one readable line each; empty when ours has
// every message, enum and service of the reference with identical fields (name, number, type,
// label, message/enum type, oneof, presence, packing), enum values (name, number) and methods
// (name, input and output types, client and server streaming), and nothing more than what
// `allowed` names. Elements are matched by full name, so the files may be named differently.
// An allow-list entry that matches no extra element is reported too, so the list stays exact.
std::vector<std::string> diff_descriptors(
    std::span<const google::protobuf::FileDescriptor* const> reference,
    std::span<const google::protobuf::FileDescriptor* const> ours, const allow_list& allowed);

}  // namespace cairn::proto
