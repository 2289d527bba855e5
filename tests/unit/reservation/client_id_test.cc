#include "api/reservation/client_id.h"

#include <gtest/gtest.h>

namespace mm::reservation {
namespace {

TEST(CheckClientId, AcceptsOrdinaryAndUnicodeIds) {
  EXPECT_FALSE(CheckClientId("player-1"));
  EXPECT_FALSE(CheckClientId("ünïcødé 名前"));
  EXPECT_FALSE(CheckClientId("../close"));
  EXPECT_FALSE(CheckClientId(std::string(kMaxClientIdBytes, 'a')));
}

TEST(CheckClientId, RejectsEmptyLongAndControlCharacters) {
  EXPECT_TRUE(CheckClientId(""));
  EXPECT_TRUE(CheckClientId(std::string(kMaxClientIdBytes + 1, 'a')));
  EXPECT_TRUE(CheckClientId("a\nb"));
  EXPECT_TRUE(CheckClientId(std::string("a\0b", 3)));
  EXPECT_TRUE(CheckClientId("a\x7f"));
}

TEST(PercentEncode, KeepsUnreservedAndEscapesEverythingElse) {
  EXPECT_EQ(PercentEncode("Az09-._~"), "Az09-._~");
  EXPECT_EQ(PercentEncode("../close"), "..%2Fclose");
  EXPECT_EQ(PercentEncode("a/b?x=1#f"), "a%2Fb%3Fx%3D1%23f");
  EXPECT_EQ(PercentEncode("a b%"), "a%20b%25");
  EXPECT_EQ(PercentEncode("é"), "%C3%A9");
}

TEST(PercentDecode, InvertsEncodeAndRejectsMalformedEscapes) {
  for (std::string id : {"../close", "a/b?x=1", "100%", "名前", "+ +"}) {
    EXPECT_EQ(PercentDecode(PercentEncode(id)), id);
  }
  EXPECT_FALSE(PercentDecode("%"));
  EXPECT_FALSE(PercentDecode("%4"));
  EXPECT_FALSE(PercentDecode("%G1"));
  EXPECT_EQ(PercentDecode("%2f"), "/");
}

}  // namespace
}  // namespace mm::reservation
