#pragma once

// ServerPool <-> JSON and YAML. Encoding writes every defaulted field, so
// FromJson(ToJson(p)) == p exactly. Pure functions, thread-safe.

#include <boost/json/value.hpp>
#include <string>

#include "api/v1alpha1/types.h"

namespace mm::api {

boost::json::value ToJson(const ServerPool& pool);
boost::json::value ToJson(const Template& templ);
boost::json::value ToJson(const ServerPoolStatus& status);

// Reads an admitted document (see Schema::Admit); absent fields keep their
// C++ defaults, values of the wrong type are ignored rather than thrown on.
ServerPool FromJson(const boost::json::value& doc);

std::string ToYaml(const ServerPool& pool);
std::string ToJsonText(const ServerPool& pool);

// Identifies a template version: 10 hex digits of a 64-bit FNV-1a hash of
// the template's canonical JSON (fixed key order, defaults filled in), so it
// is stable across key order and spelled-out defaults.
std::string TemplateHash(const Template& templ);

}  // namespace mm::api
