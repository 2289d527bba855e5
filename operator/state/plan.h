#pragma once

// PlanReconcile: what to do to move one pool toward its spec. A pure
// function of (spec, observed instances, now, limits), as Agones'
// computeReconciliationAction: the loop observes, plans, applies, and
// requeues at once when the plan was cut short by a per-pass bound.

#include <array>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "api/v1alpha1/types.h"
#include "operator/state/instance.h"

namespace mm::state {

struct Limits {
  int max_creates_per_pass = 16;
  int max_removals_per_pass = 16;
  double surge_fraction = 0.25;  // rollout may exceed warm by this (at least 1)
  std::chrono::milliseconds backoff_base{500};
  std::chrono::milliseconds backoff_max{60'000};
  int degraded_after_failures = 3;
};

// Consecutive start failures of a pool; reset when an instance becomes Ready.
struct FailureHistory {
  int consecutive = 0;
  TimePoint last{};
  std::string last_message;
  bool operator==(const FailureHistory&) const = default;
};

// What PlanReconcile reads of a pool's instances: for each planning
// category, the instances ordered by (created, name). PoolState keeps one
// up to date as instances change (O(log n) per change), so a pass costs
// O(log n) per instance it acts on, nothing per unchanged instance.
class PlanIndex {
 public:
  // kUnhealthy: Unhealthy and holding no reservation (an Unhealthy one
  // that holds some is kBusy).
  enum Category {
    kStartingCurrent, kStartingOutdated, kReadyCurrent, kReadyOutdated, kBusy, kUnhealthy, kTerminating, kExited
  };
  static constexpr int kCategories = 8;
  using Key = std::pair<TimePoint, std::string>;  // (created, name)

  explicit PlanIndex(std::string template_hash = "") : hash_(std::move(template_hash)) {}
  PlanIndex(std::string template_hash, const std::vector<const Instance*>& instances);

  // Add/Remove take the instance as it was indexed (same state, template,
  // reservations held or not, created, name).
  void Add(const Instance& i) { sets_[Of(i)].emplace(i.created, i.name); }
  void Remove(const Instance& i) { sets_[Of(i)].erase({i.created, i.name}); }
  const std::set<Key>& Of(Category c) const { return sets_[c]; }
  int Size(Category c) const { return static_cast<int>(sets_[c].size()); }
  const std::string& template_hash() const { return hash_; }

 private:
  Category Of(const Instance& i) const;
  std::string hash_;
  std::array<std::set<Key>, kCategories> sets_;
};

struct PlanInput {
  const api::ServerPoolSpec* spec = nullptr;
  std::string template_hash;  // of spec->templ
  // The pool's index (PoolState::plan_index()); when null, one is built from
  // `instances` (tests, tools: O(n)).
  const PlanIndex* index = nullptr;
  std::vector<const Instance*> instances;
  TimePoint now{};
  bool deleting = false;  // the pool was deleted: drain it
  bool force = false;     // with deleting: busy instances go too
  FailureHistory failures;
  Limits limits;
  int demand = 0;  // instances wanted beyond warm for queued clients
};

enum class RemovalReason { kScaleDown, kOutdated, kStartTimeout, kPoolDeleted, kUnhealthy };
std::string_view ToString(RemovalReason r);

struct Removal {
  std::string name;
  RemovalReason reason;
  bool operator==(const Removal&) const = default;
};

struct Plan {
  int create = 0;                   // new instances of the current template
  std::vector<Removal> remove;      // running instances to stop
  std::vector<std::string> forget;  // exited instances to drop from state
  bool partial = false;             // a per-pass bound cut the plan: requeue now
  std::optional<TimePoint> requeue_at;  // backoff end or next start deadline
  bool pool_gone = false;           // deleting and no instance left
  bool backing_off = false;         // creations held back by failure backoff
};

Plan PlanReconcile(const PlanInput& in);

// Instances wanted for `pending` queued clients when instances of the pool
// were seen to hold `learned_capacity` clients (0: not learned yet, so one
// instance per client, the safe side).
int QueuedDemand(int pending, int learned_capacity);

// Delay before the next creation after `consecutive` failures (0 when none).
std::chrono::milliseconds Backoff(int consecutive, const Limits& limits);

}  // namespace mm::state
