#pragma once

// HTTP messages as handlers see them: plain structs, no Beast, so that
// routers and handlers can be unit-tested without sockets.

#include <functional>
#include <memory>
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

// The body of a streamed response (a watch): chunks sent as they come, on
// a connection that ends with the stream. Call on the io thread.
class Stream {
 public:
  virtual ~Stream() = default;
  // Queues `data` as the next chunk. False, and nothing queued, once the
  // stream is closed or when more than its bound waits unsent (the peer
  // does not read): the caller then Close()s it.
  virtual bool Write(std::string data) = 0;
  // Ends the body once what is queued is sent, then the connection.
  virtual void Close() = 0;
  virtual bool closed() const = 0;
  // Runs once when the stream ends: Close(), the peer gone, a write failed
  // or timed out, the server stopping.
  virtual void OnClose(std::function<void()> fn) = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<Header> headers;
  bool close = false;  // close the connection after this response
  // When set, the body is streamed: the header goes out (chunked), then
  // `stream` is called with the Stream to write to; `body` is ignored.
  std::function<void(std::shared_ptr<Stream>)> stream;
  std::size_t stream_limit = 1 << 20;  // bytes that may wait unsent
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
