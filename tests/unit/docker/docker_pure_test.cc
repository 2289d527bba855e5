// Pure parts of the Docker client and backend: endpoints, version
// negotiation, error classification, events, container bodies, placement.
#include "operator/docker/client.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json.hpp>

#include "operator/backend/container_spec.h"

namespace mm {
namespace {
namespace json = boost::json;
using docker::Errc;

TEST(DockerEndpoint, ParsesUnixAndTcpAndRejectsTheRest) {
  auto u = docker::ParseEndpoint("unix:///run/x.sock");
  ASSERT_EQ(u.index(), 0u);
  EXPECT_TRUE(std::get<0>(u).unix_socket);
  EXPECT_EQ(std::get<0>(u).path, "/run/x.sock");
  auto t = docker::ParseEndpoint("tcp://10.1.2.3:2376");
  ASSERT_EQ(t.index(), 0u);
  EXPECT_FALSE(std::get<0>(t).unix_socket);
  EXPECT_EQ(std::get<0>(t).host, "10.1.2.3");
  EXPECT_EQ(std::get<0>(t).port, 2376);
  EXPECT_EQ(std::get<0>(t).ToString(), "tcp://10.1.2.3:2376");
  auto v6 = docker::ParseEndpoint("tcp://[::1]:2375");
  ASSERT_EQ(v6.index(), 0u);
  EXPECT_EQ(std::get<0>(v6).host, "::1");
  EXPECT_EQ(std::get<0>(docker::ParseEndpoint("http://localhost")).port, 2375);
  for (const char* bad : {"unix://relative", "ssh://host", "tcp://:2375", "tcp://h:99999", "tcp://h:2x", "npipe:////./pipe"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(docker::ParseEndpoint(bad).index(), 1u);
  }
}

TEST(DockerEndpoint, EmptyMeansDockerHostThenTheDefaultSocket) {
  ::unsetenv("DOCKER_HOST");
  EXPECT_EQ(std::get<0>(docker::ParseEndpoint("")).ToString(), "unix:///var/run/docker.sock");
  ::setenv("DOCKER_HOST", "tcp://127.0.0.1:2399", 1);
  EXPECT_EQ(std::get<0>(docker::ParseEndpoint("")).ToString(), "tcp://127.0.0.1:2399");
  // The flag wins over the environment.
  EXPECT_EQ(std::get<0>(docker::ParseEndpoint("unix:///a.sock")).ToString(), "unix:///a.sock");
  ::unsetenv("DOCKER_HOST");
}

TEST(DockerVersion, NegotiatesWithinOurRange) {
  struct Case {
    const char* engine;
    const char* use;  // nullptr: refused
  };
  for (const Case& c : std::vector<Case>{{"1.41", "1.41"},
                                         {"1.43", "1.43"},
                                         {"1.45", "1.45"},
                                         {"1.47", "1.45"},
                                         {"2.0", "1.45"},
                                         {"1.40", nullptr},
                                         {"1.9", nullptr},
                                         {"", nullptr},
                                         {"x.y", nullptr},
                                         {"1.", nullptr}}) {
    SCOPED_TRACE(c.engine);
    auto v = docker::NegotiateVersion(c.engine);
    if (c.use) {
      ASSERT_EQ(v.index(), 0u) << std::get<1>(v);
      EXPECT_EQ(std::get<0>(v), c.use);
    } else {
      EXPECT_EQ(v.index(), 1u);
    }
  }
  EXPECT_LT(docker::ParseApiVersion("1.9"), docker::ParseApiVersion("1.41"));
}

TEST(DockerErrors, ClassifiesTheEnginesAnswers) {
  struct Case {
    int status;
    const char* body;
    Errc code;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {200, R"({"Id":"abc"})", Errc::kOk, ""},
           {204, "", Errc::kOk, ""},
           {304, "", Errc::kNotModified, "engine answered 304"},
           {400, R"({"message":"invalid port"})", Errc::kBadRequest, "invalid port"},
           {404, R"({"message":"No such image: foo:1"})", Errc::kNoSuchImage, "No such image: foo:1"},
           {404, R"({"message":"No such container: abc"})", Errc::kNotFound, "No such container: abc"},
           {409, R"({"message":"Conflict. The container name \"/x\" is already in use"})", Errc::kConflict,
            "Conflict. The container name \"/x\" is already in use"},
           {500, R"({"message":"driver failed"})", Errc::kEngine, "driver failed"},
           {502, "Bad Gateway", Errc::kEngine, "Bad Gateway"},
           {200, "{not json", Errc::kBadResponse, "engine answered 200 with a body that is not JSON"},
           // A pull's progress stream: the failure comes after the 200.
           {200, "{\"status\":\"Pulling from gs\"}\r\n{\"status\":\"Digest: sha256:ab\"}\r\n", Errc::kOk, ""},
           {200,
            "{\"status\":\"Pulling from gs\"}\n"
            "{\"errorDetail\":{\"message\":\"unauthorized: authentication required\"},"
            "\"error\":\"unauthorized: authentication required\"}\n",
            Errc::kEngine, "unauthorized: authentication required"},
           {200, "{\"status\":\"a\"}\n{broken\n", Errc::kBadResponse, "engine answered 200 with a body that is not JSON"},
       }) {
    SCOPED_TRACE(std::to_string(c.status) + " " + c.body);
    auto r = docker::Classify(c.status, c.body);
    EXPECT_EQ(r.code, c.code) << docker::ToString(r.code);
    EXPECT_EQ(r.message, c.message);
    EXPECT_FALSE(r.unavailable());
  }
  EXPECT_EQ(docker::Classify(200, R"({"Id":"abc"})").body.at("Id").as_string(), "abc");
  EXPECT_EQ(docker::Classify(200, "{\"status\":\"a\"}\n{\"status\":\"b\"}\n").body.as_array().size(), 2u);
}

TEST(DockerEvents, ParsesDieEventsAndSkipsNoise) {
  auto e = docker::ParseEvent(
      R"({"status":"die","id":"c1","Type":"container","Action":"die","Actor":{"ID":"c1","Attributes":{"exitCode":"137","dev.matchmaker.pool":"eu","name":"eu-abcde"}},"scope":"local","time":1,"timeNano":1000})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->type, "container");
  EXPECT_EQ(e->action, "die");
  EXPECT_EQ(e->id, "c1");
  EXPECT_EQ(e->attributes.at("exitCode"), "137");
  EXPECT_EQ(e->attributes.at("dev.matchmaker.pool"), "eu");
  EXPECT_EQ(e->time_nano, 1000);
  EXPECT_FALSE(docker::ParseEvent("{\"Type\":\"container\""));
  EXPECT_FALSE(docker::ParseEvent("[1,2]"));
  EXPECT_FALSE(docker::ParseEvent("{}"));
}

backend::InstanceSpec Spec() {
  backend::InstanceSpec s;
  s.pool = "eu";
  s.name = "eu-bcdfg";
  s.template_hash = "0123456789";
  s.templ.image = "matchmaker/gameserver:dev";
  s.templ.args = {"--capacity", "3", "--map=${MAP}", "--port=${MM_PORT_GAME}"};
  s.templ.env = {{"MAP", "dust"}};
  s.templ.labels = {{"team", "core"}, {"dev.matchmaker.pool", "spoofed"}};
  s.templ.ports = {{"game", 7777, "udp"}, {"query", 27015, "tcp"}};
  s.templ.controlPort = 3000;
  s.templ.resources.cpus = 0.5;
  s.templ.resources.memoryMiB = 64;
  return s;
}

TEST(ContainerSpec, CreateBodyCarriesTheTemplateAndOurLabels) {
  backend::ContainerOptions o{.owner = "own1", .publish_ip = "10.0.0.5"};
  json::value b = backend::ContainerCreateBody(Spec(), o);
  EXPECT_EQ(b.at("Image").as_string(), "matchmaker/gameserver:dev");
  EXPECT_FALSE(b.as_object().contains("Entrypoint"));  // no command: the image's entrypoint
  EXPECT_EQ(json::serialize(b.at("Cmd")), R"(["--capacity","3","--map=dust","--port=7777"])");
  const auto& env = b.at("Env").as_array();
  auto has = [&](std::string_view kv) {
    return std::find(env.begin(), env.end(), json::value(kv)) != env.end();
  };
  for (auto kv : {"MAP=dust", "MM_CONTROL_PORT=3000", "MM_PORT_GAME=7777", "MM_PORT_QUERY=27015", "MM_POOL=eu",
                  "MM_INSTANCE=eu-bcdfg"}) {
    EXPECT_TRUE(has(kv)) << kv;
  }
  const auto& labels = b.at("Labels").as_object();
  EXPECT_EQ(labels.at("team").as_string(), "core");
  EXPECT_EQ(labels.at("dev.matchmaker.managed-by").as_string(), "matchmakerd");
  EXPECT_EQ(labels.at("dev.matchmaker.pool").as_string(), "eu");  // ours win over the template's
  EXPECT_EQ(labels.at("dev.matchmaker.instance").as_string(), "eu-bcdfg");
  EXPECT_EQ(labels.at("dev.matchmaker.template-hash").as_string(), "0123456789");
  EXPECT_EQ(labels.at("dev.matchmaker.owner").as_string(), "own1");
  EXPECT_EQ(json::serialize(b.at("ExposedPorts")), R"({"7777/udp":{},"27015/tcp":{},"3000/tcp":{}})");
  const auto& host = b.at("HostConfig");
  EXPECT_EQ(json::serialize(host.at("PortBindings")),
            R"({"7777/udp":[{"HostIp":"10.0.0.5","HostPort":""}],"27015/tcp":[{"HostIp":"10.0.0.5","HostPort":""}],)"
            R"("3000/tcp":[{"HostIp":"127.0.0.1","HostPort":""}]})");
  EXPECT_EQ(host.at("RestartPolicy").at("Name").as_string(), "no");
  EXPECT_EQ(host.at("NanoCpus").as_int64(), 500'000'000);
  EXPECT_EQ(host.at("Memory").as_int64(), 64 * 1024 * 1024);
  EXPECT_FALSE(host.as_object().contains("NetworkMode"));
}

TEST(ContainerSpec, CommandIsTheEntrypointAndNetworksChooseTheControlPath) {
  auto s = Spec();
  s.templ.command = {"/mm-gameserver", "--address", "0.0.0.0"};
  backend::ContainerOptions o{.owner = "own1", .control_network = "mm-control"};
  json::value b = backend::ContainerCreateBody(s, o);
  EXPECT_EQ(json::serialize(b.at("Entrypoint")), R"(["/mm-gameserver","--address","0.0.0.0"])");
  // The control port is not published: the operator uses the container's address.
  EXPECT_FALSE(b.at("HostConfig").at("PortBindings").as_object().contains("3000/tcp"));
  EXPECT_EQ(b.at("HostConfig").at("NetworkMode").as_string(), "mm-control");
  EXPECT_FALSE(backend::ExtraNetwork(s, o));
  s.templ.network = "game-net";
  EXPECT_EQ(backend::ContainerCreateBody(s, o).at("HostConfig").at("NetworkMode").as_string(), "game-net");
  EXPECT_EQ(backend::ExtraNetwork(s, o), "mm-control");
}

TEST(ContainerSpec, PlacementFromInspect) {
  auto inspect = json::parse(R"({"Id":"c0ffee","NetworkSettings":{
    "Ports":{"7777/udp":[{"HostIp":"0.0.0.0","HostPort":"49153"},{"HostIp":"::","HostPort":"49153"}],
             "27015/tcp":[{"HostIp":"0.0.0.0","HostPort":"49154"}],
             "3000/tcp":[{"HostIp":"127.0.0.1","HostPort":"49155"}]},
    "Networks":{"mm-control":{"IPAddress":"172.20.0.7"}}}})");
  backend::ContainerOptions o{.owner = "own1", .public_address = "203.0.113.9"};
  auto p = backend::PlacementFromInspect(inspect, Spec(), o);
  ASSERT_EQ(p.index(), 0u) << std::get<1>(p);
  const auto& pl = std::get<0>(p);
  EXPECT_EQ(pl.backend_id, "c0ffee");
  EXPECT_EQ(pl.host, "203.0.113.9");
  EXPECT_EQ(pl.ports.at("game"), 49153);
  EXPECT_EQ(pl.ports.at("query"), 49154);
  EXPECT_EQ(pl.control_host, "127.0.0.1");
  EXPECT_EQ(pl.control_port, 49155);

  o.control_network = "mm-control";
  auto on_net = backend::PlacementFromInspect(inspect, Spec(), o);
  ASSERT_EQ(on_net.index(), 0u);
  const auto& net = std::get<0>(on_net);
  EXPECT_EQ(net.control_host, "172.20.0.7");
  EXPECT_EQ(net.control_port, 3000);

  o.control_network = "other";
  EXPECT_EQ(std::get<1>(backend::PlacementFromInspect(inspect, Spec(), o)), "container has no address on network other");
  inspect.at("NetworkSettings").at("Ports").as_object().erase("27015/tcp");
  o.control_network.clear();
  EXPECT_EQ(std::get<1>(backend::PlacementFromInspect(inspect, Spec(), o)), "port query (27015/tcp) is not published");
}

// go-matchmaker's default: one TCP port for the game and the control API.
TEST(ContainerSpec, ASinglePortServerIsPublishedOnceWhereGamePortsAre) {
  auto s = Spec();
  s.templ.ports = {{"game", 3000, "tcp"}};
  s.templ.controlPort = 3000;
  EXPECT_TRUE(backend::ControlIsAGamePort(s.templ));
  backend::ContainerOptions o{.owner = "own1", .publish_ip = "0.0.0.0"};
  json::value b = backend::ContainerCreateBody(s, o);
  // Not overwritten by the loopback-only control binding.
  EXPECT_EQ(json::serialize(b.at("HostConfig").at("PortBindings")), R"({"3000/tcp":[{"HostIp":"0.0.0.0","HostPort":""}]})");
  auto inspect = json::parse(R"({"Id":"c0ffee","NetworkSettings":{"Ports":{"3000/tcp":[{"HostIp":"0.0.0.0","HostPort":"49160"}]}}})");
  auto p = backend::PlacementFromInspect(inspect, s, o);
  ASSERT_EQ(p.index(), 0u) << std::get<1>(p);
  EXPECT_EQ(std::get<0>(p).ports.at("game"), 49160);
  EXPECT_EQ(std::get<0>(p).control_host, "127.0.0.1");  // loopback reaches 0.0.0.0
  EXPECT_EQ(std::get<0>(p).control_port, 49160);
  // Published on one address: the operator probes that address.
  o.publish_ip = "10.0.0.5";
  EXPECT_EQ(std::get<0>(backend::PlacementFromInspect(inspect, s, o)).control_host, "10.0.0.5");
  // A UDP game port on the control port's number is another port.
  s.templ.ports = {{"game", 3000, "udp"}};
  EXPECT_FALSE(backend::ControlIsAGamePort(s.templ));
  EXPECT_EQ(backend::ContainerCreateBody(s, o).at("HostConfig").at("PortBindings").as_object().size(), 2u);
}

TEST(ContainerSpec, OwnershipNeedsBothLabels) {
  EXPECT_TRUE(backend::Owned(json::parse(R"({"dev.matchmaker.managed-by":"matchmakerd","dev.matchmaker.owner":"a"})"), "a"));
  EXPECT_FALSE(backend::Owned(json::parse(R"({"dev.matchmaker.managed-by":"matchmakerd","dev.matchmaker.owner":"b"})"), "a"));
  EXPECT_FALSE(backend::Owned(json::parse(R"({"dev.matchmaker.managed-by":"matchmakerd"})"), "a"));
  EXPECT_FALSE(backend::Owned(json::parse(R"({"dev.matchmaker.owner":"a"})"), "a"));
  EXPECT_FALSE(backend::Owned(json::parse(R"({"dev.matchmaker.managed-by":"someone","dev.matchmaker.owner":"a"})"), "a"));
  EXPECT_FALSE(backend::Owned(nullptr, "a"));
  EXPECT_EQ(json::serialize(backend::OwnedFilter("a")),
            R"({"label":["dev.matchmaker.managed-by=matchmakerd","dev.matchmaker.owner=a"]})");
}

TEST(ContainerSpec, ExitCodeFromListStatus) {
  EXPECT_EQ(backend::ExitCodeFromStatus("Exited (137) 5 seconds ago"), 137);
  EXPECT_EQ(backend::ExitCodeFromStatus("Exited (0) About a minute ago"), 0);
  EXPECT_EQ(backend::ExitCodeFromStatus("Up 3 minutes"), -1);
  EXPECT_EQ(backend::ExitCodeFromStatus("Created"), -1);
  EXPECT_EQ(backend::ExitCodeFromStatus("Exited (x) now"), -1);
}

}  // namespace
}  // namespace mm
