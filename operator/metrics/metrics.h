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

  // matchmaker_pool_instances{pool,state}, the warm target, and
  // matchmaker_pool_busy_unhealthy_instances{pool}.
  void SetPool(const std::string& pool, const api::InstanceCounts& counts, int warm, int busy_unhealthy = 0);
  // matchmaker_health_probes_total{pool,result}: one liveness probe.
  void HealthProbe(const std::string& pool, bool ok);
  // matchmaker_pool_condition{pool,type}: 1 while the condition is True.
  void SetConditions(const std::string& pool, const std::vector<api::Condition>& conditions);
  void RemovePool(const std::string& pool);
  void ObserveReconcile(double seconds);
  void ReconcileError(const std::string& pool);
  void InstanceStartup(const std::string& pool, double seconds);
  void InstanceFailure(const std::string& pool, const std::string& reason);
  void BackendRequest(const std::string& backend, const std::string& op, const std::string& code);
  // Allocation (client API).
  void Allocation(const std::string& pool, const std::string& result, double seconds);
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
