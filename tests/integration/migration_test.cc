// A way in for go-matchmaker users, with the real binaries: mmctl convert
// turns go-matchmaker's settings into a pool that matchmakerd --validate
// accepts and credentials that matchmakerd --registry-auth-file reads;
// a bad credentials file stops the start, and SIGHUP re-reads it.

#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/operator.h"
#include "tests/support/process.h"

namespace mm::testing {
namespace {

using namespace std::chrono_literals;

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("mm-migration-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(Migration, ConvertedGoMatchmakerSettingsValidateAndCarryTheirCredentials) {
  auto dir = TempDir("convert");
  auto r = RunCommand({BinPath("mmctl"), "convert", "go-matchmaker", "--env-file", SourcePath("tests/data/go-matchmaker.env"),
                       "--name", "dummy", "--registry-auth-out", dir + "/registry-auth.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("supersecretpassword"), std::string::npos) << r.out;
  std::ofstream(dir + "/pool.yaml") << r.out;
  auto v = RunCommand({BinPath("matchmakerd"), "--validate", dir + "/pool.yaml"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;

  struct stat st {};
  ASSERT_EQ(::stat((dir + "/registry-auth.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // matchmakerd reads the credentials file it wrote.
  Operator op("migration-auth");
  ASSERT_TRUE(op.Start({"--registry-auth-file", dir + "/registry-auth.json"}));
  // Logged before the banner Start waits for.
  EXPECT_NE(op.process()->output().find("registry credentials for 1 registry from"), std::string::npos)
      << op.process()->output();
  EXPECT_EQ(op.process()->output().find("supersecretpassword"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Migration, ConvertReadsTheProcessEnvironmentAndNamesBadSettings) {
  auto r = RunCommand({"/usr/bin/env", "-i", "IMAGE_TO_PULL=127.0.0.1:5000/gs:1", "IMAGE_EXPOSE_PORT=7777/udp",
                       "IMAGE_CONTROL_PORT=8080", "RESERVATION_RETRY_TIMES=1", BinPath("mmctl"), "convert",
                       "go-matchmaker"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line : {"127.0.0.1:5000/gs:1", "containerPort: 7777", "protocol: udp", "controlPort: 8080",
                           "retries: 0", "name: default"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  }
  auto bad = RunCommand({"/usr/bin/env", "-i", "IMAGE_TO_PULL=x", "RESERVATION_TIMEOUT=5s", BinPath("mmctl"), "convert",
                         "go-matchmaker"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(bad.err, "error: RESERVATION_TIMEOUT=5s: not a non-negative integer\n");
  auto none = RunCommand({"/usr/bin/env", "-i", BinPath("mmctl"), "convert", "go-matchmaker"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("IMAGE_TO_PULL is not set"), std::string::npos) << none.err;
  auto missing = RunCommand({BinPath("mmctl"), "convert", "go-matchmaker", "--env-file", "/nonexistent/.env"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "error: cannot read /nonexistent/.env\n");
}

TEST(Migration, ABadRegistryAuthFileStopsTheStartAndSighupKeepsTheGoodOne) {
  auto dir = TempDir("auth");
  std::ofstream(dir + "/bad.json") << R"({"auths": {"r.io": {"auth": "!!!"}}})";
  auto r = RunCommand({BinPath("matchmakerd"), "--data-dir", dir + "/data", "--listen", "127.0.0.1:0", "--admin-listen",
                       "127.0.0.1:0", "--registry-auth-file", dir + "/bad.json"},
                      10s);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--registry-auth-file: " + dir + "/bad.json: auths[\"r.io\"].auth: not base64"),
            std::string::npos)
      << r.err;

  std::ofstream(dir + "/auth.json") << R"({"auths": {"127.0.0.1:5000": {"username": "u", "password": "p1"}}})";
  Operator op("migration-sighup");
  ASSERT_TRUE(op.Start({"--registry-auth-file", dir + "/auth.json"}));
  ASSERT_NE(op.process()->output().find("registry credentials for 1 registry from"), std::string::npos);
  std::ofstream(dir + "/auth.json") << "{broken";
  op.process()->Signal(SIGHUP);
  EXPECT_TRUE(op.process()->WaitForLine("keeping the credentials in use", 5s)) << op.process()->output();
  std::ofstream(dir + "/auth.json")
      << R"({"auths": {"127.0.0.1:5000": {"username": "u", "password": "p2"}, "r.io": {"username": "v", "password": "q"}}})";
  op.process()->Signal(SIGHUP);
  EXPECT_TRUE(op.process()->WaitForLine("SIGHUP: registry credentials for 2 registries", 5s)) << op.process()->output();
  EXPECT_EQ(op.Call("GET", "/healthz").status, 200) << "still serving after both reloads";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mm::testing
