#pragma once

// The ServerPool schema: the openAPIV3Schema of the CRD in crds/, embedded
// at build time, applied at run time. Thread-safe after construction.

#include <boost/json/value.hpp>
#include <memory>
#include <string>
#include <vector>

#include "api/v1alpha1/types.h"

namespace mm::api {

class Schema {
 public:
  // The schema of crds/serverpools.matchmaker.dev.yaml (parsed once).
  static const Schema& ServerPool();

  // Builds from a CRD document (YAML or JSON). Throws std::runtime_error if it
  // is not a CRD with a v1alpha1 openAPIV3Schema: a build defect, not input.
  explicit Schema(std::string_view crd_yaml);
  ~Schema();

  // Kubernetes-style admission of one document, in place:
  //  1. fields the schema does not declare are errors (strict field
  //     validation; "metadata" is ObjectMeta and checked by the caller),
  //  2. schema defaults are filled in,
  //  3. the result is validated against the schema.
  // Returned errors carry path and message; source and line are the caller's.
  std::vector<FieldError> Admit(boost::json::value& doc) const;

  const boost::json::value& openapi() const { return openapi_; }

 private:
  boost::json::value openapi_;
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

// The embedded text of crds/serverpools.matchmaker.dev.yaml.
std::string_view EmbeddedCrd();

}  // namespace mm::api
