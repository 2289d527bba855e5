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
  // Instances of every pool together (0: no cap): creations stop there.
  int max_instances = 0;
  // Creations per second per pool, with a burst (0: no limit): one PUT of
  // warm: 10000 does not start thousands of instances a second.
  double creates_per_second = 0;
  int create_burst = 50;
  // Liveness probes reuse one connection per instance; false opens one per
  // probe (the cost bench/probe_bench.cc compares against).
  bool probe_keep_alive = true;
  std::size_t events_per_pool = 30;
};

enum class ApplyOutcome { kCreated, kUpdated, kUnchanged, kConflict, kError };

struct Event {
  std::string time;
  std::string type;  // Normal | Warning
  std::string reason;
  std::string message;
};

// A change to a pool or an instance, numbered, as watches stream it.
struct Change {
  enum class Type { kAdded, kModified, kDeleted };
  Type type = Type::kModified;
  std::uint64_t resource_version = 0;
  std::string pool;                            // the pool, or the instance's pool
  std::optional<api::ServerPool> pool_object;  // a pool's change (with its status)
  // An instance's change: the instance after it, valid during the call only
  // (not copied: one holding a million ids changes at every allocation).
  const state::Instance* instance = nullptr;
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
  // Every pool's state, by name, without copying its spec and status (the
  // allocator asks this on every request).
  std::vector<const state::PoolState*> Pools() const;
  std::optional<api::ServerPool> Get(const std::string& name) const;
  // The pool's instances by name, pointing into the state: valid until the
  // state next changes (use them at once, on the io thread). Not copies: an
  // instance may hold a million client ids.
  std::optional<std::vector<const state::Instance*>> Instances(const std::string& name) const;
  std::vector<Event> Events(const std::string& name) const;
  // Every pool and instance change from now on, numbered (null: none, and
  // nothing is copied for it). Runs on the io thread.
  void OnChange(std::function<void(const Change&)> fn);
  // The number of the newest change: objects carry the number of their
  // last one as metadata.resourceVersion. Never reused, across restarts.
  std::uint64_t resource_version() const;
  bool started() const { return started_; }

  // For the allocator (io thread): the live pool state to read, nullptr if
  // unknown. Only the controller writes it, through the verbs below.
  const state::PoolState* Find(const std::string& name) const;
  void Enqueue(const std::string& name);
  // Called (io thread) when an instance of `pool` becomes Ready.
  void OnInstanceReady(std::function<void(const std::string& pool)> fn);
  // Extra instances `pool` needs for queued clients (beyond warm).
  void SetDemand(std::function<int(const std::string& pool)> fn);

  // The pool-state verbs. Each changes memory at once (the game server
  // already acted) and journals; `done` (io thread) reports durability, and
  // only a nullopt may be acknowledged to a client. A write that failed is
  // kept and retried until it lands (see Journal).
  using Durable = std::function<void(std::optional<std::string> error)>;
  // Before asking `instance` for a slot for `client`: records the intent
  // (see store::IntentLog). The intents recorded in one turn of the io loop
  // are written together, by a handler posted after them; `then` runs (io
  // thread) once they are on disk (nullopt), or with the error, and then
  // the handshake must not start. `metadata`: the match metadata (JSON
  // object text, "" for none) sent with the handshake; kept with the intent
  // and then the reservation.
  using Intended = std::function<void(std::optional<std::string> error)>;
  void Intend(const std::string& pool, const std::string& instance, const std::string& client,
              const std::string& metadata, Intended then);
  // The handshake ended without a slot (403, no answer): the intent goes.
  void Settle(const std::string& pool, const std::string& instance, const std::string& client);
  // `client` holds a slot on `instance` (the server answered 200); the
  // intent goes once the reservation is durable.
  void Reserve(const std::string& pool, const std::string& instance, const std::string& client,
               const std::string& metadata, Durable done);
  // `client` no longer holds its slot (the server answered 404).
  void Release(const std::string& pool, const std::string& instance, const std::string& client, Durable done);
  // The instance answered 403: Full, asked again (FullToAsk) no sooner than
  // reservation.cooldownMs from now.
  void MarkFull(const std::string& pool, const std::string& instance);
  // A Full instance is being asked for a slot again (its cooldown restarts).
  void Asking(const std::string& pool, const std::string& instance);
  // A handshake got no answer: the instance's circuit opens; it is not
  // offered until a liveness probe answers.
  void Trip(const std::string& pool, const std::string& instance);
  // Where `client` holds a slot, in any pool.
  struct Holding {
    std::string pool;
    std::string instance;
    bool durable = true;  // false: granted by the server, not yet journaled
  };
  std::optional<Holding> Holder(const std::string& client) const;
  // `done` once the client's reservation is durable (commits it again now
  // if an earlier write failed).
  void SyncReservation(const Holding& holding, const std::string& client, Durable done);
  // Why the journal cannot write, while it cannot; no instance is created
  // meanwhile and /readyz says so.
  std::optional<std::string> JournalError() const;

 private:
  struct Entry;
  // Resource versions and change notices (watches).
  std::uint64_t NextResourceVersion();
  void ReserveResourceVersions();
  void Observe(Entry& entry);
  void PoolChanged(Entry& entry, Change::Type type);
  // Journals `instance` as it is now in its pool (without its reservations).
  void Persist(const state::Instance& instance, std::function<void(std::optional<std::string>)> done = nullptr);
  void FinishStart(std::map<std::string, backend::Placement> adopted, std::size_t known_count);
  void Drain();
  void Reconcile(const std::string& name);
  void Create(Entry& entry, int count);
  int LimitCreates(Entry& entry, int want, state::Plan& plan);
  void StartFailure(Entry& entry, const char* reason, std::string message);
  void Probe(const std::string& pool, const std::string& name);
  void OnExit(const std::string& pool, const std::string& name, int exit_code, const std::string& message);
  // Liveness after Ready (see state/health.h).
  void WatchHealth(const std::string& pool, const std::string& name);
  void HealthProbe(const std::string& pool, const std::string& name);
  void OnHealthProbe(Entry& entry, const state::Instance& before, bool answered, const std::string& error);
  void MaybeAudit(const std::string& pool, const std::string& name);
  void AuditNext(const std::string& pool, const std::string& name, std::shared_ptr<std::vector<std::string>> clients,
                 std::size_t k);
  void Record(Entry& entry, std::string type, std::string reason, std::string message);
  void PersistPool(const Entry& entry, std::function<void(std::optional<std::string>)> done);
  // Commits through the journal (retried until durable); `done` (if any)
  // on the io thread.
  void Commit(std::vector<store::Op> ops, std::function<void(std::optional<std::string>)> done);
  void StartBackend(const std::string& pool, const std::string& name);
  api::ServerPool View(const Entry& entry) const;
  std::string NewInstanceName(const Entry& entry);
  void Resync();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool started_ = false;
};

}  // namespace mm::reconcile
