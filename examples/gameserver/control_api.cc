#include "examples/gameserver/control_api.h"

#include "api/reservation/client_id.h"

namespace mm::gameserver {
namespace {

constexpr std::string_view kPrefix = "/reservation/";

http::Response Text(int status, std::string body) {
  return http::Response{.status = status, .body = std::move(body) + "\n"};
}

}  // namespace

http::Response ControlApi::Handle(const http::Request& req) {
  if (req.path == "/close") {
    if (req.method != "POST") return Text(405, "method not allowed");
    if (on_close_) on_close_();
    http::Response r = Text(200, "closing");
    r.close = true;
    return r;
  }
  if (!req.path.starts_with(kPrefix)) return Text(404, "not found");
  std::string_view segment = std::string_view(req.path).substr(kPrefix.size());
  if (segment.find('/') != std::string_view::npos) return Text(404, "not found");
  auto id = reservation::PercentDecode(segment);
  if (!id) return Text(400, "malformed percent-encoding");
  if (auto why = reservation::CheckClientId(*id)) return Text(400, *why);
  if (req.method == "POST") {
    return book_.Reserve(*id) ? Text(200, "reserved") : Text(403, "full");
  }
  if (req.method == "GET") {
    return book_.Holds(*id) ? Text(200, "reserved") : Text(404, "no reservation");
  }
  return Text(405, "method not allowed");
}

}  // namespace mm::gameserver
