// What /metrics says against what clients did, with the real daemon and
// real game servers: a request counts once, by what it got; a client that
// polls while queued is not a stream of allocations; unknown pools have no
// pool series; a deleted pool leaves no series behind.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <thread>

#include "tests/support/operator.h"

namespace mm::testing {
namespace {
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

// The value of the series `line` starts with (name{labels}), or -1.
double Value(const std::string& metrics, const std::string& series) {
  auto at = metrics.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::atof(metrics.c_str() + at + series.size() + 2);
}

std::string OneSlotPool() {
  return CommandPool("eu", 1, 1,
                     "[\"" + BinPath("mm-gameserver") + "\", \"--address\", \"127.0.0.1\", \"--capacity\", \"1\"]");
}

TEST(MetricSemantics, APollingClientIsOneAllocationAndRepeatsAreHeld) {
  Operator op("metrics-semantics");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", OneSlotPool()).status, 201);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));

  ASSERT_EQ(op.Request("alice").status, 200);
  ASSERT_EQ(op.Request("alice").status, 200);  // a repeat: the slot she holds
  // The pool is at its ceiling and its one server full: bob waits in line
  // and polls ten times, go-matchmaker style.
  for (int i = 0; i < 10; ++i) ASSERT_EQ(op.Request("bob").status, 202);
  // alice's match ends: the server frees her slot; bob's next polls get it.
  auto inst = op.Instances("eu");
  ASSERT_EQ(inst.size(), 1u);
  auto control = static_cast<std::uint16_t>(inst[0].at("controlPort").as_int64());
  ASSERT_EQ(http::HttpCall(control, "DELETE", "/reservation/alice").status, 200);
  int polls_after = 0;
  bool served = Eventually([&] {
    ++polls_after;
    return op.Request("bob").status == 200;
  }, 10s);
  ASSERT_TRUE(served);

  auto m = op.Call("GET", "/metrics").body;
  EXPECT_EQ(Value(m, "matchmaker_allocations_total{pool=\"eu\",result=\"allocated\"}"), 2) << m;
  EXPECT_EQ(Value(m, "matchmaker_allocations_total{pool=\"eu\",result=\"held\"}"), 1);
  EXPECT_EQ(Value(m, "matchmaker_allocations_total{pool=\"eu\",result=\"queued\"}"), 1);
  EXPECT_EQ(Value(m, "matchmaker_allocations_total{pool=\"eu\",result=\"polled\"}"), 9 + polls_after - 1);
  EXPECT_EQ(Value(m, "matchmaker_allocations_total{pool=\"eu\",result=\"failed\"}"), 0);
  EXPECT_EQ(Value(m, "matchmaker_allocation_duration_seconds_count{pool=\"eu\"}"), 2);
  EXPECT_EQ(Value(m, "matchmaker_pool_max_instances{pool=\"eu\"}"), 1);
  EXPECT_EQ(Value(m, "matchmaker_backend_up{backend=\"process\"}"), 1);

  // A pool that does not exist: counted, under no pool label.
  EXPECT_EQ(op.Request("carol", "?pool=nope").status, 404);
  m = op.Call("GET", "/metrics").body;
  EXPECT_EQ(Value(m, "matchmaker_unknown_pool_requests_total"), 1);
  EXPECT_EQ(m.find("pool=\"nope\""), std::string::npos);
  EXPECT_EQ(m.find("pool=\"\""), std::string::npos);

  // Deleted: nothing labelled with the pool is left.
  ASSERT_EQ(op.Call("DELETE", std::string(kPools) + "/eu?force=true").status / 100, 2);
  ASSERT_TRUE(Eventually([&] { return op.Call("GET", std::string(kPools) + "/eu").status == 404; }, 20s));
  m = op.Call("GET", "/metrics").body;
  EXPECT_EQ(m.find("pool=\"eu\""), std::string::npos) << m;
}

TEST(MetricSemantics, RemovesAreCountedByOutcome) {
  Operator op("metrics-removes");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }));
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 0)).status, 200);
  ASSERT_TRUE(Eventually([&] { return op.Instances("eu").empty(); }, 20s));
  auto m = op.Call("GET", "/metrics").body;
  EXPECT_EQ(Value(m, "matchmaker_backend_requests_total{backend=\"process\",code=\"ok\",op=\"remove\"}"), 2) << m;
}

}  // namespace
}  // namespace mm::testing
