// The metrics of SPEC.md as /metrics shows them (prometheus-cpp renders).

#include "operator/metrics/metrics.h"

#include <gtest/gtest.h>

namespace mm::metrics {
namespace {

bool Has(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

TEST(Metrics, SeriesExistFromTheStartAndGoWithTheirPool) {
  Metrics m("1.2.3");
  auto text = m.Serialize();
  EXPECT_TRUE(Has(text, "matchmaker_build_info{version=\"1.2.3\"} 1\n"));
  EXPECT_TRUE(Has(text, "matchmaker_journal_up 1\n"));
  EXPECT_TRUE(Has(text, "matchmaker_reconcile_duration_seconds_count 0\n"));
  EXPECT_TRUE(Has(text, "# TYPE matchmaker_build_info gauge\n"));

  m.SetPool("eu", api::InstanceCounts{1, 2, 3, 4, 0}, 2, 0, 40);
  m.SetConditions("eu", {{.type = "Ready", .status = "True"}, {.type = "Degraded", .status = "False"}});
  m.SetPending("eu", 7);
  text = m.Serialize();
  EXPECT_TRUE(Has(text, "matchmaker_pool_instances{pool=\"eu\",state=\"allocated\"} 3\n"));
  EXPECT_TRUE(Has(text, "matchmaker_pool_warm_target{pool=\"eu\"} 2\n"));
  EXPECT_TRUE(Has(text, "matchmaker_pool_condition{pool=\"eu\",type=\"Ready\"} 1\n"));
  EXPECT_TRUE(Has(text, "matchmaker_pool_condition{pool=\"eu\",type=\"Degraded\"} 0\n"));
  EXPECT_TRUE(Has(text, "matchmaker_pending_requests{pool=\"eu\"} 7\n"));
  // Counters at 0 before their first event, so rate() sees it.
  EXPECT_TRUE(Has(text, "matchmaker_reconcile_errors_total{pool=\"eu\"} 0\n"));
  EXPECT_TRUE(Has(text, "matchmaker_instance_failures_total{pool=\"eu\",reason=\"StartTimeout\"} 0\n"));
  EXPECT_TRUE(Has(text, "matchmaker_allocations_total{pool=\"eu\",result=\"polled\"} 0\n"));
  EXPECT_TRUE(Has(text, "matchmaker_pool_max_instances{pool=\"eu\"} 40\n"));

  // Every series of the pool goes with it, those made by events too.
  m.Allocation("eu", "allocated", 0.001);
  m.Reservation("eu", 403);
  m.InstanceStartup("eu", 0.5);
  m.RemovePool("eu");
  text = m.Serialize();
  EXPECT_FALSE(Has(text, "pool=\"eu\"")) << text;

  // A pool of the same name made again counts from 0 in new series (the
  // series an allocation touches are kept per pool, and go with it).
  m.Allocation("eu", "allocated", 0.001);
  m.Reservation("eu", 200);
  text = m.Serialize();
  EXPECT_TRUE(Has(text, "matchmaker_allocations_total{pool=\"eu\",result=\"allocated\"} 1\n")) << text;
  EXPECT_TRUE(Has(text, "matchmaker_allocation_duration_seconds_count{pool=\"eu\"} 1\n")) << text;
  EXPECT_TRUE(Has(text, "matchmaker_reservations_total{code=\"200\",pool=\"eu\"} 1\n")) << text;
}

TEST(Metrics, CountersAndHistograms) {
  Metrics m("v");
  m.Allocation("eu", "allocated", 0.0004);
  m.Allocation("eu", "allocated", 0.003);
  m.Allocation("eu", "queued", 0.0001);
  m.Reservation("eu", 200);
  m.Reservation("eu", 0);
  m.BackendRequest("docker", "create", "ok");
  m.InstanceFailure("eu", "ExitedBeforeReady");
  m.InstanceStartup("eu", 0.7);
  m.ObserveReconcile(0.00002);
  m.SetJournalUp(false);
  m.SetBackendUp("docker", false);
  m.UnknownPool();
  auto text = m.Serialize();
  EXPECT_TRUE(Has(text, "matchmaker_backend_up{backend=\"docker\"} 0\n"));
  EXPECT_TRUE(Has(text, "matchmaker_unknown_pool_requests_total 1\n"));
  EXPECT_TRUE(Has(text, "matchmaker_allocations_total{pool=\"eu\",result=\"allocated\"} 2\n"));
  EXPECT_TRUE(Has(text, "matchmaker_allocations_total{pool=\"eu\",result=\"queued\"} 1\n"));
  // Durations are those of new slots only, not of 202s or repeats.
  EXPECT_TRUE(Has(text, "matchmaker_allocation_duration_seconds_count{pool=\"eu\"} 2\n"));
  EXPECT_TRUE(Has(text, "matchmaker_allocation_duration_seconds_bucket{pool=\"eu\",le=\"0.0005\"} 1\n"));
  EXPECT_TRUE(Has(text, "matchmaker_reservations_total{code=\"0\",pool=\"eu\"} 1\n"));
  EXPECT_TRUE(Has(text, "matchmaker_backend_requests_total{backend=\"docker\",code=\"ok\",op=\"create\"} 1\n"));
  EXPECT_TRUE(Has(text, "matchmaker_instance_failures_total{pool=\"eu\",reason=\"ExitedBeforeReady\"} 1\n"));
  EXPECT_TRUE(Has(text, "matchmaker_instance_startup_seconds_bucket{pool=\"eu\",le=\"1\"} 1\n"));
  EXPECT_TRUE(Has(text, "matchmaker_reconcile_duration_seconds_count 1\n"));
  EXPECT_TRUE(Has(text, "matchmaker_journal_up 0\n"));
}

}  // namespace
}  // namespace mm::metrics
