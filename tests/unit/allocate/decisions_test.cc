#include "operator/allocate/decisions.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace mm::allocate {
namespace {

TEST(RouteRequest, OneAttemptPerClient) {
  struct Case {
    const char* desc;
    bool in_flight, holds, queued;
    Route want;
  };
  const std::vector<Case> cases = {
      {"nothing known: allocate", false, false, false, Route::kFresh},
      {"an attempt in flight wins over everything", true, true, true, Route::kJoin},
      {"in flight while queued (being served): join, never a second attempt", true, false, true, Route::kJoin},
      {"in flight for a fresh client: join", true, false, false, Route::kJoin},
      {"holds a slot: verify it", false, true, false, Route::kHeld},
      {"holds a slot and still listed as queued: the slot wins", false, true, true, Route::kHeld},
      {"queued, not being served: try now, keeping its place", false, false, true, Route::kServeQueued},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    EXPECT_EQ(RouteRequest(c.in_flight, c.holds, c.queued), c.want);
  }
}

TEST(JudgeVerify, OnlyA404ForgetsTheSlot) {
  struct Case {
    int status;
    Verify want;
  };
  const std::vector<Case> cases = {
      {200, Verify::kSame},    {404, Verify::kGone},    {0, Verify::kUnknown},  // timeout, reset
      {500, Verify::kUnknown}, {503, Verify::kUnknown}, {403, Verify::kUnknown},
      {400, Verify::kUnknown}, {204, Verify::kUnknown},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.status);
    EXPECT_EQ(JudgeVerify(c.status), c.want);
  }
}

TEST(JudgeHandshake, Table) {
  struct Case {
    const char* desc;
    int status;
    bool timed_out;
    int retries_left;
    bool live;
    Handshake want;
  };
  const std::vector<Case> cases = {
      {"200 reserves", 200, false, 3, true, Handshake::kReserved},
      {"200 on the last retry reserves", 200, false, 0, true, Handshake::kReserved},
      {"403 is Full", 403, false, 3, true, Handshake::kFull},
      {"refused or reset with retries left: the same instance again", 0, false, 1, true, Handshake::kRetry},
      {"refused, no retry left: circuit opens, next candidate", 0, false, 0, true, Handshake::kTrip},
      {"a timeout is never retried: circuit opens at once", 0, true, 3, true, Handshake::kTrip},
      {"an unexpected status is not retried", 500, false, 3, true, Handshake::kSkip},
      {"instance ended meanwhile, even on 200", 200, false, 3, false, Handshake::kGone},
      {"instance ended meanwhile, 403", 403, false, 3, false, Handshake::kGone},
      {"instance ended meanwhile, timeout", 0, true, 3, false, Handshake::kGone},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    EXPECT_EQ(JudgeHandshake(c.status, c.timed_out, c.retries_left, c.live), c.want);
  }
}

TEST(PickCandidate, Table) {
  struct Case {
    const char* desc;
    std::vector<std::string_view> candidates;
    std::set<std::string, std::less<>> tried, handshaking;
    std::ptrdiff_t index;
    bool blocked;
  };
  const std::vector<Case> cases = {
      {"none", {}, {}, {}, -1, false},
      {"the first in allocation order", {"a", "b"}, {}, {}, 0, false},
      {"skips what this attempt tried", {"a", "b"}, {"a"}, {}, 1, false},
      {"skips one mid-handshake", {"a", "b"}, {}, {"a"}, 1, false},
      {"all mid-handshake: blocked, not queued", {"a", "b"}, {}, {"a", "b"}, -1, true},
      {"tried or mid-handshake: blocked", {"a", "b"}, {"a"}, {"b"}, -1, true},
      {"all tried: nothing, not blocked (queue)", {"a", "b"}, {"a", "b"}, {"b"}, -1, false},
      {"a free one after busy ones is picked", {"a", "b", "c"}, {}, {"a", "b"}, 2, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    Pick p = PickCandidate(
        c.candidates, [&](std::string_view n) { return c.tried.contains(n); },
        [&](std::string_view n) { return c.handshaking.contains(n); });
    EXPECT_EQ(p.index, c.index);
    EXPECT_EQ(p.blocked, c.blocked);
  }
}

// Names after the one picked are not looked at: the cost of a pick is the
// busy prefix, not the whole candidate list.
TEST(PickCandidate, StopsAtTheFirstFree) {
  std::vector<std::string_view> names = {"a", "b", "c", "d"};
  std::vector<std::string> asked;
  Pick p = PickCandidate(
      names, [&](std::string_view n) { asked.emplace_back(n); return false; },
      [&](std::string_view n) { return n == "a"; });
  EXPECT_EQ(p.index, 1);
  EXPECT_EQ(asked, (std::vector<std::string>{"a", "b"}));
}

TEST(ToServe, FirstComeSkippingThoseInFlight) {
  std::vector<std::string> line = {"a", "b", "c", "d"};
  auto none = [](const std::string&) { return false; };
  auto b_busy = [](const std::string& c) { return c == "b"; };
  EXPECT_EQ(ToServe(line, 0, none), std::vector<std::string>{});
  EXPECT_EQ(ToServe(line, 2, none), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ToServe(line, 2, b_busy), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(ToServe(line, 10, b_busy), (std::vector<std::string>{"a", "c", "d"}));
}

}  // namespace
}  // namespace mm::allocate
