// Pure parts of the swarm backend: service bodies, task and node views,
// placement from a running task.
#include "operator/backend/service_spec.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <optional>

namespace mm::backend {
namespace {
namespace json = boost::json;

InstanceSpec Spec() {
  InstanceSpec s;
  s.pool = "eu";
  s.name = "eu-bcdfg";
  s.template_hash = "0123456789";
  s.templ.image = "matchmaker/gameserver:dev";
  s.templ.command = {"/mm-gameserver"};
  s.templ.args = {"--capacity", "3", "--port=${MM_PORT_GAME}"};
  s.templ.env = {{"MAP", "dust"}};
  s.templ.labels = {{"team", "core"}};
  s.templ.ports = {{"game", 7777, "udp"}};
  s.templ.controlPort = 3000;
  s.templ.resources.cpus = 0.25;
  s.templ.resources.memoryMiB = 32;
  s.templ.placement.constraints = {"node.labels.region==eu", "node.role==worker"};
  return s;
}

TEST(ServiceSpec, OneReplicaNoRestartHostModePortsOurLabels) {
  json::value b = ServiceCreateBody(Spec(), {.owner = "own1", .grace = std::chrono::milliseconds(2500)});
  EXPECT_EQ(b.at("Name").as_string(), "eu-bcdfg");
  const auto& labels = b.at("Labels").as_object();
  EXPECT_EQ(labels.at("dev.matchmaker.managed-by").as_string(), "matchmakerd");
  EXPECT_EQ(labels.at("dev.matchmaker.owner").as_string(), "own1");
  EXPECT_EQ(labels.at("dev.matchmaker.instance").as_string(), "eu-bcdfg");
  EXPECT_EQ(labels.at("dev.matchmaker.template-hash").as_string(), "0123456789");
  EXPECT_EQ(b.at("Mode").at("Replicated").at("Replicas").as_int64(), 1);
  const auto& task = b.at("TaskTemplate");
  EXPECT_EQ(task.at("RestartPolicy").at("Condition").as_string(), "none");
  const auto& c = task.at("ContainerSpec");
  EXPECT_EQ(c.at("Image").as_string(), "matchmaker/gameserver:dev");
  EXPECT_EQ(json::serialize(c.at("Command")), R"(["/mm-gameserver"])");
  EXPECT_EQ(json::serialize(c.at("Args")), R"(["--capacity","3","--port=7777"])");
  EXPECT_EQ(c.at("Labels").at("team").as_string(), "core");
  EXPECT_EQ(c.at("Labels").at("dev.matchmaker.pool").as_string(), "eu");
  EXPECT_EQ(c.at("StopGracePeriod").as_int64(), 2'500'000'000);
  const auto& env = c.at("Env").as_array();
  EXPECT_NE(std::find(env.begin(), env.end(), json::value("MM_INSTANCE=eu-bcdfg")), env.end());
  EXPECT_NE(std::find(env.begin(), env.end(), json::value("MM_CONTROL_PORT=3000")), env.end());
  EXPECT_EQ(json::serialize(task.at("Resources")),
            R"({"Limits":{"NanoCPUs":250000000,"MemoryBytes":33554432},"Reservations":{"NanoCPUs":250000000,"MemoryBytes":33554432}})");
  EXPECT_EQ(json::serialize(task.at("Placement")),
            R"({"Constraints":["node.labels.region==eu","node.role==worker"]})");
  EXPECT_EQ(json::serialize(b.at("EndpointSpec")),
            R"({"Ports":[{"Protocol":"udp","TargetPort":7777,"PublishMode":"host"},)"
            R"({"Protocol":"tcp","TargetPort":3000,"PublishMode":"host"}]})");
  EXPECT_FALSE(task.as_object().contains("Networks"));
}

TEST(ServiceSpec, ControlNetworkAttachesAndUnpublishesTheControlPort) {
  auto s = Spec();
  s.templ.network = "game-overlay";
  json::value b = ServiceCreateBody(s, {.owner = "o", .control_network = "mm-control"});
  EXPECT_EQ(json::serialize(b.at("TaskTemplate").at("Networks")),
            R"([{"Target":"game-overlay"},{"Target":"mm-control"}])");
  EXPECT_EQ(b.at("EndpointSpec").at("Ports").as_array().size(), 1u);
}

TEST(ServiceSpec, ASinglePortServerPublishesItsPortOnceAndIsProbedThere) {
  auto s = Spec();
  s.templ.ports = {{"game", 3000, "tcp"}};
  json::value b = ServiceCreateBody(s, {.owner = "o"});
  EXPECT_EQ(json::serialize(b.at("EndpointSpec")), R"({"Ports":[{"Protocol":"tcp","TargetPort":3000,"PublishMode":"host"}]})");
  TaskView t;
  t.service_id = "svc";
  t.published["3000/tcp"] = 30123;
  NodeView n{.id = "n1", .addr = "10.0.0.4", .public_address = "203.0.113.7", .ready = true, .active = true};
  auto p = PlacementFromTask(t, n, s, {.owner = "o"});
  ASSERT_EQ(p.index(), 0u) << std::get<1>(p);
  EXPECT_EQ(std::get<0>(p).ports.at("game"), 30123);
  EXPECT_EQ(std::get<0>(p).control_host, "10.0.0.4");
  EXPECT_EQ(std::get<0>(p).control_port, 30123);
}

TEST(SwarmViews, NodeAddressPrefersThePublicAddressLabel) {
  auto n = ParseNode(json::parse(R"({"ID":"n1","Status":{"State":"ready","Addr":"10.0.0.4"},
      "Spec":{"Availability":"active","Labels":{"dev.matchmaker.public-address":"203.0.113.7"}}})"));
  ASSERT_TRUE(n);
  EXPECT_EQ(n->addr, "10.0.0.4");
  EXPECT_EQ(n->public_address, "203.0.113.7");
  EXPECT_TRUE(n->ready);
  EXPECT_TRUE(n->active);
  auto d = ParseNode(json::parse(R"({"ID":"n2","Status":{"State":"down","Addr":"10.0.0.5"},"Spec":{"Availability":"drain"}})"));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->public_address, "10.0.0.5");
  EXPECT_FALSE(d->ready);
  EXPECT_FALSE(d->active);
  EXPECT_FALSE(ParseNode(json::parse("{}")));
}

TEST(SwarmViews, TaskTransitions) {
  struct Case {
    const char* state;
    const char* err;
    int exit_code;
    TaskPhase phase;
    const char* describe;
  };
  for (const Case& c : std::vector<Case>{
           {"new", "", 0, TaskPhase::kPending, "task new: m"},
           {"pending", "no suitable node (scheduling constraints not satisfied on 1 node)", 0, TaskPhase::kPending,
            "task pending: no suitable node (scheduling constraints not satisfied on 1 node)"},
           {"preparing", "", 0, TaskPhase::kPending, "task preparing: m"},
           {"starting", "", 0, TaskPhase::kPending, "task starting: m"},
           {"running", "", 0, TaskPhase::kRunning, "task running: m"},
           {"complete", "", 0, TaskPhase::kEnded, "task complete: exit code 0"},
           {"failed", "", 137, TaskPhase::kEnded, "task failed: exit code 137"},
           {"failed", "task: non-zero exit (1)", 1, TaskPhase::kEnded, "task failed: task: non-zero exit (1)"},
           {"rejected", "No such image: nope:1", 0, TaskPhase::kEnded, "task rejected: No such image: nope:1"},
           {"shutdown", "", 0, TaskPhase::kEnded, "task shutdown: m"},
           {"orphaned", "", 0, TaskPhase::kEnded, "task orphaned: m"},
       }) {
    SCOPED_TRACE(std::string(c.state) + " " + c.err);
    json::object t{{"ID", "t1"}, {"ServiceID", "s1"}, {"NodeID", "n1"}, {"DesiredState", "running"},
                   {"Version", json::object{{"Index", 42}}},
                   {"Status", json::object{{"State", c.state}, {"Message", "m"}, {"Err", c.err},
                                           {"ContainerStatus", json::object{{"ExitCode", c.exit_code}}}}}};
    if (std::string(c.err).empty()) t["Status"].as_object().erase("Err");
    auto v = ParseTask(t);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->phase(), c.phase);
    EXPECT_EQ(v->Describe(), c.describe);
    EXPECT_EQ(v->version, 42);
  }
  EXPECT_FALSE(ParseTask(json::parse(R"({"ID":"t"})")));
}

TEST(SwarmViews, PlacementFromARunningTask) {
  auto task = ParseTask(json::parse(R"({"ID":"t1","ServiceID":"svc1","NodeID":"n1","Status":{"State":"running",
      "PortStatus":{"Ports":[{"Protocol":"udp","TargetPort":7777,"PublishedPort":30001,"PublishMode":"host"},
                             {"Protocol":"tcp","TargetPort":3000,"PublishedPort":30002,"PublishMode":"host"}]}},
      "NetworksAttachments":[{"Network":{"Spec":{"Name":"mm-control"}},"Addresses":["10.0.9.5/24"]}]})"));
  ASSERT_TRUE(task);
  NodeView node{"n1", "10.0.0.4", "203.0.113.7", true, true};
  auto p = PlacementFromTask(*task, node, Spec(), {.owner = "o"});
  ASSERT_EQ(p.index(), 0u) << std::get<1>(p);
  EXPECT_EQ(std::get<0>(p).backend_id, "svc1");
  EXPECT_EQ(std::get<0>(p).host, "203.0.113.7");
  EXPECT_EQ(std::get<0>(p).ports.at("game"), 30001);
  EXPECT_EQ(std::get<0>(p).control_host, "10.0.0.4");
  EXPECT_EQ(std::get<0>(p).control_port, 30002);
  auto on_net = PlacementFromTask(*task, node, Spec(), {.owner = "o", .control_network = "mm-control"});
  ASSERT_EQ(on_net.index(), 0u);
  EXPECT_EQ(std::get<0>(on_net).control_host, "10.0.9.5");
  EXPECT_EQ(std::get<0>(on_net).control_port, 3000);
  task->published.erase("7777/udp");
  EXPECT_EQ(std::get<1>(PlacementFromTask(*task, node, Spec(), {.owner = "o"})), "port game (7777/udp) is not published");
}

// The swarm's transitions as a fake Swarm API shows them (task and node
// objects as the engine returns them), judged the way each poll does.
TEST(SwarmTransitions, JudgedFromFakeApiObjects) {
  using std::chrono::milliseconds;
  const milliseconds grace(5000), young(100), old(6000);
  auto node = [](const char* state, const char* availability) {
    return *ParseNode(json::parse(std::string(R"({"ID":"n1","Status":{"State":")") + state +
                                  R"(","Addr":"10.0.0.4"},"Spec":{"Availability":")" + availability + R"("}})"));
  };
  auto task = [](const char* state, const char* err = "", int exit_code = 0) {
    json::object t{{"ID", "t1"}, {"ServiceID", "svc1"}, {"NodeID", "n1"},
                   {"Status", json::object{{"State", state}, {"Message", state},
                                           {"ContainerStatus", json::object{{"ExitCode", exit_code}}},
                                           {"PortStatus", json::parse(R"({"Ports":[
                                               {"Protocol":"udp","TargetPort":7777,"PublishedPort":30001},
                                               {"Protocol":"tcp","TargetPort":3000,"PublishedPort":30002}]})")}}}};
    if (*err) t["Status"].as_object()["Err"] = err;
    return *ParseTask(t);
  };
  const auto spec = Spec();
  const ServiceOptions opts{.owner = "o"};
  const NodeView up = node("ready", "active"), down = node("down", "active"), drained = node("ready", "drain");
  struct Case {
    std::string desc;
    std::optional<TaskView> task;
    const NodeView* node;
    bool creating;
    milliseconds age;
    Verdict::Kind kind;
    std::string message;
  };
  std::vector<Case> cases = {
      {"created, no task yet", std::nullopt, nullptr, true, old, Verdict::kWait, ""},
      {"running service whose tasks vanished", std::nullopt, nullptr, false, old, Verdict::kEnded,
       "service has no task"},
      {"creating, task pending", task("pending"), &up, true, young, Verdict::kWait, ""},
      {"creating, task running", task("running"), &up, true, young, Verdict::kPlaced, ""},
      {"creating, no suitable node yet", task("pending", "no suitable node (scheduling constraints not satisfied on 1 node)"),
       nullptr, true, young, Verdict::kWait, ""},
      {"creating, no suitable node past the grace",
       task("pending", "no suitable node (scheduling constraints not satisfied on 1 node)"), nullptr, true, old,
       Verdict::kEnded, "task pending: no suitable node (scheduling constraints not satisfied on 1 node)"},
      {"creating, image missing on the node", task("rejected", "No such image: x:1"), &up, true, young, Verdict::kEnded,
       "task rejected: No such image: x:1"},
      {"running, steady", task("running"), &up, false, old, Verdict::kWait, ""},
      {"running, process died", task("failed", "task: non-zero exit (137)", 137), &up, false, old, Verdict::kEnded,
       "task failed: task: non-zero exit (137)"},
      {"running, node went down", task("running"), &down, false, old, Verdict::kEnded, "node n1 is down"},
      {"creating, node went down", task("running"), &down, true, young, Verdict::kEnded, "node n1 is down"},
      {"node drained", task("shutdown"), &drained, false, old, Verdict::kEnded,
       "node n1 was drained (task shutdown: shutdown)"},
      {"completed", task("complete"), &up, false, old, Verdict::kEnded, "task complete: exit code 0"},
      {"creating, assigned to a node that then went down", task("assigned"), &down, true, young, Verdict::kEnded,
       "node n1 is down before the task ran (task assigned: assigned)"},
      {"creating, assigned to a node that was then drained", task("assigned"), &drained, true, young,
       Verdict::kEnded, "node n1 was drained before the task ran (task assigned: assigned)"},
      {"creating, preparing on a node that is up", task("preparing"), &up, true, young, Verdict::kWait, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    Verdict v = JudgeService(c.task ? &*c.task : nullptr, c.node, c.creating, c.age, grace, &spec, opts);
    EXPECT_EQ(v.kind, c.kind);
    EXPECT_EQ(v.message, c.message);
    if (v.kind == Verdict::kPlaced) {
      EXPECT_EQ(v.placement.backend_id, "svc1");
      EXPECT_EQ(v.placement.ports.at("game"), 30001);
      EXPECT_EQ(v.placement.control_port, 30002);
    }
  }
  EXPECT_EQ(JudgeService(nullptr, nullptr, false, old, grace, nullptr, opts).kind, Verdict::kEnded);
  auto failed = task("failed", "", 3);
  EXPECT_EQ(JudgeService(&failed, &up, false, old, grace, nullptr, opts).exit_code, 3);
}

}  // namespace
}  // namespace mm::backend
