// The keep-alive client against real servers on 127.0.0.1: connections are
// reused when the server keeps them, and `Connection: close` servers work.

#include "operator/http/client.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>

#include "operator/http/server.h"

namespace mm::http {
namespace {

// `n` calls one after the other; returns how many answered 200.
int RunCalls(boost::asio::io_context& io, KeepAliveClient& client, std::uint16_t port, int n) {
  int ok = 0, answered = 0;
  std::function<void(int)> next = [&](int left) {
    if (left == 0) return;
    client.Call(ClientRequest{"127.0.0.1", port, "POST", "/reservation/x", "", std::chrono::seconds(5)},
                [&, left](ClientResponse r) {
                  ok += r.status == 200;
                  ++answered;
                  next(left - 1);
                });
  };
  next(n);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (answered < n && std::chrono::steady_clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
  return ok;
}

TEST(KeepAliveClient, ReusesConnectionsAndHandlesConnectionClose) {
  boost::asio::io_context io;
  Server keep(io, {}, [](Request&&, Reply reply) { reply(Response{.body = "ok"}); });
  Server close(io, {}, [](Request&&, Reply reply) { reply(Response{.body = "ok", .close = true}); });
  ASSERT_FALSE(keep.Start());
  ASSERT_FALSE(close.Start());
  KeepAliveClient client(io);
  EXPECT_EQ(RunCalls(io, client, keep.port(), 20), 20);
  EXPECT_EQ(client.opened(), 1u);
  EXPECT_EQ(RunCalls(io, client, close.port(), 5), 5);
  EXPECT_EQ(client.opened(), 6u);
  // The kept connection dies with its server: the retry on a fresh
  // connection is refused, and reported, not hung.
  std::uint16_t gone = keep.port();
  keep.Stop();
  for (int i = 0; i < 10; ++i) io.run_one_for(std::chrono::milliseconds(10));
  EXPECT_EQ(RunCalls(io, client, gone, 1), 0);
  client.Prune({});
  EXPECT_EQ(client.idle(), 0u);
}

}  // namespace
}  // namespace mm::http
