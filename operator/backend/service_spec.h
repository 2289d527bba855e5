#pragma once

// Pure translations between a pool template and Docker Swarm objects
// (services, tasks, nodes), for the swarm backend and its unit tests.

#include <boost/json/value.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "operator/backend/backend.h"
#include "operator/backend/container_spec.h"

namespace mm::backend {

// Node label holding the address clients should use for a node.
inline constexpr char kNodePublicAddressLabel[] = "dev.matchmaker.public-address";

struct ServiceOptions {
  std::string owner;
  std::string control_network;  // "": the operator uses node address + published port
  std::chrono::milliseconds grace{5000};
};

// The body of POST /services/create: one replica, restart condition none,
// every port published in host mode with a swarm-assigned port.
boost::json::object ServiceCreateBody(const InstanceSpec& spec, const ServiceOptions& opts);

struct NodeView {
  std::string id;
  std::string addr;            // Status.Addr
  std::string public_address;  // the node label, else addr
  bool ready = false;          // Status.State == ready
  bool active = false;         // Spec.Availability == active
};
std::optional<NodeView> ParseNode(const boost::json::value& node);

enum class TaskPhase { kPending, kRunning, kEnded };

struct TaskView {
  std::string id;
  std::string service_id;
  std::string node_id;
  std::string state;          // the engine's word: pending, running, failed, rejected, ...
  std::string desired;        // DesiredState
  std::string error;          // Status.Err
  std::string message;        // Status.Message
  int exit_code = -1;
  std::int64_t version = 0;   // Version.Index: the newest task of a service wins
  std::map<std::string, int> published;          // "7777/tcp" -> published port
  std::map<std::string, std::string> addresses;  // network name -> container address
  TaskPhase phase() const;
  // "task failed: exit code 1", "task rejected: No such image: x", ...
  std::string Describe() const;
};
std::optional<TaskView> ParseTask(const boost::json::value& task);

// Where a running task serves: clients at the node's public address and the
// published game ports; the operator at the node address and published
// control port, or at the task's address on the control network.
std::variant<Placement, std::string> PlacementFromTask(const TaskView& task, const NodeView& node,
                                                       const InstanceSpec& spec, const ServiceOptions& opts);

// What one poll says about one of our services, from its newest task (null:
// none yet) and that task's node (null: unknown). Pure, so the swarm's
// transitions can be tested without a swarm.
struct Verdict {
  enum Kind { kWait, kPlaced, kEnded } kind = kWait;
  Placement placement;  // kPlaced
  int exit_code = -1;   // kEnded
  std::string message;  // kEnded: why
};
Verdict JudgeService(const TaskView* task, const NodeView* node, bool creating, std::chrono::milliseconds age,
                     std::chrono::milliseconds pending_grace, const InstanceSpec* spec, const ServiceOptions& opts);

}  // namespace mm::backend
