#include "examples/gameserver/control_api.h"

#include <boost/json.hpp>

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
  if (req.path == "/reservations") {
    if (req.method != "GET") return Text(405, "method not allowed");
    const std::string* accept = req.Find("Accept");
    if (accept && accept->find("application/json") != std::string::npos) {
      boost::json::array ids;
      boost::json::object meta;
      for (const auto& id : book_.List()) {
        ids.emplace_back(id);
        if (auto m = book_.Metadata(id); !m.empty()) meta[id] = boost::json::parse(m);
      }
      return http::Response{.content_type = "application/json",
                            .body = boost::json::serialize(boost::json::object{
                                        {"reservations", std::move(ids)}, {"metadata", std::move(meta)}}) +
                                    "\n"};
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
    // Match metadata: {"metadata": {...}}; any other body is ignored, as a
    // server that does not use it would.
    std::string metadata;
    if (!req.body.empty()) {
      boost::system::error_code ec;
      auto v = boost::json::parse(req.body, ec);
      const auto* m = ec || !v.is_object() ? nullptr : v.as_object().if_contains("metadata");
      if (m && m->is_object()) metadata = boost::json::serialize(*m);
    }
    return book_.Reserve(*id, metadata) ? Text(200, "reserved") : Text(403, "full");
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
