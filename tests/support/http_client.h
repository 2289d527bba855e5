#pragma once

// A blocking HTTP/1.1 client for tests, to 127.0.0.1 only, with a deadline
// on every call. HttpConnection keeps one connection open (keep-alive).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mm::testing {

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
  explicit HttpConnection(std::uint16_t port);
  ~HttpConnection();
  HttpResult Call(const std::string& method, const std::string& target,
                  const std::string& body = "", const Headers& headers = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Writes raw bytes and reads one response (for malformed requests).
  HttpResult Raw(const std::string& bytes,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection.
HttpResult HttpCall(std::uint16_t port, const std::string& method,
                    const std::string& target, const std::string& body = "",
                    const Headers& headers = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace mm::testing
