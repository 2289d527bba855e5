#include "operator/http/server.h"

#include "operator/http/wire.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <charconv>
#include <deque>
#include <set>
#include <unordered_map>

namespace mm::http {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
// Sockets and streams name the io_context's executor type, not the
// type-erased any_io_executor: every operation copies its executor, and
// erased copies cost about 5% of matchmakerd's CPU at saturation.
using TcpSocket = net::basic_stream_socket<tcp, net::io_context::executor_type>;
using TcpStream = beast::basic_stream<tcp, net::io_context::executor_type>;

namespace {

class Session;

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(net::io_context& io, ServerOptions o, Handler h)
      : io(io), options(std::move(o)), handler(std::move(h)), acceptor(io), backoff_timer(io) {}

  void Accept();
  void Admit(TcpSocket socket);

  net::io_context& io;
  ServerOptions options;
  Handler handler;
  tcp::acceptor acceptor;
  // After an accept error (EMFILE: the pending connection stays queued and
  // would fail again at once), wait before the next accept: 10 ms doubling
  // to 1 s, reset by a success. Never a busy loop.
  net::steady_timer backoff_timer;
  std::chrono::milliseconds backoff{0};
  bool stopping = false;
  std::set<Session*> sessions;
  std::unordered_map<std::string, std::size_t> per_source;  // remote address -> connections
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(TcpSocket socket, std::shared_ptr<Server::Impl> server, std::string source, std::string remote)
      : stream_(std::move(socket)), server_(std::move(server)), source_(std::move(source)), remote_(std::move(remote)) {}
  ~Session() {
    server_->sessions.erase(this);
    if (auto it = server_->per_source.find(source_); it != server_->per_source.end() && --it->second == 0) {
      server_->per_source.erase(it);
    }
  }

  void Start() {
    server_->sessions.insert(this);
    Read();
  }

  // Called on stop: an idle connection closes now, a busy one after its
  // response.
  void Shutdown() {
    if (streaming_) return EndStream();
    if (!busy_) Close();
  }
  // Waiting for a request (idle keep-alive, or a header still arriving):
  // may give its place to a new connection.
  bool Evictable() const { return !busy_ && !closed_; }
  void Evict() { Close(); }

 private:
  void Read() {
    if (server_->stopping) return Close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options.header_limit));
    parser_->body_limit(server_->options.body_limit);
    // The header within header_timeout (slow or idle peers go), then the
    // body within read_timeout.
    stream_.expires_after(server_->options.header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || self->parser_->is_done()) return self->OnRead(ec);
      self->stream_.expires_after(self->server_->options.read_timeout);
      bhttp::async_read(self->stream_, self->buffer_, *self->parser_,
                        [self](beast::error_code ec, std::size_t) { self->OnRead(ec); });
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted ||
        ec == beast::error::timeout || ec == net::error::connection_reset ||
        ec == net::error::eof) {
      return Close();
    }
    if (ec) {
      int status = 400;
      if (ec == bhttp::error::body_limit) status = 413;
      if (ec == bhttp::error::header_limit) status = 431;
      Response r = JsonError(status, "bad request: " + ec.message());
      r.close = true;
      keep_alive_ = false;
      return Write(std::move(r));
    }
    auto msg = parser_->release();
    busy_ = true;  // from here until its response is written
    keep_alive_ = msg.keep_alive();
    // RFC 9112 6.3: a request whose final transfer coding is not chunked has
    // no knowable length; its bytes must not be read as another request.
    if (msg.find(bhttp::field::transfer_encoding) != msg.end() && !msg.chunked()) {
      Response r = JsonError(400, "bad request: Transfer-Encoding must end in chunked");
      r.close = true;
      keep_alive_ = false;
      return Write(std::move(r));
    }
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    req.headers.reserve(static_cast<std::size_t>(std::distance(msg.begin(), msg.end())));
    for (const auto& f : msg) {
      req.headers.push_back({std::string(f.name_string()), std::string(f.value())});
    }
    req.body = std::move(msg.body());
    req.remote = remote_;
    // The handler owns the deadline of its own work (long-polls may wait).
    stream_.expires_never();
    auto replied = std::make_shared<std::atomic<bool>>(false);
    server_->handler(std::move(req), [self = shared_from_this(),
                                      replied](Response r) {
      if (replied->exchange(true)) return;  // a second reply is a bug; ignore
      // Inline when the reply comes on the io thread (no scheduler pass);
      // queued to it when it comes from another thread.
      net::dispatch(self->stream_.get_executor(),
                    [self, r = std::move(r)]() mutable { self->Write(std::move(r)); });
    });
  }

  void Write(Response r) {
    if (r.stream) return StartStream(std::move(r));
    bhttp::response<bhttp::string_body> res;
    res.version(11);
    res.result(static_cast<unsigned>(r.status));
    res.set(bhttp::field::server, "matchmaker");
    res.set(bhttp::field::content_type, r.content_type);
    for (auto& h : r.headers) res.set(h.name, h.value);
    res.body() = std::move(r.body);
    keep_alive_ = keep_alive_ && !r.close && !server_->stopping;
    res.keep_alive(keep_alive_);
    res.prepare_payload();
    out_.clear();
    if (!wire::Serialize(res, out_)) return Close();
    stream_.expires_after(server_->options.write_timeout);
    net::async_write(stream_, net::buffer(out_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->busy_ = false;
      if (ec || !self->keep_alive_) return self->Close();
      self->Read();
    });
  }

  void Close() {
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    if (streaming_) {
      streaming_ = false;
      chunks_.clear();
      if (auto fn = std::exchange(on_stream_close_, nullptr)) fn();
    }
  }

 public:
  // The streamed body (Response::stream): the chunked header, then chunks
  // as they are written, one write at a time, each with the write timeout.
  bool StreamWrite(std::string data) {
    if (!streaming_ || ending_ || data.empty()) return false;
    if (queued_bytes_ + data.size() > stream_limit_) return false;
    queued_bytes_ += data.size();
    chunks_.push_back(std::move(data));
    if (!writing_) WriteNextChunk();
    return true;
  }
  void EndStream() {
    if (!streaming_ || ending_) return;
    ending_ = true;
    if (!writing_) WriteNextChunk();
  }
  bool StreamClosed() const { return !streaming_ || ending_; }
  void OnStreamClose(std::function<void()> fn) {
    if (!streaming_) {
      if (fn) fn();
      return;
    }
    on_stream_close_ = std::move(fn);
  }

 private:
  void StartStream(Response r) {
    streaming_ = true;
    stream_limit_ = r.stream_limit;
    auto res = std::make_shared<bhttp::response<bhttp::empty_body>>();
    res->version(11);
    res->result(static_cast<unsigned>(r.status));
    res->set(bhttp::field::server, "matchmaker");
    res->set(bhttp::field::content_type, r.content_type);
    res->set(bhttp::field::cache_control, "no-cache");
    for (auto& h : r.headers) res->set(h.name, h.value);
    res->keep_alive(false);
    res->chunked(true);
    auto sr = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*res);
    stream_.expires_after(server_->options.write_timeout);
    writing_ = true;
    bhttp::async_write_header(stream_, *sr, [self = shared_from_this(), res, sr, fn = std::move(r.stream)](
                                                 beast::error_code ec, std::size_t) {
      self->writing_ = false;
      if (ec) return self->Close();
      self->WatchPeer();
      fn(std::make_shared<StreamHandle>(self));
      if (!self->writing_) self->WriteNextChunk();
    });
  }

  // The peer sends nothing on a watch: any read completing means it left
  // (or broke the protocol). Read from the socket itself: the stream's
  // timer belongs to the writes.
  void WatchPeer() {
    stream_.socket().async_read_some(net::buffer(peer_byte_), [self = shared_from_this()](beast::error_code, std::size_t) {
      if (self->streaming_) self->Close();
    });
  }

  void WriteNextChunk() {
    if (!streaming_) return;
    if (chunks_.empty()) {
      if (!ending_) return;
      writing_ = true;
      stream_.expires_after(server_->options.write_timeout);
      net::async_write(stream_, bhttp::make_chunk_last(), [self = shared_from_this()](beast::error_code, std::size_t) {
        self->writing_ = false;
        self->Close();
      });
      return;
    }
    writing_ = true;
    stream_.expires_after(server_->options.write_timeout);
    net::async_write(stream_, bhttp::make_chunk(net::buffer(chunks_.front())),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->writing_ = false;
                       if (ec || !self->streaming_) return self->Close();
                       self->queued_bytes_ -= self->chunks_.front().size();
                       self->chunks_.pop_front();
                       self->WriteNextChunk();
                     });
  }

  // What a handler holds: the session, while it streams.
  class StreamHandle : public Stream {
   public:
    explicit StreamHandle(std::shared_ptr<Session> s) : s_(std::move(s)) {}
    bool Write(std::string data) override { return s_->StreamWrite(std::move(data)); }
    void Close() override { s_->EndStream(); }
    bool closed() const override { return s_->StreamClosed(); }
    void OnClose(std::function<void()> fn) override { s_->OnStreamClose(std::move(fn)); }

   private:
    std::shared_ptr<Session> s_;
  };

  TcpStream stream_;
  std::string out_;  // the response being written
  std::shared_ptr<Server::Impl> server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string source_;  // remote address
  std::string remote_;  // address:port
  bool keep_alive_ = false;
  bool busy_ = false;
  bool closed_ = false;
  // Streaming (Response::stream).
  bool streaming_ = false;
  bool ending_ = false;
  bool writing_ = false;
  std::deque<std::string> chunks_;
  std::size_t queued_bytes_ = 0;
  std::size_t stream_limit_ = 0;
  std::function<void()> on_stream_close_;
  std::array<char, 1> peer_byte_{};
};

}  // namespace

void Server::Impl::Accept() {
  acceptor.async_accept(
      io,  // one thread runs the io_context: no strand per connection
      [self = shared_from_this()](beast::error_code ec, TcpSocket socket) {
        if (ec == net::error::operation_aborted || self->stopping) return;
        if (ec) {
          if (self->backoff.count() == 0 && self->options.on_accept_error) {
            self->options.on_accept_error("accept on " + self->options.address + ": " + ec.message() +
                                          "; backing off until it succeeds again");
          }
          self->backoff = std::min<std::chrono::milliseconds>(
              std::chrono::milliseconds(1000), std::max<std::chrono::milliseconds>(std::chrono::milliseconds(10),
                                                                                     self->backoff * 2));
          self->backoff_timer.expires_after(self->backoff);
          self->backoff_timer.async_wait([self](beast::error_code wait_ec) {
            if (!wait_ec && !self->stopping) self->Accept();
          });
          return;
        }
        self->backoff = std::chrono::milliseconds(0);
        self->Admit(std::move(socket));
        self->Accept();
      });
}

void Server::Impl::Admit(TcpSocket socket) {
  beast::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  std::string source = ep.address().to_string();
  std::string remote = source + ":" + std::to_string(ep.port());
  beast::error_code ignored;
  if (options.max_connections_per_source > 0) {
    auto it = per_source.find(source);
    if (it != per_source.end() && it->second >= options.max_connections_per_source) {
      socket.close(ignored);  // this address holds its share: refuse it, not the others
      return;
    }
  }
  if (sessions.size() >= options.max_connections) {
    // Full: a connection waiting for a request gives its place; refused
    // only when every one is busy.
    Session* victim = nullptr;
    for (auto* s : sessions) {
      if (s->Evictable()) {
        victim = s;
        break;
      }
    }
    if (!victim) {
      socket.close(ignored);
      return;
    }
    victim->Evict();
  }
  socket.set_option(tcp::no_delay(true), ignored);  // request/response: no Nagle wait on small writes
  ++per_source[source];
  std::make_shared<Session>(std::move(socket), shared_from_this(), std::move(source), std::move(remote))->Start();
}

Server::Server(net::io_context& io, ServerOptions options, Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handler))) {}

Server::~Server() { Stop(); }

std::optional<std::string> Server::Start() {
  beast::error_code ec;
  auto address = net::ip::make_address(impl_->options.address, ec);
  if (ec) return "invalid listen address '" + impl_->options.address + "'";
  tcp::endpoint ep(address, impl_->options.port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return "listen on " + impl_->options.address + ":" +
           std::to_string(impl_->options.port) + ": " + ec.message();
  }
  impl_->Accept();
  return std::nullopt;
}

std::uint16_t Server::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void Server::Stop() {
  if (impl_->stopping) return;
  impl_->stopping = true;
  beast::error_code ec;
  impl_->acceptor.close(ec);
  impl_->backoff_timer.cancel();
  auto sessions = impl_->sessions;  // Shutdown may erase from the set
  for (auto* s : sessions) static_cast<Session*>(s)->Shutdown();
}

std::size_t Server::connections() const { return impl_->sessions.size(); }

std::optional<std::pair<std::string, std::uint16_t>> SplitHostPort(
    std::string_view address) {
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = address.substr(0, colon);
  std::string_view port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || p != port.data() + port.size() || value > 65535) {
    return std::nullopt;
  }
  return std::make_pair(std::string(host), static_cast<std::uint16_t>(value));
}

}  // namespace mm::http
