// End to end on a real single-node swarm: matchmakerd --backend swarm with
// the locally built matchmaker/gameserver:dev image. The suite initialises
// the swarm (advertise 127.0.0.1) when the engine is not in one, and leaves
// it again afterwards; a drained node is made active again. Tests talk to
// 127.0.0.1 only. One at a time (RESOURCE_LOCK dockerd).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <set>
#include <thread>

#include "tests/support/engine.h"
#include "tests/support/operator.h"
#include "tests/support/registry.h"

namespace mm::testing {
namespace {
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kImage[] = "matchmaker/gameserver:dev";
constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

std::string ServicePool(const std::string& name, int warm, const std::string& extra_template = "") {
  return "apiVersion: matchmaker.dev/v1alpha1\nkind: ServerPool\nmetadata: {name: " + name + "}\nspec:\n  warm: " +
         std::to_string(warm) + "\n  maxInstances: 10\n  template:\n    image: " + kImage +
         "\n    args: [\"--capacity\", \"3\"]\n    ports: [{name: game, containerPort: 7777, protocol: tcp}]\n"
         "    controlPort: 3000\n" + extra_template;
}

class SwarmOperator : public Operator {
 public:
  explicit SwarmOperator(const std::string& name) : Operator(name) {
    owner_ = "e2e" + std::to_string(::getpid()) + name;
    std::ofstream(data_dir() + "/owner-id") << owner_ << "\n";
  }
  ~SwarmOperator() {
    if (process()) Kill9();
    auto ids = Services();
    if (!ids.empty()) {
      std::vector<std::string> args = {"service", "rm"};
      args.insert(args.end(), ids.begin(), ids.end());
      Docker(args);
    }
  }
  bool Start(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--backend", "swarm"});
    return Operator::Start(extra);
  }
  const std::string& owner() const { return owner_; }
  std::set<std::string> Services() {
    auto r = Docker({"service", "ls", "-q", "--filter", "label=dev.matchmaker.owner=" + owner_});
    std::set<std::string> out;
    for (auto& l : Lines(r.out)) out.insert(l);
    return out;
  }

 private:
  std::string owner_;
};

// Service ids of the instances (service ls prints 12-character prefixes).
std::set<std::string> ShortIds(const std::vector<json::value>& instances) {
  std::set<std::string> out;
  for (const auto& i : instances) out.insert(std::string(i.at("backendId").as_string()).substr(0, 12));
  return out;
}

bool Settled(SwarmOperator& op, const std::string& pool, std::int64_t ready) {
  auto p = op.Pool(pool);
  if (Count(p, "ready") != ready || Count(p, "starting") != 0 || Count(p, "terminating") != 0) return false;
  auto inst = op.Instances(pool);
  return inst.size() == static_cast<std::size_t>(ready) && ShortIds(inst) == op.Services();
}

class SwarmE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { initialized_ = InitSwarmIfInactive(&init_error_); }
  static void TearDownTestSuite() {
    if (initialized_) Docker({"swarm", "leave", "--force"});
  }
  void SetUp() override {
    ASSERT_EQ(SwarmManagerState(), "active true") << "a swarm manager is needed: " << init_error_;
    ASSERT_EQ(Docker({"image", "inspect", kImage}).exit_code, 0) << kImage << " is missing: run hack/build-images.sh";
  }
  static inline bool initialized_ = false;
  static inline std::string init_error_;
};

TEST_F(SwarmE2E, WarmServicesServeAllocationsOnTheirGamePort) {
  SwarmOperator op("warm");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ServicePool("eu", 3)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 3); }, 60s)) << op.Mmctl({"describe", "pool", "eu"}).out;
  for (const auto& i : op.Instances("eu")) {
    auto r = Docker({"service", "inspect", "--format",
                     "{{.Spec.Mode.Replicated.Replicas}} {{.Spec.TaskTemplate.RestartPolicy.Condition}} "
                     "{{index .Spec.Labels \"dev.matchmaker.instance\"}}",
                     std::string(i.at("backendId").as_string())});
    EXPECT_EQ(r.out, "1 none " + std::string(i.at("name").as_string()) + "\n");
  }
  auto a = op.Request("alice", "", {{"Accept", "application/json"}});
  ASSERT_EQ(a.status, 200) << a.body;
  auto doc = json::parse(a.body);
  int game = static_cast<int>(doc.at("ports").at("game").as_int64());
  EXPECT_EQ(doc.at("address").as_string(), "127.0.0.1:" + std::to_string(game)) << "the node's address";
  EXPECT_EQ(Echo(game), "ping");
  for (const auto& i : op.Instances("eu")) {
    if (i.at("name").as_string() != doc.at("instance").as_string()) continue;
    auto control = static_cast<std::uint16_t>(i.at("controlPort").as_int64());
    EXPECT_EQ(http::HttpCall(control, "GET", "/reservation/alice").status, 200);
  }
}

TEST_F(SwarmE2E, AKilledTaskIsReplacedAndItsServiceRemoved) {
  SwarmOperator op("kill");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ServicePool("eu", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2); }, 60s));
  auto victim = op.Instances("eu").front();
  std::string name(victim.at("name").as_string());
  auto containers = Lines(Docker({"ps", "-q", "--filter", "label=dev.matchmaker.instance=" + name}).out);
  ASSERT_EQ(containers.size(), 1u);
  ASSERT_EQ(Docker({"kill", containers[0]}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] {
    auto inst = op.Instances("eu");
    bool gone = std::none_of(inst.begin(), inst.end(), [&](const json::value& i) { return i.at("name").as_string() == name; });
    return gone && Settled(op, "eu", 2);
  }, 60s)) << op.Mmctl({"describe", "pool", "eu"}).out;
  auto events = op.Call("GET", std::string(kPools) + "/eu/events").body;
  EXPECT_NE(events.find("task failed"), std::string::npos) << events;
}

TEST_F(SwarmE2E, AConstraintNoNodeSatisfiesIsReportedWithBackoff) {
  SwarmOperator op("constraint");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu",
                    ServicePool("eu", 1, "    placement: {constraints: [\"node.labels.mm-e2e-none==true\"]}\n"))
                .status,
            201);
  std::size_t most = 0;
  ASSERT_TRUE(Eventually([&] {
    most = std::max(most, op.Services().size());
    return ConditionStatus(op.Pool("eu"), "Degraded") == "True";
  }, 60s)) << op.Mmctl({"describe", "pool", "eu"}).out;
  auto pool = op.Call("GET", std::string(kPools) + "/eu").body;
  EXPECT_NE(pool.find("no suitable node (scheduling constraints not satisfied"), std::string::npos) << pool;
  EXPECT_LE(most, 1u) << "one attempt at a time, with backoff between them";
}

TEST_F(SwarmE2E, Kill9ThenRestartAdoptsEveryServiceAndCreatesNone) {
  SwarmOperator op("adopt");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ServicePool("eu", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2); }, 60s));
  ASSERT_EQ(op.Request("alice").status, 200);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2 && Count(op.Pool("eu"), "starting") == 0; }, 60s));
  auto services = op.Services();
  ASSERT_EQ(services.size(), 3u);
  auto alice = op.Request("alice").body;
  op.Kill9();
  ASSERT_TRUE(op.Start());
  ASSERT_TRUE(Eventually([&] { return op.Call("GET", "/readyz").status == 200; }, 20s));
  std::this_thread::sleep_for(2s);  // several polls and reconcile passes
  EXPECT_EQ(op.Services(), services) << "no service created or lost";
  EXPECT_EQ(ShortIds(op.Instances("eu")), services);
  EXPECT_EQ(op.Request("alice").body, alice);
}

// kill -9 while services are being created and placed: their records are
// durable but carry no placement. After the restart each service is found
// by its dev.matchmaker.instance label, placed from its task and adopted:
// none is removed and replaced.
TEST_F(SwarmE2E, CreatesInFlightAtKill9AreAdoptedNotReplaced) {
  SwarmOperator op("inflight");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ServicePool("eu", 2)).status, 201);
  bool caught = Eventually(
      [&] {
        for (const auto& i : op.Instances("eu")) {
          if (i.at("controlPort").as_int64() != 0) continue;
          auto made = Docker({"service", "ls", "-q", "--filter", "label=dev.matchmaker.owner=" + op.owner(),
                              "--filter", "label=dev.matchmaker.instance=" + std::string(i.at("name").as_string())});
          if (!made.out.empty()) return true;
        }
        return false;
      },
      20s);
  op.Kill9();
  ASSERT_TRUE(caught) << "no create was caught in flight (a service made, its placement not recorded)";
  std::this_thread::sleep_for(1s);
  auto before = op.Services();
  ASSERT_FALSE(before.empty());
  ASSERT_TRUE(op.Start());
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2); }, 60s)) << op.Mmctl({"describe", "pool", "eu"}).out;
  auto after = op.Services();
  for (const auto& id : before) EXPECT_TRUE(after.contains(id)) << id << " was removed, not adopted";
  auto r = op.Request("bob");
  ASSERT_EQ(r.status, 200) << r.body;
}

TEST_F(SwarmE2E, ADrainedNodeEndsItsInstancesLoudlyAndTheyReturnWithIt) {
  auto node = Trim(Docker({"info", "--format", "{{.Swarm.NodeID}}"}).out);
  SwarmOperator op("drain");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ServicePool("eu", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2); }, 60s));
  ASSERT_EQ(op.Request("alice").status, 200);
  auto before = op.Instances("eu");
  struct Undrain {
    std::string node;
    ~Undrain() { Docker({"node", "update", "--availability", "active", node}); }
  } undrain{node};
  ASSERT_EQ(Docker({"node", "update", "--availability", "drain", node}).exit_code, 0);
  // Every instance ended; the busy one is reported as lost with its client.
  ASSERT_TRUE(Eventually([&] {
    auto now = op.Instances("eu");
    for (const auto& b : before) {
      for (const auto& n : now) {
        if (n.at("name") == b.at("name")) return false;
      }
    }
    return true;
  }, 60s)) << op.Mmctl({"describe", "pool", "eu"}).out;
  auto events = op.Call("GET", std::string(kPools) + "/eu/events").body;
  EXPECT_NE(events.find("BusyInstanceLost"), std::string::npos) << events;
  EXPECT_NE(events.find("was drained"), std::string::npos) << events;
  EXPECT_EQ(Count(op.Pool("eu"), "ready"), 0) << "nowhere to run while the only node is drained";
  ASSERT_EQ(Docker({"node", "update", "--availability", "active", node}).exit_code, 0);
  EXPECT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }, 90s))
      << op.Mmctl({"describe", "pool", "eu"}).out;
}

// Workers pull private images with the credentials the service create
// carries (X-Registry-Auth); with Always the manager resolves the digest
// first, pins it, and a refusal is the registry's own words.
TEST_F(SwarmE2E, ServicesCarryRegistryCredentialsAndPinTheDigest) {
  std::string error;
  auto registry = Registry::Start(&error);
  ASSERT_TRUE(registry) << error;
  ASSERT_EQ(registry->Push(kImage, "mm/gameserver:swarm-e2e"), "");
  std::string image = registry->host() + "/mm/gameserver:swarm-e2e";
  Docker({"rmi", image});
  auto pool = ServicePool("eu", 2, "    imagePullPolicy: Always\n");
  pool.replace(pool.find(kImage), std::string(kImage).size(), image);
  {
    SwarmOperator op("pull-ok");
    ASSERT_TRUE(op.Start({"--registry-auth-file", registry->auth_file()}));
    ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", pool).status, 201) << pool;
    ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2); }, 90s))
        << op.Call("GET", std::string(kPools) + "/eu/events").body;
    for (const auto& id : op.Services()) {
      auto spec = Docker({"service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", id});
      EXPECT_EQ(spec.out.rfind(image + "@sha256:", 0), 0u) << spec.out;
    }
    auto a = op.Request("alice", "", {{"Accept", "application/json"}});
    EXPECT_EQ(a.status, 200) << a.body;
  }
  {
    SwarmOperator op("pull-wrong");
    ASSERT_TRUE(op.Start({"--registry-auth-file", registry->wrong_auth_file()}));
    ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", pool).status, 201);
    ASSERT_TRUE(Eventually([&] { return ConditionStatus(op.Pool("eu"), "Degraded") == "True"; }, 30s))
        << op.Call("GET", std::string(kPools) + "/eu/events").body;
    auto body = op.Call("GET", std::string(kPools) + "/eu").body;
    EXPECT_NE(body.find("unauthorized"), std::string::npos) << "the registry's reason: " << body;
    EXPECT_EQ(body.find("not-the-password"), std::string::npos);
    EXPECT_TRUE(op.Services().empty()) << "no service is created with an image the registry refused";
  }
  Docker({"rmi", image});
  {
    // Never: no credentials go with the create, so the worker cannot fetch
    // the private image; the task is rejected and the pool says why.
    SwarmOperator op("pull-never");
    ASSERT_TRUE(op.Start({"--registry-auth-file", registry->auth_file()}));
    auto never = pool;
    never.replace(never.find("imagePullPolicy: Always"), std::string("imagePullPolicy: Always").size(),
                  "imagePullPolicy: Never");
    ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", never).status, 201);
    ASSERT_TRUE(Eventually([&] { return ConditionStatus(op.Pool("eu"), "Degraded") == "True"; }, 60s))
        << op.Call("GET", std::string(kPools) + "/eu/events").body;
    auto body = op.Call("GET", std::string(kPools) + "/eu").body;
    EXPECT_NE(body.find("No such image"), std::string::npos) << body;
    EXPECT_NE(Docker({"image", "inspect", image}).exit_code, 0) << "pulled without credentials?";
  }
}

}  // namespace
}  // namespace mm::testing
