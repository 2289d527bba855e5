#include "operator/backend/container_spec.h"

#include <boost/json.hpp>
#include <cmath>

#include "operator/backend/process_backend.h"

namespace mm::backend {
namespace json = boost::json;

namespace {

std::string PortKey(int port, const std::string& protocol) {
  return std::to_string(port) + "/" + (protocol.empty() ? "tcp" : protocol);
}

// The host port of the first binding of `key` in NetworkSettings.Ports.
int HostPort(const json::value& inspect, const std::string& key) {
  const auto* bindings = JsonAt(inspect, {"NetworkSettings", "Ports"});
  if (!bindings || !bindings->is_object()) return 0;
  const auto* list = bindings->get_object().if_contains(key);
  if (!list || !list->is_array()) return 0;
  for (const auto& b : list->get_array()) {
    const auto* p = JsonAt(b, {"HostPort"});
    if (!p || !p->is_string()) continue;
    int port = std::atoi(std::string(p->get_string()).c_str());
    if (port > 0 && port <= 65535) return port;
  }
  return 0;
}

}  // namespace

const json::value* JsonAt(const json::value& v, std::initializer_list<std::string_view> keys) {
  const json::value* cur = &v;
  for (auto k : keys) {
    const auto* o = cur->if_object();
    if (!o) return nullptr;
    cur = o->if_contains(k);
    if (!cur) return nullptr;
  }
  return cur;
}

std::string JsonString(const json::value& v, std::initializer_list<std::string_view> keys) {
  const auto* f = JsonAt(v, keys);
  return f && f->is_string() ? std::string(f->get_string()) : std::string();
}

json::array ExpandedArray(const std::vector<std::string>& list, const std::map<std::string, std::string>& env) {
  json::array out;
  for (const auto& s : list) out.emplace_back(ExpandVars(s, env));
  return out;
}

std::map<std::string, std::string> InstanceEnv(const InstanceSpec& spec) {
  const api::Template& t = spec.templ;
  std::map<std::string, std::string> env;
  for (const auto& e : t.env) env[e.name] = e.value;
  env["MM_CONTROL_PORT"] = std::to_string(t.controlPort);
  for (const auto& p : t.ports) env[PortEnvName(p.name)] = std::to_string(p.containerPort);
  env["MM_POOL"] = spec.pool;
  env["MM_INSTANCE"] = spec.name;
  return env;
}

json::object OwnedFilter(const std::string& owner) {
  json::object f;
  f["label"] = json::array{std::string(kLabelManagedBy) + "=" + kManagedByValue,
                           std::string(kLabelOwner) + "=" + owner};
  return f;
}

bool Owned(const json::value* labels, const std::string& owner) {
  const auto* o = labels ? labels->if_object() : nullptr;
  if (!o) return false;
  const auto* m = o->if_contains(kLabelManagedBy);
  const auto* w = o->if_contains(kLabelOwner);
  return m && m->is_string() && m->get_string() == kManagedByValue && w && w->is_string() &&
         w->get_string() == owner;
}

bool ControlIsAGamePort(const api::Template& t) {
  for (const auto& p : t.ports) {
    if (p.containerPort == t.controlPort && (p.protocol.empty() || p.protocol == "tcp")) return true;
  }
  return false;
}

std::optional<std::string> ExtraNetwork(const InstanceSpec& spec, const ContainerOptions& opts) {
  if (opts.control_network.empty() || spec.templ.network.empty() || spec.templ.network == opts.control_network) {
    return std::nullopt;
  }
  return opts.control_network;
}

json::object ContainerCreateBody(const InstanceSpec& spec, const ContainerOptions& opts) {
  const api::Template& t = spec.templ;
  const auto env = InstanceEnv(spec);

  json::object body;
  body["Image"] = t.image;
  if (!t.command.empty()) body["Entrypoint"] = ExpandedArray(t.command, env);
  if (!t.args.empty()) body["Cmd"] = ExpandedArray(t.args, env);
  json::array env_list;
  for (const auto& [k, v] : env) env_list.emplace_back(k + "=" + v);
  body["Env"] = std::move(env_list);

  json::object labels;
  for (const auto& [k, v] : t.labels) labels[k] = v;
  labels[kLabelManagedBy] = kManagedByValue;
  labels[kLabelPool] = spec.pool;
  labels[kLabelInstance] = spec.name;
  labels[kLabelTemplateHash] = spec.template_hash;
  labels[kLabelOwner] = opts.owner;
  body["Labels"] = std::move(labels);

  json::object exposed, bindings;
  for (const auto& p : t.ports) {
    auto key = PortKey(p.containerPort, p.protocol);
    exposed[key] = json::object{};
    bindings[key] = json::array{json::object{{"HostIp", opts.publish_ip}, {"HostPort", ""}}};
  }
  auto control = PortKey(t.controlPort, "tcp");
  exposed[control] = json::object{};
  if (opts.control_network.empty() && !ControlIsAGamePort(t)) {
    // The operator alone talks to the control port: loopback only.
    bindings[control] = json::array{json::object{{"HostIp", "127.0.0.1"}, {"HostPort", ""}}};
  }
  body["ExposedPorts"] = std::move(exposed);

  json::object host;
  host["PortBindings"] = std::move(bindings);
  host["RestartPolicy"] = json::object{{"Name", "no"}};
  if (t.resources.cpus) host["NanoCpus"] = static_cast<std::int64_t>(std::llround(*t.resources.cpus * 1e9));
  if (t.resources.memoryMiB) host["Memory"] = *t.resources.memoryMiB * 1024 * 1024;
  std::string network = !t.network.empty() ? t.network : opts.control_network;
  if (!network.empty()) host["NetworkMode"] = network;
  body["HostConfig"] = std::move(host);
  return body;
}

std::variant<Placement, std::string> PlacementFromInspect(const json::value& inspect, const InstanceSpec& spec,
                                                          const ContainerOptions& opts) {
  Placement p;
  const auto* id = JsonAt(inspect, {"Id"});
  if (!id || !id->is_string()) return std::string("container inspect without Id");
  p.backend_id = std::string(id->get_string());
  p.host = opts.public_address;
  for (const auto& port : spec.templ.ports) {
    int host_port = HostPort(inspect, PortKey(port.containerPort, port.protocol));
    if (host_port == 0) return "port " + port.name + " (" + PortKey(port.containerPort, port.protocol) + ") is not published";
    p.ports[port.name] = host_port;
  }
  if (opts.control_network.empty()) {
    // Published on loopback; or, when it is a game port, on publish_ip,
    // where loopback reaches it unless publish_ip is one address.
    bool any = opts.publish_ip.empty() || opts.publish_ip == "0.0.0.0" || opts.publish_ip == "::";
    p.control_host = ControlIsAGamePort(spec.templ) && !any ? opts.publish_ip : "127.0.0.1";
    p.control_port = HostPort(inspect, PortKey(spec.templ.controlPort, "tcp"));
    if (p.control_port == 0) return std::string("control port is not published");
  } else {
    const auto* ip = JsonAt(inspect, {"NetworkSettings", "Networks", opts.control_network, "IPAddress"});
    if (!ip || !ip->is_string() || ip->get_string().empty()) {
      return "container has no address on network " + opts.control_network;
    }
    p.control_host = std::string(ip->get_string());
    p.control_port = spec.templ.controlPort;
  }
  return p;
}

int ExitCodeFromStatus(std::string_view status) {
  auto open = status.find('(');
  auto close = status.find(')', open == std::string_view::npos ? 0 : open);
  if (!status.starts_with("Exited") || open == std::string_view::npos || close == std::string_view::npos) return -1;
  int code = 0;
  for (char c : status.substr(open + 1, close - open - 1)) {
    if (c < '0' || c > '9' || code > 1000) return -1;
    code = code * 10 + (c - '0');
  }
  return code;
}

}  // namespace mm::backend
