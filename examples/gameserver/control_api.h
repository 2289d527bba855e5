#pragma once

// The Reservation API as a pure request -> response function:
//   POST /reservation/{id}  200 reserved (again: 200), 403 full; a JSON body
//                           {"metadata": {...}} is kept with the slot
//   GET  /reservation/{id}  200 holds a slot, 404 otherwise
//   DELETE /reservation/{id} 200 slot freed (a player left), 404 none held
//   GET  /reservations      the ids holding a slot, one per line (JSON
//                           {"reservations":[...],"metadata":{id: {...}}} with
//                           Accept: application/json)
//   POST /close             200, then the server exits 0
// {id} is one percent-encoded path segment; a raw '/' in it is a 404, so
// "/reservation/../close" can never reach /close.

#include <functional>

#include "examples/gameserver/reservation_book.h"
#include "operator/http/message.h"

namespace mm::gameserver {

class ControlApi {
 public:
  ControlApi(ReservationBook& book, std::function<void()> on_close)
      : book_(book), on_close_(std::move(on_close)) {}

  http::Response Handle(const http::Request& req);

 private:
  ReservationBook& book_;
  std::function<void()> on_close_;
};

}  // namespace mm::gameserver
