#include "api/v1alpha1/decode.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/v1alpha1/codec.h"

namespace mm::api {
namespace {

namespace fs = std::filesystem;
const std::string kData = std::string(MM_SOURCE_DIR) + "/tests/unit/api/testdata";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<fs::path> Files(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kData + "/" + dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(DecodeCorpus, ValidFilesDecode) {
  auto files = Files("valid");
  ASSERT_GE(files.size(), 4u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    auto r = DecodePools(ReadFile(f), f.filename().string());
    for (const auto& e : r.errors) ADD_FAILURE() << e.ToString();
    EXPECT_FALSE(r.pools.empty());
  }
}

// Each invalid file starts with "# expect: LINE PATH: MESSAGE" lines; each
// must match an error's line exactly and its "path: message" as a prefix.
TEST(DecodeCorpus, InvalidFilesNameLineAndFieldPath) {
  auto files = Files("invalid");
  ASSERT_GE(files.size(), 20u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    std::string text = ReadFile(f);
    auto r = DecodePools(text, "in.yaml");
    EXPECT_TRUE(r.pools.empty());
    std::istringstream lines(text);
    std::string line;
    int expectations = 0;
    while (std::getline(lines, line) && line.starts_with("# expect: ")) {
      ++expectations;
      std::istringstream rest(line.substr(10));
      int want_line = 0;
      rest >> want_line;
      std::string want;
      std::getline(rest, want);
      want = want.substr(1);
      bool found = false;
      for (const auto& e : r.errors) {
        std::string got = e.path.empty() ? e.message : e.path + ": " + e.message;
        if (e.line == want_line && got.starts_with(want) && e.source == "in.yaml") found = true;
      }
      if (!found) {
        std::string all;
        for (const auto& e : r.errors) all += "\n  " + e.ToString();
        ADD_FAILURE() << "want " << want_line << " " << want << "\ngot:" << all;
      }
    }
    EXPECT_GT(expectations, 0) << "no # expect: line";
  }
}

TEST(Decode, DefaultsAreApplied) {
  auto r = DecodePools(ReadFile(kData + "/valid/minimal.yaml"), "m");
  ASSERT_TRUE(r.ok());
  const auto& s = r.pools.at(0).spec;
  EXPECT_EQ(s.warm, 1);
  EXPECT_EQ(s.maxInstances, 100);
  EXPECT_EQ(s.templ.controlPort, 3000);
  EXPECT_EQ(s.templ.ports.at(0).protocol, "tcp");
  EXPECT_EQ(s.reservation, (ReservationPolicy{5000, 3, 200}));
  EXPECT_EQ(s.readiness, (ReadinessPolicy{60000, 100}));
  EXPECT_EQ(s.health, (HealthPolicy{1000, 1000, 3, 60000}));
}

TEST(Decode, MultiDocumentGivesSeveralPoolsInOrder) {
  auto r = DecodePools(ReadFile(kData + "/valid/multi.yaml"), "m");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.pools.size(), 2u);
  EXPECT_EQ(r.pools[0].metadata.name, "one");
  EXPECT_EQ(r.pools[1].metadata.name, "two");
}

TEST(Decode, AnyErrorRejectsTheWholeInput) {
  std::string text = ReadFile(kData + "/valid/minimal.yaml") + "---\n" +
                     ReadFile(kData + "/invalid/typo.yaml");
  auto r = DecodePools(text, "x");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.pools.empty());
}

TEST(Decode, StatusInInputIsIgnored) {
  std::string text = ReadFile(kData + "/valid/minimal.yaml") +
                     "status: {observedGeneration: 9}\n";
  auto r = DecodePools(text, "x");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.pools[0].status.has_value());
}

TEST(Decode, EmptyInputHasNoPoolsAndNoErrors) {
  auto r = DecodePools("# nothing\n", "x");
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.pools.empty());
}

TEST(DecodePath, DirectoryReadsEveryPoolFile) {
  auto r = DecodePath(kData + "/valid");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.pools.size(), 5u);
}

TEST(DecodePath, MissingFileIsAnError) {
  auto r = DecodePath(kData + "/nope.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].ToString().find("nope.yaml"), std::string::npos);
}

TEST(FieldError, ToStringNamesFileLineAndPath) {
  FieldError e{"pool.yaml", 12, "spec.warm", "must be >= 0"};
  EXPECT_EQ(e.ToString(), "pool.yaml:12: spec.warm: must be >= 0");
}

}  // namespace
}  // namespace mm::api
