#include "operator/http/client.h"

#include "operator/http/wire.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/unordered/unordered_flat_map.hpp>
#include <optional>
#include <vector>

namespace mm::http {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
// The io_context's executor type, not any_io_executor (see server.cc).
using TcpStream = beast::basic_stream<net::ip::tcp, net::io_context::executor_type>;

struct KeepAliveClient::Impl : std::enable_shared_from_this<KeepAliveClient::Impl> {
  Impl(net::io_context& io, std::size_t cap) : io(io), cap(cap) {}
  net::io_context& io;
  std::size_t cap;
  std::size_t opened = 0;
  // "host:port" -> its idle connections (looked up twice per call).
  boost::unordered_flat_map<std::string, std::vector<std::unique_ptr<TcpStream>>> idle;
};

namespace {

class PooledCall : public std::enable_shared_from_this<PooledCall> {
 public:
  PooledCall(std::shared_ptr<KeepAliveClient::Impl> pool, ClientRequest req, std::function<void(ClientResponse)> done)
      : pool_(std::move(pool)), req_(std::move(req)), done_(std::move(done)),
        key_(req_.host + ":" + std::to_string(req_.port)) {}

  void Start() {
    bhttp::request<bhttp::string_body> msg;
    msg.method_string(req_.method);
    msg.target(req_.target);
    msg.version(11);
    msg.set(bhttp::field::host, req_.host);
    msg.set(bhttp::field::user_agent, "matchmakerd");
    msg.keep_alive(true);
    if (!req_.content_type.empty()) msg.set(bhttp::field::content_type, req_.content_type);
    msg.body() = req_.body;
    msg.prepare_payload();
    if (!wire::Serialize(msg, wire_)) return Fail("cannot serialize the request");
    auto& idle = pool_->idle[key_];
    if (!idle.empty()) {
      stream_ = std::move(idle.back());
      idle.pop_back();
      reused_ = true;
      return Write();
    }
    Connect();
  }

 private:
  void Connect() {
    beast::error_code ec;
    auto addr = net::ip::make_address(req_.host, ec);
    if (ec) return Fail("bad address " + req_.host);
    stream_ = std::make_unique<TcpStream>(pool_->io);
    reused_ = false;
    ++pool_->opened;
    stream_->expires_after(req_.timeout);
    stream_->async_connect(net::ip::tcp::endpoint(addr, req_.port), [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Fail("connect: " + ec.message(), ec == beast::error::timeout);
      beast::error_code ignored;  // request/response: no Nagle wait on small writes
      self->stream_->socket().set_option(net::ip::tcp::no_delay(true), ignored);
      self->Write();
    });
  }

  void Write() {
    stream_->expires_after(req_.timeout);
    net::async_write(*stream_, net::buffer(wire_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->RetryOrFail(ec, "write: " + ec.message());
      self->parser_.emplace();
      self->parser_->body_limit(1024 * 1024);
      bhttp::async_read(*self->stream_, self->buffer_, *self->parser_, [self](beast::error_code ec, std::size_t) {
        if (ec) return self->RetryOrFail(ec, "read: " + ec.message());
        ClientResponse r;
        r.status = static_cast<int>(self->parser_->get().result_int());
        r.body = std::move(self->parser_->get().body());
        bool keep = self->parser_->get().keep_alive();
        auto& idle = self->pool_->idle[self->key_];
        if (keep && idle.size() < self->pool_->cap) {
          self->stream_->expires_never();
          idle.push_back(std::move(self->stream_));
        }
        self->Deliver(std::move(r));
      });
    });
  }

  // A kept connection may have been closed by the server since: one fresh
  // try. Not after a timeout: a server that does not answer would cost the
  // caller a second deadline.
  void RetryOrFail(beast::error_code ec, std::string error) {
    bool timed_out = ec == beast::error::timeout;
    if (reused_ && !timed_out) {
      buffer_.clear();
      return Connect();
    }
    Fail(std::move(error), timed_out);
  }

  void Fail(std::string error, bool timed_out = false) {
    ClientResponse r;
    r.error = std::move(error);
    r.timed_out = timed_out;
    Deliver(std::move(r));
  }

  void Deliver(ClientResponse r) {
    if (stream_) {
      beast::error_code ignored;
      stream_->socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
      stream_->close();
    }
    if (done_) std::exchange(done_, nullptr)(std::move(r));
  }

  std::shared_ptr<KeepAliveClient::Impl> pool_;
  ClientRequest req_;
  std::function<void(ClientResponse)> done_;
  std::string key_;
  std::unique_ptr<TcpStream> stream_;
  bool reused_ = false;
  std::string wire_;  // msg serialized, written again on a retry
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
};

}  // namespace

KeepAliveClient::KeepAliveClient(net::io_context& io, std::size_t idle_per_endpoint)
    : impl_(std::make_shared<Impl>(io, idle_per_endpoint)) {}

KeepAliveClient::~KeepAliveClient() = default;

void KeepAliveClient::Call(ClientRequest request, std::function<void(ClientResponse)> done) {
  std::make_shared<PooledCall>(impl_, std::move(request), std::move(done))->Start();
}

void KeepAliveClient::Prune(const std::set<std::string>& live) {
  boost::unordered::erase_if(impl_->idle, [&](const auto& kv) { return !live.contains(kv.first); });
}

std::size_t KeepAliveClient::idle() const {
  std::size_t n = 0;
  for (const auto& [k, v] : impl_->idle) n += v.size();
  return n;
}

std::size_t KeepAliveClient::opened() const { return impl_->opened; }

void AsyncCall(net::io_context& io, ClientRequest request,
               std::function<void(ClientResponse)> done) {
  // A client that keeps nothing: the call owns its connection and closes it.
  KeepAliveClient(io, 0).Call(std::move(request), std::move(done));
}

}  // namespace mm::http
