#pragma once

// The one place where an API error becomes an HTTP answer. Handlers say
// what went wrong (a Kubernetes Status reason); this maps it to the status
// code and the body Kubernetes clients expect:
//   {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
//    "message":...,"reason":...,"code":...}

#include <string>
#include <string_view>
#include <vector>

#include "operator/http/message.h"

namespace mm::apiserver {

enum class Reason {
  kBadRequest,             // 400 malformed request or client id
  kUnauthorized,           // 401 rejected credential
  kForbidden,              // 403
  kNotFound,               // 404
  kMethodNotAllowed,       // 405
  kConflict,               // 409 being deleted, already exists, stale resourceVersion
  kExpired,                // 410 a watch's resourceVersion is too old
  kRequestEntityTooLarge,  // 413
  kUnsupportedMediaType,   // 415
  kInvalid,                // 422 schema or field errors
  kTooManyRequests,        // 429 queue full
  kInternalError,          // 500
  kServiceUnavailable,     // 503 not ready, journal cannot write (Retry-After)
};

int StatusCode(Reason reason);
std::string_view ReasonName(Reason reason);  // Kubernetes' StatusReason

// `causes`: field errors (422), listed as details.causes and `errors`.
// `retry_after_s` > 0 adds a Retry-After header.
http::Response Error(Reason reason, std::string_view message, int retry_after_s = 0,
                     const std::vector<std::string>& causes = {});

}  // namespace mm::apiserver
