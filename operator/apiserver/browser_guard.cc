#include "operator/apiserver/browser_guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace mm::apiserver {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// "host:port", "[::1]:port", "host" -> the host name, lower-case, without brackets.
std::string HostName(std::string_view host) {
  if (host.starts_with('[')) {
    auto end = host.find(']');
    return Lower(host.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1));
  }
  auto colon = host.rfind(':');
  return Lower(host.substr(0, colon));
}

bool IpLiteral(const std::string& name) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 || ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

}  // namespace

std::optional<std::string> RefuseBrowser(const http::Request& req, const std::vector<std::string>& allowed_hosts) {
  const std::string* site = req.Find("Sec-Fetch-Site");
  const std::string* origin = req.Find("Origin");
  if (!site && !origin) return std::nullopt;  // not a browser
  if (site) {
    std::string s = Lower(Trim(*site));
    if (s != "same-origin" && s != "none") return "refused: a " + s + " request from a web page";
  }
  const std::string* host = req.Find("Host");
  std::string name = host ? HostName(Trim(*host)) : "";
  bool allowed = IpLiteral(name) || name == "localhost" ||
                 std::find(allowed_hosts.begin(), allowed_hosts.end(), name) != allowed_hosts.end();
  if (!allowed) {
    return "refused: Host \"" + name + "\" is not this server's address (DNS rebinding?); --admin-allowed-hosts names more";
  }
  if (origin && Lower(Trim(*origin)) != "http://" + Lower(Trim(*host))) {
    return "refused: a request from another origin (" + Trim(*origin) + ")";
  }
  return std::nullopt;
}

bool ReadableMediaType(const http::Request& req) {
  const std::string* type = req.Find("Content-Type");
  if (!type) return false;
  std::string t = Lower(Trim(std::string_view(*type).substr(0, type->find(';'))));
  return t == "application/yaml" || t == "application/x-yaml" || t == "application/json";
}

}  // namespace mm::apiserver
