#include "cmd/mmctl/convert.h"

#include <boost/json.hpp>
#include <charconv>
#include <optional>

#include "api/v1alpha1/codec.h"
#include "api/v1alpha1/types.h"
#include "operator/backend/registry_auth.h"

namespace mm::mmctl {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A non-negative integer setting, if present.
std::variant<std::optional<int>, std::string> Number(const Env& env, const std::string& key) {
  auto it = env.find(key);
  if (it == env.end() || Trim(it->second).empty()) return std::optional<int>();
  auto v = Trim(it->second);
  int n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < 0) {
    return key + "=" + std::string(v) + ": not a non-negative integer";
  }
  return std::optional<int>(n);
}

std::string Get(const Env& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? "" : std::string(Trim(it->second));
}

// "3000/tcp", "7777/udp", "3000" -> port, protocol.
std::variant<api::PortSpec, std::string> ParsePort(const std::string& key, const std::string& value) {
  std::string_view v = value;
  std::string protocol = "tcp";
  if (auto slash = v.find('/'); slash != std::string_view::npos) {
    protocol = std::string(v.substr(slash + 1));
    v = v.substr(0, slash);
  }
  int port = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
  if (ec != std::errc() || end != v.data() + v.size() || port < 1 || port > 65535) {
    return key + "=" + value + ": not a port (1-65535, optionally /tcp or /udp)";
  }
  if (protocol != "tcp" && protocol != "udp") return key + "=" + value + ": protocol must be tcp or udp";
  return api::PortSpec{"game", port, protocol};
}

}  // namespace

std::variant<Env, std::string> ParseEnvFile(std::string_view text) {
  Env env;
  int n = 0;
  while (!text.empty()) {
    ++n;
    auto nl = text.find('\n');
    auto line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    if (line.starts_with("export ")) line = Trim(line.substr(7));
    auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return "line " + std::to_string(n) + ": expected KEY=VALUE";
    }
    auto key = Trim(line.substr(0, eq));
    auto value = Trim(line.substr(eq + 1));
    for (char c : key) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
        return "line " + std::to_string(n) + ": " + std::string(key) + " is not a variable name";
      }
    }
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    } else if (auto hash = value.find(" #"); hash != std::string_view::npos) {
      value = Trim(value.substr(0, hash));  // a trailing comment
    }
    env[std::string(key)] = std::string(value);
  }
  return env;
}

std::variant<Converted, std::string> ConvertGoMatchmaker(const Env& env, const ConvertOptions& options) {
  api::ServerPool pool;
  pool.metadata.name = options.name;
  auto& spec = pool.spec;
  spec.warm = options.warm;
  auto& t = spec.templ;
  t.image = Get(env, "IMAGE_TO_PULL");
  if (t.image.empty()) return std::string("IMAGE_TO_PULL is not set: the image is the one setting a pool needs");
  // go-matchmaker pulls before every container it creates.
  t.imagePullPolicy = "Always";

  std::string expose = Get(env, "IMAGE_EXPOSE_PORT");
  std::string control = Get(env, "IMAGE_CONTROL_PORT");
  if (expose.empty()) {
    expose = control.empty() ? "3000/tcp" : control.find('/') == std::string::npos ? control + "/tcp" : control;
  }
  auto port = ParsePort("IMAGE_EXPOSE_PORT", expose);
  if (auto* err = std::get_if<std::string>(&port)) return *err;
  t.ports = {std::get<api::PortSpec>(port)};
  if (control.empty()) {
    t.controlPort = t.ports[0].containerPort;
  } else {
    auto c = ParsePort("IMAGE_CONTROL_PORT", control);
    if (auto* err = std::get_if<std::string>(&c)) return *err;
    if (std::get<api::PortSpec>(c).protocol != "tcp") return "IMAGE_CONTROL_PORT=" + control + ": the Reservation API is HTTP, over tcp";
    t.controlPort = std::get<api::PortSpec>(c).containerPort;
  }
  t.network = Get(env, "DOCKER_NETWORK");

  std::vector<std::string> notes;
  for (const char* key : {"RESERVATION_TIMEOUT", "RESERVATION_COOLDOWN", "RESERVATION_RETRY_TIMES",
                          "CONVERGE_VERIFY_COOLDOWN", "CONVERGE_VERIFY_RETRY_TIMES", "MAX_CONCURRENT_JOBS",
                          "LOOKUP_COOLDOWN"}) {
    auto n = Number(env, key);
    if (auto* err = std::get_if<std::string>(&n)) return *err;
  }
  auto value = [&](const char* key) { return std::get<std::optional<int>>(Number(env, key)); };
  if (auto v = value("RESERVATION_TIMEOUT")) spec.reservation.timeoutMs = std::max(1, *v);
  if (auto v = value("RESERVATION_COOLDOWN")) spec.reservation.cooldownMs = *v;
  if (auto v = value("RESERVATION_RETRY_TIMES")) {
    // go-matchmaker: that many attempts in all; ours: retries after the first.
    spec.reservation.retries = std::max(0, *v - 1);
  }
  auto cv_cooldown = value("CONVERGE_VERIFY_COOLDOWN"), cv_retries = value("CONVERGE_VERIFY_RETRY_TIMES");
  if (cv_cooldown && cv_retries && *cv_cooldown * static_cast<long long>(*cv_retries) > 0) {
    // How long a new service may take to run: our readiness deadline.
    long long ms = static_cast<long long>(*cv_cooldown) * *cv_retries;
    spec.readiness.timeoutMs = static_cast<int>(std::min<long long>(ms, 3'600'000));
    notes.push_back("CONVERGE_VERIFY_COOLDOWN x CONVERGE_VERIFY_RETRY_TIMES = readiness.timeoutMs; the control port "
                    "is probed every readiness.periodMs (100 ms), not every CONVERGE_VERIFY_COOLDOWN");
  }

  Converted out;
  out.backend = Get(env, "CONTAINER_BACKEND");
  if (out.backend.empty()) out.backend = "docker";
  if (out.backend != "docker" && out.backend != "swarm") {
    return "CONTAINER_BACKEND=" + out.backend + ": must be docker or swarm";
  }
  std::string user = Get(env, "IMAGE_REGISTRY_USERNAME");
  if (!user.empty()) {
    // The key matchmakerd looks the image's credentials up by.
    boost::json::object auths{{backend::RegistryHost(t.image), boost::json::object{{"username", user},
                                                             {"password", Get(env, "IMAGE_REGISTRY_PASSWORD")}}}};
    out.auth_json = boost::json::serialize(boost::json::object{{"auths", std::move(auths)}}) + "\n";
  }

  std::string head = "# Converted by `mmctl convert go-matchmaker` from go-matchmaker's settings.\n";
  head += "# Run: matchmakerd --backend " + out.backend;
  if (!out.auth_json.empty()) head += " --registry-auth-file registry-auth.json";
  if (!t.network.empty()) head += " [--control-network " + t.network + " when matchmakerd runs on that network]";
  head += " --pools THIS_FILE\n";
  if (!out.auth_json.empty()) {
    head += "# Registry credentials (IMAGE_REGISTRY_USERNAME/PASSWORD) are not part of a pool: --registry-auth-out\n"
            "# writes them as registry-auth.json (Docker's config.json format, mode 0600).\n";
  }
  head += "# warm: " + std::to_string(options.warm) +
          ": go-matchmaker kept no idle server, so each new match waited for a container (--warm N).\n";
  for (const char* gone : {"MAX_CONCURRENT_JOBS", "LOOKUP_COOLDOWN", "REDIS_SERVER_URL"}) {
    if (env.contains(gone)) {
      head += std::string("# ") + gone + ": superseded (docs/migrating-from-go-matchmaker.md).\n";
    }
  }
  for (const auto& n : notes) head += "# " + n + ".\n";
  out.yaml = head + api::ToYaml(pool);
  return out;
}

}  // namespace mm::mmctl
