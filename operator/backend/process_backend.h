#pragma once

// The `process` backend: each instance is a local child process.
//  - env: the inherited env, the template's env, MM_CONTROL_PORT,
//    MM_PORT_<NAME>, MM_POOL, MM_INSTANCE, and MM_MANAGED_BY (our label);
//    ${VAR} in args expands from that env.
//  - output: <data-dir>/logs/<pool>/<instance>.log
//  - ports: free ports picked on 127.0.0.1, never two instances the same.
//  - stop: SIGTERM to the process group, SIGKILL after the grace period.
//  - children run in their own session: they outlive a matchmakerd crash
//    and are adopted on restart, identified by pid *and* start time (a
//    recycled pid is never mistaken for an instance).

#include <chrono>
#include <memory>

#include "operator/backend/backend.h"

namespace boost::asio {
class io_context;
}

namespace mm::backend {

struct ProcessOptions {
  std::string data_dir;
  std::string public_address = "127.0.0.1";
  std::chrono::milliseconds grace{5000};
  std::chrono::milliseconds poll{200};  // liveness of adopted (non-child) pids
  std::size_t failed_logs_kept = 20;    // per pool: logs of failed instances kept for diagnosis
};

class ProcessBackend : public Backend {
 public:
  ProcessBackend(boost::asio::io_context& io, ProcessOptions options);
  ~ProcessBackend() override;

  std::string_view name() const override { return "process"; }
  void Create(const InstanceSpec& spec, std::function<void(CreateResult)> done) override;
  void Remove(const state::Instance& instance) override;
  void Adopt(const std::vector<const state::Instance*>& known, const Templates& templates,
             std::function<void(Adopted)> done) override;
  void OnExit(std::function<void(ExitEvent)> handler) override;
  void Forget(const state::Instance& instance) override;

  // "matchmakerd:<absolute data dir>": the MM_MANAGED_BY value of our children.
  const std::string& managed_by() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// ${VAR} expansion; unknown variables are left as written.
std::string ExpandVars(const std::string& s, const std::map<std::string, std::string>& env);

// "MM_PORT_" + upper-cased port name with '-' as '_'.
std::string PortEnvName(const std::string& port_name);

}  // namespace mm::backend
