#include "api/v1alpha1/yaml_json.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace mm::api {
namespace {

namespace json = boost::json;

json::value One(const std::string& text) {
  auto r = ParseYaml(text, "t");
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].ToString());
  EXPECT_EQ(r.documents.size(), 1u);
  return r.documents.empty() ? json::value() : r.documents[0].value;
}

TEST(ParseYaml, ResolvesPlainScalarsLikeYaml12Core) {
  auto v = One("a: 1\nb: -2\nc: 0.5\nd: true\ne: null\nf: ~\ng: hello\nh: '1'\ni: \"true\"\nj: 1e3\nk: 0x1F\nl:\n");
  EXPECT_EQ(v.at("a"), 1);
  EXPECT_EQ(v.at("b"), -2);
  EXPECT_EQ(v.at("c"), 0.5);
  EXPECT_EQ(v.at("d"), true);
  EXPECT_TRUE(v.at("e").is_null());
  EXPECT_TRUE(v.at("f").is_null());
  EXPECT_EQ(v.at("g"), "hello");
  EXPECT_EQ(v.at("h"), "1");
  EXPECT_EQ(v.at("i"), "true");
  EXPECT_EQ(v.at("j"), 1000.0);
  EXPECT_EQ(v.at("k"), "0x1F");  // not core-schema int: stays a string
  EXPECT_TRUE(v.at("l").is_null());
}

// Single-quoted escapes: libfyaml's text for them (up to three, where it
// does not leak) and ours (four or more, unescaped from the source) agree.
TEST(ParseYaml, SingleQuotedEscapes) {
  auto v = One("a: 'it''s'\nb: '''x'''\nc: 'a''b''c''d''e'\nd: ['''''''''''']\ne: 'no escapes'\nf: ''''\n");
  EXPECT_EQ(v.at("a"), "it's");
  EXPECT_EQ(v.at("b"), "'x'");
  EXPECT_EQ(v.at("c"), "a'b'c'd'e");
  EXPECT_EQ(v.at("d").at(0), "'''''");
  EXPECT_EQ(v.at("e"), "no escapes");
  EXPECT_EQ(v.at("f"), "'");
  auto r = ParseYaml("a: 'x''\n  y'\n", "t");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("must be on one line"), std::string::npos);
  auto multi = One("a: 'one\n  two'\n");  // no escapes: libfyaml folds it
  EXPECT_EQ(multi.at("a"), "one two");
}

TEST(ParseYaml, RecordsTheLineOfEveryField) {
  auto r = ParseYaml("a:\n  b:\n    - x\n    - y: 1\n", "t");
  ASSERT_EQ(r.documents.size(), 1u);
  const auto& d = r.documents[0];
  EXPECT_EQ(d.LineOf("a.b[1].y"), 4);
  EXPECT_EQ(d.LineOf("a.b[0]"), 3);
  EXPECT_EQ(d.LineOf("a.b[1].missing"), 4);  // nearest ancestor
}

TEST(ParseYaml, SyntaxErrorGivesTheLine) {
  auto r = ParseYaml("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].source, "bad.yaml");
  EXPECT_GT(r.errors[0].line, 1);
  EXPECT_NE(r.errors[0].message.find("invalid YAML"), std::string::npos);
}

TEST(ParseYaml, AliasBombIsRefused) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'k'; ++c, ++prev) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + prev;
    bomb += "]\n";
  }
  auto r = ParseYaml(bomb, "bomb");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("alias bomb"), std::string::npos);
  // Many plain nodes are fine; it is expansion by aliases that is bounded.
  std::string big = "a: [";
  for (int i = 0; i < 50'000; ++i) big += i ? ",1" : "1";
  big += "]\n";
  EXPECT_TRUE(ParseYaml(big, "big").errors.empty());
}

// yaml-cpp 0.7 allocated without bound on some of these (a one-byte ","
// took 12 GB in 10 s); the parser must fail cleanly on every one.
TEST(ParseYaml, MalformedInputsFailCleanly) {
  for (std::string text : {",", ",,", "[,", "{,}", "{a: [", "a: {b: [c, d: ]}}", "- [a, b: {c: ,]}", "{a: 1, a}",
                           "? [", "&a [*a]", "*a", "a: &x 1\nb: *y\n",
                           // libfyaml 0.7.12 looped for ever on this one (fuzzing found it).
                           "%\x93", "a: 1\nb: \xc3\x28\n", "\xed\xa0\x80"}) {
    SCOPED_TRACE(text);
    auto r = ParseYaml(text, "m.yaml");
    EXPECT_FALSE(r.errors.empty());
    EXPECT_TRUE(r.documents.empty());
  }
}

TEST(ParseYaml, InvalidUtf8IsRefusedWithItsLine) {
  auto r = ParseYaml("a: 1\nb: \"x\xff\"\n", "m.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].ToString(), "m.yaml:2: invalid YAML: not UTF-8 (byte 11)");
}

TEST(ParseYaml, AnchorsAndAliasesWithinBudget) {
  auto v = One("base: &b {image: x, ports: [1, 2]}\nother: *b\nname: &n eu\ncopy: *n\n");
  EXPECT_EQ(v.at("other"), v.at("base"));
  EXPECT_EQ(v.at("copy"), "eu");
}

TEST(ParseYaml, DeepNestingIsRefused) {
  std::string deep(200, '[');
  deep += std::string(200, ']');
  auto r = ParseYaml(deep, "deep");
  ASSERT_FALSE(r.errors.empty());
}

TEST(ParseYaml, JsonIsYamlToo) {
  auto v = One(R"({"a": [1, "two", {"b": null}]})");
  EXPECT_EQ(v.at("a").at(1), "two");
}

TEST(ToYaml, StringsThatLookLikeOtherTypesAreQuoted) {
  json::value v = {{"s", json::array{"true", "1", "null", "", "a: b", "- x", "#c", "0.5", "ok"}},
                   {"n", 1},
                   {"d", 2.0},
                   {"b", false}};
  auto back = One(ToYaml(v));
  EXPECT_EQ(back, v);
}

}  // namespace
}  // namespace mm::api
