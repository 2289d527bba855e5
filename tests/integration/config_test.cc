// matchmakerd --config: a TOML file of flags under the environment and the
// command line; a misspelt key or a missing file stops the start; the
// shipped example is every flag with its default.

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include <fstream>
#include <sstream>

#include "tests/support/engine.h"
#include "tests/support/process.h"

namespace mm::testing {
namespace {
using namespace std::chrono_literals;

std::string TempFile(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/mm-config-" + std::to_string(::getpid()) + "-" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigFile, FlagsBeatTheEnvironmentWhichBeatsTheFile) {
  int client = FreePort(), admin_file = FreePort(), admin_env = FreePort();
  ASSERT_TRUE(client > 0 && admin_file > 0 && admin_env > 0);
  std::string dir = ::testing::TempDir() + "/mm-config-data-" + std::to_string(::getpid());
  auto config = TempFile("precedence.toml", "listen = \"127.0.0.1:" + std::to_string(client) +
                                                "\"\nadmin-listen = \"127.0.0.1:" + std::to_string(admin_file) +
                                                "\"\nlog-format = \"json\"\ndata-dir = \"" + dir + "\"\n");
  auto child = Child::Spawn({BinPath("matchmakerd"), "--config", config, "--log-format", "text"},
                            {"MM_ADMIN_LISTEN=127.0.0.1:" + std::to_string(admin_env)});
  ASSERT_TRUE(child);
  // Text (the flag over the file's json), the file's client port, the
  // environment's admin port.
  auto banner = child->WaitForLine("matchmakerd: admin=", 10s);
  ASSERT_TRUE(banner) << child->output();
  EXPECT_EQ(*banner, "matchmakerd: admin=127.0.0.1:" + std::to_string(admin_env) + " client=127.0.0.1:" +
                         std::to_string(client));
  child->Signal(SIGTERM);
  EXPECT_EQ(child->Wait(10s), 0);
  std::filesystem::remove_all(dir);
}

TEST(ConfigFile, MmConfigNamesTheFileAndListsReadBack) {
  auto config = TempFile("env.toml", "admin-allowed-hosts = [\"a.example\", \"b.example\"]\nqueue-ttl = 30\n");
  auto r = RunCommand({"/usr/bin/env", "MM_CONFIG=" + config, BinPath("matchmakerd"), "--print-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("admin-allowed-hosts=[\"a.example\", \"b.example\"]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("queue-ttl=30"), std::string::npos) << r.out;
  // What --print-config writes, --config reads.
  auto again = TempFile("again.toml", r.out);
  auto back = RunCommand({"/usr/bin/env", "-i", BinPath("matchmakerd"), "--config", again, "--print-config"});
  EXPECT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(back.out, r.out);
  auto missing = RunCommand({"/usr/bin/env", "MM_CONFIG=/nonexistent/matchmakerd.toml", BinPath("matchmakerd")});
  EXPECT_EQ(missing.exit_code, 2);
}

TEST(ConfigFile, AMisspeltKeyOrAMissingFileStopsTheStart) {
  auto bad = TempFile("bad.toml", "admin-lisen = \"127.0.0.1:1\"\n");
  auto r = RunCommand({BinPath("matchmakerd"), "--config", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE((r.out + r.err).find("admin-lisen"), std::string::npos) << r.out << r.err;
  auto missing = RunCommand({BinPath("matchmakerd"), "--config", "/nonexistent/matchmakerd.toml"});
  EXPECT_EQ(missing.exit_code, 2);
  auto range = TempFile("range.toml", "queue-ttl = 0\n");
  EXPECT_EQ(RunCommand({BinPath("matchmakerd"), "--config", range}).exit_code, 2) << "checks apply to file values";
}

TEST(ConfigFile, TheShippedExampleIsEveryFlagWithItsDefault) {
  std::ifstream in(SourcePath("examples/matchmakerd.toml"));
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  auto printed = RunCommand({"/usr/bin/env", "-i", BinPath("matchmakerd"), "--print-config"});
  ASSERT_EQ(printed.exit_code, 0);
  std::string example = text.str();
  EXPECT_EQ(example.substr(example.find("# matchmakerd: keeps")), printed.out)
      << "examples/matchmakerd.toml is out of date: regenerate it with matchmakerd --print-config";
  auto v = RunCommand({BinPath("matchmakerd"), "--config", SourcePath("examples/matchmakerd.toml"), "--validate",
                       SourcePath("examples/pools")});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

}  // namespace
}  // namespace mm::testing
