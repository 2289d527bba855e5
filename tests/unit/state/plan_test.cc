#include "operator/state/plan.h"

#include <gtest/gtest.h>

namespace mm::state {
namespace {

using namespace std::chrono_literals;
using S = InstanceState;

const TimePoint kNow = TimePoint{} + 1000h;

// "r3" = ready, created 3s ago, current template; "R3" = outdated.
struct I {
  std::string name;
  S state;
  bool outdated = false;
  std::chrono::seconds age = 10s;
  int held = 0;  // reservations it holds
};

struct Case {
  std::string desc;
  int warm = 3, min = 0, max = 10;
  std::vector<I> instances;
  bool deleting = false, force = false;
  FailureHistory failures;
  Limits limits;
  // expectations
  int create = 0;
  std::vector<std::string> remove;  // names, in order
  std::vector<std::string> forget;
  bool partial = false;
  bool pool_gone = false;
  bool backing_off = false;
};

Plan MakePlan(const Case& c, std::vector<Instance>& storage) {
  static api::ServerPoolSpec spec;
  spec.warm = c.warm;
  spec.minInstances = c.min;
  spec.maxInstances = c.max;
  spec.readiness.timeoutMs = 60'000;
  storage.clear();
  for (const auto& i : c.instances) {
    Instance inst;
    inst.name = i.name;
    inst.state = i.state;
    inst.template_hash = i.outdated ? "old" : "cur";
    inst.created = kNow - i.age;
    for (int k = 0; k < i.held; ++k) inst.reservations.insert("c" + std::to_string(k));
    storage.push_back(inst);
  }
  PlanInput in;
  in.spec = &spec;
  in.template_hash = "cur";
  for (const auto& i : storage) in.instances.push_back(&i);
  in.now = kNow;
  in.deleting = c.deleting;
  in.force = c.force;
  in.failures = c.failures;
  in.limits = c.limits;
  return PlanReconcile(in);
}

std::vector<std::string> Names(const std::vector<Removal>& r) {
  std::vector<std::string> out;
  for (const auto& x : r) out.push_back(x.name);
  return out;
}

TEST(PlanReconcile, Table) {
  Limits small;
  small.max_creates_per_pass = 2;
  small.max_removals_per_pass = 1;
  std::vector<Case> cases = {
      {.desc = "empty pool fills to warm", .create = 3},
      {.desc = "warm 0 and nothing: nothing", .warm = 0},
      {.desc = "starting instances count toward warm",
       .instances = {{"a", S::kStarting}, {"b", S::kReady}},
       .create = 1},
      {.desc = "busy instances do not count toward warm",
       .instances = {{"a", S::kAllocated}, {"b", S::kFull}, {"c", S::kReady}},
       .create = 2},
      {.desc = "max counts busy instances",
       .max = 4,
       .instances = {{"a", S::kAllocated}, {"b", S::kFull}, {"c", S::kAllocated}},
       .create = 1},
      {.desc = "max reached by busy: no creation",
       .max = 3,
       .instances = {{"a", S::kAllocated}, {"b", S::kFull}, {"c", S::kAllocated}}},
      {.desc = "terminating instances count toward max",
       .max = 3,
       .instances = {{"a", S::kTerminating}, {"b", S::kTerminating}},
       .create = 1},
      {.desc = "minInstances beyond warm",
       .warm = 1, .min = 4,
       .instances = {{"a", S::kAllocated}},
       .create = 3},
      {.desc = "minInstances satisfied by busy instances",
       .warm = 1, .min = 2,
       .instances = {{"a", S::kAllocated}, {"b", S::kFull}, {"c", S::kReady}}},
      {.desc = "scale down removes idle only, starting then newest first",
       .warm = 1,
       .instances = {{"old", S::kReady, false, 50s}, {"new", S::kReady, false, 5s},
                     {"s", S::kStarting, false, 1s}, {"busy", S::kAllocated, false, 1s},
                     {"full", S::kFull, false, 1s}},
       .remove = {"s", "new"}},
      {.desc = "warm 0 removes every idle instance, keeps busy",
       .warm = 0,
       .instances = {{"a", S::kReady}, {"b", S::kAllocated}},
       .remove = {"a"}},
      {.desc = "max lowered below busy: idle go, busy stay",
       .warm = 2, .max = 1,
       .instances = {{"a", S::kAllocated}, {"b", S::kFull}, {"c", S::kReady}},
       .remove = {"c"}},
      {.desc = "template change: surge creates current, outdated ready keep serving",
       .warm = 3,
       .instances = {{"o1", S::kReady, true}, {"o2", S::kReady, true}, {"o3", S::kReady, true}},
       .create = 1},
      {.desc = "template change: a current Ready replaces one outdated",
       .warm = 3,
       .instances = {{"o1", S::kReady, true, 30s}, {"o2", S::kReady, true, 20s},
                     {"o3", S::kReady, true, 10s}, {"n1", S::kReady}},
       .create = 1,
       .remove = {"o3"}},
      {.desc = "template change: busy outdated instances are kept",
       .warm = 1,
       .instances = {{"o1", S::kAllocated, true}, {"o2", S::kFull, true}, {"n", S::kReady}}},
      {.desc = "template change: outdated starting replaced at once",
       .warm = 1,
       .instances = {{"o", S::kStarting, true}},
       .create = 1,
       .remove = {"o"}},
      {.desc = "template change at maxInstances: give up an outdated idle one",
       .warm = 2, .max = 2,
       .instances = {{"o1", S::kReady, true, 30s}, {"o2", S::kReady, true, 10s}},
       .remove = {"o2"}},
      {.desc = "exited instances are forgotten and replaced",
       .warm = 2,
       .instances = {{"x", S::kExited}, {"a", S::kReady}},
       .create = 1,
       .forget = {"x"}},
      {.desc = "start timeout removes and replacement waits for the exit",
       .warm = 1, .max = 1,
       .instances = {{"slow", S::kStarting, false, 61s}},
       .remove = {"slow"}},
      {.desc = "start timeout with room: replaced at once",
       .warm = 1,
       .instances = {{"slow", S::kStarting, false, 61s}},
       .create = 1,
       .remove = {"slow"}},
      {.desc = "backoff holds creations after failures",
       .failures = {.consecutive = 3, .last = kNow - 1s},
       .create = 0,
       .backing_off = true},
      {.desc = "backoff over: creations resume",
       .failures = {.consecutive = 3, .last = kNow - 3s},
       .create = 3},
      {.desc = "creations bounded per pass: partial",
       .warm = 5, .limits = small,
       .create = 2, .partial = true},
      {.desc = "removals bounded per pass: partial",
       .warm = 0, .instances = {{"a", S::kReady, false, 2s}, {"b", S::kReady, false, 1s}},
       .limits = small,
       .remove = {"b"}, .partial = true},
      {.desc = "deletion drains idle now, busy later",
       .instances = {{"r", S::kReady}, {"s", S::kStarting}, {"b", S::kAllocated}, {"f", S::kFull}},
       .deleting = true,
       .remove = {"s", "r"}},
      {.desc = "forced deletion removes busy too",
       .instances = {{"r", S::kReady}, {"b", S::kAllocated}},
       .deleting = true, .force = true,
       .remove = {"r", "b"}},
      {.desc = "deletion finished when nothing is left",
       .instances = {{"x", S::kExited}},
       .deleting = true,
       .forget = {"x"}, .pool_gone = true},
      {.desc = "idle unhealthy: replaced",
       .warm = 1,
       .instances = {{"u", S::kUnhealthy}},
       .create = 1,
       .remove = {"u"}},
      {.desc = "idle unhealthy at maxInstances: replacement waits for its exit",
       .warm = 1, .max = 1,
       .instances = {{"u", S::kUnhealthy}},
       .remove = {"u"}},
      {.desc = "busy unhealthy: kept, counts as busy toward max, not toward warm",
       .warm = 1, .max = 2,
       .instances = {{"u", S::kUnhealthy, false, 10s, 2}},
       .create = 1},
      {.desc = "busy unhealthy survives scale-down and deletion",
       .warm = 0,
       .instances = {{"u", S::kUnhealthy, false, 10s, 1}, {"r", S::kReady}},
       .deleting = true,
       .remove = {"r"}},
      {.desc = "idle unhealthy goes when the pool is deleted",
       .instances = {{"u", S::kUnhealthy}},
       .deleting = true,
       .remove = {"u"}},
      {.desc = "deletion waits for terminating instances",
       .instances = {{"t", S::kTerminating}},
       .deleting = true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    std::vector<Instance> storage;
    Plan p = MakePlan(c, storage);
    EXPECT_EQ(p.create, c.create);
    EXPECT_EQ(Names(p.remove), c.remove);
    EXPECT_EQ(p.forget, c.forget);
    EXPECT_EQ(p.partial, c.partial);
    EXPECT_EQ(p.pool_gone, c.pool_gone);
    EXPECT_EQ(p.backing_off, c.backing_off);
  }
}

TEST(PlanReconcile, RemovalReasons) {
  std::vector<Instance> storage;
  Case c{.warm = 0, .instances = {{"slow", S::kStarting, false, 61s}, {"o", S::kReady, true}}};
  Plan p = MakePlan(c, storage);
  ASSERT_EQ(p.remove.size(), 2u);
  EXPECT_EQ(p.remove[0], (Removal{"slow", RemovalReason::kStartTimeout}));
  EXPECT_EQ(p.remove[1], (Removal{"o", RemovalReason::kOutdated}));
  Case u{.warm = 1, .instances = {{"u", S::kUnhealthy}}};
  p = MakePlan(u, storage);
  ASSERT_EQ(p.remove.size(), 1u);
  EXPECT_EQ(p.remove[0], (Removal{"u", RemovalReason::kUnhealthy}));
}

TEST(PlanReconcile, RequeuesAtTheNextStartDeadline) {
  std::vector<Instance> storage;
  Case c{.warm = 1, .instances = {{"s", S::kStarting, false, 10s}}};
  Plan p = MakePlan(c, storage);
  ASSERT_TRUE(p.requeue_at);
  EXPECT_EQ(*p.requeue_at, kNow + 50s);
}

TEST(PlanReconcile, RequeuesWhenBackoffEnds) {
  std::vector<Instance> storage;
  Case c{.failures = {.consecutive = 2, .last = kNow - 100ms}};
  Plan p = MakePlan(c, storage);
  EXPECT_TRUE(p.backing_off);
  ASSERT_TRUE(p.requeue_at);
  EXPECT_EQ(*p.requeue_at, kNow + 900ms);
}

TEST(QueuedDemand, OneInstancePerClientUntilCapacityIsLearned) {
  EXPECT_EQ(QueuedDemand(0, 0), 0);
  EXPECT_EQ(QueuedDemand(5, 0), 5);
  EXPECT_EQ(QueuedDemand(5, 3), 2);
  EXPECT_EQ(QueuedDemand(6, 3), 2);
  EXPECT_EQ(QueuedDemand(7, 3), 3);
}

TEST(PlanReconcile, QueuedDemandGrowsThePoolWithinMax) {
  PlanInput in;
  api::ServerPoolSpec spec;
  spec.warm = 1;
  spec.maxInstances = 4;
  Instance busy;
  busy.name = "a";
  busy.state = S::kAllocated;
  busy.template_hash = "cur";
  in.spec = &spec;
  in.template_hash = "cur";
  in.instances = {&busy};
  in.now = kNow;
  in.demand = 5;
  EXPECT_EQ(PlanReconcile(in).create, 3);  // 1 warm + 5 wanted, capped by max 4 - 1 busy
  in.demand = 1;
  EXPECT_EQ(PlanReconcile(in).create, 2);
}

TEST(Backoff, DoublesUpToTheCap) {
  Limits l;
  EXPECT_EQ(Backoff(0, l), 0ms);
  EXPECT_EQ(Backoff(1, l), 500ms);
  EXPECT_EQ(Backoff(2, l), 1000ms);
  EXPECT_EQ(Backoff(4, l), 4000ms);
  EXPECT_EQ(Backoff(40, l), 60'000ms);
}

// SPEC invariants over many shapes: total <= max after the plan's creations,
// busy instances are never removed unless forced, and when total < max the
// plan brings ready + starting up to warm (or as far as max allows).
TEST(PlanReconcile, InvariantsHoldOverManyShapes) {
  int checked = 0;
  for (int warm = 0; warm <= 4; ++warm) {
    for (int max = 1; max <= 6; ++max) {
      if (warm > max) continue;
      for (int ready = 0; ready <= 4; ++ready) {
        for (int busy = 0; busy <= 4; ++busy) {
          for (int outdated = 0; outdated <= 2; ++outdated) {
            Case c{.warm = warm, .max = max};
            for (int k = 0; k < ready; ++k) c.instances.push_back({"r" + std::to_string(k), S::kReady});
            for (int k = 0; k < busy; ++k) c.instances.push_back({"b" + std::to_string(k), S::kAllocated});
            for (int k = 0; k < outdated; ++k) c.instances.push_back({"o" + std::to_string(k), S::kReady, true});
            std::vector<Instance> storage;
            Plan p = MakePlan(c, storage);
            int total = ready + busy + outdated;
            SCOPED_TRACE(testing::Message() << "warm=" << warm << " max=" << max << " ready=" << ready
                                            << " busy=" << busy << " outdated=" << outdated);
            EXPECT_LE(total + p.create, std::max(max, total));
            for (const auto& r : p.remove) EXPECT_NE(r.name[0], 'b');
            // SPEC: ready + starting >= warm whenever total < maxInstances
            // (outdated Ready instances still serve until replaced).
            int idle_after = ready + outdated + p.create - static_cast<int>(p.remove.size());
            if (total < max) {
              EXPECT_GE(idle_after, std::min(warm, max - busy));
            }
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 500);
}

}  // namespace
}  // namespace mm::state
