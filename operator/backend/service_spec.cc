#include "operator/backend/service_spec.h"

#include <boost/json.hpp>
#include <cmath>


namespace mm::backend {
namespace json = boost::json;

namespace {

std::string PortKey(int port, const std::string& protocol) {
  return std::to_string(port) + "/" + (protocol.empty() ? "tcp" : protocol);
}

}  // namespace

json::object ServiceCreateBody(const InstanceSpec& spec, const ServiceOptions& opts) {
  const api::Template& t = spec.templ;
  const auto env = InstanceEnv(spec);

  json::object ours{{kLabelManagedBy, kManagedByValue},
                    {kLabelPool, spec.pool},
                    {kLabelInstance, spec.name},
                    {kLabelTemplateHash, spec.template_hash},
                    {kLabelOwner, opts.owner}};
  json::object container_labels;
  for (const auto& [k, v] : t.labels) container_labels[k] = v;
  for (const auto& [k, v] : ours) container_labels[k] = v;

  json::object container{{"Image", t.image}, {"Labels", container_labels}};
  if (!t.command.empty()) container["Command"] = ExpandedArray(t.command, env);
  if (!t.args.empty()) container["Args"] = ExpandedArray(t.args, env);
  json::array env_list;
  for (const auto& [k, v] : env) env_list.emplace_back(k + "=" + v);
  container["Env"] = std::move(env_list);
  container["StopGracePeriod"] = static_cast<std::int64_t>(opts.grace.count()) * 1'000'000;

  json::object task{{"ContainerSpec", std::move(container)},
                    {"RestartPolicy", json::object{{"Condition", "none"}}}};
  json::object limits;
  if (t.resources.cpus) limits["NanoCPUs"] = static_cast<std::int64_t>(std::llround(*t.resources.cpus * 1e9));
  if (t.resources.memoryMiB) limits["MemoryBytes"] = *t.resources.memoryMiB * 1024 * 1024;
  if (!limits.empty()) task["Resources"] = json::object{{"Limits", limits}, {"Reservations", limits}};
  if (!t.placement.constraints.empty()) {
    json::array c;
    for (const auto& s : t.placement.constraints) c.emplace_back(s);
    task["Placement"] = json::object{{"Constraints", std::move(c)}};
  }
  json::array networks;
  if (!t.network.empty()) networks.emplace_back(json::object{{"Target", t.network}});
  if (!opts.control_network.empty() && opts.control_network != t.network) {
    networks.emplace_back(json::object{{"Target", opts.control_network}});
  }
  if (!networks.empty()) task["Networks"] = std::move(networks);

  json::array ports;
  for (const auto& p : t.ports) {
    ports.emplace_back(json::object{{"Protocol", p.protocol.empty() ? "tcp" : p.protocol},
                                    {"TargetPort", p.containerPort},
                                    {"PublishMode", "host"}});
  }
  if (opts.control_network.empty() && !ControlIsAGamePort(t)) {  // else published once, above
    ports.emplace_back(json::object{{"Protocol", "tcp"}, {"TargetPort", t.controlPort}, {"PublishMode", "host"}});
  }

  json::object body{{"Name", spec.name},
                    {"Labels", std::move(ours)},
                    {"TaskTemplate", std::move(task)},
                    {"Mode", json::object{{"Replicated", json::object{{"Replicas", 1}}}}},
                    {"EndpointSpec", json::object{{"Ports", std::move(ports)}}}};
  return body;
}

std::optional<NodeView> ParseNode(const json::value& node) {
  NodeView n;
  n.id = JsonString(node, {"ID"});
  if (n.id.empty()) return std::nullopt;
  n.addr = JsonString(node, {"Status", "Addr"});
  n.public_address = JsonString(node, {"Spec", "Labels", kNodePublicAddressLabel});
  if (n.public_address.empty()) n.public_address = n.addr;
  n.ready = JsonString(node, {"Status", "State"}) == "ready";
  n.active = JsonString(node, {"Spec", "Availability"}) == "active";
  return n;
}

TaskPhase TaskView::phase() const {
  if (state == "running") return TaskPhase::kRunning;
  for (const char* ended : {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}) {
    if (state == ended) return TaskPhase::kEnded;
  }
  return TaskPhase::kPending;  // new, pending, assigned, accepted, preparing, ready, starting
}

std::string TaskView::Describe() const {
  std::string out = "task " + state;
  if (!error.empty()) {
    out += ": " + error;
  } else if (state == "complete" || state == "failed") {
    out += ": exit code " + std::to_string(exit_code);
  } else if (!message.empty()) {
    out += ": " + message;
  }
  return out;
}

std::optional<TaskView> ParseTask(const json::value& task) {
  TaskView t;
  t.id = JsonString(task, {"ID"});
  t.service_id = JsonString(task, {"ServiceID"});
  if (t.id.empty() || t.service_id.empty()) return std::nullopt;
  t.node_id = JsonString(task, {"NodeID"});
  t.state = JsonString(task, {"Status", "State"});
  t.desired = JsonString(task, {"DesiredState"});
  t.error = JsonString(task, {"Status", "Err"});
  t.message = JsonString(task, {"Status", "Message"});
  if (const auto* c = JsonAt(task, {"Status", "ContainerStatus", "ExitCode"}); c && c->is_int64()) {
    t.exit_code = static_cast<int>(c->get_int64());
  }
  if (const auto* v = JsonAt(task, {"Version", "Index"}); v && v->is_int64()) t.version = v->get_int64();
  if (const auto* ports = JsonAt(task, {"Status", "PortStatus", "Ports"}); ports && ports->is_array()) {
    for (const auto& p : ports->get_array()) {
      const auto* target = JsonAt(p, {"TargetPort"});
      const auto* published = JsonAt(p, {"PublishedPort"});
      if (!target || !published || !target->is_int64() || !published->is_int64()) continue;
      t.published[PortKey(static_cast<int>(target->get_int64()), JsonString(p, {"Protocol"}))] =
          static_cast<int>(published->get_int64());
    }
  }
  if (const auto* nets = JsonAt(task, {"NetworksAttachments"}); nets && nets->is_array()) {
    for (const auto& n : nets->get_array()) {
      std::string name = JsonString(n, {"Network", "Spec", "Name"});
      const auto* addrs = JsonAt(n, {"Addresses"});
      if (name.empty() || !addrs || !addrs->is_array() || addrs->get_array().empty()) continue;
      std::string a = (addrs->get_array()[0].is_string() ? std::string(addrs->get_array()[0].get_string()) : std::string());
      t.addresses[name] = a.substr(0, a.find('/'));  // "10.0.1.5/24"
    }
  }
  return t;
}

std::variant<Placement, std::string> PlacementFromTask(const TaskView& task, const NodeView& node,
                                                       const InstanceSpec& spec, const ServiceOptions& opts) {
  Placement p;
  p.backend_id = task.service_id;
  p.host = node.public_address;
  if (p.host.empty()) return "node " + node.id + " has no address";
  for (const auto& port : spec.templ.ports) {
    auto it = task.published.find(PortKey(port.containerPort, port.protocol));
    if (it == task.published.end() || it->second <= 0) {
      return "port " + port.name + " (" + PortKey(port.containerPort, port.protocol) + ") is not published";
    }
    p.ports[port.name] = it->second;
  }
  if (opts.control_network.empty()) {
    auto it = task.published.find(PortKey(spec.templ.controlPort, "tcp"));
    if (it == task.published.end() || it->second <= 0) return std::string("control port is not published");
    p.control_host = node.addr;
    p.control_port = it->second;
  } else {
    auto it = task.addresses.find(opts.control_network);
    if (it == task.addresses.end() || it->second.empty()) {
      return "task has no address on network " + opts.control_network;
    }
    p.control_host = it->second;
    p.control_port = spec.templ.controlPort;
  }
  return p;
}

Verdict JudgeService(const TaskView* task, const NodeView* node, bool creating, std::chrono::milliseconds age,
                     std::chrono::milliseconds pending_grace, const InstanceSpec* spec, const ServiceOptions& opts) {
  Verdict v;
  auto ended = [&](int code, std::string why) {
    v.kind = Verdict::kEnded;
    v.exit_code = code;
    v.message = std::move(why);
    return v;
  };
  if (!task) {
    // No task yet (just created), or the service was deleted behind our back.
    return !creating && age > pending_grace ? ended(-1, "service has no task") : v;
  }
  if (task->phase() == TaskPhase::kEnded) {
    std::string why = task->Describe();
    if (node && !node->active) why = "node " + node->id + " was drained (" + why + ")";
    if (node && !node->ready) why = "node " + node->id + " is down (" + why + ")";
    return ended(task->exit_code, why);
  }
  if (task->phase() == TaskPhase::kRunning && node && !node->ready) {
    return ended(-1, "node " + node->id + " is down");
  }
  // A task assigned to a node that then went down or was drained never runs:
  // with restart condition "none" swarm does not place it again, so waiting
  // would only end in the start timeout. Seen on a real 3-node swarm: a create
  // sent while a worker was stopping sat on it, assigned, for 60 s.
  if (task->phase() == TaskPhase::kPending && node && (!node->ready || !node->active)) {
    return ended(-1, "node " + node->id + (node->ready ? " was drained" : " is down") + " before the task ran (" +
                         task->Describe() + ")");
  }
  if (!creating) return v;
  if (task->phase() == TaskPhase::kRunning && node && spec) {
    auto placed = PlacementFromTask(*task, *node, *spec, opts);
    if (auto* p = std::get_if<Placement>(&placed)) {
      v.kind = Verdict::kPlaced;
      v.placement = *p;
      return v;
    }
    return age > pending_grace ? ended(-1, std::get<std::string>(placed)) : v;
  }
  // Still pending: a scheduler error that outlives the grace fails the create.
  if (!task->error.empty() && age > pending_grace) return ended(-1, task->Describe());
  return v;
}

}  // namespace mm::backend
