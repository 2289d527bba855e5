#include "api/v1alpha1/schema.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "api/v1alpha1/codec.h"

namespace mm::api {
namespace {

namespace json = boost::json;

// Every field path of a value: "spec.template.ports[].name".
void Paths(const json::value& v, const std::string& prefix, std::set<std::string>& out) {
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) {
      std::string p = prefix.empty() ? std::string(kv.key()) : prefix + "." + std::string(kv.key());
      out.insert(p);
      Paths(kv.value(), p, out);
    }
  } else if (v.is_array() && !v.get_array().empty()) {
    Paths(v.get_array()[0], prefix + "[]", out);
  }
}

// Every property path the schema declares (free-form maps stop there).
void SchemaPaths(const json::object& s, const std::string& prefix, std::set<std::string>& out) {
  if (auto* props = s.if_contains("properties")) {
    for (const auto& kv : props->get_object()) {
      std::string p = prefix.empty() ? std::string(kv.key()) : prefix + "." + std::string(kv.key());
      out.insert(p);
      SchemaPaths(kv.value().get_object(), p, out);
    }
  }
  if (auto* items = s.if_contains("items")) SchemaPaths(items->get_object(), prefix + "[]", out);
}

ServerPool EveryField() {
  ServerPool p;
  p.metadata.name = "x";
  auto& t = p.spec.templ;
  t.image = "i";
  t.command = {"c"};
  t.args = {"a"};
  t.env = {{"E", "v"}};
  t.ports = {{"game", 1, "udp"}};
  t.resources = {1.0, 64};
  t.placement.constraints = {"node.role==worker"};
  t.network = "n";
  t.labels = {{"k", "v"}};
  ServerPoolStatus st;
  st.conditions = {{"Ready", "True", "R", "M", "2026-01-01T00:00:00Z"}};
  p.status = st;
  return p;
}

TEST(SchemaConsistency, EveryEncodedFieldIsInTheSchemaAndViceVersa) {
  std::set<std::string> encoded, declared;
  Paths(ToJson(EveryField()), "", encoded);
  SchemaPaths(Schema::ServerPool().openapi().get_object(), "", declared);
  // metadata is ObjectMeta (checked in C++); labels are free-form maps.
  std::erase_if(encoded, [](const std::string& p) {
    return p.starts_with("metadata.") || p == "spec.template.labels.k";
  });
  for (const auto& p : encoded) EXPECT_TRUE(declared.contains(p)) << "not in schema: " << p;
  for (const auto& p : declared) EXPECT_TRUE(encoded.contains(p)) << "not in C++ types: " << p;
}

TEST(SchemaConsistency, DefaultsInTheSchemaMatchTheCppDefaults) {
  json::value doc = {{"apiVersion", kApiVersion},
                     {"kind", kKind},
                     {"metadata", {{"name", "d"}}},
                     {"spec", {{"template", {{"command", json::array{"x"}},
                                             {"ports", json::array{{{"name", "game"}, {"containerPort", 1}}}}}}}}};
  auto errors = Schema::ServerPool().Admit(doc);
  ASSERT_TRUE(errors.empty()) << errors[0].ToString();
  ServerPool cpp;
  cpp.metadata.name = "d";
  cpp.spec.templ.command = {"x"};
  cpp.spec.templ.ports = {{"game", 1, "tcp"}};
  EXPECT_EQ(FromJson(doc), cpp);
}

TEST(SchemaConsistency, EmbeddedCrdIsTheFileInCrds) {
  std::ifstream in(std::string(MM_SOURCE_DIR) + "/crds/serverpools.matchmaker.dev.yaml");
  std::ostringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), EmbeddedCrd());
}

TEST(Schema, RejectsADocumentThatIsNotACrd) {
  EXPECT_THROW(Schema("kind: ConfigMap\n"), std::runtime_error);
}

}  // namespace
}  // namespace mm::api
