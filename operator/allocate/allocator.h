#pragma once

// Hands clients a slot on a game server: candidates from the pool state's
// indexes (partially filled first, then warm), the Reservation API
// handshake on the instance, 403 -> Full and the next candidate, a queue
// when nothing can take the client, and every 200 durable before it is
// answered (the controller owns pool state and journals it; the allocator
// asks). One attempt per client id at a time: concurrent requests for the
// same id join it, so a client never holds two slots. At most one
// handshake per instance is in flight, so concurrent allocations never
// send an instance more than it could accept. Decisions are the pure
// functions of decisions.h.
//
// Thread-safety: every method runs on the io thread.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}
namespace mm::reconcile {
class Controller;
}
namespace mm::metrics {
class Metrics;
}

namespace mm::allocate {

struct Request {
  std::string client;                         // already authenticated and checked
  std::string pool;                           // "" = any pool (or by selector)
  std::map<std::string, std::string> selector;  // pool labels
  std::chrono::milliseconds wait{0};          // long-poll while queued
  std::string metadata;  // match metadata, a JSON object's text ("" for none)
};

struct Result {
  enum class Kind { kAllocated, kQueued, kNotFound, kQueueFull, kUnavailable };
  Kind kind = Kind::kUnavailable;
  std::string pool;
  std::string instance;
  std::string host;
  std::map<std::string, int> ports;
  std::string address;  // host:port of the port named game, else the first
  std::string metadata;  // the match metadata the slot was taken with (JSON text, "" for none)
  std::string message;
  int retry_after_s = 1;
};

struct Options {
  std::size_t queue_limit = 10'000;              // per pool; 429 beyond
  std::chrono::milliseconds queue_ttl{60'000};   // a queued client not back by then is dropped
  // Called with true when the allocator is backlogged, and with false when
  // it is no longer: attempts wait for an instance that is mid-handshake,
  // or at least `linger_siblings` handshakes are in flight. Either way more
  // reservations will come within one handshake's time: a reservation's
  // journal write may linger to share its flush with them (Store::Linger),
  // which saves CPU when the machine is the bottleneck and costs the
  // waiting clients little. Every other write in the same window waits
  // with it (a reservation in another pool, a release, a pool applied):
  // the window is short (1 ms).
  std::function<void(bool)> on_backlog;
  // 0: only waiting attempts count. Like PostgreSQL's commit_siblings.
  // Lingering on any handshake in flight cost 8 clients on 8 instances up
  // to 10% of their rate (docs/benchmarks.md): with few in flight, the
  // wait is a large share of each allocation and saves few flushes.
  std::size_t linger_siblings = 16;
};

// What the client API asks of an allocator (the seam its handler tests use).
class Allocation {
 public:
  virtual ~Allocation() = default;
  // `done` runs exactly once, now or later, on the io thread.
  virtual void Allocate(Request request, std::function<void(Result)> done) = 0;
  // Cancels a queued request; false when the client is not queued.
  virtual bool Cancel(const std::string& client) = 0;
  // What the client holds or waits for, without a handshake.
  virtual Result Lookup(const std::string& client) const = 0;
};

class Allocator final : public Allocation {
 public:
  Allocator(boost::asio::io_context& io, reconcile::Controller& controller, metrics::Metrics* metrics,
            Options options = {});
  ~Allocator() override;

  void Allocate(Request request, std::function<void(Result)> done) override;
  bool Cancel(const std::string& client) override;
  Result Lookup(const std::string& client) const override;
  int Pending(const std::string& pool) const;
  // Graceful stop: no new attempts (503), long-polls answered now (202),
  // `drained` runs once every attempt in flight has answered.
  void Stop(std::function<void()> drained);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// "host:port" of the port named "game", else of the first port.
std::string AddressOf(const std::string& host, const std::map<std::string, int>& ports,
                      const std::vector<std::string>& port_order);

}  // namespace mm::allocate
