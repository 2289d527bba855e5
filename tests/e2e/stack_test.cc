// End to end: charts/swarm deployed with `docker stack deploy` on a real
// single-node swarm, with the locally built images (hack/build-images.sh).
// The stack converges, matchmakerd (non-root, healthy) applies the pool it
// was given as a Docker config, a client's JWT request through the
// published API port is served, Prometheus scrapes matchmakerd over the
// stack's overlay; then the README's upgrade, rollback and backup steps keep
// the game servers and the client's reservation; the stack is removed
// cleanly. The suite creates the
// secrets and node label it needs and removes what it created. 127.0.0.1
// only; one at a time (RESOURCE_LOCK dockerd).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "operator/http/blocking_client.h"
#include "tests/support/engine.h"
#include "tests/support/jwt_sign.h"
#include "tests/support/operator.h"

namespace mm::testing {
namespace {
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kStack[] = "mme2e";
constexpr char kImage[] = "matchmaker/matchmakerd:dev";
constexpr char kNextImage[] = "matchmaker/matchmakerd:e2e-next";  // the "new version": another tag
constexpr char kSecret[] = "e2e-jwt-secret-0123456789abcdef0123456789";
const char* const kImages[] = {"matchmaker/matchmakerd:dev", "matchmaker/gameserver:dev",
                               "matchmaker/prometheus:dev"};

// The one running matchmakerd container of the stack, or "".
std::string MatchmakerdContainer() {
  auto r = Docker({"ps", "-q", "--filter", std::string("label=com.docker.swarm.service.name=") + kStack + "_matchmakerd",
                   "--filter", "status=running"});
  auto ids = Lines(r.out);
  return ids.size() == 1 ? ids[0] : "";
}

// mmctl inside the matchmakerd container: the admin API is not published.
RunResult Mmctl(const std::string& container, std::vector<std::string> args) {
  std::vector<std::string> argv = {"exec", container, "/usr/local/bin/mmctl", "--token-file",
                                   "/run/secrets/matchmaker_admin_token"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Docker(argv);
}

// The game servers' service ids (the stack's own services are not labelled so).
std::string GameServices() {
  auto r = Docker({"service", "ls", "-q", "--filter", "label=dev.matchmaker.managed-by=matchmakerd", "--filter",
                   "label=dev.matchmaker.pool=deathmatch-eu"});
  auto ids = Lines(r.out);
  std::sort(ids.begin(), ids.end());
  std::string out;
  for (const auto& id : ids) out += id + " ";
  return out;
}

// Waits for the one running matchmakerd container to be healthy and run
// `image`; returns its id or "".
std::string HealthyMatchmakerd(const std::string& image, std::chrono::seconds timeout = 90s) {
  std::string c;
  bool ok = Eventually([&] {
    c = MatchmakerdContainer();
    return !c.empty() &&
           Trim(Docker({"inspect", "--format", "{{.State.Health.Status}} {{.Config.Image}}", c}).out) ==
               "healthy " + image;
  }, timeout);
  return ok ? c : "";
}

class StackE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { initialized_ = InitSwarmIfInactive(&init_error_); }
  static void TearDownTestSuite() {
    if (initialized_) Docker({"swarm", "leave", "--force"});
  }
  void SetUp() override {
    ASSERT_EQ(SwarmManagerState(), "active true") << "a swarm manager is needed: " << init_error_;
    for (const char* image : kImages) {
      ASSERT_EQ(Docker({"image", "inspect", image}).exit_code, 0) << image << " is missing: run hack/build-images.sh";
    }
    node_ = Trim(Docker({"info", "--format", "{{.Swarm.NodeID}}"}).out);
    ASSERT_FALSE(node_.empty());
    auto had = Docker({"node", "inspect", "--format", "{{index .Spec.Labels \"dev.matchmaker.data\"}}", node_});
    labeled_ = Trim(had.out) != "true";
    ASSERT_EQ(Docker({"node", "update", "--label-add", "dev.matchmaker.data=true", node_}).exit_code, 0);
    std::string dir = ::testing::TempDir();
    for (auto [name, value] : {std::pair{"matchmaker_admin_token", std::string("e2e-admin-token")},
                               std::pair{"matchmaker_jwt_secret", std::string(kSecret)}}) {
      std::string file = dir + "/" + name;
      std::ofstream(file) << value << "\n";
      auto r = Docker({"secret", "create", name, file});
      std::filesystem::remove(file);
      ASSERT_EQ(r.exit_code, 0) << "secret " << name << " exists already (a deployed stack?): " << r.err;
      secrets_.push_back(name);
    }
  }
  void TearDown() override {
    // Whatever the test reached: pools deleted, stack removed, then what
    // the suite created.
    if (auto c = MatchmakerdContainer(); !c.empty()) Mmctl(c, {"delete", "pool", "deathmatch-eu", "--force"});
    Docker({"stack", "rm", kStack});
    Eventually([] { return Lines(Docker({"ps", "-aq", "--filter", std::string("label=com.docker.stack.namespace=") +
                                                                     kStack}).out).empty(); }, 60s);
    auto left = Docker({"service", "ls", "-q", "--filter", "label=dev.matchmaker.managed-by=matchmakerd",
                        "--filter", "label=dev.matchmaker.pool=deathmatch-eu"});
    for (const auto& id : Lines(left.out)) Docker({"service", "rm", id});
    Docker({"image", "rm", kNextImage});
    for (const auto& s : secrets_) Docker({"secret", "rm", s});
    Eventually([] { return Docker({"network", "inspect", "matchmaker-control"}).exit_code != 0 ||
                           Docker({"network", "rm", "matchmaker-control"}).exit_code == 0; }, 30s);
    Docker({"volume", "rm", std::string(kStack) + "_matchmaker-data", std::string(kStack) + "_prometheus-data"});
    if (labeled_) Docker({"node", "update", "--label-rm", "dev.matchmaker.data", node_});
  }
  static inline bool initialized_ = false;
  static inline std::string init_error_;
  std::string node_;
  bool labeled_ = false;
  std::vector<std::string> secrets_;
};

TEST_F(StackE2E, DeployServeUpgradeRollBackBackUpAndRemove) {
  const int api_port = FreePort(), prom_port = FreePort();
  ASSERT_GT(api_port, 0);
  struct stat sock {};
  ASSERT_EQ(::stat("/var/run/docker.sock", &sock), 0);
  auto deploy = [&](const std::string& image) {
    return RunCommand({"/usr/bin/env", "DOCKER_GID=" + std::to_string(sock.st_gid),
                       "MM_API_PORT=" + std::to_string(api_port), "PROMETHEUS_PORT=" + std::to_string(prom_port),
                       "PROMETHEUS_IMAGE=matchmaker/prometheus:dev", "MATCHMAKERD_IMAGE=" + image, Which("docker"),
                       "stack", "deploy", "--compose-file", SourcePath("charts/swarm/matchmaker.yml"), kStack},
                      120s);
  };
  auto d = deploy(kImage);
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;

  // Converges: matchmakerd running, non-root, healthy by its HEALTHCHECK.
  std::string c;
  ASSERT_TRUE(Eventually([&] {
    c = MatchmakerdContainer();
    return !c.empty() && Trim(Docker({"inspect", "--format", "{{.State.Health.Status}}", c}).out) == "healthy";
  }, 90s)) << Docker({"service", "ps", "--no-trunc", std::string(kStack) + "_matchmakerd"}).out
           << Docker({"service", "logs", std::string(kStack) + "_matchmakerd"}).out;
  EXPECT_EQ(Trim(Docker({"inspect", "--format", "{{.Config.User}}", c}).out),
            "65532:" + std::to_string(sock.st_gid));

  // The pool from the Docker config becomes Ready with its warm instances.
  json::value pool;
  ASSERT_TRUE(Eventually([&] {
    auto r = Mmctl(c, {"get", "pools", "deathmatch-eu", "-o", "json"});
    if (r.exit_code != 0) return false;
    pool = json::parse(r.out);
    return Count(pool, "ready") == 2 && ConditionStatus(pool, "Ready") == "True";
  }, 90s)) << Mmctl(c, {"describe", "pool", "deathmatch-eu"}).out
           << Docker({"service", "logs", std::string(kStack) + "_matchmakerd"}).out;

  // The image resolves host names (dynamic glibc and /etc/nsswitch.conf):
  // the stack's DNS name of matchmakerd itself (Docker's embedded DNS) and
  // localhost (/etc/hosts), from mmctl inside the matchmakerd container.
  for (const char* server : {"http://matchmakerd:3001", "http://localhost:3001"}) {
    auto named = Mmctl(c, {"--server", server, "get", "pools"});
    EXPECT_EQ(named.exit_code, 0) << server << ": " << named.out << named.err;
    EXPECT_NE(named.out.find("deathmatch-eu"), std::string::npos) << server << ": " << named.out;
  }

  // A client through the published API port, with a JWT signed by the
  // secret the stack mounted; the game port it is given echoes.
  auto r = http::HttpCall(static_cast<std::uint16_t>(api_port), "POST", "/request", "",
                          {{"Authorization", "Bearer " + SignJwt("HS256", kSecret, {.sub = "alice", .exp_in = 300})}, {"Accept", "application/json"}});
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  auto doc = json::parse(r.body);
  int game = static_cast<int>(doc.at("ports").at("game").as_int64());
  EXPECT_EQ(doc.at("address").as_string(), "127.0.0.1:" + std::to_string(game));
  EXPECT_EQ(Echo(game), "ping");
  EXPECT_EQ(http::HttpCall(static_cast<std::uint16_t>(api_port), "POST", "/request", "",
                           {{"Authorization", "Bearer not-a-token"}}).status, 401);

  // Prometheus (the stack's service) scrapes matchmakerd over the overlay.
  std::string seen;
  EXPECT_TRUE(Eventually([&] {
    auto q = http::HttpCall(static_cast<std::uint16_t>(prom_port), "GET",
                            "/api/v1/query?query=matchmaker_pool_warm_target%7Bpool%3D%22deathmatch-eu%22%7D");
    seen = q.body;
    return q.status == 200 && seen.find("\"2\"]") != std::string::npos;
  }, 60s)) << seen;

  // Upgrade (README.md): deploy again with another image. stop-first; the
  // new matchmakerd adopts the running game servers (same services) and
  // knows alice's reservation from the journal on the volume.
  const std::string services = GameServices();
  const std::string alice_instance = std::string(doc.at("instance").as_string());
  auto again = [&] {
    auto a = http::HttpCall(static_cast<std::uint16_t>(api_port), "POST", "/request", "",
                            {{"Authorization", "Bearer " + SignJwt("HS256", kSecret, {.sub = "alice", .exp_in = 300})}, {"Accept", "application/json"}});
    return a.status == 200 ? std::string(json::parse(a.body).at("instance").as_string()) : a.body + a.error;
  };
  ASSERT_EQ(Docker({"tag", kImage, kNextImage}).exit_code, 0);
  d = deploy(kNextImage);
  ASSERT_EQ(d.exit_code, 0) << d.out << d.err;
  c = HealthyMatchmakerd(kNextImage);
  ASSERT_FALSE(c.empty()) << Docker({"service", "ps", "--no-trunc", std::string(kStack) + "_matchmakerd"}).out;
  EXPECT_EQ(GameServices(), services) << "the upgrade must adopt, not replace";
  EXPECT_TRUE(Eventually([&] { return again() == alice_instance; }, 30s)) << again();

  // Roll back by hand: the previous image, the same game servers, alice too.
  auto rb = Docker({"service", "rollback", "--detach", std::string(kStack) + "_matchmakerd"});
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  c = HealthyMatchmakerd(kImage);
  ASSERT_FALSE(c.empty()) << Docker({"service", "ps", "--no-trunc", std::string(kStack) + "_matchmakerd"}).out;
  EXPECT_EQ(GameServices(), services);
  EXPECT_TRUE(Eventually([&] { return again() == alice_instance; }, 30s)) << again();

  // Back up (README.md): scale to 0, archive the volume on the node, scale
  // back; the archive holds the journal and the owner id.
  const std::string svc = std::string(kStack) + "_matchmakerd";
  ASSERT_EQ(Docker({"service", "scale", "--detach", svc + "=0"}).exit_code, 0);
  ASSERT_TRUE(Eventually([] { return MatchmakerdContainer().empty(); }, 60s));
  std::string mount = Trim(Docker({"volume", "inspect", "--format", "{{.Mountpoint}}",
                                   std::string(kStack) + "_matchmaker-data"}).out);
  std::string archive = ::testing::TempDir() + "/matchmaker-data.tgz";
  auto tar = RunCommand({Which("tar"), "-C", mount, "-czf", archive, "."});
  ASSERT_EQ(tar.exit_code, 0) << tar.err;
  auto listing = RunCommand({Which("tar"), "-tzf", archive});
  std::filesystem::remove(archive);
  EXPECT_NE(listing.out.find("./owner-id"), std::string::npos) << listing.out;
  EXPECT_NE(listing.out.find("./state/journal"), std::string::npos) << listing.out;
  EXPECT_EQ(GameServices(), services) << "game servers run on while matchmakerd is stopped";
  ASSERT_EQ(Docker({"service", "scale", "--detach", svc + "=1"}).exit_code, 0);
  c = HealthyMatchmakerd(kImage);
  ASSERT_FALSE(c.empty());
  EXPECT_TRUE(Eventually([&] { return again() == alice_instance; }, 30s)) << again();

  // Removal: pools first (their services are on the stack's network), then
  // the stack; nothing of either is left.
  auto del = Mmctl(c, {"delete", "pool", "deathmatch-eu", "--force"});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  EXPECT_TRUE(Eventually([] {
    return Lines(Docker({"service", "ls", "-q", "--filter", "label=dev.matchmaker.managed-by=matchmakerd",
                        "--filter", "label=dev.matchmaker.pool=deathmatch-eu"}).out).empty();
  }, 60s));
  auto rm = Docker({"stack", "rm", kStack});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_TRUE(Eventually([] {
    return Lines(Docker({"ps", "-aq", "--filter", std::string("label=com.docker.stack.namespace=") + kStack}).out)
               .empty() &&
           Lines(Docker({"service", "ls", "-q", "--filter", std::string("label=com.docker.stack.namespace=") + kStack})
                     .out)
               .empty() &&
           Docker({"network", "inspect", "matchmaker-control"}).exit_code != 0;
  }, 60s));
  EXPECT_TRUE(Lines(Docker({"config", "ls", "-q", "--filter", std::string("label=com.docker.stack.namespace=") + kStack})
                        .out)
                  .empty());
}

}  // namespace
}  // namespace mm::testing
