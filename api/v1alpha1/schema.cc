#include "api/v1alpha1/schema.h"

#include <boost/json.hpp>
#include <optional>
#include <stdexcept>
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "api/v1alpha1/yaml_json.h"

namespace mm::api {
namespace json = boost::json;
namespace {

// Edit distance, for "did you mean" on unknown fields.
std::size_t Distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

void CheckUnknown(const json::value& v, const json::object& schema,
                  const std::string& path, std::vector<FieldError>& errors) {
  if (v.is_array()) {
    if (auto* items = schema.if_contains("items"); items && items->is_object()) {
      std::size_t i = 0;
      for (const auto& item : v.get_array()) {
        CheckUnknown(item, items->get_object(), JoinPath(path, i++), errors);
      }
    }
    return;
  }
  if (!v.is_object()) return;
  const auto* props = schema.if_contains("properties");
  const auto* extra = schema.if_contains("additionalProperties");
  if (!props && !extra) return;  // free-form object
  for (const auto& kv : v.get_object()) {
    std::string child = JoinPath(path, kv.key());
    if (child == "metadata") continue;  // ObjectMeta: checked by the decoder
    if (props && props->get_object().contains(kv.key())) {
      CheckUnknown(kv.value(), props->get_object().at(kv.key()).get_object(),
                   child, errors);
    } else if (extra && extra->is_object()) {
      CheckUnknown(kv.value(), extra->get_object(), child, errors);
    } else {
      std::string msg = "unknown field \"" + std::string(kv.key()) + "\"";
      std::string best;
      std::size_t best_d = 3;
      if (props) {
        for (const auto& p : props->get_object()) {
          std::size_t d = Distance(kv.key(), p.key());
          if (d < best_d) best_d = d, best = p.key();
        }
      }
      if (!best.empty()) msg += " (did you mean \"" + best + "\"?)";
      errors.push_back(FieldError{"", 0, child, msg});
    }
  }
}

void ApplyDefaults(json::value& v, const json::object& schema) {
  if (v.is_array()) {
    if (auto* items = schema.if_contains("items"); items && items->is_object()) {
      for (auto& item : v.get_array()) ApplyDefaults(item, items->get_object());
    }
    return;
  }
  if (!v.is_object()) return;
  auto* props = schema.if_contains("properties");
  if (!props) return;
  auto& obj = v.get_object();
  for (const auto& p : props->get_object()) {
    const auto& sub = p.value().get_object();
    if (!obj.contains(p.key())) {
      auto* def = sub.if_contains("default");
      if (!def) continue;
      obj[p.key()] = *def;
    }
    ApplyDefaults(obj[p.key()], sub);
  }
}

// valijson reads formats such as int32 on numbers as strings; Kubernetes
// keeps them as hints. Drop every keyword valijson should not see.
void StripForValijson(json::value& v) {
  if (v.is_array()) {
    for (auto& item : v.get_array()) StripForValijson(item);
    return;
  }
  if (!v.is_object()) return;
  auto& obj = v.get_object();
  if (auto* type = obj.if_contains("type");
      type && type->is_string() && type->get_string() != "string") {
    obj.erase("format");
  }
  obj.erase("default");
  for (auto& kv : obj) StripForValijson(kv.value());
}

// Where a valijson error points: the field path, the schema node and the
// value there. Context ["<root>", "[spec]", "[ports]", "[0]"] walks both.
struct Location {
  std::string path;
  const json::object* schema = nullptr;
  const json::value* value = nullptr;
};

Location Locate(const std::vector<std::string>& context, const json::object& root,
                const json::value& doc) {
  Location loc{"", &root, &doc};
  for (const auto& c : context) {
    if (c == "<root>" || c.size() < 2 || c.front() != '[') continue;
    std::string inner = c.substr(1, c.size() - 2);
    bool index = !inner.empty() &&
                 inner.find_first_not_of("0123456789") == std::string::npos;
    if (inner.size() >= 2 && inner.front() == '"') inner = inner.substr(1, inner.size() - 2);
    const json::object* next = nullptr;
    if (index && loc.value && loc.value->is_array()) {
      loc.path = JoinPath(loc.path, static_cast<std::size_t>(std::stoul(inner)));
      auto i = std::stoul(inner);
      const auto& arr = loc.value->get_array();
      loc.value = i < arr.size() ? &arr[i] : nullptr;
      if (auto* items = loc.schema ? loc.schema->if_contains("items") : nullptr) {
        next = items->if_object();
      }
    } else {
      loc.path = JoinPath(loc.path, inner);
      const json::object* obj = loc.value ? loc.value->if_object() : nullptr;
      loc.value = obj ? obj->if_contains(inner) : nullptr;
      if (loc.schema) {
        if (auto* props = loc.schema->if_contains("properties");
            props && props->get_object().contains(inner)) {
          next = props->get_object().at(inner).if_object();
        } else if (auto* extra = loc.schema->if_contains("additionalProperties")) {
          next = extra->if_object();
        }
      }
    }
    loc.schema = next;
  }
  return loc;
}

std::string Show(const json::value* v) {
  if (!v) return "nothing";
  std::string s = json::serialize(*v);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::string Keyword(const json::object* schema, std::string_view key) {
  if (!schema) return "?";
  auto* v = schema->if_contains(key);
  if (!v) return "?";
  return v->is_string() ? std::string(v->get_string()) : json::serialize(*v);
}

// Rewrites valijson's description into "must be <= 65535 (got 70000)";
// nullopt for the reports valijson repeats on every enclosing node.
std::optional<FieldError> Describe(const std::string& desc, Location loc) {
  auto has = [&](std::string_view text) { return desc.find(text) != std::string::npos; };
  if (has("Failed to validate item #") || has("Failed to validate against schema associated") ||
      has("Failed to validate against additional properties")) {
    return std::nullopt;
  }
  std::string got = " (got " + Show(loc.value) + ")";
  std::string msg = desc;
  if (has("Missing required property '")) {
    auto a = desc.find('\'') + 1;
    return FieldError{"", 0, JoinPath(loc.path, desc.substr(a, desc.find('\'', a) - a)),
                      "required"};
  } else if (has("'type' constraint")) {
    std::string type = Keyword(loc.schema, "type");
    const char* article = (type == "integer" || type == "object" || type == "array") ? "an " : "a ";
    msg = "must be " + std::string(article) + type + got;
  } else if (has("any enum values")) {
    msg = "must be one of " + Keyword(loc.schema, "enum") + got;
  } else if (has("greater than or equal to")) {
    msg = "must be >= " + Keyword(loc.schema, "minimum") + got;
  } else if (has("less than or equal to")) {
    msg = "must be <= " + Keyword(loc.schema, "maximum") + got;
  } else if (has("'pattern' constraint")) {
    msg = "must match " + Keyword(loc.schema, "pattern") + got;
  } else if (has("String should be no more than")) {
    msg = "must be at most " + Keyword(loc.schema, "maxLength") + " characters";
  } else if (has("String should be no fewer than")) {
    msg = "must be at least " + Keyword(loc.schema, "minLength") + " characters";
  } else if (has("Array should contain no fewer than")) {
    msg = "must have at least " + Keyword(loc.schema, "minItems") + " items";
  } else if (has("Array should contain no more than")) {
    msg = "must have at most " + Keyword(loc.schema, "maxItems") + " items";
  }
  return FieldError{"", 0, loc.path, msg};
}

}  // namespace

struct Schema::Compiled {
  valijson::Schema schema;
};

Schema::Schema(std::string_view crd_yaml) : compiled_(new Compiled) {
  auto parsed = ParseYaml(crd_yaml, "crd");
  if (!parsed.errors.empty() || parsed.documents.size() != 1) {
    throw std::runtime_error("CRD: not one valid YAML document");
  }
  const json::value& crd = parsed.documents[0].value;
  const json::value* found = nullptr;
  if (auto* versions = crd.at_pointer("/spec/versions").if_array()) {
    for (const auto& v : *versions) {
      if (v.at("name") == "v1alpha1") {
        found = &v.at_pointer("/schema/openAPIV3Schema");
      }
    }
  }
  if (!found || !found->is_object()) {
    throw std::runtime_error("CRD: no v1alpha1 openAPIV3Schema");
  }
  openapi_ = *found;
  json::value stripped = openapi_;
  StripForValijson(stripped);
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft4);
  valijson::adapters::BoostJsonAdapter adapter(stripped);
  parser.populateSchema(adapter, compiled_->schema);
}

Schema::~Schema() = default;

const Schema& Schema::ServerPool() {
  static const Schema schema(EmbeddedCrd());
  return schema;
}

std::vector<FieldError> Schema::Admit(json::value& doc) const {
  std::vector<FieldError> errors;
  CheckUnknown(doc, openapi_.get_object(), "", errors);
  ApplyDefaults(doc, openapi_.get_object());

  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::BoostJsonAdapter target(doc);
  validator.validate(compiled_->schema, target, &results);
  valijson::ValidationResults::Error e;
  while (results.popError(e)) {
    auto err = Describe(e.description, Locate(e.context, openapi_.get_object(), doc));
    if (err) errors.push_back(std::move(*err));
  }
  return errors;
}

}  // namespace mm::api
