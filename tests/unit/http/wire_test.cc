#include "operator/http/wire.h"

#include <gtest/gtest.h>

#include <boost/beast/http/string_body.hpp>
#include <boost/optional.hpp>
#include <string>
#include <utility>
#include <vector>

namespace mm::http {
namespace {

namespace bhttp = boost::beast::http;

TEST(WireSerialize, AResponseIsItsHeaderThenItsBody) {
  bhttp::response<bhttp::string_body> res;
  res.version(11);
  res.result(200);
  res.set(bhttp::field::server, "matchmaker");
  res.set(bhttp::field::content_type, "application/json");
  res.body() = "{\"a\":1}";
  res.keep_alive(true);
  res.prepare_payload();
  std::string out;
  ASSERT_TRUE(wire::Serialize(res, out));
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nServer: matchmaker\r\nContent-Type: application/json\r\n"
            "Content-Length: 7\r\n\r\n{\"a\":1}");
}

TEST(WireSerialize, ARequestAppendsToWhatIsThere) {
  bhttp::request<bhttp::string_body> req;
  req.method_string("POST");
  req.target("/reservation/p%20q");
  req.version(11);
  req.set(bhttp::field::host, "127.0.0.1");
  req.keep_alive(false);
  req.prepare_payload();
  std::string out = "previous|";
  ASSERT_TRUE(wire::Serialize(req, out));
  EXPECT_EQ(out,
            "previous|POST /reservation/p%20q HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            "Content-Length: 0\r\n\r\n");
}

// A chunked body comes from the serializer in several pieces: every one is
// taken, in order, up to the last chunk.
TEST(WireSerialize, AChunkedBodyIsWholeAndEndsWithTheLastChunk) {
  bhttp::response<bhttp::string_body> res;
  res.version(11);
  res.result(200);
  res.body() = std::string(100'000, 'x');
  res.chunked(true);
  std::string out;
  ASSERT_TRUE(wire::Serialize(res, out));
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0), 0u) << out.substr(0, 80);
  EXPECT_NE(out.find("186a0\r\n" + std::string(100'000, 'x') + "\r\n"), std::string::npos);
  ASSERT_GE(out.size(), 5u);
  EXPECT_EQ(out.substr(out.size() - 5), "0\r\n\r\n");
}

// A body that the serializer gets one piece at a time, so that it takes
// several rounds of next() and consume().
struct PiecesBody {
  using value_type = std::vector<std::string>;
  static std::uint64_t size(const value_type& v) {
    std::uint64_t n = 0;
    for (const auto& s : v) n += s.size();
    return n;
  }
  class writer {
   public:
    using const_buffers_type = boost::asio::const_buffer;
    template <bool isRequest, class Fields>
    writer(const bhttp::header<isRequest, Fields>&, const value_type& v) : v_(v) {}
    void init(boost::beast::error_code& ec) { ec = {}; }
    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
      ec = {};
      if (i_ == v_.size()) return boost::none;
      const std::string& s = v_[i_++];
      return std::make_pair(boost::asio::const_buffer(s.data(), s.size()), i_ < v_.size());
    }

   private:
    const value_type& v_;
    std::size_t i_ = 0;
  };
};

TEST(WireSerialize, ABodyGivenInPiecesIsTakenWhole) {
  bhttp::response<PiecesBody> res;
  res.version(11);
  res.result(200);
  res.body() = {"one,", "two,", "three"};
  res.prepare_payload();
  std::string out;
  ASSERT_TRUE(wire::Serialize(res, out));
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\none,two,three");
}

}  // namespace
}  // namespace mm::http
