#pragma once

// Which instance each client holds a slot on, for a pool whose instances
// may hold a million clients between them. Two properties matter at that
// size, and std::unordered_map<std::string, std::string> has neither:
//
// - No pause as it grows. One hash table rehashes all its nodes at once
//   when it outgrows its buckets: 122 ms at 712k entries on the development
//   machine, with every allocation waiting. Here the entries are spread over
//   kShards tables by the key's hash, so one rehash moves 1/kShards of them.
// - No second copy of the id. The key is a view of the id in the
//   instance's own `reservations` set, whose nodes do not move; the value
//   is the instance itself (PoolState keeps instances in node-based storage,
//   so it does not move either). PoolState removes an entry before the set
//   node or the instance it refers to goes away.
//
// Not thread-safe; no I/O.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mm::state {

struct Instance;

class ClientIndex {
 public:
  static constexpr std::size_t kShards = 256;

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

 private:
  using Shard = std::unordered_map<std::string_view, const Instance*>;
  static std::size_t ShardOf(std::string_view client);
  Shard& shard(std::string_view client) { return shards_[ShardOf(client)]; }
  const Shard& shard(std::string_view client) const { return shards_[ShardOf(client)]; }

  std::array<Shard, kShards> shards_;
  std::size_t size_ = 0;
  // Clients held by more than one instance: how many more. Empty unless
  // adoption found such a client.
  std::unordered_map<std::string, int> extra_holders_;
};

}  // namespace mm::state
