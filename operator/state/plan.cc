#include "operator/state/plan.h"

#include <algorithm>
#include <cmath>

namespace mm::state {
namespace {

using std::chrono::milliseconds;

// Orders the first `n` newest first (ties by name, so plans are
// deterministic); only what a plan removes is sorted.
void NewestFirst(std::vector<const Instance*>& v, std::size_t n) {
  n = std::min(n, v.size());
  std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end(),
                    [](const Instance* a, const Instance* b) {
                      if (a->created != b->created) return a->created > b->created;
                      return a->name > b->name;
                    });
}

void Earliest(std::optional<TimePoint>& at, TimePoint t) {
  if (!at || t < *at) at = t;
}

}  // namespace

std::string_view ToString(RemovalReason r) {
  switch (r) {
    case RemovalReason::kScaleDown: return "ScaleDown";
    case RemovalReason::kOutdated: return "Outdated";
    case RemovalReason::kStartTimeout: return "StartTimeout";
    case RemovalReason::kPoolDeleted: return "PoolDeleted";
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

Plan PlanReconcile(const PlanInput& in) {
  Plan plan;
  const auto& spec = *in.spec;
  const auto& limits = in.limits;
  auto timeout = milliseconds(spec.readiness.timeoutMs);

  int total = 0, busy = 0, terminating = 0;
  std::vector<const Instance*> starting_cur, starting_old, ready_cur, ready_old,
      busy_list, timed_out;
  for (const Instance* i : in.instances) {
    if (i->state == InstanceState::kExited) {
      plan.forget.push_back(i->name);
      continue;
    }
    ++total;
    bool current = i->template_hash == in.template_hash;
    switch (i->state) {
      case InstanceState::kTerminating:
        ++terminating;
        break;
      case InstanceState::kAllocated:
      case InstanceState::kFull:
        ++busy;
        busy_list.push_back(i);
        break;
      case InstanceState::kStarting:
        if (in.now - i->created >= timeout) {
          timed_out.push_back(i);
        } else {
          (current ? starting_cur : starting_old).push_back(i);
          Earliest(plan.requeue_at, i->created + timeout);
        }
        break;
      case InstanceState::kReady:
        (current ? ready_cur : ready_old).push_back(i);
        break;
      case InstanceState::kExited:
        break;
    }
  }

  std::vector<Removal> removals;
  auto remove = [&](std::vector<const Instance*>& from, std::size_t n, RemovalReason why) {
    NewestFirst(from, n);
    for (std::size_t k = 0; k < n && k < from.size(); ++k) {
      removals.push_back({from[k]->name, why});
    }
  };
  remove(timed_out, timed_out.size(), RemovalReason::kStartTimeout);

  if (in.deleting) {
    remove(starting_cur, starting_cur.size(), RemovalReason::kPoolDeleted);
    remove(starting_old, starting_old.size(), RemovalReason::kPoolDeleted);
    remove(ready_cur, ready_cur.size(), RemovalReason::kPoolDeleted);
    remove(ready_old, ready_old.size(), RemovalReason::kPoolDeleted);
    if (in.force) remove(busy_list, busy_list.size(), RemovalReason::kPoolDeleted);
    plan.pool_gone = total == 0;
    plan.requeue_at.reset();
  } else {
    // Idle instances wanted: warm, or enough for minInstances, never past max.
    int room_for_idle = std::max(0, spec.maxInstances - busy - terminating);
    int want = std::min(std::max({spec.warm + in.demand, spec.minInstances - busy, 0}), room_for_idle);
    int cur = static_cast<int>(starting_cur.size() + ready_cur.size());
    int old = static_cast<int>(ready_old.size());

    // Outdated starting instances serve nobody yet: replace them now.
    remove(starting_old, starting_old.size(), RemovalReason::kOutdated);
    // Outdated ready ones keep serving until current ones are Ready to
    // take over (no loss of warm capacity during a rollout).
    int old_remove = std::clamp(static_cast<int>(ready_cur.size()) + old - want, 0, old);
    // Current idle beyond want: starting before ready, newest first.
    int cur_surplus = std::max(0, cur - want);
    old -= old_remove;
    remove(ready_old, static_cast<std::size_t>(old_remove), RemovalReason::kOutdated);
    // Starting ones go before Ready ones.
    std::size_t from_starting = std::min(static_cast<std::size_t>(cur_surplus), starting_cur.size());
    remove(starting_cur, from_starting, RemovalReason::kScaleDown);
    remove(ready_cur, static_cast<std::size_t>(cur_surplus) - from_starting, RemovalReason::kScaleDown);
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
      NewestFirst(ready_old, ready_old.size());
      std::vector<const Instance*> rest(ready_old.begin() + old_remove, ready_old.end());
      int extra = std::min({need - create, old, surge});
      remove(rest, static_cast<std::size_t>(extra), RemovalReason::kOutdated);
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

  if (static_cast<int>(removals.size()) > limits.max_removals_per_pass) {
    removals.resize(static_cast<std::size_t>(limits.max_removals_per_pass));
    plan.partial = true;
  }
  plan.remove = std::move(removals);
  return plan;
}

}  // namespace mm::state
