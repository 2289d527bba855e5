#include "operator/apiserver/errors.h"

#include <boost/json.hpp>

namespace mm::apiserver {
namespace json = boost::json;

int StatusCode(Reason reason) {
  switch (reason) {
    case Reason::kBadRequest: return 400;
    case Reason::kUnauthorized: return 401;
    case Reason::kForbidden: return 403;
    case Reason::kNotFound: return 404;
    case Reason::kMethodNotAllowed: return 405;
    case Reason::kConflict: return 409;
    case Reason::kExpired: return 410;
    case Reason::kRequestEntityTooLarge: return 413;
    case Reason::kUnsupportedMediaType: return 415;
    case Reason::kInvalid: return 422;
    case Reason::kTooManyRequests: return 429;
    case Reason::kInternalError: return 500;
    case Reason::kServiceUnavailable: return 503;
  }
  return 500;
}

std::string_view ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kBadRequest: return "BadRequest";
    case Reason::kUnauthorized: return "Unauthorized";
    case Reason::kForbidden: return "Forbidden";
    case Reason::kNotFound: return "NotFound";
    case Reason::kMethodNotAllowed: return "MethodNotAllowed";
    case Reason::kConflict: return "Conflict";
    case Reason::kExpired: return "Expired";
    case Reason::kRequestEntityTooLarge: return "RequestEntityTooLarge";
    case Reason::kUnsupportedMediaType: return "UnsupportedMediaType";
    case Reason::kInvalid: return "Invalid";
    case Reason::kTooManyRequests: return "TooManyRequests";
    case Reason::kInternalError: return "InternalError";
    case Reason::kServiceUnavailable: return "ServiceUnavailable";
  }
  return "InternalError";
}

http::Response Error(Reason reason, std::string_view message, int retry_after_s,
                     const std::vector<std::string>& causes) {
  int code = StatusCode(reason);
  json::object status{{"kind", "Status"},      {"apiVersion", "v1"},          {"metadata", json::object{}},
                      {"status", "Failure"},   {"message", message},          {"reason", ReasonName(reason)},
                      {"code", code}};
  if (!causes.empty()) {
    json::array list, detail;
    for (const auto& c : causes) {
      list.emplace_back(c);
      detail.emplace_back(json::object{{"message", c}});
    }
    status["details"] = json::object{{"causes", std::move(detail)}};
    status["errors"] = std::move(list);  // mmctl prints these one per line
  }
  http::Response r{.status = code, .content_type = "application/json", .body = json::serialize(status) + "\n"};
  if (retry_after_s > 0) r.headers.push_back({"Retry-After", std::to_string(retry_after_s)});
  return r;
}

}  // namespace mm::apiserver
