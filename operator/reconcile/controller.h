#pragma once

// The operator's control loop: level-triggered, one work queue with dedup,
// requeue at the plan's deadline or at once when a plan was partial.
// observe (PoolState) -> PlanReconcile -> apply through the Backend.
// Pools and instances are journaled in the Store; on start the Controller
// recovers them and adopts what still runs.
//
// Thread-safety: every method runs on the io_context's single thread.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/v1alpha1/types.h"
#include "operator/state/instance.h"
#include "operator/state/plan.h"
#include "operator/state/pool_state.h"

namespace boost::asio {
class io_context;
}
namespace mm::store {
class Store;
struct Op;
}
namespace mm::backend {
class Backend;
struct Placement;
}
namespace mm::metrics {
class Metrics;
}

namespace mm::reconcile {

struct ControllerOptions {
  state::Limits limits;
  std::chrono::milliseconds resync{10'000};
  std::chrono::milliseconds probe_timeout{1'000};
  int max_creates_in_flight = 16;
  std::size_t events_per_pool = 30;
};

enum class ApplyOutcome { kCreated, kUpdated, kUnchanged, kConflict, kError };

struct Event {
  std::string time;
  std::string type;  // Normal | Warning
  std::string reason;
  std::string message;
};

class Controller {
 public:
  Controller(boost::asio::io_context& io, store::Store& store, backend::Backend& backend,
             metrics::Metrics* metrics, ControllerOptions options = {});
  ~Controller();

  // Recovers pools and instances from the store, adopts running instances,
  // and starts reconciling.
  void Start();
  void Stop();

  using ApplyDone = std::function<void(ApplyOutcome, api::ServerPool, std::string error)>;
  // Creates or replaces a pool (durable before `done`). Bumps generation
  // when the spec changed.
  void Apply(api::ServerPool desired, ApplyDone done);
  // Marks a pool for deletion (durable before `done`): idle instances go
  // now, busy ones when they exit, all of them with `force`.
  using DeleteDone = std::function<void(std::optional<api::ServerPool>, std::string error)>;
  void Delete(const std::string& name, bool force, DeleteDone done);

  std::vector<api::ServerPool> List() const;
  std::optional<api::ServerPool> Get(const std::string& name) const;
  std::optional<std::vector<state::Instance>> Instances(const std::string& name) const;
  std::vector<Event> Events(const std::string& name) const;
  bool started() const { return started_; }

  // For the allocator (io thread): the live pool state, nullptr if unknown.
  state::PoolState* Find(const std::string& name);
  void Enqueue(const std::string& name);
  // Called (io thread) when an instance of `pool` becomes Ready.
  void OnInstanceReady(std::function<void(const std::string& pool)> fn);
  // Extra instances `pool` needs for queued clients (beyond warm).
  void SetDemand(std::function<int(const std::string& pool)> fn);
  // Journals `instance` as it is now in its pool (without its reservations).
  void Persist(const state::Instance& instance, std::function<void(std::optional<std::string>)> done = nullptr);
  // Journals one reservation (added or removed); `done` runs on the io
  // thread once it is durable.
  void PersistReservation(const std::string& pool, const std::string& instance, const std::string& client,
                          bool add, std::function<void(std::optional<std::string>)> done = nullptr);

 private:
  struct Entry;
  void FinishStart(std::map<std::string, backend::Placement> adopted, std::size_t known_count);
  void Drain();
  void Reconcile(const std::string& name);
  void Create(Entry& entry, int count);
  void Probe(const std::string& pool, const std::string& name);
  void OnExit(const std::string& pool, const std::string& name, const std::string& message);
  void Record(Entry& entry, std::string type, std::string reason, std::string message);
  void PersistPool(const Entry& entry, std::function<void(std::optional<std::string>)> done);
  // Commits to the store; logs a failure; `done` (if any) on the io thread.
  void Commit(std::vector<store::Op> ops, std::function<void(std::optional<std::string>)> done);
  api::ServerPool View(const Entry& entry) const;
  std::string NewInstanceName(const Entry& entry);
  void Resync();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool started_ = false;
};

}  // namespace mm::reconcile
