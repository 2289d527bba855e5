// Cost of one reconcile pass (PlanReconcile + ComputeStatus) as the
// controller runs it, on pools of 100 to 100,000 instances (half Ready, half
// Allocated):
//   - idle: nothing changed since the last pass;
//   - event: one instance changed before the pass (a client took a slot on a
//     Ready instance and another left), as after an allocation;
// The 100-instance pool is the baseline of the ratios.
//
//   build/bin/reconcile_bench

#include <chrono>
#include <cstdio>

#include "operator/state/plan.h"
#include "operator/state/pool_state.h"

namespace {

using namespace std::chrono;
using mm::state::Instance;
using mm::state::InstanceState;

struct Figures {
  double idle_us, event_us;
};

Figures Measure(int n) {
  mm::api::ServerPool pool;
  pool.metadata.name = "big";
  pool.spec.warm = n / 2;
  pool.spec.maxInstances = n;
  pool.spec.templ.command = {"x"};
  pool.spec.templ.ports = {{"game", 7777, "udp"}};
  mm::state::PoolState ps(pool);
  auto now = mm::state::Clock::now();
  for (int i = 0; i < n; ++i) {
    Instance inst;
    inst.pool = "big";
    inst.name = "big-" + std::to_string(i);
    inst.template_hash = ps.template_hash();
    inst.state = i < n / 2 ? InstanceState::kReady : InstanceState::kAllocated;
    inst.created = now - seconds(60);
    inst.ready_at = now - seconds(59);
    if (inst.state == InstanceState::kAllocated) inst.reservations = {"c" + std::to_string(i)};
    ps.Upsert(inst);
  }
  mm::state::Limits limits;
  mm::api::ServerPoolStatus status;
  int actions = 0;
  auto pass = [&] {
    mm::state::PlanInput in;
    in.spec = &ps.pool().spec;
    in.template_hash = ps.template_hash();
    in.index = &ps.plan_index();
    in.now = now;
    in.limits = limits;
    auto plan = mm::state::PlanReconcile(in);
    actions += plan.create + static_cast<int>(plan.remove.size());
    status = mm::state::ComputeStatus(ps, plan, status, now, limits);
  };
  auto time = [&](int passes, auto&& body) {
    auto t0 = steady_clock::now();
    for (int p = 0; p < passes; ++p) body(p);
    return duration<double, std::micro>(steady_clock::now() - t0).count() / passes;
  };
  Figures f{};
  f.idle_us = time(20000, [&](int) { pass(); });
  f.event_us = time(20000, [&](int p) {
    // One slot taken on a Ready instance, then given back: the pool's shape
    // changes (Ready -> Allocated) and the pass runs.
    std::string name = "big-" + std::to_string(p % (n / 2));
    ps.AddReservation(name, "bench");
    pass();
    ps.RemoveReservation(name, "bench");
    ps.SetState(name, InstanceState::kReady);
  });
  if (actions != 0) std::printf("unexpected actions: %d\n", actions);
  return f;
}

}  // namespace

int main() {
  std::printf("%-10s %14s %14s %12s %12s\n", "instances", "idle us/pass", "event us/pass", "idle ratio",
              "event ratio");
  Figures base = Measure(100);
  for (int n : {100, 1000, 10000, 100000}) {
    Figures f = n == 100 ? base : Measure(n);
    std::printf("%-10d %14.2f %14.2f %11.1fx %11.1fx\n", n, f.idle_us, f.event_us, f.idle_us / base.idle_us,
                f.event_us / base.event_us);
  }
  return 0;
}
