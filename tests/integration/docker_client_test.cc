// The Docker Engine client against a fake engine served on a temporary unix
// socket (and on 127.0.0.1 for tcp://): version negotiation, typed errors,
// chunked bodies, deadlines, connection reuse, a dropped event stream,
// malformed JSON.
#include "operator/docker/client.h"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace mm {
namespace {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;
using Proto = net::generic::stream_protocol;

// One accepted connection of the fake engine, served on its own thread.
class Conn {
 public:
  explicit Conn(Proto::socket s) : socket_(std::move(s)) {}
  void Reply(int status, const std::string& body, bool chunked = false) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
    res.set(bhttp::field::content_type, "application/json");
    res.set("Api-Version", "1.41");
    res.body() = body;
    if (chunked) {
      res.chunked(true);
    } else {
      res.prepare_payload();
    }
    beast::error_code ec;
    bhttp::write(socket_, res, ec);
  }
  // Raw bytes: for streams written piece by piece.
  void Raw(const std::string& bytes) {
    beast::error_code ec;
    net::write(socket_, net::buffer(bytes), ec);
  }
  void Close() {
    closed_ = true;
    beast::error_code ec;
    socket_.shutdown(Proto::socket::shutdown_both, ec);
    socket_.close(ec);
  }
  bool closed() const { return closed_; }
  Proto::socket& socket() { return socket_; }

 private:
  Proto::socket socket_;
  bool closed_ = false;
};

using Handler = std::function<void(const bhttp::request<bhttp::string_body>&, Conn&)>;

class FakeEngine {
 public:
  FakeEngine(Handler handler, bool tcp = false) : handler_(std::move(handler)), acceptor_(io_) {
    if (tcp) {
      net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
      acceptor_.open(Proto(net::ip::tcp::v4()));
      acceptor_.bind(Proto::endpoint(ep));
      auto bound = acceptor_.local_endpoint();
      auto port = ntohs(reinterpret_cast<const sockaddr_in*>(bound.data())->sin_port);
      url_ = "tcp://127.0.0.1:" + std::to_string(port);
    } else {
      path_ = "/tmp/mm-fake-docker-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++) + ".sock";
      std::filesystem::remove(path_);
      net::local::stream_protocol::endpoint ep(path_);
      acceptor_.open(Proto(net::local::stream_protocol()));
      acceptor_.bind(Proto::endpoint(ep));
      url_ = "unix://" + path_;
    }
    acceptor_.listen();
    thread_ = std::thread([this] { Accept(); });
  }
  ~FakeEngine() {
    stopping_ = true;
    beast::error_code ec;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    acceptor_.close(ec);
    thread_.join();
    {
      std::lock_guard lock(mu_);
      for (auto& c : conns_) {
        c->socket().shutdown(Proto::socket::shutdown_both, ec);
      }
    }
    for (auto& t : workers_) t.join();
    if (!path_.empty()) std::filesystem::remove(path_);
  }
  const std::string& url() const { return url_; }
  int connections() const { return connections_; }
  int requests() const { return requests_; }
  bool stopping() const { return stopping_; }

 private:
  void Accept() {
    while (!stopping_) {
      beast::error_code ec;
      Proto::socket s(io_);
      acceptor_.accept(s, ec);
      if (ec) return;
      ++connections_;
      std::lock_guard lock(mu_);
      conns_.push_back(std::make_unique<Conn>(std::move(s)));
      Conn* c = conns_.back().get();
      workers_.emplace_back([this, c] { Serve(*c); });
    }
  }
  void Serve(Conn& c) {
    beast::flat_buffer buf;
    while (!c.closed() && !stopping_) {
      bhttp::request<bhttp::string_body> req;
      beast::error_code ec;
      bhttp::read(c.socket(), buf, req, ec);
      if (ec) return;
      ++requests_;
      handler_(req, c);
    }
  }

  static inline std::atomic<int> counter_{0};
  Handler handler_;
  net::io_context io_;
  net::basic_socket_acceptor<Proto> acceptor_;
  std::string path_, url_;
  std::thread thread_;
  std::mutex mu_;
  std::list<std::unique_ptr<Conn>> conns_;
  std::vector<std::thread> workers_;
  std::atomic<int> connections_{0}, requests_{0};
  std::atomic<bool> stopping_{false};
};

// Answers /version with `version`, everything else with `rest`.
Handler Engine(std::string version, Handler rest) {
  return [version, rest](const auto& req, Conn& c) {
    if (req.target() == "/version") return c.Reply(200, R"({"Version":"fake","ApiVersion":")" + version + R"("})");
    rest(req, c);
  };
}

docker::ClientOptions Options(const std::string& url, std::chrono::milliseconds timeout = 2s) {
  docker::ClientOptions o;
  o.endpoint = std::get<docker::Endpoint>(docker::ParseEndpoint(url));
  o.timeout = timeout;
  o.reconnect_min = 20ms;
  o.reconnect_max = 100ms;
  return o;
}

// Runs one call to completion.
docker::Result CallOnce(docker::Client& client, net::io_context& io, std::string method, std::string target,
                        json::value body = nullptr) {
  std::optional<docker::Result> got;
  client.Call(std::move(method), std::move(target), std::move(body), [&](docker::Result r) { got = std::move(r); });
  io.restart();
  for (int i = 0; i < 2000 && !got; ++i) io.run_for(5ms);
  return got ? *got : docker::Result{docker::Errc::kEngine, 0, nullptr, "test: no answer"};
}

TEST(DockerClient, NegotiatesTheVersionAndPrefixesEveryPath) {
  std::mutex mu;
  std::vector<std::string> seen;
  FakeEngine engine(Engine("1.43", [&](const auto& req, Conn& c) {
    std::lock_guard lock(mu);
    seen.push_back(std::string(req.method_string()) + " " + std::string(req.target()) + " " + req.body());
    c.Reply(201, R"({"Id":"abc","Warnings":[]})");
  }));
  net::io_context io;
  docker::Client client(io, Options(engine.url()));
  auto r = CallOnce(client, io, "POST", "/containers/create?name=x", json::object{{"Image", "busybox"}});
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.body.at("Id").as_string(), "abc");
  EXPECT_EQ(client.api_version(), "1.43");
  std::lock_guard lock(mu);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], R"(POST /v1.43/containers/create?name=x {"Image":"busybox"})");
}

TEST(DockerClient, NewerEnginesAreSpokenToInOurNewestVersionOlderOnesRefused) {
  FakeEngine newer(Engine("1.47", [](const auto& req, Conn& c) { c.Reply(200, "\"" + std::string(req.target()) + "\""); }));
  net::io_context io;
  docker::Client a(io, Options(newer.url()));
  auto r = CallOnce(a, io, "GET", "/info");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.body.as_string(), "/v1.45/info");

  FakeEngine older(Engine("1.40", [](const auto&, Conn& c) { c.Reply(200, "{}"); }));
  docker::Client b(io, Options(older.url()));
  r = CallOnce(b, io, "GET", "/info");
  EXPECT_EQ(r.code, docker::Errc::kUnsupported);
  EXPECT_EQ(r.message, "engine API 1.40 is older than 1.41");
  EXPECT_EQ(older.requests(), 1) << "nothing but /version goes to an engine we cannot speak to";
}

TEST(DockerClient, TypedErrorsFromTheEnginesMessages) {
  FakeEngine engine(Engine("1.41", [](const auto& req, Conn& c) {
    std::string t(req.target());
    if (t.find("/containers/create") != std::string::npos) return c.Reply(404, R"({"message":"No such image: nope:1"})");
    if (t.find("/start") != std::string::npos) return c.Reply(409, R"({"message":"container is marked for removal"})");
    if (t.find("/stop") != std::string::npos) return c.Reply(304, "");
    if (t.find("/json") != std::string::npos) return c.Reply(404, R"({"message":"No such container: zz"})");
    c.Reply(500, R"({"message":"boom"})");
  }));
  net::io_context io;
  docker::Client client(io, Options(engine.url()));
  auto r = CallOnce(client, io, "POST", "/containers/create", json::object{});
  EXPECT_EQ(r.code, docker::Errc::kNoSuchImage);
  EXPECT_EQ(r.message, "No such image: nope:1");
  EXPECT_EQ(CallOnce(client, io, "POST", "/containers/zz/start").code, docker::Errc::kConflict);
  EXPECT_EQ(CallOnce(client, io, "POST", "/containers/zz/stop").code, docker::Errc::kNotModified);
  r = CallOnce(client, io, "GET", "/containers/zz/json");
  EXPECT_EQ(r.code, docker::Errc::kNotFound);
  EXPECT_EQ(r.status, 404);
  r = CallOnce(client, io, "DELETE", "/containers/zz");
  EXPECT_EQ(r.code, docker::Errc::kEngine);
  EXPECT_EQ(r.message, "boom");
}

TEST(DockerClient, ChunkedBodiesAndReusedConnections) {
  FakeEngine engine(Engine("1.41", [](const auto&, Conn& c) {
    c.Reply(200, R"([{"Id":"a"},{"Id":"b"}])", /*chunked=*/true);
  }));
  net::io_context io;
  docker::Client client(io, Options(engine.url()));
  for (int i = 0; i < 5; ++i) {
    auto r = CallOnce(client, io, "GET", "/containers/json");
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_EQ(r.body.as_array().size(), 2u);
  }
  EXPECT_EQ(engine.connections(), 1) << "keep-alive: one connection for /version and five calls";
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST(DockerClient, AnEngineThatClosesIdleConnectionsIsRetriedOnAFreshOne) {
  FakeEngine engine(Engine("1.41", [](const auto&, Conn& c) {
    c.Reply(200, R"({"ok":true})");
    c.Close();  // like an engine (or proxy) that drops idle keep-alive connections
  }));
  net::io_context io;
  docker::Client client(io, Options(engine.url()));
  for (int i = 0; i < 3; ++i) {
    auto r = CallOnce(client, io, "GET", "/info");
    ASSERT_TRUE(r.ok()) << i << ": " << r.message;
  }
}

TEST(DockerClient, ASlowEngineHitsTheDeadline) {
  FakeEngine* self = nullptr;
  FakeEngine engine(Engine("1.41", [&self](const auto&, Conn& c) {
    for (int i = 0; i < 300 && !(self && self->stopping()); ++i) std::this_thread::sleep_for(10ms);
    c.Reply(200, "{}");
  }));
  self = &engine;
  net::io_context io;
  docker::Client client(io, Options(engine.url(), 300ms));
  auto t0 = std::chrono::steady_clock::now();
  auto r = CallOnce(client, io, "GET", "/containers/json");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.code, docker::Errc::kTimeout) << r.message;
  EXPECT_TRUE(r.unavailable());
  EXPECT_LT(took, 2s);
  // A per-call deadline overrides the default.
  std::optional<docker::Result> got;
  client.Call("GET", "/x", nullptr, [&](docker::Result r) { got = r; }, 50ms);
  t0 = std::chrono::steady_clock::now();
  io.restart();
  for (int i = 0; i < 400 && !got; ++i) io.run_for(5ms);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code, docker::Errc::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(DockerClient, MalformedJsonIsABadResponseNotACrash) {
  FakeEngine engine(Engine("1.41", [](const auto& req, Conn& c) {
    if (req.target().ends_with("/truncated")) return c.Reply(200, R"({"Id": "abc", "Names": [)");
    c.Reply(200, "\x01\x02 garbage");
  }));
  net::io_context io;
  docker::Client client(io, Options(engine.url()));
  EXPECT_EQ(CallOnce(client, io, "GET", "/x/truncated").code, docker::Errc::kBadResponse);
  EXPECT_EQ(CallOnce(client, io, "GET", "/y").code, docker::Errc::kBadResponse);

  FakeEngine bad_version([](const auto&, Conn& c) { c.Reply(200, R"({"ApiVersion": 141})"); });
  docker::Client b(io, Options(bad_version.url()));
  auto r = CallOnce(b, io, "GET", "/info");
  EXPECT_EQ(r.code, docker::Errc::kUnsupported);
}

TEST(DockerClient, NoEngineIsUnreachable) {
  net::io_context io;
  docker::Client client(io, Options("unix:///tmp/mm-no-such-engine-" + std::to_string(::getpid()) + ".sock"));
  auto r = CallOnce(client, io, "GET", "/info");
  EXPECT_EQ(r.code, docker::Errc::kUnreachable);
  EXPECT_TRUE(r.unavailable());
  EXPECT_NE(r.message.find("connect"), std::string::npos) << r.message;
}

TEST(DockerClient, SpeaksTcpToo) {
  FakeEngine engine(Engine("1.41", [](const auto& req, Conn& c) {
    c.Reply(200, "\"" + std::string(req[bhttp::field::host]) + "\"");
  }), /*tcp=*/true);
  net::io_context io;
  docker::Client client(io, Options(engine.url()));
  auto r = CallOnce(client, io, "GET", "/info");
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.body.as_string(), "127.0.0.1");
}

TEST(DockerClient, EventStreamSplitsLinesAcrossChunksAndReconnectsWhenDropped) {
  std::atomic<int> streams{0};
  std::string filters_seen;
  std::mutex mu;
  FakeEngine engine(Engine("1.41", [&](const auto& req, Conn& c) {
    std::string t(req.target());
    if (!t.starts_with("/v1.41/events")) return c.Reply(404, R"({"message":"page not found"})");
    {
      std::lock_guard lock(mu);
      filters_seen = t;
    }
    int n = ++streams;
    c.Raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    auto chunk = [&c](const std::string& data) {
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", data.size());
      c.Raw(size + data + "\r\n");
    };
    std::string e1 = R"({"Type":"container","Action":"die","Actor":{"ID":"c)" + std::to_string(n) +
                     R"(","Attributes":{"exitCode":"3"}},"timeNano":1})" "\n";
    chunk(e1.substr(0, 20));  // one event split over two chunks
    std::this_thread::sleep_for(20ms);
    chunk(e1.substr(20) + "{not json}\n");
    chunk(R"({"Type":"container","Action":"start","Actor":{"ID":"s)" + std::to_string(n) + R"("}})" "\n");
    std::this_thread::sleep_for(50ms);
    c.Close();  // the engine restarts: the stream drops mid-way
  }));
  net::io_context io;
  docker::Client client(io, Options(engine.url()));
  std::vector<std::string> events;
  std::vector<bool> connections;
  client.Watch(json::object{{"label", json::array{"dev.matchmaker.managed-by=matchmakerd"}}},
               [&](const docker::Event& e) { events.push_back(e.action + ":" + e.id + ":" + (e.attributes.count("exitCode") ? e.attributes.at("exitCode") : "")); },
               [&](bool up) { connections.push_back(up); });
  for (int i = 0; i < 1000 && events.size() < 4; ++i) io.run_for(5ms);
  client.Close();
  io.run_for(20ms);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events[0], "die:c1:3");
  EXPECT_EQ(events[1], "start:s1:");
  EXPECT_EQ(events[2], "die:c2:3");
  EXPECT_EQ(events[3], "start:s2:");
  ASSERT_GE(connections.size(), 3u);
  EXPECT_EQ(connections[0], true);
  EXPECT_EQ(connections[1], false);
  EXPECT_EQ(connections[2], true);
  std::lock_guard lock(mu);
  EXPECT_EQ(filters_seen,
            "/v1.41/events?filters=%7B%22label%22%3A%5B%22dev.matchmaker.managed-by%3Dmatchmakerd%22%5D%7D");
}

}  // namespace
}  // namespace mm
