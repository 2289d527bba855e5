#pragma once

// HTTP messages as handlers see them: plain structs, no Beast, so that
// routers and handlers can be unit-tested without sockets.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mm::http {

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/request?pool=eu"
  std::string path;    // target before '?', still percent-encoded
  std::string query;   // target after '?', still percent-encoded
  std::vector<Header> headers;
  std::string body;
  std::string remote;  // peer "ip:port"

  // Case-insensitive header lookup; nullptr when absent.
  const std::string* Find(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<Header> headers;
  bool close = false;  // close the connection after this response
};

// Called once per request; the handler must call Reply exactly once, from
// any thread, now or later (long-polls answer later).
using Reply = std::function<void(Response)>;
using Handler = std::function<void(Request&&, Reply)>;

// Splits "k=v&k2=v2" and percent-decodes keys and values ('+' is a space).
std::vector<std::pair<std::string, std::string>> ParseQuery(
    std::string_view query);

// A JSON error body {"message": ...} with the given status.
Response JsonError(int status, std::string_view message);

}  // namespace mm::http
