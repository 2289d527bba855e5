// End to end on a real three-node swarm: three Docker engines on this machine,
// each in a network namespace of its own (hack/swarm-nodes.sh), node 1 the
// manager. matchmakerd --backend swarm runs here and talks to node 1's
// socket. Every test process builds the swarm afresh and removes it after.
// Traffic goes to 127.0.0.1 and to the nodes' addresses (10.213.0.1-3), which
// exist only inside the namespaces and on their bridge. Where namespaces
// cannot be made the tests are skipped with a warning; under CI=true they fail.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "operator/http/blocking_client.h"
#include "tests/support/engine.h"
#include "tests/support/operator.h"

namespace mm::testing {
namespace {
namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";
constexpr int kNodes = 3;

RunResult Nodes(std::vector<std::string> args) {
  args.insert(args.begin(), SourcePath("hack/swarm-nodes.sh"));
  return RunCommand(args, 180s);
}
std::string Name(int node) { return "mm-node-" + std::to_string(node); }
std::string Sock(int node) { return "unix:///run/mm-nodes/" + Name(node) + "/docker.sock"; }
std::string Addr(int node) { return "10.213.0." + std::to_string(node); }
// The node an instance runs on, from the address matchmakerd probes it at.
int NodeOf(const json::value& instance) {
  std::string h(instance.at("controlHost").as_string());
  for (int n = 1; n <= kNodes; ++n) {
    if (h == Addr(n)) return n;
  }
  return 0;
}
std::string Str(const json::value& v, const char* key) { return std::string(v.at(key).as_string()); }

// A pool of mm-gameservers that take one client each: a client fills its
// instance, so busy and idle are easy to tell apart.
std::string Pool(const std::string& name, int warm, const std::string& extra_template = "") {
  return "apiVersion: matchmaker.dev/v1alpha1\nkind: ServerPool\nmetadata: {name: " + name + "}\nspec:\n  warm: " +
         std::to_string(warm) +
         "\n  maxInstances: 12\n  template:\n    image: matchmaker/gameserver:dev\n"
         "    args: [\"--capacity\", \"1\"]\n    ports: [{name: game, containerPort: 7777, protocol: tcp}]\n"
         "    controlPort: 3000\n" + extra_template;
}

// The game server's own view: does it hold `client`'s reservation?
int GameServerSays(const json::value& instance, const std::string& client) {
  http::HttpConnection c(Str(instance, "controlHost"), static_cast<std::uint16_t>(instance.at("controlPort").as_int64()));
  return c.Call("GET", "/reservation/" + client, "", {}, 3s).status;
}

class NodesOperator : public Operator {
 public:
  explicit NodesOperator(const std::string& name) : Operator(name) {
    owner_ = "mn" + std::to_string(::getpid()) + name;
    std::ofstream(data_dir() + "/owner-id") << owner_ << "\n";
  }
  bool Start() { return Operator::Start({"--backend", "swarm"}); }
  // Our running containers on one node, as that node's engine lists them.
  std::set<std::string> ContainersOn(int node) {
    auto r = Docker({"-H", Sock(node), "ps", "-q", "--filter", "label=dev.matchmaker.owner=" + owner_});
    auto l = Lines(r.out);
    return {l.begin(), l.end()};
  }
  std::map<int, int> ContainersPerNode(const std::string& pool) {
    std::map<int, int> out;
    for (int n = 1; n <= kNodes; ++n) {
      auto r = Docker({"-H", Sock(n), "ps", "-q", "--filter", "label=dev.matchmaker.owner=" + owner_, "--filter",
                       "label=dev.matchmaker.pool=" + pool});
      out[n] = static_cast<int>(Lines(r.out).size());
    }
    return out;
  }
  // Services of ours, as the manager lists them.
  std::size_t Services() {
    return Lines(Docker({"service", "ls", "-q", "--filter", "label=dev.matchmaker.owner=" + owner_}).out).size();
  }
  std::string Events(const std::string& pool) { return Call("GET", std::string(kPools) + "/" + pool + "/events").body; }
  std::string Describe(const std::string& pool) { return Mmctl({"describe", "pool", pool}).out; }

  // `ready` idle instances, nothing starting or ending, and the pool Ready.
  bool Settled(const std::string& pool, std::int64_t ready) {
    auto p = Pool(pool);
    return !p.is_null() && Count(p, "ready") == ready && Count(p, "starting") == 0 &&
           Count(p, "terminating") == 0 && ConditionStatus(p, "Ready") == "True";
  }
  // Allocates `client` from `pool`; the answer as JSON (null on failure).
  json::value Allocate(const std::string& client, const std::string& pool) {
    auto r = Request(client, "?pool=" + pool, {{"Accept", "application/json"}});
    return r.status == 200 ? json::parse(r.body) : json::value(nullptr);
  }
  json::value InstanceNamed(const std::string& pool, const std::string& name) {
    for (auto& i : Instances(pool)) {
      if (Str(i, "name") == name) return i;
    }
    return nullptr;
  }

 private:
  std::string owner_;
};

class MultiNode : public ::testing::Test {
 protected:
  // A fresh swarm for every test (ctest runs each in a process of its own
  // anyway): up and down take about 4 s each.
  void SetUp() override {
    saved_host_ = std::getenv("DOCKER_HOST") ? std::getenv("DOCKER_HOST") : "";
    std::string why;
    if (RunCommand({Which("unshare"), "--net", "true"}, 10s).exit_code != 0) {
      why = "network namespaces cannot be made here (unshare --net failed)";
      if (std::getenv("CI") && std::string(std::getenv("CI")) == "true") FAIL() << why;
      GTEST_SKIP() << "WARNING: multinode tier skipped: " << why;
    }
    auto up = Nodes({"up", std::to_string(kNodes)});  // loads the images from this machine's engine
    made_ = true;
    ASSERT_EQ(up.exit_code, 0) << "hack/swarm-nodes.sh up failed: " << up.err;
    ::setenv("DOCKER_HOST", Sock(1).c_str(), 1);  // matchmakerd and the docker CLI: the manager
    ASSERT_EQ(Docker({"image", "inspect", "matchmaker/gameserver:dev"}).exit_code, 0)
        << "matchmaker/gameserver:dev is not on the nodes: run hack/build-images.sh";
  }
  void TearDown() override {
    if (saved_host_.empty()) {
      ::unsetenv("DOCKER_HOST");
    } else {
      ::setenv("DOCKER_HOST", saved_host_.c_str(), 1);
    }
    if (made_) {
      EXPECT_EQ(Nodes({"down"}).exit_code, 0);
    }
  }
  // Starts `op` with a pool eu of 3 idle instances, one on every node; puts
  // a client (`prefix`1..3) on each, and waits for 3 idle ones again.
  // `held`: client -> the instance it holds.
  static void OneBusyPerNode(NodesOperator& op, const std::string& prefix, std::map<std::string, json::value>& held) {
    ASSERT_TRUE(op.Start());
    ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", Pool("eu", 3)).status, 201);
    ASSERT_TRUE(Eventually([&] { return op.Settled("eu", 3); }, 90s)) << op.Describe("eu");
    EXPECT_EQ(op.ContainersPerNode("eu"), (std::map<int, int>{{1, 1}, {2, 1}, {3, 1}}));
    for (int n = 1; n <= kNodes; ++n) {
      std::string client = prefix + std::to_string(n);
      auto a = op.Allocate(client, "eu");
      ASSERT_FALSE(a.is_null()) << client;
      held[client] = op.InstanceNamed("eu", Str(a, "instance"));
    }
    ASSERT_TRUE(Eventually([&] { return op.Settled("eu", 3); }, 90s)) << op.Describe("eu");
  }
  // Waits for the manager to see `node` in `state` ("down", "ready").
  static bool NodeState(int node, const std::string& state, std::chrono::milliseconds timeout) {
    return Eventually([&] { return Trim(Docker({"node", "inspect", Name(node), "--format", "{{.Status.State}}"}).out) == state; },
                      timeout);
  }
  std::string saved_host_;
  bool made_ = false;
};

TEST_F(MultiNode, InstancesSpreadLabelsPinAPoolAndClientsGetTheirNodesAddress) {
  ASSERT_EQ(Docker({"node", "update", "--label-add", "mm-zone=b", Name(2)}).exit_code, 0);
  ASSERT_EQ(Docker({"node", "update", "--label-add", "dev.matchmaker.public-address=192.0.2.33", Name(3)}).exit_code, 0);
  NodesOperator op("spread");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/spread", Pool("spread", 6)).status, 201);
  // Swarm spreads by the tasks a node runs, whichever service: the pinned
  // pool comes second so that the first one's spread is exact.
  ASSERT_TRUE(Eventually([&] { return op.Settled("spread", 6); }, 90s)) << op.Describe("spread");
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/pinned",
                    Pool("pinned", 2, "    placement: {constraints: [\"node.labels.mm-zone==b\"]}\n"))
                .status,
            201);
  ASSERT_TRUE(Eventually([&] { return op.Settled("spread", 6) && op.Settled("pinned", 2); }, 90s))
      << op.Describe("spread") << op.Describe("pinned");

  // Swarm's spread: two of the six on every node; the pinned pool on node 2 only.
  EXPECT_EQ(op.ContainersPerNode("spread"), (std::map<int, int>{{1, 2}, {2, 2}, {3, 2}}));
  EXPECT_EQ(op.ContainersPerNode("pinned"), (std::map<int, int>{{1, 0}, {2, 2}, {3, 0}}));

  // Every client gets its node's address (node 3's public-address label), and
  // the game server on that node holds the reservation.
  std::set<int> nodes_seen;
  for (int c = 0; c < 6; ++c) {
    std::string client = "player" + std::to_string(c);
    auto a = op.Allocate(client, "spread");
    ASSERT_FALSE(a.is_null()) << client;
    auto inst = op.InstanceNamed("spread", Str(a, "instance"));
    ASSERT_FALSE(inst.is_null());
    int node = NodeOf(inst);
    ASSERT_NE(node, 0) << json::serialize(inst);
    nodes_seen.insert(node);
    std::string host = node == 3 ? "192.0.2.33" : Addr(node);
    EXPECT_EQ(Str(a, "address"), host + ":" + std::to_string(a.at("ports").at("game").as_int64()));
    EXPECT_EQ(GameServerSays(inst, client), 200) << client << " on " << Name(node);
  }
  EXPECT_EQ(nodes_seen, (std::set<int>{1, 2, 3}));

  auto alice = op.Allocate("alice", "pinned");
  ASSERT_FALSE(alice.is_null());
  EXPECT_EQ(Str(alice, "address").rfind(Addr(2) + ":", 0), 0u) << Str(alice, "address");
  std::string alice_at = Str(alice, "instance");
  auto alice_containers = op.ContainersOn(2);

  // Node labels change under busy instances: the label the pinned pool's
  // constraint names goes away (swarm's constraint enforcer ends tasks whose
  // node no longer meets their service's constraints), node 3's public
  // address changes. Nothing busy moves or ends.
  ASSERT_EQ(Docker({"node", "update", "--label-rm", "mm-zone", Name(2)}).exit_code, 0);
  ASSERT_EQ(Docker({"node", "update", "--label-add", "dev.matchmaker.public-address=192.0.2.34", Name(3)}).exit_code, 0);
  // The pinned pool wants a new warm instance, which no node can take now.
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("pinned"), "starting") == 1; }, 20s)) << op.Describe("pinned");
  std::this_thread::sleep_for(8s);  // the enforcer acts within a few seconds (seen: under 3 s)
  auto still = op.InstanceNamed("pinned", alice_at);
  ASSERT_FALSE(still.is_null()) << op.Describe("pinned");
  EXPECT_EQ(still.at("reservations").as_array(), json::array{json::value("alice")});
  EXPECT_EQ(GameServerSays(still, "alice"), 200);
  auto now_on_2 = op.ContainersOn(2);
  for (const auto& c : alice_containers) EXPECT_TRUE(now_on_2.contains(c)) << "container " << c << " ended";
  for (int c = 0; c < 6; ++c) {
    auto mine = op.Instances("spread");
    std::string client = "player" + std::to_string(c);
    EXPECT_TRUE(std::any_of(mine.begin(), mine.end(), [&](const json::value& i) {
      const auto& r = i.at("reservations").as_array();
      return std::find(r.begin(), r.end(), json::value(client)) != r.end();
    })) << client;
  }
  auto events = op.Events("pinned");
  EXPECT_EQ(events.find("BusyInstanceLost"), std::string::npos) << events;
  // The warm instance that replaces alice's is created as the label goes:
  // swarm may reject it ("assigned node no longer meets constraints", a
  // CreateFailed retried later). Alice's instance is never ended for it.
  const json::value listed = json::parse(events);  // kept: the loop walks into it
  for (const auto& e : listed.at("items").as_array()) {
    std::string message(e.at("message").as_string());
    EXPECT_FALSE(message.find(alice_at) != std::string::npos &&
                 message.find("no longer meets constraints") != std::string::npos)
        << message;
  }
}

TEST_F(MultiNode, AStoppedWorkerIsReplacedOnTheOthersAndCleanWhenItReturns) {
  NodesOperator op("stop");
  std::map<std::string, json::value> held;  // client -> instance
  OneBusyPerNode(op, "c", held);
  if (HasFatalFailure()) return;
  std::string lost_client;
  for (auto& [client, inst] : held) {
    if (NodeOf(inst) == 3) lost_client = client;
  }
  ASSERT_FALSE(lost_client.empty()) << "no client on " << Name(3);

  auto t0 = Clock::now();
  ASSERT_EQ(Nodes({"stop", Name(3)}).exit_code, 0);
  ASSERT_TRUE(NodeState(3, "down", 60s));
  auto down_after = Clock::now() - t0;
  // Replaced on the surviving nodes within the swarm's own node-down time
  // plus 15 s of slack (a poll, a create, a readiness probe: about 1 s seen).
  ASSERT_TRUE(Eventually([&] {
    if (!op.Settled("eu", 3)) return false;
    auto inst = op.Instances("eu");
    return std::none_of(inst.begin(), inst.end(), [](const json::value& i) { return NodeOf(i) == 3; });
  }, 15s)) << op.Describe("eu");
  auto ready_after = Clock::now() - t0;
  std::printf("node %s: down after %.1f s, pool Ready without it after %.1f s\n", Name(3).c_str(),
              std::chrono::duration<double>(down_after).count(), std::chrono::duration<double>(ready_after).count());
  auto events = op.Events("eu");
  EXPECT_NE(events.find("BusyInstanceLost"), std::string::npos) << events;
  // Nothing of ours is left assigned to the dead node, and the survivors'
  // players still hold their slots on their game servers.
  auto services_on_3 = Lines(Docker({"node", "ps", Name(3), "--filter", "desired-state=running", "-q"}).out);
  EXPECT_TRUE(services_on_3.empty()) << Docker({"node", "ps", Name(3)}).out;
  for (auto& [client, inst] : held) {
    if (client == lost_client) continue;
    EXPECT_EQ(GameServerSays(inst, client), 200) << client;
  }
  auto listed = op.Instances("eu");
  EXPECT_EQ(listed.size(), 5u) << op.Describe("eu");  // 3 idle + the 2 busy survivors
  EXPECT_EQ(op.Services(), listed.size());

  // The engine comes back: it rejoins, runs nothing of ours, nothing doubles.
  ASSERT_EQ(Nodes({"start", Name(3)}).exit_code, 0);
  ASSERT_TRUE(NodeState(3, "ready", 60s));
  ASSERT_TRUE(Eventually([&] { return op.ContainersOn(3).empty(); }, 30s));
  std::this_thread::sleep_for(3s);  // a poll or two: anything created now would show
  EXPECT_TRUE(op.Settled("eu", 3)) << op.Describe("eu");
  EXPECT_EQ(op.Instances("eu").size(), 5u);
  EXPECT_EQ(op.Services(), 5u);
  std::size_t containers = 0;
  for (int n = 1; n <= kNodes; ++n) containers += op.ContainersOn(n).size();
  EXPECT_EQ(containers, 5u);
}

TEST_F(MultiNode, ADrainedNodeIsEmptiedWithTheReasonInTheEvents) {
  NodesOperator op("drain");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", Pool("eu", 6)).status, 201);
  ASSERT_TRUE(Eventually([&] { return op.Settled("eu", 6); }, 90s)) << op.Describe("eu");
  ASSERT_EQ(op.ContainersPerNode("eu")[2], 2);
  // A player on node 2 (instances take one client each).
  std::string on_2;
  for (int c = 0; c < 6 && on_2.empty(); ++c) {
    std::string client = "d" + std::to_string(c);
    auto a = op.Allocate(client, "eu");
    ASSERT_FALSE(a.is_null());
    if (NodeOf(op.InstanceNamed("eu", Str(a, "instance"))) == 2) on_2 = client;
  }
  ASSERT_FALSE(on_2.empty());
  ASSERT_TRUE(Eventually([&] { return op.Settled("eu", 6); }, 90s)) << op.Describe("eu");

  ASSERT_EQ(Docker({"node", "update", "--availability", "drain", Name(2)}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] {
    if (!op.Settled("eu", 6)) return false;
    auto inst = op.Instances("eu");
    return std::none_of(inst.begin(), inst.end(), [](const json::value& i) { return NodeOf(i) == 2; });
  }, 60s)) << op.Describe("eu");
  EXPECT_EQ(op.ContainersPerNode("eu")[2], 0);
  auto events = op.Events("eu");
  EXPECT_NE(events.find("was drained"), std::string::npos) << events;
  EXPECT_NE(events.find("BusyInstanceLost"), std::string::npos) << events;
  EXPECT_EQ(op.Services(), op.Instances("eu").size());
  ASSERT_EQ(Docker({"node", "update", "--availability", "active", Name(2)}).exit_code, 0);
}

TEST_F(MultiNode, Kill9OfMatchmakerdWhileAnEngineDiesAdoptsAcrossNodes) {
  NodesOperator op("kill9");
  std::map<std::string, json::value> held;
  OneBusyPerNode(op, "k", held);
  if (HasFatalFailure()) return;
  auto on_3_before = op.ContainersOn(3);
  ASSERT_EQ(on_3_before.size(), 2u);

  // matchmakerd dies, then node 3's engine dies (its containers run on).
  op.Kill9();
  ASSERT_EQ(Nodes({"kill", Name(3)}).exit_code, 0);
  ASSERT_TRUE(op.Start());
  ASSERT_TRUE(NodeState(3, "down", 60s));
  ASSERT_TRUE(Eventually([&] {
    if (!op.Settled("eu", 3)) return false;
    auto inst = op.Instances("eu");
    return std::none_of(inst.begin(), inst.end(), [](const json::value& i) { return NodeOf(i) == 3; });
  }, 60s)) << op.Describe("eu");
  // The two players on nodes 1 and 2 kept their slots, in the daemon's
  // records and on their game servers; the one on node 3 is reported lost.
  int kept = 0;
  for (auto& [client, inst] : held) {
    if (NodeOf(inst) == 3) continue;
    auto now = op.InstanceNamed("eu", Str(inst, "name"));
    ASSERT_FALSE(now.is_null()) << client;
    EXPECT_EQ(now.at("reservations").as_array(), json::array{json::value(client)});
    EXPECT_EQ(GameServerSays(now, client), 200) << client;
    ++kept;
  }
  EXPECT_EQ(kept, 2);
  EXPECT_NE(op.Events("eu").find("BusyInstanceLost"), std::string::npos) << op.Events("eu");
  EXPECT_EQ(op.Instances("eu").size(), 5u) << op.Describe("eu");
  EXPECT_EQ(op.Services(), 5u);

  // The engine returns with the old containers still running: the swarm
  // removes them (their services are gone); nothing is doubled.
  ASSERT_EQ(Nodes({"start", Name(3)}).exit_code, 0);
  ASSERT_TRUE(NodeState(3, "ready", 60s));
  ASSERT_TRUE(Eventually([&] { return op.ContainersOn(3).empty(); }, 60s))
      << Docker({"-H", Sock(3), "ps", "-a"}).out;
  std::this_thread::sleep_for(3s);
  EXPECT_TRUE(op.Settled("eu", 3)) << op.Describe("eu");
  EXPECT_EQ(op.Instances("eu").size(), 5u);
  EXPECT_EQ(op.Services(), 5u);
}

}  // namespace
}  // namespace mm::testing
