#pragma once

// The admin API, Kubernetes-shaped:
//   GET|POST      /apis/matchmaker.dev/v1alpha1/serverpools
//   GET|PUT|DELETE /apis/matchmaker.dev/v1alpha1/serverpools/{name}
//   GET           /apis/matchmaker.dev/v1alpha1/serverpools/{name}/instances
//   GET           /apis/matchmaker.dev/v1alpha1/serverpools/{name}/events
// plus /healthz, /readyz and /metrics. GETs of the list, a pool and its
// instances take ?watch=true (watch.h); the list takes ?labelSelector=.
// Objects carry metadata.resourceVersion; a PUT that names a stale one is
// 409. Errors are Kubernetes Status objects (errors.h). Runs on the io
// thread.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "operator/http/message.h"

namespace mm::reconcile {
class Controller;
}
namespace mm::metrics {
class Metrics;
}

namespace mm::apiserver {

class WatchHub;
using http::Reply;
using http::Request;
using http::Response;

inline constexpr char kPoolsPath[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

class AdminApi {
 public:
  // `token`: when set, /apis/ requires "Authorization: Bearer <token>".
  // `ready`: extra readiness condition (e.g. the backend is reachable).
  // `allowed_hosts`: Host names (besides IP addresses and localhost) that
  // browser requests may use (see browser_guard.h).
  AdminApi(reconcile::Controller& controller, metrics::Metrics& metrics, std::optional<std::string> token,
           std::function<std::optional<std::string>()> not_ready = nullptr,
           std::vector<std::string> allowed_hosts = {}, WatchHub* watches = nullptr);

  void Handle(Request&& req, Reply reply);

 private:
  void Pools(Request&& req, Reply reply);

  reconcile::Controller& controller_;
  metrics::Metrics& metrics_;
  std::optional<std::string> token_;
  std::function<std::optional<std::string>()> not_ready_;
  std::vector<std::string> allowed_hosts_;
  WatchHub* watches_;
};

}  // namespace mm::apiserver
