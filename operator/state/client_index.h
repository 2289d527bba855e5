#pragma once

// Which instance each client holds a slot on, for a pool whose instances
// may hold a million clients between them. Two properties matter at that
// size, and std::unordered_map<std::string, std::string> has neither:
//
// - No pause as it grows. One hash table rehashes all its nodes at once
//   when it outgrows its buckets: 122 ms at 712k entries on the development
//   machine, with every allocation waiting. Here the entries are spread over
//   kShards tables by the key's hash, so one rehash moves 1/kShards of them.
//   The tables move their entries when they grow; nothing keeps a pointer
//   into them.
// - No second copy of the id. The key is a view of the id in the
//   instance's own `reservations` set, whose nodes do not move; the value
//   is the instance itself (PoolState keeps instances in node-based storage,
//   so it does not move either). PoolState removes an entry before the set
//   node or the instance it refers to goes away.
//
// Not thread-safe; no I/O.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mm::state {

struct Instance;

class ClientIndex {
 public:
  static constexpr std::size_t kShards = 256;

  ClientIndex();
  ~ClientIndex();
  ClientIndex(ClientIndex&&) noexcept;
  ClientIndex& operator=(ClientIndex&&) noexcept;

  const Instance* Find(std::string_view client) const;
  // `instance` now holds `client`; `client` must view a string that
  // outlives the entry (the id in `instance->reservations`). A client held
  // by a second instance too (adoption can find that) keeps its entry and
  // is counted as held twice.
  void Set(std::string_view client, const Instance* instance);
  // `instance` is about to drop `client` (it holds it until this returns).
  // True when the entry named `instance` and another instance still holds
  // the client: the entry is gone and the caller finds that instance and
  // Sets it.
  [[nodiscard]] bool Erase(std::string_view client, const Instance* instance);
  std::size_t size() const { return size_; }  // distinct clients
  // Room for `clients` in all (a restart, before it loads them): a table
  // that grows from empty moves about twice its entries on the way, a
  // quarter of a restart's time at a million clients.
  void Reserve(std::size_t clients);

 private:
  // Open addressing (Boost.Unordered's flat map, kept out of this header):
  // a lookup touches one group of slots instead of a bucket, a node and
  // the key. At a million clients the cache misses were most of the
  // index's cost (10% of the io thread's own time at saturation), and an
  // entry is 24 bytes in a table instead of a 48-byte node and a bucket.
  struct Shards;
  std::unique_ptr<Shards> shards_;
  std::size_t size_ = 0;
  // Clients held by more than one instance: how many more. Empty unless
  // adoption found such a client.
  std::unordered_map<std::string, int> extra_holders_;
};

}  // namespace mm::state
