#pragma once

// What an instance's liveness after Ready means for its lifecycle: pure
// functions over an Instance, so every transition is table-tested. The
// controller (reconcile/) does the probing and applies these.

#include <chrono>

#include "operator/state/instance.h"

namespace mm::state {

enum class HealthEvent {
  kNone,
  kUnhealthy,      // idle, failureThreshold probes missed: to be replaced
  kBusyUnhealthy,  // holds reservations: kept, reported
  kRecovered,      // Unhealthy and answered again: back to its state
};

struct ProbeVerdict {
  InstanceState state;
  InstanceState before_unhealthy;
  int failures = 0;
  bool suspect = false;
  HealthEvent event = HealthEvent::kNone;
};

// After a liveness probe of `i` (any HTTP answer = `answered`). A missed
// probe opens the instance's circuit at once (it is not offered until a
// probe answers); `failure_threshold` missed in a row make it Unhealthy.
// Instances that are not probed (Starting, Terminating, Exited) are left
// as they are.
ProbeVerdict JudgeProbe(const Instance& i, bool answered, int failure_threshold);

// Whether an instance is probed for liveness (Ready and after).
bool Probed(InstanceState s);

// An instance exited with `exit_code`: true when that is a start failure
// (a crash loop) rather than a finished match: a non-zero code within
// `crash_window` of Ready, with no reservation held. A zero window turns
// this off.
bool CrashAfterReady(const Instance& i, int exit_code, TimePoint now, std::chrono::milliseconds crash_window);

// Whether the pool's consecutive start failures may be forgotten now that
// `i` is alive: it holds a reservation, or it outlived the crash window.
bool ProvedStable(const Instance& i, TimePoint now, std::chrono::milliseconds crash_window);

}  // namespace mm::state
