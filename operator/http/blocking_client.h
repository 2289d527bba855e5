#pragma once

// A blocking HTTP/1.1 client for mmctl and tests, with a deadline on every
// call. HttpConnection keeps one connection open (keep-alive). Not
// thread-safe: one connection per thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

namespace mm::http {

struct HttpResult {
  int status = 0;  // 0: transport error (see error)
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string error;
  bool keep_alive = false;
  std::string Header(const std::string& name) const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class HttpConnection {
 public:
  // `host` is an IP address or a name to resolve ("localhost").
  HttpConnection(std::string host, std::uint16_t port);
  explicit HttpConnection(std::uint16_t port) : HttpConnection("127.0.0.1", port) {}
  ~HttpConnection();
  HttpResult Call(const std::string& method, const std::string& target,
                  const std::string& body = "", const Headers& headers = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // A streamed response (a watch): `on_line` gets each line of the body as
  // it arrives, until it returns false, the server ends the body, or no
  // byte came for `idle`. A non-200 answer is returned whole, with no line
  // given. The connection is closed after.
  HttpResult Stream(const std::string& target, const Headers& headers,
                    const std::function<bool(std::string_view line)>& on_line,
                    std::chrono::milliseconds idle = std::chrono::seconds(60));
  // Writes raw bytes and reads one response (for malformed requests).
  HttpResult Raw(const std::string& bytes,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection to 127.0.0.1.
HttpResult HttpCall(std::uint16_t port, const std::string& method,
                    const std::string& target, const std::string& body = "",
                    const Headers& headers = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace mm::http
