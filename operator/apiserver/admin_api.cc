#include "operator/apiserver/admin_api.h"

#include <boost/json.hpp>

#include "api/v1alpha1/codec.h"
#include "operator/apiserver/browser_guard.h"
#include "operator/apiserver/errors.h"
#include "operator/apiserver/objects.h"
#include "operator/apiserver/watch.h"
#include "api/v1alpha1/decode.h"
#include "operator/metrics/metrics.h"
#include "operator/reconcile/controller.h"
#include "operator/state/instance_codec.h"

namespace mm::apiserver {
namespace json = boost::json;
namespace {

Response Json(int status, const json::value& v) {
  return Response{.status = status, .content_type = "application/json", .body = json::serialize(v) + "\n"};
}

// Kubernetes' 422: every field error, and the first ones in the message.
Response Invalid(const std::vector<api::FieldError>& errors) {
  std::vector<std::string> causes;
  std::string message;
  for (const auto& e : errors) {
    causes.push_back(e.ToString());
    if (message.size() < 400) message += (message.empty() ? "" : "; ") + e.ToString();
  }
  return Error(Reason::kInvalid, "invalid ServerPool: " + message, 0, causes);
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

json::value ListOf(const std::vector<api::ServerPool>& pools, const LabelSelector& selector, std::uint64_t rv) {
  json::array items;
  for (const auto& p : pools) {
    if (Matches(selector, p.metadata.labels)) items.push_back(api::ToJson(p));
  }
  return ListObject("ServerPoolList", std::move(items), rv);
}

// The query of a GET: ?watch, ?resourceVersion, ?labelSelector.
struct ListQuery {
  bool watch = false;
  std::optional<std::uint64_t> since;
  LabelSelector selector;
  std::string error;
};
ListQuery ParseListQuery(std::string_view query) {
  ListQuery q;
  for (const auto& [k, v] : http::ParseQuery(query)) {
    if (k == "watch") {
      q.watch = v.empty() || v == "true" || v == "1";
    } else if (k == "resourceVersion" && !v.empty() && v != "0") {
      char* end = nullptr;
      auto n = std::strtoull(v.c_str(), &end, 10);
      if (*end || v.front() == '-') q.error = "resourceVersion must be a number";
      q.since = n;
    } else if (k == "labelSelector") {
      auto sel = ParseLabelSelector(v);
      if (!sel) q.error = "labelSelector \"" + v + "\": expected key=value, key==value or key!=value, comma-separated";
      if (sel) q.selector = std::move(*sel);
    }
  }
  return q;
}

}  // namespace

AdminApi::AdminApi(reconcile::Controller& controller, metrics::Metrics& metrics, std::optional<std::string> token,
                   std::function<std::optional<std::string>()> not_ready, std::vector<std::string> allowed_hosts,
                   WatchHub* watches)
    : controller_(controller),
      metrics_(metrics),
      token_(std::move(token)),
      not_ready_(std::move(not_ready)),
      allowed_hosts_(std::move(allowed_hosts)),
      watches_(watches) {}

void AdminApi::Handle(Request&& req, Reply reply) {
  // A web page must not drive the admin API (it runs commands through pools).
  if (auto why = RefuseBrowser(req, allowed_hosts_)) return reply(Error(Reason::kForbidden, *why));
  if (req.path == "/healthz") return reply(Response{.body = "ok\n"});
  if (req.path == "/readyz") {
    if (!controller_.started()) return reply(Response{.status = 503, .body = "recovering\n"});
    if (not_ready_) {
      if (auto why = not_ready_()) return reply(Response{.status = 503, .body = *why + "\n"});
    }
    return reply(Response{.body = "ok\n"});
  }
  if (req.path == "/metrics") {
    return reply(Response{.content_type = "text/plain; version=0.0.4; charset=utf-8", .body = metrics_.Serialize()});
  }
  if (req.path == kPoolsPath || req.path.starts_with(std::string(kPoolsPath) + "/")) {
    if (token_) {
      const std::string* auth = req.Find("Authorization");
      if (!auth || !auth->starts_with("Bearer ") || !ConstantTimeEqual(auth->substr(7), *token_)) {
        Response res = Error(Reason::kUnauthorized, "Unauthorized: a valid bearer token is required");
        res.headers.push_back({"WWW-Authenticate", "Bearer realm=\"matchmaker-admin\""});
        return reply(std::move(res));
      }
    }
    if ((req.method == "PUT" || req.method == "POST") && !ReadableMediaType(req)) {
      return reply(Error(Reason::kUnsupportedMediaType,
                         "Content-Type must be application/yaml, application/x-yaml or application/json"));
    }
    return Pools(std::move(req), std::move(reply));
  }
  reply(Error(Reason::kNotFound, "the server could not find the requested resource"));
}

void AdminApi::Pools(Request&& req, Reply reply) {
  std::string rest = req.path.substr(std::string_view(kPoolsPath).size());
  if (!rest.empty()) rest = rest.substr(1);  // drop '/'
  auto slash = rest.find('/');
  std::string name = rest.substr(0, slash);
  std::string sub = slash == std::string::npos ? "" : rest.substr(slash + 1);
  const std::string& m = req.method;
  ListQuery q;
  if (m == "GET") {
    q = ParseListQuery(req.query);
    if (!q.error.empty()) return reply(Error(Reason::kBadRequest, q.error));
    if (q.watch && !watches_) return reply(Error(Reason::kMethodNotAllowed, "watches are not served here"));
    bool watchable = sub.empty() || sub == "instances";
    if (q.watch && watchable) {
      WatchHub::Request w;
      w.kind = sub.empty() ? WatchHub::Request::Kind::kPools : WatchHub::Request::Kind::kInstances;
      w.pool = name;
      w.selector = q.selector;
      w.since = q.since;
      return reply(watches_->Watch(std::move(w)));
    }
  }

  if (name.empty()) {
    if (m == "GET") return reply(Json(200, ListOf(controller_.List(), q.selector, controller_.resource_version())));
    if (m != "POST") return reply(Error(Reason::kMethodNotAllowed, "method " + m + " not allowed"));
  } else if (!sub.empty()) {
    if (m != "GET") return reply(Error(Reason::kMethodNotAllowed, "method " + m + " not allowed"));
    if (sub == "instances") {
      auto rv = controller_.resource_version();
      auto list = controller_.Instances(name);
      if (!list) return reply(Error(Reason::kNotFound, "serverpools \"" + name + "\" not found"));
      json::array items;
      for (const auto* i : *list) items.push_back(InstanceObject(*i));
      return reply(Json(200, ListObject("InstanceList", std::move(items), rv)));
    }
    if (sub == "events") {
      if (!controller_.Get(name)) return reply(Error(Reason::kNotFound, "serverpools \"" + name + "\" not found"));
      json::array items;
      for (const auto& e : controller_.Events(name)) {
        items.push_back(json::object{{"time", e.time}, {"type", e.type}, {"reason", e.reason}, {"message", e.message}});
      }
      return reply(Json(200, ListObject("EventList", std::move(items), controller_.resource_version())));
    }
    return reply(Error(Reason::kNotFound, "the server could not find the requested resource"));
  } else if (m == "GET") {
    auto pool = controller_.Get(name);
    if (!pool) return reply(Error(Reason::kNotFound, "serverpools \"" + name + "\" not found"));
    return reply(Json(200, api::ToJson(*pool)));
  } else if (m == "DELETE") {
    bool force = false;
    for (const auto& [k, v] : http::ParseQuery(req.query)) {
      if (k == "force") force = v.empty() || v == "true" || v == "1";
    }
    return controller_.Delete(name, force, [reply](std::optional<api::ServerPool> p, std::string error) {
      if (!p) return reply(Error(error.starts_with("store") ? Reason::kInternalError : Reason::kNotFound, error));
      reply(Json(200, api::ToJson(*p)));
    });
  } else if (m != "PUT") {
    return reply(Error(Reason::kMethodNotAllowed, "method " + m + " not allowed"));
  }

  // PUT /serverpools/{name} or POST /serverpools: body is YAML or JSON.
  auto decoded = api::DecodePools(req.body, "request body");
  if (!decoded.ok()) return reply(Invalid(decoded.errors));
  if (decoded.pools.size() != 1) {
    return reply(Error(Reason::kBadRequest, "the body must hold exactly one ServerPool, found " +
                                    std::to_string(decoded.pools.size())));
  }
  api::ServerPool pool = std::move(decoded.pools[0]);
  if (!name.empty() && pool.metadata.name != name) {
    return reply(Error(Reason::kBadRequest, "metadata.name \"" + pool.metadata.name + "\" does not match the name in the URL \"" +
                                    name + "\""));
  }
  if (name.empty() && controller_.Get(pool.metadata.name)) {
    return reply(Error(Reason::kConflict, "serverpools \"" + pool.metadata.name + "\" already exists"));
  }
  controller_.Apply(std::move(pool), [reply](reconcile::ApplyOutcome outcome, api::ServerPool p, std::string error) {
    switch (outcome) {
      case reconcile::ApplyOutcome::kCreated: return reply(Json(201, api::ToJson(p)));
      case reconcile::ApplyOutcome::kUpdated:
      case reconcile::ApplyOutcome::kUnchanged: return reply(Json(200, api::ToJson(p)));
      case reconcile::ApplyOutcome::kConflict: return reply(Error(Reason::kConflict, error));
      case reconcile::ApplyOutcome::kError: return reply(Error(Reason::kInternalError, error));
    }
  });
}

}  // namespace mm::apiserver
