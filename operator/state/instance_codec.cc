#include "operator/state/instance_codec.h"

#include <boost/json.hpp>

namespace mm::state {
namespace json = boost::json;
namespace {

std::int64_t Millis(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
TimePoint FromMillis(std::int64_t ms) { return TimePoint{} + std::chrono::milliseconds(ms); }

std::string Str(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
std::int64_t Int(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_int64() ? v->get_int64() : 0;
}

}  // namespace

json::value ToJson(const Instance& i, bool with_reservations, std::size_t max_reservations) {
  json::array reservations;
  json::object meta;
  if (with_reservations) {
    for (const auto& r : i.reservations) {
      if (reservations.size() == max_reservations) break;
      reservations.emplace_back(r);
      if (i.metadata.empty()) continue;
      if (auto m = i.metadata.find(r); m != i.metadata.end()) {
        boost::system::error_code ec;
        auto v = json::parse(m->second, ec);
        if (!ec) meta[r] = std::move(v);
      }
    }
  }
  json::object ports;
  for (const auto& [k, v] : i.ports) ports[k] = v;
  json::object o{{"pool", i.pool},
                      {"name", i.name},
                      {"templateHash", i.template_hash},
                      {"state", ToString(i.state)},
                      {"reservations", std::move(reservations)},
                      {"backendId", i.backend_id},
                      {"host", i.host},
                      {"controlHost", i.control_host},
                      {"controlPort", i.control_port},
                      {"ports", std::move(ports)},
                      {"created", Millis(i.created)},
                      {"readyAt", Millis(i.ready_at)},
                      {"exitedAt", Millis(i.exited_at)},
                      {"failed", i.failed},
                      {"message", i.message}};
  if (i.state == InstanceState::kUnhealthy) o["beforeUnhealthy"] = ToString(i.before_unhealthy);
  if (with_reservations) o["clients"] = static_cast<std::int64_t>(i.reservations.size());
  if (!meta.empty()) o["metadata"] = std::move(meta);
  return o;
}

std::optional<Instance> InstanceFromJson(const json::value& v) {
  const auto* o = v.if_object();
  if (!o) return std::nullopt;
  Instance i;
  i.pool = Str(*o, "pool");
  i.name = Str(*o, "name");
  auto state = ParseInstanceState(Str(*o, "state"));
  if (i.pool.empty() || i.name.empty() || !state) return std::nullopt;
  i.state = *state;
  i.template_hash = Str(*o, "templateHash");
  if (auto* r = o->if_contains("reservations"); r && r->is_array()) {
    for (const auto& c : r->get_array()) {
      if (c.is_string()) i.reservations.insert(std::string(c.get_string()));
    }
  }
  i.backend_id = Str(*o, "backendId");
  i.host = Str(*o, "host");
  i.control_host = Str(*o, "controlHost");
  i.control_port = static_cast<int>(Int(*o, "controlPort"));
  if (auto* p = o->if_contains("ports"); p && p->is_object()) {
    for (const auto& kv : p->get_object()) {
      if (kv.value().is_int64()) i.ports[kv.key()] = static_cast<int>(kv.value().get_int64());
    }
  }
  i.created = FromMillis(Int(*o, "created"));
  i.ready_at = FromMillis(Int(*o, "readyAt"));
  i.exited_at = FromMillis(Int(*o, "exitedAt"));
  if (auto* f = o->if_contains("failed"); f && f->is_bool()) i.failed = f->get_bool();
  i.message = Str(*o, "message");
  if (auto before = ParseInstanceState(Str(*o, "beforeUnhealthy"))) i.before_unhealthy = *before;
  return i;
}

}  // namespace mm::state
