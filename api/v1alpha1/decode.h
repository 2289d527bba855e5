#pragma once

// From user text to validated ServerPools: YAML syntax, strict fields,
// schema defaults and checks (crds/), then the cross-field rules a schema
// cannot say. Never throws on user input.

#include <string_view>
#include <vector>

#include "api/v1alpha1/types.h"

namespace mm::api {

struct DecodeResult {
  std::vector<ServerPool> pools;   // only when errors is empty
  std::vector<FieldError> errors;  // every problem found, in file order
  bool ok() const { return errors.empty(); }
};

// Decodes every document of `text` (YAML or JSON; "---" separates pools).
// `source` names the input in errors. All-or-nothing: any error, no pools.
DecodeResult DecodePools(std::string_view text, std::string_view source);

// The rules beyond the schema: metadata.name is a DNS-1123 label, label keys
// and values are Kubernetes-shaped, minInstances <= maxInstances,
// warm <= maxInstances, port names unique, env names unique and not MM_*,
// the template names an image or a command.
std::vector<FieldError> ValidateSemantics(const ServerPool& pool);

// Reads a file or every *.yaml, *.yml and *.json file in a directory (sorted,
// not recursive). I/O problems are errors too.
DecodeResult DecodePath(const std::string& path);

}  // namespace mm::api
