#include "operator/allocate/allocator.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <algorithm>
#include <deque>
#include <set>
#include <unordered_map>

#include "api/reservation/client_id.h"
#include "operator/http/client.h"
#include "operator/metrics/metrics.h"
#include "operator/reconcile/controller.h"
#include "operator/state/pool_state.h"

namespace mm::allocate {
namespace net = boost::asio;
using state::Instance;
using state::InstanceState;
using SteadyClock = std::chrono::steady_clock;

std::string AddressOf(const std::string& host, const std::map<std::string, int>& ports,
                      const std::vector<std::string>& port_order) {
  auto it = ports.find("game");
  if (it == ports.end() && !port_order.empty()) it = ports.find(port_order.front());
  if (it == ports.end() && !ports.empty()) it = ports.begin();
  return it == ports.end() ? host : host + ":" + std::to_string(it->second);
}

namespace {

struct Attempt {
  Request req;
  std::vector<std::string> pools;
  std::set<std::string> tried;  // "pool/instance" that refused or failed
  SteadyClock::time_point start = SteadyClock::now();
  bool from_queue = false;
  std::function<void(Result)> done;
};

struct Queued {
  std::vector<std::string> pools;
  SteadyClock::time_point deadline;
  bool serving = false;  // an attempt for it is in flight
  std::vector<std::function<void(Result)>> waiters;  // long-polls
};

}  // namespace

struct Allocator::Impl : std::enable_shared_from_this<Allocator::Impl> {
  Impl(net::io_context& io, reconcile::Controller& c, metrics::Metrics* m, Options o)
      : io(io), controller(c), metrics(m), options(o), client(io), sweeper(io) {}

  net::io_context& io;
  reconcile::Controller& controller;
  metrics::Metrics* metrics;
  Options options;
  std::set<std::string> handshaking;  // "pool/instance"
  std::deque<std::shared_ptr<Attempt>> blocked;  // every candidate was mid-handshake
  std::map<std::string, std::deque<std::string>> queues;  // pool -> clients, FIFO
  std::unordered_map<std::string, Queued> queued;         // client -> entry
  std::map<std::string, int> capacity;  // pool -> largest slot count seen on a Full instance
  http::KeepAliveClient client;          // connections to instances, reused
  net::steady_timer sweeper;

  static std::string Key(const std::string& pool, const std::string& name) { return pool + "/" + name; }

  // The pools a request may use, or why none.
  std::optional<std::string> Resolve(const Request& req, std::vector<std::string>& out) {
    if (!req.pool.empty()) {
      auto* ps = controller.Find(req.pool);
      if (!ps || ps->deleting) return "serverpools \"" + req.pool + "\" not found";
      out.push_back(req.pool);
      return std::nullopt;
    }
    for (const auto& p : controller.List()) {
      bool match = true;
      for (const auto& [k, v] : req.selector) {
        auto it = p.metadata.labels.find(k);
        match = match && it != p.metadata.labels.end() && it->second == v;
      }
      auto* ps = controller.Find(p.metadata.name);
      if (match && ps && !ps->deleting) out.push_back(p.metadata.name);
    }
    if (out.empty()) return req.selector.empty() ? "no pools" : "no pool matches the selector";
    return std::nullopt;
  }

  Result Allocated(const std::string& pool, const Instance& i) {
    Result r;
    r.kind = Result::Kind::kAllocated;
    r.pool = pool;
    r.instance = i.name;
    r.host = i.host;
    r.ports = i.ports;
    std::vector<std::string> order;
    if (auto* ps = controller.Find(pool)) {
      for (const auto& p : ps->pool().spec.templ.ports) order.push_back(p.name);
    }
    r.address = AddressOf(i.host, i.ports, order);
    return r;
  }

  void Finish(const std::shared_ptr<Attempt>& a, Result r) {
    if (metrics && !a->from_queue) {
      const char* result = r.kind == Result::Kind::kAllocated ? "allocated"
                           : r.kind == Result::Kind::kQueued  ? "queued"
                           : r.kind == Result::Kind::kQueueFull ? "rejected"
                                                               : "failed";
      double s = std::chrono::duration<double>(SteadyClock::now() - a->start).count();
      metrics->Allocation(r.pool.empty() ? (a->pools.empty() ? "" : a->pools.front()) : r.pool, result, s);
    }
    a->done(std::move(r));
  }

  void Try(const std::shared_ptr<Attempt>& a) {
    bool waiting_on_handshake = false;
    for (const auto& pool : a->pools) {
      auto* ps = controller.Find(pool);
      if (!ps || ps->deleting) continue;
      std::size_t want = a->tried.size() + handshaking.size() + 1;
      for (const Instance* c : ps->Candidates(want)) {
        std::string key = Key(pool, c->name);
        if (a->tried.contains(key)) continue;
        if (handshaking.contains(key)) {
          waiting_on_handshake = true;
          continue;
        }
        return Handshake(a, pool, c->name, ps->pool().spec.reservation.retries);
      }
    }
    if (waiting_on_handshake) {
      blocked.push_back(a);  // retried as soon as a handshake ends
      return;
    }
    Enqueue(a);
  }

  void Handshake(const std::shared_ptr<Attempt>& a, const std::string& pool, const std::string& name,
                 int retries_left) {
    auto* ps = controller.Find(pool);
    const Instance* inst = ps ? ps->Find(name) : nullptr;
    if (!inst) return Try(a);
    std::string key = Key(pool, name);
    handshaking.insert(key);
    const auto& policy = ps->pool().spec.reservation;
    http::ClientRequest hreq{inst->control_host, static_cast<std::uint16_t>(inst->control_port), "POST",
                             "/reservation/" + reservation::PercentEncode(a->req.client), "",
                             std::chrono::milliseconds(policy.timeoutMs)};
    client.Call(hreq, [self = shared_from_this(), a, pool, name, key, retries_left,
                       cooldown = policy.cooldownMs](http::ClientResponse r) {
      self->handshaking.erase(key);
      self->OnHandshake(a, pool, name, retries_left, cooldown, r);
      self->RetryBlocked();
    });
  }

  void OnHandshake(const std::shared_ptr<Attempt>& a, const std::string& pool, const std::string& name,
                   int retries_left, int cooldown_ms, const http::ClientResponse& r) {
    if (metrics) metrics->Reservation(pool, r.status);
    auto* ps = controller.Find(pool);
    const Instance* inst = ps ? ps->Find(name) : nullptr;
    std::string key = Key(pool, name);
    if (!inst || inst->state == InstanceState::kTerminating || inst->state == InstanceState::kExited) {
      a->tried.insert(key);
      return Try(a);
    }
    if (r.status == 200) {
      bool was_ready = inst->state == InstanceState::kReady;
      ps->AddReservation(name, a->req.client);
      if (was_ready) controller.Enqueue(pool);  // the warm pool shrank: refill now
      Result ok = Allocated(pool, *inst);
      // Durable before it is acknowledged.
      controller.PersistReservation(pool, name, a->req.client, true,
                                    [self = shared_from_this(), a, ok](std::optional<std::string> err) {
                                      if (err) {
                                        Result fail;
                                        fail.kind = Result::Kind::kUnavailable;
                                        fail.message = "could not record the reservation: " + *err;
                                        return self->Finish(a, std::move(fail));
                                      }
                                      self->Finish(a, ok);
                                    });
      return;
    }
    if (r.status == 403) {
      int held = static_cast<int>(inst->reservations.size());
      capacity[pool] = std::max(capacity[pool], held);
      ps->SetState(name, InstanceState::kFull);
      controller.Persist(*ps->Find(name));
      controller.Enqueue(pool);
      a->tried.insert(key);
      return Try(a);
    }
    if (r.status == 0 && retries_left > 0) {
      auto timer = std::make_shared<net::steady_timer>(io, std::chrono::milliseconds(cooldown_ms));
      timer->async_wait([self = shared_from_this(), a, pool, name, retries_left, timer](auto) {
        self->Handshake(a, pool, name, retries_left - 1);
      });
      return;
    }
    // A transport failure after every retry, or an unexpected status: this
    // instance is skipped for this client, who is served elsewhere.
    spdlog::warn("pool {}: reservation on {} failed: {}", pool, name,
                 r.status ? "HTTP " + std::to_string(r.status) : r.error);
    a->tried.insert(key);
    Try(a);
  }

  void RetryBlocked() {
    std::deque<std::shared_ptr<Attempt>> again;
    again.swap(blocked);
    for (auto& a : again) Try(a);
  }

  void Enqueue(const std::shared_ptr<Attempt>& a) {
    const std::string& client = a->req.client;
    auto it = queued.find(client);
    if (it == queued.end() && a->from_queue) return;  // cancelled meanwhile
    if (it == queued.end()) {
      for (const auto& pool : a->pools) {
        if (queues[pool].size() >= options.queue_limit) {
          Result full;
          full.kind = Result::Kind::kQueueFull;
          full.pool = pool;
          full.message = "queue of pool " + pool + " is full";
          return Finish(a, std::move(full));
        }
      }
      Queued q{a->pools, SteadyClock::now() + options.queue_ttl, false, {}};
      it = queued.emplace(client, std::move(q)).first;
      for (const auto& pool : a->pools) queues[pool].push_back(client);
    }
    it->second.serving = false;
    it->second.deadline = SteadyClock::now() + options.queue_ttl;
    for (const auto& pool : a->pools) {
      controller.Enqueue(pool);  // demand changed: the reconciler may grow the pool
      UpdatePending(pool);
    }
    if (a->from_queue) return;  // still waiting; nobody to answer now
    Result r;
    r.kind = Result::Kind::kQueued;
    r.pool = a->pools.size() == 1 ? a->pools.front() : "";
    r.message = "queued: no instance can take the client yet";
    if (a->req.wait.count() > 0) {
      // Long-poll: answer when served, or 202 when the wait is over.
      auto done = std::make_shared<std::function<void(Result)>>(
          [self = shared_from_this(), a](Result res) { self->Finish(a, std::move(res)); });
      auto timer = std::make_shared<net::steady_timer>(io, a->req.wait);
      auto fired = std::make_shared<bool>(false);
      it->second.waiters.push_back([done, fired, timer](Result res) {
        if (std::exchange(*fired, true)) return;
        timer->cancel();
        (*done)(std::move(res));
      });
      timer->async_wait([done, fired, r](auto ec) {
        if (ec || std::exchange(*fired, true)) return;
        (*done)(r);
      });
      return;
    }
    Finish(a, std::move(r));
  }

  // Serves queued clients of `pool` first-come while instances can take them.
  // A client keeps its place in the queue (and counts as demand) until its
  // attempt succeeds.
  void Serve(const std::string& pool) {
    auto& q = queues[pool];
    auto* ps = controller.Find(pool);
    if (!ps) return;
    auto now = SteadyClock::now();
    std::erase_if(q, [&](const std::string& c) {
      auto it = queued.find(c);
      if (it == queued.end()) return true;
      if (it->second.deadline < now && !it->second.serving && it->second.waiters.empty()) {
        queued.erase(it);
        return true;
      }
      return false;
    });
    std::size_t free = 0;
    for (const Instance* c : ps->Candidates(q.size() + handshaking.size())) {
      free += !handshaking.contains(Key(pool, c->name));
    }
    const std::vector<std::string> line(q.begin(), q.end());
    for (const auto& client : line) {
      if (free == 0) break;
      auto it = queued.find(client);
      if (it == queued.end() || it->second.serving) continue;
      it->second.serving = true;
      --free;
      auto a = std::make_shared<Attempt>();
      a->req.client = client;
      a->pools = it->second.pools;
      a->from_queue = true;
      a->done = [self = shared_from_this(), client](Result r) {
        auto it = self->queued.find(client);
        if (it == self->queued.end()) return;
        auto waiters = std::move(it->second.waiters);
        auto pools = it->second.pools;
        self->queued.erase(it);
        for (const auto& p : pools) self->UpdatePending(p);
        for (auto& w : waiters) w(r);
      };
      Try(a);  // if it cannot be placed after all, it stays in line
    }
    UpdatePending(pool);
  }

  int Pending(const std::string& pool) const {
    auto it = queues.find(pool);
    if (it == queues.end()) return 0;
    int n = 0;
    for (const auto& c : it->second) n += queued.contains(c);
    return n;
  }

  void UpdatePending(const std::string& pool) {
    if (metrics) metrics->SetPending(pool, Pending(pool));
  }

  void Sweep() {
    sweeper.expires_after(std::chrono::seconds(1));
    sweeper.async_wait([weak = weak_from_this()](auto ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      auto now = SteadyClock::now();
      for (auto it = self->queued.begin(); it != self->queued.end();) {
        it = (it->second.deadline < now && it->second.waiters.empty()) ? self->queued.erase(it) : std::next(it);
      }
      for (auto& [pool, q] : self->queues) {
        std::erase_if(q, [&](const std::string& c) { return !self->queued.contains(c); });
        self->UpdatePending(pool);
      }
      // Keep-alive connections only to instances that still exist.
      std::set<std::string> live;
      for (const auto& p : self->controller.List()) {
        if (auto* ps = self->controller.Find(p.metadata.name)) {
          for (const Instance* i : ps->InstancesUnordered()) {
            live.insert(i->control_host + ":" + std::to_string(i->control_port));
          }
        }
      }
      self->client.Prune(live);
      self->Sweep();
    });
  }
};

Allocator::Allocator(net::io_context& io, reconcile::Controller& controller, metrics::Metrics* metrics,
                     Options options)
    : impl_(std::make_shared<Impl>(io, controller, metrics, options)) {
  std::weak_ptr<Impl> weak = impl_;
  controller.OnInstanceReady([weak](const std::string& pool) {
    if (auto self = weak.lock()) self->Serve(pool);
  });
  controller.SetDemand([weak](const std::string& pool) {
    auto self = weak.lock();
    if (!self) return 0;
    return state::QueuedDemand(self->Pending(pool), self->capacity[pool]);
  });
  impl_->Sweep();
}

Allocator::~Allocator() {
  impl_->sweeper.cancel();
  impl_->controller.OnInstanceReady(nullptr);
  impl_->controller.SetDemand(nullptr);
}

void Allocator::Allocate(Request request, std::function<void(Result)> done) {
  auto& impl = *impl_;
  auto a = std::make_shared<Attempt>();
  a->req = std::move(request);
  a->done = std::move(done);
  if (!impl.controller.started()) {
    Result r;
    r.message = "matchmakerd is starting";
    return impl.Finish(a, std::move(r));
  }
  if (auto err = impl.Resolve(a->req, a->pools)) {
    Result r;
    r.kind = Result::Kind::kNotFound;
    r.message = *err;
    return impl.Finish(a, std::move(r));
  }
  // The same client again: the same server, if the server still agrees.
  for (const auto& pool : a->pools) {
    auto* ps = impl.controller.Find(pool);
    const Instance* held = ps ? ps->InstanceOf(a->req.client) : nullptr;
    if (!held) continue;
    struct Held {
      std::string name;
    } snapshot{held->name};
    http::ClientRequest verify{held->control_host, static_cast<std::uint16_t>(held->control_port), "GET",
                               "/reservation/" + reservation::PercentEncode(a->req.client), "",
                               std::chrono::milliseconds(ps->pool().spec.reservation.timeoutMs)};
    impl.client.Call(verify, [self = impl_, a, pool, snapshot](http::ClientResponse r) {
      auto* ps = self->controller.Find(pool);
      if (r.status == 200 && ps && ps->Find(snapshot.name)) {
        return self->Finish(a, self->Allocated(pool, *ps->Find(snapshot.name)));
      }
      // No longer verifies: forget it, allocate afresh.
      if (ps && ps->RemoveReservation(snapshot.name, a->req.client)) {
        self->controller.PersistReservation(pool, snapshot.name, a->req.client, false);
      }
      self->Try(a);
    });
    return;
  }
  if (auto it = impl.queued.find(a->req.client); it != impl.queued.end() && !it->second.serving) {
    // Still queued: try again now (an instance may have freed up), keeping its place.
    return impl.Try(a);
  }
  impl.Try(a);
}

bool Allocator::Cancel(const std::string& client) {
  auto it = impl_->queued.find(client);
  if (it == impl_->queued.end()) return false;
  auto pools = it->second.pools;
  impl_->queued.erase(it);
  for (const auto& p : pools) {
    std::erase(impl_->queues[p], client);  // frees its place for the queue bound now
    impl_->UpdatePending(p);
  }
  return true;
}

Result Allocator::Lookup(const std::string& client) const {
  for (const auto& p : impl_->controller.List()) {
    auto* ps = impl_->controller.Find(p.metadata.name);
    if (const Instance* i = ps ? ps->InstanceOf(client) : nullptr) return impl_->Allocated(p.metadata.name, *i);
  }
  Result r;
  if (auto it = impl_->queued.find(client); it != impl_->queued.end()) {
    r.kind = Result::Kind::kQueued;
    r.message = "queued";
    return r;
  }
  r.kind = Result::Kind::kNotFound;
  r.message = "the client holds no slot and is not queued";
  return r;
}

int Allocator::Pending(const std::string& pool) const { return impl_->Pending(pool); }

}  // namespace mm::allocate
