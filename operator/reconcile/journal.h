#pragma once

// Keeps the store in step with the controller's in-memory pool state. Every
// write is tracked by key until it is durable. A write that fails (full
// disk, I/O error) stays pending with the newest value for its key and is
// retried until it lands, so memory is never silently ahead of the disk:
// `Durable(key)` says whether what memory holds for a key is on disk, and
// `Sync(key)` commits it again now when it is not.
//
// Thread-safety: every method runs on the io thread; callbacks are posted
// there.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}
namespace mm::store {
class Store;
struct Op;
}  // namespace mm::store

namespace mm::reconcile {

class Journal {
 public:
  using Done = std::function<void(std::optional<std::string> error)>;

  Journal(boost::asio::io_context& io, store::Store& store, std::chrono::milliseconds retry);
  ~Journal();

  // Tracked writes: retried until durable. `done` reports this attempt.
  void Write(std::vector<store::Op> ops, Done done = nullptr);
  // True when nothing written for `key` is waiting to become durable.
  bool Durable(const std::string& key) const;
  // `done` once `key` is durable: at once when it is, else after committing
  // its pending value again now.
  void Sync(const std::string& key, Done done);
  // Why the journal cannot write (the last error), while some write waits
  // for a retry; nullopt when every failed write has landed since.
  std::optional<std::string> error() const;
  // Called when the journal starts failing (false) and writes again (true).
  void OnHealth(std::function<void(bool up)> fn);
  void Stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mm::reconcile
