#include "api/v1alpha1/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <charconv>
#include <cmath>

namespace mm::api {
namespace json = boost::json;
namespace {

constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxNodes = 1'000'000;

bool IsOneOf(std::string_view s, std::initializer_list<std::string_view> set) {
  for (auto v : set) {
    if (s == v) return true;
  }
  return false;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Consumes [0-9]* from `i`; returns how many.
std::size_t Digits(std::string_view s, std::size_t& i) {
  std::size_t start = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  return i - start;
}

// [-+]?[0-9]+
bool IsInt(std::string_view s) {
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  return Digits(s, i) > 0 && i == s.size();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsFloat(std::string_view s) {
  std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  std::size_t whole = Digits(s, i);
  std::size_t frac = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    frac = Digits(s, i);
    if (whole == 0 && frac == 0) return false;
  } else if (whole == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (Digits(s, i) == 0) return false;
  }
  return i == s.size();
}

// YAML 1.2 core schema resolution of a plain scalar.
json::value ResolvePlain(const std::string& s) {
  if (IsOneOf(s, {"", "~", "null", "Null", "NULL"})) return nullptr;
  if (IsOneOf(s, {"true", "True", "TRUE"})) return true;
  if (IsOneOf(s, {"false", "False", "FALSE"})) return false;
  if (IsInt(s)) {
    std::int64_t v = 0;
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    auto [p, ec] = std::from_chars(begin, s.data() + s.size(), v);
    if (ec == std::errc{} && p == s.data() + s.size()) return v;
    return std::strtod(s.c_str(), nullptr);  // out of int64 range
  }
  if (IsFloat(s)) {
    double v = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(v)) return v;
  }
  return json::string(s);
}

bool IsStringTag(const std::string& tag) {
  return tag == "!" || tag == "tag:yaml.org,2002:str" || tag == "!!str";
}

class Converter {
 public:
  Converter(YamlDocument& doc, std::string_view source,
            std::vector<FieldError>& errors)
      : doc_(doc), source_(source), errors_(errors) {}

  bool Convert(const YAML::Node& node, json::value& out,
               const std::string& path, int depth) {
    if (++nodes_ > kMaxNodes) {
      return Fail(node, path, "document too large (over 1M nodes; alias bomb?)");
    }
    if (depth > kMaxDepth) return Fail(node, path, "nested deeper than 64 levels");
    doc_.lines.emplace(path, node.Mark().line + 1);
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out = nullptr;
        return true;
      case YAML::NodeType::Scalar:
        out = IsStringTag(node.Tag()) ? json::value(json::string(node.Scalar()))
                                      : ResolvePlain(node.Scalar());
        return true;
      case YAML::NodeType::Sequence: {
        json::array arr;
        arr.reserve(node.size());
        std::size_t i = 0;
        for (const auto& item : node) {
          json::value v;
          if (!Convert(item, v, JoinPath(path, i++), depth + 1)) return false;
          arr.push_back(std::move(v));
        }
        out = std::move(arr);
        return true;
      }
      case YAML::NodeType::Map: {
        json::object obj;
        for (const auto& kv : node) {
          if (!kv.first.IsScalar()) {
            return Fail(kv.first, path, "mapping keys must be scalars");
          }
          const std::string& key = kv.first.Scalar();
          std::string child = JoinPath(path, key);
          if (obj.contains(key)) {
            return Fail(kv.first, child, "duplicate key \"" + key + "\"");
          }
          json::value v;
          if (!Convert(kv.second, v, child, depth + 1)) return false;
          // Point at the key: where a user looks for a block-style field.
          doc_.lines[child] = kv.first.Mark().line + 1;
          obj.emplace(key, std::move(v));
        }
        out = std::move(obj);
        return true;
      }
    }
    return true;
  }

 private:
  bool Fail(const YAML::Node& node, const std::string& path, std::string msg) {
    int line = node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
    errors_.push_back(FieldError{std::string(source_), line, path, std::move(msg)});
    return false;
  }

  YamlDocument& doc_;
  std::string_view source_;
  std::vector<FieldError>& errors_;
  std::size_t nodes_ = 0;
};

void Emit(YAML::Emitter& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out << YAML::Null;
      break;
    case json::kind::bool_:
      out << (v.get_bool() ? "true" : "false");
      break;
    case json::kind::int64:
      out << v.get_int64();
      break;
    case json::kind::uint64:
      out << v.get_uint64();
      break;
    case json::kind::double_: {
      // Keep a decimal point so the value reads back as a float.
      std::string s = json::serialize(v);
      if (s.find_first_of(".eE") == std::string::npos) s += ".0";
      out << s;
      break;
    }
    case json::kind::string: {
      std::string s(v.get_string());
      if (ResolvePlain(s).is_string() && s.find_first_of(":#{}[],&*!|>'\"%@`\n") ==
                                             std::string::npos &&
          s.front() != ' ' && s.back() != ' ' && s.front() != '-' &&
          s.front() != '?') {
        out << s;
      } else {
        out << YAML::DoubleQuoted << s;
      }
      break;
    }
    case json::kind::array:
      if (v.get_array().empty()) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : v.get_array()) Emit(out, item);
      out << YAML::EndSeq;
      break;
    case json::kind::object:
      if (v.get_object().empty()) out << YAML::Flow;
      out << YAML::BeginMap;
      for (const auto& kv : v.get_object()) {
        out << YAML::Key;
        Emit(out, json::string(kv.key()));
        out << YAML::Value;
        Emit(out, kv.value());
      }
      out << YAML::EndMap;
      break;
  }
}

}  // namespace

std::string JoinPath(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string out(parent);
  out += '.';
  out += key;
  return out;
}

std::string JoinPath(std::string_view parent, std::size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

int YamlDocument::LineOf(std::string_view path) const {
  std::string p(path);
  while (true) {
    if (auto it = lines.find(p); it != lines.end()) return it->second;
    if (p.empty()) return line;
    auto cut = p.find_last_of(".[");
    p = cut == std::string::npos ? std::string() : p.substr(0, cut);
  }
}

YamlParseResult ParseYaml(std::string_view text, std::string_view source) {
  YamlParseResult result;
  std::vector<YAML::Node> nodes;
  try {
    nodes = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    int line = e.mark.line >= 0 ? e.mark.line + 1 : 0;
    result.errors.push_back(
        FieldError{std::string(source), line, "", "invalid YAML: " + e.msg});
    return result;
  }
  for (const auto& node : nodes) {
    if (node.IsNull()) continue;
    YamlDocument doc;
    doc.line = node.Mark().line + 1;
    Converter conv(doc, source, result.errors);
    if (!conv.Convert(node, doc.value, "", 0)) continue;
    result.documents.push_back(std::move(doc));
  }
  return result;
}

std::string ToYaml(const json::value& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  Emit(out, value);
  std::string s = out.c_str();
  s += '\n';
  return s;
}

}  // namespace mm::api
