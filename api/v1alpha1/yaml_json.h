#pragma once

// YAML <-> Boost.JSON, with the line of every node kept so that schema
// errors can point into the user's file. JSON input is YAML too.

#include <boost/json/value.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/v1alpha1/types.h"

namespace mm::api {

struct YamlDocument {
  boost::json::value value;
  int line = 0;                      // 1-based line where the document starts
  std::map<std::string, int> lines;  // field path ("spec.warm") -> 1-based line

  // Line of `path`, or of its nearest ancestor that has one.
  int LineOf(std::string_view path) const;
};

struct YamlParseResult {
  std::vector<YamlDocument> documents;  // empty documents are skipped
  std::vector<FieldError> errors;       // syntax errors (with their line)
};

// Plain scalars resolve as in YAML 1.2's core schema (null, bool, int,
// float, else string); quoted scalars are strings. Duplicate keys, non-scalar
// keys, and documents nested deeper than 64 or larger than 1M nodes are
// errors (alias bombs included).
YamlParseResult ParseYaml(std::string_view text, std::string_view source);

// Block-style YAML of `value`; strings that would read back as another
// type are quoted, so ParseYaml(ToYaml(v)) == v.
std::string ToYaml(const boost::json::value& value);

// Appends ".key" or "[i]" to a field path.
std::string JoinPath(std::string_view parent, std::string_view key);
std::string JoinPath(std::string_view parent, std::size_t index);

}  // namespace mm::api
