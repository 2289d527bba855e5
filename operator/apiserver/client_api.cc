#include "operator/apiserver/client_api.h"

#include <boost/json.hpp>
#include <charconv>

#include "api/reservation/client_id.h"
#include "operator/apiserver/errors.h"
#include "operator/allocate/allocator.h"

namespace mm::apiserver {
namespace json = boost::json;
using allocate::Result;

namespace {

bool WantsJson(const Request& req) {
  const std::string* accept = req.Find("Accept");
  return accept && accept->find("application/json") != std::string::npos;
}

Response Answer(const Request& req, const std::string& client, const Result& r) {
  switch (r.kind) {
    case Result::Kind::kAllocated: {
      if (!WantsJson(req)) return Response{.body = r.address};
      json::object ports;
      for (const auto& [k, v] : r.ports) ports[k] = v;
      json::object o{{"clientId", client},
                     {"pool", r.pool},
                     {"instance", r.instance},
                     {"address", r.address},
                     {"ports", std::move(ports)}};
      if (!r.metadata.empty()) {
        boost::system::error_code ec;
        auto m = json::parse(r.metadata, ec);
        if (!ec) o["metadata"] = std::move(m);
      }
      return Response{.content_type = "application/json", .body = json::serialize(o)};
    }
    case Result::Kind::kQueued: {
      Response res = WantsJson(req) ? Response{.status = 202,
                                               .content_type = "application/json",
                                               .body = json::serialize(json::object{{"clientId", client},
                                                                                    {"status", "queued"}})}
                                    : Response{.status = 202, .body = "queued\n"};
      res.headers.push_back({"Retry-After", std::to_string(r.retry_after_s)});
      return res;
    }
    case Result::Kind::kNotFound: return Error(Reason::kNotFound, r.message);
    case Result::Kind::kQueueFull: return Error(Reason::kTooManyRequests, r.message);
    case Result::Kind::kUnavailable: {
      return Error(Reason::kServiceUnavailable, r.message, r.retry_after_s);
    }
  }
  return Error(Reason::kInternalError, "unexpected allocation result");
}

}  // namespace

std::variant<std::string, std::string> ParseRequestBody(std::string_view body) {
  using Out = std::variant<std::string, std::string>;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return Out(std::in_place_index<0>, "");
  if (body.size() > kMaxRequestBody) {
    return Out(std::in_place_index<1>, "the request body is " + std::to_string(body.size()) + " bytes; at most " +
                                           std::to_string(kMaxRequestBody) + " are accepted");
  }
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 32;
  auto v = json::parse(body, ec, {}, opts);
  if (ec) return Out(std::in_place_index<1>, "the request body is not JSON: " + ec.message());
  const auto* o = v.if_object();
  if (!o) return Out(std::in_place_index<1>, "the request body must be a JSON object like {\"metadata\": {...}}");
  for (const auto& kv : *o) {
    if (kv.key() != "metadata") {
      return Out(std::in_place_index<1>, "unknown field \"" + std::string(kv.key()) + "\" in the request body (only metadata)");
    }
  }
  const auto* m = o->if_contains("metadata");
  if (!m || m->is_null()) return Out(std::in_place_index<0>, "");
  if (!m->is_object()) return Out(std::in_place_index<1>, "metadata must be a JSON object");
  return Out(std::in_place_index<0>, json::serialize(*m));
}

std::optional<std::chrono::milliseconds> ParseWait(std::string_view s) {
  long long n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || n < 0) return std::nullopt;
  std::string_view unit(p, static_cast<std::size_t>(s.data() + s.size() - p));
  std::chrono::milliseconds ms;
  if (unit == "ms") {
    ms = std::chrono::milliseconds(n);
  } else if (unit == "s" || unit.empty()) {
    ms = std::chrono::seconds(n);
  } else if (unit == "m") {
    ms = std::chrono::minutes(n);
  } else {
    return std::nullopt;
  }
  if (ms > std::chrono::minutes(1)) return std::nullopt;
  return ms;
}

void ClientApi::Handle(Request&& req, Reply reply) {
  if (req.path != "/request") return reply(Error(Reason::kNotFound, "not found: the client API serves /request"));
  if (req.method != "POST" && req.method != "GET" && req.method != "DELETE") {
    return reply(Error(Reason::kMethodNotAllowed, "method " + req.method + " not allowed"));
  }
  auto who = auth_.Authenticate(req);
  if (auto* err = std::get_if<AuthError>(&who)) {
    Response res = Error(Reason::kUnauthorized, err->message);
    if (!err->challenge.empty()) res.headers.push_back({"WWW-Authenticate", err->challenge});
    return reply(std::move(res));
  }
  std::string client = std::get<std::string>(std::move(who));
  if (auto why = reservation::CheckClientId(client)) return reply(Error(Reason::kBadRequest, *why));

  if (req.method == "GET") return reply(Answer(req, client, allocator_.Lookup(client)));
  if (req.method == "DELETE") {
    if (!allocator_.Cancel(client)) return reply(Error(Reason::kNotFound, "the client is not queued"));
    return reply(Response{.body = "cancelled\n"});
  }
  allocate::Request ar;
  ar.client = client;
  if (req.body.size() > kMaxRequestBody) {
    return reply(Error(Reason::kRequestEntityTooLarge, "the request body is " + std::to_string(req.body.size()) +
                                                           " bytes; at most " + std::to_string(kMaxRequestBody) +
                                                           " (match metadata) are accepted"));
  }
  auto body = ParseRequestBody(req.body);
  if (body.index() == 1) return reply(Error(Reason::kBadRequest, std::get<1>(body)));
  ar.metadata = std::get<0>(std::move(body));
  for (const auto& [k, v] : http::ParseQuery(req.query)) {
    if (k == "pool") {
      ar.pool = v;
    } else if (k == "selector") {
      std::string_view sel = v;
      while (!sel.empty()) {
        auto comma = sel.find(',');
        std::string_view term = sel.substr(0, comma);
        auto eq = term.find('=');
        if (eq == std::string_view::npos || eq == 0) {
          return reply(Error(Reason::kBadRequest, "selector terms are key=value, comma-separated"));
        }
        ar.selector[std::string(term.substr(0, eq))] = std::string(term.substr(eq + 1));
        sel = comma == std::string_view::npos ? std::string_view{} : sel.substr(comma + 1);
      }
    } else if (k == "wait") {
      auto w = ParseWait(v);
      if (!w) return reply(Error(Reason::kBadRequest, "wait must be a duration like 2s or 500ms, at most 1m"));
      ar.wait = *w;
    }
  }
  if (!ar.pool.empty() && !ar.selector.empty()) return reply(Error(Reason::kBadRequest, "use pool or selector, not both"));
  allocator_.Allocate(std::move(ar), [req = std::move(req), client = std::move(client), reply = std::move(reply)](Result r) {
    reply(Answer(req, client, r));
  });
}

}  // namespace mm::apiserver
