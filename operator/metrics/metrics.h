#pragma once

// The metrics of SPEC.md, exported on /metrics in the Prometheus text
// format. prometheus-cpp stays behind this seam: nothing else includes it.
// Thread-safe.

#include <memory>
#include <string>
#include <vector>

#include "api/v1alpha1/types.h"

namespace mm::metrics {

class Metrics {
 public:
  explicit Metrics(const std::string& version);
  ~Metrics();

  // matchmaker_pool_instances{pool,state}, the warm target, the
  // max_instances ceiling, and matchmaker_pool_busy_unhealthy_instances{pool}.
  void SetPool(const std::string& pool, const api::InstanceCounts& counts, int warm, int busy_unhealthy = 0,
               int max_instances = -1);
  // matchmaker_health_probes_total{pool,result}: one liveness probe.
  void HealthProbe(const std::string& pool, bool ok);
  // matchmaker_pool_condition{pool,type}: 1 while the condition is True.
  void SetConditions(const std::string& pool, const std::vector<api::Condition>& conditions);
  // Every series labelled with the pool goes (a deleted pool leaves none).
  void RemovePool(const std::string& pool);
  void ObserveReconcile(double seconds);
  void ReconcileError(const std::string& pool);
  void InstanceStartup(const std::string& pool, double seconds);
  void InstanceFailure(const std::string& pool, const std::string& reason);
  void BackendRequest(const std::string& backend, const std::string& op, const std::string& code);
  // matchmaker_backend_up{backend}: 1 while the engine answers.
  void SetBackendUp(const std::string& backend, bool up);
  // matchmaker_allocations_total{pool,result}: one per client request, by
  // what it got: allocated (a new slot), held (the slot it already holds),
  // queued (first put in line), polled (asked again while in line),
  // rejected (queue full), failed. The duration histogram observes the
  // allocated ones only.
  void Allocation(const std::string& pool, const std::string& result, double seconds);
  // matchmaker_unknown_pool_requests_total: requests naming no pool that
  // exists (no pool label: the name is the client's).
  void UnknownPool();
  void Reservation(const std::string& pool, int code);
  void SetPending(const std::string& pool, int pending);
  // matchmaker_journal_up: 0 while journal writes fail.
  void SetJournalUp(bool up);

  std::string Serialize() const;  // Prometheus text exposition format

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mm::metrics
