#include "operator/metrics/metrics.h"

#include <mutex>
#include <set>

#include "operator/metrics/exposition.h"

namespace mm::metrics {
namespace {
using T = Registry::Type;
const std::vector<double> kLatency = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const std::vector<double> kStartup = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
constexpr const char* kStates[] = {"starting", "ready", "allocated", "full", "terminating"};
constexpr const char* kFailureReasons[] = {"CreateFailed", "ExitedBeforeReady", "StartTimeout"};
constexpr const char* kConditionTypes[] = {"Ready", "Progressing", "Degraded"};
}  // namespace

// Labels are passed sorted by name, the order in which they are printed
// (and the order prometheus-cpp printed them before).
struct Metrics::Impl {
  Registry r;
  const Registry::FamilyId instances =
      r.Add("matchmaker_pool_instances", "Instances of a pool by lifecycle state.", T::kGauge);
  const Registry::FamilyId conditions = r.Add(
      "matchmaker_pool_condition", "1 while the pool's condition (Ready, Progressing, Degraded) is True.", T::kGauge);
  const Registry::FamilyId warm = r.Add("matchmaker_pool_warm_target", "The pool's spec.warm.", T::kGauge);
  const Registry::FamilyId allocations = r.Add(
      "matchmaker_allocations_total", "Client requests by result (allocated, queued, rejected, failed).", T::kCounter);
  const Registry::FamilyId allocation_seconds = r.Add(
      "matchmaker_allocation_duration_seconds", "Time from POST /request to its answer.", T::kHistogram, kLatency);
  const Registry::FamilyId reservations = r.Add(
      "matchmaker_reservations_total", "Reservation API handshakes by HTTP status (0: transport error).", T::kCounter);
  const Registry::FamilyId startup =
      r.Add("matchmaker_instance_startup_seconds", "Time from instance create to Ready.", T::kHistogram, kStartup);
  const Registry::FamilyId failures =
      r.Add("matchmaker_instance_failures_total", "Instances that failed to start or run, by reason.", T::kCounter);
  const Registry::FamilyId pending =
      r.Add("matchmaker_pending_requests", "Queued client requests per pool.", T::kGauge);
  const Registry::FamilyId reconcile = r.Add("matchmaker_reconcile_duration_seconds",
                                             "Duration of one reconcile pass of one pool.", T::kHistogram, kLatency);
  const Registry::FamilyId reconcile_errors =
      r.Add("matchmaker_reconcile_errors_total", "Reconcile passes that hit an error.", T::kCounter);
  const Registry::FamilyId backend =
      r.Add("matchmaker_backend_requests_total", "Backend operations by result code.", T::kCounter);
  const Registry::FamilyId build_info =
      r.Add("matchmaker_build_info", "Always 1; the version label names the build.", T::kGauge);
  const Registry::FamilyId journal = r.Add(
      "matchmaker_journal_up", "1 while the journal writes; 0 while a write waits for a retry (full disk, I/O error).",
      T::kGauge);
  mutable std::mutex mu;        // guards everything here
  std::set<std::string> pools;  // pools whose counters exist (at 0 from the start)
};

Metrics::Metrics(const std::string& version) : impl_(new Impl) {
  impl_->r.Set(impl_->build_info, {{"version", version}}, 1);
  impl_->r.Touch(impl_->reconcile, {});  // at 0 before the first pass
  impl_->r.Set(impl_->journal, {}, 1);
}

Metrics::~Metrics() = default;

void Metrics::SetPool(const std::string& pool, const api::InstanceCounts& c, int warm) {
  std::lock_guard lock(impl_->mu);
  auto& r = impl_->r;
  const int values[] = {c.starting, c.ready, c.allocated, c.full, c.terminating};
  for (int i = 0; i < 5; ++i) r.Set(impl_->instances, {{"pool", pool}, {"state", kStates[i]}}, values[i]);
  r.Set(impl_->warm, {{"pool", pool}}, warm);
  // Counters exist from the start at 0, so that rate() and increase() see
  // the first failure instead of a series appearing at 1. Once per pool:
  // this runs on every reconcile pass.
  if (impl_->pools.insert(pool).second) {
    r.Touch(impl_->reconcile_errors, {{"pool", pool}});
    for (const char* reason : kFailureReasons) r.Touch(impl_->failures, {{"pool", pool}, {"reason", reason}});
  }
}

void Metrics::SetConditions(const std::string& pool, const std::vector<api::Condition>& conditions) {
  std::lock_guard lock(impl_->mu);
  for (const auto& c : conditions) {
    impl_->r.Set(impl_->conditions, {{"pool", pool}, {"type", c.type}}, c.status == "True" ? 1 : 0);
  }
}

void Metrics::RemovePool(const std::string& pool) {
  std::lock_guard lock(impl_->mu);
  auto& r = impl_->r;
  for (const char* t : kConditionTypes) r.Remove(impl_->conditions, {{"pool", pool}, {"type", t}});
  for (const char* s : kStates) r.Remove(impl_->instances, {{"pool", pool}, {"state", s}});
  r.Remove(impl_->warm, {{"pool", pool}});
  r.Remove(impl_->pending, {{"pool", pool}});
  impl_->pools.erase(pool);
  r.Remove(impl_->reconcile_errors, {{"pool", pool}});
  for (const char* reason : kFailureReasons) r.Remove(impl_->failures, {{"pool", pool}, {"reason", reason}});
}

void Metrics::ObserveReconcile(double seconds) {
  std::lock_guard lock(impl_->mu);
  impl_->r.Observe(impl_->reconcile, {}, seconds);
}

void Metrics::ReconcileError(const std::string& pool) {
  std::lock_guard lock(impl_->mu);
  impl_->r.Increment(impl_->reconcile_errors, {{"pool", pool}});
}

void Metrics::InstanceStartup(const std::string& pool, double seconds) {
  std::lock_guard lock(impl_->mu);
  impl_->r.Observe(impl_->startup, {{"pool", pool}}, seconds);
}

void Metrics::InstanceFailure(const std::string& pool, const std::string& reason) {
  std::lock_guard lock(impl_->mu);
  impl_->r.Increment(impl_->failures, {{"pool", pool}, {"reason", reason}});
}

void Metrics::BackendRequest(const std::string& backend, const std::string& op, const std::string& code) {
  std::lock_guard lock(impl_->mu);
  impl_->r.Increment(impl_->backend, {{"backend", backend}, {"code", code}, {"op", op}});
}

void Metrics::Allocation(const std::string& pool, const std::string& result, double seconds) {
  std::lock_guard lock(impl_->mu);
  impl_->r.Increment(impl_->allocations, {{"pool", pool}, {"result", result}});
  impl_->r.Observe(impl_->allocation_seconds, {{"pool", pool}}, seconds);
}

void Metrics::Reservation(const std::string& pool, int code) {
  std::lock_guard lock(impl_->mu);
  impl_->r.Increment(impl_->reservations, {{"code", std::to_string(code)}, {"pool", pool}});
}

void Metrics::SetPending(const std::string& pool, int pending) {
  std::lock_guard lock(impl_->mu);
  impl_->r.Set(impl_->pending, {{"pool", pool}}, pending);
}

void Metrics::SetJournalUp(bool up) {
  std::lock_guard lock(impl_->mu);
  impl_->r.Set(impl_->journal, {}, up ? 1 : 0);
}

std::string Metrics::Serialize() const {
  std::lock_guard lock(impl_->mu);
  return impl_->r.Serialize();
}

}  // namespace mm::metrics
