#include "operator/backend/engine_backend.h"

#include <spdlog/spdlog.h>

#include <boost/json/value.hpp>

#include "api/reservation/client_id.h"

namespace mm::backend {

EngineCore::EngineCore(boost::asio::io_context& io, const EngineOptions& o)
    : io(io),
      link(std::make_shared<EngineLink>(
          io, o.docker_host, EngineLink::Options{.timeout = o.timeout, .ping = o.ping, .ping_timeout = o.ping_timeout})),
      opts_(o) {}

EngineCore::~EngineCore() = default;

void EngineCore::Call(std::string method, std::string target, boost::json::value body,
                      std::function<void(docker::Result)> done, std::chrono::milliseconds timeout,
                      docker::Client::Headers headers) {
  link->Call(std::move(method), std::move(target), std::move(body),
             [alive = std::weak_ptr<int>(alive_), done = std::move(done)](docker::Result r) {
               if (alive.lock() && done) done(std::move(r));
             },
             timeout, std::move(headers));
}

docker::Client::Headers EngineCore::AuthHeaders(const std::string& image) const {
  if (!opts_.auth) return {};
  std::string header = opts_.auth->Header(image);
  if (header.empty()) return {};
  return {{"X-Registry-Auth", std::move(header)}};
}

void EngineCore::Pull(const std::string& image, const std::string& pool, std::function<void(std::string)> done) {
  auto joined = pulls_.Join(image, pool, std::move(done));
  if (joined.new_pool) {
    bool creds = opts_.auth && opts_.auth->For(image);
    Event(pool, "Normal", "Pulling",
          "pulling image " + image + (creds ? " with the credentials for " + RegistryHost(image) : ""));
  }
  if (!joined.start) return;
  auto ref = SplitImage(image);
  spdlog::info("docker: pulling {}", image);
  Call("POST",
       "/images/create?fromImage=" + reservation::PercentEncode(ref.name) + "&tag=" + reservation::PercentEncode(ref.tag),
       nullptr,
       [this, image](docker::Result r) {
         auto pull = pulls_.Finish(image);
         std::string error;
         if (!r.ok()) error = r.message.empty() ? std::string(docker::ToString(r.code)) : r.message;
         if (error.empty()) {
           spdlog::info("docker: pulled {}", image);
         } else {
           spdlog::warn("docker: pull {} failed: {}", image, error);
         }
         for (const auto& pool : pull.pools) {
           if (error.empty()) {
             Event(pool, "Normal", "Pulled", "pulled image " + image);
           } else {
             Event(pool, "Warning", "PullFailed", "pull image " + image + ": " + error);
           }
         }
         for (auto& w : pull.waiters) w(error);
       },
       opts_.pull_timeout, AuthHeaders(image));
}

EngineBackend::EngineBackend(std::shared_ptr<EngineCore> core) : core_(std::move(core)) {
  core_->link->on_availability = [weak = std::weak_ptr<EngineCore>(core_)](bool up) {
    auto self = weak.lock();
    if (!self) return;
    if (self->on_availability) self->on_availability(up);
    self->AvailabilityChanged(up);
  };
}

EngineBackend::~EngineBackend() {
  core_->closed = true;
  core_->Close();
  core_->link->Close();
}

void EngineBackend::OnExit(std::function<void(ExitEvent)> handler) { core_->on_exit = std::move(handler); }
bool EngineBackend::Available() const { return core_->link->available(); }
std::string EngineBackend::UnavailableReason() const {
  return core_->link->available() ? "" : core_->link->reason();
}
void EngineBackend::OnAvailabilityChange(std::function<void(bool)> handler) {
  core_->on_availability = std::move(handler);
}
void EngineBackend::OnPoolEvent(std::function<void(PoolEvent)> handler) { core_->on_event = std::move(handler); }

}  // namespace mm::backend
