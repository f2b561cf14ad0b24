#include "base/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <regex>
#include <sstream>

namespace cairn::base {
namespace {

class log_test : public ::testing::Test {
 protected:
  void use(log_style style) {
    out_.str("");
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_, true);
    auto logger = std::make_shared<spdlog::logger>("t", sink);
    logger->set_formatter(make_log_formatter(style));
    logger->set_level(spdlog::level::debug);
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(logger);
  }
  void TearDown() override {
    if (previous_) spdlog::set_default_logger(previous_);
  }
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(log_test, json_lines_as_zap_writes_them) {
  use(log_style::json);
  CAIRN_LOG(info, "saved snapshot", {"index", 100000}, {"term", 2}, {"dir", "a\"b"}, {"ok", true});
  const std::string line = out_.str();
  std::regex re(
      R"re(\{"level":"info","ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","caller":"base/log_test\.cc:\d+","msg":"saved snapshot","index":100000,"term":2,"dir":"a\\"b","ok":true\}
)re");
  EXPECT_TRUE(std::regex_match(line, re)) << line;
}

TEST_F(log_test, plain_spdlog_calls_become_a_msg_without_fields) {
  use(log_style::json);
  spdlog::warn("database size {} over quota", 42);
  EXPECT_NE(out_.str().find(R"("level":"warn")"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find(R"("msg":"database size 42 over quota"})"), std::string::npos)
      << out_.str();
  EXPECT_EQ(out_.str().find("caller"), std::string::npos);
}

TEST_F(log_test, console_style_is_tab_separated_with_fields_in_braces) {
  use(log_style::console);
  CAIRN_LOG(warn, "slow", {"took", "1.2s"});
  std::regex re(
      R"re(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z	WARN	base/log_test\.cc:\d+	slow	\{"took":"1\.2s"\}
)re");
  EXPECT_TRUE(std::regex_match(out_.str(), re)) << out_.str();
}

TEST_F(log_test, levels_below_the_logger_are_dropped) {
  use(log_style::json);
  spdlog::default_logger()->set_level(spdlog::level::warn);
  CAIRN_LOG(info, "quiet");
  EXPECT_EQ(out_.str(), "");
}

TEST(go_duration, prints_as_go) {
  using namespace std::chrono;
  EXPECT_EQ(go_duration(nanoseconds(500)), "500ns");
  EXPECT_EQ(go_duration(microseconds(42)), "42µs");
  EXPECT_EQ(go_duration(microseconds(312400)), "312.4ms");
  EXPECT_EQ(go_duration(milliseconds(1500)), "1.5s");
}

}  // namespace
}  // namespace cairn::base
