// charts/prometheus against the real daemon: /metrics passes `promtool check
// metrics`, and every metric the alert rules use is one matchmakerd exports.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/engine.h"
#include "tests/support/operator.h"

namespace mm::testing {
namespace {
using namespace std::chrono_literals;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Metric families named in `text` (histogram series folded to their family).
std::set<std::string> MetricNames(const std::string& text) {
  std::set<std::string> out;
  static const std::regex name(R"(matchmaker_[a-z_]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator(); ++it) {
    std::string n = it->str();
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (n.ends_with(suffix) && n != "matchmaker_pending_requests") n.resize(n.size() - std::string(suffix).size());
    }
    out.insert(n);
  }
  return out;
}

class Prometheus : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Which("promtool") == "promtool") GTEST_SKIP() << "promtool is not installed (hack/install-deps.sh installs it)";
    ASSERT_TRUE(op_.Start());
    ASSERT_EQ(op_.Call("PUT", "/apis/matchmaker.dev/v1alpha1/serverpools/eu", GameServerPool("eu", 2)).status, 201);
    ASSERT_TRUE(Eventually([&] { return Count(op_.Pool("eu"), "ready") == 2; }));
    ASSERT_EQ(op_.Request("alice").status, 200);
    metrics_ = op_.Call("GET", "/metrics").body;
  }
  Operator op_{"prometheus"};
  std::string metrics_;
};

TEST_F(Prometheus, MetricsPassPromtoolCheckMetrics) {
  auto r = RunCommand({Which("promtool"), "check", "metrics"}, 30s, metrics_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out + r.err, "") << "promtool has remarks on /metrics";
}

TEST_F(Prometheus, EveryMetricTheAlertRulesUseIsExported) {
  auto rules = Read(SourcePath("charts/prometheus/alerts.yml"));
  auto used = MetricNames(rules);
  ASSERT_GE(used.size(), 6u) << rules;
  for (const auto& name : used) {
    EXPECT_NE(metrics_.find("# TYPE " + name + " "), std::string::npos) << name << " is used by alerts.yml";
  }
}

TEST_F(Prometheus, RulesAndConfigPassPromtool) {
  auto rules = RunCommand({Which("promtool"), "check", "rules", SourcePath("charts/prometheus/alerts.yml")});
  EXPECT_EQ(rules.exit_code, 0) << rules.out << rules.err;
  auto config = RunCommand({Which("promtool"), "check", "config", SourcePath("charts/prometheus/prometheus.yml")});
  EXPECT_EQ(config.exit_code, 0) << config.out << config.err;
  auto tests = RunCommand({Which("promtool"), "test", "rules", SourcePath("charts/prometheus/alerts_test.yml")});
  EXPECT_EQ(tests.exit_code, 0) << tests.out << tests.err;
  EXPECT_NE(tests.out.find("SUCCESS"), std::string::npos) << tests.out;
}

}  // namespace
}  // namespace mm::testing
