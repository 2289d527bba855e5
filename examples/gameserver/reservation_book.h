#pragma once

// The slots of one game server: at most `capacity` distinct client ids.
// Not thread-safe; mm-gameserver drives it from its single io thread.

#include <cstddef>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace mm::gameserver {

class ReservationBook {
 public:
  // The table is sized for `capacity` up front (up to kPresized ids): a
  // hash table that grows rehashes every id at once, a pause of tens of
  // milliseconds at a few hundred thousand, with every handshake waiting.
  static constexpr std::size_t kPresized = std::size_t{1} << 20;
  explicit ReservationBook(std::size_t capacity) : capacity_(capacity) {
    ids_.reserve(capacity < kPresized ? capacity : kPresized);
  }

  // True when `id` holds a slot afterwards: a new slot while any is free,
  // or the one it already had (idempotent). False: full.
  // `metadata` (JSON object text, "" for none) is kept with a new slot;
  // asking again for a slot already held keeps the first one's.
  bool Reserve(const std::string& id, const std::string& metadata = "");
  bool Holds(const std::string& id) const { return ids_.contains(id); }
  // Frees `id`'s slot (a player left); false when it held none.
  bool Release(const std::string& id) {
    metadata_.erase(id);
    return ids_.erase(id) > 0;
  }
  // The match metadata `id`'s slot was taken with ("" for none).
  std::string Metadata(const std::string& id) const {
    auto it = metadata_.find(id);
    return it == metadata_.end() ? "" : it->second;
  }
  // Every id holding a slot, sorted.
  std::vector<std::string> List() const;
  std::size_t size() const { return ids_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  std::unordered_set<std::string> ids_;
  std::unordered_map<std::string, std::string> metadata_;
};

}  // namespace mm::gameserver
