#include "operator/state/plan.h"

#include <algorithm>
#include <cmath>

namespace mm::state {
namespace {

using std::chrono::milliseconds;
using Key = PlanIndex::Key;

void Earliest(std::optional<TimePoint>& at, TimePoint t) {
  if (!at || t < *at) at = t;
}

// Newest first: reverse (created, name) order, so ties go by name, descending.
bool Newer(const Key* a, const Key* b) { return *a > *b; }

}  // namespace

PlanIndex::PlanIndex(std::string template_hash, const std::vector<const Instance*>& instances)
    : hash_(std::move(template_hash)) {
  for (const Instance* i : instances) Add(*i);
}

PlanIndex::Category PlanIndex::Of(const Instance& i) const {
  bool current = i.template_hash == hash_;
  switch (i.state) {
    case InstanceState::kStarting: return current ? kStartingCurrent : kStartingOutdated;
    case InstanceState::kReady: return current ? kReadyCurrent : kReadyOutdated;
    case InstanceState::kAllocated:
    case InstanceState::kFull: return kBusy;
    case InstanceState::kUnhealthy: return i.reservations.empty() ? kUnhealthy : kBusy;
    case InstanceState::kTerminating: return kTerminating;
    case InstanceState::kExited: return kExited;
  }
  return kExited;
}

std::string_view ToString(RemovalReason r) {
  switch (r) {
    case RemovalReason::kScaleDown: return "ScaleDown";
    case RemovalReason::kOutdated: return "Outdated";
    case RemovalReason::kStartTimeout: return "StartTimeout";
    case RemovalReason::kPoolDeleted: return "PoolDeleted";
    case RemovalReason::kUnhealthy: return "Unhealthy";
  }
  return "Unknown";
}

int QueuedDemand(int pending, int learned_capacity) {
  if (pending <= 0) return 0;
  int per_instance = std::max(1, learned_capacity);
  return (pending + per_instance - 1) / per_instance;
}

milliseconds Backoff(int consecutive, const Limits& limits) {
  if (consecutive <= 0) return milliseconds(0);
  double factor = std::pow(2.0, std::min(consecutive - 1, 30));
  auto delay = milliseconds(static_cast<std::int64_t>(
      std::min<double>(limits.backoff_base.count() * factor,
                       static_cast<double>(limits.backoff_max.count()))));
  return delay;
}

// Works from the index's counts and walks only the instances it acts on:
// exited ones (forgotten), timed-out starting ones, and removals, newest
// first, up to the per-pass bound.
Plan PlanReconcile(const PlanInput& in) {
  std::optional<PlanIndex> built;
  const PlanIndex* ix = in.index;
  if (!ix) ix = &built.emplace(in.template_hash, in.instances);
  using C = PlanIndex::Category;

  Plan plan;
  const auto& spec = *in.spec;
  const auto& limits = in.limits;
  auto timeout = milliseconds(spec.readiness.timeoutMs);

  for (const auto& [created, name] : ix->Of(C::kExited)) plan.forget.push_back(name);
  std::sort(plan.forget.begin(), plan.forget.end());

  // Starting instances past their deadline are the oldest of their sets.
  std::vector<const Key*> timed_out;
  int timed_out_cur = 0, timed_out_old = 0;
  for (C c : {C::kStartingCurrent, C::kStartingOutdated}) {
    for (const Key& k : ix->Of(c)) {
      if (in.now - k.first < timeout) {
        Earliest(plan.requeue_at, k.first + timeout);
        break;
      }
      timed_out.push_back(&k);
      ++(c == C::kStartingCurrent ? timed_out_cur : timed_out_old);
    }
  }
  const int starting_cur = ix->Size(C::kStartingCurrent) - timed_out_cur;
  const int starting_old = ix->Size(C::kStartingOutdated) - timed_out_old;
  const int ready_cur = ix->Size(C::kReadyCurrent), ready_old = ix->Size(C::kReadyOutdated);
  const int busy = ix->Size(C::kBusy), terminating = ix->Size(C::kTerminating);
  const int unhealthy = ix->Size(C::kUnhealthy);
  const int total = static_cast<int>(timed_out.size()) + starting_cur + starting_old + ready_cur + ready_old + busy +
                    unhealthy + terminating;

  std::vector<Removal> removals;
  const auto budget = static_cast<std::size_t>(std::max(0, limits.max_removals_per_pass));
  // Appends up to `n` of category `c`, newest first after skipping `skip`.
  auto remove = [&](C c, int skip, int n, RemovalReason why) {
    const auto& set = ix->Of(c);
    auto it = set.rbegin();
    for (int s = 0; s < skip && it != set.rend(); ++s) ++it;
    for (int k = 0; k < n && it != set.rend(); ++k, ++it) {
      if (removals.size() >= budget) {
        plan.partial = true;
        return;
      }
      removals.push_back({it->second, why});
    }
  };
  std::sort(timed_out.begin(), timed_out.end(), Newer);
  for (const Key* k : timed_out) {
    if (removals.size() >= budget) {
      plan.partial = true;
      break;
    }
    removals.push_back({k->second, RemovalReason::kStartTimeout});
  }
  // Unhealthy and serving nobody: replaced (deleting or not).
  remove(C::kUnhealthy, 0, unhealthy, RemovalReason::kUnhealthy);

  if (in.deleting) {
    remove(C::kStartingCurrent, 0, starting_cur, RemovalReason::kPoolDeleted);
    remove(C::kStartingOutdated, 0, starting_old, RemovalReason::kPoolDeleted);
    remove(C::kReadyCurrent, 0, ready_cur, RemovalReason::kPoolDeleted);
    remove(C::kReadyOutdated, 0, ready_old, RemovalReason::kPoolDeleted);
    if (in.force) remove(C::kBusy, 0, busy, RemovalReason::kPoolDeleted);
    plan.pool_gone = total == 0;
    plan.requeue_at.reset();
  } else {
    // Idle instances wanted: warm, or enough for minInstances, never past max.
    int room_for_idle = std::max(0, spec.maxInstances - busy - unhealthy - terminating);
    int want = std::min(std::max({spec.warm + in.demand, spec.minInstances - busy, 0}), room_for_idle);
    int cur = starting_cur + ready_cur;
    int old = ready_old;

    // Outdated starting instances serve nobody yet: replace them now.
    remove(C::kStartingOutdated, 0, starting_old, RemovalReason::kOutdated);
    // Outdated ready ones keep serving until current ones are Ready to
    // take over (no loss of warm capacity during a rollout).
    int old_remove = std::clamp(ready_cur + old - want, 0, old);
    // Current idle beyond want: starting before ready, newest first.
    int cur_surplus = std::max(0, cur - want);
    old -= old_remove;
    remove(C::kReadyOutdated, 0, old_remove, RemovalReason::kOutdated);
    int from_starting = std::min(cur_surplus, starting_cur);
    remove(C::kStartingCurrent, 0, from_starting, RemovalReason::kScaleDown);
    remove(C::kReadyCurrent, 0, cur_surplus - from_starting, RemovalReason::kScaleDown);
    cur -= cur_surplus;

    int need = std::max(0, want - cur);
    int surge = std::max(1, static_cast<int>(std::ceil(want * limits.surge_fraction)));
    // Instances being removed still count until they are gone, so that
    // total <= maxInstances holds at every moment.
    int headroom_max = spec.maxInstances - total;
    int headroom_surge = want + surge - cur - old;
    int create = std::max(0, std::min({need, headroom_max, headroom_surge}));
    if (create < need && old > 0 && headroom_max <= 0) {
      // At maxInstances mid-rollout: give up an outdated idle one to make room.
      int extra = std::min({need - create, old, surge});
      remove(C::kReadyOutdated, old_remove, extra, RemovalReason::kOutdated);
    }

    auto delay = Backoff(in.failures.consecutive, limits);
    if (create > 0 && delay.count() > 0 && in.now < in.failures.last + delay) {
      plan.backing_off = true;
      Earliest(plan.requeue_at, in.failures.last + delay);
      create = 0;
    }
    if (create > limits.max_creates_per_pass) {
      create = limits.max_creates_per_pass;
      plan.partial = true;
    }
    plan.create = create;
  }
  plan.remove = std::move(removals);
  return plan;
}

}  // namespace mm::state
