// mm-gameserver as a real process on 127.0.0.1, driven over real HTTP.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "operator/http/blocking_client.h"
#include "tests/support/process.h"

namespace mm::testing {
using http::HttpCall;
using http::HttpConnection;
namespace {

using namespace std::chrono_literals;

struct GameServer {
  std::unique_ptr<Child> child;
  std::uint16_t control = 0;
  std::uint16_t game = 0;
};

GameServer Start(int capacity, std::vector<std::string> env = {},
                 std::vector<std::string> extra = {"--control-port", "0"}) {
  std::vector<std::string> argv = {BinPath("mm-gameserver"), "--address", "127.0.0.1",
                                   "--game-port", "0", "--capacity",
                                   std::to_string(capacity)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  GameServer gs;
  gs.child = Child::Spawn(argv, env);
  auto line = gs.child->WaitForLine("control=", 10s);
  EXPECT_TRUE(line) << "no banner: " << gs.child->output();
  if (!line) return gs;
  unsigned control = 0, game = 0;
  auto at = line->find("control=");
  EXPECT_EQ(std::sscanf(line->c_str() + at, "control=%u game=%u", &control, &game), 2);
  gs.control = static_cast<std::uint16_t>(control);
  gs.game = static_cast<std::uint16_t>(game);
  return gs;
}

sockaddr_in Loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

void SetTimeout(int fd) {
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

TEST(GameServer, ReservesUpToCapacityIdempotently) {
  auto gs = Start(3);
  ASSERT_NE(gs.control, 0);
  for (std::string id : {"a", "b", "c"}) {
    EXPECT_EQ(HttpCall(gs.control, "POST", "/reservation/" + id).status, 200) << id;
  }
  EXPECT_EQ(HttpCall(gs.control, "POST", "/reservation/d").status, 403);
  EXPECT_EQ(HttpCall(gs.control, "POST", "/reservation/a").status, 200);
  EXPECT_EQ(HttpCall(gs.control, "GET", "/reservation/b").status, 200);
  EXPECT_EQ(HttpCall(gs.control, "GET", "/reservation/d").status, 404);
}

TEST(GameServer, KeepAliveConnectionServesManyRequests) {
  auto gs = Start(100);
  HttpConnection conn(gs.control);
  for (int i = 0; i < 50; ++i) {
    auto r = conn.Call("POST", "/reservation/k" + std::to_string(i));
    ASSERT_EQ(r.status, 200) << r.error;
    EXPECT_TRUE(r.keep_alive);
  }
}

TEST(GameServer, ParallelPostsNeverExceedCapacity) {
  constexpr int kCapacity = 5, kClients = 64;
  auto gs = Start(kCapacity);
  std::atomic<int> ok{0}, full{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      int s = HttpCall(gs.control, "POST", "/reservation/p" + std::to_string(i)).status;
      (s == 200 ? ok : s == 403 ? full : other)++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kCapacity);
  EXPECT_EQ(full.load(), kClients - kCapacity);
  EXPECT_EQ(other.load(), 0);
  int held = 0;
  for (int i = 0; i < kClients; ++i) {
    held += HttpCall(gs.control, "GET", "/reservation/p" + std::to_string(i)).status == 200;
  }
  EXPECT_EQ(held, kCapacity);
}

TEST(GameServer, HostileIdsAndRequestsAreRefusedAndTheServerLives) {
  auto gs = Start(3);
  EXPECT_EQ(HttpCall(gs.control, "POST", "/reservation/../close").status, 404);
  EXPECT_EQ(HttpCall(gs.control, "POST", "/reservation/..%2Fclose").status, 200);
  EXPECT_EQ(HttpCall(gs.control, "GET", "/reservation/..%2Fclose").status, 200);
  EXPECT_EQ(HttpCall(gs.control, "POST", "/reservation/a%0Ab").status, 400);
  EXPECT_EQ(HttpCall(gs.control, "POST", "/reservation/" + std::string(300, 'x')).status, 400);
  EXPECT_EQ(HttpCall(gs.control, "POST", "/reservation/%G0").status, 400);
  // Over the 8 KiB header limit, and a body over 1 MiB.
  EXPECT_EQ(HttpCall(gs.control, "GET", "/reservation/a", "", {{"X-Big", std::string(10000, 'h')}}).status, 431);
  HttpConnection big(gs.control);
  EXPECT_EQ(big.Raw("POST /reservation/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n").status, 413);
  HttpConnection raw(gs.control);
  EXPECT_EQ(raw.Raw("NOT HTTP AT ALL\r\n\r\n").status, 400);
  EXPECT_FALSE(gs.child->Wait(0ms).has_value()) << "server died";
  EXPECT_EQ(HttpCall(gs.control, "GET", "/reservation/..%2Fclose").status, 200);
}

// Request smuggling: with a Transfer-Encoding whose final coding is not
// chunked, the body has no knowable length (RFC 9112 6.3). Read as empty, its
// bytes would run as a second request: here a /close that ends the server.
// The same HTTP server serves matchmakerd's client and admin listeners.
TEST(GameServer, TransferEncodingOtherThanChunkedIsRefusedNotSmuggled) {
  auto gs = Start(3);
  for (std::string te : {"identity", "gzip", "xchunked", "chunked, identity"}) {
    SCOPED_TRACE(te);
    HttpConnection conn(gs.control);
    auto r = conn.Raw("POST /reservation/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + te +
                      "\r\n\r\nPOST /close HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(r.status, 400) << r.body;
    std::this_thread::sleep_for(100ms);
    ASSERT_FALSE(gs.child->Wait(0ms).has_value()) << "the smuggled /close ran";
  }
  // A chunked body still works.
  HttpConnection ok(gs.control);
  EXPECT_EQ(ok.Raw("POST /reservation/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").status,
            200);
  EXPECT_EQ(HttpCall(gs.control, "GET", "/reservation/a").status, 404);
}

TEST(GameServer, EchoesTcpAndUdpOnTheGamePort) {
  auto gs = Start(3);
  int t = socket(AF_INET, SOCK_STREAM, 0);
  SetTimeout(t);
  auto addr = Loopback(gs.game);
  ASSERT_EQ(connect(t, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(write(t, "hello", 5), 5);
  char buf[16] = {};
  ASSERT_EQ(read(t, buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  close(t);

  int u = socket(AF_INET, SOCK_DGRAM, 0);
  SetTimeout(u);
  ASSERT_EQ(sendto(u, "ping", 4, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 4);
  ASSERT_EQ(recv(u, buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  close(u);
}

TEST(GameServer, CloseAnswersThenExitsZero) {
  auto gs = Start(3);
  EXPECT_EQ(HttpCall(gs.control, "POST", "/close").status, 200);
  EXPECT_EQ(gs.child->Wait(10s), 0);
}

TEST(GameServer, SigtermExitsZero) {
  auto gs = Start(3);
  ASSERT_EQ(HttpCall(gs.control, "POST", "/reservation/x").status, 200);
  gs.child->Signal(SIGTERM);
  EXPECT_EQ(gs.child->Wait(10s), 0);
}

TEST(GameServer, ControlPortComesFromTheEnvironment) {
  // Find a free port, then hand it over through MM_CONTROL_PORT.
  int s = socket(AF_INET, SOCK_STREAM, 0);
  auto any = Loopback(0);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  socklen_t len = sizeof any;
  getsockname(s, reinterpret_cast<sockaddr*>(&any), &len);
  std::uint16_t port = ntohs(any.sin_port);
  close(s);
  auto gs = Start(3, {"MM_CONTROL_PORT=" + std::to_string(port)}, {});
  EXPECT_EQ(gs.control, port);
  EXPECT_EQ(HttpCall(port, "POST", "/reservation/env").status, 200);
}

}  // namespace
}  // namespace mm::testing
