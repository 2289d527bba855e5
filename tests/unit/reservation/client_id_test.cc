#include "api/reservation/client_id.h"

#include <gtest/gtest.h>

#include <vector>

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

TEST(CheckClientId, OnlyValidUtf8) {
  struct Case {
    const char* desc;
    std::string id;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"two-byte", "\xc3\xa9", true},
      {"three-byte", "\xe5\x90\x8d", true},
      {"four-byte (emoji)", "\xf0\x9f\x8e\xae", true},
      {"highest code point", "\xf4\x8f\xbf\xbf", true},
      {"a lone continuation byte", "a\x80", false},
      {"a truncated sequence", "\xe5\x90", false},
      {"truncated at the end", "ok\xf0\x9f\x8e", false},
      {"overlong '/'", "\xc0\xaf", false},
      {"overlong three-byte", "\xe0\x80\xaf", false},
      {"a surrogate", "\xed\xa0\x80", false},
      {"past U+10FFFF", "\xf4\x90\x80\x80", false},
      {"0xff", "a\xff" "b", false},
      {"latin-1, not UTF-8", "caf\xe9", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    EXPECT_EQ(!CheckClientId(c.id).has_value(), c.ok);
  }
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
