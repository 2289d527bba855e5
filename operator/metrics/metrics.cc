#include "operator/metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <mutex>
#include <set>

namespace mm::metrics {
namespace p = prometheus;

namespace {

const p::Histogram::BucketBoundaries kLatency = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
const p::Histogram::BucketBoundaries kStartup = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
constexpr const char* kStates[] = {"starting", "ready", "allocated", "full", "unhealthy", "terminating"};
constexpr const char* kFailureReasons[] = {"CreateFailed", "ExitedBeforeReady", "StartTimeout", "CrashedAfterReady"};
constexpr const char* kProbeResults[] = {"ok", "failed"};
constexpr const char* kConditionTypes[] = {"Ready", "Progressing", "Degraded"};
constexpr const char* kAllocationResults[] = {"allocated", "held", "queued", "polled", "rejected", "failed"};

p::Family<p::Gauge>& Gauge(p::Registry& r, const char* name, const char* help) {
  return p::BuildGauge().Name(name).Help(help).Register(r);
}
p::Family<p::Counter>& Counter(p::Registry& r, const char* name, const char* help) {
  return p::BuildCounter().Name(name).Help(help).Register(r);
}
p::Family<p::Histogram>& Histogram(p::Registry& r, const char* name, const char* help) {
  return p::BuildHistogram().Name(name).Help(help).Register(r);
}

// Removes the series with `labels` from `family`, if it exists.
template <typename T>
void Drop(p::Family<T>& family, const p::Labels& labels) {
  if (family.Has(labels)) family.Remove(&family.Add(labels));
}
void Drop(p::Family<p::Histogram>& family, const p::Labels& labels, const p::Histogram::BucketBoundaries& buckets) {
  if (family.Has(labels)) family.Remove(&family.Add(labels, buckets));
}

}  // namespace

struct Metrics::Impl {
  p::Registry r;
  p::Family<p::Gauge>& instances = Gauge(r, "matchmaker_pool_instances", "Instances of a pool by lifecycle state.");
  p::Family<p::Gauge>& conditions =
      Gauge(r, "matchmaker_pool_condition", "1 while the pool's condition (Ready, Progressing, Degraded) is True.");
  p::Family<p::Gauge>& warm = Gauge(r, "matchmaker_pool_warm_target", "The pool's spec.warm.");
  p::Family<p::Counter>& allocations = Counter(
      r, "matchmaker_allocations_total",
      "Client requests by result: allocated (a new slot), held (the slot the client holds), queued (first put in "
      "line), polled (asked again while in line), rejected (queue full), failed.");
  p::Family<p::Histogram>& allocation_seconds =
      Histogram(r, "matchmaker_allocation_duration_seconds", "Time from a request to the new slot it got.");
  p::Family<p::Counter>& unknown_pool =
      Counter(r, "matchmaker_unknown_pool_requests_total", "Client requests naming no pool that exists.");
  p::Family<p::Gauge>& max_instances =
      Gauge(r, "matchmaker_pool_max_instances", "The pool's spec.maxInstances: the ceiling on its instances.");
  p::Family<p::Gauge>& backend_up =
      Gauge(r, "matchmaker_backend_up", "1 while the backend (its engine) answers, 0 while it does not.");
  p::Family<p::Counter>& reservations =
      Counter(r, "matchmaker_reservations_total", "Reservation API handshakes by HTTP status (0: transport error).");
  p::Family<p::Histogram>& startup =
      Histogram(r, "matchmaker_instance_startup_seconds", "Time from instance create to Ready.");
  p::Family<p::Counter>& failures =
      Counter(r, "matchmaker_instance_failures_total", "Instances that failed to start or run, by reason.");
  p::Family<p::Gauge>& pending = Gauge(r, "matchmaker_pending_requests", "Queued client requests per pool.");
  p::Family<p::Histogram>& reconcile =
      Histogram(r, "matchmaker_reconcile_duration_seconds", "Duration of one reconcile pass of one pool.");
  p::Family<p::Counter>& reconcile_errors =
      Counter(r, "matchmaker_reconcile_errors_total", "Reconcile passes that hit an error.");
  p::Family<p::Counter>& backend =
      Counter(r, "matchmaker_backend_requests_total", "Backend operations by result code.");
  p::Family<p::Gauge>& busy_unhealthy = Gauge(
      r, "matchmaker_pool_busy_unhealthy_instances",
      "Unhealthy instances that hold reservations: kept (a match may be on), not offered, reported.");
  p::Family<p::Counter>& probes =
      Counter(r, "matchmaker_health_probes_total", "Liveness probes of instances after Ready, by result.");
  p::Family<p::Gauge>& build_info =
      Gauge(r, "matchmaker_build_info", "Always 1; the version label names the build.");
  p::Family<p::Gauge>& journal = Gauge(
      r, "matchmaker_journal_up", "1 while the journal writes; 0 while a write waits for a retry (full disk, I/O error).");
  // The one series without labels, at 0 before the first pass.
  p::Histogram& reconcile_all = reconcile.Add({}, kLatency);
  p::Gauge& journal_up = journal.Add({});
  p::Counter& unknown_pool_all = unknown_pool.Add({});
  // prometheus-cpp is thread-safe per call; this keeps a Remove from racing
  // an Add of the same series and guards `pools`.
  std::mutex mu;
  std::set<std::string> pools;  // pools whose counters exist (at 0 from the start)
  // The series every allocation touches, found once per pool: Family::Add
  // builds and hashes a label map each call (4% of the io thread's own
  // time at saturation). RemovePool forgets them with the series.
  struct Hot {
    p::Counter* allocations[std::size(kAllocationResults)] = {};
    p::Histogram* allocation_seconds = nullptr;
    std::map<int, p::Counter*> reservations;  // by handshake status
  };
  std::map<std::string, Hot, std::less<>> hot;
};

Metrics::Metrics(const std::string& version) : impl_(new Impl) {
  impl_->build_info.Add({{"version", version}}).Set(1);
  impl_->journal_up.Set(1);
}

Metrics::~Metrics() = default;

void Metrics::SetPool(const std::string& pool, const api::InstanceCounts& c, int warm, int busy_unhealthy,
                      int max_instances) {
  std::lock_guard lock(impl_->mu);
  const int values[] = {c.starting, c.ready, c.allocated, c.full, c.unhealthy, c.terminating};
  static_assert(std::size(values) == std::size(kStates));
  for (std::size_t i = 0; i < std::size(kStates); ++i) {
    impl_->instances.Add({{"pool", pool}, {"state", kStates[i]}}).Set(values[i]);
  }
  impl_->warm.Add({{"pool", pool}}).Set(warm);
  impl_->busy_unhealthy.Add({{"pool", pool}}).Set(busy_unhealthy);
  if (max_instances >= 0) impl_->max_instances.Add({{"pool", pool}}).Set(max_instances);
  // Counters exist from the start at 0, so that rate() and increase() see
  // the first failure instead of a series appearing at 1. Once per pool:
  // this runs on every reconcile pass.
  if (impl_->pools.insert(pool).second) {
    impl_->reconcile_errors.Add({{"pool", pool}});
    for (const char* reason : kFailureReasons) impl_->failures.Add({{"pool", pool}, {"reason", reason}});
    for (const char* result : kProbeResults) impl_->probes.Add({{"pool", pool}, {"result", result}});
    for (const char* result : kAllocationResults) impl_->allocations.Add({{"pool", pool}, {"result", result}});
  }
}

void Metrics::HealthProbe(const std::string& pool, bool ok) {
  impl_->probes.Add({{"pool", pool}, {"result", ok ? "ok" : "failed"}}).Increment();
}

void Metrics::SetConditions(const std::string& pool, const std::vector<api::Condition>& conditions) {
  std::lock_guard lock(impl_->mu);
  for (const auto& c : conditions) {
    impl_->conditions.Add({{"pool", pool}, {"type", c.type}}).Set(c.status == "True" ? 1 : 0);
  }
}

void Metrics::RemovePool(const std::string& pool) {
  std::lock_guard lock(impl_->mu);
  auto& m = *impl_;
  for (const char* t : kConditionTypes) Drop(m.conditions, {{"pool", pool}, {"type", t}});
  for (const char* s : kStates) Drop(m.instances, {{"pool", pool}, {"state", s}});
  Drop(m.warm, {{"pool", pool}});
  Drop(m.busy_unhealthy, {{"pool", pool}});
  for (const char* result : kProbeResults) Drop(m.probes, {{"pool", pool}, {"result", result}});
  Drop(m.pending, {{"pool", pool}});
  m.pools.erase(pool);
  Drop(m.reconcile_errors, {{"pool", pool}});
  for (const char* reason : kFailureReasons) Drop(m.failures, {{"pool", pool}, {"reason", reason}});
  for (const char* result : kAllocationResults) Drop(m.allocations, {{"pool", pool}, {"result", result}});
  Drop(m.allocation_seconds, {{"pool", pool}}, kLatency);
  Drop(m.startup, {{"pool", pool}}, kStartup);
  Drop(m.max_instances, {{"pool", pool}});
  // Handshake codes are whatever servers answered: the family says which.
  std::vector<p::Labels> codes;
  for (const auto& family : m.reservations.Collect()) {
    for (const auto& metric : family.metric) {
      p::Labels labels;
      for (const auto& l : metric.label) labels[l.name] = l.value;
      if (labels["pool"] == pool) codes.push_back(std::move(labels));
    }
  }
  for (const auto& labels : codes) Drop(m.reservations, labels);
  m.hot.erase(pool);
}

void Metrics::ObserveReconcile(double seconds) { impl_->reconcile_all.Observe(seconds); }

void Metrics::ReconcileError(const std::string& pool) {
  std::lock_guard lock(impl_->mu);
  impl_->reconcile_errors.Add({{"pool", pool}}).Increment();
}

void Metrics::InstanceStartup(const std::string& pool, double seconds) {
  std::lock_guard lock(impl_->mu);
  impl_->startup.Add({{"pool", pool}}, kStartup).Observe(seconds);
}

void Metrics::InstanceFailure(const std::string& pool, const std::string& reason) {
  std::lock_guard lock(impl_->mu);
  impl_->failures.Add({{"pool", pool}, {"reason", reason}}).Increment();
}

void Metrics::BackendRequest(const std::string& backend, const std::string& op, const std::string& code) {
  std::lock_guard lock(impl_->mu);
  impl_->backend.Add({{"backend", backend}, {"op", op}, {"code", code}}).Increment();
}

void Metrics::Allocation(const std::string& pool, const std::string& result, double seconds) {
  std::lock_guard lock(impl_->mu);
  std::size_t k = 0;
  while (k < std::size(kAllocationResults) && result != kAllocationResults[k]) ++k;
  if (k == std::size(kAllocationResults)) {
    impl_->allocations.Add({{"pool", pool}, {"result", result}}).Increment();  // not one of ours: uncached
    return;
  }
  auto& hot = impl_->hot[pool];
  if (!hot.allocations[k]) hot.allocations[k] = &impl_->allocations.Add({{"pool", pool}, {"result", result}});
  hot.allocations[k]->Increment();
  if (k == 0) {  // allocated
    if (!hot.allocation_seconds) hot.allocation_seconds = &impl_->allocation_seconds.Add({{"pool", pool}}, kLatency);
    hot.allocation_seconds->Observe(seconds);
  }
}

void Metrics::UnknownPool() { impl_->unknown_pool_all.Increment(); }

void Metrics::SetBackendUp(const std::string& backend, bool up) {
  std::lock_guard lock(impl_->mu);
  impl_->backend_up.Add({{"backend", backend}}).Set(up ? 1 : 0);
}

void Metrics::Reservation(const std::string& pool, int code) {
  std::lock_guard lock(impl_->mu);
  auto& counter = impl_->hot[pool].reservations[code];
  if (!counter) counter = &impl_->reservations.Add({{"pool", pool}, {"code", std::to_string(code)}});
  counter->Increment();
}

void Metrics::SetPending(const std::string& pool, int pending) {
  std::lock_guard lock(impl_->mu);
  impl_->pending.Add({{"pool", pool}}).Set(pending);
}

void Metrics::SetJournalUp(bool up) { impl_->journal_up.Set(up ? 1 : 0); }

std::string Metrics::Serialize() const {
  return p::TextSerializer().Serialize(impl_->r.Collect());
}

}  // namespace mm::metrics
