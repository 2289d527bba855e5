// Cost of one reconcile pass (PlanReconcile + ComputeStatus) on pools of
// 100, 1,000 and 10,000 instances with nothing to change: the pure core the
// controller runs per event, measured without I/O. The 100-instance pool is
// the baseline of the ratio.
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

double PassMicros(int n) {
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
  const int passes = std::max(20, 200000 / n);
  int creates = 0;
  auto t0 = steady_clock::now();
  for (int p = 0; p < passes; ++p) {
    mm::state::PlanInput in;
    in.spec = &ps.pool().spec;
    in.template_hash = ps.template_hash();
    in.instances = ps.InstancesUnordered();
    in.now = now;
    in.limits = limits;
    auto plan = mm::state::PlanReconcile(in);
    creates += plan.create + static_cast<int>(plan.remove.size());
    status = mm::state::ComputeStatus(ps, plan, status, now, limits);
  }
  auto us = duration<double, std::micro>(steady_clock::now() - t0).count() / passes;
  if (creates != 0) std::printf("unexpected actions: %d\n", creates);
  return us;
}

}  // namespace

int main() {
  std::printf("%-12s %14s %10s\n", "instances", "us per pass", "ratio");
  double base = PassMicros(100);
  for (int n : {100, 1000, 10000}) {
    double us = n == 100 ? base : PassMicros(n);
    std::printf("%-12d %14.1f %9.1fx\n", n, us, us / base);
  }
  return 0;
}
