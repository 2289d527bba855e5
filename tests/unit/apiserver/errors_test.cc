#include "operator/apiserver/errors.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace mm::apiserver {
namespace {

TEST(Errors, OneMappingToKubernetesStatus) {
  struct Case {
    Reason reason;
    int code;
    const char* name;
  };
  const std::vector<Case> cases = {
      {Reason::kBadRequest, 400, "BadRequest"},
      {Reason::kUnauthorized, 401, "Unauthorized"},
      {Reason::kForbidden, 403, "Forbidden"},
      {Reason::kNotFound, 404, "NotFound"},
      {Reason::kMethodNotAllowed, 405, "MethodNotAllowed"},
      {Reason::kConflict, 409, "Conflict"},
      {Reason::kRequestEntityTooLarge, 413, "RequestEntityTooLarge"},
      {Reason::kUnsupportedMediaType, 415, "UnsupportedMediaType"},
      {Reason::kInvalid, 422, "Invalid"},
      {Reason::kTooManyRequests, 429, "TooManyRequests"},
      {Reason::kInternalError, 500, "InternalError"},
      {Reason::kServiceUnavailable, 503, "ServiceUnavailable"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = Error(c.reason, "it \"broke\"\n");
    EXPECT_EQ(r.status, c.code);
    EXPECT_EQ(r.content_type, "application/json");
    auto v = boost::json::parse(r.body);
    EXPECT_EQ(v.at("kind"), "Status");
    EXPECT_EQ(v.at("apiVersion"), "v1");
    EXPECT_EQ(v.at("status"), "Failure");
    EXPECT_EQ(v.at("reason"), c.name);
    EXPECT_EQ(v.at("code").as_int64(), c.code);
    EXPECT_EQ(v.at("message"), "it \"broke\"\n");
    EXPECT_TRUE(r.headers.empty());
  }
}

TEST(Errors, RetryAfterAndCauses) {
  auto r = Error(Reason::kServiceUnavailable, "journal cannot write", 2);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].name, "Retry-After");
  EXPECT_EQ(r.headers[0].value, "2");
  auto inv = Error(Reason::kInvalid, "invalid ServerPool", 0, {"spec.warm: must be >= 0", "spec.x: unknown"});
  auto v = boost::json::parse(inv.body);
  EXPECT_EQ(v.at("details").at("causes").as_array().size(), 2u);
  EXPECT_EQ(v.at("details").at("causes").at(0).at("message"), "spec.warm: must be >= 0");
  EXPECT_EQ(v.at("errors").at(1), "spec.x: unknown");
}

}  // namespace
}  // namespace mm::apiserver
