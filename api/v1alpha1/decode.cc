#include "api/v1alpha1/decode.h"

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "api/v1alpha1/codec.h"
#include "api/v1alpha1/schema.h"
#include "api/v1alpha1/yaml_json.h"

namespace mm::api {
namespace json = boost::json;
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

// [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63.
bool IsDns1123Label(std::string_view s) {
  if (s.empty() || s.size() > 63 || !IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) {
    return false;
  }
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

// Empty, or [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])? of at most 63.
bool IsLabelValue(std::string_view s) {
  if (s.empty()) return true;
  if (s.size() > 63 || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// Kubernetes label key: an optional DNS subdomain prefix and '/', then a
// non-empty label value.
bool IsLabelKey(std::string_view k) {
  auto slash = k.find('/');
  std::string_view name = slash == std::string_view::npos ? k : k.substr(slash + 1);
  if (name.empty() || !IsLabelValue(name)) return false;
  if (slash == std::string_view::npos) return true;
  std::string_view prefix = k.substr(0, slash);
  if (prefix.empty() || prefix.size() > 253) return false;
  while (true) {
    auto dot = prefix.find('.');
    if (!IsDns1123Label(prefix.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    prefix = prefix.substr(dot + 1);
  }
}

// ObjectMeta fields we read or tolerate (as Kubernetes would send them).
const std::set<std::string> kMetaFields = {
    "name", "labels", "annotations", "generation", "uid", "creationTimestamp",
    "resourceVersion", "namespace"};

void CheckLabels(const std::map<std::string, std::string>& labels,
                 const std::string& path, std::vector<FieldError>& errors) {
  for (const auto& [k, v] : labels) {
    if (!IsLabelKey(k)) {
      errors.push_back({"", 0, JoinPath(path, k),
                        "invalid label key: a DNS subdomain prefix and '/', then "
                        "at most 63 alphanumerics, '-', '_' or '.'"});
    }
    if (!IsLabelValue(v)) {
      errors.push_back({"", 0, JoinPath(path, k),
                        "invalid label value \"" + v +
                            "\": at most 63 alphanumerics, '-', '_' or '.', "
                            "starting and ending alphanumeric"});
    }
  }
}

void CheckMetadataFields(const json::value& doc, std::vector<FieldError>& errors) {
  const auto* meta = doc.is_object() ? doc.get_object().if_contains("metadata") : nullptr;
  if (!meta || !meta->is_object()) return;  // the schema reports it
  for (const auto& kv : meta->get_object()) {
    if (!kMetaFields.contains(kv.key())) {
      errors.push_back({"", 0, JoinPath("metadata", kv.key()),
                        "unknown field \"" + std::string(kv.key()) + "\""});
    }
  }
  auto expect = [&](std::string_view key, json::kind kind, const char* what) {
    if (auto* f = meta->get_object().if_contains(key); f && f->kind() != kind) {
      errors.push_back({"", 0, JoinPath("metadata", key), std::string("must be ") + what});
    }
  };
  expect("name", json::kind::string, "a string");
  expect("resourceVersion", json::kind::string, "a string");
  expect("labels", json::kind::object, "a map of strings");
  expect("annotations", json::kind::object, "a map of strings");
  for (const char* map : {"labels", "annotations"}) {
    if (auto* f = meta->get_object().if_contains(map); f && f->is_object()) {
      for (const auto& kv : f->get_object()) {
        if (!kv.value().is_string()) {
          errors.push_back({"", 0, JoinPath(JoinPath("metadata", map), kv.key()),
                            "must be a string (quote numbers and booleans)"});
        }
      }
    }
  }
}

std::string Upper(std::string s) {
  for (char& c : s) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return s;
}

}  // namespace

std::vector<FieldError> ValidateSemantics(const ServerPool& p) {
  std::vector<FieldError> errors;
  const auto& name = p.metadata.name;
  if (name.empty()) {
    errors.push_back({"", 0, "metadata.name", "required"});
  } else if (!IsDns1123Label(name)) {
    errors.push_back({"", 0, "metadata.name",
                      "must be a DNS-1123 label: at most 63 lower-case "
                      "alphanumerics or '-', starting and ending alphanumeric"});
  }
  CheckLabels(p.metadata.labels, "metadata.labels", errors);
  const auto& s = p.spec;
  if (s.minInstances > s.maxInstances) {
    errors.push_back({"", 0, "spec.minInstances",
                      "must be <= spec.maxInstances (" + std::to_string(s.maxInstances) + ")"});
  }
  if (s.warm > s.maxInstances) {
    errors.push_back({"", 0, "spec.warm",
                      "must be <= spec.maxInstances (" + std::to_string(s.maxInstances) + ")"});
  }
  const auto& t = s.templ;
  if (t.image.empty() && t.command.empty()) {
    errors.push_back({"", 0, "spec.template",
                      "must set image (docker, swarm) or command (process)"});
  }
  std::set<std::string> ports;
  for (std::size_t i = 0; i < t.ports.size(); ++i) {
    const auto& port = t.ports[i];
    if (!ports.insert(port.name).second) {
      errors.push_back({"", 0, JoinPath(JoinPath("spec.template.ports", i), "name"),
                        "duplicate port name \"" + port.name + "\""});
    }
  }
  std::set<std::string> env;
  for (std::size_t i = 0; i < t.env.size(); ++i) {
    const auto& var = t.env[i].name;
    std::string path = JoinPath(JoinPath("spec.template.env", i), "name");
    if (!env.insert(var).second) {
      errors.push_back({"", 0, path, "duplicate env name \"" + var + "\""});
    }
    bool reserved = var == "MM_CONTROL_PORT" || var == "MM_POOL" || var == "MM_INSTANCE";
    for (const auto& port : t.ports) {
      reserved = reserved || var == "MM_PORT_" + Upper(port.name);
    }
    if (reserved) {
      errors.push_back({"", 0, path, "\"" + var + "\" is set by matchmakerd"});
    }
  }
  CheckLabels(t.labels, "spec.template.labels", errors);
  for (const auto& [k, v] : t.labels) {
    if (k.starts_with("dev.matchmaker.")) {
      errors.push_back({"", 0, JoinPath("spec.template.labels", k),
                        "the dev.matchmaker. prefix is reserved for matchmakerd"});
    }
  }
  return errors;
}

DecodeResult DecodePools(std::string_view text, std::string_view source) {
  DecodeResult result;
  auto parsed = ParseYaml(text, source);
  result.errors = std::move(parsed.errors);
  std::set<std::string> names;
  for (auto& doc : parsed.documents) {
    std::vector<FieldError> errors;
    if (!doc.value.is_object()) {
      errors.push_back({"", 0, "", "a ServerPool must be a mapping"});
    } else {
      errors = Schema::ServerPool().Admit(doc.value);
      CheckMetadataFields(doc.value, errors);
    }
    if (errors.empty()) {
      ServerPool pool = FromJson(doc.value);
      pool.status.reset();  // status is the operator's to write
      errors = ValidateSemantics(pool);
      if (errors.empty() && !names.insert(pool.metadata.name).second) {
        errors.push_back({"", 0, "metadata.name",
                          "pool \"" + pool.metadata.name + "\" is defined twice"});
      }
      if (errors.empty()) result.pools.push_back(std::move(pool));
    }
    for (auto& e : errors) {
      e.source = std::string(source);
      e.line = doc.LineOf(e.path);
      result.errors.push_back(std::move(e));
    }
  }
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const FieldError& a, const FieldError& b) { return a.line < b.line; });
  if (!result.errors.empty()) result.pools.clear();
  return result;
}

DecodeResult DecodePath(const std::string& path) {
  namespace fs = std::filesystem;
  DecodeResult result;
  std::error_code ec;
  std::vector<std::string> files;
  if (fs::is_directory(path, ec)) {
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      auto ext = entry.path().extension().string();
      if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json")) {
        files.push_back(entry.path().string());
      }
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  if (ec) {
    result.errors.push_back({path, 0, "", ec.message()});
    return result;
  }
  std::set<std::string> names;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      result.errors.push_back({file, 0, "", "cannot read file"});
      continue;
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto one = DecodePools(text.str(), file);
    for (auto& e : one.errors) result.errors.push_back(std::move(e));
    for (auto& p : one.pools) {
      if (!names.insert(p.metadata.name).second) {
        result.errors.push_back({file, 0, "metadata.name",
                                 "pool \"" + p.metadata.name + "\" is defined twice"});
      }
      result.pools.push_back(std::move(p));
    }
  }
  if (!result.errors.empty()) result.pools.clear();
  return result;
}

}  // namespace mm::api
