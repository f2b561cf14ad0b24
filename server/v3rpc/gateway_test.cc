// The gateway's pure parts: the body splitter, the status table and the route table.
#include "v3rpc/gateway.h"

#include <gtest/gtest.h>

#include <set>

namespace cairn::v3rpc {
namespace {

TEST(gateway_body, splits_concatenated_objects) {
  auto v = split_json_objects(R"( {"a":{"b":"}{"}} {"c":[1,{"d":2}]}
{"e":"\"}"})");
  ASSERT_TRUE(v);
  ASSERT_EQ(v->size(), 3u);
  EXPECT_EQ((*v)[0], R"({"a":{"b":"}{"}})");
  EXPECT_EQ((*v)[1], R"({"c":[1,{"d":2}]})");
  EXPECT_EQ((*v)[2], R"({"e":"\"}"})");
  EXPECT_EQ(split_json_objects("")->size(), 0u);
  EXPECT_EQ(split_json_objects(" \n ")->size(), 0u);
  EXPECT_FALSE(split_json_objects(R"({"a":1)"));
  EXPECT_FALSE(split_json_objects(R"([1])"));
  EXPECT_FALSE(split_json_objects(R"({"a":1} x)"));
}

TEST(gateway_status, grpc_gateway_v1_table) {
  using c = grpc::StatusCode;
  EXPECT_EQ(http_status_of(c::OK), 200);
  EXPECT_EQ(http_status_of(c::INVALID_ARGUMENT), 400);
  EXPECT_EQ(http_status_of(c::OUT_OF_RANGE), 400);
  EXPECT_EQ(http_status_of(c::NOT_FOUND), 404);
  EXPECT_EQ(http_status_of(c::FAILED_PRECONDITION), 412);
  EXPECT_EQ(http_status_of(c::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(http_status_of(c::UNAVAILABLE), 503);
  EXPECT_EQ(http_status_of(c::UNKNOWN), 500);
  EXPECT_EQ(http_status_of(c::PERMISSION_DENIED), 403);
  EXPECT_EQ(http_status_of(c::UNAUTHENTICATED), 401);
  EXPECT_EQ(http_status_of(c::CANCELLED), 408);
  EXPECT_EQ(http_status_of(c::DEADLINE_EXCEEDED), 504);
  EXPECT_EQ(http_status_of(c::UNIMPLEMENTED), 501);
}

TEST(gateway_routes, every_path_once_and_every_method_known) {
  gateway g;  // aborts if a method is not in the descriptor pool
  std::set<std::string> paths;
  for (const auto& r : gateway_routes()) {
    EXPECT_TRUE(paths.insert(r.path).second) << r.path;
    EXPECT_TRUE(r.path.starts_with("/v3/")) << r.path;
  }
  EXPECT_EQ(paths.size(), 51u);
}

}  // namespace
}  // namespace cairn::v3rpc
