#include "operator/http/client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace mm::http {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

namespace {

class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(net::io_context& io, ClientRequest req, std::function<void(ClientResponse)> done)
      : stream_(io), req_(std::move(req)), done_(std::move(done)) {}

  void Start() {
    beast::error_code ec;
    auto addr = net::ip::make_address(req_.host, ec);
    if (ec) return Finish("bad address " + req_.host);
    msg_.method_string(req_.method);
    msg_.target(req_.target);
    msg_.version(11);
    msg_.set(bhttp::field::host, req_.host);
    msg_.set(bhttp::field::user_agent, "matchmakerd");
    msg_.keep_alive(false);
    msg_.body() = req_.body;
    msg_.prepare_payload();
    stream_.expires_after(req_.timeout);
    stream_.async_connect(net::ip::tcp::endpoint(addr, req_.port),
                          [self = shared_from_this()](beast::error_code ec) {
                            if (ec) return self->Finish("connect: " + ec.message());
                            self->Write();
                          });
  }

 private:
  void Write() {
    bhttp::async_write(stream_, msg_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->Finish("write: " + ec.message());
      self->parser_.body_limit(1024 * 1024);
      bhttp::async_read(self->stream_, self->buffer_, self->parser_,
                        [self](beast::error_code ec, std::size_t) {
                          if (ec) return self->Finish("read: " + ec.message());
                          ClientResponse r;
                          r.status = static_cast<int>(self->parser_.get().result_int());
                          r.body = std::move(self->parser_.get().body());
                          self->Deliver(std::move(r));
                        });
    });
  }

  void Finish(std::string error) {
    ClientResponse r;
    r.error = std::move(error);
    Deliver(std::move(r));
  }

  void Deliver(ClientResponse r) {
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    stream_.close();
    if (done_) std::exchange(done_, nullptr)(std::move(r));
  }

  beast::tcp_stream stream_;
  ClientRequest req_;
  std::function<void(ClientResponse)> done_;
  bhttp::request<bhttp::string_body> msg_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
};

}  // namespace

void AsyncCall(net::io_context& io, ClientRequest request,
               std::function<void(ClientResponse)> done) {
  std::make_shared<Call>(io, std::move(request), std::move(done))->Start();
}

}  // namespace mm::http
