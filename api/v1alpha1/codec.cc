#include "api/v1alpha1/codec.h"

#include <boost/json.hpp>
#include <cstdio>

#include "api/v1alpha1/yaml_json.h"

namespace mm::api {
namespace json = boost::json;
namespace {

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::object StringMap(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

// Lenient readers: an admitted document has the right types already.
const json::value* Field(const json::value& v, std::string_view key) {
  const auto* obj = v.if_object();
  return obj ? obj->if_contains(key) : nullptr;
}

void Read(const json::value& v, std::string_view key, std::string& out) {
  if (auto* f = Field(v, key); f && f->is_string()) out = f->get_string();
}

template <typename Int>
void Read(const json::value& v, std::string_view key, Int& out) {
  if (auto* f = Field(v, key); f && f->is_number()) {
    if (auto i = f->if_int64()) {
      out = static_cast<Int>(*i);
    } else if (auto u = f->if_uint64()) {
      out = static_cast<Int>(*u);
    } else {
      out = static_cast<Int>(f->get_double());
    }
  }
}

void Read(const json::value& v, std::string_view key,
          std::vector<std::string>& out) {
  if (auto* f = Field(v, key); f && f->is_array()) {
    for (const auto& s : f->get_array()) {
      if (s.is_string()) out.emplace_back(s.get_string());
    }
  }
}

void Read(const json::value& v, std::string_view key,
          std::map<std::string, std::string>& out) {
  if (auto* f = Field(v, key); f && f->is_object()) {
    for (const auto& kv : f->get_object()) {
      if (kv.value().is_string()) out[kv.key()] = kv.value().get_string();
    }
  }
}

const json::value& Sub(const json::value& v, std::string_view key) {
  static const json::value kNull;
  auto* f = Field(v, key);
  return f ? *f : kNull;
}

Template TemplateFromJson(const json::value& t) {
  Template out;
  Read(t, "image", out.image);
  Read(t, "imagePullPolicy", out.imagePullPolicy);
  Read(t, "command", out.command);
  Read(t, "args", out.args);
  if (auto* env = Field(t, "env"); env && env->is_array()) {
    for (const auto& e : env->get_array()) {
      EnvVar var;
      Read(e, "name", var.name);
      Read(e, "value", var.value);
      out.env.push_back(std::move(var));
    }
  }
  Read(t, "labels", out.labels);
  if (auto* ports = Field(t, "ports"); ports && ports->is_array()) {
    for (const auto& p : ports->get_array()) {
      PortSpec port;
      Read(p, "name", port.name);
      Read(p, "containerPort", port.containerPort);
      Read(p, "protocol", port.protocol);
      out.ports.push_back(std::move(port));
    }
  }
  Read(t, "controlPort", out.controlPort);
  const auto& res = Sub(t, "resources");
  if (auto* c = Field(res, "cpus"); c && c->is_number()) {
    out.resources.cpus = c->to_number<double>();
  }
  if (auto* m = Field(res, "memoryMiB"); m && m->is_number()) {
    out.resources.memoryMiB = m->to_number<std::int64_t>();
  }
  Read(Sub(t, "placement"), "constraints", out.placement.constraints);
  Read(t, "network", out.network);
  return out;
}

}  // namespace

json::value ToJson(const Template& t) {
  json::object o;
  if (!t.image.empty()) o["image"] = t.image;
  if (!t.imagePullPolicy.empty()) o["imagePullPolicy"] = t.imagePullPolicy;
  if (!t.command.empty()) o["command"] = Strings(t.command);
  if (!t.args.empty()) o["args"] = Strings(t.args);
  if (!t.env.empty()) {
    json::array env;
    for (const auto& e : t.env) env.push_back(json::object{{"name", e.name}, {"value", e.value}});
    o["env"] = std::move(env);
  }
  if (!t.labels.empty()) o["labels"] = StringMap(t.labels);
  json::array ports;
  for (const auto& p : t.ports) {
    ports.push_back(json::object{{"name", p.name},
                                 {"containerPort", p.containerPort},
                                 {"protocol", p.protocol}});
  }
  o["ports"] = std::move(ports);
  o["controlPort"] = t.controlPort;
  if (t.resources.cpus || t.resources.memoryMiB) {
    json::object r;
    if (t.resources.cpus) r["cpus"] = *t.resources.cpus;
    if (t.resources.memoryMiB) r["memoryMiB"] = *t.resources.memoryMiB;
    o["resources"] = std::move(r);
  }
  if (!t.placement.constraints.empty()) {
    o["placement"] = json::object{{"constraints", Strings(t.placement.constraints)}};
  }
  if (!t.network.empty()) o["network"] = t.network;
  return o;
}

json::value ToJson(const ServerPoolStatus& s) {
  json::array conditions;
  for (const auto& c : s.conditions) {
    json::object o{{"type", c.type}, {"status", c.status}};
    if (!c.reason.empty()) o["reason"] = c.reason;
    if (!c.message.empty()) o["message"] = c.message;
    if (!c.lastTransitionTime.empty()) o["lastTransitionTime"] = c.lastTransitionTime;
    conditions.push_back(std::move(o));
  }
  const auto& i = s.instances;
  return json::object{
      {"observedGeneration", s.observedGeneration},
      {"instances", json::object{{"starting", i.starting},
                                 {"ready", i.ready},
                                 {"allocated", i.allocated},
                                 {"full", i.full},
                                 {"unhealthy", i.unhealthy},
                                 {"terminating", i.terminating}}},
      {"conditions", std::move(conditions)}};
}

json::value ToJson(const ServerPool& p) {
  json::object meta{{"name", p.metadata.name}};
  if (!p.metadata.labels.empty()) meta["labels"] = StringMap(p.metadata.labels);
  if (!p.metadata.annotations.empty()) {
    meta["annotations"] = StringMap(p.metadata.annotations);
  }
  if (p.metadata.generation) meta["generation"] = p.metadata.generation;
  if (!p.metadata.uid.empty()) meta["uid"] = p.metadata.uid;
  if (!p.metadata.resourceVersion.empty()) meta["resourceVersion"] = p.metadata.resourceVersion;
  if (!p.metadata.creationTimestamp.empty()) {
    meta["creationTimestamp"] = p.metadata.creationTimestamp;
  }
  const auto& s = p.spec;
  json::object spec{
      {"warm", s.warm},
      {"minInstances", s.minInstances},
      {"maxInstances", s.maxInstances},
      {"template", ToJson(s.templ)},
      {"reservation", json::object{{"timeoutMs", s.reservation.timeoutMs},
                                   {"retries", s.reservation.retries},
                                   {"cooldownMs", s.reservation.cooldownMs}}},
      {"readiness", json::object{{"timeoutMs", s.readiness.timeoutMs},
                                 {"periodMs", s.readiness.periodMs}}},
      {"health", json::object{{"periodMs", s.health.periodMs},
                              {"timeoutMs", s.health.timeoutMs},
                              {"failureThreshold", s.health.failureThreshold},
                              {"crashWindowMs", s.health.crashWindowMs}}}};
  json::object o{{"apiVersion", kApiVersion},
                 {"kind", kKind},
                 {"metadata", std::move(meta)},
                 {"spec", std::move(spec)}};
  if (p.status) o["status"] = ToJson(*p.status);
  return o;
}

ServerPool FromJson(const json::value& doc) {
  ServerPool p;
  const auto& meta = Sub(doc, "metadata");
  Read(meta, "name", p.metadata.name);
  Read(meta, "labels", p.metadata.labels);
  Read(meta, "annotations", p.metadata.annotations);
  Read(meta, "generation", p.metadata.generation);
  Read(meta, "uid", p.metadata.uid);
  Read(meta, "creationTimestamp", p.metadata.creationTimestamp);
  Read(meta, "resourceVersion", p.metadata.resourceVersion);
  const auto& spec = Sub(doc, "spec");
  Read(spec, "warm", p.spec.warm);
  Read(spec, "minInstances", p.spec.minInstances);
  Read(spec, "maxInstances", p.spec.maxInstances);
  p.spec.templ = TemplateFromJson(Sub(spec, "template"));
  const auto& res = Sub(spec, "reservation");
  Read(res, "timeoutMs", p.spec.reservation.timeoutMs);
  Read(res, "retries", p.spec.reservation.retries);
  Read(res, "cooldownMs", p.spec.reservation.cooldownMs);
  const auto& rd = Sub(spec, "readiness");
  Read(rd, "timeoutMs", p.spec.readiness.timeoutMs);
  Read(rd, "periodMs", p.spec.readiness.periodMs);
  const auto& hl = Sub(spec, "health");
  Read(hl, "periodMs", p.spec.health.periodMs);
  Read(hl, "timeoutMs", p.spec.health.timeoutMs);
  Read(hl, "failureThreshold", p.spec.health.failureThreshold);
  Read(hl, "crashWindowMs", p.spec.health.crashWindowMs);
  if (const auto* st = Field(doc, "status"); st && st->is_object()) {
    ServerPoolStatus s;
    Read(*st, "observedGeneration", s.observedGeneration);
    const auto& i = Sub(*st, "instances");
    Read(i, "starting", s.instances.starting);
    Read(i, "ready", s.instances.ready);
    Read(i, "allocated", s.instances.allocated);
    Read(i, "full", s.instances.full);
    Read(i, "unhealthy", s.instances.unhealthy);
    Read(i, "terminating", s.instances.terminating);
    if (auto* cs = Field(*st, "conditions"); cs && cs->is_array()) {
      for (const auto& c : cs->get_array()) {
        Condition cond;
        Read(c, "type", cond.type);
        Read(c, "status", cond.status);
        Read(c, "reason", cond.reason);
        Read(c, "message", cond.message);
        Read(c, "lastTransitionTime", cond.lastTransitionTime);
        s.conditions.push_back(std::move(cond));
      }
    }
    p.status = std::move(s);
  }
  return p;
}

std::string ToYaml(const ServerPool& pool) { return ToYaml(ToJson(pool)); }

std::string ToJsonText(const ServerPool& pool) {
  return json::serialize(ToJson(pool));
}

std::string TemplateHash(const Template& templ) {
  // How the image is fetched is not what runs: a pull policy change rolls
  // nothing (and hashes stay those of pools written before the field).
  Template what_runs = templ;
  what_runs.imagePullPolicy.clear();
  std::string canonical = json::serialize(ToJson(what_runs));
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : canonical) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 10);
}

}  // namespace mm::api
