// Proves Cairn's public .proto files are wire-identical to etcd's: every message, field, enum
// value and method of etcd 3.4.23's five public packages (parsed at test time from Debian's
// golang-etcd-server-dev sources) must be in our generated descriptors unchanged, and anything
// we have beyond that must be a 3.5 addition named in k_etcd_35_additions. The differ itself is
// tested first on small hand-written sets, one planted difference at a time, so a bug in it
// cannot make the real comparison pass vacuously.
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <google/protobuf/descriptor.pb.h>

#include "authpb/auth.pb.h"
#include "descriptor_diff.h"
#include "etcdserverpb/rpc.pb.h"
#include "mvccpb/kv.pb.h"
#include "support/e2e.h"
#include "v3electionpb/v3election.pb.h"
#include "v3lockpb/v3lock.pb.h"

namespace cairn::proto {
namespace {

namespace fs = std::filesystem;
namespace pb = google::protobuf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// What etcd 3.5 added to the public API over 3.4.23, and that our files therefore carry.
// docs/compatibility.md ("Wire protocol") lists the same names; a test below keeps them in step.
const allow_list k_etcd_35_additions = {
    {"etcdserverpb.Maintenance.Downgrade", "3.5: Downgrade RPC"},
    {"etcdserverpb.DowngradeRequest", "3.5: Downgrade request, with enum DowngradeAction"},
    {"etcdserverpb.DowngradeResponse", "3.5: Downgrade response"},
    {"etcdserverpb.Auth.AuthStatus", "3.5: AuthStatus RPC"},
    {"etcdserverpb.AuthStatusRequest", "3.5: AuthStatus request"},
    {"etcdserverpb.AuthStatusResponse", "3.5: AuthStatus response (enabled, authRevision)"},
    {"etcdserverpb.MemberListRequest.linearizable", "3.5: MemberListRequest.linearizable"},
    {"etcdserverpb.AuthUserAddRequest.hashedPassword", "3.5: password hashed before raft"},
    {"etcdserverpb.AuthUserChangePasswordRequest.hashedPassword",
     "3.5: password hashed before raft"},
};

// etcd's option-only imports, which are not on the machine; their options never touch the wire.
const std::set<std::string> k_option_imports = {"gogoproto/gogo.proto",
                                                "google/api/annotations.proto"};

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += "  " + l + "\n";
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- The differ, on small hand-written sets ----

constexpr const char* k_base = R"(syntax = "proto3";
package t;
service S {
  rpc Get(Req) returns (Resp);
  rpc Watch(stream Req) returns (stream Resp);
}
enum Kind {
  K0 = 0;
  K1 = 1;
  K2 = 2;
}
message Req {
  enum Mode {
    M0 = 0;
    M1 = 1;
  }
  message Inner {
    bool x = 1;
  }
  int64 id = 1;
  bytes key = 2;
  repeated string tags = 3;
  Kind kind = 4;
  oneof u {
    int64 a = 5;
    bytes b = 6;
  }
  Inner inner = 7;
  repeated int32 nums = 8;
  Mode mode = 9;
}
message Resp {
  Req req = 1;
}
message Lone {
  int32 v = 1;
}
)";

struct loaded {
  std::unique_ptr<pb::DescriptorPool> pool = std::make_unique<pb::DescriptorPool>();
  std::vector<const pb::FileDescriptor*> files;
};

loaded load(const proto_sources& sources, const std::set<std::string>& dropped = {}) {
  loaded l;
  auto files = load_sources(sources, dropped, *l.pool);
  if (files) {
    l.files = *files;
  } else {
    ADD_FAILURE() << "loading failed:\n" << files.error();
  }
  return l;
}

// `text` with the single occurrence of `from` replaced by `to`.
std::string edited(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "no '" << from << "' in the base text";
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << "'" << from << "' is not unique";
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::vector<std::string> diff_text(const std::string& ref, const std::string& ours,
                                   const allow_list& allowed = {}) {
  const loaded r = load({{"ref.proto", ref}});
  const loaded o = load({{"ours.proto", ours}});
  if (r.files.empty() || o.files.empty()) return {"(load failed)"};
  return diff_descriptors(r.files, o.files, allowed);
}

TEST(descriptor_diff, identical_sets_have_no_difference) {
  EXPECT_THAT(diff_text(k_base, k_base), IsEmpty());
}

TEST(descriptor_diff, reports_a_renumbered_field) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "int64 id = 1;", "int64 id = 10;")),
              ElementsAre("t.Req.id: number is 1 in the reference, 10 in ours"));
}

TEST(descriptor_diff, reports_a_changed_field_type) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "int64 id = 1;", "uint64 id = 1;")),
              ElementsAre("t.Req.id: type is int64 in the reference, uint64 in ours"));
  EXPECT_THAT(diff_text(k_base, edited(k_base, "bytes key = 2;", "string key = 2;")),
              ElementsAre("t.Req.key: type is bytes in the reference, string in ours"));
}

TEST(descriptor_diff, reports_a_changed_label) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "repeated string tags = 3;", "string tags = 3;")),
              ElementsAre("t.Req.tags: label is repeated in the reference, optional in ours"));
}

TEST(descriptor_diff, reports_a_changed_message_or_enum_type) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "Kind kind = 4;", "Req.Mode kind = 4;")),
              ElementsAre("t.Req.kind: type_name is t.Kind in the reference, t.Req.Mode in ours"));
  EXPECT_THAT(diff_text(k_base, edited(k_base, "Req req = 1;", "Lone req = 1;")),
              ElementsAre("t.Resp.req: type_name is t.Req in the reference, t.Lone in ours"));
}

TEST(descriptor_diff, reports_a_field_moved_out_of_its_oneof) {
  const std::string ours =
      edited(edited(k_base, "    int64 a = 5;\n", ""), "  Inner inner = 7;", "  int64 a = 5;");
  EXPECT_THAT(diff_text(edited(k_base, "  Inner inner = 7;\n", ""), ours),
              Contains("t.Req.a: oneof is u in the reference, (none) in ours"));
}

TEST(descriptor_diff, reports_changed_packing) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "repeated int32 nums = 8;",
                                       "repeated int32 nums = 8 [packed = false];")),
              ElementsAre("t.Req.nums: packed is yes in the reference, no in ours"));
}

TEST(descriptor_diff, reports_missing_enum_values_top_level_and_nested) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "  K2 = 2;\n", "")),
              ElementsAre("t.Kind.K2: enum value missing from ours"));
  EXPECT_THAT(diff_text(k_base, edited(k_base, "    M1 = 1;\n", "")),
              ElementsAre("t.Req.Mode.M1: enum value missing from ours"));
}

TEST(descriptor_diff, reports_a_renumbered_enum_value) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "K2 = 2;", "K2 = 7;")),
              ElementsAre("t.Kind.K2: number is 2 in the reference, 7 in ours"));
}

TEST(descriptor_diff, reports_changed_streaming) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "rpc Watch(stream Req)", "rpc Watch(Req)")),
              ElementsAre("t.S.Watch: client_streaming is yes in the reference, no in ours"));
  EXPECT_THAT(diff_text(k_base, edited(k_base, "returns (stream Resp)", "returns (Resp)")),
              ElementsAre("t.S.Watch: server_streaming is yes in the reference, no in ours"));
  EXPECT_THAT(diff_text(k_base, edited(k_base, "rpc Get(Req)", "rpc Get(stream Req)")),
              ElementsAre("t.S.Get: client_streaming is no in the reference, yes in ours"));
}

TEST(descriptor_diff, reports_changed_method_types) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "rpc Get(Req) returns (Resp)",
                                       "rpc Get(Lone) returns (Req)")),
              ElementsAre("t.S.Get: input type is t.Req in the reference, t.Lone in ours",
                          "t.S.Get: output type is t.Resp in the reference, t.Req in ours"));
}

TEST(descriptor_diff, reports_missing_elements) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "message Lone {\n  int32 v = 1;\n}\n", "")),
              ElementsAre("t.Lone: message missing from ours"));
  EXPECT_THAT(diff_text(k_base, edited(k_base, "  bytes key = 2;\n", "")),
              ElementsAre("t.Req.key: field missing from ours"));
  EXPECT_THAT(diff_text(k_base, edited(k_base, "  rpc Get(Req) returns (Resp);\n", "")),
              ElementsAre("t.S.Get: method missing from ours"));
  EXPECT_THAT(diff_text(k_base, edited(k_base, "  message Inner {\n    bool x = 1;\n  }\n", "") +
                                    "message Inner {\n  bool x = 1;\n}\n"),
              // The field now points at the top-level Inner, and the nested one is gone.
              UnorderedElementsAre(
                  "t.Inner: message in ours only, and not in the allow-list",
                  "t.Req.inner: type_name is t.Req.Inner in the reference, t.Inner in ours",
                  "t.Req.Inner: message missing from ours"));
}

TEST(descriptor_diff, a_renamed_field_is_one_missing_and_one_extra) {
  EXPECT_THAT(diff_text(k_base, edited(k_base, "int64 id = 1;", "int64 ident = 1;")),
              UnorderedElementsAre("t.Req.id: field missing from ours",
                                   "t.Req.ident: field in ours only, and not in the allow-list"));
}

TEST(descriptor_diff, extras_pass_only_when_allowed) {
  const std::string ours =
      edited(edited(edited(k_base, "  int32 v = 1;\n", "  int32 v = 1;\n  int64 added = 20;\n"),
                    "  rpc Get(Req) returns (Resp);\n",
                    "  rpc Get(Req) returns (Resp);\n  rpc New(NewReq) returns (Resp);\n"),
             "  K2 = 2;\n", "  K2 = 2;\n  K3 = 3;\n") +
      "message NewReq {\n  Kind k = 1;\n}\n";
  EXPECT_THAT(diff_text(k_base, ours),
              UnorderedElementsAre("t.NewReq: message in ours only, and not in the allow-list",
                                   "t.Kind.K3: enum value in ours only, and not in the allow-list",
                                   "t.Lone.added: field in ours only, and not in the allow-list",
                                   "t.S.New: method in ours only, and not in the allow-list"));
  const allow_list allowed = {
      {"t.NewReq", "test"}, {"t.Kind.K3", "test"}, {"t.Lone.added", "test"}, {"t.S.New", "test"}};
  EXPECT_THAT(diff_text(k_base, ours, allowed), IsEmpty());
}

TEST(descriptor_diff, reports_an_allow_list_entry_that_matches_nothing) {
  EXPECT_THAT(diff_text(k_base, k_base, {{"t.Req.gone", "stale"}}),
              ElementsAre("t.Req.gone: allow-list entry (stale) matches nothing extra in ours"));
  // An entry naming something the reference also has is stale too.
  EXPECT_THAT(diff_text(k_base, k_base, {{"t.Req.id", "stale"}}),
              ElementsAre("t.Req.id: allow-list entry (stale) matches nothing extra in ours"));
}

TEST(descriptor_diff, reports_a_syntax_change) {
  const std::string ref = "syntax = \"proto3\";\npackage u;\nmessage M {\n  int32 v = 1;\n}\n";
  const std::string ours =
      "syntax = \"proto2\";\npackage u;\nmessage M {\n  optional int32 v = 1;\n}\n";
  EXPECT_THAT(diff_text(ref, ours),
              ElementsAre("u.M: syntax is proto3 in the reference, proto2 in ours",
                          "u.M.v: presence is no in the reference, yes in ours"));
}

// ---- The loader ----

TEST(load_sources, drops_custom_options_and_option_imports_and_keeps_the_rest) {
  const std::string with_options = R"(syntax = "proto3";
package t;
import "gogoproto/gogo.proto";
import "google/api/annotations.proto";
import "dep.proto";
option (gogoproto.marshaler_all) = true;
option java_package = "kept.by.the.loader";
service S {
  rpc Get(D) returns (M) {
    option (google.api.http) = {
      post: "/v3/get"
      body: "*"
      additional_bindings { post: "/v3/also/get" body: "*" }
    };
  }
}
message M {
  option (gogoproto.goproto_getters) = false;
  bytes key = 1 [(gogoproto.customname) = "Key", (gogoproto.nullable) = false];
  enum E {
    A = 0 [(gogoproto.enumvalue_customname) = "EA"];
  }
}
)";
  const std::string plain = R"(syntax = "proto3";
package t;
import "dep.proto";
service S {
  rpc Get(D) returns (M);
}
message M {
  bytes key = 1;
  enum E {
    A = 0;
  }
}
)";
  const std::string dep = "syntax = \"proto3\";\npackage t;\nmessage D {}\n";
  const loaded a = load({{"a.proto", with_options}, {"dep.proto", dep}}, k_option_imports);
  const loaded b = load({{"b.proto", plain}, {"dep.proto", dep}});
  ASSERT_EQ(a.files.size(), 2u);
  ASSERT_EQ(b.files.size(), 2u);
  EXPECT_THAT(diff_descriptors(a.files, b.files, {}), IsEmpty());
  EXPECT_EQ(a.files[0]->options().java_package(), "kept.by.the.loader");
  EXPECT_EQ(a.files[0]->dependency_count(), 1);
}

TEST(load_sources, reports_parse_errors_and_unresolved_imports) {
  pb::DescriptorPool pool1;
  auto bad = load_sources({{"bad.proto", "syntax = \"proto3\";\nmessage {"}}, {}, pool1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error(), HasSubstr("bad.proto:2:"));

  pb::DescriptorPool pool2;
  auto missing = load_sources(
      {{"m.proto", "syntax = \"proto3\";\nimport \"gogoproto/gogo.proto\";\nmessage M {}\n"}}, {},
      pool2);
  ASSERT_FALSE(missing.has_value());
  EXPECT_THAT(missing.error(), HasSubstr("gogoproto/gogo.proto"));
}

// ---- The real comparison ----

// etcd's import path for each public file, and where it is under the Go source tree.
const std::vector<std::pair<std::string, std::string>> k_etcd_files = {
    {"etcd/mvcc/mvccpb/kv.proto", "mvcc/mvccpb/kv.proto"},
    {"etcd/auth/authpb/auth.proto", "auth/authpb/auth.proto"},
    {"etcd/etcdserver/etcdserverpb/rpc.proto", "etcdserver/etcdserverpb/rpc.proto"},
    {"etcd/etcdserver/api/v3lock/v3lockpb/v3lock.proto",
     "etcdserver/api/v3lock/v3lockpb/v3lock.proto"},
    {"etcd/etcdserver/api/v3election/v3electionpb/v3election.proto",
     "etcdserver/api/v3election/v3electionpb/v3election.proto"},
};

TEST(proto_descriptor, ours_equal_etcd_3_4_23_plus_only_the_listed_3_5_additions) {
  const fs::path root = e2e::etcd_go_source();
  proto_sources sources;
  for (const auto& [import_path, relative] : k_etcd_files) {
    const fs::path path = root / relative;
    ASSERT_TRUE(fs::is_regular_file(path))
        << path << " is missing: scripts/install-deps.sh unpacks golang-etcd-server-dev there "
        << "(or set CAIRN_TEST_ETCD_ROOT)";
    sources.emplace(import_path, read_file(path));
  }
  pb::DescriptorPool pool;
  const auto etcd = load_sources(sources, k_option_imports, pool);
  ASSERT_TRUE(etcd.has_value()) << etcd.error();

  // The reference really is etcd's API, not an empty or partial parse.
  const pb::FileDescriptor* rpc = pool.FindFileByName("etcd/etcdserver/etcdserverpb/rpc.proto");
  ASSERT_NE(rpc, nullptr);
  EXPECT_EQ(rpc->service_count(), 6);
  EXPECT_GE(rpc->message_type_count(), 90);
  ASSERT_NE(pool.FindMethodByName("etcdserverpb.KV.Range"), nullptr);
  ASSERT_NE(pool.FindMethodByName("v3electionpb.Election.Observe"), nullptr);
  ASSERT_NE(pool.FindMessageTypeByName("mvccpb.KeyValue"), nullptr);

  const pb::FileDescriptor* const ours[] = {
      mvccpb::KeyValue::descriptor()->file(),
      authpb::User::descriptor()->file(),
      etcdserverpb::RangeRequest::descriptor()->file(),
      v3lockpb::LockRequest::descriptor()->file(),
      v3electionpb::CampaignRequest::descriptor()->file(),
  };
  EXPECT_EQ(ours[2]->name(), "etcdserverpb/rpc.proto");
  const std::vector<std::string> diffs = diff_descriptors(*etcd, ours, k_etcd_35_additions);
  EXPECT_THAT(diffs, IsEmpty()) << "our descriptors differ from etcd 3.4.23's:\n" << join(diffs);
}

// Our .proto sources as they are on disk, by our import paths.
proto_sources our_sources() {
  proto_sources sources;
  for (const char* name : {"mvccpb/kv.proto", "authpb/auth.proto", "etcdserverpb/rpc.proto",
                           "v3lockpb/v3lock.proto", "v3electionpb/v3election.proto"}) {
    const fs::path path = e2e::source_dir() / "proto" / name;
    EXPECT_TRUE(fs::is_regular_file(path)) << path;
    sources.emplace(name, read_file(path));
  }
  return sources;
}

// The same comparison on our .proto text with one field renumbered: the whole pipeline (our
// files, etcd's files, loader, differ) must catch a bug planted in a real file.
TEST(proto_descriptor, a_renumbered_field_in_our_rpc_proto_is_caught) {
  proto_sources etcd_sources;
  for (const auto& [import_path, relative] : k_etcd_files) {
    etcd_sources.emplace(import_path, read_file(e2e::etcd_go_source() / relative));
  }
  pb::DescriptorPool etcd_pool;
  const auto etcd = load_sources(etcd_sources, k_option_imports, etcd_pool);
  ASSERT_TRUE(etcd.has_value()) << etcd.error();

  proto_sources ours = our_sources();
  {
    pb::DescriptorPool pool;
    const auto files = load_sources(ours, {}, pool);
    ASSERT_TRUE(files.has_value()) << files.error();
    EXPECT_THAT(diff_descriptors(*etcd, *files, k_etcd_35_additions), IsEmpty())
        << "the sources on disk differ from the generated descriptors' verdict";
  }
  std::string& rpc = ours.at("etcdserverpb/rpc.proto");
  rpc = edited(rpc, "int64 dbSizeInUse = 9;", "int64 dbSizeInUse = 19;");
  pb::DescriptorPool pool;
  const auto files = load_sources(ours, {}, pool);
  ASSERT_TRUE(files.has_value()) << files.error();
  EXPECT_THAT(
      diff_descriptors(*etcd, *files, k_etcd_35_additions),
      ElementsAre(
          "etcdserverpb.StatusResponse.dbSizeInUse: number is 9 in the reference, 19 in ours"));
}

TEST(proto_descriptor, every_allowed_addition_is_documented) {
  const fs::path doc = e2e::source_dir() / "docs" / "compatibility.md";
  ASSERT_TRUE(fs::is_regular_file(doc)) << doc;
  const std::string text = read_file(doc);
  for (const auto& [name, reason] : k_etcd_35_additions) {
    EXPECT_THAT(text, HasSubstr("| `" + name + "` |"))
        << "docs/compatibility.md must list " << name << " in its Wire protocol table";
  }
  // And the other way: every element named in a table row of the "Wire protocol" section
  // (a first cell holding a dotted name) is in the allow-list.
  const auto begin = text.find("\n## Wire protocol\n");
  ASSERT_NE(begin, std::string::npos) << "no Wire protocol section in " << doc;
  const auto end = text.find("\n## ", begin + 1);
  std::istringstream section(text.substr(begin, end == std::string::npos ? end : end - begin));
  int rows = 0;
  for (std::string line; std::getline(section, line);) {
    if (!line.starts_with("| `")) continue;
    const std::string name = line.substr(3, line.find('`', 3) - 3);
    if (name.find('.') == std::string::npos) continue;
    ++rows;
    EXPECT_TRUE(k_etcd_35_additions.contains(name))
        << name << " is in docs/compatibility.md but not in the test's allow-list";
  }
  EXPECT_EQ(rows, static_cast<int>(k_etcd_35_additions.size()));
}

}  // namespace
}  // namespace cairn::proto
