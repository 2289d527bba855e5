#include "operator/backend/registry_auth.h"

#include <openssl/evp.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

namespace mm::backend {
namespace json = boost::json;

namespace {

std::string Base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

// Standard base64 (padding required by OpenSSL, added when missing); nullopt
// when malformed.
std::optional<std::string> Unbase64(std::string in) {
  if (in.empty()) return std::string();
  while (in.size() % 4 != 0) in.push_back('=');
  std::string out(3 * in.size() / 4 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  std::size_t pad = 0;
  for (auto it = in.rbegin(); it != in.rend() && *it == '=' && pad < 2; ++it) ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

bool LooksLikeHost(std::string_view first) {
  return first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
         first == "localhost";
}

}  // namespace

std::string RegistryHost(std::string_view image) {
  auto slash = image.find('/');
  if (slash == std::string_view::npos) return "docker.io";
  auto first = image.substr(0, slash);
  return LooksLikeHost(first) ? NormalizeRegistryKey(first) : "docker.io";
}

std::string NormalizeRegistryKey(std::string_view key) {
  if (auto scheme = key.find("://"); scheme != std::string_view::npos) key.remove_prefix(scheme + 3);
  if (auto slash = key.find('/'); slash != std::string_view::npos) key = key.substr(0, slash);
  std::string host(key);
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "registry.hub.docker.com") {
    return "docker.io";
  }
  return host;
}

ImageRef SplitImage(std::string_view image) {
  if (auto at = image.find('@'); at != std::string_view::npos) {
    return {std::string(image.substr(0, at)), std::string(image.substr(at + 1))};
  }
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    return {std::string(image.substr(0, colon)), std::string(image.substr(colon + 1))};
  }
  return {std::string(image), "latest"};
}

std::variant<RegistryAuth, std::string> RegistryAuth::Parse(std::string_view text) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) return "not JSON: " + ec.message();
  const auto* root = doc.if_object();
  if (!root) return std::string("not a JSON object");
  const auto* auths = root->if_contains("auths");
  if (!auths) return std::string("no \"auths\" object");
  if (!auths->is_object()) return std::string("\"auths\" is not an object");
  RegistryAuth out;
  for (const auto& [key, entry] : auths->get_object()) {
    std::string where = "auths[\"" + std::string(key) + "\"]";
    std::string host = NormalizeRegistryKey(key);
    if (host.empty()) return where + ": empty registry";
    const auto* e = entry.if_object();
    if (!e) return where + ": not an object";
    Credential c;
    auto str = [&](std::string_view k) -> std::optional<std::string> {
      const auto* v = e->if_contains(k);
      if (v && v->is_string()) return std::string(v->get_string());
      return std::nullopt;
    };
    if (auto auth = str("auth"); auth && !auth->empty()) {
      auto plain = Unbase64(*auth);
      if (!plain) return where + ".auth: not base64";
      auto colon = plain->find(':');
      if (colon == std::string::npos) return where + ".auth: not base64 of user:password";
      c.username = plain->substr(0, colon);
      c.password = plain->substr(colon + 1);
    } else if (auto u = str("username"), p = str("password"); u && p) {
      c.username = *u;
      c.password = *p;
    } else if (str("identitytoken") || str("credsStore")) {
      return where + ": identity tokens and credential helpers are not supported; give auth or username/password";
    } else {
      return where + ": needs \"auth\" or \"username\" and \"password\"";
    }
    if (c.username.empty()) return where + ": empty username";
    out.by_host_[host] = std::move(c);
  }
  return out;
}

std::variant<RegistryAuth, std::string> RegistryAuth::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read " + path;
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > 1024 * 1024) return path + ": larger than 1 MiB";
  auto parsed = Parse(text.str());
  if (auto* err = std::get_if<std::string>(&parsed)) return path + ": " + *err;
  return parsed;
}

const Credential* RegistryAuth::For(std::string_view image) const {
  auto it = by_host_.find(RegistryHost(image));
  return it == by_host_.end() ? nullptr : &it->second;
}

std::string RegistryAuth::Header(std::string_view image) const {
  const Credential* c = For(image);
  if (!c) return "";
  std::string host = RegistryHost(image);
  json::object config{{"username", c->username},
                      {"password", c->password},
                      {"serveraddress", host == "docker.io" ? "https://index.docker.io/v1/" : host}};
  std::string b64 = Base64(json::serialize(config));
  // The engine decodes it as base64url.
  for (auto& ch : b64) {
    if (ch == '+') ch = '-';
    if (ch == '/') ch = '_';
  }
  return b64;
}

PullQueue::Joined PullQueue::Join(const std::string& image, const std::string& pool, Waiter waiter) {
  auto& pull = pulls_[image];
  Joined j{.start = pull.waiters.empty(), .new_pool = pull.pools.insert(pool).second};
  pull.waiters.push_back(std::move(waiter));
  return j;
}

PullQueue::Pull PullQueue::Finish(const std::string& image) {
  auto it = pulls_.find(image);
  if (it == pulls_.end()) return {};
  Pull out = std::move(it->second);
  pulls_.erase(it);
  return out;
}

}  // namespace mm::backend
