#pragma once

// The `docker` backend: one container per instance on one Docker Engine.
//  - create + start with the template's image, entrypoint (command), cmd
//    (args), env (the process backend's contract, container-side ports),
//    labels (ours included), cpus/memory, network, restart policy "no";
//    game ports published on publish_ip with engine-assigned host ports,
//    the control port on 127.0.0.1 only (or reached at the container's
//    address on control_network).
//  - images are never pulled: a missing image fails the create with a clear
//    message, which the controller turns into backoff and a Degraded pool.
//  - exits come from the /events stream (die), with a resync (container
//    list) after every reconnect and periodically; a container is removed
//    once its exit has been reported.
//  - only containers labelled managed-by=matchmakerd *and* with our owner id
//    are ever listed, stopped or removed.
//  - an engine that does not answer (ping every `ping` period) makes
//    Available() false; it comes back by itself.

#include <chrono>
#include <memory>

#include "operator/backend/container_spec.h"
#include "operator/backend/engine_backend.h"

namespace mm::backend {

struct DockerOptions {
  EngineOptions engine;
  ContainerOptions container;
  std::chrono::milliseconds grace{5000};  // stop: SIGTERM, then SIGKILL after this
  std::chrono::milliseconds resync{30'000};
};

class DockerBackend : public EngineBackend {
 public:
  // Throws std::invalid_argument on a malformed docker_host.
  DockerBackend(boost::asio::io_context& io, DockerOptions options);
  ~DockerBackend() override;

  std::string_view name() const override { return "docker"; }
  void Create(const InstanceSpec& spec, std::function<void(CreateResult)> done) override;
  void Remove(const state::Instance& instance) override;
  void Adopt(const std::vector<const state::Instance*>& known, const Templates& templates,
             std::function<void(Adopted)> done) override;

  struct Impl;

 private:
  explicit DockerBackend(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace mm::backend
