// The instance lifecycle after Ready, with real processes: a frozen server
// (SIGSTOP) turns Unhealthy and is replaced when idle, kept and recovered
// when busy; a client is never stalled by a hung candidate; a Full server
// that frees a slot serves again; a crash loop after Ready backs off; match
// metadata reaches the server and survives kill -9. Checked against the
// servers' own view where it matters.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/support/operator.h"

namespace mm::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

// PUT by name: creates or replaces (the name is the pool's, from the YAML).
void Apply(Operator& op, const std::string& yaml) {
  auto at = yaml.find("name: ") + 6;
  std::string name = yaml.substr(at, yaml.find('}', at) - at);
  auto r = op.Call("PUT", std::string(kPools) + "/" + name, yaml);
  ASSERT_TRUE(r.status == 200 || r.status == 201) << r.body;
}

std::string GameServers(const std::string& name, int warm, int max, int capacity, const std::string& spec,
                        const std::string& args = "") {
  return CommandPool(name, warm, max,
                     "[\"" + BinPath("mm-gameserver") + "\", \"--address\", \"127.0.0.1\", \"--capacity\", \"" +
                         std::to_string(capacity) + "\"" + args + "]",
                     spec);
}

std::optional<json::value> Instance(Operator& op, const std::string& pool, const std::string& name) {
  for (auto& i : op.Instances(pool)) {
    if (i.at("name").as_string() == name) return i;
  }
  return std::nullopt;
}

std::string State(Operator& op, const std::string& pool, const std::string& name) {
  auto i = Instance(op, pool, name);
  return i ? std::string(i->at("state").as_string()) : "<gone>";
}

std::string Address(const json::value& i) {
  return std::string(i.at("host").as_string()) + ":" + std::to_string(i.at("ports").at("game").as_int64());
}

// The Ready instance tried first (longest Ready).
json::value FirstReady(Operator& op, const std::string& pool) {
  std::optional<json::value> best;
  for (auto& i : op.Instances(pool)) {
    if (i.at("state").as_string() != "Ready") continue;
    if (!best || i.at("readyAt").as_int64() < best->at("readyAt").as_int64()) best = i;
  }
  return best ? *best : json::value();
}

std::string Events(Operator& op, const std::string& pool) {
  return op.Call("GET", std::string(kPools) + "/" + pool + "/events").body;
}

// Resumes a stopped process at scope exit, so a failed assertion never
// leaves one frozen for the teardown.
struct Frozen {
  explicit Frozen(int pid) : pid(pid) { ::kill(pid, SIGSTOP); }
  ~Frozen() { Thaw(); }
  void Thaw() {
    if (pid > 0) ::kill(pid, SIGCONT);
    pid = 0;
  }
  int pid;
};

constexpr char kFastHealth[] = "  health: {periodMs: 200, timeoutMs: 200, failureThreshold: 3}\n";

TEST(Lifecycle, FrozenIdleServerTurnsUnhealthyIsNeverOfferedAndIsReplaced) {
  Operator op("frozen-idle");
  ASSERT_TRUE(op.Start());  // instances get a 2 s stop grace
  Apply(op, GameServers("eu", 2, 6, 10, kFastHealth));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }));
  json::value victim = FirstReady(op, "eu");
  ASSERT_TRUE(victim.is_object());
  const std::string name(victim.at("name").as_string());
  const std::string frozen_addr = Address(victim);
  Frozen freeze(PidOf(victim));
  auto t0 = Clock::now();
  // periodMs x failureThreshold (600 ms) plus the probe timeout and slack.
  ASSERT_TRUE(Eventually([&] {
    auto s = State(op, "eu", name);
    return s == "Unhealthy" || s == "Terminating" || s == "<gone>";
  }, 3s)) << State(op, "eu", name);
  auto took = Clock::now() - t0;
  EXPECT_LT(took, 2s) << "Unhealthy within periodMs x failureThreshold plus slack";
  EXPECT_NE(Events(op, "eu").find("\"Unhealthy\""), std::string::npos) << Events(op, "eu");
  // Never offered: every client is served at once, by another server.
  for (int c = 0; c < 5; ++c) {
    auto start = Clock::now();
    auto r = op.Request("frozen-idle-" + std::to_string(c));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body, frozen_addr);
    EXPECT_LT(Clock::now() - start, 150ms) << "a client waited on the frozen server";
  }
  // Replaced: stopped (SIGKILL after the grace; SIGTERM waits on a stopped
  // process) and the warm pool refilled.
  ASSERT_TRUE(Eventually([&] { return !Instance(op, "eu", name) && Count(op.Pool("eu"), "ready") == 2; }, 15s))
      << json::serialize(op.Pool("eu"));
  freeze.pid = 0;  // it is gone
  auto metrics = op.Call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("matchmaker_health_probes_total{pool=\"eu\",result=\"failed\"}"), std::string::npos);
}

TEST(Lifecycle, FrozenBusyServerIsKeptReportedAndRecovers) {
  Operator op("frozen-busy");
  ASSERT_TRUE(op.Start());
  Apply(op, GameServers("eu", 1, 4, 1, kFastHealth));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  auto r = op.Request("player-1", "", {{"Accept", "application/json"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string name(json::parse(r.body).at("instance").as_string());
  auto inst = Instance(op, "eu", name);
  ASSERT_TRUE(inst);
  Frozen freeze(PidOf(*inst));
  ASSERT_TRUE(Eventually([&] { return State(op, "eu", name) == "Unhealthy"; }, 3s)) << State(op, "eu", name);
  EXPECT_NE(Events(op, "eu").find("BusyInstanceUnhealthy"), std::string::npos) << Events(op, "eu");
  ASSERT_TRUE(Eventually([&] {
    return op.Call("GET", "/metrics").body.find("matchmaker_pool_busy_unhealthy_instances{pool=\"eu\"} 1") !=
           std::string::npos;
  }, 3s));
  EXPECT_EQ(Count(op.Pool("eu"), "unhealthy"), 1);
  // Kept: a match may still be on. Well past the stop grace it is still there.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(State(op, "eu", name), "Unhealthy");
  // Another client is not sent to it.
  auto other = op.Request("player-2", "", {{"Accept", "application/json"}});
  if (other.status == 200) {
    EXPECT_NE(json::parse(other.body).at("instance").as_string(), name);
  }
  freeze.Thaw();
  ASSERT_TRUE(Eventually([&] { return State(op, "eu", name) == "Allocated"; }, 3s)) << State(op, "eu", name);
  EXPECT_NE(Events(op, "eu").find("\"Recovered\""), std::string::npos);
  auto again = op.Request("player-1", "", {{"Accept", "application/json"}});
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body).at("instance").as_string(), name) << "the same server, which still holds it";
}

TEST(Lifecycle, HungCandidateCostsOneHandshakeTimeoutThenIsSkipped) {
  Operator op("hung-candidate");
  ASSERT_TRUE(op.Start());
  // Liveness probes rare (60 s), so only the handshake can find the hang;
  // the policy allows 3 retries of 1 s each.
  const std::string spec =
      "  reservation: {timeoutMs: 1000, retries: 3, cooldownMs: 200}\n"
      "  health: {periodMs: 60000, timeoutMs: 1000, failureThreshold: 3}\n";
  // One server first, then a second: the first is Ready longest, so it is
  // the first candidate.
  Apply(op, GameServers("eu", 1, 4, 10, spec));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  json::value first = FirstReady(op, "eu");
  Apply(op, GameServers("eu", 2, 4, 10, spec));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }));
  const std::string hung_addr = Address(first);
  Frozen freeze(PidOf(first));
  auto start = Clock::now();
  auto r = op.Request("hung-0");
  auto took = Clock::now() - start;
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body, hung_addr);
  EXPECT_LT(took, 1600ms) << "served elsewhere within one handshake timeout (1 s), not after 4";
  EXPECT_GE(took, 900ms) << "the hung server was tried first (the test's premise)";
  for (int c = 1; c <= 5; ++c) {
    auto s = Clock::now();
    auto next = op.Request("hung-" + std::to_string(c));
    ASSERT_EQ(next.status, 200) << next.body;
    EXPECT_NE(next.body, hung_addr);
    EXPECT_LT(Clock::now() - s, 300ms) << "the circuit is open: the next clients do not wait on it";
  }
}

TEST(Lifecycle, FullServerThatFreesASlotServesTheNextClient) {
  Operator op("freed-slot");
  ASSERT_TRUE(op.Start());
  // One server of one slot, and no room for another.
  Apply(op, GameServers("eu", 1, 1, 1,
                        "  reservation: {timeoutMs: 1000, retries: 0, cooldownMs: 100}\n"
                        "  health: {periodMs: 60000, timeoutMs: 1000, failureThreshold: 3}\n"));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  auto a = op.Request("alice");
  ASSERT_EQ(a.status, 200) << a.body;
  auto b = op.Request("bob");
  ASSERT_EQ(b.status, 202) << "no slot anywhere: bob waits";
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "full") == 1; }, 5s));
  auto inst = op.Instances("eu").at(0);
  auto control = static_cast<std::uint16_t>(inst.at("controlPort").as_int64());
  // alice leaves: the game server frees her slot on its own.
  ASSERT_EQ(http::HttpCall(control, "DELETE", "/reservation/alice").status, 200);
  http::HttpResult served;
  ASSERT_TRUE(Eventually([&] {
    served = op.Request("bob");
    return served.status == 200;
  }, 5s)) << "bob still " << served.status << " " << served.body;
  EXPECT_EQ(served.body, Address(inst));
  auto view = http::HttpCall(control, "GET", "/reservations");
  EXPECT_EQ(view.body, "bob\n") << "the server's own view";
}

TEST(Lifecycle, FullServerWhoseClientsLeftIsReadyAgain) {
  Operator op("full-audit");
  ASSERT_TRUE(op.Start());
  Apply(op, GameServers("eu", 1, 1, 1, "  health: {periodMs: 100, timeoutMs: 500, failureThreshold: 3}\n"));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  ASSERT_EQ(op.Request("alice").status, 200);
  ASSERT_EQ(op.Request("bob").status, 202);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "full") == 1; }, 5s));
  ASSERT_EQ(op.Request("bob", "", {}, "DELETE").status, 200) << "bob gives up waiting";
  auto inst = op.Instances("eu").at(0);
  auto control = static_cast<std::uint16_t>(inst.at("controlPort").as_int64());
  ASSERT_EQ(http::HttpCall(control, "DELETE", "/reservation/alice").status, 200);
  // Nobody asks for a slot: the operator finds out by itself (every 10
  // health periods it asks a Full server about its clients).
  ASSERT_TRUE(Eventually([&] {
    auto i = op.Instances("eu");
    return !i.empty() && i[0].at("state").as_string() == "Ready" && i[0].at("reservations").as_array().empty();
  }, 5s)) << json::serialize(json::value_from(op.Instances("eu")));
  EXPECT_NE(Events(op, "eu").find("Freed"), std::string::npos);
}

TEST(Lifecycle, CrashLoopAfterReadyBacksOffAndDegrades) {
  Operator op("crash-loop");
  ASSERT_TRUE(op.Start());
  // Ready at once, exits 1 after 500 ms: every start "succeeds".
  Apply(op, GameServers("eu", 1, 3, 1, "", ", \"--exit-after-ms\", \"500\", \"--exit-code\", \"1\""));
  auto start = Clock::now();
  ASSERT_TRUE(Eventually([&] { return ConditionStatus(op.Pool("eu"), "Degraded") == "True"; }, 15s))
      << Events(op, "eu");
  std::string reason;
  ConditionStatus(op.Pool("eu"), "Degraded", &reason);
  EXPECT_EQ(reason, "StartFailures");
  EXPECT_NE(Events(op, "eu").find("CrashedAfterReady"), std::string::npos);
  // Bounded starts: backoff doubles (0.5, 1, 2, 4 s ...). Without it a
  // start every ~0.6 s would make ~20 in 12 s.
  while (Clock::now() - start < 12s) std::this_thread::sleep_for(200ms);
  std::size_t logs = 0;
  for (auto& e : std::filesystem::directory_iterator(op.data_dir() + "/logs/eu")) logs += e.is_regular_file();
  EXPECT_LE(logs, 9u) << "instances started in 12 s";
  EXPECT_GE(logs, 3u);
  auto metrics = op.Call("GET", "/metrics").body;
  EXPECT_EQ(metrics.find("matchmaker_instance_failures_total{pool=\"eu\",reason=\"CrashedAfterReady\"} 0"),
            std::string::npos);
  EXPECT_NE(metrics.find("matchmaker_instance_failures_total{pool=\"eu\",reason=\"CrashedAfterReady\"}"),
            std::string::npos);
}

TEST(Lifecycle, MatchMetadataReachesTheServerAndSurvivesKill9) {
  Operator op("metadata");
  ASSERT_TRUE(op.Start());
  Apply(op, GameServers("eu", 1, 3, 4, ""));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  const std::string body = R"({"metadata": {"map": "dust", "mode": "ctf", "session": "s-42"}})";
  auto r = op.Request("meta-1", "", {{"Accept", "application/json"}, {"Content-Type", "application/json"}}, "POST",
                      body);
  ASSERT_EQ(r.status, 200) << r.body;
  auto answer = json::parse(r.body);
  const json::value want = json::parse(R"({"map": "dust", "mode": "ctf", "session": "s-42"})");
  EXPECT_EQ(answer.at("metadata"), want);
  auto inst = Instance(op, "eu", std::string(answer.at("instance").as_string()));
  ASSERT_TRUE(inst);
  auto control = static_cast<std::uint16_t>(inst->at("controlPort").as_int64());
  auto server = http::HttpCall(control, "GET", "/reservations", "", {{"Accept", "application/json"}});
  ASSERT_EQ(server.status, 200);
  EXPECT_EQ(json::parse(server.body).at("metadata").at("meta-1"), want) << server.body;
  EXPECT_EQ(inst->at("metadata").at("meta-1"), want);
  // Too big: 413, nothing allocated.
  auto big = op.Request("meta-2", "", {}, "POST", R"({"metadata":{"x":")" + std::string(5000, 'a') + "\"}}");
  EXPECT_EQ(big.status, 413) << big.body;
  EXPECT_EQ(op.Request("meta-2", "", {}, "GET").status, 404);
  op.Kill9();
  ASSERT_TRUE(op.Start());
  ASSERT_TRUE(Eventually([&] { return op.Call("GET", "/readyz").status == 200; }));
  auto after = op.Request("meta-1", "", {{"Accept", "application/json"}}, "GET");
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(json::parse(after.body).at("metadata"), want);
}

}  // namespace
}  // namespace mm::testing
