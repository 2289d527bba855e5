#pragma once

// One instance of a pool as the operator knows it. Plain value; no I/O.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace mm::state {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// SPEC lifecycle: Starting -> Ready -> Allocated -> Full -> Terminating -> gone.
// Unhealthy: failed health.failureThreshold liveness probes in a row after
// Ready (never offered; idle ones replaced, busy ones kept until they answer
// again). Exited is an instance the backend saw end; the reconciler forgets it.
enum class InstanceState { kStarting, kReady, kAllocated, kFull, kUnhealthy, kTerminating, kExited };
inline constexpr int kInstanceStates = 7;

std::string_view ToString(InstanceState s);
std::optional<InstanceState> ParseInstanceState(std::string_view s);

struct Instance {
  std::string pool;
  std::string name;           // "<pool>-<suffix>", unique per pool
  std::string template_hash;  // the template version it runs
  InstanceState state = InstanceState::kStarting;
  std::set<std::string> reservations;  // client ids holding a slot
  // Match metadata sent with a client's handshake (JSON text), by client id;
  // only clients whose request carried some.
  std::map<std::string, std::string> metadata;
  // Unhealthy: the state it returns to when it answers again.
  InstanceState before_unhealthy = InstanceState::kReady;

  // Where it runs, filled by the backend.
  std::string backend_id;  // pid:starttime, container id or service id
  std::string host;        // address given to clients
  std::string control_host = "127.0.0.1";
  int control_port = 0;
  std::map<std::string, int> ports;  // port name -> port clients use

  TimePoint created{};
  TimePoint ready_at{};  // zero until Ready
  TimePoint exited_at{};
  bool failed = false;  // ended before Ready, or timed out starting
  std::string message;  // last backend or probe error

  // Liveness, in memory only (a restart starts probing afresh).
  int probe_failures = 0;   // consecutive failed liveness probes
  bool suspect = false;     // circuit breaker open: a handshake or probe went unanswered; not offered until a probe answers
  TimePoint asked_at{};     // Full: when it was last asked for a slot

  // Changes with every change its listing shows (watches, conflicts); in
  // memory only: a restart numbers every object afresh, above any number
  // given out before.
  std::uint64_t resource_version = 0;

  bool busy() const {
    return state == InstanceState::kAllocated || state == InstanceState::kFull ||
           (state == InstanceState::kUnhealthy && !reservations.empty());
  }
  bool idle() const {
    return state == InstanceState::kStarting || state == InstanceState::kReady;
  }
  bool operator==(const Instance&) const = default;
};

}  // namespace mm::state
