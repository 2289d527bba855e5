// mmctl against a server that sends whatever it likes: a proxy's HTML,
// truncated or malformed JSON, invalid UTF-8, fields of the wrong types.
// mmctl answers each with a clear error and exit 1 (or prints what it
// could), and never aborts. The hostile server is real HTTP on 127.0.0.1.

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <mutex>
#include <thread>

#include "operator/http/server.h"
#include "tests/support/process.h"

namespace mm::testing {
namespace {

using namespace std::chrono_literals;

class HostileServer {
 public:
  HostileServer()
      : server_(io_, http::ServerOptions{.address = "127.0.0.1", .port = 0},
                [this](http::Request&&, http::Reply reply) {
                  std::lock_guard lock(mu_);
                  reply(http::Response{.content_type = "application/json", .body = body_});
                }) {
    if (auto err = server_.Start()) ADD_FAILURE() << *err;
    thread_ = std::thread([this] { io_.run(); });
  }
  ~HostileServer() {
    boost::asio::post(io_, [this] { server_.Stop(); });
    io_.stop();
    thread_.join();
  }
  void Answer(std::string body) {
    std::lock_guard lock(mu_);
    body_ = std::move(body);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }

 private:
  boost::asio::io_context io_;
  std::mutex mu_;
  std::string body_;
  http::Server server_;
  std::thread thread_;
};

TEST(MmctlHostile, NeverAbortsOnAnyAnswer) {
  HostileServer server;
  const std::vector<std::string> bodies = {
      "<html>502 Bad Gateway</html>",
      "",
      "{",
      "[]",
      "{}",
      "null",
      R"({"items": 5})",
      R"({"items": [7, "x", null]})",
      R"({"items": [{"metadata": 7}]})",
      R"({"items": [{}]})",
      R"({"metadata": {"name": "x"}, "spec": {"warm": "three"}, "status": {"instances": "many", "conditions": 1}})",
      R"({"metadata": {"name": "x", "creationTimestamp": 5}, "spec": {"template": {"command": [1]}}})",
      R"({"items": [{"name": "i", "pool": "p", "state": "Ready", "ports": {"game": "x"}, "reservations": 3}]})",
      "{\"items\": [{\"name\": \"\xff\xfe\", \"state\": \"\xc3\"}]}",
      std::string(100000, '[') + std::string(100000, ']'),
      R"({"items": [{"metadata": {"name": "x"}, "spec": {"warm": 1e308, "maxInstances": -1}}]})",
  };
  const std::vector<std::vector<std::string>> commands = {
      {"get", "pools"},        {"get", "pools", "x"},        {"get", "pools", "-o", "wide"},
      {"get", "instances"},    {"get", "instances", "x", "-o", "wide"}, {"describe", "pool", "x"},
      {"delete", "pool", "x"}, {"get", "pools", "-o", "yaml"},
  };
  for (const auto& body : bodies) {
    server.Answer(body);
    for (const auto& cmd : commands) {
      std::vector<std::string> argv = {BinPath("mmctl"), "--server", server.url()};
      argv.insert(argv.end(), cmd.begin(), cmd.end());
      auto r = RunCommand(argv, 30s);
      std::string what = cmd[0] + " " + cmd[1] + " on " + body.substr(0, 60);
      ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << what << ": exit " << r.exit_code << "\n" << r.err;
      if (r.exit_code == 1) {
        EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << what << ": " << r.err;
      }
    }
  }
}

}  // namespace
}  // namespace mm::testing
