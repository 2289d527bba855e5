#include "api/v1alpha1/yaml_json.h"

#include "api/reservation/client_id.h"

#include <libfyaml.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <memory>
#include <optional>

namespace mm::api {
namespace json = boost::json;
namespace {

constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxNodes = 1'000'000;
// Nodes that aliases may add by copying (a pool file needs a handful): an
// alias bomb stops long before it costs time or memory.
constexpr std::size_t kMaxAliasNodes = 10'000;

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

// One collection being built: where it is, and what it still waits for.
struct Frame {
  json::value value;                   // an array or an object
  std::string path;
  std::optional<std::string> key;      // a mapping's key waiting for its value
  int key_line = 0;
  std::string anchor;                  // "" when none
  std::size_t nodes_at_start = 0;
};

struct Anchor {
  json::value value;
  std::size_t nodes = 0;
};

// Builds Boost.JSON documents from libfyaml's event stream: no node tree of
// the parser's own, aliases copied under a node budget (alias bombs fail
// before they expand), nesting bounded, the line of every field kept.
class Builder {
 public:
  Builder(std::string_view source, std::string_view input, YamlParseResult& result)
      : source_(source), input_(input), result_(result) {}

  // False once an error is recorded (the rest of the stream is dropped).
  bool On(fy_event* ev) {
    int line = fy_event_start_mark(ev) ? fy_event_start_mark(ev)->line + 1 : 0;
    switch (ev->type) {
      case FYET_DOCUMENT_START:
        doc_ = YamlDocument{};
        doc_.line = line;
        nodes_ = 0;
        alias_nodes_ = 0;
        anchors_.clear();
        return true;
      case FYET_DOCUMENT_END:
        if (!root_.is_null()) {
          doc_.value = std::move(root_);
          result_.documents.push_back(std::move(doc_));
        }
        root_ = nullptr;
        return true;
      case FYET_MAPPING_START:
      case FYET_SEQUENCE_START: {
        bool map = ev->type == FYET_MAPPING_START;
        if (!frames_.empty() && frames_.back().value.is_object() && !frames_.back().key) {
          return Fail(line, frames_.back().path, "mapping keys must be scalars");
        }
        if (frames_.size() >= kMaxDepth) return Fail(line, ChildPath(), "nested deeper than 64 levels");
        if (!Count(1, line)) return false;
        Frame f;
        f.value = map ? json::value(json::object{}) : json::value(json::array{});
        f.path = ChildPath();
        doc_.lines.emplace(f.path, line);
        fy_token* anchor = map ? ev->mapping_start.anchor : ev->sequence_start.anchor;
        f.anchor = Text(anchor);
        f.nodes_at_start = nodes_;
        frames_.push_back(std::move(f));
        return true;
      }
      case FYET_MAPPING_END:
      case FYET_SEQUENCE_END: {
        Frame f = std::move(frames_.back());
        frames_.pop_back();
        if (!f.anchor.empty()) anchors_[f.anchor] = Anchor{f.value, nodes_ - f.nodes_at_start};
        return Place(std::move(f.value), line);
      }
      case FYET_SCALAR: {
        std::string text;
        if (!ScalarText(ev->scalar.value, text)) return Fail(line, ChildPath(), text);
        json::value v = fy_token_scalar_style(ev->scalar.value) == FYSS_PLAIN && !StringTag(ev->scalar.tag)
                            ? ResolvePlain(text)
                            : json::value(json::string(text));
        if (!frames_.empty() && frames_.back().value.is_object() && !frames_.back().key) {
          return Key(std::move(text), line);  // keys are used as written
        }
        if (!Count(1, line)) return false;
        std::string anchor = Text(ev->scalar.anchor);
        if (!anchor.empty()) anchors_[anchor] = Anchor{v, 1};
        return Place(std::move(v), line);
      }
      case FYET_ALIAS: {
        std::string name = Text(ev->alias.anchor);
        auto it = anchors_.find(name);
        if (it == anchors_.end()) return Fail(line, ChildPath(), "unknown alias *" + name);
        if (!frames_.empty() && frames_.back().value.is_object() && !frames_.back().key) {
          if (!it->second.value.is_string()) return Fail(line, frames_.back().path, "mapping keys must be scalars");
          return Key(std::string(it->second.value.get_string()), line);
        }
        // Counted before it is copied: an alias bomb stops here.
        alias_nodes_ += it->second.nodes;
        if (alias_nodes_ > kMaxAliasNodes) {
          return Fail(line, ChildPath(), "aliases expand to over 10,000 nodes (an alias bomb?)");
        }
        if (!Count(it->second.nodes, line)) return false;
        return Place(json::value(it->second.value), line);
      }
      default:
        return true;
    }
  }

  bool Fail(int line, const std::string& path, std::string msg) {
    result_.errors.push_back(FieldError{std::string(source_), line, path, std::move(msg)});
    return false;
  }

 private:
  // A scalar's value. libfyaml 0.7.12 leaks the text buffer of a
  // single-quoted scalar holding four or more '' escapes (its atom
  // iterator's grown chunk array; fixed upstream after 0.7.12, found by
  // fuzz/pool_decode_fuzz.cc): such a scalar is unescaped here from its
  // source text, which YAML 1.2 7.3.2 makes exact on one line ('' -> ').
  // False with `out` the error for one that spans lines.
  bool ScalarText(fy_token* t, std::string& out) const {
    if (t && fy_token_scalar_style(t) == FYSS_SINGLE_QUOTED) {
      const fy_mark* a = fy_token_start_mark(t);
      const fy_mark* b = fy_token_end_mark(t);
      // The marks bound the content: the quotes are just outside them.
      if (a && b && a->input_pos >= 1 && a->input_pos <= b->input_pos && b->input_pos < input_.size() &&
          input_[a->input_pos - 1] == '\'' && input_[b->input_pos] == '\'') {
        std::string_view raw = input_.substr(a->input_pos, b->input_pos - a->input_pos);
        if (raw.find("''") != std::string_view::npos) {
          if (raw.find_first_of("\r\n") != std::string_view::npos) {
            out = "a single-quoted string with '' escapes must be on one line (or use a double-quoted one)";
            return false;
          }
          out.clear();
          for (std::size_t i = 0; i < raw.size(); ++i) {
            out.push_back(raw[i]);
            if (raw[i] == '\'' && i + 1 < raw.size() && raw[i + 1] == '\'') ++i;
          }
          return true;
        }
      }
    }
    out = Text(t);
    return true;
  }

  static std::string Text(fy_token* t) {
    if (!t) return "";
    std::size_t len = 0;
    const char* p = fy_token_get_text(t, &len);
    return p ? std::string(p, len) : std::string();
  }

  static bool StringTag(fy_token* tag) {
    if (!tag) return false;
    std::string text = Text(tag);
    return text == "!" || text == "!!str" || text == "tag:yaml.org,2002:str" || text == "<tag:yaml.org,2002:str>" ||
           text == "!<tag:yaml.org,2002:str>";
  }

  bool Count(std::size_t n, int line) {
    nodes_ += n;
    if (nodes_ > kMaxNodes) return Fail(line, ChildPath(), "document too large (over 1M nodes; alias bomb?)");
    return true;
  }

  // The path of the node that comes next.
  std::string ChildPath() const {
    if (frames_.empty()) return "";
    const Frame& f = frames_.back();
    if (f.value.is_object()) return JoinPath(f.path, f.key.value_or(""));
    return JoinPath(f.path, f.value.get_array().size());
  }

  bool Key(std::string key, int line) {
    Frame& f = frames_.back();
    if (f.value.get_object().contains(key)) {
      return Fail(line, JoinPath(f.path, key), "duplicate key \"" + key + "\"");
    }
    f.key = std::move(key);
    f.key_line = line;
    return true;
  }

  bool Place(json::value v, int line) {
    if (frames_.empty()) {
      root_ = std::move(v);
      doc_.lines.emplace("", line);
      return true;
    }
    Frame& f = frames_.back();
    if (f.value.is_object()) {
      std::string child = JoinPath(f.path, *f.key);
      // Point at the key: where a user looks for a block-style field.
      doc_.lines[child] = f.key_line;
      f.value.get_object().emplace(*f.key, std::move(v));
      f.key.reset();
    } else {
      doc_.lines.emplace(JoinPath(f.path, f.value.get_array().size()), line);
      f.value.get_array().push_back(std::move(v));
    }
    return true;
  }

  std::string_view source_;
  std::string_view input_;  // the text parsed (marks index into it)
  YamlParseResult& result_;
  YamlDocument doc_;
  json::value root_;
  std::vector<Frame> frames_;
  std::map<std::string, Anchor> anchors_;
  std::size_t nodes_ = 0;
  std::size_t alias_nodes_ = 0;
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
  // YAML is Unicode. libfyaml 0.7.12 loops for ever on some invalid UTF-8
  // (the two bytes "%\x93", found by fuzz/pool_decode_fuzz.cc): it never
  // sees any.
  if (std::size_t ok = reservation::ValidUtf8Prefix(text); ok != text.size()) {
    int line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(ok), '\n'));
    result.errors.push_back(FieldError{std::string(source), line, "", "invalid YAML: not UTF-8 (byte " +
                                                                          std::to_string(ok + 1) + ")"});
    return result;
  }
  // Diagnostics are collected, never printed.
  fy_diag_cfg dcfg;
  fy_diag_cfg_default(&dcfg);
  dcfg.fp = nullptr;
  dcfg.output_fn = [](fy_diag*, void*, const char*, size_t) {};
  dcfg.colorize = false;
  dcfg.show_source = false;  // nobody reads it; formatting it is libfyaml's most fragile path
  std::unique_ptr<fy_diag, void (*)(fy_diag*)> diag(fy_diag_create(&dcfg), fy_diag_destroy);
  if (!diag) {
    result.errors.push_back(FieldError{std::string(source), 0, "", "invalid YAML: cannot start the parser"});
    return result;
  }
  fy_diag_set_collect_errors(diag.get(), true);
  fy_parse_cfg cfg{};
  cfg.flags = static_cast<fy_parse_cfg_flags>(FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_DEFAULT_VERSION_1_2);
  cfg.diag = diag.get();
  std::unique_ptr<fy_parser, void (*)(fy_parser*)> parser(fy_parser_create(&cfg), fy_parser_destroy);
  if (!parser || fy_parser_set_string(parser.get(), text.data(), text.size()) != 0) {
    result.errors.push_back(FieldError{std::string(source), 0, "", "invalid YAML: cannot start the parser"});
    return result;
  }
  Builder builder(source, text, result);
  bool ok = true;
  while (fy_event* ev = fy_parser_parse(parser.get())) {
    ok = builder.On(ev);
    fy_parser_event_free(parser.get(), ev);
    if (!ok) return result;
  }
  if (fy_parser_get_stream_error(parser.get())) {
    result.documents.clear();
    void* it = nullptr;
    const fy_diag_error* err = fy_diag_errors_iterate(diag.get(), &it);
    int line = err && err->line > 0 ? err->line : 0;  // libfyaml counts lines from 1 here
    std::string msg = err && err->msg ? err->msg : "syntax error";
    result.errors.push_back(FieldError{std::string(source), line, "", "invalid YAML: " + msg});
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
