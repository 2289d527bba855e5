#include "examples/gameserver/control_api.h"

#include "api/reservation/client_id.h"

namespace mm::gameserver {
namespace {

constexpr std::string_view kPrefix = "/reservation/";

http::Response Text(int status, std::string body) {
  return http::Response{.status = status, .body = std::move(body) + "\n"};
}

// Client ids hold no control characters (CheckClientId): only " and \ need escaping.
std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
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
  if (req.path == "/reservations") {
    if (req.method != "GET") return Text(405, "method not allowed");
    const std::string* accept = req.Find("Accept");
    if (accept && accept->find("application/json") != std::string::npos) {
      std::string body = "{\"reservations\":[";
      bool first = true;
      for (const auto& id : book_.List()) {
        body += first ? "\"" : ",\"";
        first = false;
        body += JsonEscape(id) + "\"";
      }
      return http::Response{.content_type = "application/json", .body = body + "]}\n"};
    }
    std::string body;
    for (const auto& id : book_.List()) body += id + "\n";  // ids hold no control characters
    return http::Response{.body = std::move(body)};
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
  if (req.method == "DELETE") {
    return book_.Release(*id) ? Text(200, "released") : Text(404, "no reservation");
  }
  return Text(405, "method not allowed");
}

}  // namespace mm::gameserver
