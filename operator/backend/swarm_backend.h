#pragma once

// The `swarm` backend: one replicated service (replicas 1, restart condition
// none) per instance, on a Docker Swarm manager.
//  - ports published in host mode with swarm-assigned ports; clients get the
//    node's dev.matchmaker.public-address label (else its address), the
//    operator probes node address + published control port (or the task's
//    address on control_network);
//  - task state comes from polling /tasks with our labels (swarm task
//    changes are not all in /events on 1.41): running -> Ready path,
//    complete/failed/rejected/shutdown -> the instance ended, with the
//    engine's reason; a task on a node that is down ends its instance;
//  - a task still pending with a scheduler error after `pending_grace`
//    (no node satisfies the constraints) fails the create with that error,
//    which the controller turns into backoff and a Degraded condition;
//  - only services labelled managed-by=matchmakerd with our owner id are
//    listed or removed.

#include <chrono>
#include <memory>

#include "operator/backend/engine_backend.h"
#include "operator/backend/service_spec.h"

namespace mm::backend {

struct SwarmOptions {
  EngineOptions engine;
  ServiceOptions service;
  std::chrono::milliseconds poll{500};
  std::chrono::milliseconds pending_grace{5'000};
};

class SwarmBackend : public EngineBackend {
 public:
  // Throws std::invalid_argument on a malformed docker_host.
  SwarmBackend(boost::asio::io_context& io, SwarmOptions options);
  ~SwarmBackend() override;

  std::string_view name() const override { return "swarm"; }
  void Create(const InstanceSpec& spec, std::function<void(CreateResult)> done) override;
  void Remove(const state::Instance& instance) override;
  void Adopt(const std::vector<const state::Instance*>& known, const Templates& templates,
             std::function<void(Adopted)> done) override;

  struct Impl;

 private:
  explicit SwarmBackend(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace mm::backend
