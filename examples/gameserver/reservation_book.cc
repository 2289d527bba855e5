#include "examples/gameserver/reservation_book.h"

namespace mm::gameserver {

bool ReservationBook::Reserve(const std::string& id) {
  if (ids_.contains(id)) return true;
  if (ids_.size() >= capacity_) return false;
  ids_.insert(id);
  return true;
}

}  // namespace mm::gameserver
