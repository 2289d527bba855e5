#include "operator/state/health.h"

namespace mm::state {

bool Probed(InstanceState s) {
  return s == InstanceState::kReady || s == InstanceState::kAllocated || s == InstanceState::kFull ||
         s == InstanceState::kUnhealthy;
}

ProbeVerdict JudgeProbe(const Instance& i, bool answered, int failure_threshold) {
  ProbeVerdict v{i.state, i.before_unhealthy, i.probe_failures, i.suspect, HealthEvent::kNone};
  if (!Probed(i.state)) return v;
  if (answered) {
    v.failures = 0;
    v.suspect = false;
    if (i.state == InstanceState::kUnhealthy) {
      v.state = i.before_unhealthy;
      v.event = HealthEvent::kRecovered;
    }
    return v;
  }
  v.failures = i.probe_failures + 1;
  v.suspect = true;
  if (i.state != InstanceState::kUnhealthy && v.failures >= failure_threshold) {
    v.before_unhealthy = i.state;
    v.state = InstanceState::kUnhealthy;
    v.event = i.reservations.empty() ? HealthEvent::kUnhealthy : HealthEvent::kBusyUnhealthy;
  }
  return v;
}

bool CrashAfterReady(const Instance& i, int exit_code, TimePoint now, std::chrono::milliseconds crash_window) {
  if (exit_code == 0 || crash_window.count() <= 0 || !i.reservations.empty()) return false;
  if (i.ready_at == TimePoint{} || !Probed(i.state)) return false;
  return now - i.ready_at < crash_window;
}

bool ProvedStable(const Instance& i, TimePoint now, std::chrono::milliseconds crash_window) {
  if (!Probed(i.state) || i.ready_at == TimePoint{}) return false;
  return !i.reservations.empty() || now - i.ready_at >= crash_window;
}

}  // namespace mm::state
