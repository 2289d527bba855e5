#include "examples/gameserver/control_api.h"

#include <gtest/gtest.h>

namespace mm::gameserver {
namespace {

http::Request Req(std::string method, std::string path) {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.target = r.path;
  return r;
}

TEST(ReservationBook, IdempotentUpToCapacity) {
  ReservationBook book(2);
  EXPECT_TRUE(book.Reserve("a"));
  EXPECT_TRUE(book.Reserve("a"));
  EXPECT_TRUE(book.Reserve("b"));
  EXPECT_FALSE(book.Reserve("c"));
  EXPECT_TRUE(book.Reserve("b"));
  EXPECT_EQ(book.size(), 2u);
  EXPECT_TRUE(book.Holds("a"));
  EXPECT_FALSE(book.Holds("c"));
}

TEST(ControlApi, ReserveThenVerify) {
  ReservationBook book(1);
  ControlApi api(book, nullptr);
  EXPECT_EQ(api.Handle(Req("GET", "/reservation/p1")).status, 404);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/p1")).status, 200);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/p1")).status, 200);
  EXPECT_EQ(api.Handle(Req("GET", "/reservation/p1")).status, 200);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/p2")).status, 403);
}

TEST(ControlApi, IdsArePercentDecoded) {
  ReservationBook book(3);
  ControlApi api(book, nullptr);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/a%2Fb%20c")).status, 200);
  EXPECT_TRUE(book.Holds("a/b c"));
}

TEST(ControlApi, HostileIdsNeverReachClose) {
  ReservationBook book(3);
  bool closed = false;
  ControlApi api(book, [&] { closed = true; });
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/../close")).status, 404);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/..%2Fclose")).status, 200);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/%0A")).status, 400);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/%zz")).status, 400);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/")).status, 400);
  EXPECT_FALSE(closed);
  EXPECT_EQ(api.Handle(Req("GET", "/close")).status, 405);
  EXPECT_FALSE(closed);
  EXPECT_EQ(api.Handle(Req("POST", "/close")).status, 200);
  EXPECT_TRUE(closed);
}

TEST(ControlApi, UnknownRoutesAndMethods) {
  ReservationBook book(3);
  ControlApi api(book, nullptr);
  EXPECT_EQ(api.Handle(Req("GET", "/")).status, 404);
  EXPECT_EQ(api.Handle(Req("PUT", "/reservation/a")).status, 405);
  EXPECT_EQ(api.Handle(Req("POST", "/reservations")).status, 405);
}

TEST(ControlApi, ListAndReleaseSlots) {
  ReservationBook book(2);
  ControlApi api(book, nullptr);
  EXPECT_EQ(api.Handle(Req("GET", "/reservations")).body, "");
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/b%22q")).status, 200);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/a")).status, 200);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/c")).status, 403);
  EXPECT_EQ(api.Handle(Req("GET", "/reservations")).body, "a\nb\"q\n");
  auto json = Req("GET", "/reservations");
  json.headers.push_back({"Accept", "application/json"});
  auto j = api.Handle(json);
  EXPECT_EQ(j.content_type, "application/json");
  EXPECT_EQ(j.body, "{\"reservations\":[\"a\",\"b\\\"q\"],\"metadata\":{}}\n");
  EXPECT_EQ(api.Handle(Req("DELETE", "/reservation/a")).status, 200);
  EXPECT_EQ(api.Handle(Req("DELETE", "/reservation/a")).status, 404);
  EXPECT_EQ(api.Handle(Req("GET", "/reservation/a")).status, 404);
  EXPECT_EQ(api.Handle(Req("POST", "/reservation/c")).status, 200);  // the freed slot is taken
  EXPECT_EQ(api.Handle(Req("GET", "/reservations")).body, "b\"q\nc\n");
}

TEST(ControlApi, MatchMetadataIsKeptPerSlot) {
  ReservationBook book(3);
  ControlApi api(book, nullptr);
  auto post = Req("POST", "/reservation/a");
  post.body = R"({"metadata":{"map":"dust","mode":"ctf"}})";
  EXPECT_EQ(api.Handle(post).status, 200);
  auto again = Req("POST", "/reservation/a");
  again.body = R"({"metadata":{"map":"other"}})";
  EXPECT_EQ(api.Handle(again).status, 200) << "idempotent; the first slot's metadata stays";
  auto junk = Req("POST", "/reservation/b");
  junk.body = "not json";
  EXPECT_EQ(api.Handle(junk).status, 200) << "a body it cannot read is ignored, as by servers that ignore bodies";
  auto json = Req("GET", "/reservations");
  json.headers.push_back({"Accept", "application/json"});
  EXPECT_EQ(api.Handle(json).body,
            "{\"reservations\":[\"a\",\"b\"],\"metadata\":{\"a\":{\"map\":\"dust\",\"mode\":\"ctf\"}}}\n");
  EXPECT_EQ(api.Handle(Req("DELETE", "/reservation/a")).status, 200);
  EXPECT_EQ(book.Metadata("a"), "") << "released with its slot";
}

}  // namespace
}  // namespace mm::gameserver
