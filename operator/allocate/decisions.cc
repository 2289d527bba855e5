#include "operator/allocate/decisions.h"

namespace mm::allocate {

Route RouteRequest(bool in_flight, bool holds_slot, bool queued) {
  if (in_flight) return Route::kJoin;
  if (holds_slot) return Route::kHeld;
  if (queued) return Route::kServeQueued;
  return Route::kFresh;
}

Verify JudgeVerify(int status) {
  if (status == 200) return Verify::kSame;
  if (status == 404) return Verify::kGone;
  return Verify::kUnknown;
}

Handshake JudgeHandshake(int status, bool timed_out, int retries_left, bool instance_live) {
  if (!instance_live) return Handshake::kGone;
  if (status == 200) return Handshake::kReserved;
  if (status == 403) return Handshake::kFull;
  if (status != 0) return Handshake::kSkip;
  if (timed_out) return Handshake::kTrip;
  // A fast failure: POST /reservation is idempotent per id, so asking the
  // same instance again cannot take a second slot there.
  return retries_left > 0 ? Handshake::kRetry : Handshake::kTrip;
}

Pick PickCandidate(const std::vector<std::string_view>& names, const NameTest& tried, const NameTest& handshaking) {
  Pick p;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (tried(names[i])) continue;
    if (handshaking(names[i])) {
      p.blocked = true;
      continue;
    }
    p.index = static_cast<std::ptrdiff_t>(i);
    p.blocked = false;
    return p;
  }
  return p;
}

std::vector<std::string> ToServe(const std::vector<std::string>& line, std::size_t free,
                                 const std::function<bool(const std::string&)>& in_flight) {
  std::vector<std::string> out;
  for (const auto& c : line) {
    if (out.size() >= free) break;
    if (!in_flight(c)) out.push_back(c);
  }
  return out;
}

}  // namespace mm::allocate
