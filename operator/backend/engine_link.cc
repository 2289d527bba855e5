#include "operator/backend/engine_link.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <stdexcept>

namespace mm::backend {
namespace net = boost::asio;

struct EngineLink::Timer {
  explicit Timer(net::io_context& io) : t(io) {}
  net::steady_timer t;
};

EngineLink::EngineLink(net::io_context& io, const std::string& docker_host, Options options)
    : io_(io), opts_(options), ping_timer_(std::make_unique<Timer>(io)) {
  auto ep = docker::ParseEndpoint(docker_host);
  if (auto* err = std::get_if<std::string>(&ep)) throw std::invalid_argument(*err);
  endpoint_ = std::get<docker::Endpoint>(ep).ToString();
  client_ = std::make_unique<docker::Client>(
      io, docker::ClientOptions{.endpoint = std::get<docker::Endpoint>(ep), .timeout = opts_.timeout});
}

EngineLink::~EngineLink() { Close(); }

void EngineLink::Close() {
  closed_ = true;
  ping_timer_->t.cancel();
  client_->Close();
}

void EngineLink::SetAvailable(bool up, std::string why) {
  if (!up) reason_ = std::move(why);
  if (available_ == up) return;
  available_ = up;
  if (on_availability) on_availability(up);
}

void EngineLink::Call(std::string method, std::string target, boost::json::value body,
                      std::function<void(docker::Result)> done, std::chrono::milliseconds timeout,
                      docker::Client::Headers headers) {
  client_->Call(std::move(method), std::move(target), std::move(body),
                [weak = weak_from_this(), done = std::move(done)](docker::Result r) {
                  auto self = weak.lock();
                  if (!self) return;
                  if (r.unavailable()) {
                    self->SetAvailable(false, "docker engine " + self->endpoint_ + ": " + r.message);
                  } else if (r.status > 0) {
                    self->SetAvailable(true, "");
                  }
                  if (done) done(std::move(r));
                },
                timeout, std::move(headers));
}

void EngineLink::StartPing() { SchedulePing(); }

void EngineLink::SchedulePing() {
  if (closed_) return;
  ping_timer_->t.expires_after(opts_.ping);
  ping_timer_->t.async_wait([weak = weak_from_this()](auto ec) {
    auto self = weak.lock();
    if (ec || !self || self->closed_) return;
    self->Call("GET", "/version", nullptr, [weak](docker::Result) {
      if (auto self = weak.lock()) self->SchedulePing();
    }, std::min(self->opts_.ping_timeout, self->opts_.timeout));
  });
}

}  // namespace mm::backend
