#pragma once

// The allocator's decisions as pure functions over what it knows: where a
// request goes, which candidate is next, what a handshake or a verification
// answer means, which queued clients are served. No I/O; the allocator
// (allocator.cc) does the handshakes and the timers.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mm::allocate {

// A request for a client id, given what is in flight for it.
enum class Route {
  kJoin,         // an attempt for this client is in flight: share its answer
  kHeld,         // the client holds a slot: verify it, answer the same server
  kServeQueued,  // queued and not being served: try now, keeping its place
  kFresh,        // none of the above: allocate
};
Route RouteRequest(bool in_flight, bool holds_slot, bool queued);

// What `GET /reservation/{id}` says about a slot the client holds.
enum class Verify {
  kSame,     // 200: the same server
  kGone,     // 404: the server no longer holds it; allocate afresh
  kUnknown,  // anything else (timeout, reset, 5xx): keep it, answer 503
};
Verify JudgeVerify(int status);

// What `POST /reservation/{id}` answered on a candidate.
enum class Handshake {
  kReserved,  // 200: the client holds a slot there
  kFull,      // 403: mark Full, next candidate
  kRetry,     // a fast transport failure (refused, reset), retries left: the same instance after the cooldown
  kTrip,      // no answer within the deadline, or none after every retry: open the
              // instance's circuit (not offered until a probe answers), next candidate
  kSkip,      // an unexpected status: next candidate
  kGone,      // the instance ended meanwhile: next candidate
};
// `timed_out`: the deadline passed with no answer. Waiting a second
// deadline on the same server would stall the client, so it is never retried.
Handshake JudgeHandshake(int status, bool timed_out, int retries_left, bool instance_live);

// How many Full instances one attempt asks again for a slot before the
// client is queued (a bound on the work per request: no scan of the pool).
inline constexpr int kFullReasksPerAttempt = 2;

// The next candidate to try, in allocation order, among `names` (instances
// of one pool): the first neither tried by this attempt nor in a handshake
// with another client. `blocked` is true when none is free but one is
// mid-handshake (wait for it rather than queue). The tests are asked once
// per name, in order, until one is free: no key is built for a name.
struct Pick {
  std::ptrdiff_t index = -1;  // into names; -1: none
  bool blocked = false;
};
using NameTest = std::function<bool(std::string_view name)>;
Pick PickCandidate(const std::vector<std::string_view>& names, const NameTest& tried, const NameTest& handshaking);

// The queued clients to serve now, first come first served: at most `free`
// of `line`, skipping those with an attempt in flight.
std::vector<std::string> ToServe(const std::vector<std::string>& line, std::size_t free,
                                 const std::function<bool(const std::string&)>& in_flight);

}  // namespace mm::allocate
