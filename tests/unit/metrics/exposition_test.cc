#include "operator/metrics/exposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace mm::metrics {
namespace {

TEST(Exposition, NumbersAreSpelledTheWayTheTextFormatWants) {
  EXPECT_EQ(FormatNumber(0), "0");
  EXPECT_EQ(FormatNumber(1), "1");
  EXPECT_EQ(FormatNumber(42), "42");
  EXPECT_EQ(FormatNumber(0.1), "0.1");
  EXPECT_EQ(FormatNumber(0.0001), "0.0001");
  EXPECT_EQ(FormatNumber(-2.5), "-2.5");
  EXPECT_EQ(FormatNumber(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatNumber(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatNumber(std::nan("")), "NaN");
  // Round-trips: what Prometheus parses is what we held.
  EXPECT_EQ(std::stod(FormatNumber(0.1 + 0.2)), 0.1 + 0.2);
}

TEST(Exposition, LabelValuesAndHelpAreEscaped) {
  EXPECT_EQ(EscapeLabelValue(R"(a"b\c)" "\nd"), R"(a\"b\\c\nd)");
  Registry r;
  auto g = r.Add("g", "line one\nback\\slash", Registry::Type::kGauge);
  r.Set(g, {{"pool", "we\"ird"}}, 3);
  EXPECT_EQ(r.Serialize(),
            "# HELP g line one\\nback\\\\slash\n"
            "# TYPE g gauge\n"
            "g{pool=\"we\\\"ird\"} 3\n");
}

TEST(Exposition, CountersAndGaugesPrintEverySeriesInLabelOrder) {
  Registry r;
  auto c = r.Add("requests_total", "Requests.", Registry::Type::kCounter);
  auto g = r.Add("up", "Up.", Registry::Type::kGauge);
  r.Increment(c, {{"code", "200"}, {"pool", "eu"}});
  r.Increment(c, {{"code", "200"}, {"pool", "eu"}}, 2);
  r.Touch(c, {{"code", "403"}, {"pool", "eu"}});
  r.Set(g, {}, 1);
  EXPECT_EQ(r.Serialize(),
            "# HELP requests_total Requests.\n"
            "# TYPE requests_total counter\n"
            "requests_total{code=\"200\",pool=\"eu\"} 3\n"
            "requests_total{code=\"403\",pool=\"eu\"} 0\n"
            "# HELP up Up.\n"
            "# TYPE up gauge\n"
            "up 1\n");
  ASSERT_NE(r.Value(c, {{"code", "200"}, {"pool", "eu"}}), nullptr);
  EXPECT_EQ(*r.Value(c, {{"code", "200"}, {"pool", "eu"}}), 3);
}

TEST(Exposition, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  auto h = r.Add("lat_seconds", "Latency.", Registry::Type::kHistogram, {0.5, 0.25, 1});  // sorted on Add
  for (double v : {0.125, 0.25, 0.375, 0.75, 5.0}) r.Observe(h, {{"pool", "eu"}}, v);
  EXPECT_EQ(r.Serialize(),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{pool=\"eu\",le=\"0.25\"} 2\n"  // le is inclusive: 0.25 counts
            "lat_seconds_bucket{pool=\"eu\",le=\"0.5\"} 3\n"
            "lat_seconds_bucket{pool=\"eu\",le=\"1\"} 4\n"
            "lat_seconds_bucket{pool=\"eu\",le=\"+Inf\"} 5\n"
            "lat_seconds_sum{pool=\"eu\"} 6.5\n"
            "lat_seconds_count{pool=\"eu\"} 5\n");
}

TEST(Exposition, EmptyFamiliesAndRemovedSeriesAreNotPrinted) {
  Registry r;
  auto a = r.Add("a", "A.", Registry::Type::kGauge);
  auto b = r.Add("b", "B.", Registry::Type::kGauge);
  r.Set(a, {{"pool", "eu"}}, 1);
  r.Set(a, {{"pool", "us"}}, 2);
  r.Set(b, {{"pool", "eu"}}, 1);
  r.Remove(a, {{"pool", "eu"}});
  r.Remove(b, {{"pool", "eu"}});
  r.Remove(b, {{"pool", "never"}});  // harmless
  EXPECT_EQ(r.Serialize(), "# HELP a A.\n# TYPE a gauge\na{pool=\"us\"} 2\n");
  EXPECT_EQ(r.Value(a, {{"pool", "eu"}}), nullptr);
}

}  // namespace
}  // namespace mm::metrics
