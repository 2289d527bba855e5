// The client API handler through message.h, without sockets: a fake
// allocator records what it was asked and answers as told.

#include "operator/apiserver/client_api.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <optional>

#include "operator/allocate/allocator.h"

namespace mm::apiserver {
namespace {

using allocate::Result;

class FakeAllocator : public allocate::Allocation {
 public:
  void Allocate(allocate::Request request, std::function<void(Result)> done) override {
    asked.push_back(request);
    if (hold) {
      held = std::move(done);  // answers later, like a handshake
      return;
    }
    done(answer);
  }
  bool Cancel(const std::string& client) override {
    cancelled.push_back(client);
    return cancel_ok;
  }
  Result Lookup(const std::string&) const override { return answer; }

  Result answer;
  bool hold = false;
  bool cancel_ok = true;
  std::function<void(Result)> held;
  std::vector<allocate::Request> asked;
  std::vector<std::string> cancelled;
};

http::Request Req(std::string method, std::string target, std::string client = "alice") {
  http::Request r;
  r.method = std::move(method);
  r.target = target;
  auto q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  if (!client.empty()) r.headers.push_back({"Authorization", client});
  return r;
}

struct Fixture {
  FakeAllocator alloc;
  std::unique_ptr<Authorizer> auth = HeaderAuthorizer();
  ClientApi api{alloc, *auth};
  std::optional<http::Response> Call(http::Request req) {
    std::optional<http::Response> out;
    api.Handle(std::move(req), [&out](http::Response r) { out = std::move(r); });
    return out;
  }
};

Result Allocated() {
  Result r;
  r.kind = Result::Kind::kAllocated;
  r.pool = "eu";
  r.instance = "eu-abcde";
  r.address = "10.0.0.1:7777";
  r.ports = {{"game", 7777}};
  return r;
}

http::Request WithBody(std::string body) {
  auto r = Req("POST", "/request");
  r.body = std::move(body);
  return r;
}

TEST(ClientApi, RejectsBeforeAsking) {
  struct Case {
    const char* desc;
    http::Request req;
    int status;
  };
  const std::vector<Case> cases = {
      {"other path", Req("POST", "/close"), 404},
      {"other method", Req("PUT", "/request"), 405},
      {"no credential", Req("POST", "/request", ""), 401},
      {"control character in the id", Req("POST", "/request", std::string("a\x01b")), 400},
      {"id over 256 bytes", Req("POST", "/request", std::string(257, 'x')), 400},
      {"malformed wait", Req("POST", "/request?wait=forever"), 400},
      {"wait over a minute", Req("POST", "/request?wait=2m"), 400},
      {"malformed selector", Req("POST", "/request?selector=region"), 400},
      {"pool and selector", Req("POST", "/request?pool=eu&selector=a%3Db"), 400},
      {"body over 4 KiB", WithBody(R"({"metadata":{"x":")" + std::string(4100, 'a') + "\"}}"), 413},
      {"body not JSON", WithBody("{"), 400},
      {"body not an object", WithBody("[1]"), 400},
      {"metadata not an object", WithBody(R"({"metadata": "dust"})"), 400},
      {"an unknown body field", WithBody(R"({"metdata": {}})"), 400},
      {"body nesting past the bound", WithBody(std::string(40, '[') + std::string(40, ']')), 400},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    Fixture f;
    auto r = f.Call(c.req);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status);
    EXPECT_TRUE(f.alloc.asked.empty()) << "the allocator is not asked";
    auto v = boost::json::parse(r->body);
    EXPECT_EQ(v.at("kind"), "Status");
    EXPECT_EQ(v.at("code").as_int64(), c.status);
  }
}

TEST(ClientApi, PassesTheRequestOn) {
  Fixture f;
  f.alloc.answer = Allocated();
  auto r = f.Call(Req("POST", "/request?selector=region%3Deu,mode%3Ddm&wait=1500ms", "bob"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "10.0.0.1:7777");
  ASSERT_EQ(f.alloc.asked.size(), 1u);
  const auto& a = f.alloc.asked.front();
  EXPECT_EQ(a.client, "bob");
  EXPECT_EQ(a.pool, "");
  EXPECT_EQ(a.selector, (std::map<std::string, std::string>{{"region", "eu"}, {"mode", "dm"}}));
  EXPECT_EQ(a.wait, std::chrono::milliseconds(1500));
}

TEST(ClientApi, AnswersEveryResultKind) {
  struct Case {
    const char* desc;
    Result::Kind kind;
    int retry_after;
    int status;
    std::string retry_header;
  };
  const std::vector<Case> cases = {
      {"queued", Result::Kind::kQueued, 1, 202, "1"},
      {"queued, longer retry", Result::Kind::kQueued, 2, 202, "2"},
      {"unknown pool", Result::Kind::kNotFound, 1, 404, ""},
      {"queue full", Result::Kind::kQueueFull, 1, 429, ""},
      {"not durable yet", Result::Kind::kUnavailable, 1, 503, "1"},
      {"stopping", Result::Kind::kUnavailable, 2, 503, "2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    Fixture f;
    f.alloc.answer.kind = c.kind;
    f.alloc.answer.retry_after_s = c.retry_after;
    f.alloc.answer.message = "why";
    auto r = f.Call(Req("POST", "/request"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status);
    std::string header;
    for (const auto& h : r->headers) {
      if (h.name == "Retry-After") header = h.value;
    }
    EXPECT_EQ(header, c.retry_header);
  }
}

TEST(ClientApi, JsonAnswerAndALaterReply) {
  Fixture f;
  f.alloc.hold = true;
  auto req = Req("POST", "/request?pool=eu", "carol");
  req.headers.push_back({"Accept", "application/json"});
  std::optional<http::Response> late;
  f.api.Handle(std::move(req), [&late](http::Response r) { late = std::move(r); });
  EXPECT_FALSE(late) << "no answer until the allocator answers";
  ASSERT_TRUE(f.alloc.held);
  EXPECT_EQ(f.alloc.asked.front().pool, "eu");
  f.alloc.held(Allocated());  // the handshake ends later
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 200);
  EXPECT_EQ(late->content_type, "application/json");
  auto v = boost::json::parse(late->body);
  EXPECT_EQ(v.at("clientId"), "carol");
  EXPECT_EQ(v.at("pool"), "eu");
  EXPECT_EQ(v.at("instance"), "eu-abcde");
  EXPECT_EQ(v.at("address"), "10.0.0.1:7777");
  EXPECT_EQ(v.at("ports").at("game").as_int64(), 7777);
}

TEST(ClientApi, CancelAndLookup) {
  Fixture f;
  EXPECT_EQ(f.Call(Req("DELETE", "/request"))->status, 200);
  EXPECT_EQ(f.alloc.cancelled, std::vector<std::string>{"alice"});
  f.alloc.cancel_ok = false;
  EXPECT_EQ(f.Call(Req("DELETE", "/request"))->status, 404);
  f.alloc.answer = Allocated();
  auto r = f.Call(Req("GET", "/request"));
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "10.0.0.1:7777");
  EXPECT_TRUE(f.alloc.asked.empty()) << "GET never allocates";
}

}  // namespace
}  // namespace mm::apiserver

namespace mm::apiserver {
namespace {

TEST(ClientApi, MatchMetadataReachesTheAllocatorAndTheAnswer) {
  Fixture f;
  f.alloc.answer = Allocated();
  f.alloc.answer.metadata = R"({"map":"dust"})";
  auto req = Req("POST", "/request");
  req.body = R"({"metadata": {"map": "dust"}})";
  req.headers.push_back({"Accept", "application/json"});
  auto r = f.Call(std::move(req));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(f.alloc.asked.size(), 1u);
  EXPECT_EQ(f.alloc.asked[0].metadata, R"({"map":"dust"})");
  EXPECT_EQ(boost::json::parse(r->body).at("metadata"), boost::json::parse(R"({"map":"dust"})"));
}

TEST(ClientApi, BodiesWithoutMetadataAreAccepted) {
  for (const char* ok : {"", "  \n", "{}", R"({"metadata": null})"}) {
    Fixture f;
    f.alloc.answer = Allocated();
    auto r = f.Call(WithBody(ok));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << "body '" << ok << "'";
    ASSERT_EQ(f.alloc.asked.size(), 1u);
    EXPECT_EQ(f.alloc.asked[0].metadata, "");
  }
}

}  // namespace
}  // namespace mm::apiserver

namespace mm::apiserver {
namespace {

TEST(ClientApi, UnauthorizedCarriesTheBearerChallenge) {
  FakeAllocator alloc;
  auto made = JwtAuthorizer(JwtAlgorithm::kHS256, std::string(32, 's'));
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<Authorizer>>(made));
  auto auth = std::move(std::get<std::unique_ptr<Authorizer>>(made));
  ClientApi api{alloc, *auth};
  std::optional<http::Response> out;
  api.Handle(Req("POST", "/request", ""), [&](http::Response r) { out = std::move(r); });
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 401);
  std::string challenge;
  for (const auto& [k, v] : out->headers) {
    if (k == "WWW-Authenticate") challenge = v;
  }
  EXPECT_EQ(challenge, "Bearer realm=\"matchmaker\"");
  EXPECT_TRUE(alloc.asked.empty());
}

}  // namespace
}  // namespace mm::apiserver
