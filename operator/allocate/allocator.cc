#include "operator/allocate/allocator.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/container_hash/hash.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <algorithm>
#include <deque>
#include <set>
#include <string_view>
#include <unordered_map>

#include "api/reservation/client_id.h"
#include "operator/allocate/decisions.h"
#include "operator/log/context.h"
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

// One request waiting for an attempt's answer.
struct Waiter {
  std::function<void(Result)> done;
  std::chrono::milliseconds wait{0};  // long-poll while queued
};

// The one attempt in flight for a client id (single flight): every request
// for that id meanwhile joins it and gets the same answer.
struct Attempt {
  std::string client;
  std::string metadata;  // sent with each handshake (the first request's, for requests that join)
  std::vector<std::string> pools;
  std::set<std::string> tried;  // "pool/instance" that refused or failed
  SteadyClock::time_point start = SteadyClock::now();
  bool from_queue = false;  // started by serving the queue
  bool reserved = false;    // a server granted a slot (in memory, maybe not yet durable)
  bool newly_queued = false;  // this attempt put the client in line (else it was there already)
  bool blocked = false;       // waiting for a handshake of one of its pools to end
  int reasked = 0;          // Full instances asked again by this attempt
  std::vector<Waiter> waiters;
};

struct Queued {
  std::vector<std::string> pools;
  std::string metadata;  // of the request that queued it
  SteadyClock::time_point since;  // its first request: allocation durations start there
  SteadyClock::time_point deadline;
  std::vector<std::function<void(Result)>> waiters;  // long-polls
};

// Sets and maps of names looked up by string_view: no key is built to ask.
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return boost::hash<std::string_view>{}(s); }
};
// Open addressing: a lookup that misses (most of them: each candidate is
// asked whether it is busy) rarely compares a string.
using NameSet = boost::unordered_flat_set<std::string, NameHash, std::equal_to<>>;

Result Unavailable(std::string message, int retry_after_s = 1) {
  Result r;
  r.kind = Result::Kind::kUnavailable;
  r.message = std::move(message);
  r.retry_after_s = retry_after_s;
  return r;
}

}  // namespace

struct Allocator::Impl : std::enable_shared_from_this<Allocator::Impl> {
  Impl(net::io_context& io, reconcile::Controller& c, metrics::Metrics* m, Options o)
      : io(io), controller(c), metrics(m), options(o), client(io), sweeper(io) {}

  net::io_context& io;
  reconcile::Controller& controller;
  metrics::Metrics* metrics;
  Options options;
  std::unordered_map<std::string, std::shared_ptr<Attempt>> flights;  // client -> its attempt
  // Instances mid-handshake, by pool (at most one handshake per instance),
  // and how many there are in every pool.
  std::unordered_map<std::string, NameSet, NameHash, std::equal_to<>> handshaking;
  std::size_t handshakes = 0;
  // Attempts that found every candidate mid-handshake, per pool, first come
  // first served: a handshake that ends frees one instance, so it wakes one
  // attempt of its pool (not all of them: that was quadratic in the
  // number waiting, and collapsed throughput when thousands pressed Play).
  std::map<std::string, std::deque<std::shared_ptr<Attempt>>> blocked;
  std::size_t waiting = 0;  // attempts with `blocked` set
  bool backlog = false;     // what on_backlog was last told
  std::map<std::string, std::deque<std::string>> queues;  // pool -> clients, FIFO
  std::unordered_map<std::string, Queued> queued;         // client -> entry
  std::map<std::string, int> capacity;  // pool -> largest slot count seen on a Full instance
  http::KeepAliveClient client;          // connections to instances, reused
  net::steady_timer sweeper;
  bool stopping = false;
  std::function<void()> drained;  // called once no attempt is in flight (Stop)

  static std::string Key(std::string_view pool, std::string_view name) {
    std::string key;
    key.reserve(pool.size() + 1 + name.size());
    key.append(pool).append(1, '/').append(name);
    return key;
  }

  const NameSet* Busy(std::string_view pool) const {
    auto it = handshaking.find(pool);
    return it == handshaking.end() ? nullptr : &it->second;
  }
  std::size_t BusyCount(std::string_view pool) const {
    const NameSet* busy = Busy(pool);
    return busy ? busy->size() : 0;
  }
  bool IsBusy(std::string_view pool, std::string_view name) const {
    const NameSet* busy = Busy(pool);
    return busy && busy->contains(name);
  }
  void SetBusy(const std::string& pool, const std::string& name) {
    if (handshaking[pool].insert(name).second) ++handshakes;
    UpdateBacklog();
  }
  void SetIdle(const std::string& pool, const std::string& name) {
    auto it = handshaking.find(pool);
    if (it == handshaking.end() || it->second.erase(name) == 0) return;
    --handshakes;
    if (it->second.empty()) handshaking.erase(it);
    UpdateBacklog();
  }
  // Journal writes linger while clients wait for busy instances, or while
  // many handshakes are in flight (Options::linger_siblings).
  void UpdateBacklog() {
    bool on = waiting > 0 || (options.linger_siblings > 0 && handshakes >= options.linger_siblings);
    if (on == backlog || !options.on_backlog) return;
    backlog = on;
    options.on_backlog(on);
  }

  // The pools a request may use, or why none.
  std::optional<std::string> Resolve(const Request& req, std::vector<std::string>& out) {
    if (!req.pool.empty()) {
      auto* ps = controller.Find(req.pool);
      if (!ps || ps->deleting) return "serverpools \"" + req.pool + "\" not found";
      out.push_back(req.pool);
      return std::nullopt;
    }
    for (const state::PoolState* ps : controller.Pools()) {
      if (ps->deleting) continue;
      const auto& labels = ps->pool().metadata.labels;
      bool match = true;
      for (const auto& [k, v] : req.selector) {
        auto it = labels.find(k);
        match = match && it != labels.end() && it->second == v;
      }
      if (match) out.push_back(ps->name());
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

  Result Allocated(const std::string& pool, const Instance& i, const std::string& client) {
    Result r = Allocated(pool, i);
    if (auto m = i.metadata.find(client); m != i.metadata.end()) r.metadata = m->second;
    return r;
  }

  std::shared_ptr<Attempt> Begin(const std::string& client, std::vector<std::string> pools, bool from_queue,
                                 std::string metadata = "") {
    auto a = std::make_shared<Attempt>();
    a->client = client;
    a->metadata = std::move(metadata);
    a->pools = std::move(pools);
    a->from_queue = from_queue;
    flights[client] = a;
    return a;
  }

  // Ends the client's attempt: every request that joined it gets `r`.
  void Finish(const std::shared_ptr<Attempt>& a, Result r) {
    if (auto it = flights.find(a->client); it != flights.end() && it->second == a) flights.erase(it);
    // One count per client request, by what it got; a client polling ten
    // times then served is ten "polled" and one "allocated". Serving the
    // queue counts only the slot it takes (its request counted "queued").
    if (metrics && (!a->from_queue || a->reserved)) {
      const char* result = r.kind == Result::Kind::kAllocated ? (a->reserved ? "allocated" : "held")
                           : r.kind == Result::Kind::kQueued  ? (a->newly_queued ? "queued" : "polled")
                           : r.kind == Result::Kind::kQueueFull ? "rejected"
                                                               : "failed";
      double s = std::chrono::duration<double>(SteadyClock::now() - a->start).count();
      std::string pool = r.pool.empty() ? (a->pools.empty() ? "" : a->pools.front()) : r.pool;
      if (!pool.empty()) metrics->Allocation(pool, result, s);
    }
    if (a->reserved) {
      // The client holds a slot now (durable or not yet): it leaves the
      // queue, and its long-polls get this answer.
      if (auto q = queued.find(a->client); q != queued.end()) {
        auto waiters = std::move(q->second.waiters);
        auto pools = q->second.pools;
        queued.erase(q);
        for (const auto& p : pools) UpdatePending(p);
        for (auto& w : waiters) w(r);
      }
    }
    auto waiters = std::move(a->waiters);
    a->waiters.clear();
    for (auto& w : waiters) {
      if (r.kind == Result::Kind::kQueued && w.wait.count() > 0 && !stopping) {
        LongPoll(a->client, std::move(w), r);
      } else {
        w.done(r);
      }
    }
    if (stopping && flights.empty() && drained) std::exchange(drained, nullptr)();
  }

  // Answers `w` when its queued client is served, or with `queued_result`
  // (202) when its wait is over.
  void LongPoll(const std::string& client, Waiter w, const Result& queued_result) {
    auto q = queued.find(client);
    if (q == queued.end()) return w.done(queued_result);
    auto done = std::make_shared<std::function<void(Result)>>(std::move(w.done));
    auto timer = std::make_shared<net::steady_timer>(io, w.wait);
    auto fired = std::make_shared<bool>(false);
    q->second.waiters.push_back([done, fired, timer](Result res) {
      if (std::exchange(*fired, true)) return;
      timer->cancel();
      (*done)(std::move(res));
    });
    timer->async_wait([done, fired, queued_result](auto ec) {
      if (ec || std::exchange(*fired, true)) return;
      (*done)(queued_result);
    });
  }

  // A client that holds a slot: the same server while it still holds it.
  void Held(const std::shared_ptr<Attempt>& a, reconcile::Controller::Holding h) {
    if (!h.durable) {
      // The server granted it but the journal could not record it yet.
      return controller.SyncReservation(h, a->client, [self = shared_from_this(), a, h](auto err) {
        if (err) return self->Finish(a, Unavailable("the reservation is not recorded yet: " + *err));
        auto now_durable = h;
        now_durable.durable = true;
        self->Held(a, now_durable);
      });
    }
    auto* ps = controller.Find(h.pool);
    const Instance* inst = ps ? ps->Find(h.instance) : nullptr;
    if (!inst) return Try(a);
    http::ClientRequest verify{inst->control_host, static_cast<std::uint16_t>(inst->control_port), "GET",
                               "/reservation/" + reservation::PercentEncode(a->client), "",
                               std::chrono::milliseconds(ps->pool().spec.reservation.timeoutMs)};
    client.Call(verify, [self = shared_from_this(), a, h](http::ClientResponse r) {
      log::Scope scope({.pool = h.pool, .instance = h.instance, .client = a->client});
      auto* ps = self->controller.Find(h.pool);
      const Instance* inst = ps ? ps->Find(h.instance) : nullptr;
      switch (JudgeVerify(inst ? r.status : 404)) {
        case Verify::kSame:
          return self->Finish(a, self->Allocated(h.pool, *inst, a->client));
        case Verify::kGone:
          // Forgotten durably before a new slot is taken: a restart must
          // never find the client on two servers.
          return self->controller.Release(h.pool, h.instance, a->client, [self, a](auto err) {
            if (err) return self->Finish(a, Unavailable("could not record the released reservation: " + *err));
            self->Try(a);
          });
        case Verify::kUnknown:
          spdlog::warn("pool {}: verifying {} on {} failed: {}", h.pool, a->client, h.instance,
                       r.status ? "HTTP " + std::to_string(r.status) : r.error);
          return self->Finish(a, Unavailable("the game server holding the client's slot did not answer; retry"));
      }
    });
  }

  void Try(const std::shared_ptr<Attempt>& a) {
    bool waiting_on_handshake = false;
    for (const auto& pool : a->pools) {
      auto* ps = controller.Find(pool);
      if (!ps || ps->deleting) continue;
      // Those of its busy instances and those it tried may come first: the
      // first free candidate is within that many plus one.
      const NameSet* busy = Busy(pool);
      auto candidates = ps->Candidates(a->tried.size() + (busy ? busy->size() : 0) + 1);
      std::vector<std::string_view> names;
      names.reserve(candidates.size());
      for (const Instance* c : candidates) names.push_back(c->name);
      Pick pick = PickCandidate(
          names, [&](std::string_view n) { return !a->tried.empty() && a->tried.contains(Key(pool, n)); },
          [&](std::string_view n) { return busy && busy->contains(n); });
      if (pick.index >= 0) {
        std::string name(names[pick.index]);
        return Handshake(a, pool, name, ps->pool().spec.reservation.retries);
      }
      waiting_on_handshake = waiting_on_handshake || pick.blocked;
    }
    if (waiting_on_handshake) {
      a->blocked = true;  // tried again when a handshake of one of its pools ends
      ++waiting;
      UpdateBacklog();
      for (const auto& pool : a->pools) blocked[pool].push_back(a);
      return;
    }
    if (AskFullAgain(a)) return;
    Enqueue(a);
  }

  // Before the client is queued (and a new instance started for it): a
  // Full instance may have freed a slot. At most kFullReasksPerAttempt per
  // attempt, each instance at most once per reservation.cooldownMs, least
  // recently asked first: O(log n) per request, no scan of the pool.
  bool AskFullAgain(const std::shared_ptr<Attempt>& a) {
    if (a->reasked >= kFullReasksPerAttempt) return false;
    auto now = state::Clock::now();
    for (const auto& pool : a->pools) {
      auto* ps = controller.Find(pool);
      if (!ps || ps->deleting) continue;
      auto cooldown = std::chrono::milliseconds(ps->pool().spec.reservation.cooldownMs);
      for (const Instance* f : ps->FullToAsk(now, cooldown, kFullReasksPerAttempt + BusyCount(pool))) {
        if (a->tried.contains(Key(pool, f->name)) || IsBusy(pool, f->name)) continue;
        ++a->reasked;
        controller.Asking(pool, f->name);
        Handshake(a, pool, f->name, ps->pool().spec.reservation.retries);
        return true;
      }
    }
    return false;
  }

  void Handshake(const std::shared_ptr<Attempt>& a, const std::string& pool, const std::string& name,
                 int retries_left) {
    auto* ps = controller.Find(pool);
    const Instance* inst = ps ? ps->Find(name) : nullptr;
    if (!inst) return Try(a);
    // Busy at once: no other attempt picks it while its intent is written.
    SetBusy(pool, name);
    // Recorded before the server is asked: after a crash here, the slot it
    // may grant is not forgotten.
    controller.Intend(pool, name, a->client, a->metadata,
                      [self = shared_from_this(), a, pool, name, retries_left](std::optional<std::string> err) {
                        if (!err) return self->Ask(a, pool, name, retries_left);
                        // The journal's own error is logged once.
                        spdlog::debug("pool {}: {}", pool, *err);
                        self->SetIdle(pool, name);
                        self->Finish(a, Unavailable("cannot record the handshake: " + *err));
                        self->Unblock(pool);
                      });
  }

  // The intent is on disk: the handshake itself.
  void Ask(const std::shared_ptr<Attempt>& a, const std::string& pool, const std::string& name, int retries_left) {
    auto* ps = controller.Find(pool);
    const Instance* inst = ps ? ps->Find(name) : nullptr;
    if (!inst) {  // gone while its intent was written
      controller.Settle(pool, name, a->client);
      SetIdle(pool, name);
      Try(a);
      return Unblock(pool);
    }
    const auto& policy = ps->pool().spec.reservation;
    http::ClientRequest hreq{inst->control_host, static_cast<std::uint16_t>(inst->control_port), "POST",
                             "/reservation/" + reservation::PercentEncode(a->client), "",
                             std::chrono::milliseconds(policy.timeoutMs)};
    if (!a->metadata.empty()) {
      // The same envelope the client sent: {"metadata": {...}}.
      hreq.body = "{\"metadata\":" + a->metadata + "}";
      hreq.content_type = "application/json";
    }
    client.Call(hreq, [self = shared_from_this(), a, pool, name, retries_left,
                       cooldown = policy.cooldownMs](http::ClientResponse r) {
      self->SetIdle(pool, name);
      self->OnHandshake(a, pool, name, retries_left, cooldown, r);
      self->Unblock(pool);
    });
  }

  void OnHandshake(const std::shared_ptr<Attempt>& a, const std::string& pool, const std::string& name,
                   int retries_left, int cooldown_ms, const http::ClientResponse& r) {
    log::Scope scope({.pool = pool, .instance = name, .client = a->client});
    if (metrics) metrics->Reservation(pool, r.status);
    auto* ps = controller.Find(pool);
    const Instance* inst = ps ? ps->Find(name) : nullptr;
    bool live = inst && inst->state != InstanceState::kTerminating && inst->state != InstanceState::kExited;
    std::string key = Key(pool, name);
    switch (JudgeHandshake(r.status, r.timed_out, retries_left, live)) {
      case allocate::Handshake::kReserved: {
        Result ok = Allocated(pool, *inst);
        ok.metadata = a->metadata;
        a->reserved = true;
        // In memory at once (the server holds the player), acknowledged
        // only once durable.
        return controller.Reserve(pool, name, a->client, a->metadata, [self = shared_from_this(), a, ok](auto err) {
          if (err) return self->Finish(a, Unavailable("could not record the reservation: " + *err));
          self->Finish(a, ok);
        });
      }
      case allocate::Handshake::kFull:
        controller.Settle(pool, name, a->client);
        capacity[pool] = std::max(capacity[pool], static_cast<int>(inst->reservations.size()));
        controller.MarkFull(pool, name);
        a->tried.insert(key);
        return Try(a);
      case allocate::Handshake::kRetry: {
        auto timer = std::make_shared<net::steady_timer>(io, std::chrono::milliseconds(cooldown_ms));
        timer->async_wait([self = shared_from_this(), a, pool, name, retries_left, timer](auto) {
          self->Handshake(a, pool, name, retries_left - 1);
        });
        return;
      }
      case allocate::Handshake::kTrip:
        // No answer: the next clients are not sent to it either until a
        // liveness probe gets one; this client is served elsewhere now.
        spdlog::warn("pool {}: reservation on {} got no answer: {}", pool, name, r.error);
        controller.Settle(pool, name, a->client);
        controller.Trip(pool, name);
        a->tried.insert(key);
        return Try(a);
      case allocate::Handshake::kSkip:
        // An unexpected status: this instance is skipped for this client,
        // who is served elsewhere.
        spdlog::warn("pool {}: reservation on {} failed: {}", pool, name,
                     r.status ? "HTTP " + std::to_string(r.status) : r.error);
        [[fallthrough]];
      case allocate::Handshake::kGone:
        controller.Settle(pool, name, a->client);
        a->tried.insert(key);
        return Try(a);
    }
  }

  // A handshake of `pool` ended: its instance may take the next attempt
  // that was waiting for one (an attempt that waits on several pools is
  // woken once, by whichever ends first).
  // One that cannot use the freed instance (it was refused there already)
  // wakes the next, until one starts a handshake: a free instance never
  // sits idle while attempts wait.
  void Unblock(const std::string& pool) {
    auto first = blocked.find(pool);
    if (first == blocked.end()) return;
    // One pass at most: an attempt that blocks again goes to the back.
    for (std::size_t n = first->second.size(); n > 0; --n) {
      auto it = blocked.find(pool);
      if (it == blocked.end()) return;
      if (it->second.empty()) {
        blocked.erase(it);
        return;
      }
      auto a = std::move(it->second.front());
      it->second.pop_front();
      if (!a->blocked) continue;
      a->blocked = false;
      --waiting;
      // Done once the freed instance is taken: an attempt that started a
      // handshake in another of its pools leaves it to the next one.
      std::size_t before = BusyCount(pool);
      Try(a);
      UpdateBacklog();
      if (BusyCount(pool) > before) return;
    }
  }


  // Nothing can take the client now: it waits in line (202), keeping its
  // place if it had one.
  void Enqueue(const std::shared_ptr<Attempt>& a) {
    const std::string& client = a->client;
    auto it = queued.find(client);
    if (it == queued.end()) {
      if (a->from_queue) {
        // Cancelled meanwhile: nobody waits for it.
        Result r;
        r.kind = Result::Kind::kNotFound;
        r.message = "cancelled";
        return Finish(a, std::move(r));
      }
      for (const auto& pool : a->pools) {
        if (queues[pool].size() >= options.queue_limit) {
          Result full;
          full.kind = Result::Kind::kQueueFull;
          full.pool = pool;
          full.message = "queue of pool " + pool + " is full";
          return Finish(a, std::move(full));
        }
      }
      Queued q{a->pools, a->metadata, a->start, SteadyClock::now() + options.queue_ttl, {}};
      it = queued.emplace(client, std::move(q)).first;
      a->newly_queued = true;
      for (const auto& pool : a->pools) queues[pool].push_back(client);
    }
    it->second.deadline = SteadyClock::now() + options.queue_ttl;
    for (const auto& pool : it->second.pools) {
      controller.Enqueue(pool);  // demand changed: the reconciler may grow the pool
      UpdatePending(pool);
    }
    Result r;
    r.kind = Result::Kind::kQueued;
    r.pool = it->second.pools.size() == 1 ? it->second.pools.front() : "";
    r.message = "queued: no instance can take the client yet";
    Finish(a, std::move(r));
  }

  // Serves queued clients of `pool` first-come while instances can take them.
  // A client keeps its place in the queue (and counts as demand) until a
  // server grants it a slot.
  void Serve(const std::string& pool) {
    auto& q = queues[pool];
    auto* ps = controller.Find(pool);
    if (!ps || stopping) return;
    auto now = SteadyClock::now();
    std::erase_if(q, [&](const std::string& c) {
      auto it = queued.find(c);
      if (it == queued.end()) return true;
      if (it->second.deadline < now && !flights.contains(c) && it->second.waiters.empty()) {
        queued.erase(it);
        return true;
      }
      return false;
    });
    std::size_t free = 0;
    for (const Instance* c : ps->Candidates(q.size() + BusyCount(pool))) {
      free += !IsBusy(pool, c->name);
    }
    const std::vector<std::string> line(q.begin(), q.end());
    for (const auto& c : ToServe(line, free, [&](const std::string& c) { return flights.contains(c); })) {
      auto it = queued.find(c);
      if (it == queued.end()) continue;
      auto a = Begin(c, it->second.pools, /*from_queue=*/true, it->second.metadata);
      a->start = it->second.since;
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
        bool expired = it->second.deadline < now && it->second.waiters.empty() && !self->flights.contains(it->first);
        it = expired ? self->queued.erase(it) : std::next(it);
      }
      for (auto& [pool, q] : self->queues) {
        std::erase_if(q, [&](const std::string& c) { return !self->queued.contains(c); });
        self->UpdatePending(pool);
      }
      // Keep-alive connections only to instances that still exist.
      std::set<std::string> live;
      for (const state::PoolState* ps : self->controller.Pools()) {
        for (const Instance* i : ps->InstancesUnordered()) {
          live.insert(i->control_host + ":" + std::to_string(i->control_port));
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
  if (!impl.controller.started() || impl.stopping) {
    return done(Unavailable(impl.stopping ? "matchmakerd is stopping" : "matchmakerd is starting"));
  }
  std::vector<std::string> pools;
  if (auto err = impl.Resolve(request, pools)) {
    if (impl.metrics) impl.metrics->UnknownPool();
    Result r;
    r.kind = Result::Kind::kNotFound;
    r.message = *err;
    return done(std::move(r));
  }
  Waiter w{std::move(done), request.wait};
  auto flight = impl.flights.find(request.client);
  auto holding = flight == impl.flights.end() ? impl.controller.Holder(request.client) : std::nullopt;
  auto q = impl.queued.find(request.client);
  switch (RouteRequest(flight != impl.flights.end(), holding.has_value(), q != impl.queued.end())) {
    case Route::kJoin:
      flight->second->waiters.push_back(std::move(w));
      return;
    case Route::kHeld: {
      // Its metadata serves only if the slot is gone and a new one is taken.
      auto a = impl.Begin(request.client, std::move(pools), false, std::move(request.metadata));
      a->waiters.push_back(std::move(w));
      return impl.Held(a, *holding);
    }
    case Route::kServeQueued: {
      // Still queued: try again now (an instance may have freed up), keeping its place.
      auto a = impl.Begin(request.client, q->second.pools, false, q->second.metadata);
      a->start = q->second.since;
      a->waiters.push_back(std::move(w));
      return impl.Try(a);
    }
    case Route::kFresh: {
      auto a = impl.Begin(request.client, std::move(pools), false, std::move(request.metadata));
      a->waiters.push_back(std::move(w));
      return impl.Try(a);
    }
  }
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
  if (auto h = impl_->controller.Holder(client)) {
    if (auto* ps = impl_->controller.Find(h->pool); ps && ps->Find(h->instance)) {
      if (!h->durable) return Unavailable("the reservation is not recorded yet");
      return impl_->Allocated(h->pool, *ps->Find(h->instance), client);
    }
  }
  Result r;
  if (auto it = impl_->queued.find(client); it != impl_->queued.end() || impl_->flights.contains(client)) {
    r.kind = Result::Kind::kQueued;
    r.message = "queued";
    return r;
  }
  r.kind = Result::Kind::kNotFound;
  r.message = "the client holds no slot and is not queued";
  return r;
}

void Allocator::Stop(std::function<void()> drained) {
  auto& impl = *impl_;
  impl.stopping = true;
  impl.sweeper.cancel();
  // Long-polls are answered now (202: still queued); attempts in flight
  // finish their handshake and their journal write.
  std::vector<std::function<void(Result)>> polls;
  for (auto& [client, q] : impl.queued) {
    for (auto& w : q.waiters) polls.push_back(std::move(w));
    q.waiters.clear();
  }
  Result r;
  r.kind = Result::Kind::kQueued;
  r.message = "queued: matchmakerd is restarting";
  r.retry_after_s = 2;
  for (auto& w : polls) w(r);
  if (impl.flights.empty()) return drained();
  impl.drained = std::move(drained);
}

int Allocator::Pending(const std::string& pool) const { return impl_->Pending(pool); }

}  // namespace mm::allocate
