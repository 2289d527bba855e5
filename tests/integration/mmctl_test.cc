// The kubectl-grade parts of mmctl with the real binaries: version, -o name,
// --no-headers, -l, -w, delete --ignore-not-found, the documented exit codes
// (0 ok, 1 error, 2 usage, 3 queued) and the completion script.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tests/support/operator.h"
#include "tests/support/process.h"

namespace mm::testing {
namespace {
using namespace std::chrono_literals;

constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

std::string Labelled(const std::string& name, const std::string& labels, int warm = 0) {
  std::string y = GameServerPool(name, warm);
  y.replace(y.find("metadata: {name: " + name + "}"), ("metadata: {name: " + name + "}").size(),
            "metadata: {name: " + name + ", labels: {" + labels + "}}");
  return y;
}

TEST(Mmctl, VersionNamesClientAndServer) {
  Operator op("mmctl-version");
  ASSERT_TRUE(op.Start());
  auto server = RunCommand({BinPath("matchmakerd"), "--version"});
  ASSERT_EQ(server.exit_code, 0);
  std::string v = server.out.substr(server.out.rfind(' ') + 1);
  while (!v.empty() && v.back() == '\n') v.pop_back();
  auto r = op.Mmctl({"version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Client Version: " + v + "\nServer Version: " + v + "\n");
  auto client = RunCommand({BinPath("mmctl"), "--server", "http://127.0.0.1:1", "version", "--client"});
  EXPECT_EQ(client.exit_code, 0);
  EXPECT_EQ(client.out, "Client Version: " + v + "\n");
  auto down = RunCommand({BinPath("mmctl"), "--server", "http://127.0.0.1:1", "version"});
  EXPECT_EQ(down.exit_code, 1) << "no server: an error, after the client's version";
  EXPECT_EQ(RunCommand({BinPath("mmctl"), "--version"}).out, "mmctl " + v + "\n");
}

TEST(Mmctl, NamesHeadersSelectorsAndIgnoreNotFound) {
  Operator op("mmctl-get");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", Labelled("eu", "region: eu, tier: ranked")).status, 201);
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/us", Labelled("us", "region: us, tier: ranked")).status, 201);
  auto names = op.Mmctl({"get", "pools", "-o", "name"});
  ASSERT_EQ(names.exit_code, 0) << names.err;
  EXPECT_EQ(names.out, "serverpool/eu\nserverpool/us\n");
  auto eu = op.Mmctl({"get", "pools", "-l", "region=eu", "-o", "name"});
  EXPECT_EQ(eu.out, "serverpool/eu\n");
  EXPECT_EQ(op.Mmctl({"get", "pools", "-l", "tier=ranked,region!=eu", "-o", "name"}).out, "serverpool/us\n");
  EXPECT_EQ(op.Mmctl({"get", "pools", "-l", "region=asia", "-o", "name"}).out, "");
  auto bad = op.Mmctl({"get", "pools", "-l", "region"});
  EXPECT_EQ(bad.exit_code, 1) << "the server refuses a malformed selector";
  EXPECT_NE(bad.err.find("labelSelector"), std::string::npos) << bad.err;
  auto table = op.Mmctl({"get", "pools", "--no-headers"});
  ASSERT_EQ(table.exit_code, 0);
  EXPECT_EQ(table.out.find("NAME"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.rfind("eu ", 0), 0u) << table.out;
  EXPECT_EQ(op.Mmctl({"get", "pools"}).out.rfind("NAME ", 0), 0u);

  EXPECT_EQ(op.Mmctl({"delete", "pool", "asia"}).exit_code, 1);
  auto ignored = op.Mmctl({"delete", "pool", "asia", "--ignore-not-found"});
  EXPECT_EQ(ignored.exit_code, 0) << ignored.err;
  EXPECT_EQ(ignored.out + ignored.err, "");
  EXPECT_EQ(op.Mmctl({"delete", "pool", "us", "--ignore-not-found"}).exit_code, 0);
}

// An instance's listing counts every client ("clients", mmctl's CLIENTS)
// and lists at most 1,000 ids: a watch serializes the instance at every
// change, so its size must not grow with the players it holds.
TEST(Mmctl, ClientsAreCountedAndListedIdsCapped) {
  Operator op("mmctl-clients");
  ASSERT_TRUE(op.Start());
  std::string yaml = GameServerPool("eu", 1, 1);
  const std::string three = R"("--capacity", "3")";
  yaml.replace(yaml.find(three), three.size(), R"("--capacity", "2000")");
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", yaml).status, 201);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  for (int c = 0; c < 1200; ++c) ASSERT_EQ(op.Request("player-" + std::to_string(c)).status, 200) << c;
  auto items = op.Instances("eu");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].at("clients").as_int64(), 1200);
  EXPECT_EQ(items[0].at("reservations").as_array().size(), 1000u);
  auto table = op.Mmctl({"get", "instances", "-p", "eu", "--no-headers"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find(" 1200 "), std::string::npos) << table.out;
}

TEST(Mmctl, UsageErrorsExit2AndAQueuedClientExits3) {
  Operator op("mmctl-exit");
  ASSERT_TRUE(op.Start());
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"--bogus"}, {}, {"get"}, {"get", "nodes"}, {"get", "pools", "-o", "table"}, {"apply"},
           {"get", "instances", "-w"}, {"--server", "https://127.0.0.1:1", "get", "pools"},
           {"--server", "127.0.0.1:3001", "get", "pools"}, {"completion", "zsh"}}) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(op.Mmctl(args).exit_code, 2) << joined;
  }
  auto refused = RunCommand({BinPath("matchmakerd"), "--no-such-flag"});
  EXPECT_EQ(refused.exit_code, 2) << "matchmakerd's usage errors are 2 too";
  // A pool that cannot start anything: the client waits in line.
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", CommandPool("eu", 0, 1, "[\"/bin/sleep\", \"60\"]")).status, 201);
  auto r = RunCommand({BinPath("mmctl"), "request", "--client", "alice", "--client-server",
                       "http://127.0.0.1:" + std::to_string(op.client_port())});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_EQ(r.out.rfind("queued", 0), 0u) << r.out;
}

TEST(Mmctl, GetWatchPrintsTheListThenEachChange) {
  Operator op("mmctl-watch");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 0)).status, 201);
  auto w = Child::Spawn({BinPath("mmctl"), "--server", op.server(), "get", "pools", "-w", "-o", "name"});
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->WaitForLine("serverpool/eu", 10s)) << w->output();
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/us", GameServerPool("us", 0)).status, 201);
  EXPECT_TRUE(w->WaitForLine("serverpool/us", 10s)) << w->output();
  auto t = Child::Spawn({BinPath("mmctl"), "--server", op.server(), "get", "pools", "-w"});
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->WaitForLine("NAME", 10s)) << t->output();
  ASSERT_TRUE(t->WaitForLine("us ", 10s)) << t->output();
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 1)).status, 200);
  EXPECT_TRUE(t->WaitForLine("eu ", 10s)) << t->output();
}

TEST(Mmctl, TheCompletionScriptParsesAndCompletes) {
  auto script = RunCommand({BinPath("mmctl"), "completion", "bash"});
  ASSERT_EQ(script.exit_code, 0);
  auto syntax = RunCommand({"/bin/bash", "-n"}, 10s, script.out);
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;
  // Completing "mmctl g" offers "get".
  std::string probe = script.out +
                      "\nCOMP_WORDS=(mmctl g); COMP_CWORD=1; _mmctl; printf '%s\\n' \"${COMPREPLY[@]}\"; complete -p mmctl\n";
  auto r = RunCommand({"/bin/bash"}, 10s, probe);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("get\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("complete -F _mmctl mmctl"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace mm::testing
