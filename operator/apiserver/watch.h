#pragma once

// Watches, as Kubernetes streams them (?watch=true): on the pool list, one
// pool, or one pool's instances, newline-delimited
//   {"type":"ADDED|MODIFIED|DELETED|BOOKMARK","object":{...}}
// starting with the current objects as ADDED, or, with ?resourceVersion=N,
// with the changes after N while they are still in the history (410 when
// they are not: list again). A BOOKMARK with the newest resourceVersion
// goes out every `bookmark` period, so proxies keep the stream open and a
// watcher can resume from it. Each watcher has a bounded buffer: one that
// does not read is dropped, never waited for. Runs on the io thread.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "operator/http/message.h"

namespace boost::asio {
class io_context;
}
namespace mm::reconcile {
class Controller;
}

namespace mm::apiserver {

// "k=v,k2==v2,k3!=v3": equality-based label selectors; nullopt when malformed.
using LabelSelector = std::vector<std::tuple<std::string, std::string, bool /*equal*/>>;
std::optional<LabelSelector> ParseLabelSelector(std::string_view text);
bool Matches(const LabelSelector& selector, const std::map<std::string, std::string>& labels);

struct WatchOptions {
  std::size_t history = 4096;                    // changes kept for resuming
  std::size_t history_bytes = 16 << 20;          // and at most this many bytes of them
  std::size_t max_watchers = 64;                 // beyond: 429 (the admin API keeps room for the rest)
  std::chrono::seconds keep_history{300};        // recorded this long after the last watcher leaves
  std::chrono::milliseconds bookmark{10'000};    // heartbeat period
  std::size_t watcher_buffer = 1 << 20;          // bytes a watcher may leave unread
};

class WatchHub {
 public:
  WatchHub(boost::asio::io_context& io, reconcile::Controller& controller, WatchOptions options = {});
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  struct Request {
    enum class Kind { kPools, kInstances } kind = Kind::kPools;
    std::string pool;  // kPools: one pool only when set; kInstances: the pool
    LabelSelector selector;  // kPools
    std::optional<std::uint64_t> since;  // ?resourceVersion=
  };
  // A streamed response, or why not (410 when `since` is too old).
  http::Response Watch(Request request);
  std::size_t watchers() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mm::apiserver
