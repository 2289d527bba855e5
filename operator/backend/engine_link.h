#pragma once

// The docker and swarm backends' line to the Engine API: one client, every
// answer (or its absence) telling whether the engine is there, and a ping
// that keeps telling while nothing else is asked.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "operator/docker/client.h"

namespace boost::asio {
class io_context;
}

namespace mm::backend {

class EngineLink : public std::enable_shared_from_this<EngineLink> {
 public:
  struct Options {
    std::chrono::milliseconds timeout{10'000};      // per call
    std::chrono::milliseconds ping{2'000};          // how often the engine is asked
    std::chrono::milliseconds ping_timeout{5'000};  // a busy engine may take seconds
  };
  // Throws std::invalid_argument on a malformed docker_host.
  EngineLink(boost::asio::io_context& io, const std::string& docker_host, Options options);
  ~EngineLink();

  // Like docker::Client::Call; `done` runs only while the link exists.
  void Call(std::string method, std::string target, boost::json::value body,
            std::function<void(docker::Result)> done, std::chrono::milliseconds timeout = {},
            docker::Client::Headers headers = {});
  void StartPing();
  void Close();

  bool available() const { return available_; }
  const std::string& reason() const { return reason_; }
  const std::string& endpoint() const { return endpoint_; }
  docker::Client& client() { return *client_; }
  boost::asio::io_context& io() { return io_; }
  // Runs when available() changes.
  std::function<void(bool)> on_availability;

 private:
  void SetAvailable(bool up, std::string why);
  void SchedulePing();

  boost::asio::io_context& io_;
  Options opts_;
  std::string endpoint_;
  std::unique_ptr<docker::Client> client_;
  struct Timer;
  std::unique_ptr<Timer> ping_timer_;
  bool available_ = true;
  std::string reason_;
  bool closed_ = false;
};

}  // namespace mm::backend
