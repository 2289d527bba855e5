#pragma once

// An HTTP/1.1 server: accept, parse with limits, deadline on every read,
// keep-alive, a connection cap, graceful stop. Beast stays in server.cc.
//
// Thread-safety: construct, Start and Stop on the thread that runs the
// io_context (or before it runs). Handlers are called on that thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "operator/http/message.h"

namespace boost::asio {
class io_context;
}

namespace mm::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port, read it back with port()
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 1024 * 1024;
  // Deadline for a request's header (and for an idle keep-alive connection
  // to start one), then for the rest of the request (its body).
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds write_timeout{30'000};
  // At the cap, a new connection takes the place of one waiting for a
  // request (idle keep-alive, or a header still arriving); refused only
  // when every connection is busy with a request.
  std::size_t max_connections = 4096;
  // Connections one remote address may hold (0: no cap); beyond it a new
  // connection from that address is closed at once.
  std::size_t max_connections_per_source = 0;
  // Told once per burst of accept errors (out of file descriptors, ...).
  std::function<void(const std::string&)> on_accept_error;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens. Returns an error message on failure.
  std::optional<std::string> Start();
  std::uint16_t port() const;
  // Stops accepting and closes idle connections; requests in flight get
  // their response, then their connection closes.
  void Stop();
  std::size_t connections() const;

  struct Impl;  // opaque; public so that server.cc's sessions can name it

 private:
  std::shared_ptr<Impl> impl_;
};

// "host:port" -> (host, port); nullopt when malformed. "[::1]:80" works.
std::optional<std::pair<std::string, std::uint16_t>> SplitHostPort(
    std::string_view address);

}  // namespace mm::http
