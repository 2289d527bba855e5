#pragma once

// The client API on --listen:
//   POST   /request[?pool=NAME|?selector=k=v,k2=v2][&wait=2s]  200 | 202 | 400 | 401 | 404 | 429 | 503
//   GET    /request   the client's current state (200 slot, 202 queued, 404 neither)
//   DELETE /request   cancels a queued request (200, 404 when not queued)
// 200 bodies are "host:port" (text/plain), or with Accept: application/json
// {"clientId","pool","instance","address","ports":{...},"metadata":{...}}.
// POST may carry {"metadata": {...}} (at most 4 KiB, else 413): match
// metadata sent to the game server as the body of its POST /reservation/{id}.
// Runs on the io thread.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "operator/apiserver/auth.h"
#include "operator/http/message.h"

namespace mm::allocate {
class Allocation;
}

namespace mm::apiserver {

using http::Reply;
using http::Request;
using http::Response;

class ClientApi {
 public:
  ClientApi(allocate::Allocation& allocator, const Authorizer& auth) : allocator_(allocator), auth_(auth) {}
  void Handle(Request&& req, Reply reply);

 private:
  allocate::Allocation& allocator_;
  const Authorizer& auth_;
};

inline constexpr std::size_t kMaxRequestBody = 4096;

// A POST /request body: index 0 the metadata object's JSON text ("" when
// the body is empty or has none), index 1 why the body is rejected (400).
std::variant<std::string, std::string> ParseRequestBody(std::string_view body);

// "2s", "1500ms", "1m": a long-poll duration; nullopt when malformed or
// over a minute.
std::optional<std::chrono::milliseconds> ParseWait(std::string_view s);

}  // namespace mm::apiserver
