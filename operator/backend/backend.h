#pragma once

// Backend: where instances run (process | docker | swarm). Every call is
// made on, and every callback delivered on, the operator's io thread.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "api/v1alpha1/types.h"
#include "operator/state/instance.h"

namespace mm::backend {

struct InstanceSpec {
  std::string pool;
  std::string name;
  std::string template_hash;
  api::Template templ;
};

// Where a created instance runs.
struct Placement {
  std::string backend_id;
  std::string host;          // address for clients
  std::string control_host;  // address the operator probes
  int control_port = 0;
  std::map<std::string, int> ports;  // port name -> client-facing port
};

struct ExitEvent {
  std::string pool;
  std::string name;
  int exit_code = 0;      // 128+N when killed by signal N
  std::string message;    // "exited with code 1", "killed by signal 9"
};

using CreateResult = std::variant<Placement, std::string /*error*/>;

// Something a backend did for a pool that its operators should see among
// the pool's events (image pulls).
struct PoolEvent {
  std::string pool;
  std::string type;  // Normal | Warning
  std::string reason;
  std::string message;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;

  // Starts an instance. `done` runs once, with where it runs or why not.
  virtual void Create(const InstanceSpec& spec, std::function<void(CreateResult)> done) = 0;
  // Stops an instance: graceful first, forced after a grace period. Its end
  // is reported through the exit handler.
  virtual void Remove(const state::Instance& instance) = 0;
  // After a restart: `known` are the recorded instances. `done` gets those
  // still running (by instance name, with fresh placement); the others are
  // reported as exited; objects of ours no record names (orphans) are
  // stopped. Never touches objects that are not ours. `done` runs once,
  // possibly later (an engine that is down is waited for). `templates`
  // (pool -> template) lets a backend place an instance whose create was in
  // flight at a crash (recorded, no placement yet) from the object itself.
  using Adopted = std::map<std::string, Placement>;
  using Templates = std::map<std::string, api::Template>;
  virtual void Adopt(const std::vector<const state::Instance*>& known, const Templates& templates,
                     std::function<void(Adopted)> done) = 0;
  virtual void OnExit(std::function<void(ExitEvent)> handler) = 0;
  // The controller forgot an exited instance: what the backend kept of it
  // may go (the process backend's log; a failed instance's log is kept,
  // the newest few per pool, for diagnosis).
  virtual void Forget(const state::Instance& instance) { (void)instance; }
  // False while the engine cannot be reached (for /readyz), with why.
  virtual bool Available() const { return true; }
  virtual std::string UnavailableReason() const { return ""; }
  // Called when Available() changes.
  virtual void OnAvailabilityChange(std::function<void(bool)> handler) { (void)handler; }
  // Called with events for a pool's event list.
  virtual void OnPoolEvent(std::function<void(PoolEvent)> handler) { (void)handler; }
};

}  // namespace mm::backend
