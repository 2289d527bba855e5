#pragma once

// The shell the docker and swarm backends share: one line to the engine
// (EngineLink), the exit and availability handlers, and the lifetime rule
// that no engine answer reaches a backend that is gone. Each backend's Impl
// derives from EngineCore; each backend class from EngineBackend.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "operator/backend/backend.h"
#include "operator/backend/engine_link.h"
#include "operator/backend/registry_auth.h"

namespace mm::backend {

struct EngineOptions {
  std::string docker_host;  // "" = DOCKER_HOST, then the unix socket
  std::chrono::milliseconds timeout{10'000};      // per engine call
  std::chrono::milliseconds ping{2'000};          // how often the engine is asked
  std::chrono::milliseconds ping_timeout{5'000};  // a busy engine may take seconds
  std::chrono::milliseconds pull_timeout{300'000};  // one image pull, all its layers
  // Registry credentials (--registry-auth-file); the owner may replace its
  // contents (SIGHUP) on the io thread. Null: none.
  std::shared_ptr<const RegistryAuth> auth;
};

struct EngineCore {
  // Throws std::invalid_argument on a malformed docker_host.
  EngineCore(boost::asio::io_context& io, const EngineOptions& options);
  virtual ~EngineCore();
  EngineCore(const EngineCore&) = delete;
  EngineCore& operator=(const EngineCore&) = delete;

  // An engine call whose `done` runs only while this core exists.
  void Call(std::string method, std::string target, boost::json::value body,
            std::function<void(docker::Result)> done, std::chrono::milliseconds timeout = {},
            docker::Client::Headers headers = {});
  // Reports an instance's end (nameless: an orphan we stopped, not reported).
  void Exit(ExitEvent ev) {
    if (on_exit && !ev.name.empty()) on_exit(std::move(ev));
  }
  void Event(std::string pool, std::string type, std::string reason, std::string message) {
    if (on_event) on_event(PoolEvent{std::move(pool), std::move(type), std::move(reason), std::move(message)});
  }

  // Pulls `image` for `pool` with the credentials for its registry; `done`
  // gets "" or why it failed (the registry's words). One pull per image at a
  // time: callers that ask while one is in flight wait for it. Each waiting
  // pool gets Pulling, then Pulled or Warning PullFailed.
  void Pull(const std::string& image, const std::string& pool, std::function<void(std::string)> done);
  // The X-Registry-Auth header for `image`, when there are credentials for
  // its registry.
  docker::Client::Headers AuthHeaders(const std::string& image) const;

  // The engine came back (or went): the backend's own follow-up (resync,
  // poll), after the availability handler has run.
  virtual void AvailabilityChanged(bool up) { (void)up; }
  // The backend is being destroyed: stop timers. The link is closed after.
  virtual void Close() {}

  boost::asio::io_context& io;
  std::shared_ptr<EngineLink> link;
  std::function<void(ExitEvent)> on_exit;
  std::function<void(bool)> on_availability;
  std::function<void(PoolEvent)> on_event;
  bool closed = false;

 private:
  EngineOptions opts_;
  PullQueue pulls_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

class EngineBackend : public Backend {
 public:
  ~EngineBackend() override;
  void OnExit(std::function<void(ExitEvent)> handler) override;
  bool Available() const override;
  std::string UnavailableReason() const override;
  void OnAvailabilityChange(std::function<void(bool)> handler) override;
  void OnPoolEvent(std::function<void(PoolEvent)> handler) override;

 protected:
  explicit EngineBackend(std::shared_ptr<EngineCore> core);

 private:
  std::shared_ptr<EngineCore> core_;
};

}  // namespace mm::backend
