// charts/ against the real daemon: /metrics passes `promtool check metrics`;
// every metric the alert rules and the Grafana dashboard use is one
// matchmakerd exports; a real Prometheus server scrapes it and answers
// queries with the values the daemon has.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <thread>

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
      if (n.ends_with(suffix)) n.resize(n.size() - std::string(suffix).size());
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

TEST_F(Prometheus, EveryMetricTheDashboardUsesIsExported) {
  auto text = Read(SourcePath("charts/grafana/matchmaker-dashboard.json"));
  auto dashboard = boost::json::parse(text);
  std::string exprs;
  for (const auto& panel : dashboard.at("panels").as_array()) {
    for (const auto& t : panel.at("targets").as_array()) exprs += std::string(t.at("expr").as_string()) + "\n";
  }
  auto used = MetricNames(exprs);
  ASSERT_GE(used.size(), 9u) << exprs;
  for (const auto& name : used) {
    EXPECT_NE(metrics_.find("# TYPE " + name + " "), std::string::npos) << name << " is used by the dashboard";
  }
}

// One instant-vector query; the first sample's value, or "" when none.
std::string Query(int port, const std::string& promql) {
  std::string encoded;
  for (unsigned char c : promql) {
    if (std::isalnum(c) || c == '_') {
      encoded += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      encoded += buf;
    }
  }
  auto r = http::HttpCall(static_cast<std::uint16_t>(port), "GET", "/api/v1/query?query=" + encoded);
  if (r.status != 200) return "";
  auto doc = boost::json::parse(r.body);
  const auto& result = doc.at("data").at("result").as_array();
  if (result.empty()) return "";
  return std::string(result[0].at("value").as_array()[1].as_string());
}

TEST_F(Prometheus, ARealPrometheusScrapesTheDaemon) {
  if (Which("prometheus") == "prometheus") GTEST_SKIP() << "prometheus is not installed";
  auto dir = op_.data_dir() + "/prometheus";
  std::filesystem::create_directories(dir + "/data");
  std::ofstream(dir + "/prometheus.yml") << "global: {scrape_interval: 1s}\nscrape_configs:\n"
                                            "  - job_name: matchmaker\n    static_configs:\n"
                                            "      - targets: [\"127.0.0.1:" << op_.admin_port() << "\"]\n";
  int port = FreePort();
  auto prom = Child::Spawn({Which("prometheus"), "--config.file=" + dir + "/prometheus.yml",
                            "--storage.tsdb.path=" + dir + "/data", "--web.listen-address=127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(Eventually([&] { return Query(port, "up{job=\"matchmaker\"}") == "1"; }, 30s))
      << "Prometheus did not scrape matchmakerd";
  EXPECT_TRUE(Eventually([&] { return Query(port, "matchmaker_pool_warm_target{pool=\"eu\"}") == "2"; }, 10s));
  EXPECT_TRUE(Eventually([&] {
    return Query(port, "matchmaker_allocations_total{pool=\"eu\",result=\"allocated\"}") == "1";
  }, 10s));
  EXPECT_TRUE(Eventually([&] {
    return Query(port, "matchmaker_pool_instances{pool=\"eu\",state=\"allocated\"}") == "1" &&
           Query(port, "matchmaker_pool_instances{pool=\"eu\",state=\"ready\"}") == "2";
  }, 20s));
  // A second client moves the counter; Prometheus sees it on the next scrape.
  ASSERT_EQ(op_.Request("bob").status, 200);
  EXPECT_TRUE(Eventually([&] {
    return Query(port, "matchmaker_allocations_total{pool=\"eu\",result=\"allocated\"}") == "2";
  }, 10s));
  EXPECT_EQ(Query(port, "matchmaker_pool_condition{pool=\"eu\",type=\"Degraded\"}"), "0");
}

}  // namespace
}  // namespace mm::testing
