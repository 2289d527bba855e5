#pragma once

// Pure translations between a pool template and Docker's container objects,
// shared by the docker backend and its unit tests. No I/O.

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <initializer_list>
#include <string_view>
#include <vector>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "operator/backend/backend.h"

namespace mm::backend {

inline constexpr char kLabelManagedBy[] = "dev.matchmaker.managed-by";
inline constexpr char kManagedByValue[] = "matchmakerd";
inline constexpr char kLabelPool[] = "dev.matchmaker.pool";
inline constexpr char kLabelInstance[] = "dev.matchmaker.instance";
inline constexpr char kLabelTemplateHash[] = "dev.matchmaker.template-hash";
// Which matchmakerd (data dir) made the object: adoption and orphan cleanup
// only ever look at objects with our own owner id.
inline constexpr char kLabelOwner[] = "dev.matchmaker.owner";

struct ContainerOptions {
  std::string owner;                    // our owner id
  std::string publish_ip = "0.0.0.0";   // game ports
  std::string control_network;          // "": control port published on 127.0.0.1
  std::string public_address = "127.0.0.1";
};

// The value at `keys` below `v` through nested objects, or null.
const boost::json::value* JsonAt(const boost::json::value& v, std::initializer_list<std::string_view> keys);
// The string at `keys` below `v`, or "" when absent or not a string.
std::string JsonString(const boost::json::value& v, std::initializer_list<std::string_view> keys);

// `list` with ${VAR} expanded from `env`, as a JSON array (entrypoints, args).
boost::json::array ExpandedArray(const std::vector<std::string>& list, const std::map<std::string, std::string>& env);

// The env an instance gets in a container or service: the template's, then
// MM_CONTROL_PORT, MM_PORT_<NAME> (container-side ports), MM_POOL, MM_INSTANCE.
std::map<std::string, std::string> InstanceEnv(const InstanceSpec& spec);

// True when a TCP game port is the control port (one port for both, as in
// go-matchmaker's default): it is published once, where game ports are, and
// the operator reaches the control API through that same binding.
bool ControlIsAGamePort(const api::Template& t);

// The body of POST /containers/create for `spec`.
boost::json::object ContainerCreateBody(const InstanceSpec& spec, const ContainerOptions& opts);

// The network the container's control port is reached on when it is not
// the one it is created on (template network and control network differ).
std::optional<std::string> ExtraNetwork(const InstanceSpec& spec, const ContainerOptions& opts);

// Where a started container runs, from GET /containers/{id}/json.
std::variant<Placement, std::string> PlacementFromInspect(const boost::json::value& inspect, const InstanceSpec& spec,
                                                          const ContainerOptions& opts);

// The filter (engine JSON) that selects exactly our objects.
boost::json::object OwnedFilter(const std::string& owner);
// True when `labels` (a JSON object) carries managed-by and our owner id.
bool Owned(const boost::json::value* labels, const std::string& owner);
inline bool Owned(const boost::json::value& labels, const std::string& owner) { return Owned(&labels, owner); }

// The exit code in a container list Status ("Exited (137) 5 seconds ago"), -1 if none.
int ExitCodeFromStatus(std::string_view status);

}  // namespace mm::backend
