#include "operator/http/blocking_client.h"

#include <strings.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <sstream>

namespace mm::http {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

std::string HttpResult::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return "";
}

struct HttpConnection::Impl {
  Impl(std::string host, std::uint16_t port) : stream(io), host(std::move(host)), port(port) {}

  bool Connect(std::string& error) {
    if (connected) return true;
    beast::error_code ec;
    stream.expires_after(std::chrono::seconds(5));
    auto addr = net::ip::make_address(host, ec);
    if (ec) {
      net::ip::tcp::resolver resolver(io);
      auto results = resolver.resolve(host, std::to_string(port), ec);
      if (ec || results.empty()) {
        error = "resolve " + host + ": " + ec.message();
        return false;
      }
      addr = results.begin()->endpoint().address();
    }
    stream.connect(net::ip::tcp::endpoint(addr, port), ec);
    if (ec) {
      error = "connect: " + ec.message();
      return false;
    }
    connected = true;
    return true;
  }

  // Runs io until `done` or the deadline; returns false on timeout.
  bool RunUntil(bool& done, std::chrono::milliseconds timeout) {
    io.restart();
    io.run_for(timeout);
    return done;
  }

  HttpResult ReadResponse(std::chrono::milliseconds timeout) {
    HttpResult result;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    bool done = false;
    beast::error_code ec;
    stream.expires_after(timeout);
    bhttp::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    if (!RunUntil(done, timeout + std::chrono::seconds(1)) || ec) {
      result.error = done ? "read: " + ec.message() : "read: timeout";
      connected = false;
      stream.close();
      return result;
    }
    auto res = parser.release();
    result.status = static_cast<int>(res.result_int());
    result.body = res.body();
    result.keep_alive = res.keep_alive();
    for (const auto& f : res) {
      result.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    if (!result.keep_alive) {
      connected = false;
      stream.close();
    }
    return result;
  }

  bool WriteAll(const std::string& bytes, std::string& error,
                std::chrono::milliseconds timeout) {
    bool done = false;
    beast::error_code ec;
    stream.expires_after(timeout);
    net::async_write(stream, net::buffer(bytes), [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    if (!RunUntil(done, timeout + std::chrono::seconds(1)) || ec) {
      error = "write: " + (done ? ec.message() : std::string("timeout"));
      connected = false;
      stream.close();
      return false;
    }
    return true;
  }

  net::io_context io;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::string host;
  std::uint16_t port;
  bool connected = false;
};

HttpConnection::HttpConnection(std::string host, std::uint16_t port)
    : impl_(new Impl(std::move(host), port)) {}
HttpConnection::~HttpConnection() = default;

HttpResult HttpConnection::Call(const std::string& method, const std::string& target,
                                const std::string& body, const Headers& headers,
                                std::chrono::milliseconds timeout) {
  HttpResult result;
  if (!impl_->Connect(result.error)) return result;
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, impl_->host);
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  std::ostringstream os;
  os << req;
  if (!impl_->WriteAll(os.str(), result.error, timeout)) return result;
  return impl_->ReadResponse(timeout);
}

HttpResult HttpConnection::Stream(const std::string& target, const Headers& headers,
                                  const std::function<bool(std::string_view)>& on_line,
                                  std::chrono::milliseconds idle) {
  HttpResult result;
  auto& im = *impl_;
  if (!im.Connect(result.error)) return result;
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
  req.set(bhttp::field::host, im.host);
  for (const auto& [k, v] : headers) req.set(k, v);
  std::ostringstream os;
  os << req;
  if (!im.WriteAll(os.str(), result.error, std::chrono::seconds(10))) return result;

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(boost::none);
  std::string pending;
  bool stop = false;
  auto on_chunk = [&](std::uint64_t, std::string_view data, beast::error_code&) -> std::size_t {
    if (parser.get().result_int() != 200) {
      parser.get().body().append(data);  // an error body: kept whole
      return data.size();
    }
    pending.append(data);
    std::size_t start = 0;
    for (std::size_t nl; !stop && (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!on_line(std::string_view(pending).substr(start, nl - start))) stop = true;
    }
    pending.erase(0, start);
    return data.size();
  };
  parser.on_chunk_body(on_chunk);
  auto finish = [&] {
    im.connected = false;
    beast::error_code ignored;
    im.stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    im.stream.close();
  };
  // The header first.
  bool done = false;
  beast::error_code ec;
  im.stream.expires_after(idle);
  bhttp::async_read_header(im.stream, im.buffer, parser, [&](beast::error_code e, std::size_t) {
    ec = e;
    done = true;
  });
  if (!im.RunUntil(done, idle + std::chrono::seconds(1)) || ec) {
    result.error = done ? "read: " + ec.message() : "read: timeout";
    finish();
    return result;
  }
  result.status = static_cast<int>(parser.get().result_int());
  for (const auto& f : parser.get()) result.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  while (!stop && !parser.is_done()) {
    done = false;
    im.stream.expires_after(idle);
    bhttp::async_read_some(im.stream, im.buffer, parser, [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    if (!im.RunUntil(done, idle + std::chrono::seconds(1))) {
      result.error = "idle: no data for " + std::to_string(idle.count()) + " ms";
      break;
    }
    if (ec) {
      if (ec != bhttp::error::end_of_stream && ec != net::error::eof) result.error = "read: " + ec.message();
      break;
    }
  }
  if (result.status != 200) result.body = parser.get().body();
  finish();
  return result;
}

HttpResult HttpConnection::Raw(const std::string& bytes,
                               std::chrono::milliseconds timeout) {
  HttpResult result;
  if (!impl_->Connect(result.error)) return result;
  if (!impl_->WriteAll(bytes, result.error, timeout)) return result;
  return impl_->ReadResponse(timeout);
}

HttpResult HttpCall(std::uint16_t port, const std::string& method,
                    const std::string& target, const std::string& body,
                    const Headers& headers, std::chrono::milliseconds timeout) {
  HttpConnection conn(port);
  Headers h = headers;
  h.emplace_back("Connection", "close");
  return conn.Call(method, target, body, h, timeout);
}

}  // namespace mm::http
