#include "operator/state/pool_state.h"

#include <gtest/gtest.h>

#include <random>

namespace mm::state {
namespace {

using namespace std::chrono_literals;
using S = InstanceState;
const TimePoint kT0 = TimePoint{} + 1000h;

api::ServerPool Pool(int warm = 2) {
  api::ServerPool p;
  p.metadata.name = "eu";
  p.metadata.generation = 3;
  p.spec.warm = warm;
  p.spec.maxInstances = 10;
  p.spec.templ.command = {"x"};
  p.spec.templ.ports = {{"game", 7777, "udp"}};
  return p;
}

Instance Inst(const PoolState& ps, std::string name, S state, TimePoint ready_at = kT0) {
  Instance i;
  i.pool = ps.name();
  i.name = std::move(name);
  i.state = state;
  i.template_hash = ps.template_hash();
  i.ready_at = ready_at;
  return i;
}

std::vector<std::string> Names(const std::vector<const Instance*>& v) {
  std::vector<std::string> out;
  for (auto* i : v) out.push_back(i->name);
  return out;
}

TEST(PoolState, CandidatesPackPlayersThenLongestReady) {
  PoolState ps(Pool());
  ps.Upsert(Inst(ps, "r-late", S::kReady, kT0 + 5s));
  ps.Upsert(Inst(ps, "r-early", S::kReady, kT0));
  ps.Upsert(Inst(ps, "a1", S::kReady));
  ps.Upsert(Inst(ps, "a2", S::kReady));
  ps.Upsert(Inst(ps, "full", S::kFull));
  ps.Upsert(Inst(ps, "starting", S::kStarting));
  ASSERT_TRUE(ps.AddReservation("a1", "c1"));
  ASSERT_TRUE(ps.AddReservation("a2", "c2"));
  ASSERT_TRUE(ps.AddReservation("a2", "c3"));
  EXPECT_EQ(Names(ps.Candidates(10)),
            (std::vector<std::string>{"a2", "a1", "r-early", "r-late"}));
  EXPECT_EQ(Names(ps.Candidates(1)), (std::vector<std::string>{"a2"}));
}

TEST(PoolState, OutdatedReadyInstancesComeLast) {
  PoolState ps(Pool());
  ps.Upsert(Inst(ps, "old", S::kReady, kT0));
  auto p = Pool();
  p.spec.templ.args = {"--v2"};
  ps.SetPool(p);
  ps.Upsert(Inst(ps, "new", S::kReady, kT0 + 10s));
  EXPECT_EQ(Names(ps.Candidates(10)), (std::vector<std::string>{"new", "old"}));
}

TEST(PoolState, CountsAndClientIndexFollowEveryChange) {
  PoolState ps(Pool());
  ps.Upsert(Inst(ps, "a", S::kStarting));
  ps.Upsert(Inst(ps, "b", S::kReady));
  EXPECT_EQ(ps.Counts(), (api::InstanceCounts{1, 1, 0, 0, 0}));
  ps.SetState("a", S::kReady);
  ps.AddReservation("b", "alice");
  EXPECT_EQ(ps.Counts(), (api::InstanceCounts{0, 1, 1, 0, 0}));
  ASSERT_NE(ps.InstanceOf("alice"), nullptr);
  EXPECT_EQ(ps.InstanceOf("alice")->name, "b");
  ps.SetState("b", S::kFull);
  EXPECT_EQ(ps.Counts(), (api::InstanceCounts{0, 1, 0, 1, 0}));
  EXPECT_EQ(Names(ps.Candidates(10)), (std::vector<std::string>{"a"}));
  ps.Erase("b");
  EXPECT_EQ(ps.InstanceOf("alice"), nullptr);
  EXPECT_EQ(ps.Counts(), (api::InstanceCounts{0, 1, 0, 0, 0}));
  EXPECT_EQ(ps.size(), 1u);
}

TEST(ComputeStatus, ConditionsFollowState) {
  PoolState ps(Pool(2));
  Limits limits;
  Plan plan;
  plan.create = 2;
  auto s = ComputeStatus(ps, plan, {}, kT0, limits);
  EXPECT_EQ(s.observedGeneration, 3);
  ASSERT_EQ(s.conditions.size(), 3u);
  EXPECT_EQ(s.conditions[0].type, "Ready");
  EXPECT_EQ(s.conditions[0].status, "False");
  EXPECT_EQ(s.conditions[0].reason, "WarmingUp");
  EXPECT_EQ(s.conditions[1].status, "True");  // Progressing
  EXPECT_EQ(s.conditions[2].status, "False");  // Degraded

  ps.Upsert(Inst(ps, "a", S::kReady));
  ps.Upsert(Inst(ps, "b", S::kReady));
  auto s2 = ComputeStatus(ps, Plan{}, s, kT0 + 5s, limits);
  EXPECT_EQ(s2.conditions[0].status, "True");
  EXPECT_EQ(s2.conditions[0].reason, "WarmPoolFull");
  EXPECT_EQ(s2.conditions[0].lastTransitionTime, FormatTime(kT0 + 5s));
  EXPECT_EQ(s2.conditions[1].reason, "Stable");
  // Degraded keeps its transition time while it stays False.
  EXPECT_EQ(s2.conditions[2].lastTransitionTime, FormatTime(kT0));

  ps.failures = {3, kT0, "exited with code 1"};
  auto s3 = ComputeStatus(ps, Plan{}, s2, kT0 + 6s, limits);
  EXPECT_EQ(s3.conditions[2].status, "True");
  EXPECT_EQ(s3.conditions[2].reason, "StartFailures");
  EXPECT_NE(s3.conditions[2].message.find("exited with code 1"), std::string::npos);
}

TEST(FormatTime, Rfc3339Utc) {
  EXPECT_EQ(FormatTime(TimePoint{} + 86400s + 61s), "1970-01-02T00:01:01Z");
}

}  // namespace
}  // namespace mm::state

#include "operator/state/instance_codec.h"

namespace mm::state {
namespace {

TEST(InstanceCodec, RoundTripIsExact) {
  Instance i;
  i.pool = "eu";
  i.name = "eu-ab12c";
  i.template_hash = "0123456789";
  i.state = InstanceState::kAllocated;
  i.reservations = {"alice", "b/../c"};
  i.backend_id = "1234:5678";
  i.host = "127.0.0.1";
  i.control_port = 40000;
  i.ports = {{"game", 40001}};
  i.created = kT0;
  i.ready_at = kT0 + 1500ms;
  i.failed = true;
  i.message = "x";
  auto back = InstanceFromJson(ToJson(i));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, i);
  EXPECT_FALSE(InstanceFromJson(boost::json::value{{"pool", "x"}}));
}

// Loading many clients of one instance at once leaves the same state as
// adding them one by one: reservations, metadata, state, indexes.
TEST(PoolState, AddReservationsEqualsOneByOne) {
  PoolState bulk(Pool()), single(Pool());
  for (auto* ps : {&bulk, &single}) {
    ps->Upsert(Inst(*ps, "a", S::kReady));
    ps->Upsert(Inst(*ps, "b", S::kReady, kT0 + 1s));
    ps->Upsert(Inst(*ps, "f", S::kFull));
  }
  std::vector<std::pair<std::string, std::string>> clients = {{"c1", ""}, {"c2", R"({"map":"x"})"}, {"c3", ""}};
  for (const auto& [c, m] : clients) ASSERT_TRUE(single.AddReservation("b", c, m));
  ASSERT_TRUE(single.AddReservation("f", "c9"));
  ASSERT_TRUE(bulk.AddReservations("b", clients));
  ASSERT_TRUE(bulk.AddReservations("f", {{"c9", ""}}));
  EXPECT_TRUE(bulk.AddReservations("a", {}));
  EXPECT_FALSE(bulk.AddReservations("nope", clients));
  for (const auto* name : {"a", "b", "f"}) EXPECT_EQ(*bulk.Find(name), *single.Find(name)) << name;
  EXPECT_EQ(bulk.Counts(), single.Counts());
  EXPECT_EQ(Names(bulk.Candidates(10)), Names(single.Candidates(10)));
  EXPECT_EQ(Names(bulk.Candidates(10)), (std::vector<std::string>{"b", "f", "a"}));
  for (const auto* c : {"c1", "c2", "c3", "c9"}) {
    ASSERT_NE(bulk.InstanceOf(c), nullptr) << c;
    EXPECT_EQ(bulk.InstanceOf(c)->name, single.InstanceOf(c)->name) << c;
  }
}

// A listing shows how many clients hold a slot, and at most the first
// max_reservations of their ids, with the metadata of those only.
TEST(InstanceCodec, ListedReservationsAreCappedAndCounted) {
  Instance i;
  i.pool = "eu";
  i.name = "eu-ab12c";
  i.state = InstanceState::kAllocated;
  for (int c = 0; c < 1500; ++c) i.reservations.insert("client-" + std::to_string(10000 + c));
  i.metadata["client-10001"] = R"({"map":"dust"})";
  i.metadata["client-11400"] = R"({"map":"nuke"})";
  auto o = ToJson(i, true, 1000).as_object();
  EXPECT_EQ(o.at("clients").as_int64(), 1500);
  const auto& ids = o.at("reservations").as_array();
  ASSERT_EQ(ids.size(), 1000u);
  EXPECT_EQ(ids.front().as_string(), "client-10000");
  EXPECT_EQ(ids.back().as_string(), "client-10999");
  const auto& meta = o.at("metadata").as_object();
  EXPECT_EQ(meta.size(), 1u);
  EXPECT_EQ(meta.at("client-10001").at("map").as_string(), "dust");
  EXPECT_EQ(ToJson(i).as_object().at("reservations").as_array().size(), 1500u);  // no cap asked
  auto stored = ToJson(i, false).as_object();  // the store's record: no ids, no count
  EXPECT_TRUE(stored.at("reservations").as_array().empty());
  EXPECT_FALSE(stored.contains("clients"));
}

// PoolState keeps the planner's index as instances change: planning from it
// gives the same plan as planning from the list of every instance, after any
// sequence of changes (a deterministic pseudo-random walk of 3,000 steps).
TEST(PoolState, PlanIndexFollowsEveryChange) {
  PoolState ps(Pool(3));
  std::mt19937 rng(7);
  int compared = 0, acting = 0;
  for (int step = 0; step < 3000; ++step) {
    std::string name = "eu-" + std::to_string(rng() % 40);
    const Instance* cur = ps.Find(name);
    switch (rng() % 7) {
      case 0:
      case 1: {
        Instance i = Inst(ps, name, static_cast<S>(rng() % 6));
        i.created = kT0 + std::chrono::seconds(rng() % 100);
        if (rng() % 4 == 0) i.template_hash = "outdated00";
        ps.Upsert(i);
        break;
      }
      case 2:
        if (cur) ps.SetState(name, static_cast<S>(rng() % 6));
        break;
      case 3:
        if (cur) ps.AddReservation(name, "c" + std::to_string(rng() % 50));
        break;
      case 4:
        if (cur && !cur->reservations.empty()) ps.RemoveReservation(name, *cur->reservations.begin());
        break;
      case 5:
        ps.Erase(name);
        break;
      case 6:
        if (rng() % 10 == 0) {
          auto p = Pool(3);
          p.spec.templ.args = {std::to_string(rng() % 3)};
          ps.SetPool(p);
        }
        break;
    }
    PlanInput in;
    in.spec = &ps.pool().spec;
    in.template_hash = ps.template_hash();
    in.now = kT0 + std::chrono::seconds(rng() % 200);
    in.limits.max_removals_per_pass = 4;
    in.deleting = rng() % 10 == 0;
    in.force = rng() % 2 == 0;
    in.index = &ps.plan_index();
    Plan a = PlanReconcile(in);
    in.index = nullptr;
    in.instances = ps.InstancesUnordered();
    Plan b = PlanReconcile(in);
    SCOPED_TRACE("step " + std::to_string(step));
    ASSERT_EQ(a.create, b.create);
    ASSERT_EQ(a.remove, b.remove);
    ASSERT_EQ(a.forget, b.forget);
    ASSERT_EQ(a.partial, b.partial);
    ASSERT_EQ(a.requeue_at, b.requeue_at);
    ASSERT_EQ(a.pool_gone, b.pool_gone);
    ++compared;
    acting += !a.remove.empty() || a.create > 0;
  }
  EXPECT_EQ(compared, 3000);
  EXPECT_GT(acting, 300) << "the walk must reach states where the plan acts";
}

// The client index (ids viewed in the instances' own sets) stays true to the
// instances through any sequence of changes, a client held twice included:
// InstanceOf names an instance that holds the client, and the one when a
// single instance does (a deterministic pseudo-random walk of 4,000 steps;
// under ASan it also shows that no entry views a freed id).
TEST(PoolState, ClientIndexFollowsEveryChange) {
  PoolState ps(Pool(3));
  std::mt19937 rng(11);
  auto client = [&] { return "client-with-a-long-id-" + std::to_string(rng() % 60); };
  int found = 0;
  for (int step = 0; step < 4000; ++step) {
    std::string name = "eu-" + std::to_string(rng() % 8);
    const Instance* cur = ps.Find(name);
    switch (rng() % 7) {
      case 6: {  // many at once, as a restart loads them
        std::vector<std::pair<std::string, std::string>> batch;
        for (int k = rng() % 4; k > 0; --k) batch.emplace_back(client(), "");
        ps.AddReservations(name, std::move(batch));
        break;
      }
      case 0: {  // replace, keeping, dropping or changing what it holds
        Instance i = cur ? *cur : Inst(ps, name, S::kReady);
        if (rng() % 2) i.reservations.clear();
        for (int k = rng() % 3; k > 0; --k) i.reservations.insert(client());
        ps.Upsert(i);
        break;
      }
      case 1:
      case 2:
        ps.AddReservation(name, client());
        break;
      case 3:
        if (cur && !cur->reservations.empty()) {
          auto it = cur->reservations.begin();
          std::advance(it, rng() % cur->reservations.size());
          ps.RemoveReservation(name, *it);  // aliases the id it removes
        }
        break;
      case 4:
        if (rng() % 3 == 0) ps.Erase(name);
        break;
      case 5:
        if (rng() % 10 == 0) {
          auto p = Pool(3);
          p.spec.templ.args = {std::to_string(rng() % 3)};
          ps.SetPool(p);
        }
        break;
    }
    SCOPED_TRACE("step " + std::to_string(step));
    for (int c = 0; c < 60; ++c) {
      std::string id = "client-with-a-long-id-" + std::to_string(c);
      std::vector<const Instance*> holders;
      for (const Instance* i : ps.InstancesUnordered()) {
        if (i->reservations.contains(id)) holders.push_back(i);
      }
      const Instance* got = ps.InstanceOf(id);
      if (got) {
        ASSERT_TRUE(got->reservations.contains(id)) << id << " indexed on " << got->name;
        ++found;
      }
      if (holders.size() == 1) {
        ASSERT_EQ(got, holders[0]) << id;
      } else if (holders.empty()) {
        ASSERT_EQ(got, nullptr) << id;
      }
    }
  }
  EXPECT_GT(found, 10000) << "the walk must hold clients";
}

}  // namespace
}  // namespace mm::state
