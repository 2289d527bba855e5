#pragma once

// Guards for the admin API against web pages (issue 18). A page a developer
// visits can send a "simple" cross-origin POST with no CORS preflight, and
// DNS rebinding can make it same-origin with a hostile name that resolves to
// 127.0.0.1. mmctl, curl and Prometheus send neither Origin nor
// Sec-Fetch-Site, so they are never affected; browsers always send at least
// one of them on such requests.

#include <optional>
#include <string>
#include <vector>

#include "operator/http/message.h"

namespace mm::apiserver {

// Why `req` must be refused (403), or nullopt. Refused: Sec-Fetch-Site
// other than same-origin or none; an Origin that is not "http://" + Host;
// and, for any request a browser made, a Host whose name is not an IP
// address, "localhost" or one of `allowed_hosts`.
std::optional<std::string> RefuseBrowser(const http::Request& req, const std::vector<std::string>& allowed_hosts);

// True when the body's media type is one the admin API reads:
// application/yaml, application/x-yaml or application/json (parameters
// such as charset ignored, case-insensitive).
bool ReadableMediaType(const http::Request& req);

}  // namespace mm::apiserver
