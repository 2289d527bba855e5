// End to end against a real dockerd: matchmakerd --backend docker with the
// locally built matchmaker/gameserver:dev image (hack/build-images.sh).
// Every port is published on 127.0.0.1; every container a test makes is
// removed by the test. The tests share one engine: CTest runs them one at a
// time (RESOURCE_LOCK dockerd).
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
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

std::string ContainerPool(const std::string& name, int warm, int max = 10, const std::string& image = kImage) {
  return "apiVersion: matchmaker.dev/v1alpha1\nkind: ServerPool\nmetadata: {name: " + name + "}\nspec:\n  warm: " +
         std::to_string(warm) + "\n  maxInstances: " + std::to_string(max) + "\n  template:\n    image: " + image +
         "\n    args: [\"--capacity\", \"3\"]\n    ports: [{name: game, containerPort: 7777, protocol: tcp}]\n"
         "    controlPort: 3000\n    resources: {memoryMiB: 64}\n";
}

// A matchmakerd on the docker backend whose containers are all removed at
// the end, whatever happened.
class DockerOperator : public Operator {
 public:
  explicit DockerOperator(const std::string& name) : Operator(name) {
    owner_ = "e2e" + std::to_string(::getpid()) + name;
    std::ofstream(data_dir() + "/owner-id") << owner_ << "\n";
  }
  ~DockerOperator() {
    Kill9IfRunning();
    for (const auto& id : Containers(true)) Docker({"rm", "-f", id});
  }
  bool Start(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--backend", "docker", "--publish-ip", "127.0.0.1"});
    return Operator::Start(extra);
  }
  void Kill9IfRunning() {
    if (process()) Kill9();
  }
  const std::string& owner() const { return owner_; }
  // Our containers' ids (running only unless `all`).
  std::set<std::string> Containers(bool all = false) {
    std::vector<std::string> args = {"ps", "-q", "--no-trunc", "--filter", "label=dev.matchmaker.owner=" + owner_};
    if (all) args.push_back("-a");
    auto r = Docker(args);
    auto lines = Lines(r.out);
    return {lines.begin(), lines.end()};
  }

 private:
  std::string owner_;
};

std::set<std::string> Ids(const std::vector<json::value>& instances) {
  std::set<std::string> out;
  for (const auto& i : instances) out.insert(std::string(i.at("backendId").as_string()));
  return out;
}

// `ready` Ready instances, nothing else, and exactly those containers.
bool Settled(DockerOperator& op, const std::string& pool, std::int64_t ready) {
  auto p = op.Pool(pool);
  if (Count(p, "ready") != ready || Count(p, "starting") != 0 || Count(p, "terminating") != 0) return false;
  auto inst = op.Instances(pool);
  return inst.size() == static_cast<std::size_t>(ready) && Ids(inst) == op.Containers(true);
}

class DockerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto v = Docker({"version", "--format", "{{.Server.APIVersion}}"}, 20s);
    ASSERT_EQ(v.exit_code, 0) << "no Docker Engine answers (hack/start-dockerd.sh starts one): " << v.err;
    ASSERT_EQ(Docker({"image", "inspect", kImage}).exit_code, 0) << kImage << " is missing: run hack/build-images.sh";
  }
};

TEST_F(DockerE2E, WarmContainersServeAllocationsOnTheirGamePort) {
  DockerOperator op("warm");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ContainerPool("eu", 3)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 3); }, 60s)) << op.Call("GET", std::string(kPools) + "/eu").body;

  // Each instance is a running container with our labels and the template's limits.
  for (const auto& i : op.Instances("eu")) {
    std::string id(i.at("backendId").as_string());
    auto r = Docker({"inspect", "--format",
                     "{{.State.Running}} {{index .Config.Labels \"dev.matchmaker.instance\"}} "
                     "{{index .Config.Labels \"dev.matchmaker.pool\"}} {{.HostConfig.Memory}} "
                     "{{.HostConfig.RestartPolicy.Name}}",
                     id});
    EXPECT_EQ(r.out, "true " + std::string(i.at("name").as_string()) + " eu 67108864 no\n");
  }
  auto a = op.Request("alice", "", {{"Accept", "application/json"}});
  ASSERT_EQ(a.status, 200) << a.body;
  auto doc = json::parse(a.body);
  int game = static_cast<int>(doc.at("ports").at("game").as_int64());
  EXPECT_EQ(doc.at("address").as_string(), "127.0.0.1:" + std::to_string(game));
  EXPECT_EQ(Echo(game), "ping") << "the game port of the allocated container answers";
  // The container itself holds the reservation.
  std::string instance(doc.at("instance").as_string());
  for (const auto& i : op.Instances("eu")) {
    if (i.at("name").as_string() != instance) continue;
    auto control = static_cast<std::uint16_t>(i.at("controlPort").as_int64());
    EXPECT_EQ(http::HttpCall(control, "GET", "/reservation/alice").status, 200);
    EXPECT_EQ(i.at("controlHost").as_string(), "127.0.0.1");
  }
  // Warm refilled: the allocated one is busy, three idle again.
  EXPECT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 3; }, 60s));
}

// go-matchmaker's default server: one TCP port for the game and the control
// API. It is published once, on --publish-ip (not narrowed to loopback by
// the control binding), and the operator talks to it there.
TEST_F(DockerE2E, ASinglePortServerIsPublishedOnceOnThePublishAddress) {
  DockerOperator op("oneport");
  ASSERT_TRUE(op.Operator::Start({"--backend", "docker", "--publish-ip", "0.0.0.0"}));
  std::string pool = ContainerPool("eu", 1);
  pool.replace(pool.find("containerPort: 7777"), std::string("containerPort: 7777").size(), "containerPort: 3000");
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", pool).status, 201) << pool;
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 1); }, 60s)) << op.Call("GET", std::string(kPools) + "/eu").body;
  auto id = *op.Containers().begin();
  auto ports = json::parse(Docker({"inspect", "--format", "{{json .NetworkSettings.Ports}}", id}).out);
  for (const auto& [key, bindings] : ports.as_object()) {  // the image EXPOSEs 7777: listed, unbound
    if (key != "3000/tcp") {
      EXPECT_TRUE(bindings.is_null()) << ports;
    }
  }
  int published = 0;
  for (const auto& b : ports.at("3000/tcp").as_array()) {
    EXPECT_NE(b.at("HostIp").as_string(), "127.0.0.1") << ports;  // the control binding used to win
    int port = std::atoi(std::string(b.at("HostPort").as_string()).c_str());
    if (published == 0) published = port;
    EXPECT_EQ(port, published) << ports;
  }
  ASSERT_GT(published, 0);
  auto a = op.Request("alice", "", {{"Accept", "application/json"}});
  ASSERT_EQ(a.status, 200) << a.body;
  auto doc = json::parse(a.body);
  EXPECT_EQ(doc.at("ports").at("game").as_int64(), published);
  EXPECT_EQ(doc.at("address").as_string(), "127.0.0.1:" + std::to_string(published));
  bool found = false;
  for (const auto& i : op.Instances("eu")) {  // the warm one refilled is another
    if (i.at("name").as_string() != doc.at("instance").as_string()) continue;
    found = true;
    EXPECT_EQ(i.at("controlPort").as_int64(), published);
  }
  EXPECT_TRUE(found);
  // The server's own view, through the one published port.
  auto r = http::HttpCall(static_cast<std::uint16_t>(published), "GET", "/reservation/alice");
  EXPECT_EQ(r.status, 200) << r.body;
}

// The pool's events with `reason`, as "type reason: message" lines.
std::vector<std::string> EventsOf(DockerOperator& op, const std::string& pool, const std::string& reason) {
  std::vector<std::string> out;
  auto doc = json::parse(op.Call("GET", std::string(kPools) + "/" + pool + "/events").body);
  for (const auto& e : doc.at("items").as_array()) {
    if (e.at("reason").as_string() != reason) continue;
    out.push_back(std::string(e.at("type").as_string()) + " " + reason + ": " + std::string(e.at("message").as_string()));
  }
  return out;
}

std::string WithPullPolicy(std::string pool, const std::string& policy) {
  return pool + "    imagePullPolicy: " + policy + "\n";
}

// go-matchmaker pulls IMAGE_TO_PULL with a registry user and password; so do
// we, from a real registry with htpasswd auth: the right credentials pull
// the image once for every instance waiting on it, wrong ones are the
// registry's refusal as a Degraded pool with backoff, Never never pulls.
TEST_F(DockerE2E, ImagesArePulledWithRegistryCredentialsOncePerImage) {
  std::string error;
  auto registry = Registry::Start(&error);
  ASSERT_TRUE(registry) << error;
  ASSERT_EQ(registry->Push(kImage, "mm/gameserver:e2e"), "");
  std::string image = registry->host() + "/mm/gameserver:e2e";
  Docker({"rmi", image});  // only the registry has it now
  ASSERT_NE(Docker({"image", "inspect", image}).exit_code, 0);

  {
    DockerOperator op("pull-ok");
    ASSERT_TRUE(op.Start({"--registry-auth-file", registry->auth_file()}));
    ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", WithPullPolicy(ContainerPool("eu", 3, 10, image), "Always")).status,
              201);
    ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 3); }, 90s))
        << op.Call("GET", std::string(kPools) + "/eu/events").body;
    EXPECT_EQ(Docker({"image", "inspect", image}).exit_code, 0) << "the engine has the image now";
    // Three creates, one pull.
    auto pulled = EventsOf(op, "eu", "Pulled");
    EXPECT_EQ(pulled.size(), 1u) << op.Call("GET", std::string(kPools) + "/eu/events").body;
    auto pulling = EventsOf(op, "eu", "Pulling");
    ASSERT_EQ(pulling.size(), 1u);
    EXPECT_NE(pulling[0].find("with the credentials for " + registry->host()), std::string::npos) << pulling[0];
    auto a = op.Request("alice", "", {{"Accept", "application/json"}});
    EXPECT_EQ(a.status, 200) << a.body;
  }
  Docker({"rmi", image});
  {
    DockerOperator op("pull-wrong");
    ASSERT_TRUE(op.Start({"--registry-auth-file", registry->wrong_auth_file()}));
    ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", WithPullPolicy(ContainerPool("eu", 2, 10, image), "Always")).status,
              201);
    std::string reason;
    ASSERT_TRUE(Eventually([&] { return ConditionStatus(op.Pool("eu"), "Degraded", &reason) == "True"; }, 30s))
        << op.Call("GET", std::string(kPools) + "/eu/events").body;
    auto pool = op.Call("GET", std::string(kPools) + "/eu").body;
    EXPECT_NE(pool.find("unauthorized"), std::string::npos) << "the registry's reason: " << pool;
    auto failed = EventsOf(op, "eu", "PullFailed");
    ASSERT_FALSE(failed.empty());
    EXPECT_EQ(failed[0].rfind("Warning PullFailed: pull image " + image + ": ", 0), 0u) << failed[0];
    EXPECT_EQ(failed[0].find("not-the-password"), std::string::npos) << "credentials are never shown";
    // Backoff, not a pull loop.
    std::this_thread::sleep_for(4s);
    EXPECT_LE(EventsOf(op, "eu", "PullFailed").size(), 6u);
    EXPECT_TRUE(op.Containers(true).empty());
    auto log = op.process()->output();
    EXPECT_EQ(log.find("not-the-password"), std::string::npos);
  }
  {
    DockerOperator op("pull-never");
    ASSERT_TRUE(op.Start({"--registry-auth-file", registry->auth_file()}));
    ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", WithPullPolicy(ContainerPool("eu", 1, 10, image), "Never")).status,
              201);
    ASSERT_TRUE(Eventually([&] { return ConditionStatus(op.Pool("eu"), "Degraded") == "True"; }, 30s));
    auto pool = op.Call("GET", std::string(kPools) + "/eu").body;
    EXPECT_NE(pool.find("imagePullPolicy is Never"), std::string::npos) << pool;
    EXPECT_TRUE(EventsOf(op, "eu", "Pulling").empty());
    EXPECT_NE(Docker({"image", "inspect", image}).exit_code, 0) << "Never pulled anyway";
  }
}

// Twenty containers created at once while the backend compares the engine's
// container list every 100 ms: a container listed between its create and
// its start, or created after the list was taken, is not mistaken for one
// that died (a bug the container benchmark found).
TEST_F(DockerE2E, TwentyAtOnceUnderConstantResyncsAllBecomeReady) {
  DockerOperator op("twenty");
  ASSERT_TRUE(op.Start({"--docker-resync-ms", "100"}));
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ContainerPool("eu", 20, 20)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 20); }, 90s)) << op.Mmctl({"describe", "pool", "eu"}).out;
  auto events = op.Call("GET", std::string(kPools) + "/eu/events").body;
  EXPECT_EQ(events.find("ExitedBeforeReady"), std::string::npos) << events;
  EXPECT_EQ(events.find("Exited"), std::string::npos) << events;
}

TEST_F(DockerE2E, AKilledContainerIsReplacedAndRemoved) {
  DockerOperator op("kill");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ContainerPool("eu", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2); }, 60s));
  auto before = Ids(op.Instances("eu"));
  std::string victim = *before.begin();
  ASSERT_EQ(Docker({"kill", victim}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2) && !Ids(op.Instances("eu")).contains(victim); }, 60s));
  EXPECT_TRUE(Ids(op.Instances("eu")).contains(*std::next(before.begin())));
  // The dead container was removed once its exit was recorded.
  EXPECT_TRUE(Eventually([&] { return Docker({"inspect", victim}).exit_code != 0; }, 10s));
  auto events = op.Call("GET", std::string(kPools) + "/eu/events").body;
  EXPECT_NE(events.find("exited with code 137"), std::string::npos) << events;
}

TEST_F(DockerE2E, AnImageChangeRollsIdleContainersOnly) {
  const std::string other = "matchmaker/gameserver:e2e-rolled";
  ASSERT_EQ(Docker({"tag", kImage, other}).exit_code, 0);
  {
    DockerOperator op("roll");
    ASSERT_TRUE(op.Start());
    ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ContainerPool("eu", 2)).status, 201);
    ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2); }, 60s));
    auto a = op.Request("alice", "", {{"Accept", "application/json"}});
    ASSERT_EQ(a.status, 200) << a.body;
    std::string busy(json::parse(a.body).at("instance").as_string());
    std::string busy_hash, busy_id;
    for (const auto& i : op.Instances("eu")) {
      if (i.at("name").as_string() == busy) {
        busy_hash = std::string(i.at("templateHash").as_string());
        busy_id = std::string(i.at("backendId").as_string());
      }
    }
    ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ContainerPool("eu", 2, 10, other)).status, 200);
    // Idle containers now run the new image; the busy one keeps its template and container.
    ASSERT_TRUE(Eventually([&] {
      auto inst = op.Instances("eu");
      int fresh = 0;
      bool busy_kept = false;
      for (const auto& i : inst) {
        if (i.at("name").as_string() == busy) {
          busy_kept = i.at("templateHash").as_string() == busy_hash && i.at("backendId").as_string() == busy_id;
        } else if (i.at("templateHash").as_string() != busy_hash && i.at("state").as_string() == "Ready") {
          ++fresh;
        }
      }
      return busy_kept && fresh == 2 && inst.size() == 3 && op.Containers(true).size() == 3;
    }, 60s)) << op.Mmctl({"get", "instances", "-o", "wide"}).out;
    for (const auto& i : op.Instances("eu")) {
      auto r = Docker({"inspect", "--format", "{{.Config.Image}}", std::string(i.at("backendId").as_string())});
      EXPECT_EQ(r.out, (i.at("name").as_string() == busy ? std::string(kImage) : other) + "\n");
    }
  }
  Docker({"rmi", other});
}

TEST_F(DockerE2E, Kill9ThenRestartAdoptsEveryContainerAndCreatesNone) {
  DockerOperator op("adopt");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ContainerPool("eu", 3)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 3); }, 60s));
  ASSERT_EQ(op.Request("alice").status, 200);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 3; }, 60s));
  auto containers = op.Containers(true);
  ASSERT_EQ(containers.size(), 4u);
  auto alice = op.Request("alice").body;
  op.Kill9();
  EXPECT_EQ(op.Containers(), containers) << "containers outlive matchmakerd";
  auto since = UnixTime();
  ASSERT_TRUE(op.Start());
  ASSERT_TRUE(Eventually([&] { return op.Call("GET", "/readyz").status == 200; }, 20s));
  std::this_thread::sleep_for(1s);  // a few reconcile passes
  EXPECT_EQ(op.Containers(true), containers);
  EXPECT_EQ(Ids(op.Instances("eu")), containers);
  EXPECT_EQ(op.Request("alice").body, alice) << "the acknowledged reservation survives";
  auto created = Docker({"events", "--since", since, "--until", UnixTime(), "--filter",
                         "label=dev.matchmaker.owner=" + op.owner(), "--filter", "event=create"});
  EXPECT_EQ(created.out, "") << "no container created after the restart";
}

// kill -9 while containers are being created: their records are durable
// (written before the engine was asked) but carry no placement yet. After
// the restart every container that existed is adopted by its
// dev.matchmaker.instance label and its placement read back from the
// engine: none is removed and replaced.
TEST_F(DockerE2E, CreatesInFlightAtKill9AreAdoptedNotReplaced) {
  DockerOperator op("inflight");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ContainerPool("eu", 3)).status, 201);
  bool caught = Eventually(
      [&] {
        for (const auto& i : op.Instances("eu")) {
          if (i.at("controlPort").as_int64() != 0) continue;
          auto made = Docker({"ps", "-aq", "--filter", "label=dev.matchmaker.owner=" + op.owner(), "--filter",
                              "label=dev.matchmaker.instance=" + std::string(i.at("name").as_string())});
          if (!made.out.empty()) return true;
        }
        return false;
      },
      20s);
  op.Kill9();
  ASSERT_TRUE(caught) << "no create was caught in flight (a container made, its placement not recorded)";
  std::this_thread::sleep_for(1s);  // creates the engine was already handling finish
  auto before = op.Containers(true);
  ASSERT_FALSE(before.empty());
  ASSERT_TRUE(op.Start());
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 3); }, 60s));
  auto after = op.Containers(true);
  for (const auto& id : before) EXPECT_TRUE(after.contains(id)) << id.substr(0, 12) << " was removed, not adopted";
  auto r = op.Request("bob");
  ASSERT_EQ(r.status, 200) << r.body;
}

TEST_F(DockerE2E, ContainersWithoutOurLabelsSurviveDeletionAndOrphanCleanup) {
  DockerOperator op("foreign");
  // Before matchmakerd starts: a stranger, one of another matchmakerd, and an orphan of ours.
  auto stranger = Docker({"run", "-d", "--name", "mm-e2e-stranger-" + std::to_string(::getpid()), kImage});
  auto other = Docker({"run", "-d", "--label", "dev.matchmaker.managed-by=matchmakerd", "--label",
                       "dev.matchmaker.owner=someone-else", "--label", "dev.matchmaker.pool=eu", kImage});
  auto orphan = Docker({"run", "-d", "--label", "dev.matchmaker.managed-by=matchmakerd", "--label",
                        "dev.matchmaker.owner=" + op.owner(), "--label", "dev.matchmaker.pool=eu", "--label",
                        "dev.matchmaker.instance=eu-ghost", kImage});
  ASSERT_EQ(stranger.exit_code, 0) << stranger.err;
  ASSERT_EQ(other.exit_code, 0) << other.err;
  ASSERT_EQ(orphan.exit_code, 0) << orphan.err;
  std::string stranger_id = Lines(stranger.out).at(0), other_id = Lines(other.out).at(0),
              orphan_id = Lines(orphan.out).at(0);
  auto running = [](const std::string& id) {
    return Docker({"inspect", "--format", "{{.State.Running}}", id}).out == "true\n";
  };
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ContainerPool("eu", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2); }, 60s));
  EXPECT_TRUE(Eventually([&] { return Docker({"inspect", orphan_id}).exit_code != 0; }, 20s))
      << "our orphan is stopped and removed";
  ASSERT_EQ(op.Request("bob").status, 200);
  auto del = op.Mmctl({"delete", "pool", "eu", "--force"});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  EXPECT_TRUE(Eventually([&] { return op.Pool("eu").is_null() && op.Containers(true).empty(); }, 60s));
  EXPECT_TRUE(running(stranger_id));
  EXPECT_TRUE(running(other_id));
  Docker({"rm", "-f", stranger_id, other_id});
}

// spec.health after Ready, against real containers: a paused container
// (the engine's POST /containers/{id}/pause freezes its cgroup) is
// Unhealthy within periodMs x failureThreshold; an idle one is replaced, a
// busy one kept and back to Allocated once unpaused.
TEST_F(DockerE2E, APausedContainerIsUnhealthyReplacedWhenIdleKeptWhenBusy) {
  DockerOperator op("paused");
  ASSERT_TRUE(op.Start());
  std::string pool = ContainerPool("eu", 2) + "  health: {periodMs: 200, timeoutMs: 300, failureThreshold: 3}\n";
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", pool).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2); }, 60s));
  auto state_of = [&](const std::string& id) -> std::string {
    for (const auto& i : op.Instances("eu")) {
      if (i.at("backendId").as_string() == id) return std::string(i.at("state").as_string());
    }
    return "<gone>";
  };
  // Busy: alice's container, paused.
  auto a = op.Request("alice", "", {{"Accept", "application/json"}});
  ASSERT_EQ(a.status, 200) << a.body;
  std::string busy_name(json::parse(a.body).at("instance").as_string()), busy_id;
  for (const auto& i : op.Instances("eu")) {
    if (i.at("name").as_string() == busy_name) busy_id = i.at("backendId").as_string();
  }
  ASSERT_EQ(Docker({"pause", busy_id}).exit_code, 0);
  // Idle: one of the warm ones, paused.
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }, 60s));
  std::string idle_id;
  for (const auto& i : op.Instances("eu")) {
    if (i.at("state").as_string() == "Ready") idle_id = i.at("backendId").as_string();
  }
  ASSERT_EQ(Docker({"pause", idle_id}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] { return state_of(busy_id) == "Unhealthy"; }, 5s)) << state_of(busy_id);
  // The idle one is replaced: stopped, removed, and the warm pool refilled.
  ASSERT_TRUE(Eventually([&] { return state_of(idle_id) == "<gone>" && Count(op.Pool("eu"), "ready") == 2; }, 60s))
      << op.Mmctl({"describe", "pool", "eu"}).out;
  EXPECT_TRUE(Eventually([&] { return Docker({"inspect", idle_id}).exit_code != 0; }, 30s)) << "container removed";
  // The busy one is still there, reported, not offered.
  EXPECT_EQ(state_of(busy_id), "Unhealthy");
  auto events = op.Call("GET", std::string(kPools) + "/eu/events").body;
  EXPECT_NE(events.find("BusyInstanceUnhealthy"), std::string::npos) << events;
  auto b = op.Request("bob", "", {{"Accept", "application/json"}});
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_NE(json::parse(b.body).at("instance").as_string(), busy_name);
  ASSERT_EQ(Docker({"unpause", busy_id}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] { return state_of(busy_id) == "Allocated"; }, 5s)) << state_of(busy_id);
  auto again = op.Request("alice", "", {{"Accept", "application/json"}});
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json::parse(again.body).at("instance").as_string(), busy_name);
}

// A container that exits 1 a second after it is Ready: a crash loop, not a
// stream of finished matches. Backoff holds creations and the pool is
// Degraded; the number of containers created stays bounded.
TEST_F(DockerE2E, ACrashLoopAfterReadyBacksOffAndDegrades) {
  DockerOperator op("crashloop");
  ASSERT_TRUE(op.Start());
  std::string pool = ContainerPool("eu", 1, 3);
  auto at = pool.find("\"--capacity\", \"3\"");
  pool.insert(at + std::string("\"--capacity\", \"3\"").size(), ", \"--exit-after-ms\", \"1000\", \"--exit-code\", \"1\"");
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", pool).status, 201) << pool;
  auto start = std::chrono::steady_clock::now();
  std::string reason;
  ASSERT_TRUE(Eventually([&] { return ConditionStatus(op.Pool("eu"), "Degraded", &reason) == "True"; }, 30s))
      << op.Call("GET", std::string(kPools) + "/eu/events").body;
  EXPECT_EQ(reason, "StartFailures");
  while (std::chrono::steady_clock::now() - start < 15s) std::this_thread::sleep_for(250ms);
  auto metrics = op.Call("GET", "/metrics").body;
  auto m = metrics.find("matchmaker_instance_failures_total{pool=\"eu\",reason=\"CrashedAfterReady\"}");
  ASSERT_NE(m, std::string::npos) << metrics;
  double crashes = std::atof(metrics.c_str() + metrics.find(' ', m) + 1);
  auto c = metrics.find("matchmaker_backend_requests_total{backend=\"docker\",code=\"ok\",op=\"create\"}");
  ASSERT_NE(c, std::string::npos) << metrics;
  double creates = std::atof(metrics.c_str() + metrics.find(' ', c) + 1);
  EXPECT_GE(crashes, 3);
  // ~1.5 s per start plus a doubling backoff (0.5, 1, 2, 4 s): about 6 in
  // 15 s; without backoff it would be about 10.
  EXPECT_LE(creates, 8) << "containers created in 15 s";
}

TEST_F(DockerE2E, AMissingImageIsAPoolConditionNotACrashNorACreateLoop) {
  DockerOperator op("noimage");
  ASSERT_TRUE(op.Start());
  // Never: tests talk to no registry but their own on 127.0.0.1.
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu",
                    WithPullPolicy(ContainerPool("eu", 2, 10, "matchmaker/not-built-here:none"), "Never")).status, 201);
  std::string reason;
  ASSERT_TRUE(Eventually([&] { return ConditionStatus(op.Pool("eu"), "Degraded", &reason) == "True"; }, 30s));
  auto pool = op.Call("GET", std::string(kPools) + "/eu").body;
  EXPECT_NE(pool.find("is not on the engine and imagePullPolicy is Never: build or load it there"), std::string::npos)
      << pool;
  // Backoff, not a loop: over three seconds only a handful of attempts.
  std::this_thread::sleep_for(3s);
  auto metrics = op.Call("GET", "/metrics").body;
  auto at = metrics.find("matchmaker_instance_failures_total{pool=\"eu\",reason=\"CreateFailed\"}");
  ASSERT_NE(at, std::string::npos) << metrics;
  double failures = std::atof(metrics.c_str() + metrics.find(' ', at) + 1);
  EXPECT_GE(failures, 2);
  EXPECT_LE(failures, 12);
  auto errors_at = metrics.find("matchmaker_reconcile_errors_total{pool=\"eu\"}");
  ASSERT_NE(errors_at, std::string::npos) << metrics;
  EXPECT_EQ(std::atof(metrics.c_str() + metrics.find(' ', errors_at) + 1), failures)
      << "every failed create is a reconcile error";
  EXPECT_EQ(op.Call("GET", "/healthz").status, 200);
  EXPECT_TRUE(op.Containers(true).empty());
}

// The engine goes away for a while: allocations from Ready containers go on,
// /readyz says why it is not ready, nothing is lost, and reconcile resumes.
TEST_F(DockerE2E, AnEngineOutageKeepsAllocationsGoingAndLosesNothing) {
  auto pids = Lines(RunCommand({Which("pgrep"), "-x", "dockerd"}).out);
  ASSERT_EQ(pids.size(), 1u) << "one local dockerd expected";
  int dockerd = std::atoi(pids[0].c_str());
  std::ifstream cmdline_in("/proc/" + pids[0] + "/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(cmdline_in)), {});
  // A real stop when the engine runs as hack/start-dockerd.sh starts it
  // (containers and their published ports outlive it); else a freeze.
  bool real_stop = cmdline.find("--live-restore") != std::string::npos &&
                   cmdline.find("--userland-proxy=false") != std::string::npos;

  DockerOperator op("outage");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ContainerPool("eu", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Settled(op, "eu", 2); }, 60s));
  auto alice = op.Request("alice");
  ASSERT_EQ(alice.status, 200);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2 && Count(op.Pool("eu"), "starting") == 0; }, 60s));

  if (real_stop) {
    ASSERT_EQ(::kill(dockerd, SIGTERM), 0);
    ASSERT_TRUE(Eventually([&] { return ::kill(dockerd, 0) != 0; }, 30s)) << "dockerd did not stop";
  } else {
    ASSERT_EQ(::kill(dockerd, SIGSTOP), 0);
  }
  struct Resume {
    bool real;
    int pid;
    ~Resume() {
      if (real) {
        RunCommand({SourcePath("hack/start-dockerd.sh")}, 60s);
      } else if (pid > 0) {
        ::kill(pid, SIGCONT);
      }
    }
  } resume{real_stop, dockerd};

  ASSERT_TRUE(Eventually([&] { return op.Call("GET", "/readyz").status == 503; }, 30s));
  EXPECT_NE(op.Call("GET", "/readyz").body.find("backend unavailable: docker engine"), std::string::npos);
  // Allocation keeps working from Ready containers.
  auto bob = op.Request("bob", "", {{"Accept", "application/json"}});
  ASSERT_EQ(bob.status, 200) << bob.body;
  EXPECT_EQ(Echo(static_cast<int>(json::parse(bob.body).at("ports").at("game").as_int64())), "ping");
  EXPECT_EQ(op.Request("alice").body, alice.body);
  // A change applied meanwhile is accepted and kept for later.
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", ContainerPool("eu", 3)).status, 200);
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(op.Call("GET", "/healthz").status, 200);
  auto instances = op.Instances("eu");
  EXPECT_EQ(Count(op.Pool("eu"), "ready") + Count(op.Pool("eu"), "allocated"), 3)
      << "the instances already running are still counted";

  if (real_stop) {
    auto r = RunCommand({SourcePath("hack/start-dockerd.sh")}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  } else {
    ::kill(dockerd, SIGCONT);
  }
  resume.real = false;
  resume.pid = 0;
  ASSERT_TRUE(Eventually([&] { return op.Call("GET", "/readyz").status == 200; }, 30s));
  // Reconcile resumes: warm 3 idle beside the busy one.
  EXPECT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 3; }, 60s))
      << op.Call("GET", std::string(kPools) + "/eu").body;
  EXPECT_EQ(op.Request("alice").body, alice.body);
  EXPECT_EQ(op.Request("bob").status, 200);
  // Whatever a create cut short by the outage left behind is cleaned up.
  EXPECT_TRUE(Eventually([&] { return Ids(op.Instances("eu")) == op.Containers(true); }, 20s));
}

}  // namespace
}  // namespace mm::testing
