#pragma once

// Everything the operator knows about one pool: its spec, its instances,
// and the indexes that keep allocation O(log n) with no scan over the pool.
// Not thread-safe: exactly one owner (matchmakerd's io thread) mutates it.

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "api/v1alpha1/types.h"
#include "operator/state/client_index.h"
#include "operator/state/instance.h"
#include "operator/state/plan.h"

namespace mm::state {

class PoolState {
 public:
  explicit PoolState(api::ServerPool pool);
  // Not copyable: the client index points into this object's instances.
  PoolState(const PoolState&) = delete;
  PoolState& operator=(const PoolState&) = delete;
  PoolState(PoolState&&) = default;  // instances keep their nodes
  PoolState& operator=(PoolState&&) = default;

  const api::ServerPool& pool() const { return pool_; }
  const std::string& name() const { return pool_.metadata.name; }
  const std::string& template_hash() const { return template_hash_; }
  // A new spec (apply). Instances keep their template hash; the planner
  // rolls the outdated idle ones.
  void SetPool(api::ServerPool pool);

  const Instance* Find(const std::string& name) const;
  // Every change below that shows in an instance's listing takes the next
  // number of `clock` as the instance's resource_version and is told to
  // `observer` (the instance after it; for kErased, the last word on one
  // that is gone). Quiet mutations (bookkeeping that no listing shows) are
  // neither numbered nor told.
  enum class Change { kAdded, kModified, kErased };
  using Observer = std::function<void(const Instance& instance, Change change)>;
  void SetObserver(std::uint64_t* clock, Observer observer);
  // Inserts or replaces by name, keeping every index true.
  void Upsert(Instance instance);
  void Erase(const std::string& name);
  bool SetState(const std::string& name, InstanceState state);
  // Changes one instance in place, keeping every index true, in O(log n)
  // whatever it holds; false when there is no such instance. `change` must
  // not rename it nor change its reservations (AddReservation and
  // RemoveReservation do).
  enum class Visibility { kShown, kQuiet };
  bool Mutate(const std::string& name, const std::function<void(Instance&)>& change,
              Visibility visibility = Visibility::kShown);

  // Allocation order: Allocated instances most filled first (pack players),
  // then Ready ones (current template first, longest Ready first). Neither
  // Unhealthy instances nor suspect ones (circuit open) are candidates.
  std::vector<const Instance*> Candidates(std::size_t max) const;
  // Full instances (breaker closed) last asked for a slot at least
  // `cooldown` ago, least recently asked first: O(log n + max).
  std::vector<const Instance*> FullToAsk(TimePoint now, std::chrono::milliseconds cooldown, std::size_t max) const;
  // Records a slot held by `client`; a Ready or Full instance becomes Allocated.
  // `metadata` (JSON text, "" for none) is the match metadata it was taken
  // with; RemoveReservation drops it with the slot.
  bool AddReservation(const std::string& name, const std::string& client, const std::string& metadata = "");
  bool RemoveReservation(const std::string& name, const std::string& client);
  // AddReservation for many clients of one instance (loading the journal):
  // the indexes change once, and one change is told. (client, metadata)
  // pairs; false when there is no such instance.
  bool AddReservations(const std::string& name, std::vector<std::pair<std::string, std::string>> clients);
  // Room in the client index for this many more clients (before a restart
  // loads them).
  void ReserveClients(std::size_t more) { clients_.Reserve(clients_.size() + more); }
  // The instance `client` holds a slot on, if any.
  const Instance* InstanceOf(const std::string& client) const;

  // Every instance, sorted by name (for listings).
  std::vector<const Instance*> Instances() const;
  // Every instance in no particular order (for planning: no sort).
  std::vector<const Instance*> InstancesUnordered() const;
  // Idle (Starting or Ready) instances not on the current template.
  int OutdatedIdle() const { return outdated_idle_; }
  std::size_t size() const { return instances_.size(); }
  api::InstanceCounts Counts() const;
  int Count(InstanceState s) const { return counts_[static_cast<int>(s)]; }

  // Counts and ordered sets by planning category, kept as instances change.
  const PlanIndex& plan_index() const { return plan_index_; }

  FailureHistory failures;
  bool deleting = false;
  bool force_delete = false;

 private:
  // Counts, allocation indexes and the outdated count (not the client index).
  void Changed(Instance& i, Change change = Change::kModified);
  void IndexShape(const Instance& i, int sign);
  void Index(const Instance& i);
  void Unindex(const Instance& i);
  void Unindex(const std::string& client, const Instance& i);  // i drops client
  // `i` holds `client` (between the caller's IndexShape -1 and +1): the id,
  // its metadata, the client index, Ready or Full becomes Allocated.
  void Hold(Instance& i, std::string client, std::string metadata);

  api::ServerPool pool_;
  std::string template_hash_;
  std::unordered_map<std::string, Instance> instances_;
  // The allocator's orders. Each entry views its instance's name and points
  // at it (instances_'s nodes do not move; an instance leaves these sets
  // before it changes or goes): no copy of the name per change, no lookup
  // per candidate. Names are unique, so the pointer never decides the order.
  std::set<std::tuple<int, std::string_view, const Instance*>> partial_;  // (-reservations, name)
  std::set<std::tuple<bool, TimePoint, std::string_view, const Instance*>> ready_;  // (outdated, ready_at, name)
  std::set<std::tuple<TimePoint, std::string_view, const Instance*>> full_;  // (asked_at, name)
  ClientIndex clients_;  // client -> instance; keys view ids in instances_
  PlanIndex plan_index_;
  int counts_[kInstanceStates] = {};
  int outdated_idle_ = 0;
  std::uint64_t* clock_ = nullptr;
  Observer observer_;
};

// Status as SPEC.md defines it, derived from state: counts by state,
// observedGeneration, and Ready / Progressing / Degraded conditions. A
// condition keeps its lastTransitionTime from `previous` while its status
// does not change.
api::ServerPoolStatus ComputeStatus(const PoolState& pool, const Plan& plan,
                                    const api::ServerPoolStatus& previous,
                                    TimePoint now, const Limits& limits);

std::string FormatTime(TimePoint t);  // RFC 3339, UTC, seconds

}  // namespace mm::state
