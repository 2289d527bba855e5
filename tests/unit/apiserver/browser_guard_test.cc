#include "operator/apiserver/browser_guard.h"

#include <gtest/gtest.h>

namespace mm::apiserver {
namespace {

http::Request With(std::vector<http::Header> headers) {
  http::Request r;
  r.method = "POST";
  r.path = r.target = "/apis/matchmaker.dev/v1alpha1/serverpools";
  r.headers = std::move(headers);
  return r;
}

TEST(RefuseBrowser, Table) {
  struct Case {
    const char* desc;
    std::vector<http::Header> headers;
    bool refused;
  };
  const std::vector<Case> cases = {
      {"curl, mmctl: no browser headers", {{"Host", "127.0.0.1:3001"}}, false},
      {"no browser headers, any Host (a swarm service name)", {{"Host", "matchmakerd:3001"}}, false},
      {"a page on another site", {{"Host", "127.0.0.1:3001"}, {"Origin", "http://evil.example"}}, true},
      {"cross-site fetch metadata", {{"Host", "127.0.0.1:3001"}, {"Sec-Fetch-Site", "cross-site"}}, true},
      {"another port on localhost is same-site, not same-origin",
       {{"Host", "localhost:3001"}, {"Sec-Fetch-Site", "same-site"}, {"Origin", "http://localhost:8080"}},
       true},
      {"DNS rebinding: same origin by a hostile name",
       {{"Host", "evil.example:3001"}, {"Origin", "http://evil.example:3001"}, {"Sec-Fetch-Site", "same-origin"}},
       true},
      {"the null origin", {{"Host", "127.0.0.1:3001"}, {"Origin", "null"}}, true},
      {"a page served by the admin API itself",
       {{"Host", "127.0.0.1:3001"}, {"Origin", "http://127.0.0.1:3001"}, {"Sec-Fetch-Site", "same-origin"}},
       false},
      {"localhost, case-insensitive", {{"Host", "LocalHost:3001"}, {"Origin", "http://localhost:3001"}}, false},
      {"IPv6 literal", {{"Host", "[::1]:3001"}, {"Origin", "http://[::1]:3001"}}, false},
      {"typed into the address bar", {{"Host", "127.0.0.1:3001"}, {"Sec-Fetch-Site", "none"}}, false},
      {"an allowed name", {{"Host", "mm.internal:3001"}, {"Origin", "http://mm.internal:3001"}}, false},
      {"a browser without Host", {{"Sec-Fetch-Site", "same-origin"}}, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    EXPECT_EQ(RefuseBrowser(With(c.headers), {"mm.internal"}).has_value(), c.refused);
  }
}

TEST(ReadableMediaType, Table) {
  struct Case {
    const char* type;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"application/yaml", true},
      {"application/x-yaml", true},
      {"application/json", true},
      {"Application/JSON; charset=utf-8", true},
      {"text/plain", false},  // what a page can send without a preflight
      {"application/x-www-form-urlencoded", false},
      {"multipart/form-data; boundary=x", false},
      {"application/yamlx", false},
      {"", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.type);
    EXPECT_EQ(ReadableMediaType(With({{"Content-Type", c.type}})), c.ok);
  }
  EXPECT_FALSE(ReadableMediaType(With({})));
}

}  // namespace
}  // namespace mm::apiserver
