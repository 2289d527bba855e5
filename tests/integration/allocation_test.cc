// POST /request against a real matchmakerd with real mm-gameserver instances.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "tests/support/jwt_sign.h"
#include "tests/support/operator.h"

namespace mm::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

// address ("127.0.0.1:port" of the game port) -> control port, from the admin API.
std::map<std::string, std::uint16_t> ControlPorts(Operator& op, const std::string& pool) {
  std::map<std::string, std::uint16_t> out;
  for (const auto& i : op.Instances(pool)) {
    const auto* ports = i.as_object().if_contains("ports");
    if (!ports || !ports->is_object() || !ports->as_object().contains("game")) continue;  // still being created
    std::string addr = std::string(i.at("host").as_string()) + ":" +
                       std::to_string(i.at("ports").at("game").as_int64());
    out[addr] = static_cast<std::uint16_t>(i.at("controlPort").as_int64());
  }
  return out;
}

bool Verifies(std::uint16_t control_port, const std::string& client_encoded) {
  return http::HttpCall(control_port, "GET", "/reservation/" + client_encoded).status == 200;
}

void Apply(Operator& op, const std::string& name, const std::string& yaml) {
  auto r = op.Call("PUT", std::string(kPools) + "/" + name, yaml);
  ASSERT_TRUE(r.status == 200 || r.status == 201) << r.body;
}

// Game servers stopped (SIGSTOP) mid-test, and the client threads whose
// requests hang on them: resumed and joined by Thaw, or at scope exit
// however the test ends. Declare what the threads write before it.
struct FrozenServers {
  explicit FrozenServers(std::vector<int> stopped) : pids(std::move(stopped)) {
    for (int pid : pids) ::kill(pid, SIGSTOP);
  }
  ~FrozenServers() { Thaw(); }
  void Thaw() {
    for (int pid : pids) ::kill(pid, SIGCONT);
    pids.clear();
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<int> pids;
  std::vector<std::thread> threads;
};

// A client's handshake has started once its attempt is in flight: its
// lookup answers 202 (the attempt begins its handshake in one step).
bool InFlight(Operator& op, const std::string& id) {
  return Eventually([&] { return op.Request(id, "", {}, "GET").status == 202; }, 5s);
}

TEST(Allocation, PacksPlayersThenUsesWarmInstances) {
  Operator op("pack");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", GameServerPool("eu", 2));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }));
  std::map<std::string, int> per_server;
  std::vector<std::string> addr;
  for (std::string c : {"a", "b", "c", "d"}) {
    auto r = op.Request(c);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("Content-Type").substr(0, 10), "text/plain");
    addr.push_back(r.body);
    per_server[r.body]++;
  }
  EXPECT_EQ(addr[0], addr[1]);  // packed onto the partially filled one
  EXPECT_EQ(addr[0], addr[2]);
  EXPECT_NE(addr[0], addr[3]);  // full at 3: the next warm instance
  auto ports = ControlPorts(op, "eu");
  for (std::string c : {"a", "b", "c"}) EXPECT_TRUE(Verifies(ports[addr[0]], c));
  EXPECT_TRUE(Verifies(ports[addr[3]], "d"));
  // The warm pool is refilled: 2 Ready again besides the busy ones.
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }));
  auto pool = op.Pool("eu");
  EXPECT_EQ(Count(pool, "full"), 1);
  EXPECT_EQ(Count(pool, "allocated"), 1);
}

TEST(Allocation, RepeatRequestGetsTheSameServerAndJsonWorks) {
  Operator op("repeat");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", GameServerPool("eu", 2));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }));
  auto first = op.Request("player-1");
  ASSERT_EQ(first.status, 200);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(op.Request("player-1").body, first.body);
  auto j = op.Request("player-1", "", {{"Accept", "application/json"}});
  ASSERT_EQ(j.status, 200);
  auto v = json::parse(j.body);
  EXPECT_EQ(v.at("clientId"), "player-1");
  EXPECT_EQ(v.at("pool"), "eu");
  EXPECT_EQ(v.at("address").as_string(), first.body);
  EXPECT_TRUE(v.at("ports").as_object().contains("game"));
  EXPECT_EQ(op.Request("player-1", "", {}, "GET").body, first.body);
  auto cli = op.Mmctl({"request", "--client", "player-1", "--client-server",
                       "http://127.0.0.1:" + std::to_string(op.client_port())});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out, first.body + "\n");
  // Once the server no longer holds it (its match ended), a new allocation.
  // While its exit is not yet seen, the verification gets no answer: 503
  // with Retry-After, never a second slot; the client retries.
  auto ports = ControlPorts(op, "eu");
  ASSERT_EQ(http::HttpCall(ports[first.body], "POST", "/close").status, 200);
  auto again = op.Request("player-1");
  for (int i = 0; i < 100 && again.status == 503; ++i) {
    EXPECT_EQ(again.Header("Retry-After"), "1");
    std::this_thread::sleep_for(20ms);
    again = op.Request("player-1");
  }
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body, first.body);
}

TEST(Allocation, UnknownPoolSelectorAndAuthErrors) {
  Operator op("errors");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", GameServerPool("eu", 1));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  EXPECT_EQ(op.Request("x", "?pool=nope").status, 404);
  EXPECT_EQ(op.Request("x", "?selector=region%3Dmars").status, 404);
  EXPECT_EQ(op.Request("x", "?wait=forever").status, 400);
  EXPECT_EQ(op.Request("").status, 401);
  EXPECT_EQ(op.Request("x", "?pool=eu").status, 200);
  EXPECT_EQ(op.Request("y", "", {}, "DELETE").status, 404);
}

TEST(Allocation, HostileIdsCannotReachOtherRoutes) {
  Operator op("hostile");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", GameServerPool("eu", 1));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  auto r = op.Request("../close");
  ASSERT_EQ(r.status, 200) << r.body;
  auto r2 = op.Request("a/b?x=1#y");
  ASSERT_EQ(r2.status, 200);
  EXPECT_EQ(r2.body, r.body);
  auto ports = ControlPorts(op, "eu");
  EXPECT_TRUE(Verifies(ports[r.body], "..%2Fclose"));  // the server is alive and holds the id
  EXPECT_TRUE(Verifies(ports[r.body], "a%2Fb%3Fx%3D1%23y"));
  EXPECT_EQ(op.Request("tab\there").status, 400);
  EXPECT_EQ(op.Request(std::string(257, 'x')).status, 400);
  EXPECT_EQ(op.Request(std::string(256, 'x')).status, 200);
}

TEST(Allocation, TwoHundredConcurrentClientsAllVerifiedWithinCapacityAndMax) {
  Operator op("load");
  ASSERT_TRUE(op.Start());
  constexpr int kClients = 200, kMax = 80;
  Apply(op, "eu", GameServerPool("eu", 5, kMax));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 5; }));
  std::mutex mu;
  std::map<std::string, std::string> got;  // client -> address
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      std::string id = "c" + std::to_string(i);
      // A go-matchmaker client: POST until 200, bounded.
      for (int attempt = 0; attempt < 200; ++attempt) {
        auto r = op.Request(id, "?wait=5s");
        if (r.status == 200) {
          std::lock_guard lock(mu);
          got[id] = r.body;
          return;
        }
        if (r.status != 202) {
          std::lock_guard lock(mu);
          ADD_FAILURE() << id << ": " << r.status << " " << r.body << r.error;
          break;
        }
      }
      failures++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kClients));
  auto ports = ControlPorts(op, "eu");
  std::map<std::string, int> per_server;
  for (const auto& [id, addr] : got) {
    ASSERT_TRUE(ports.contains(addr)) << addr;
    EXPECT_TRUE(Verifies(ports[addr], id)) << id;
    per_server[addr]++;
  }
  for (const auto& [addr, n] : per_server) EXPECT_LE(n, 3) << addr;
  EXPECT_GE(per_server.size(), static_cast<std::size_t>((kClients + 2) / 3));
  EXPECT_LE(static_cast<int>(op.Instances("eu").size()), kMax);
}

// While a client waits for a busy instance, journal writes linger to share
// a flush (--journal-linger-us, here 3 s); once none waits, a write is
// flushed at once. A frozen server makes the wait last: one client's
// handshake hangs and a second waits for that instance; a third client, in
// another pool, is answered only when the window ends. Then the server
// thaws, both are served, and lone clients do not wait out a window.
TEST(Allocation, JournalLingersWhileClientsWaitForInstances) {
  Operator op("linger");
  ASSERT_TRUE(op.Start({"--journal-linger-us", "3000000"}));
  // Long enough for the freeze below: no handshake timeout, no failed probe.
  Apply(op, "eu", GameServerPool("eu", 1, 1, "  reservation: {timeoutMs: 30000}\n  health: {periodMs: 30000}\n", "",
                                  /*capacity=*/1000));
  Apply(op, "us", GameServerPool("us", 1, 1, "", "", /*capacity=*/1000));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1 && Count(op.Pool("us"), "ready") == 1; }));

  // 24 clients on one instance: every one is served and held by the server.
  constexpr int kClients = 24;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto r = op.Request("burst" + std::to_string(i), "?pool=eu");
      if (r.status == 200) {
        ok++;
      } else {
        ADD_FAILURE() << r.status << " " << r.body << r.error;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients);
  auto ports = ControlPorts(op, "eu");
  ASSERT_EQ(ports.size(), 1u);
  for (int i = 0; i < kClients; ++i) EXPECT_TRUE(Verifies(ports.begin()->second, "burst" + std::to_string(i)));

  auto instances = op.Instances("eu");
  ASSERT_EQ(instances.size(), 1u);
  const int pid = PidOf(instances.at(0));
  ASSERT_GT(pid, 0);
  http::HttpResult ra, rb;
  FrozenServers servers({pid});
  servers.threads.emplace_back([&] { ra = op.Request("frozen-a", "?pool=eu"); });
  ASSERT_TRUE(InFlight(op, "frozen-a"));  // its handshake hangs
  servers.threads.emplace_back([&] { rb = op.Request("frozen-b", "?pool=eu"); });
  ASSERT_TRUE(InFlight(op, "frozen-b"));  // and this client waits for it
  auto start = std::chrono::steady_clock::now();
  auto rc = op.Request("other-c", "?pool=us");
  auto took = std::chrono::steady_clock::now() - start;
  servers.Thaw();
  EXPECT_EQ(rc.status, 200) << rc.body;
  EXPECT_GE(took, 1500ms) << "a write lingers while a client waits for a busy instance (any pool's)";
  EXPECT_EQ(ra.status, 200) << ra.body << ra.error;
  EXPECT_EQ(rb.status, 200) << rb.body << rb.error;
  EXPECT_TRUE(Verifies(ports.begin()->second, "frozen-a"));
  EXPECT_TRUE(Verifies(ports.begin()->second, "frozen-b"));

  for (int i = 0; i < 3; ++i) {
    auto lone = std::chrono::steady_clock::now();
    auto r = op.Request("alone" + std::to_string(i), "?pool=us");
    auto lone_took = std::chrono::steady_clock::now() - lone;
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_LT(lone_took, 1500ms) << "no client waits for an instance: nothing lingers";
  }
}

// Journal writes also linger while many handshakes are in flight
// (--journal-linger-handshakes, here 3), with no client waiting: four frozen
// servers, a free one always left. Two hanging handshakes are too few: a
// client of another pool is answered at once. A third makes its write
// wait out the 3 s window. Thawed, all three are served and held.
TEST(Allocation, JournalLingersWhileManyHandshakesAreInFlight) {
  Operator op("siblings");
  ASSERT_TRUE(op.Start({"--journal-linger-us", "3000000", "--journal-linger-handshakes", "3"}));
  Apply(op, "eu", GameServerPool("eu", 4, 4, "  reservation: {timeoutMs: 30000}\n  health: {periodMs: 30000}\n", "",
                                  /*capacity=*/1000));
  Apply(op, "us", GameServerPool("us", 1, 1, "", "", /*capacity=*/1000));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 4 && Count(op.Pool("us"), "ready") == 1; }));
  auto ports = ControlPorts(op, "eu");
  ASSERT_EQ(ports.size(), 4u);
  std::vector<int> pids;
  for (const auto& inst : op.Instances("eu")) pids.push_back(PidOf(inst));
  ASSERT_EQ(pids.size(), 4u);
  for (int pid : pids) ASSERT_GT(pid, 0);
  auto timed = [&](const std::string& id) {
    auto start = std::chrono::steady_clock::now();
    auto r = op.Request(id, "?pool=us");
    EXPECT_EQ(r.status, 200) << id << ": " << r.body << r.error;
    return std::chrono::steady_clock::now() - start;
  };
  std::vector<http::HttpResult> frozen(3);
  FrozenServers servers(pids);
  for (int i = 0; i < 2; ++i) {
    servers.threads.emplace_back([&, i] { frozen[i] = op.Request("hang" + std::to_string(i), "?pool=eu"); });
  }
  EXPECT_TRUE(InFlight(op, "hang0") && InFlight(op, "hang1"));  // nobody waits for an instance: one is free
  // The reservation of under-two is judged without its own handshake
  // (ended): two others are in flight, fewer than 3.
  auto two = timed("under-two");
  servers.threads.emplace_back([&] { frozen[2] = op.Request("hang2", "?pool=eu"); });
  EXPECT_TRUE(InFlight(op, "hang2"));
  auto three = timed("under-three");
  servers.Thaw();
  EXPECT_LT(two, 1500ms) << "two handshakes in flight are fewer than --journal-linger-handshakes";
  EXPECT_GE(three, 1500ms) << "three handshakes in flight: a write lingers";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(frozen[i].status, 200) << frozen[i].body << frozen[i].error;
    ASSERT_TRUE(ports.contains(frozen[i].body)) << frozen[i].body;
    EXPECT_TRUE(Verifies(ports[frozen[i].body], "hang" + std::to_string(i)));
  }
  EXPECT_LT(timed("alone"), 1500ms) << "nothing in flight: nothing lingers";
}

// A handshake that ends frees its instance for the clients waiting on it.
// The first woken may take an instance of another of its pools instead (a
// selector names two): the freed one still goes to the next in line. Here
// "multi" (pools a-new and b-one) and then "single" (b-one) wait while
// b-one's only server is frozen mid-handshake; a-new gets an instance
// meanwhile (becoming Ready wakes nobody that waits); b-one thaws.
TEST(Allocation, AFreedInstanceGoesToTheNextWaitingClientWhenTheFirstTakesAnotherPool) {
  Operator op("unblock");
  ASSERT_TRUE(op.Start());
  auto labeled = [](std::string yaml, const std::string& name) {
    std::string plain = "metadata: {name: " + name + "}";
    yaml.replace(yaml.find(plain), plain.size(), "metadata: {name: " + name + ", labels: {tier: x}}");
    return yaml;
  };
  const std::string slow = "  reservation: {timeoutMs: 30000}\n  health: {periodMs: 30000}\n";
  Apply(op, "b-one", labeled(GameServerPool("b-one", 1, 1, slow, "", /*capacity=*/1000), "b-one"));
  Apply(op, "a-new", labeled(GameServerPool("a-new", 0, 1, slow, "", /*capacity=*/1000), "a-new"));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("b-one"), "ready") == 1; }));
  auto b_instances = op.Instances("b-one");
  ASSERT_EQ(b_instances.size(), 1u);
  const int pid = PidOf(b_instances.at(0));
  ASSERT_GT(pid, 0);
  http::HttpResult hold, multi, single;
  FrozenServers servers({pid});
  servers.threads.emplace_back([&] { hold = op.Request("hold", "?pool=b-one"); });
  EXPECT_TRUE(InFlight(op, "hold"));
  servers.threads.emplace_back([&] { multi = op.Request("multi", "?selector=tier%3Dx"); });
  EXPECT_TRUE(InFlight(op, "multi"));
  servers.threads.emplace_back([&] { single = op.Request("single", "?pool=b-one"); });
  EXPECT_TRUE(InFlight(op, "single"));
  Apply(op, "a-new", labeled(GameServerPool("a-new", 1, 1, slow, "", /*capacity=*/1000), "a-new"));
  EXPECT_TRUE(Eventually([&] { return Count(op.Pool("a-new"), "ready") == 1; }));
  servers.Thaw();
  EXPECT_EQ(hold.status, 200) << hold.body << hold.error;
  EXPECT_EQ(multi.status, 200) << multi.body << multi.error;
  EXPECT_EQ(single.status, 200) << single.body << single.error << " (left waiting beside a free instance)";
  auto b_ports = ControlPorts(op, "b-one");
  ASSERT_EQ(b_ports.size(), 1u);
  EXPECT_TRUE(Verifies(b_ports.begin()->second, "hold"));
  EXPECT_TRUE(Verifies(b_ports.begin()->second, "single"));
  EXPECT_TRUE(ControlPorts(op, "a-new").contains(multi.body)) << multi.body;
}

TEST(Allocation, EveryAcknowledgedClientSurvivesKill9AndRestart) {
  Operator op("durable");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", GameServerPool("eu", 4, 40));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 4; }));
  std::map<std::string, std::string> got;
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::thread loader([&] {
    for (int i = 0; i < 400 && !stop; ++i) {
      std::string id = "k" + std::to_string(i);
      auto r = op.Request(id);
      // Queued (202): poll as go-matchmaker clients do, a bounded number of times.
      for (int poll = 0; r.status == 202 && poll < 100 && !stop; ++poll) {
        std::this_thread::sleep_for(20ms);
        r = op.Request(id);
      }
      if (r.status == 200) {
        std::lock_guard lock(mu);
        got[id] = r.body;
      }
    }
  });
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return got.size() >= 20;
  }));
  op.Kill9();  // mid-load
  stop = true;
  loader.join();
  ASSERT_TRUE(op.Start());
  ASSERT_GE(got.size(), 20u);
  for (const auto& [id, addr] : got) {
    auto r = op.Request(id);
    EXPECT_EQ(r.status, 200) << id;
    EXPECT_EQ(r.body, addr) << id;
  }
}

// matchmakerd killed while a handshake is in flight: the server (frozen
// until then) reads the request from its socket and grants the slot after
// the daemon died, so no journal record can know of it. The intent, on
// disk before the request went out, brings it back: after the restart the
// daemon counts the client on that server at once, and she gets it again.
TEST(Allocation, AHandshakeInFlightAtKill9IsHeldAfterTheRestart) {
  Operator op("intent");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", GameServerPool("eu", 1, 1, "  reservation: {timeoutMs: 30000}\n  health: {periodMs: 30000}\n", "",
                                  /*capacity=*/10));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  auto ports = ControlPorts(op, "eu");
  ASSERT_EQ(ports.size(), 1u);
  const auto [address, port] = *ports.begin();
  const auto instance = op.Instances("eu").at(0);
  const std::string name(instance.at("name").as_string());
  const int pid = PidOf(instance);
  ASSERT_GT(pid, 0);
  {
    http::HttpResult lost;
    FrozenServers servers({pid});
    servers.threads.emplace_back([&] { lost = op.Request("alice", "?pool=eu"); });
    ASSERT_TRUE(InFlight(op, "alice"));
    op.Kill9();
  }  // thawed: the server takes the request it was sent
  ASSERT_TRUE(Eventually([&] { return Verifies(port, "alice"); })) << "the server granted the slot";
  ASSERT_TRUE(op.Start());
  bool held = false;
  for (const auto& i : op.Instances("eu")) {
    if (i.at("name").as_string() != name) continue;
    for (const auto& c : i.at("reservations").as_array()) held = held || c.as_string() == "alice";
  }
  EXPECT_TRUE(held) << "the recovered intent is a reservation";
  auto again = op.Request("alice", "?pool=eu");
  EXPECT_EQ(again.status, 200) << again.body << again.error;
  EXPECT_EQ(again.body, address);
  EXPECT_TRUE(Verifies(port, "alice"));
}

TEST(Allocation, QueuedUntilAnInstanceIsReadyThenServed) {
  Operator op("queue");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", GameServerPool("eu", 0, 2));
  auto r = op.Request("q1");
  ASSERT_EQ(r.status, 202);
  EXPECT_EQ(r.Header("Retry-After"), "1");
  EXPECT_EQ(op.Request("q1", "", {}, "GET").status, 202);
  ASSERT_TRUE(Eventually([&] { return op.Request("q1").status == 200; }));
  // Long-poll: answered 200 as soon as it is served.
  Apply(op, "us", GameServerPool("us", 0, 1));
  auto lp = op.Request("q2", "?pool=us&wait=20s");
  EXPECT_EQ(lp.status, 200) << lp.body;
  // A queued request can be cancelled (this pool's instance never becomes Ready).
  Apply(op, "none", CommandPool("none", 0, 1, "[sleep, \"60\"]"));
  EXPECT_EQ(op.Request("q3", "?pool=none").status, 202);
  EXPECT_EQ(op.Request("q3", "", {}, "DELETE").status, 200);
  EXPECT_EQ(op.Request("q3", "", {}, "DELETE").status, 404);
}

TEST(Allocation, FullQueueAnswers429) {
  Operator op("qfull");
  ASSERT_TRUE(op.Start({"--queue-limit", "2"}));
  // Instances that never become Ready: every client has to queue.
  Apply(op, "slow", CommandPool("slow", 0, 1, "[sleep, \"60\"]"));
  EXPECT_EQ(op.Request("w1").status, 202);
  EXPECT_EQ(op.Request("w2").status, 202);
  EXPECT_EQ(op.Request("w1").status, 202);  // asking again keeps its place
  auto full = op.Request("w3");
  EXPECT_EQ(full.status, 429) << full.body;
  EXPECT_TRUE(Eventually([&] {
    return op.Call("GET", "/metrics").body.find("matchmaker_pending_requests{pool=\"slow\"} 2") != std::string::npos;
  }));
  EXPECT_EQ(op.Request("w1", "", {}, "DELETE").status, 200);
  EXPECT_EQ(op.Request("w3").status, 202);  // room again
}

TEST(Allocation, HangingInstanceTimesOutAndTheClientIsServedElsewhere) {
  Operator op("hang");
  ASSERT_TRUE(op.Start());
  std::string hang = GameServerPool("a-hang", 1, 1, "  reservation: {timeoutMs: 200, retries: 1, cooldownMs: 10}\n",
                                    ", \"--reservation-delay-ms\", \"30000\"");
  hang.replace(hang.find("metadata: {name: a-hang}"), 24, "metadata: {name: a-hang, labels: {tier: x}}");
  std::string ok = GameServerPool("b-ok", 1);
  ok.replace(ok.find("metadata: {name: b-ok}"), 22, "metadata: {name: b-ok, labels: {tier: x}}");
  Apply(op, "a-hang", hang);
  Apply(op, "b-ok", ok);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("a-hang"), "ready") == 1 && Count(op.Pool("b-ok"), "ready") == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  auto r = op.Request("patient", "?selector=tier%3Dx");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(ControlPorts(op, "b-ok").contains(r.body));
  EXPECT_LT(took, 5s);
  auto metrics = op.Call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("matchmaker_reservations_total{code=\"0\",pool=\"a-hang\"}"), std::string::npos);
}

TEST(Allocation, BusyInstancesSurviveTemplateChangeAndDeletionDrains) {
  Operator op("busy");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", GameServerPool("eu", 2));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }));
  auto held = op.Request("holder");
  ASSERT_EQ(held.status, 200);
  auto ports = ControlPorts(op, "eu");
  std::uint16_t busy_port = ports[held.body];
  std::string v2 = GameServerPool("eu", 2);
  v2.replace(v2.find("\"3\"]"), 4, "\"4\"]");
  Apply(op, "eu", v2);
  ASSERT_TRUE(Eventually([&] {
    auto inst = op.Instances("eu");
    int old_busy = 0, new_ready = 0;
    for (const auto& i : inst) {
      bool busy = i.at("state") == "Allocated";
      old_busy += busy && static_cast<std::uint16_t>(i.at("controlPort").as_int64()) == busy_port;
      new_ready += i.at("state") == "Ready";
    }
    return inst.size() == 3 && old_busy == 1 && new_ready == 2;
  })) << op.Call("GET", std::string(kPools) + "/eu/instances").body;
  EXPECT_TRUE(Verifies(busy_port, "holder"));
  // Deletion drains: idle ones go, the busy one stays until its match ends.
  ASSERT_EQ(op.Call("DELETE", std::string(kPools) + "/eu").status, 200);
  ASSERT_TRUE(Eventually([&] { return op.Instances("eu").size() == 1 && op.ManagedPids().size() == 1; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(Verifies(busy_port, "holder"));
  ASSERT_EQ(http::HttpCall(busy_port, "POST", "/close").status, 200);
  ASSERT_TRUE(Eventually([&] { return op.Pool("eu").is_null() && op.ManagedPids().empty(); }));
}

TEST(Allocation, ForcedDeletionStopsBusyInstancesToo) {
  Operator op("force");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", GameServerPool("eu", 2));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }));
  ASSERT_EQ(op.Request("holder").status, 200);
  auto r = op.Mmctl({"delete", "pool", "eu", "--force"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(Eventually([&] { return op.Pool("eu").is_null() && op.ManagedPids().empty(); }));
}

// A signed token: alg "HS256" (key = secret), "ES256" or "RS256" (key =
// private PEM) or "none"; exp and nbf relative to now, 0 nbf = none.
std::string MakeToken(const std::string& alg, const std::string& key, const std::string& sub, long exp_in,
                      long nbf_in = 0) {
  return SignJwt(alg, key, {.sub = sub, .exp_in = exp_in, .nbf_in = nbf_in});
}

TEST(Allocation, JwtAcceptsValidTokensAndRejectsTheRest) {
  Operator op("jwt");
  const std::string secret = "0123456789abcdef0123456789abcdef";
  std::string secret_file = op.data_dir() + "/jwt.secret";
  std::ofstream(secret_file) << secret << "\n";
  ASSERT_TRUE(op.Start({"--auth", "jwt", "--jwt-secret-file", secret_file}));
  Apply(op, "eu", GameServerPool("eu", 1));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  auto bearer = [](const std::string& t) { return "Bearer " + t; };
  auto ok = op.Request(bearer(MakeToken("HS256", secret, "alice", 60)));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_TRUE(Verifies(ControlPorts(op, "eu")[ok.body], "alice"));
  auto expired = op.Request(bearer(MakeToken("HS256", secret, "bob", -100)));
  EXPECT_EQ(expired.status, 401);  // expired, past the 30 s leeway
  EXPECT_EQ(expired.Header("WWW-Authenticate"),
            "Bearer realm=\"matchmaker\", error=\"invalid_token\", error_description=\"token expired\"");
  EXPECT_EQ(op.Request(bearer(MakeToken("HS256", secret, "bob", -10))).status, 200);        // within the leeway
  EXPECT_EQ(op.Request(bearer(MakeToken("HS256", secret, "bob", 600, 300))).status, 401);   // not yet
  EXPECT_EQ(op.Request("bearer " + MakeToken("HS256", secret, "carol", 60)).status, 200);  // any case
  EXPECT_EQ(op.Request(bearer(MakeToken("HS256", std::string(32, 'z'), "bob", 60))).status, 401);  // wrong key
  EXPECT_EQ(op.Request(bearer(MakeToken("none", "", "bob", 60))).status, 401);              // alg none
  EXPECT_EQ(op.Request(bearer(MakeToken("HS256", secret, "", 60))).status, 401);            // no sub
  EXPECT_EQ(op.Request("alice").status, 401);                                               // not a bearer
  EXPECT_EQ(op.Request(bearer("garbage.token.here")).status, 401);
}

// An EC P-256 key pair as PEM (private, public), made with OpenSSL's CLI.
std::pair<std::string, std::string> EcKeyPair(const std::string& dir) {
  std::string priv = dir + "/ec.key", pub = dir + "/ec.pub";
  RunCommand({"/usr/bin/openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", priv});
  RunCommand({"/usr/bin/openssl", "ec", "-in", priv, "-pubout", "-out", pub});
  auto read = [](const std::string& f) {
    std::ifstream in(f);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  return {read(priv), read(pub)};
}

TEST(Allocation, JwtWithAnEcPublicKeyPinsES256) {
  Operator op("jwtes");
  auto [priv, pub] = EcKeyPair(op.data_dir());
  ASSERT_NE(pub.find("BEGIN PUBLIC KEY"), std::string::npos);
  std::ofstream(op.data_dir() + "/jwt.pub") << pub;
  ASSERT_TRUE(op.Start({"--auth", "jwt", "--jwt-public-key-file", op.data_dir() + "/jwt.pub"}));
  Apply(op, "eu", GameServerPool("eu", 1));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  auto ok = op.Request("Bearer " + MakeToken("ES256", priv, "carol", 60));
  EXPECT_EQ(ok.status, 200) << ok.body;
  // Algorithm confusion: an HS256 token keyed with the public key is refused.
  EXPECT_EQ(op.Request("Bearer " + MakeToken("HS256", pub, "mallory", 60)).status, 401);
  std::filesystem::create_directories(op.data_dir() + "/other");
  auto other = EcKeyPair(op.data_dir() + "/other");
  EXPECT_EQ(op.Request("Bearer " + MakeToken("ES256", other.first, "mallory", 60)).status, 401);
}

TEST(Allocation, JwtWithAnRsaPublicKeyPinsRS256) {
  Operator op("jwtrs");
  std::string priv_file = op.data_dir() + "/rsa.key", pub_file = op.data_dir() + "/rsa.pub";
  RunCommand({"/usr/bin/openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", priv_file});
  RunCommand({"/usr/bin/openssl", "pkey", "-in", priv_file, "-pubout", "-out", pub_file});
  std::ifstream in(priv_file);
  std::string priv((std::istreambuf_iterator<char>(in)), {});
  ASSERT_NE(priv.find("PRIVATE KEY"), std::string::npos);
  ASSERT_TRUE(op.Start({"--auth", "jwt", "--jwt-public-key-file", pub_file}));
  Apply(op, "eu", GameServerPool("eu", 1));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  EXPECT_EQ(op.Request("Bearer " + MakeToken("RS256", priv, "dave", 60)).status, 200);
  EXPECT_EQ(op.Request("Bearer " + MakeToken("RS256", priv, "dave", -100)).status, 401);
  EXPECT_EQ(op.Request("Bearer " + MakeToken("none", "", "dave", 60)).status, 401);
}

TEST(Allocation, QueuedClientsThatDoNotComeBackExpire) {
  Operator op("qttl");
  ASSERT_TRUE(op.Start({"--queue-ttl", "1"}));
  Apply(op, "slow", CommandPool("slow", 0, 1, "[sleep, \"60\"]"));
  EXPECT_EQ(op.Request("gone").status, 202);
  EXPECT_EQ(op.Request("gone", "", {}, "GET").status, 202);
  ASSERT_TRUE(Eventually([&] { return op.Request("gone", "", {}, "GET").status == 404; }, std::chrono::seconds(10)));
  EXPECT_NE(op.Call("GET", "/metrics").body.find("matchmaker_pending_requests{pool=\"slow\"} 0"), std::string::npos);
}

TEST(Allocation, MetricsCountAllocations) {
  Operator op("allocmetrics");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", GameServerPool("eu", 1));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  ASSERT_EQ(op.Request("m1").status, 200);
  ASSERT_EQ(op.Request("m2").status, 200);
  auto m = op.Call("GET", "/metrics").body;
  EXPECT_NE(m.find("matchmaker_allocations_total{pool=\"eu\",result=\"allocated\"} 2"), std::string::npos) << m;
  EXPECT_NE(m.find("matchmaker_allocation_duration_seconds_count{pool=\"eu\"} 2"), std::string::npos);
  EXPECT_NE(m.find("matchmaker_reservations_total{code=\"200\",pool=\"eu\"} 2"), std::string::npos);
  EXPECT_NE(m.find("matchmaker_pending_requests"), std::string::npos);
}

}  // namespace
}  // namespace mm::testing
