#include "operator/metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <mutex>
#include <set>

namespace mm::metrics {
namespace p = prometheus;

namespace {
const p::Histogram::BucketBoundaries kLatency = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                 0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                 1,      2.5,     5,      10};
const p::Histogram::BucketBoundaries kStartup = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
constexpr const char* kStates[] = {"starting", "ready", "allocated", "full", "terminating"};
constexpr const char* kFailureReasons[] = {"CreateFailed", "ExitedBeforeReady", "StartTimeout"};
}  // namespace

struct Metrics::Impl {
  std::shared_ptr<p::Registry> registry = std::make_shared<p::Registry>();
  p::Family<p::Gauge>& instances = p::BuildGauge()
      .Name("matchmaker_pool_instances").Help("Instances of a pool by lifecycle state.").Register(*registry);
  p::Family<p::Gauge>& conditions = p::BuildGauge()
      .Name("matchmaker_pool_condition").Help("1 while the pool's condition (Ready, Progressing, Degraded) is True.")
      .Register(*registry);
  p::Family<p::Gauge>& warm = p::BuildGauge()
      .Name("matchmaker_pool_warm_target").Help("The pool's spec.warm.").Register(*registry);
  p::Family<p::Counter>& allocations = p::BuildCounter()
      .Name("matchmaker_allocations_total").Help("Client requests by result (allocated, queued, rejected, failed).")
      .Register(*registry);
  p::Family<p::Histogram>& allocation_seconds = p::BuildHistogram()
      .Name("matchmaker_allocation_duration_seconds").Help("Time from POST /request to its answer.")
      .Register(*registry);
  p::Family<p::Counter>& reservations = p::BuildCounter()
      .Name("matchmaker_reservations_total").Help("Reservation API handshakes by HTTP status (0: transport error).")
      .Register(*registry);
  p::Family<p::Histogram>& startup = p::BuildHistogram()
      .Name("matchmaker_instance_startup_seconds").Help("Time from instance create to Ready.")
      .Register(*registry);
  p::Family<p::Counter>& failures = p::BuildCounter()
      .Name("matchmaker_instance_failures_total").Help("Instances that failed to start or run, by reason.")
      .Register(*registry);
  p::Family<p::Gauge>& pending = p::BuildGauge()
      .Name("matchmaker_pending_requests").Help("Queued client requests per pool.").Register(*registry);
  p::Family<p::Histogram>& reconcile = p::BuildHistogram()
      .Name("matchmaker_reconcile_duration_seconds").Help("Duration of one reconcile pass of one pool.")
      .Register(*registry);
  p::Family<p::Counter>& reconcile_errors = p::BuildCounter()
      .Name("matchmaker_reconcile_errors_total").Help("Reconcile passes that hit an error.").Register(*registry);
  p::Family<p::Counter>& backend = p::BuildCounter()
      .Name("matchmaker_backend_requests_total").Help("Backend operations by result code.").Register(*registry);
  p::Family<p::Gauge>& build_info = p::BuildGauge()
      .Name("matchmaker_build_info").Help("Always 1; the version label names the build.").Register(*registry);
  p::Histogram& reconcile_all = reconcile.Add({}, kLatency);
  std::mutex mu;  // guards Remove against concurrent Add of the same series
  std::set<std::string> pools;  // pools whose counters exist (at 0 from the start)
};

Metrics::Metrics(const std::string& version) : impl_(new Impl) {
  impl_->build_info.Add({{"version", version}}).Set(1);
}

Metrics::~Metrics() = default;

void Metrics::SetPool(const std::string& pool, const api::InstanceCounts& c, int warm) {
  std::lock_guard lock(impl_->mu);
  const int values[] = {c.starting, c.ready, c.allocated, c.full, c.terminating};
  for (int i = 0; i < 5; ++i) impl_->instances.Add({{"pool", pool}, {"state", kStates[i]}}).Set(values[i]);
  impl_->warm.Add({{"pool", pool}}).Set(warm);
  // Counters exist from the start at 0, so that rate() and increase() see
  // the first failure instead of a series appearing at 1. Once per pool:
  // this runs on every reconcile pass.
  if (impl_->pools.insert(pool).second) {
    impl_->reconcile_errors.Add({{"pool", pool}});
    for (const char* r : kFailureReasons) impl_->failures.Add({{"pool", pool}, {"reason", r}});
  }
}

void Metrics::SetConditions(const std::string& pool, const std::vector<api::Condition>& conditions) {
  std::lock_guard lock(impl_->mu);
  for (const auto& c : conditions) {
    impl_->conditions.Add({{"pool", pool}, {"type", c.type}}).Set(c.status == "True" ? 1 : 0);
  }
}

void Metrics::RemovePool(const std::string& pool) {
  std::lock_guard lock(impl_->mu);
  for (const char* t : {"Ready", "Progressing", "Degraded"}) {
    impl_->conditions.Remove(&impl_->conditions.Add({{"pool", pool}, {"type", t}}));
  }
  for (const char* s : kStates) impl_->instances.Remove(&impl_->instances.Add({{"pool", pool}, {"state", s}}));
  impl_->warm.Remove(&impl_->warm.Add({{"pool", pool}}));
  impl_->pending.Remove(&impl_->pending.Add({{"pool", pool}}));
  impl_->pools.erase(pool);
  impl_->reconcile_errors.Remove(&impl_->reconcile_errors.Add({{"pool", pool}}));
  for (const char* r : kFailureReasons) impl_->failures.Remove(&impl_->failures.Add({{"pool", pool}, {"reason", r}}));
}

void Metrics::ObserveReconcile(double seconds) { impl_->reconcile_all.Observe(seconds); }

void Metrics::ReconcileError(const std::string& pool) {
  impl_->reconcile_errors.Add({{"pool", pool}}).Increment();
}

void Metrics::InstanceStartup(const std::string& pool, double seconds) {
  impl_->startup.Add({{"pool", pool}}, kStartup).Observe(seconds);
}

void Metrics::InstanceFailure(const std::string& pool, const std::string& reason) {
  impl_->failures.Add({{"pool", pool}, {"reason", reason}}).Increment();
}

void Metrics::BackendRequest(const std::string& backend, const std::string& op, const std::string& code) {
  impl_->backend.Add({{"backend", backend}, {"op", op}, {"code", code}}).Increment();
}

void Metrics::Allocation(const std::string& pool, const std::string& result, double seconds) {
  impl_->allocations.Add({{"pool", pool}, {"result", result}}).Increment();
  impl_->allocation_seconds.Add({{"pool", pool}}, kLatency).Observe(seconds);
}

void Metrics::Reservation(const std::string& pool, int code) {
  impl_->reservations.Add({{"pool", pool}, {"code", std::to_string(code)}}).Increment();
}

void Metrics::SetPending(const std::string& pool, int pending) {
  impl_->pending.Add({{"pool", pool}}).Set(pending);
}

std::string Metrics::Serialize() const {
  return p::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace mm::metrics
