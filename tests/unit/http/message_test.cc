#include "operator/http/message.h"

#include <gtest/gtest.h>

#include "operator/http/server.h"

namespace mm::http {
namespace {

TEST(ParseQuery, SplitsAndDecodes) {
  auto q = ParseQuery("pool=eu&selector=region%3Deu%2Cmode%3Ddm&wait=2s&flag&&x=a+b");
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(q[0], (std::pair<std::string, std::string>{"pool", "eu"}));
  EXPECT_EQ(q[1].second, "region=eu,mode=dm");
  EXPECT_EQ(q[3], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_EQ(q[4].second, "a b");
}

TEST(JsonError, EscapesTheMessage) {
  auto r = JsonError(422, "bad \"x\"\n\x01");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"message\":\"bad \\\"x\\\"\\n\\u0001\"}\n");
}

TEST(Request, FindIsCaseInsensitive) {
  Request r;
  r.headers = {{"Authorization", "abc"}};
  ASSERT_NE(r.Find("authorization"), nullptr);
  EXPECT_EQ(*r.Find("AUTHORIZATION"), "abc");
  EXPECT_EQ(r.Find("accept"), nullptr);
}

TEST(SplitHostPort, ParsesAndRejects) {
  EXPECT_EQ(SplitHostPort("0.0.0.0:3000"), (std::pair<std::string, std::uint16_t>{"0.0.0.0", 3000}));
  EXPECT_EQ(SplitHostPort("[::1]:80")->first, "::1");
  EXPECT_FALSE(SplitHostPort("nohost"));
  EXPECT_FALSE(SplitHostPort("h:99999"));
  EXPECT_FALSE(SplitHostPort("h:x"));
}

}  // namespace
}  // namespace mm::http
