// matchmakerd on the process backend with real mm-gameserver instances,
// driven through the admin API and mmctl on 127.0.0.1.

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <set>
#include <sstream>

#include "tests/support/operator.h"

namespace mm::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

std::set<std::string> Names(const std::vector<json::value>& instances, const std::string& state = "") {
  std::set<std::string> out;
  for (const auto& i : instances) {
    if (state.empty() || i.at("state").as_string() == state) out.insert(std::string(i.at("name").as_string()));
  }
  return out;
}

bool Settled(Operator& op, const std::string& pool, std::int64_t ready, std::size_t managed) {
  auto p = op.Pool(pool);
  return Count(p, "ready") == ready && Count(p, "starting") == 0 && Count(p, "terminating") == 0 &&
         op.Instances(pool).size() == static_cast<std::size_t>(ready) && op.ManagedPids().size() == managed;
}

// A page a developer visits sends a "simple" cross-origin POST (text/plain,
// no CORS preflight), or reaches the admin API by DNS rebinding. Either
// would run the pool's command through the process backend: refused, and
// nothing is created. mmctl and curl are unaffected.
TEST(Operator, AWebPageCannotApplyAPool) {
  Operator op("browser");
  ASSERT_TRUE(op.Start());
  std::string marker = op.data_dir() + "/pwned";
  std::string pool = CommandPool("evil", 1, 1, "[/bin/sh, -c, \"touch " + marker + "; sleep 60\"]");
  auto post = [&](http::Headers h) {
    return http::HttpCall(op.admin_port(), "POST", kPools, pool, h);
  };
  auto page = post({{"Content-Type", "text/plain"}, {"Origin", "http://evil.example"}});
  EXPECT_EQ(page.status, 403) << page.body;
  EXPECT_NE(page.body.find("\"reason\":\"Forbidden\""), std::string::npos) << page.body;
  auto rebinding = post({{"Content-Type", "application/yaml"},
                         {"Host", "evil.example:" + std::to_string(op.admin_port())},
                         {"Origin", "http://evil.example:" + std::to_string(op.admin_port())},
                         {"Sec-Fetch-Site", "same-origin"}});
  EXPECT_EQ(rebinding.status, 403) << rebinding.body;
  auto fetch = post({{"Content-Type", "application/yaml"}, {"Sec-Fetch-Site", "cross-site"}});
  EXPECT_EQ(fetch.status, 403) << fetch.body;
  auto plain = post({{"Content-Type", "text/plain"}});
  EXPECT_EQ(plain.status, 415) << plain.body;
  auto form = post({{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(form.status, 415) << form.body;
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a refused request ran the pool's command";
  EXPECT_EQ(op.Call("GET", kPools).body.find("evil"), std::string::npos) << "no pool was created";
  // The same request as mmctl sends it is accepted.
  auto ok = post({{"Content-Type", "application/yaml"}});
  EXPECT_EQ(ok.status, 201) << ok.body;
  EXPECT_TRUE(Eventually([&] { return std::filesystem::exists(marker); }));
}

// A one-byte pool body (an operator's typo) used to take the daemon down:
// yaml-cpp allocated without bound on the io thread. It is a 422 now, and
// the daemon keeps answering.
TEST(Operator, MalformedYamlIsRefusedAndTheDaemonLives) {
  Operator op("malformed");
  ASSERT_TRUE(op.Start());
  // "%\x93": libfyaml 0.7.12 looped for ever on it (found by fuzzing).
  for (std::string body : {",", "{a: [", "- [a, b: {c: ,]}", "%\x93"}) {
    SCOPED_TRACE(body);
    auto t0 = std::chrono::steady_clock::now();
    auto r = op.Call("PUT", std::string(kPools) + "/x", body);
    EXPECT_EQ(r.status, 422) << r.body;
    EXPECT_NE(r.body.find("invalid YAML"), std::string::npos) << r.body;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    EXPECT_EQ(op.Call("GET", "/healthz").status, 200);
  }
  EXPECT_EQ(op.Call("GET", std::string(kPools) + "/x").status, 404) << "nothing was created";
}

// A 442-byte alias bomb (9 levels of 9) used to cost 0.35 s on the event
// loop and leave 145 MB behind. Aliases may add 10,000 nodes: it is refused
// at once, and the daemon's peak memory barely moves.
TEST(Operator, AnAliasBombCostsNeitherTimeNorMemory) {
  Operator op("alias-bomb");
  ASSERT_TRUE(op.Start());
  std::string bomb = "a0: &a0 [x,x,x,x,x,x,x,x,x]\n";
  for (int i = 1; i < 10; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) bomb += (k ? ",*a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  auto peak_kb = [&] {
    std::ifstream in("/proc/" + std::to_string(op.process()->pid()) + "/status");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
    }
    return 0L;
  };
  long before = peak_kb();
  auto t0 = std::chrono::steady_clock::now();
  auto r = op.Call("PUT", std::string(kPools) + "/x", bomb);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("alias bomb"), std::string::npos) << r.body;
  EXPECT_LT(took, 100ms);
  EXPECT_LT(peak_kb() - before, 20'000) << "peak memory grew by more than 20 MB";
}

TEST(Operator, ApplyWithWaitReachesTheWarmPool) {
  Operator op("warm");
  ASSERT_TRUE(op.Start());
  auto r = op.Mmctl({"apply", "-f", "-", "--wait", "--timeout", "30"}, GameServerPool("eu", 3));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("serverpool/eu created"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3/3 warm, 0 starting, 0 busy - Ready"), std::string::npos) << r.out;
  auto instances = op.Instances("eu");
  ASSERT_EQ(Names(instances, "Ready").size(), 3u);
  // Every Ready instance really serves the Reservation API on its port.
  for (const auto& i : instances) {
    auto port = static_cast<std::uint16_t>(i.at("controlPort").as_int64());
    EXPECT_EQ(http::HttpCall(port, "GET", "/reservation/nobody").status, 404);
  }
  EXPECT_EQ(op.ManagedPids().size(), 3u);
  auto get = op.Mmctl({"get", "pools"});
  EXPECT_NE(get.out.find("eu     3      3       0"), std::string::npos) << get.out;
  auto status = ConditionStatus(op.Pool("eu"), "Ready");
  EXPECT_EQ(status, "True");
}

TEST(Operator, KilledInstanceIsReplaced) {
  Operator op("killed");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2, 2); }));
  auto before = op.Instances("eu");
  std::string victim(before[0].at("name").as_string());
  ASSERT_EQ(::kill(PidOf(before[0]), SIGKILL), 0);
  ASSERT_TRUE(Eventually([&] {
    auto names = Names(op.Instances("eu"), "Ready");
    return names.size() == 2 && !names.contains(victim) && op.ManagedPids().size() == 2;
  }));
}

// An instance starts clean: stdin from /dev/null, stdout and stderr to its
// log, nothing else of matchmakerd's open (its listening sockets, its
// journal), its own session, no signal blocked or ignored.
TEST(Operator, AnInstanceInheritsNothingButItsLog) {
  Operator op("clean");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", CommandPool("eu", 1, 1, "[sleep, \"60\"]")).status, 201);
  int pid = 0;
  ASSERT_TRUE(Eventually([&] {
    auto instances = op.Instances("eu");
    pid = instances.empty() || !instances[0].as_object().contains("backendId") ? 0 : PidOf(instances[0]);
    return pid > 0;
  }));
  const std::string proc = "/proc/" + std::to_string(pid);
  auto fds = [&] {
    std::map<int, std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(proc + "/fd")) {
      std::error_code ec;
      out[std::stoi(e.path().filename().string())] = std::filesystem::read_symlink(e.path(), ec).string();
    }
    return out;
  };
  // Until sleep runs (exec'd, its libraries loaded and closed), it may
  // hold more: an inherited descriptor never goes.
  std::map<int, std::string> open;
  Eventually([&] {
    std::error_code ec;
    open = fds();
    return std::filesystem::read_symlink(proc + "/exe", ec).filename() == "sleep" && open.size() == 3;
  }, 5s);
  ASSERT_EQ(open.size(), 3u) << "fd " << open.rbegin()->first << " -> " << open.rbegin()->second;
  EXPECT_EQ(open[0], "/dev/null");
  EXPECT_NE(open[1].find("/logs/eu/"), std::string::npos) << open[1];
  EXPECT_EQ(open[2], open[1]);
  std::ifstream stat(proc + "/stat");
  std::string field;
  std::vector<std::string> fields;
  while (stat >> field) fields.push_back(field);
  ASSERT_GT(fields.size(), 6u);
  EXPECT_EQ(fields[5], std::to_string(pid)) << "session id: its own session";
  std::ifstream status(proc + "/status");
  std::map<std::string, std::string> st;
  for (std::string line; std::getline(status, line);) {
    auto colon = line.find(':');
    auto value = colon == std::string::npos ? colon : line.find_first_not_of(" \t", colon + 1);
    if (value != std::string::npos) st[line.substr(0, colon)] = line.substr(value);
  }
  EXPECT_EQ(st["SigBlk"], "0000000000000000");
  EXPECT_EQ(st["SigIgn"], "0000000000000000");
}

TEST(Operator, WarmLoweredThenRaised) {
  Operator op("scale");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 4)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 4, 4); }));
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 1)).status, 200);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 1, 1); })) << json::serialize(op.Pool("eu"));
  EXPECT_EQ(op.Pool("eu").at("metadata").at("generation").as_int64(), 2);
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 5)).status, 200);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 5, 5); }));
}

TEST(Operator, TemplateChangeReplacesIdleInstances) {
  Operator op("rollout");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 3)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 3, 3); }));
  auto old_names = Names(op.Instances("eu"));
  std::string old_hash(op.Instances("eu")[0].at("templateHash").as_string());
  std::string v2 = GameServerPool("eu", 3);
  v2.replace(v2.find("\"3\"]"), 4, "\"4\"]");  // --capacity 4
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", v2).status, 200);
  ASSERT_TRUE(Eventually([&] {
    auto inst = op.Instances("eu");
    if (inst.size() != 3 || !Settled(op, "eu", 3, 3)) return false;
    for (const auto& i : inst) {
      if (i.at("templateHash").as_string() == old_hash || old_names.contains(std::string(i.at("name").as_string()))) {
        return false;
      }
    }
    return true;
  })) << op.Call("GET", std::string(kPools) + "/eu/events").body;
}

TEST(Operator, DeletedPoolIsDrainedAndGone) {
  Operator op("delete");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 3)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 3, 3); }));
  auto r = op.Mmctl({"delete", "pool", "eu"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(Eventually([&] { return op.Pool("eu").is_null() && op.ManagedPids().empty(); }));
  EXPECT_EQ(op.Call("GET", std::string(kPools) + "/eu").status, 404);
  EXPECT_EQ(op.Mmctl({"delete", "pool", "eu"}).exit_code, 1);
}

TEST(Operator, Kill9ThenRestartAdoptsEveryInstanceAndDuplicatesNone) {
  Operator op("adopt");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 3)).status, 201);
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/us", GameServerPool("us", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 3, 5) && Settled(op, "us", 2, 5); }));
  auto eu = Names(op.Instances("eu"));
  auto pids = op.ManagedPids();
  std::sort(pids.begin(), pids.end());
  op.Kill9();
  EXPECT_EQ(op.ManagedPids().size(), 5u) << "instances must outlive matchmakerd";
  ASSERT_TRUE(op.Start());
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 3, 5) && Settled(op, "us", 2, 5); }));
  // Hold for a few resyncs' worth of reconcile passes: nothing new appears.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(Names(op.Instances("eu")), eu);
  auto after = op.ManagedPids();
  std::sort(after.begin(), after.end());
  EXPECT_EQ(after, pids);
  auto recovered = op.Call("GET", std::string(kPools) + "/eu/events");
  EXPECT_NE(recovered.body.find("Recovered"), std::string::npos);
}

TEST(Operator, SigtermExitsZeroAndInstancesKeepRunning) {
  Operator op("sigterm");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2, 2); }));
  EXPECT_EQ(op.Terminate(), 0);
  EXPECT_EQ(op.ManagedPids().size(), 2u);
}

TEST(Operator, BadPoolsAreRejectedWithFieldPathsAndChangeNothing) {
  Operator op("bad");
  std::string bad = "/tmp/mm-it-bad-" + std::to_string(getpid()) + ".yaml";
  std::ofstream(bad) << GameServerPool("eu", 3) << "  wram: 1\n";
  {
    auto r = RunCommand({BinPath("matchmakerd"), "--data-dir", op.data_dir(), "--admin-listen", "127.0.0.1:0",
                         "--pools", bad});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find(":11: spec.wram: unknown field \"wram\" (did you mean \"warm\"?)"), std::string::npos)
        << r.err;
  }
  std::remove(bad.c_str());
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 1)).status, 201);
  auto r = op.Call("PUT", std::string(kPools) + "/eu",
                   GameServerPool("eu", 1) + "    controlPort: 70000\n");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("spec.template.controlPort: must be <= 65535 (got 70000)"), std::string::npos) << r.body;
  r = op.Call("PUT", std::string(kPools) + "/eu", "{not yaml: [");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("invalid YAML"), std::string::npos) << r.body;
  r = op.Call("PUT", std::string(kPools) + "/other", GameServerPool("eu", 1));
  EXPECT_EQ(r.status, 400);
  r = op.Call("POST", kPools, GameServerPool("eu", 1));
  EXPECT_EQ(r.status, 409);
  auto m = op.Mmctl({"apply", "-f", "-"}, GameServerPool("eu", 50, 20));
  EXPECT_EQ(m.exit_code, 2);
  EXPECT_NE(m.err.find("spec.warm: must be <= spec.maxInstances (20)"), std::string::npos) << m.err;
  EXPECT_EQ(op.Pool("eu").at("metadata").at("generation").as_int64(), 1);
  EXPECT_EQ(op.Pool("eu").at("spec").at("warm").as_int64(), 1);
}

TEST(Operator, AdminTokenIsRequiredWhenConfigured) {
  Operator op("token");
  std::string token_file = op.data_dir() + "/token";
  std::ofstream(token_file) << "s3cret\n";
  ASSERT_TRUE(op.Start({"--admin-token-file", token_file}));
  EXPECT_EQ(op.Call("GET", kPools).status, 401);
  EXPECT_EQ(op.Call("GET", "/healthz").status, 200);
  auto bad = http::HttpCall(op.admin_port(), "GET", kPools, "", {{"Authorization", "Bearer wrong"}});
  EXPECT_EQ(bad.status, 401);
  auto good = http::HttpCall(op.admin_port(), "GET", kPools, "", {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(good.status, 200);
  EXPECT_EQ(op.Mmctl({"--token-file", token_file, "get", "pools"}).exit_code, 0);
  EXPECT_EQ(op.Mmctl({"get", "pools"}).exit_code, 1);
}

TEST(Operator, FailingInstancesBackOffAndDegradeThePool) {
  Operator op("degraded");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/broken", CommandPool("broken", 2, 100, "[/bin/false]")).status, 201);
  std::string reason;
  ASSERT_TRUE(Eventually([&] { return ConditionStatus(op.Pool("broken"), "Degraded", &reason) == "True"; }));
  EXPECT_EQ(reason, "StartFailures");
  // Backoff: in 2 s a tight loop would create hundreds; with backoff a few.
  std::this_thread::sleep_for(2s);
  auto events = op.Call("GET", std::string(kPools) + "/broken/events").body;
  std::size_t creates = 0;
  for (std::size_t at = 0; (at = events.find("creating instance", at)) != std::string::npos; ++at) ++creates;
  EXPECT_LT(creates, 15u) << events;
  auto metrics = op.Call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("matchmaker_pool_condition{pool=\"broken\",type=\"Degraded\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("matchmaker_instance_failures_total{pool=\"broken\",reason=\"ExitedBeforeReady\"}"),
            std::string::npos);
}

TEST(Operator, SlowStartTimesOut) {
  Operator op("timeout");
  ASSERT_TRUE(op.Start());
  std::string pool = CommandPool("slow", 1, 100, "[sleep, \"60\"]", "  readiness: {timeoutMs: 300, periodMs: 50}\n");
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/slow", pool).status, 201);
  ASSERT_TRUE(Eventually([&] {
    return op.Call("GET", std::string(kPools) + "/slow/events").body.find("StartTimeout") != std::string::npos;
  }));
  // The timed-out process is stopped, not leaked.
  ASSERT_TRUE(Eventually([&] { return op.ManagedPids().size() <= 1; }));
}

TEST(Operator, JsonLogsAreOneJsonObjectPerLine) {
  Operator op("jsonlog");
  ASSERT_TRUE(op.Start({"--log-format", "json"}));
  // A create failure logs the command, quotes and backslash included.
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/quoted", CommandPool("quoted", 1, 100, "['/no/such \"cmd\\']")).status,
            201);
  ASSERT_TRUE(Eventually([&] {
    return op.Call("GET", std::string(kPools) + "/quoted/events").body.find("CreateFailed") != std::string::npos;
  }));
  EXPECT_EQ(op.Terminate(), 0);
  op.process()->WaitForLine("\x01never", 200ms);
  std::istringstream lines(op.process()->output());
  int parsed = 0, quoted = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    ASSERT_FALSE(ec) << line;
    ASSERT_TRUE(v.is_object() && v.as_object().contains("msg")) << line;
    ++parsed;
    quoted += v.at("msg").as_string().find("/no/such \"cmd\\") != json::string::npos;
  }
  EXPECT_GE(parsed, 3);
  EXPECT_GE(quoted, 1);
  EXPECT_NE(op.process()->output().find(R"("msg":"matchmakerd: admin=127.0.0.1:)"), std::string::npos)
      << "the port banner is a JSON log line too";
}

// JSON lines say what they are about as fields, not only in "msg": the
// pool, the instance, the client, the pool event.
TEST(Operator, JsonLogsCarryPoolInstanceClientAndEventFields) {
  Operator op("jsonfields");
  ASSERT_TRUE(op.Start({"--log-format", "json", "--log-level", "debug"}));
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu",
                    GameServerPool("eu", 1, 20, "  reservation: {timeoutMs: 300, retries: 0, cooldownMs: 100}\n"))
                .status,
            201);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  auto inst = op.Instances("eu").front();
  std::string name(inst.at("name").as_string());
  int pid = PidOf(inst);
  // A frozen server: alice's handshake gets no answer (a warning about her
  // and that server), then the server dies (an event: it crashed).
  ::kill(pid, SIGSTOP);
  op.Request("alice");
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(Eventually([&] { return op.Call("GET", std::string(kPools) + "/eu/events").body.find("killed by signal 9") !=
                                      std::string::npos; }));
  EXPECT_EQ(op.Terminate(), 0);
  op.process()->WaitForLine("\x01never", 200ms);
  std::istringstream lines(op.process()->output());
  bool client_line = false, event_line = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    ASSERT_FALSE(ec) << line;
    const auto& o = v.as_object();
    auto field = [&](const char* k) { return o.contains(k) ? std::string(o.at(k).as_string()) : std::string(); };
    client_line = client_line || (field("client") == "alice" && field("pool") == "eu" && field("instance") == name);
    event_line = event_line || ((field("event") == "Exited" || field("event") == "CrashedAfterReady") &&
                                field("pool") == "eu" && field("instance") == name);
  }
  EXPECT_TRUE(client_line) << op.process()->output();
  EXPECT_TRUE(event_line) << op.process()->output();
}

// A journal damaged in the middle (acknowledged records after the damage)
// stops matchmakerd with the reason; --repair-journal cuts it and starts.
TEST(Operator, ADamagedJournalStopsTheStartUntilRepaired) {
  Operator op("damaged");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 0)).status, 201);
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/us", GameServerPool("us", 0)).status, 201);
  op.Kill9();
  const std::string journal = op.data_dir() + "/state/journal";
  {
    std::fstream f(journal, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(40);  // inside the first group's record, well before the last group
    f.put('\x7f');
  }
  EXPECT_FALSE(op.Start());
  EXPECT_EQ(op.process()->Wait(5s), 1);
  EXPECT_NE(op.process()->output().find("is damaged"), std::string::npos) << op.process()->output();
  ASSERT_TRUE(op.Start({"--repair-journal"}));
  EXPECT_NE(op.process()->output().find("damaged, cut"), std::string::npos) << op.process()->output();
  EXPECT_EQ(op.Call("GET", "/healthz").status, 200);
}

TEST(Operator, MetricsAndHealth) {
  Operator op("metrics");
  ASSERT_TRUE(op.Start());
  EXPECT_EQ(op.Call("GET", "/healthz").status, 200);
  EXPECT_EQ(op.Call("GET", "/readyz").status, 200);
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2, 2); }));
  auto m = op.Call("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_TRUE(Eventually([&] {
    auto body = op.Call("GET", "/metrics").body;
    return body.find("matchmaker_pool_instances{pool=\"eu\",state=\"ready\"} 2") != std::string::npos;
  }));
  for (const char* name : {"matchmaker_pool_warm_target{pool=\"eu\"} 2",
                           "matchmaker_pool_condition{pool=\"eu\",type=\"Degraded\"} 0",
                           "matchmaker_instance_startup_seconds_count",
                           "matchmaker_reconcile_duration_seconds_count", "matchmaker_build_info{version=",
                           "matchmaker_backend_requests_total{backend=\"process\",code=\"ok\",op=\"create\"}"}) {
    EXPECT_NE(m.body.find(name), std::string::npos) << name;
  }
  auto logs = op.data_dir() + "/logs/eu";
  EXPECT_TRUE(std::filesystem::exists(logs));
}

}  // namespace
}  // namespace mm::testing
