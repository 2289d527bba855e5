// mmctl convert go-matchmaker: settings -> ServerPool, pure.
#include "cmd/mmctl/convert.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "api/v1alpha1/decode.h"

namespace mm::mmctl {
namespace {

Env FromFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = ParseEnvFile(text.str());
  EXPECT_EQ(parsed.index(), 0u) << std::get<1>(parsed);
  return std::get<Env>(parsed);
}

api::ServerPool Decoded(const std::string& yaml) {
  auto r = api::DecodePools(yaml, "converted");
  for (const auto& e : r.errors) ADD_FAILURE() << e.ToString() << "\n" << yaml;
  EXPECT_EQ(r.pools.size(), 1u);
  return r.pools.empty() ? api::ServerPool{} : r.pools[0];
}

TEST(ConvertGoMatchmaker, TheDocumentedDefaults) {
  auto env = FromFile(std::string(MM_SOURCE_DIR) + "/tests/data/go-matchmaker.env");
  auto out = ConvertGoMatchmaker(env, {.name = "dummy", .warm = 2});
  ASSERT_EQ(out.index(), 0u) << std::get<1>(out);
  const auto& c = std::get<Converted>(out);
  EXPECT_EQ(c.backend, "swarm");
  auto p = Decoded(c.yaml);
  EXPECT_EQ(p.metadata.name, "dummy");
  EXPECT_EQ(p.spec.warm, 2);
  const auto& t = p.spec.templ;
  EXPECT_EQ(t.image, "docker.io/stmatskevich/go-dummyserver");
  EXPECT_EQ(t.imagePullPolicy, "Always");
  ASSERT_EQ(t.ports.size(), 1u);
  EXPECT_EQ(t.ports[0].containerPort, 3000);
  EXPECT_EQ(t.ports[0].protocol, "tcp");
  EXPECT_EQ(t.controlPort, 3000);  // one port for both, as go-dummyserver
  EXPECT_EQ(t.network, "dev-network");
  EXPECT_EQ(p.spec.reservation.timeoutMs, 5000);
  EXPECT_EQ(p.spec.reservation.cooldownMs, 2000);
  EXPECT_EQ(p.spec.reservation.retries, 2);  // 3 attempts in all, as RESERVATION_RETRY_TIMES=3
  EXPECT_EQ(p.spec.readiness.timeoutMs, 10000);
  // Credentials go to their own file, never into the pool.
  EXPECT_EQ(c.yaml.find("supersecretpassword"), std::string::npos) << c.yaml;
  auto auth = boost::json::parse(c.auth_json);
  EXPECT_EQ(auth.at("auths").at("docker.io").at("username").as_string(), "stmatskevich");
  EXPECT_EQ(auth.at("auths").at("docker.io").at("password").as_string(), "supersecretpassword");
  for (const char* said : {"--backend swarm", "--registry-auth-file", "MAX_CONCURRENT_JOBS: superseded",
                           "LOOKUP_COOLDOWN: superseded", "REDIS_SERVER_URL: superseded"}) {
    EXPECT_NE(c.yaml.find(said), std::string::npos) << said << "\n" << c.yaml;
  }
}

TEST(ConvertGoMatchmaker, OnlyAnImage) {
  auto out = ConvertGoMatchmaker({{"IMAGE_TO_PULL", "127.0.0.1:5000/gs:1"}}, {});
  ASSERT_EQ(out.index(), 0u) << std::get<1>(out);
  const auto& c = std::get<Converted>(out);
  EXPECT_EQ(c.backend, "docker");
  EXPECT_TRUE(c.auth_json.empty());
  auto p = Decoded(c.yaml);
  EXPECT_EQ(p.metadata.name, "default");
  EXPECT_EQ(p.spec.templ.ports[0].containerPort, 3000);
  EXPECT_EQ(p.spec.templ.controlPort, 3000);
  EXPECT_EQ(p.spec.reservation, api::ReservationPolicy{});
  // A private registry named in the image gets the credentials.
  auto with = ConvertGoMatchmaker(
      {{"IMAGE_TO_PULL", "127.0.0.1:5000/gs:1"}, {"IMAGE_REGISTRY_USERNAME", "u"}, {"IMAGE_EXPOSE_PORT", "7777/udp"},
       {"IMAGE_CONTROL_PORT", "8080"}},
      {});
  ASSERT_EQ(with.index(), 0u);
  EXPECT_NE(std::get<Converted>(with).auth_json.find("\"127.0.0.1:5000\""), std::string::npos);
  auto q = Decoded(std::get<Converted>(with).yaml);
  EXPECT_EQ(q.spec.templ.ports[0].protocol, "udp");
  EXPECT_EQ(q.spec.templ.controlPort, 8080);
}

TEST(ConvertGoMatchmaker, BadSettingsAreNamed) {
  struct Case {
    Env env;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "IMAGE_TO_PULL is not set"},
           {{{"IMAGE_TO_PULL", "x"}, {"IMAGE_EXPOSE_PORT", "abc"}}, "IMAGE_EXPOSE_PORT=abc: not a port"},
           {{{"IMAGE_TO_PULL", "x"}, {"IMAGE_EXPOSE_PORT", "70000"}}, "IMAGE_EXPOSE_PORT=70000: not a port"},
           {{{"IMAGE_TO_PULL", "x"}, {"IMAGE_EXPOSE_PORT", "3000/sctp"}}, "protocol must be tcp or udp"},
           {{{"IMAGE_TO_PULL", "x"}, {"IMAGE_CONTROL_PORT", "3000/udp"}}, "the Reservation API is HTTP, over tcp"},
           {{{"IMAGE_TO_PULL", "x"}, {"RESERVATION_TIMEOUT", "5s"}}, "RESERVATION_TIMEOUT=5s: not a non-negative integer"},
           {{{"IMAGE_TO_PULL", "x"}, {"LOOKUP_COOLDOWN", "-1"}}, "LOOKUP_COOLDOWN=-1: not a non-negative integer"},
           {{{"IMAGE_TO_PULL", "x"}, {"CONTAINER_BACKEND", "k8s"}}, "CONTAINER_BACKEND=k8s: must be docker or swarm"},
       }) {
    auto out = ConvertGoMatchmaker(c.env, {});
    ASSERT_EQ(out.index(), 1u) << c.error;
    EXPECT_NE(std::get<std::string>(out).find(c.error), std::string::npos) << std::get<std::string>(out);
  }
}

TEST(ParseEnvFile, DotenvLines) {
  auto env = ParseEnvFile("# comment\n\nexport A=1\nB = \"two words\"\nC='x=y'\nD=plain # trailing\r\nE=\n");
  ASSERT_EQ(env.index(), 0u) << std::get<1>(env);
  auto e = std::get<Env>(env);
  EXPECT_EQ(e["A"], "1");
  EXPECT_EQ(e["B"], "two words");
  EXPECT_EQ(e["C"], "x=y");
  EXPECT_EQ(e["D"], "plain");
  EXPECT_EQ(e["E"], "");
  EXPECT_EQ(std::get<std::string>(ParseEnvFile("A=1\nnot a setting\n")), "line 2: expected KEY=VALUE");
  EXPECT_EQ(std::get<std::string>(ParseEnvFile("A-B=1\n")), "line 1: A-B is not a variable name");
}

}  // namespace
}  // namespace mm::mmctl

#include "cmd/mmctl/server_url.h"

namespace mm::mmctl {
namespace {

TEST(ServerUrl, HostsPortsAndRefusals) {
  struct Case {
    const char* url;
    const char* host;  // "" when refused
    int port;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {"http://127.0.0.1:3001", "127.0.0.1", 3001, ""},
           {"http://127.0.0.1:3001/some/path", "127.0.0.1", 3001, ""},
           {"http://[::1]:3001", "::1", 3001, ""},
           {"http://[fe80::1]", "fe80::1", 80, ""},
           {"http://matchmakerd:3001", "matchmakerd", 3001, ""},
           {"https://127.0.0.1:3001", "", 0, "https is not supported yet"},
           {"ftp://x:1", "", 0, "the scheme must be http"},
           {"127.0.0.1:3001", "", 0, "not a URL"},
           {"http://", "", 0, "no host"},
           {"http://h:0", "", 0, "the port must be 1-65535"},
           {"http://u:p@h:1", "", 0, "credentials in the URL"},
           {"http://h:99999", "", 0, "the port must be 1-65535"},
           {"not a url", "", 0, "not a URL"},
       }) {
    SCOPED_TRACE(c.url);
    auto r = ParseServerUrl(c.url);
    if (*c.host) {
      ASSERT_EQ(r.index(), 0u) << std::get<1>(r);
      EXPECT_EQ(std::get<0>(r).host, c.host);
      EXPECT_EQ(std::get<0>(r).port, c.port);
    } else {
      ASSERT_EQ(r.index(), 1u);
      EXPECT_NE(std::get<1>(r).find(c.error), std::string::npos) << std::get<1>(r);
    }
  }
}

}  // namespace
}  // namespace mm::mmctl
