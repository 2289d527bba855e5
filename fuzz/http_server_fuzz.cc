// The HTTP server's request path on any bytes from a peer: one real
// loopback connection per input, the bytes written, the write side shut;
// the server must answer or close (header timeout 100 ms) and never crash.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include "operator/http/server.h"

namespace {

struct Fixture {
  boost::asio::io_context io;
  std::unique_ptr<mm::http::Server> server;
  std::uint16_t port = 0;
  Fixture() {
    server = std::make_unique<mm::http::Server>(
        io,
        mm::http::ServerOptions{.address = "127.0.0.1", .port = 0, .header_limit = 8192, .body_limit = 65536,
                                .header_timeout = std::chrono::milliseconds(100),
                                .read_timeout = std::chrono::milliseconds(100),
                                .max_connections = 16, .max_connections_per_source = 8},
        [](mm::http::Request&& req, mm::http::Reply reply) {
          reply(mm::http::Response{.body = req.method + " " + req.path + " " + std::to_string(req.body.size())});
        });
    if (server->Start()) __builtin_trap();
    port = server->port();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture f;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(f.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A connect can fail for reasons of the machine, not of the server (a
  // full accept queue while the io loop is not running, ports in
  // TIME_WAIT after a long CI run): the loop runs and it is tried again.
  int tries = 0;
  while (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (++tries == 100) {
      std::fprintf(stderr, "http_server_fuzz: connect: %s\n", std::strerror(errno));
      __builtin_trap();
    }
    ::close(fd);
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    f.io.restart();
    f.io.run_for(std::chrono::milliseconds(10));
  }
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  std::size_t sent = 0;
  bool eof = false;
  char buf[4096];
  for (int round = 0; round < 5000 && !eof; ++round) {
    if (sent < size) {
      auto n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN) sent = size;  // the server closed: stop writing
      if (sent == size) ::shutdown(fd, SHUT_WR);
    }
    f.io.restart();
    f.io.run_for(std::chrono::microseconds(200));
    while (true) {
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) continue;
      if (n == 0 || errno != EAGAIN) eof = true;
      break;
    }
  }
  ::close(fd);
  if (!eof) __builtin_trap();  // neither answered-and-closed nor closed within ~1 s+
  // Let the session notice and go.
  f.io.restart();
  f.io.run_for(std::chrono::milliseconds(1));
  return 0;
}
