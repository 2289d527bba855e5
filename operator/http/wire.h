#pragma once
// Private to operator/http (server.cc, client.cc): a message serialized by
// Beast's serializer into one flat string, written with one buffer.
//
// http::async_write hands the socket the serializer's composite buffer
// sequence (the header's pieces, each field, the body), which every layer
// of the write walks again: counting, prefixing, building the iovec. In
// callgrind that walking was about a quarter of matchmakerd's instructions
// per allocation. Copying a few hundred bytes once costs far less.
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/serializer.hpp>
#include <string>

namespace mm::http::wire {

// Appends the whole of `msg` (header and body) to `out`. False on a body
// the serializer refuses (never for string_body).
template <bool isRequest, class Body, class Fields>
bool Serialize(const boost::beast::http::message<isRequest, Body, Fields>& msg, std::string& out) {
  boost::beast::http::serializer<isRequest, Body, Fields> sr{msg};
  boost::beast::error_code ec;
  do {
    sr.next(ec, [&](boost::beast::error_code& next_ec, const auto& buffers) {
      next_ec = {};
      std::size_t n = 0;
      for (auto b : boost::beast::buffers_range_ref(buffers)) {
        out.append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      sr.consume(n);
    });
  } while (!ec && !sr.is_done());
  return !ec;
}

}  // namespace mm::http::wire
