#pragma once

// Outgoing HTTP/1.1 requests from the io thread: readiness probes and (later)
// reservation handshakes. One connection per request, a deadline on the
// whole exchange. Beast stays in client.cc.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace boost::asio {
class io_context;
}

namespace mm::http {

struct ClientResponse {
  int status = 0;      // 0: no HTTP response (see error)
  std::string body;
  std::string error;   // transport problem: refused, timeout, reset
};

struct ClientRequest {
  std::string host;  // an IP address
  std::uint16_t port = 0;
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  std::chrono::milliseconds timeout{5000};
};

// Calls `done` exactly once, on the io_context's thread.
void AsyncCall(boost::asio::io_context& io, ClientRequest request,
               std::function<void(ClientResponse)> done);

}  // namespace mm::http
