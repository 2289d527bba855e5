#include "operator/reconcile/journal.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <unordered_map>

#include "operator/store/store.h"

namespace mm::reconcile {
namespace net = boost::asio;

struct Journal::Impl : std::enable_shared_from_this<Journal::Impl> {
  Impl(net::io_context& io, store::Store& store, std::chrono::milliseconds retry)
      : io(io), store(store), retry(retry), timer(io) {}

  struct Pending {
    std::uint64_t seq = 0;
    store::Op op;
    bool failed = false;  // waits for the retry timer (or a Sync)
    std::vector<Done> waiters;
  };

  net::io_context& io;
  store::Store& store;
  std::chrono::milliseconds retry;
  net::steady_timer timer;
  bool timer_armed = false;
  bool stopped = false;
  std::uint64_t next_seq = 0;
  std::unordered_map<std::string, Pending> pending;
  std::size_t failed = 0;
  std::string last_error;
  std::function<void(bool)> on_health;
  bool up = true;

  void Health() {
    bool now_up = failed == 0;
    if (now_up == up) return;
    up = now_up;
    if (on_health) on_health(up);
  }

  // Commits `ops` (already tracked in `pending` under `seqs`); `done` runs on
  // the io thread.
  void Commit(std::vector<store::Op> ops, std::vector<std::uint64_t> seqs, Done done) {
    std::vector<std::string> keys;
    keys.reserve(ops.size());
    for (const auto& op : ops) keys.push_back(op.key);
    store.Commit(std::move(ops), [weak = weak_from_this(), keys = std::move(keys), seqs = std::move(seqs),
                                  done = std::move(done)](std::optional<std::string> err) mutable {
      auto self = weak.lock();
      if (!self) return;
      net::post(self->io, [weak, keys = std::move(keys), seqs = std::move(seqs), done = std::move(done), err] {
        auto self = weak.lock();
        if (!self) return;
        self->Landed(keys, seqs, err);
        if (done) done(err);
      });
    });
  }

  void Landed(const std::vector<std::string>& keys, const std::vector<std::uint64_t>& seqs,
              const std::optional<std::string>& err) {
    if (err) {
      if (last_error != *err) spdlog::error("journal: {}; retrying every {} ms", *err, retry.count());
      last_error = *err;
    }
    for (std::size_t k = 0; k < keys.size(); ++k) {
      auto it = pending.find(keys[k]);
      if (it == pending.end() || it->second.seq != seqs[k]) continue;  // superseded by a newer write
      auto waiters = std::move(it->second.waiters);
      it->second.waiters.clear();
      if (err) {
        if (!it->second.failed) ++failed;
        it->second.failed = true;
      } else {
        if (it->second.failed) --failed;
        pending.erase(it);
      }
      for (auto& w : waiters) w(err);
    }
    if (!err && failed == 0 && !last_error.empty()) {
      spdlog::info("journal: writing again");
      last_error.clear();
    }
    if (failed > 0) Arm();
    Health();
  }

  void Arm() {
    if (timer_armed || stopped) return;
    timer_armed = true;
    timer.expires_after(retry);
    timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (!self) return;
      self->timer_armed = false;
      if (!ec) self->RetryFailed();
    });
  }

  // Every failed write again, newest value per key, in one group.
  void RetryFailed() {
    std::vector<store::Op> ops;
    std::vector<std::uint64_t> seqs;
    for (auto& [key, p] : pending) {
      if (!p.failed) continue;
      p.failed = false;
      --failed;
      p.seq = ++next_seq;
      ops.push_back(p.op);
      seqs.push_back(p.seq);
    }
    if (!ops.empty()) Commit(std::move(ops), std::move(seqs), nullptr);
  }

  void Track(std::vector<store::Op>& ops, std::vector<std::uint64_t>& seqs) {
    for (const auto& op : ops) {
      auto& p = pending[op.key];
      if (p.failed) --failed;  // this write supersedes the failed one
      p.failed = false;
      p.seq = ++next_seq;
      p.op = op;
      seqs.push_back(p.seq);
    }
  }
};

Journal::Journal(net::io_context& io, store::Store& store, std::chrono::milliseconds retry)
    : impl_(std::make_shared<Impl>(io, store, retry)) {}

Journal::~Journal() { Stop(); }

void Journal::Write(std::vector<store::Op> ops, Done done) {
  std::vector<std::uint64_t> seqs;
  impl_->Track(ops, seqs);
  impl_->Commit(std::move(ops), std::move(seqs), std::move(done));
}

bool Journal::Durable(const std::string& key) const { return !impl_->pending.contains(key); }

void Journal::Sync(const std::string& key, Done done) {
  auto it = impl_->pending.find(key);
  if (it == impl_->pending.end()) {
    net::post(impl_->io, [done = std::move(done)] { done(std::nullopt); });
    return;
  }
  it->second.waiters.push_back(std::move(done));
  if (it->second.failed) impl_->RetryFailed();
}

std::optional<std::string> Journal::error() const {
  // `up` changes only when a commit lands, so a retry in flight does not
  // read as healthy.
  if (impl_->up) return std::nullopt;
  return impl_->last_error;
}

void Journal::OnHealth(std::function<void(bool)> fn) { impl_->on_health = std::move(fn); }

void Journal::Stop() {
  impl_->stopped = true;
  impl_->timer.cancel();
}

}  // namespace mm::reconcile
