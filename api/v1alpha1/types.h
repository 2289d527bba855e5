#pragma once

// The ServerPool resource, matchmaker.dev/v1alpha1. Field names and
// defaults mirror crds/serverpools.matchmaker.dev.yaml, the schema; a test
// keeps the two in step. Plain values: copy freely, no thread concerns.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mm::api {

inline constexpr char kApiVersion[] = "matchmaker.dev/v1alpha1";
inline constexpr char kKind[] = "ServerPool";

struct EnvVar {
  std::string name;
  std::string value;
  bool operator==(const EnvVar&) const = default;
};

struct PortSpec {
  std::string name;
  int containerPort = 0;
  std::string protocol = "tcp";  // tcp | udp
  bool operator==(const PortSpec&) const = default;
};

struct Resources {
  std::optional<double> cpus;
  std::optional<std::int64_t> memoryMiB;
  bool operator==(const Resources&) const = default;
};

struct Placement {
  std::vector<std::string> constraints;
  bool operator==(const Placement&) const = default;
};

struct Template {
  std::string image;
  std::string imagePullPolicy = "IfNotPresent";  // IfNotPresent | Always | Never
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<EnvVar> env;
  std::map<std::string, std::string> labels;
  std::vector<PortSpec> ports;
  int controlPort = 3000;
  Resources resources;
  Placement placement;
  std::string network;
  bool operator==(const Template&) const = default;
};

struct ReservationPolicy {
  int timeoutMs = 5000;
  int retries = 3;
  int cooldownMs = 200;
  bool operator==(const ReservationPolicy&) const = default;
};

struct ReadinessPolicy {
  int timeoutMs = 60000;
  int periodMs = 100;
  bool operator==(const ReadinessPolicy&) const = default;
};

// After Ready: liveness probes, and what counts as a crash loop.
struct HealthPolicy {
  int periodMs = 1000;
  int timeoutMs = 1000;
  int failureThreshold = 3;
  int crashWindowMs = 60000;
  bool operator==(const HealthPolicy&) const = default;
};

struct ServerPoolSpec {
  int warm = 1;
  int minInstances = 0;
  int maxInstances = 100;
  Template templ;  // "template" in YAML/JSON
  ReservationPolicy reservation;
  ReadinessPolicy readiness;
  HealthPolicy health;
  bool operator==(const ServerPoolSpec&) const = default;
};

struct Condition {
  std::string type;    // Ready | Progressing | Degraded
  std::string status;  // True | False | Unknown
  std::string reason;
  std::string message;
  std::string lastTransitionTime;  // RFC 3339, empty when unknown
  bool operator==(const Condition&) const = default;
};

struct InstanceCounts {
  int starting = 0;
  int ready = 0;
  int allocated = 0;
  int full = 0;
  int unhealthy = 0;
  int terminating = 0;
  bool operator==(const InstanceCounts&) const = default;
};

struct ServerPoolStatus {
  std::int64_t observedGeneration = 0;
  InstanceCounts instances;
  std::vector<Condition> conditions;
  bool operator==(const ServerPoolStatus&) const = default;
};

struct ObjectMeta {
  std::string name;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::int64_t generation = 0;
  std::string uid;
  std::string creationTimestamp;
  // Changes with every change of the pool (spec or status). On a PUT, when
  // given, the write applies only if it still names the pool's current one.
  std::string resourceVersion;
  bool operator==(const ObjectMeta&) const = default;
};

struct ServerPool {
  ObjectMeta metadata;
  ServerPoolSpec spec;
  std::optional<ServerPoolStatus> status;
  bool operator==(const ServerPool&) const = default;
};

// Position of a problem in the input, for messages users can act on:
// "pools/eu.yaml:12: spec.template.ports[0].containerPort: must be <= 65535".
struct FieldError {
  std::string source;  // file name, "-" for stdin, "" when unknown
  int line = 0;        // 1-based; 0 when unknown
  std::string path;    // "spec.warm"; "" for the whole document
  std::string message;
  std::string ToString() const;
  bool operator==(const FieldError&) const = default;
};

}  // namespace mm::api
