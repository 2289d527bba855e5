#pragma once

// Outgoing HTTP/1.1 requests from the io thread: readiness probes and (later)
// reservation handshakes. One connection per request, a deadline on the
// whole exchange. Beast stays in client.cc.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

namespace boost::asio {
class io_context;
}

namespace mm::http {

struct ClientResponse {
  int status = 0;      // 0: no HTTP response (see error)
  std::string body;
  std::string error;   // transport problem: refused, timeout, reset
  bool timed_out = false;  // no answer within the request's timeout
};

struct ClientRequest {
  std::string host;  // an IP address
  std::uint16_t port = 0;
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  std::chrono::milliseconds timeout{5000};
  std::string content_type;  // of `body`, when set
};

// One call on a connection of its own. Calls `done` exactly once, on the
// io_context's thread.
void AsyncCall(boost::asio::io_context& io, ClientRequest request,
               std::function<void(ClientResponse)> done);

// Like AsyncCall, but keeps connections to each host:port open between
// calls (HTTP keep-alive) and reuses them; servers that answer with
// `Connection: close` just get a new connection next time. A reused
// connection the server closed meanwhile is retried once on a fresh one.
// Not thread-safe: use from the io thread.
class KeepAliveClient {
 public:
  explicit KeepAliveClient(boost::asio::io_context& io, std::size_t idle_per_endpoint = 2);
  ~KeepAliveClient();
  void Call(ClientRequest request, std::function<void(ClientResponse)> done);
  // Closes idle connections to endpoints ("host:port") not in `live`.
  void Prune(const std::set<std::string>& live);
  std::size_t idle() const;     // idle connections held
  std::size_t opened() const;   // connections opened so far

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mm::http
