#include "examples/gameserver/reservation_book.h"

#include <algorithm>

namespace mm::gameserver {

bool ReservationBook::Reserve(const std::string& id, const std::string& metadata) {
  if (ids_.contains(id)) return true;
  if (ids_.size() >= capacity_) return false;
  ids_.insert(id);
  if (!metadata.empty()) metadata_[id] = metadata;
  return true;
}

std::vector<std::string> ReservationBook::List() const {
  std::vector<std::string> out(ids_.begin(), ids_.end());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace mm::gameserver
