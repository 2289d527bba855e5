#include "api/v1alpha1/codec.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/v1alpha1/decode.h"
#include "api/v1alpha1/yaml_json.h"

namespace mm::api {
namespace {

ServerPool FullPool() {
  ServerPool p;
  p.metadata.name = "dm-eu";
  p.metadata.labels = {{"region", "eu"}, {"mode", "true"}};
  p.metadata.annotations = {{"note", "a: b # c"}};
  p.metadata.generation = 4;
  p.metadata.uid = "u-1";
  p.metadata.creationTimestamp = "2026-11-25T12:00:00Z";
  auto& s = p.spec;
  s.warm = 3;
  s.minInstances = 1;
  s.maxInstances = 50;
  s.templ.image = "example/gameserver:1.0";
  s.templ.command = {"/mm-gameserver"};
  s.templ.args = {"--capacity", "3", "null", "0x10", "1e3", "- dash", " sp"};
  s.templ.env = {{"MAP", "dust"}, {"EMPTY", ""}, {"NUM", "007"}};
  s.templ.labels = {{"team", "core"}};
  s.templ.ports = {{"game", 7777, "udp"}, {"query", 27015, "tcp"}};
  s.templ.controlPort = 3001;
  s.templ.resources = {0.5, 256};
  s.templ.placement.constraints = {"node.labels.region==eu"};
  s.templ.network = "game-net";
  s.reservation = {4000, 2, 100};
  s.readiness = {30000, 50};
  s.health = {500, 250, 5, 0};
  ServerPoolStatus st;
  st.observedGeneration = 4;
  st.instances = {1, 3, 7, 2, 1, 0};
  st.conditions = {{"Ready", "True", "WarmPoolFull", "3/3 warm", "2026-11-25T12:00:01Z"},
                   {"Degraded", "False", "", "", ""}};
  p.status = st;
  return p;
}

TEST(Codec, JsonRoundTripIsExact) {
  ServerPool p = FullPool();
  EXPECT_EQ(FromJson(ToJson(p)), p);
  auto text = ToJsonText(p);
  EXPECT_EQ(FromJson(boost::json::parse(text)), p);
}

TEST(Codec, YamlRoundTripIsExact) {
  ServerPool p = FullPool();
  std::string yaml = ToYaml(p);
  auto parsed = ParseYaml(yaml, "rt");
  ASSERT_TRUE(parsed.errors.empty());
  ASSERT_EQ(parsed.documents.size(), 1u);
  EXPECT_EQ(FromJson(parsed.documents[0].value), p) << yaml;
}

TEST(Codec, EncodedPoolDecodesAsValid) {
  ServerPool p = FullPool();
  p.status.reset();
  auto r = DecodePools(ToYaml(p), "rt");
  for (const auto& e : r.errors) ADD_FAILURE() << e.ToString();
  ASSERT_EQ(r.pools.size(), 1u);
  EXPECT_EQ(r.pools[0], p);
}

TEST(TemplateHash, StableAcrossKeyOrderAndSpelledOutDefaults) {
  auto a = DecodePools(R"(apiVersion: matchmaker.dev/v1alpha1
kind: ServerPool
metadata: {name: a}
spec:
  template: {command: [x], ports: [{name: game, containerPort: 7}]}
)", "a");
  auto b = DecodePools(R"(kind: ServerPool
apiVersion: matchmaker.dev/v1alpha1
metadata: {name: b}
spec:
  warm: 7
  template:
    controlPort: 3000
    ports: [{protocol: tcp, containerPort: 7, name: game}]
    command: [x]
)", "b");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  auto ha = TemplateHash(a.pools[0].spec.templ);
  EXPECT_EQ(ha.size(), 10u);
  EXPECT_EQ(ha, TemplateHash(b.pools[0].spec.templ));
}

TEST(TemplateHash, ChangesWithTheTemplate) {
  Template t;
  t.command = {"x"};
  t.ports = {{"game", 7, "tcp"}};
  auto before = TemplateHash(t);
  t.args = {"--capacity", "4"};
  EXPECT_NE(TemplateHash(t), before);
  Template u = t;
  u.image = "img:2";
  EXPECT_NE(TemplateHash(u), TemplateHash(t));
  // How the image is fetched is not what runs: no roll for a pull policy,
  // and pools written before the field keep their hash.
  Template v = u;
  v.imagePullPolicy = "Always";
  EXPECT_EQ(TemplateHash(v), TemplateHash(u));
}

TEST(Codec, ImagePullPolicyDefaultsToIfNotPresentAndRoundTrips) {
  auto r = DecodePools(R"(apiVersion: matchmaker.dev/v1alpha1
kind: ServerPool
metadata: {name: a}
spec:
  template: {image: "reg:5000/gs:1", ports: [{name: game, containerPort: 7}]}
)", "a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.pools[0].spec.templ.imagePullPolicy, "IfNotPresent");
  r.pools[0].spec.templ.imagePullPolicy = "Never";
  auto again = DecodePools(ToYaml(r.pools[0]), "b");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.pools[0].spec.templ.imagePullPolicy, "Never");
  auto bad = DecodePools(R"(apiVersion: matchmaker.dev/v1alpha1
kind: ServerPool
metadata: {name: a}
spec:
  template: {image: x, imagePullPolicy: Sometimes, ports: [{name: game, containerPort: 7}]}
)", "c");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.errors[0].ToString().find("spec.template.imagePullPolicy"), std::string::npos) << bad.errors[0].ToString();
}

}  // namespace
}  // namespace mm::api
