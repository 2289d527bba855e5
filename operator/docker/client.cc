#include "operator/docker/client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <deque>
#include <optional>
#include <vector>

#include "api/reservation/client_id.h"

namespace mm::docker {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using Protocol = net::generic::stream_protocol;
using Stream = beast::basic_stream<Protocol>;

std::string Endpoint::ToString() const {
  return unix_socket ? "unix://" + path : "tcp://" + host + ":" + std::to_string(port);
}

std::variant<Endpoint, std::string> ParseEndpoint(std::string_view url) {
  std::string from_env;
  if (url.empty()) {
    if (const char* env = std::getenv("DOCKER_HOST"); env && *env) {
      from_env = env;
      url = from_env;
    } else {
      return Endpoint{};
    }
  }
  Endpoint e;
  if (url.starts_with("unix://")) {
    e.path = std::string(url.substr(7));
    if (e.path.empty() || e.path[0] != '/') return "docker host " + std::string(url) + ": want unix:///absolute/path";
    return e;
  }
  std::string_view rest;
  if (url.starts_with("tcp://")) {
    rest = url.substr(6);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return "docker host " + std::string(url) + ": want unix:///path or tcp://host:port (TLS is not supported)";
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  e.unix_socket = false;
  e.path.clear();
  e.host = std::string(rest.substr(0, colon));
  int port = 2375;
  if (colon != std::string_view::npos) {
    port = 0;
    for (char c : rest.substr(colon + 1)) {
      if (c < '0' || c > '9' || port > 65535) return "docker host " + std::string(url) + ": bad port";
      port = port * 10 + (c - '0');
    }
  }
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') e.host = e.host.substr(1, e.host.size() - 2);
  if (e.host.empty() || port <= 0 || port > 65535) return "docker host " + std::string(url) + ": want tcp://host:port";
  e.port = static_cast<std::uint16_t>(port);
  return e;
}

int ParseApiVersion(std::string_view v) {
  auto dot = v.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= v.size() || v.size() - dot - 1 > 3) return -1;
  int major = 0, minor = 0;
  for (char c : v.substr(0, dot)) {
    if (c < '0' || c > '9' || major > 100) return -1;
    major = major * 10 + (c - '0');
  }
  for (char c : v.substr(dot + 1)) {
    if (c < '0' || c > '9') return -1;
    minor = minor * 10 + (c - '0');
  }
  return major * 1000 + minor;
}

std::variant<std::string, std::string> NegotiateVersion(std::string_view engine) {
  int v = ParseApiVersion(engine);
  if (v < 0) return std::variant<std::string, std::string>(std::in_place_index<1>, "engine reports API version \"" + std::string(engine) + "\"");
  if (v < ParseApiVersion(kMinApiVersion)) {
    return std::variant<std::string, std::string>(
        std::in_place_index<1>, "engine API " + std::string(engine) + " is older than " + kMinApiVersion);
  }
  std::string use = v > ParseApiVersion(kMaxApiVersion) ? kMaxApiVersion : std::string(engine);
  return std::variant<std::string, std::string>(std::in_place_index<0>, use);
}

std::string_view ToString(Errc code) {
  switch (code) {
    case Errc::kOk: return "ok";
    case Errc::kNotFound: return "not found";
    case Errc::kNoSuchImage: return "no such image";
    case Errc::kConflict: return "conflict";
    case Errc::kNotModified: return "not modified";
    case Errc::kBadRequest: return "bad request";
    case Errc::kEngine: return "engine error";
    case Errc::kUnreachable: return "engine unreachable";
    case Errc::kTimeout: return "timeout";
    case Errc::kBadResponse: return "bad response";
    case Errc::kUnsupported: return "unsupported engine";
  }
  return "?";
}

namespace {

// `body` as one JSON value per line, or nullopt when a line is not JSON.
std::optional<json::array> JsonLines(std::string_view body) {
  json::array out;
  while (!body.empty()) {
    auto nl = body.find('\n');
    auto line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (ec) return std::nullopt;
    out.push_back(std::move(v));
  }
  if (out.empty()) return std::nullopt;
  return out;
}

}  // namespace

Result Classify(int status, std::string_view body) {
  Result r;
  r.status = status;
  if (!body.empty()) {
    boost::system::error_code ec;
    r.body = json::parse(body, ec);
    if (ec && status >= 200 && status < 300) {
      if (auto lines = JsonLines(body)) {
        for (const auto& line : *lines) {
          const auto* o = line.if_object();
          const auto* e = o ? o->if_contains("error") : nullptr;
          if (!e) continue;
          r.code = Errc::kEngine;
          r.message = e->is_string() ? std::string(e->get_string()) : json::serialize(*e);
          r.body = std::move(*lines);
          return r;
        }
        r.body = std::move(*lines);
        return r;
      }
    }
    if (ec) {
      r.body = nullptr;
      if (status >= 200 && status < 300) {
        r.code = Errc::kBadResponse;
        r.message = "engine answered " + std::to_string(status) + " with a body that is not JSON";
        return r;
      }
      r.message = std::string(body.substr(0, 200));  // errors from proxies may be plain text
    } else if (const auto* o = r.body.if_object()) {
      if (const auto* m = o->if_contains("message"); m && m->is_string()) r.message = std::string(m->get_string());
    }
  }
  if (status >= 200 && status < 300) return r;
  if (r.message.empty()) r.message = "engine answered " + std::to_string(status);
  switch (status) {
    case 304: r.code = Errc::kNotModified; break;
    case 400: r.code = Errc::kBadRequest; break;
    case 404:
      r.code = r.message.starts_with("No such image") || r.message.find("pull access denied") != std::string::npos
                   ? Errc::kNoSuchImage
                   : Errc::kNotFound;
      break;
    case 409: r.code = Errc::kConflict; break;
    default: r.code = Errc::kEngine;
  }
  return r;
}

std::optional<Event> ParseEvent(std::string_view line) {
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  auto str = [](const json::object& obj, std::string_view key) -> std::string {
    const auto* f = obj.if_contains(key);
    return f && f->is_string() ? std::string(f->get_string()) : std::string();
  };
  Event e;
  e.type = str(o, "Type");
  e.action = str(o, "Action");
  if (e.action.empty()) e.action = str(o, "status");
  if (const auto* actor = o.if_contains("Actor"); actor && actor->is_object()) {
    e.id = str(actor->get_object(), "ID");
    if (const auto* attrs = actor->get_object().if_contains("Attributes"); attrs && attrs->is_object()) {
      for (const auto& [k, val] : attrs->get_object()) {
        if (val.is_string()) e.attributes[std::string(k)] = std::string(val.get_string());
      }
    }
  }
  if (e.id.empty()) e.id = str(o, "id");
  if (const auto* t = o.if_contains("timeNano"); t && t->is_int64()) e.time_nano = t->get_int64();
  if (e.action.empty()) return std::nullopt;
  return e;
}

// ---------------------------------------------------------------------------

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  Impl(net::io_context& io, ClientOptions o) : io(io), opts(std::move(o)) {}
  net::io_context& io;
  ClientOptions opts;
  std::string version;  // negotiated
  bool negotiating = false;
  std::deque<std::function<void(std::optional<Result>)>> waiting;  // calls held until negotiated
  std::vector<std::unique_ptr<Stream>> idle;
  std::size_t opened = 0;
  bool closed = false;
  std::shared_ptr<void> watcher;  // the current Watcher, if any

  // Connects a fresh stream; `done(error)` with an empty error on success.
  void Connect(Stream& s, std::chrono::milliseconds timeout, std::function<void(std::string)> done) {
    ++opened;
    s.expires_after(timeout);
    if (opts.endpoint.unix_socket) {
      Protocol::endpoint ep{net::local::stream_protocol::endpoint(opts.endpoint.path)};
      s.async_connect(ep, [done = std::move(done)](beast::error_code ec) {
        done(ec ? "connect: " + ec.message() : std::string());
      });
      return;
    }
    auto resolver = std::make_shared<net::ip::tcp::resolver>(io);
    resolver->async_resolve(
        opts.endpoint.host, std::to_string(opts.endpoint.port),
        [&s, resolver, done = std::move(done)](beast::error_code ec, net::ip::tcp::resolver::results_type results) {
          if (ec || results.empty()) return done("resolve: " + (ec ? ec.message() : std::string("no address")));
          Protocol::endpoint ep{results.begin()->endpoint()};
          s.async_connect(ep, [done](beast::error_code ec) { done(ec ? "connect: " + ec.message() : std::string()); });
        });
  }

  // Runs `then` once a version is negotiated (or with the failure).
  void Negotiated(std::function<void(std::optional<Result>)> then);
};

namespace {

Result Transport(std::string message, bool timeout) {
  Result r;
  r.code = timeout ? Errc::kTimeout : Errc::kUnreachable;
  r.message = std::move(message);
  return r;
}

// One request/response exchange, on a kept connection when one is idle.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<Client::Impl> impl, std::string method, std::string target, std::string body,
           std::chrono::milliseconds timeout, Client::Done done, const Client::Headers& headers = {})
      : impl_(std::move(impl)), timeout_(timeout), done_(std::move(done)) {
    msg_.method_string(method);
    msg_.target(target);
    msg_.version(11);
    msg_.set(bhttp::field::host, impl_->opts.endpoint.unix_socket ? "docker" : impl_->opts.endpoint.host);
    msg_.set(bhttp::field::user_agent, "matchmakerd");
    msg_.keep_alive(true);
    for (const auto& [name, value] : headers) msg_.set(name, value);
    if (!body.empty()) {
      msg_.set(bhttp::field::content_type, "application/json");
      msg_.body() = std::move(body);
    }
    msg_.prepare_payload();
    deadline_ = std::chrono::steady_clock::now() + timeout_;
  }

  void Start() {
    if (!impl_->idle.empty()) {
      stream_ = std::move(impl_->idle.back());
      impl_->idle.pop_back();
      reused_ = true;
      return Write();
    }
    Connect();
  }

 private:
  std::chrono::milliseconds Left() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
    return std::max(left, std::chrono::milliseconds(1));
  }

  void Connect() {
    reused_ = false;
    stream_ = std::make_unique<Stream>(impl_->io);
    impl_->Connect(*stream_, Left(), [self = shared_from_this()](std::string error) {
      if (!error.empty()) return self->Fail(std::move(error));
      self->Write();
    });
  }

  void Write() {
    stream_->expires_after(Left());
    bhttp::async_write(*stream_, msg_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->Retry(ec, "write: ");
      self->parser_.emplace();
      self->parser_->body_limit(self->impl_->opts.body_limit);
      bhttp::async_read(*self->stream_, self->buffer_, *self->parser_, [self](beast::error_code ec, std::size_t) {
        if (ec) return self->Retry(ec, "read: ");
        auto& res = self->parser_->get();
        Result r = Classify(static_cast<int>(res.result_int()), res.body());
        if (res.keep_alive() && self->impl_->idle.size() < self->impl_->opts.max_idle && !self->impl_->closed) {
          self->stream_->expires_never();
          self->impl_->idle.push_back(std::move(self->stream_));
        }
        self->Deliver(std::move(r));
      });
    });
  }

  // A kept connection the engine closed meanwhile fails at once with
  // end_of_stream or a reset; the request did not reach it: one fresh try.
  void Retry(beast::error_code ec, const char* stage) {
    bool closed_idle = ec == bhttp::error::end_of_stream || ec == net::error::connection_reset ||
                       ec == net::error::broken_pipe || ec == net::error::eof;
    if (reused_ && closed_idle && ec != beast::error::timeout) {
      buffer_.clear();
      return Connect();
    }
    Fail(stage + ec.message(), ec == beast::error::timeout);
  }

  void Fail(std::string error, bool timeout = false) {
    if (!timeout && std::chrono::steady_clock::now() >= deadline_) timeout = true;
    Deliver(Transport(std::move(error), timeout));
  }

  void Deliver(Result r) {
    if (stream_) {
      beast::error_code ignored;
      stream_->socket().shutdown(Protocol::socket::shutdown_both, ignored);
      stream_->close();
    }
    if (done_) std::exchange(done_, nullptr)(std::move(r));
  }

  std::shared_ptr<Client::Impl> impl_;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point deadline_;
  Client::Done done_;
  std::unique_ptr<Stream> stream_;
  bool reused_ = false;
  bhttp::request<bhttp::string_body> msg_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
};

// The /events stream: connect, read the header, then chunks split in lines.
class Watcher : public std::enable_shared_from_this<Watcher> {
 public:
  Watcher(std::shared_ptr<Client::Impl> impl, std::string filters, std::function<void(const Event&)> on_event,
          std::function<void(bool)> on_connection)
      : impl_(std::move(impl)), filters_(std::move(filters)), on_event_(std::move(on_event)),
        on_connection_(std::move(on_connection)), timer_(impl_->io), backoff_(impl_->opts.reconnect_min) {}

  void Start() {
    if (stopped_) return;
    impl_->Negotiated([self = shared_from_this()](std::optional<Result> failed) {
      if (self->stopped_) return;
      if (failed) return self->Lost();
      self->Open();
    });
  }

  void Stop() {
    stopped_ = true;
    timer_.cancel();
    if (stream_) {
      beast::error_code ignored;
      stream_->socket().shutdown(Protocol::socket::shutdown_both, ignored);
      stream_->close();
    }
  }

 private:
  void Open() {
    stream_ = std::make_unique<Stream>(impl_->io);
    impl_->Connect(*stream_, impl_->opts.timeout, [self = shared_from_this()](std::string error) {
      if (self->stopped_) return;
      if (!error.empty()) return self->Lost();
      self->req_ = {};
      self->req_.method(bhttp::verb::get);
      self->req_.target("/v" + self->impl_->version + "/events?filters=" + self->filters_);
      self->req_.version(11);
      self->req_.set(bhttp::field::host, "docker");
      self->req_.set(bhttp::field::user_agent, "matchmakerd");
      self->stream_->expires_after(self->impl_->opts.timeout);
      bhttp::async_write(*self->stream_, self->req_, [self](beast::error_code ec, std::size_t) {
        if (self->stopped_) return;
        if (ec) return self->Lost();
        self->parser_.emplace();
        self->parser_->body_limit(boost::none);
        self->parser_->on_chunk_body(self->on_chunk_);
        self->buffer_.clear();
        bhttp::async_read_header(*self->stream_, self->buffer_, *self->parser_, [self](beast::error_code ec, std::size_t) {
          if (self->stopped_) return;
          if (ec || self->parser_->get().result_int() != 200) return self->Lost();
          self->backoff_ = self->impl_->opts.reconnect_min;
          self->connected_ = true;
          self->line_.clear();
          if (self->on_connection_) self->on_connection_(true);
          self->ReadSome();
        });
      });
    });
    on_chunk_ = [this](std::uint64_t, std::string_view data, beast::error_code&) -> std::size_t {
      line_.append(data);
      if (line_.size() > 1024 * 1024) line_.clear();  // a line that never ends: drop it
      return data.size();
    };
  }

  void ReadSome() {
    stream_->expires_never();
    bhttp::async_read_some(*stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (self->stopped_) return;
      self->Split();
      if (ec || self->parser_->is_done()) return self->Lost();
      self->ReadSome();
    });
  }

  void Split() {
    std::size_t start = 0;
    for (std::size_t nl; (nl = line_.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view one(line_.data() + start, nl - start);
      if (auto ev = ParseEvent(one); ev && on_event_) on_event_(*ev);
      if (stopped_) return;
    }
    line_.erase(0, start);
  }

  void Lost() {
    if (stream_) stream_->close();
    bool was = std::exchange(connected_, false);
    if (was && on_connection_) on_connection_(false);
    if (stopped_) return;
    timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, impl_->opts.reconnect_max);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->stopped_) return;
      self->Start();
    });
  }

  std::shared_ptr<Client::Impl> impl_;
  std::string filters_;
  std::function<void(const Event&)> on_event_;
  std::function<void(bool)> on_connection_;
  net::steady_timer timer_;
  std::chrono::milliseconds backoff_;
  std::unique_ptr<Stream> stream_;
  bhttp::request<bhttp::empty_body> req_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  std::function<std::size_t(std::uint64_t, std::string_view, beast::error_code&)> on_chunk_;
  std::string line_;
  bool connected_ = false;
  bool stopped_ = false;
};

}  // namespace

void Client::Impl::Negotiated(std::function<void(std::optional<Result>)> then) {
  if (!version.empty()) return then(std::nullopt);
  waiting.push_back(std::move(then));
  if (negotiating) return;
  negotiating = true;
  auto self = shared_from_this();
  std::make_shared<Exchange>(self, "GET", "/version", "", opts.timeout, [self](Result r) {
    self->negotiating = false;
    std::optional<Result> failed;
    if (!r.ok()) {
      failed = std::move(r);
    } else {
      const auto* o = r.body.if_object();
      const auto* v = o ? o->if_contains("ApiVersion") : nullptr;
      auto chosen = NegotiateVersion(v && v->is_string() ? std::string_view(v->get_string()) : "");
      if (chosen.index() == 0) {
        self->version = std::get<0>(chosen);
      } else {
        Result bad;
        bad.code = Errc::kUnsupported;
        bad.status = r.status;
        bad.message = std::get<1>(chosen);
        failed = std::move(bad);
      }
    }
    auto waiting = std::exchange(self->waiting, {});
    for (auto& w : waiting) w(failed);
  })->Start();
}

Client::Client(net::io_context& io, ClientOptions options) : impl_(std::make_shared<Impl>(io, std::move(options))) {}

Client::~Client() { Close(); }

void Client::Call(std::string method, std::string target, json::value body, Done done,
                  std::chrono::milliseconds timeout, Headers headers) {
  if (timeout.count() <= 0) timeout = impl_->opts.timeout;
  std::string payload = body.is_null() ? std::string() : json::serialize(body);
  impl_->Negotiated([impl = impl_, method = std::move(method), target = std::move(target),
                     payload = std::move(payload), done = std::move(done), timeout,
                     headers = std::move(headers)](std::optional<Result> failed) mutable {
    if (failed) return done(std::move(*failed));
    std::make_shared<Exchange>(impl, std::move(method), "/v" + impl->version + target, std::move(payload), timeout,
                               std::move(done), headers)
        ->Start();
  });
}

const std::string& Client::api_version() const { return impl_->version; }

void Client::Watch(json::object filters, std::function<void(const Event&)> on_event,
                   std::function<void(bool)> on_connection) {
  if (impl_->watcher) std::static_pointer_cast<Watcher>(impl_->watcher)->Stop();
  auto w = std::make_shared<Watcher>(impl_, reservation::PercentEncode(json::serialize(filters)), std::move(on_event),
                                     std::move(on_connection));
  impl_->watcher = w;
  impl_->closed = false;
  w->Start();
}

void Client::Close() {
  impl_->closed = true;
  if (impl_->watcher) std::static_pointer_cast<Watcher>(impl_->watcher)->Stop();
  impl_->watcher.reset();
  impl_->idle.clear();
}

std::size_t Client::connections_opened() const { return impl_->opened; }

}  // namespace mm::docker
