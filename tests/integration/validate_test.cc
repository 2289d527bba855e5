// matchmakerd --validate as a user runs it.

#include <gtest/gtest.h>
#include <cstdio>
#include <unistd.h>

#include <fstream>

#include "tests/support/process.h"

namespace mm::testing {
namespace {

TEST(Validate, ExamplePoolsAreValid) {
  auto r = RunCommand({BinPath("matchmakerd"), "--validate", SourcePath("examples/pools")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("serverpool/deathmatch-eu valid"), std::string::npos) << r.out;
}

TEST(Validate, InvalidFileExitsTwoWithEveryError) {
  auto r = RunCommand({BinPath("matchmakerd"), "--validate",
                SourcePath("tests/unit/api/testdata/invalid/two_errors.yaml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("two_errors.yaml:7: spec.warm: must be >= 0 (got -2)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("spec.template.controlPort: must be <= 65535"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 error(s)"), std::string::npos) << r.err;
}

TEST(Validate, DirectoryWithOneBadFileFails) {
  auto r = RunCommand({BinPath("matchmakerd"), "--validate",
                SourcePath("tests/unit/api/testdata/invalid")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("typo.yaml:6: spec.wram: unknown field"), std::string::npos) << r.err;
}

TEST(Validate, MissingPathFails) {
  auto r = RunCommand({BinPath("matchmakerd"), "--validate", "/nonexistent/pools.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/nonexistent/pools.yaml"), std::string::npos);
}

}  // namespace
TEST(Validate, MalformedYamlFailsCleanly) {
  std::string path = "/tmp/mm-validate-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << ",";
  auto r = RunCommand({BinPath("matchmakerd"), "--validate", path}, std::chrono::seconds(10));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("invalid YAML"), std::string::npos) << r.err;
  std::remove(path.c_str());
}

// spdlog turns an unknown level name into "off": matchmakerd must refuse
// it rather than run with no logs at all.
TEST(Flags, UnknownLogLevelExitsTwo) {
  auto r = RunCommand({BinPath("matchmakerd"), "--log-level", "verbose", "--data-dir", "/tmp/mm-loglevel-unused"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--log-level verbose"), std::string::npos) << r.err;
}

}  // namespace mm::testing
