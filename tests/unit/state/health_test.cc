#include "operator/state/health.h"

#include <gtest/gtest.h>

#include "operator/state/pool_state.h"

namespace mm::state {
namespace {

using namespace std::chrono_literals;
using S = InstanceState;
const TimePoint kT0 = TimePoint{} + 1000h;

Instance Inst(S state, int failures = 0, int held = 0) {
  Instance i;
  i.pool = "eu";
  i.name = "eu-a";
  i.state = state;
  i.probe_failures = failures;
  i.suspect = failures > 0;
  i.ready_at = kT0;
  for (int k = 0; k < held; ++k) i.reservations.insert("c" + std::to_string(k));
  return i;
}

TEST(JudgeProbe, Table) {
  struct Case {
    std::string desc;
    Instance in;
    bool answered;
    S state;
    int failures;
    bool suspect;
    HealthEvent event;
  };
  Instance unhealthy_busy = Inst(S::kUnhealthy, 5, 1);
  unhealthy_busy.before_unhealthy = S::kFull;
  Instance unhealthy_alloc = Inst(S::kUnhealthy, 3, 2);
  unhealthy_alloc.before_unhealthy = S::kAllocated;
  std::vector<Case> cases = {
      {"ready answers: nothing changes", Inst(S::kReady), true, S::kReady, 0, false, HealthEvent::kNone},
      {"one miss opens the circuit", Inst(S::kReady), false, S::kReady, 1, true, HealthEvent::kNone},
      {"an answer closes it", Inst(S::kReady, 2), true, S::kReady, 0, false, HealthEvent::kNone},
      {"threshold reached, idle", Inst(S::kReady, 2), false, S::kUnhealthy, 3, true, HealthEvent::kUnhealthy},
      {"threshold reached, busy", Inst(S::kAllocated, 2, 1), false, S::kUnhealthy, 3, true,
       HealthEvent::kBusyUnhealthy},
      {"full with nobody of ours is idle", Inst(S::kFull, 2), false, S::kUnhealthy, 3, true, HealthEvent::kUnhealthy},
      {"already unhealthy: no second event", Inst(S::kUnhealthy, 3, 1), false, S::kUnhealthy, 4, true,
       HealthEvent::kNone},
      {"unhealthy full answers: Full again", unhealthy_busy, true, S::kFull, 0, false, HealthEvent::kRecovered},
      {"unhealthy allocated answers: Allocated again", unhealthy_alloc, true, S::kAllocated, 0, false,
       HealthEvent::kRecovered},
      {"starting is not probed for liveness", Inst(S::kStarting), false, S::kStarting, 0, false, HealthEvent::kNone},
      {"terminating is not probed", Inst(S::kTerminating), false, S::kTerminating, 0, false, HealthEvent::kNone},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    auto v = JudgeProbe(c.in, c.answered, 3);
    EXPECT_EQ(v.state, c.state);
    EXPECT_EQ(v.failures, c.failures);
    EXPECT_EQ(v.suspect, c.suspect);
    EXPECT_EQ(v.event, c.event);
  }
  auto v = JudgeProbe(Inst(S::kAllocated, 2, 1), false, 3);
  EXPECT_EQ(v.before_unhealthy, S::kAllocated);
  EXPECT_EQ(JudgeProbe(Inst(S::kReady), false, 1).state, S::kUnhealthy);
}

TEST(CrashAfterReady, OnlyNonZeroExitsSoonAfterReadyWithNobodyOnIt) {
  const auto window = 60s;
  EXPECT_TRUE(CrashAfterReady(Inst(S::kReady), 1, kT0 + 2s, window));
  EXPECT_TRUE(CrashAfterReady(Inst(S::kReady), 137, kT0 + 59s, window));
  EXPECT_TRUE(CrashAfterReady(Inst(S::kUnhealthy), 1, kT0 + 2s, window));
  EXPECT_FALSE(CrashAfterReady(Inst(S::kReady), 0, kT0 + 2s, window)) << "a clean exit";
  EXPECT_FALSE(CrashAfterReady(Inst(S::kReady), 1, kT0 + 60s, window)) << "past the window";
  EXPECT_FALSE(CrashAfterReady(Inst(S::kAllocated, 0, 1), 1, kT0 + 2s, window)) << "a match was on";
  EXPECT_FALSE(CrashAfterReady(Inst(S::kReady), 1, kT0 + 2s, 0ms)) << "window 0 turns it off";
  EXPECT_FALSE(CrashAfterReady(Inst(S::kStarting), 1, kT0 + 2s, window)) << "before Ready is counted elsewhere";
  EXPECT_FALSE(CrashAfterReady(Inst(S::kTerminating), 1, kT0 + 2s, window)) << "we stopped it";
}

TEST(ProvedStable, AfterTheWindowOrAReservation) {
  EXPECT_FALSE(ProvedStable(Inst(S::kReady), kT0 + 10s, 60s));
  EXPECT_TRUE(ProvedStable(Inst(S::kReady), kT0 + 60s, 60s));
  EXPECT_TRUE(ProvedStable(Inst(S::kAllocated, 0, 1), kT0 + 1s, 60s));
  EXPECT_TRUE(ProvedStable(Inst(S::kReady), kT0, 0ms));
  EXPECT_FALSE(ProvedStable(Inst(S::kStarting), kT0 + 100s, 60s));
}

// The allocation indexes follow the lifecycle: Unhealthy and suspect
// instances are never candidates; Full ones are asked again by age.
TEST(PoolStateHealth, UnhealthyAndSuspectAreNeverCandidates) {
  api::ServerPool p;
  p.metadata.name = "eu";
  p.spec.templ.command = {"x"};
  PoolState ps(p);
  for (const char* n : {"a", "b", "c"}) {
    Instance i = Inst(S::kReady);
    i.name = n;
    i.template_hash = ps.template_hash();
    ps.Upsert(i);
  }
  ASSERT_EQ(ps.Candidates(10).size(), 3u);
  ps.Mutate("a", [](Instance& i) { i.suspect = true; });
  ps.Mutate("b", [](Instance& i) {
    i.before_unhealthy = i.state;
    i.state = S::kUnhealthy;
  });
  auto cands = ps.Candidates(10);
  ASSERT_EQ(cands.size(), 1u);
  EXPECT_EQ(cands[0]->name, "c");
  EXPECT_EQ(ps.Counts().unhealthy, 1);
  EXPECT_EQ(ps.Counts().ready, 2);
  ps.Mutate("a", [](Instance& i) { i.suspect = false; });
  EXPECT_EQ(ps.Candidates(10).size(), 2u);
  EXPECT_EQ(ps.plan_index().Size(PlanIndex::kUnhealthy), 1);
  ps.AddReservation("b", "p1");  // an Unhealthy instance holding a slot is busy
  EXPECT_EQ(ps.plan_index().Size(PlanIndex::kUnhealthy), 0);
  EXPECT_EQ(ps.plan_index().Size(PlanIndex::kBusy), 1);
  EXPECT_EQ(ps.Find("b")->state, S::kUnhealthy) << "a slot does not make it healthy";
}

TEST(PoolStateHealth, FullInstancesAreAskedAgainLeastRecentlyAskedFirst) {
  api::ServerPool p;
  p.metadata.name = "eu";
  p.spec.templ.command = {"x"};
  PoolState ps(p);
  for (auto [n, asked] : {std::pair{"f1", kT0 + 1s}, std::pair{"f2", kT0}, std::pair{"f3", kT0 + 5s}}) {
    Instance i = Inst(S::kFull);
    i.name = n;
    i.asked_at = asked;
    ps.Upsert(i);
  }
  auto names = [](const std::vector<const Instance*>& v) {
    std::vector<std::string> out;
    for (auto* i : v) out.push_back(i->name);
    return out;
  };
  EXPECT_EQ(names(ps.FullToAsk(kT0 + 2s, 1s, 10)), (std::vector<std::string>{"f2", "f1"}));
  EXPECT_EQ(names(ps.FullToAsk(kT0 + 2s, 1s, 1)), (std::vector<std::string>{"f2"}));
  EXPECT_TRUE(ps.FullToAsk(kT0 + 500ms, 1s, 10).empty()) << "within the cooldown";
  ps.Mutate("f2", [](Instance& i) { i.suspect = true; });
  EXPECT_EQ(names(ps.FullToAsk(kT0 + 2s, 1s, 10)), (std::vector<std::string>{"f1"}));
  ASSERT_TRUE(ps.AddReservation("f1", "c9"));
  EXPECT_EQ(ps.Find("f1")->state, S::kAllocated) << "a Full instance that grants a slot again is Allocated";
  EXPECT_TRUE(ps.FullToAsk(kT0 + 2s, 1s, 10).empty());
}

}  // namespace
}  // namespace mm::state

namespace mm::state {
namespace {

TEST(PoolStateMetadata, KeptWithTheSlotAndDroppedWithIt) {
  api::ServerPool p;
  p.metadata.name = "eu";
  p.spec.templ.command = {"x"};
  PoolState ps(p);
  Instance i;
  i.pool = "eu";
  i.name = "a";
  i.state = InstanceState::kReady;
  ps.Upsert(i);
  ASSERT_TRUE(ps.AddReservation("a", "c1", R"({"map":"dust"})"));
  ASSERT_TRUE(ps.AddReservation("a", "c2"));
  EXPECT_EQ(ps.Find("a")->metadata, (std::map<std::string, std::string>{{"c1", R"({"map":"dust"})"}}));
  ASSERT_TRUE(ps.RemoveReservation("a", "c1"));
  EXPECT_TRUE(ps.Find("a")->metadata.empty());
}

}  // namespace
}  // namespace mm::state
