#pragma once

// mm::docker: a Docker Engine API client. HTTP/1.1 over the unix socket or
// TCP (Beast, in client.cc only), the API version negotiated through
// GET /version, a deadline on every call, idle connections reused, typed
// errors from the engine's {"message": ...} bodies, and a /events watch that
// reconnects by itself.
//
// Thread-safety: everything runs on the io_context's single thread; create,
// call and destroy the Client there.

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace boost::asio {
class io_context;
}

namespace mm::docker {

// The API versions this client speaks: the engine's own version is used when
// it lies in this range, the upper bound when the engine is newer.
inline constexpr char kMinApiVersion[] = "1.41";
inline constexpr char kMaxApiVersion[] = "1.45";

struct Endpoint {
  bool unix_socket = true;
  std::string path = "/var/run/docker.sock";  // unix
  std::string host;                            // tcp
  std::uint16_t port = 0;
  std::string ToString() const;
};

// "unix:///var/run/docker.sock", "tcp://127.0.0.1:2375" (or http://); an
// empty url means $DOCKER_HOST, then the default unix socket.
std::variant<Endpoint, std::string> ParseEndpoint(std::string_view url);

// "1.41" -> 141; -1 when malformed.
int ParseApiVersion(std::string_view v);
// The version to speak with an engine that reports `engine` (its ApiVersion),
// or an error when it is too old or unreadable.
std::variant<std::string, std::string> NegotiateVersion(std::string_view engine);

enum class Errc {
  kOk,
  kNotFound,       // 404: no such container / network
  kNoSuchImage,    // 404 "No such image: ..."
  kConflict,       // 409: name in use, container running
  kNotModified,    // 304: already started / stopped
  kBadRequest,     // 400: the engine refused the request's content
  kEngine,         // any other error status from the engine
  kUnreachable,    // no connection (socket missing, refused, reset)
  kTimeout,        // the deadline passed
  kBadResponse,    // an answer that is not the JSON it should be
  kUnsupported,    // engine API older than kMinApiVersion
};
std::string_view ToString(Errc code);

struct Result {
  Errc code = Errc::kOk;
  int status = 0;             // HTTP status; 0 without an answer
  boost::json::value body;    // parsed JSON body (null when empty)
  std::string message;        // engine's message or the transport error
  bool ok() const { return code == Errc::kOk; }
  // Not an answer from the engine: it is down, hung or unreachable.
  bool unavailable() const { return code == Errc::kUnreachable || code == Errc::kTimeout; }
};

// Turns an engine answer into a Result: pure. A 2xx body of JSON lines
// (the progress stream of a pull) becomes an array of those lines; a line
// with an "error" makes the whole answer an error with that message, since
// the engine reports a failure there after its 200 has been sent.
Result Classify(int status, std::string_view body);

// One /events message.
struct Event {
  std::string type;    // container, service, node, ...
  std::string action;  // die, start, destroy, ...
  std::string id;      // Actor.ID
  std::map<std::string, std::string> attributes;  // Actor.Attributes (labels, exitCode, name)
  std::int64_t time_nano = 0;
};
// Parses one line of the /events stream; nullopt when it is not an event.
std::optional<Event> ParseEvent(std::string_view line);

struct ClientOptions {
  Endpoint endpoint;
  std::chrono::milliseconds timeout{10'000};  // default deadline per call
  std::size_t max_idle = 4;                   // kept-alive connections
  std::size_t body_limit = 16 * 1024 * 1024;
  std::chrono::milliseconds reconnect_min{200};
  std::chrono::milliseconds reconnect_max{5'000};
};

class Client {
 public:
  Client(boost::asio::io_context& io, ClientOptions options);
  ~Client();

  using Done = std::function<void(Result)>;
  // `method` `target` against /v<version><target>; `body` is sent as JSON
  // unless null. `done` runs once, on the io thread. timeout 0 = default.
  // `headers` are added to the request (X-Registry-Auth).
  using Headers = std::map<std::string, std::string>;
  void Call(std::string method, std::string target, boost::json::value body, Done done,
            std::chrono::milliseconds timeout = {}, Headers headers = {});
  // The negotiated version ("1.41"), empty before the first answer.
  const std::string& api_version() const;

  // Streams /events with `filters` (the engine's filter JSON). `on_event`
  // runs per event; `on_connection(true)` after each (re)connect (resync
  // there: events in between are not replayed), `(false)` when the stream
  // is lost. Reconnects with backoff until Close() or destruction.
  void Watch(boost::json::object filters, std::function<void(const Event&)> on_event,
             std::function<void(bool connected)> on_connection);

  // Stops the watch and drops idle connections; calls in flight finish.
  void Close();

  std::size_t connections_opened() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mm::docker
