#include "examples/gameserver/echo.h"

#include <array>
#include <boost/asio.hpp>

namespace mm::gameserver {
namespace net = boost::asio;
using tcp = net::ip::tcp;
using udp = net::ip::udp;

namespace {

class EchoConnection : public std::enable_shared_from_this<EchoConnection> {
 public:
  explicit EchoConnection(tcp::socket s) : socket_(std::move(s)) {}
  void Read() {
    socket_.async_read_some(
        net::buffer(data_), [self = shared_from_this()](auto ec, std::size_t n) {
          if (ec) return;
          net::async_write(self->socket_, net::buffer(self->data_, n),
                           [self](auto ec, std::size_t) {
                             if (!ec) self->Read();
                           });
        });
  }

 private:
  tcp::socket socket_;
  std::array<char, 4096> data_;
};

}  // namespace

struct EchoServer::Impl : std::enable_shared_from_this<EchoServer::Impl> {
  explicit Impl(net::io_context& io) : acceptor(io), udp_socket(io) {}

  void Accept() {
    acceptor.async_accept([self = shared_from_this()](auto ec, tcp::socket s) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) std::make_shared<EchoConnection>(std::move(s))->Read();
      self->Accept();
    });
  }

  void Receive() {
    udp_socket.async_receive_from(
        net::buffer(datagram), peer,
        [self = shared_from_this()](auto ec, std::size_t n) {
          if (ec == net::error::operation_aborted) return;
          if (!ec) {
            boost::system::error_code ignored;
            self->udp_socket.send_to(net::buffer(self->datagram, n), self->peer,
                                     0, ignored);
          }
          self->Receive();
        });
  }

  tcp::acceptor acceptor;
  udp::socket udp_socket;
  udp::endpoint peer;
  std::array<char, 65536> datagram;
};

EchoServer::EchoServer(net::io_context& io) : impl_(std::make_shared<Impl>(io)) {}
EchoServer::~EchoServer() { Stop(); }

std::optional<std::string> EchoServer::Start(const std::string& address,
                                             std::uint16_t port, bool with_tcp) {
  boost::system::error_code ec;
  auto addr = net::ip::make_address(address, ec);
  if (ec) return "invalid address '" + address + "'";
  if (with_tcp) {
    tcp::endpoint ep(addr, port);
    impl_->acceptor.open(ep.protocol(), ec);
    if (!ec) impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) impl_->acceptor.bind(ep, ec);
    if (!ec) impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return "game port tcp " + std::to_string(port) + ": " + ec.message();
    port = impl_->acceptor.local_endpoint().port();
  }
  udp::endpoint uep(addr, port);
  impl_->udp_socket.open(uep.protocol(), ec);
  if (!ec) impl_->udp_socket.bind(uep, ec);
  if (ec) return "game port udp " + std::to_string(uep.port()) + ": " + ec.message();
  if (with_tcp) impl_->Accept();
  impl_->Receive();
  return std::nullopt;
}

std::uint16_t EchoServer::port() const {
  boost::system::error_code ec;
  auto ep = impl_->udp_socket.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void EchoServer::Stop() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  impl_->udp_socket.close(ec);
}

}  // namespace mm::gameserver
