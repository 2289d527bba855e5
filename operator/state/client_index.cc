#include "operator/state/client_index.h"

#include <functional>

namespace mm::state {

std::size_t ClientIndex::ShardOf(std::string_view client) {
  // The top bits: each shard's table picks buckets by the hash modulo a
  // prime, which the low bits dominate.
  return (std::hash<std::string_view>{}(client) >> 56) % kShards;
}

const Instance* ClientIndex::Find(std::string_view client) const {
  const Shard& s = shard(client);
  auto it = s.find(client);
  return it == s.end() ? nullptr : it->second;
}

void ClientIndex::Set(std::string_view client, const Instance* instance) {
  auto [it, added] = shard(client).emplace(client, instance);
  if (added) {
    ++size_;
  } else if (it->second != instance) {
    ++extra_holders_[std::string(client)];
  }
}

bool ClientIndex::Erase(std::string_view client, const Instance* instance) {
  Shard& s = shard(client);
  auto it = s.find(client);
  if (it == s.end()) return false;
  auto extra = extra_holders_.empty() ? extra_holders_.end() : extra_holders_.find(std::string(client));
  bool held_elsewhere = extra != extra_holders_.end();
  if (held_elsewhere && --extra->second == 0) extra_holders_.erase(extra);
  if (it->second != instance) return false;  // one of the extra holders let go
  s.erase(it);
  --size_;
  return held_elsewhere;
}

}  // namespace mm::state
