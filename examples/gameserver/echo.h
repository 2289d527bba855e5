#pragma once

// The game port of mm-gameserver: echoes TCP streams and UDP datagrams.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace boost::asio {
class io_context;
}

namespace mm::gameserver {

class EchoServer {
 public:
  explicit EchoServer(boost::asio::io_context& io);
  ~EchoServer();
  // Listens on TCP and UDP `port` (0: any; UDP then takes the TCP port);
  // on UDP only when `tcp` is false (the TCP port is the control API's).
  std::optional<std::string> Start(const std::string& address,
                                   std::uint16_t port, bool tcp = true);
  std::uint16_t port() const;
  void Stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mm::gameserver
