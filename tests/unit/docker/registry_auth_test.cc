// Registry credentials: Docker's config.json format, image -> registry, the
// X-Registry-Auth header the engine decodes.
#include "operator/backend/registry_auth.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <boost/json.hpp>
#include <vector>

namespace mm::backend {
namespace {
namespace json = boost::json;

TEST(RegistryAuth, ImagesNameTheirRegistry) {
  struct Case {
    const char* image;
    const char* host;
    const char* name;
    const char* tag;
  };
  for (const Case& c : std::vector<Case>{
           {"nginx", "docker.io", "nginx", "latest"},
           {"library/nginx:1.25", "docker.io", "library/nginx", "1.25"},
           {"127.0.0.1:5000/gs", "127.0.0.1:5000", "127.0.0.1:5000/gs", "latest"},
           {"127.0.0.1:5000/team/gs:v2", "127.0.0.1:5000", "127.0.0.1:5000/team/gs", "v2"},
           {"localhost/gs:dev", "localhost", "localhost/gs", "dev"},
           {"Registry.Example.com/gs@sha256:abc", "registry.example.com", "Registry.Example.com/gs", "sha256:abc"},
           {"matchmaker/gameserver:dev", "docker.io", "matchmaker/gameserver", "dev"},
       }) {
    SCOPED_TRACE(c.image);
    EXPECT_EQ(RegistryHost(c.image), c.host);
    auto ref = SplitImage(c.image);
    EXPECT_EQ(ref.name, c.name);
    EXPECT_EQ(ref.tag, c.tag);
  }
  EXPECT_EQ(NormalizeRegistryKey("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(NormalizeRegistryKey("http://127.0.0.1:5000"), "127.0.0.1:5000");
}

TEST(RegistryAuth, ReadsAuthOrUsernameAndPassword) {
  // "alice:s3cr:et" in base64, written without its padding as some tools do.
  auto parsed = RegistryAuth::Parse(R"({"auths": {
      "https://127.0.0.1:5000/v2/": {"auth": "YWxpY2U6czNjcjpldA"},
      "registry.example.com": {"username": "bob", "password": "pw"},
      "https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"}}})");
  ASSERT_EQ(parsed.index(), 0u) << std::get<1>(parsed);
  const auto& auth = std::get<RegistryAuth>(parsed);
  EXPECT_EQ(auth.size(), 3u);
  const Credential* c = auth.For("127.0.0.1:5000/gs:dev");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->username, "alice");
  EXPECT_EQ(c->password, "s3cr:et");  // the first colon splits
  ASSERT_NE(auth.For("registry.example.com/x"), nullptr);
  EXPECT_EQ(auth.For("registry.example.com/x")->username, "bob");
  EXPECT_EQ(auth.For("nginx")->username, "hub");
  EXPECT_EQ(auth.For("127.0.0.1:5001/gs"), nullptr);

  // The header decodes (base64url) to the engine's AuthConfig.
  std::string h = auth.Header("127.0.0.1:5000/gs:dev");
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h.find_first_of("+/"), std::string::npos);
  for (auto& ch : h) ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
  std::string plain(h.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(plain.data()),
                          reinterpret_cast<const unsigned char*>(h.data()), static_cast<int>(h.size()));
  ASSERT_GT(n, 0);
  plain.resize(plain.find('}') + 1);
  auto doc = json::parse(plain);
  EXPECT_EQ(doc.at("username").as_string(), "alice");
  EXPECT_EQ(doc.at("password").as_string(), "s3cr:et");
  EXPECT_EQ(doc.at("serveraddress").as_string(), "127.0.0.1:5000");
  EXPECT_EQ(auth.Header("127.0.0.1:5001/gs"), "");
}

TEST(RegistryAuth, MalformedFilesAreRefusedWithoutTheSecret) {
  struct Case {
    const char* text;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {"", "not JSON"},
           {"[1]", "not a JSON object"},
           {R"({"credsStore": "desktop"})", "no \"auths\" object"},
           {R"({"auths": []})", "\"auths\" is not an object"},
           {R"({"auths": {"r.io": "x"}})", "auths[\"r.io\"]: not an object"},
           {R"({"auths": {"r.io": {"auth": "!!!secret!!!"}}})", "auths[\"r.io\"].auth: not base64"},
           {R"({"auths": {"r.io": {"auth": "bm9jb2xvbg=="}}})", "not base64 of user:password"},
           {R"({"auths": {"r.io": {"username": "u"}}})", "needs \"auth\" or \"username\" and \"password\""},
           {R"({"auths": {"r.io": {"identitytoken": "t"}}})", "identity tokens and credential helpers are not supported"},
           {R"({"auths": {"r.io": {"username": "", "password": "p"}}})", "empty username"},
       }) {
    SCOPED_TRACE(c.text);
    auto parsed = RegistryAuth::Parse(c.text);
    ASSERT_EQ(parsed.index(), 1u);
    const auto& err = std::get<std::string>(parsed);
    EXPECT_NE(err.find(c.error), std::string::npos) << err;
    EXPECT_EQ(err.find("secret"), std::string::npos) << err;
  }
  auto missing = RegistryAuth::Load("/nonexistent/config.json");
  ASSERT_EQ(missing.index(), 1u);
  EXPECT_EQ(std::get<std::string>(missing), "cannot read /nonexistent/config.json");
}

}  // namespace
}  // namespace mm::backend

namespace mm::backend {
namespace {

TEST(PullQueue, OnePullPerImageWhateverWaitsOnIt) {
  PullQueue q;
  std::vector<std::string> heard;
  auto waiter = [&](std::string tag) { return [&heard, tag](std::string err) { heard.push_back(tag + ":" + err); }; };
  auto a = q.Join("reg:5000/gs:1", "eu", waiter("a"));
  EXPECT_TRUE(a.start);
  EXPECT_TRUE(a.new_pool);
  auto b = q.Join("reg:5000/gs:1", "eu", waiter("b"));  // same image, same pool: waits, no new event
  EXPECT_FALSE(b.start);
  EXPECT_FALSE(b.new_pool);
  auto c = q.Join("reg:5000/gs:1", "us", waiter("c"));  // another pool joins the same pull
  EXPECT_FALSE(c.start);
  EXPECT_TRUE(c.new_pool);
  auto d = q.Join("reg:5000/gs:2", "eu", waiter("d"));  // another image: its own pull
  EXPECT_TRUE(d.start);
  EXPECT_EQ(q.in_flight(), 2u);

  auto done = q.Finish("reg:5000/gs:1");
  EXPECT_EQ(done.pools, (std::set<std::string>{"eu", "us"}));
  for (auto& w : done.waiters) w("unauthorized");
  EXPECT_EQ(heard, (std::vector<std::string>{"a:unauthorized", "b:unauthorized", "c:unauthorized"}));
  EXPECT_EQ(q.in_flight(), 1u);
  EXPECT_TRUE(q.Finish("reg:5000/gs:1").waiters.empty());  // already forgotten
  // After a pull ended, the next ask starts a new one.
  EXPECT_TRUE(q.Join("reg:5000/gs:1", "eu", waiter("e")).start);
}

}  // namespace
}  // namespace mm::backend
