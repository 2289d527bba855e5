#include "operator/state/client_index.h"

#include <array>
#include <boost/unordered/unordered_flat_map.hpp>
#include <functional>

namespace mm::state {
namespace {
std::size_t ShardOf(std::string_view client) {
  // The top bits (the tables place entries by the low bits).
  return (std::hash<std::string_view>{}(client) >> 56) % ClientIndex::kShards;
}
}  // namespace

struct ClientIndex::Shards {
  using Shard = boost::unordered_flat_map<std::string_view, const Instance*>;
  std::array<Shard, kShards> tables;
  Shard& of(std::string_view client) { return tables[ShardOf(client)]; }
  const Shard& of(std::string_view client) const { return tables[ShardOf(client)]; }
};

ClientIndex::ClientIndex() : shards_(std::make_unique<Shards>()) {}
ClientIndex::~ClientIndex() = default;
ClientIndex::ClientIndex(ClientIndex&&) noexcept = default;
ClientIndex& ClientIndex::operator=(ClientIndex&&) noexcept = default;

const Instance* ClientIndex::Find(std::string_view client) const {
  const Shards& shards = *shards_;
  const auto& s = shards.of(client);
  auto it = s.find(client);
  return it == s.end() ? nullptr : it->second;
}

void ClientIndex::Set(std::string_view client, const Instance* instance) {
  auto [it, added] = shards_->of(client).emplace(client, instance);
  if (added) {
    ++size_;
  } else if (it->second != instance) {
    ++extra_holders_[std::string(client)];
  }
}

void ClientIndex::Reserve(std::size_t clients) {
  // A few clients: the tables grow as they come (sizing all of them
  // would cost a pool of one client a table per shard).
  if (clients < kShards * 8) return;
  // The hash spreads clients evenly; an eighth more covers a shard's share
  // varying (a shard that outgrows it rehashes only itself).
  std::size_t per_shard = clients / kShards;
  per_shard += per_shard / 8 + 8;
  for (auto& t : shards_->tables) {
    if (t.max_load() < per_shard) t.reserve(per_shard);  // never shrinks one
  }
}

bool ClientIndex::Erase(std::string_view client, const Instance* instance) {
  auto& s = shards_->of(client);
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
