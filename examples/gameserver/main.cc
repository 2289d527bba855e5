// mm-gameserver: a reference game server for matchmaker. It serves the
// Reservation API on its control port and echoes on its game port.

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <cstdio>
#include <cstdlib>

#include "examples/gameserver/control_api.h"
#include "examples/gameserver/echo.h"
#include "operator/http/server.h"

int main(int argc, char** argv) {
  CLI::App app{"mm-gameserver: the Reservation API and an echo game port"};
  std::string address = "0.0.0.0";
  std::uint16_t control_port = 3000;
  std::uint16_t game_port = 7777;
  std::size_t capacity = 3;
  unsigned delay_ms = 0;
  app.add_option("--address", address, "Address to listen on")
      ->envname("MM_ADDRESS")
      ->capture_default_str();
  app.add_option("--control-port", control_port,
                 "Reservation API port (0: any free port)")
      ->envname("MM_CONTROL_PORT")
      ->capture_default_str();
  app.add_option("--game-port", game_port,
                 "TCP+UDP echo port (0: any free port; the control port: UDP echo, TCP is the control API)")
      ->envname("MM_PORT_GAME")
      ->capture_default_str();
  app.add_option("--capacity", capacity, "Client slots")
      ->envname("MM_CAPACITY")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--reservation-delay-ms", delay_ms,
                 "Answer POST /reservation only after this delay (for testing timeouts)")
      ->envname("MM_RESERVATION_DELAY_MS");
  unsigned exit_after_ms = 0;
  int exit_code = 0;
  app.add_option("--exit-after-ms", exit_after_ms,
                 "Exit this long after the control port is up (0: never; for testing crashes)")
      ->envname("MM_EXIT_AFTER_MS");
  app.add_option("--exit-code", exit_code, "The exit code of --exit-after-ms")
      ->check(CLI::Range(0, 255))
      ->envname("MM_EXIT_CODE");
  CLI11_PARSE(app, argc, argv);

  boost::asio::io_context io;
  mm::gameserver::ReservationBook book(capacity);
  mm::gameserver::EchoServer echo(io);
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  mm::http::Server* control_ptr = nullptr;
  auto shutdown = [&] {
    if (control_ptr) control_ptr->Stop();
    echo.Stop();
    signals.cancel();
  };
  mm::gameserver::ControlApi api(book, shutdown);
  mm::http::Server control(
      io, mm::http::ServerOptions{.address = address, .port = control_port},
      [&](mm::http::Request&& req, mm::http::Reply reply) {
        if (delay_ms == 0 || req.method != "POST" || req.path == "/close") return reply(api.Handle(req));
        auto timer = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(delay_ms));
        timer->async_wait([&api, timer, req = std::move(req), reply](auto) { reply(api.Handle(req)); });
      });
  control_ptr = &control;

  if (auto err = control.Start()) {
    std::fprintf(stderr, "mm-gameserver: control port: %s\n", err->c_str());
    return 1;
  }
  // One port for both, as go-matchmaker's servers: TCP is the control API.
  bool single_port = game_port != 0 && game_port == control.port();
  if (auto err = echo.Start(address, game_port, !single_port)) {
    std::fprintf(stderr, "mm-gameserver: %s\n", err->c_str());
    return 1;
  }
  signals.async_wait([&](auto ec, int) {
    if (!ec) shutdown();
  });
  std::printf("mm-gameserver: control=%u game=%u capacity=%zu\n", control.port(),
              echo.port(), capacity);
  std::fflush(stdout);
  boost::asio::steady_timer crash(io);
  if (exit_after_ms > 0) {
    crash.expires_after(std::chrono::milliseconds(exit_after_ms));
    crash.async_wait([exit_code](auto ec) {
      if (ec) return;
      std::printf("mm-gameserver: exiting with code %d (--exit-after-ms)\n", exit_code);
      std::fflush(stdout);
      std::_Exit(exit_code);
    });
  }
  io.run();
  crash.cancel();
  std::printf("mm-gameserver: bye\n");
  return 0;
}
