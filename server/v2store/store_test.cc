#include "v2store/store.h"

#include <gtest/gtest.h>

namespace cairn::v2store {
namespace {

using namespace std::chrono_literals;

class V2StoreTest : public ::testing::Test {
 protected:
  clock::time_point now = clock::time_point(std::chrono::seconds(1'800'000'000));
  store st{[this] { return now; }};
  static std::string json(const cairn::expected<event, error>& e) {
    return e ? to_json(*e) : e.error().json();
  }
};

TEST_F(V2StoreTest, SetGetAndTheJsonEtcdPrints) {
  EXPECT_EQ(
      json(st.set("/foo", false, "bar", {})),
      R"({"action":"set","node":{"key":"/foo","value":"bar","modifiedIndex":1,"createdIndex":1}})");
  EXPECT_EQ(st.index(), 1u);
  EXPECT_EQ(
      json(st.set("foo", false, "baz", {})),
      R"({"action":"set","node":{"key":"/foo","value":"baz","modifiedIndex":2,"createdIndex":2},)"
      R"("prevNode":{"key":"/foo","value":"bar","modifiedIndex":1,"createdIndex":1}})");
  EXPECT_EQ(
      json(st.get("/foo", false, false)),
      R"({"action":"get","node":{"key":"/foo","value":"baz","modifiedIndex":2,"createdIndex":2}})");
  EXPECT_EQ(st.get("/foo", false, false)->etcd_index, 2u);
  EXPECT_EQ(json(st.get("/nope", false, false)),
            R"({"errorCode":100,"message":"Key not found","cause":"/nope","index":2})");
  EXPECT_EQ(st.get("/nope", false, false).error().http_status(), 404);
  // An empty value is still shown.
  EXPECT_EQ(
      json(st.set("/e", false, "", {})),
      R"({"action":"set","node":{"key":"/e","value":"","modifiedIndex":3,"createdIndex":3}})");
  // Paths are cleaned; the root is read only.
  EXPECT_EQ(st.get("//foo/./", false, false)->node.key, "/foo");
  EXPECT_EQ(json(st.set("/", false, "x", {})),
            R"({"errorCode":107,"message":"Root is read only","cause":"/","index":3})");
  EXPECT_EQ(st.remove("/", true, true).error().code, ecode::root_read_only);
}

TEST_F(V2StoreTest, DirectoriesListOneLevelUnlessRecursiveAndHideUnderscores) {
  ASSERT_TRUE(st.set("/d/a", false, "1", {}));  // makes /d with index 1
  ASSERT_TRUE(st.set("/d/sub/b", false, "2", {}));
  ASSERT_TRUE(st.set("/d/_hidden", false, "h", {}));
  EXPECT_EQ(json(st.get("/d", false, true)),
            R"({"action":"get","node":{"key":"/d","dir":true,"nodes":[)"
            R"({"key":"/d/a","value":"1","modifiedIndex":1,"createdIndex":1},)"
            R"({"key":"/d/sub","dir":true,"modifiedIndex":2,"createdIndex":2}],)"
            R"("modifiedIndex":1,"createdIndex":1}})");
  EXPECT_EQ(
      json(st.get("/d", true, true)),
      R"({"action":"get","node":{"key":"/d","dir":true,"nodes":[)"
      R"({"key":"/d/a","value":"1","modifiedIndex":1,"createdIndex":1},)"
      R"({"key":"/d/sub","dir":true,"nodes":[{"key":"/d/sub/b","value":"2","modifiedIndex":2,)"
      R"("createdIndex":2}],"modifiedIndex":2,"createdIndex":2}],"modifiedIndex":1,"createdIndex":1}})");
  EXPECT_EQ(st.get("/d/_hidden", false, false)->node.value, "h");  // by name
  // A file on the way is not a directory; a directory is not a file.
  EXPECT_EQ(json(st.set("/d/a/x", false, "v", {})),
            R"({"errorCode":104,"message":"Not a directory","cause":"/d/a","index":3})");
  EXPECT_EQ(json(st.get("/d/a/x", false, false)),
            R"({"errorCode":104,"message":"Not a directory","cause":"/d/a","index":3})");
  EXPECT_EQ(json(st.set("/d", false, "v", {})),
            R"({"errorCode":102,"message":"Not a file","cause":"/d","index":3})");
  EXPECT_EQ(st.set("/d", false, "v", {}).error().http_status(), 403);
  // An empty directory lists as no nodes.
  ASSERT_TRUE(st.set("/empty", true, "", {}));
  EXPECT_EQ(
      json(st.get("/empty", true, true)),
      R"({"action":"get","node":{"key":"/empty","dir":true,"modifiedIndex":4,"createdIndex":4}})");
}

TEST_F(V2StoreTest, CreateUpdateAndInOrderKeys) {
  EXPECT_EQ(
      json(st.create("/k", false, "1", false, {})),
      R"({"action":"create","node":{"key":"/k","value":"1","modifiedIndex":1,"createdIndex":1}})");
  EXPECT_EQ(json(st.create("/k", false, "2", false, {})),
            R"({"errorCode":105,"message":"Key already exists","cause":"/k","index":1})");
  EXPECT_EQ(st.create("/k", false, "2", false, {}).error().http_status(), 412);
  EXPECT_EQ(
      json(st.update("/k", "3", {})),
      R"({"action":"update","node":{"key":"/k","value":"3","modifiedIndex":2,"createdIndex":1},)"
      R"("prevNode":{"key":"/k","value":"1","modifiedIndex":1,"createdIndex":1}})");
  EXPECT_EQ(json(st.update("/none", "3", {})),
            R"({"errorCode":100,"message":"Key not found","cause":"/none","index":2})");
  auto q1 = st.create("/queue", false, "job1", true, {});
  auto q2 = st.create("/queue", false, "job2", true, {});
  ASSERT_TRUE(q1 && q2);
  EXPECT_EQ(q1->node.key, "/queue/00000000000000000003");
  EXPECT_EQ(q2->node.key, "/queue/00000000000000000004");
  auto listed = st.get("/queue", true, true);
  ASSERT_EQ(listed->node.nodes.size(), 2u);
  EXPECT_EQ(*listed->node.nodes[0].value, "job1");
}

TEST_F(V2StoreTest, CompareAndSwapAndCompareAndDelete) {
  ASSERT_TRUE(st.set("/c", false, "bar", {}));
  EXPECT_EQ(json(st.compare_and_swap("/c", "nope", 0, "x", {})),
            R"({"errorCode":101,"message":"Compare failed","cause":"[nope != bar]","index":1})");
  EXPECT_EQ(json(st.compare_and_swap("/c", "", 4, "x", {})),
            R"({"errorCode":101,"message":"Compare failed","cause":"[4 != 1]","index":1})");
  EXPECT_EQ(
      json(st.compare_and_swap("/c", "nope", 4, "x", {})),
      R"({"errorCode":101,"message":"Compare failed","cause":"[nope != bar] [4 != 1]","index":1})");
  EXPECT_EQ(
      json(st.compare_and_swap("/c", "bar", 1, "baz", {})),
      R"({"action":"compareAndSwap","node":{"key":"/c","value":"baz","modifiedIndex":2,)"
      R"("createdIndex":1},"prevNode":{"key":"/c","value":"bar","modifiedIndex":1,"createdIndex":1}})");
  EXPECT_EQ(json(st.compare_and_delete("/c", "bar", 0)),
            R"({"errorCode":101,"message":"Compare failed","cause":"[bar != baz]","index":2})");
  EXPECT_EQ(
      json(st.compare_and_delete("/c", "", 2)),
      R"({"action":"compareAndDelete","node":{"key":"/c","modifiedIndex":3,"createdIndex":1},)"
      R"("prevNode":{"key":"/c","value":"baz","modifiedIndex":2,"createdIndex":1}})");
  ASSERT_TRUE(st.set("/dir", true, "", {}));
  EXPECT_EQ(st.compare_and_swap("/dir", "", 0, "x", {}).error().code, ecode::not_file);
  EXPECT_EQ(st.compare_and_delete("/dir", "", 0).error().code, ecode::not_file);
}

TEST_F(V2StoreTest, DeleteNeedsDirAndRecursiveForDirectories) {
  ASSERT_TRUE(st.set("/d/a", false, "1", {}));
  EXPECT_EQ(json(st.remove("/d", false, false)),
            R"({"errorCode":102,"message":"Not a file","cause":"/d","index":1})");
  EXPECT_EQ(json(st.remove("/d", true, false)),
            R"({"errorCode":108,"message":"Directory not empty","cause":"/d","index":1})");
  EXPECT_EQ(
      json(st.remove("/d", false, true)),
      R"({"action":"delete","node":{"key":"/d","dir":true,"modifiedIndex":2,"createdIndex":1},)"
      R"("prevNode":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}})");
  EXPECT_EQ(st.get("/d/a", false, false).error().code, ecode::key_not_found);
  ASSERT_TRUE(st.set("/f", false, "v", {}));
  EXPECT_EQ(json(st.remove("/f", false, false)),
            R"({"action":"delete","node":{"key":"/f","modifiedIndex":4,"createdIndex":3},)"
            R"("prevNode":{"key":"/f","value":"v","modifiedIndex":3,"createdIndex":3}})");
}

TEST_F(V2StoreTest, TtlsShowRoundedUpAndExpireWithAnEvent) {
  ttl_options ttl{now + 30s, false};
  auto e = st.set("/t", false, "v", ttl);
  ASSERT_TRUE(e);
  EXPECT_EQ(to_json(*e),
            R"({"action":"set","node":{"key":"/t","value":"v","expiration":"2027-01-15T08:00:30Z",)"
            R"("ttl":30,"modifiedIndex":1,"createdIndex":1}})");
  now += 100ms;
  EXPECT_EQ(st.get("/t", false, false)->node.ttl, 30);  // 29.9 s left: 30
  ASSERT_TRUE(st.set("/dir", true, "", {now + 10s, false}));
  ASSERT_TRUE(st.set("/dir/in", false, "x", {}));
  auto w = st.watch("/dir/in", false, false, 0);
  ASSERT_TRUE(w);
  EXPECT_EQ(st.next_expiry(), now + 10s);
  st.delete_expired(now + 9s);
  EXPECT_TRUE(st.get("/dir", false, false));
  st.delete_expired(now + 10s);
  EXPECT_EQ(st.get("/dir/in", false, false).error().code, ecode::key_not_found);
  // The watcher of a file in the expired directory hears the expiry.
  auto heard = (*w)->next(1s);
  ASSERT_TRUE(heard);
  EXPECT_EQ(heard->action, "expire");
  EXPECT_EQ(heard->node.key, "/dir");
  // Update without a TTL makes a key permanent; refresh keeps the value.
  ASSERT_TRUE(st.update("/t", "v2", {}));
  EXPECT_EQ(st.get("/t", false, false)->node.ttl, 0);
  ASSERT_TRUE(st.update("/t", "", {now + 5s, true}));
  EXPECT_EQ(*st.get("/t", false, false)->node.value, "v2");
  EXPECT_EQ(st.counters().expire_count, 1u);
}

TEST_F(V2StoreTest, WatchersSeeHistoryOrTheNextEventAndRefreshIsQuiet) {
  ASSERT_TRUE(st.set("/w", false, "1", {}));    // 1
  ASSERT_TRUE(st.set("/w", false, "2", {}));    // 2
  ASSERT_TRUE(st.set("/x/y", false, "3", {}));  // 3
  // From history.
  auto past = st.watch("/w", false, false, 2);
  ASSERT_TRUE(past);
  auto e = (*past)->next(10ms);
  ASSERT_TRUE(e);
  EXPECT_EQ(*e->node.value, "2");
  EXPECT_EQ(e->etcd_index, 3u);
  auto rec = st.watch("/x", true, false, 1);
  EXPECT_EQ((*rec)->next(10ms)->node.key, "/x/y");
  // Waiting: only a matching later event.
  auto w = st.watch("/w", false, false, 0);
  auto r = st.watch("/", true, true, 0);
  ASSERT_TRUE(st.set("/other", false, "o", {}));  // 4
  EXPECT_FALSE((*w)->next(10ms));
  ASSERT_TRUE(st.set("/w", false, "3", {now + 60s, false}));  // 5
  EXPECT_EQ((*w)->next(10ms)->node.modified_index, 5u);
  EXPECT_EQ((*r)->next(10ms)->node.key, "/other");
  EXPECT_EQ((*r)->next(10ms)->node.key, "/w");
  // A refresh notifies nobody.
  ASSERT_TRUE(st.set("/w", false, "", {now + 90s, true}));  // 6
  EXPECT_FALSE((*r)->next(10ms));
  // Hidden keys: not to a recursive watcher above them, yes to a watcher on them.
  auto hid = st.watch("/_h", false, false, 0);
  ASSERT_TRUE(st.set("/_h", false, "secret", {}));  // 7
  EXPECT_FALSE((*r)->next(10ms));
  EXPECT_EQ((*hid)->next(10ms)->node.key, "/_h");
  // A stream watcher of a deleted key hears the delete once.
  auto s = st.watch("/w", false, true, 0);
  ASSERT_TRUE(st.remove("/w", false, false));  // 8
  EXPECT_EQ((*s)->next(10ms)->action, "delete");
  EXPECT_FALSE((*s)->next(10ms));
}

TEST_F(V2StoreTest, AnIndexOlderThanTheHistoryIsCleared) {
  for (int i = 0; i < 1005; ++i) ASSERT_TRUE(st.set("/k", false, std::to_string(i), {}));
  auto w = st.watch("/k", false, false, 2);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().json(),
            R"({"errorCode":401,"message":"The event in requested index is outdated and cleared",)"
            R"("cause":"the requested history has been cleared [6/2]","index":1005})");
  EXPECT_TRUE(st.watch("/k", false, false, 6));
}

TEST_F(V2StoreTest, ASlowWatcherIsDropped) {
  auto w = st.watch("/", true, true, 0);
  for (int i = 0; i < 150; ++i) ASSERT_TRUE(st.set("/k", false, "v", {}));
  EXPECT_TRUE((*w)->removed());
  EXPECT_EQ(st.counters().watchers, 0u);
}

TEST_F(V2StoreTest, SaveAndRecoverKeepTheTreeIndexAndTtls) {
  ASSERT_TRUE(st.set("/a/b", false, "v\nwith newline", {}));
  ASSERT_TRUE(st.set("/t", false, "x", {now + 30s, false}));
  ASSERT_TRUE(st.set("/emptydir", true, "", {}));
  const std::string saved = st.save();
  store other([this] { return now; });
  ASSERT_TRUE(other.recover(saved));
  EXPECT_EQ(other.index(), st.index());
  EXPECT_EQ(to_json(*other.get("/", true, true)), to_json(*st.get("/", true, true)));
  EXPECT_EQ(other.next_expiry(), now + 30s);
  EXPECT_FALSE(other.recover("garbage"));
  EXPECT_FALSE(other.recover(saved.substr(0, saved.size() - 3)));
}

TEST_F(V2StoreTest, StatsCountSuccessesAndFailures) {
  ASSERT_TRUE(st.set("/a", false, "1", {}));
  (void)st.get("/a", false, false);
  (void)st.get("/b", false, false);
  (void)st.create("/a", false, "x", false, {});
  const auto s = st.counters();
  EXPECT_EQ(s.set_success, 1u);
  EXPECT_EQ(s.get_success, 1u);
  EXPECT_EQ(s.get_fail, 1u);
  EXPECT_EQ(s.create_fail, 1u);
  EXPECT_NE(s.json().find(R"("getsSuccess":1,"getsFail":1,"setsSuccess":1)"), std::string::npos);
}

}  // namespace
}  // namespace cairn::v2store
