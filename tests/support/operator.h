#pragma once

// A real matchmakerd for integration tests: its own data dir, admin API on
// 127.0.0.1:<free port>, and a teardown that stops every instance it made.

#include <boost/json/value.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "operator/http/blocking_client.h"
#include "tests/support/process.h"

namespace mm::testing {

class Operator {
 public:
  explicit Operator(std::string name);  // data dir under /tmp, fresh
  ~Operator();                          // kills matchmakerd and its instances

  // Starts matchmakerd; false when it did not come up.
  bool Start(const std::vector<std::string>& extra = {});
  void Kill9();
  int Terminate();  // SIGTERM; exit code
  Child* process() { return child_.get(); }

  std::uint16_t admin_port() const { return admin_port_; }
  std::uint16_t client_port() const { return client_port_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string server() const { return "http://127.0.0.1:" + std::to_string(admin_port_); }

  http::HttpResult Call(const std::string& method, const std::string& path, const std::string& body = "");
  // The pool as JSON (null if not found) and its instances.
  boost::json::value Pool(const std::string& name);
  std::vector<boost::json::value> Instances(const std::string& pool);
  // A client API call with `client` as the (header-auth) credential.
  http::HttpResult Request(const std::string& client, const std::string& query = "",
                           const http::Headers& extra = {}, const std::string& method = "POST",
                           const std::string& body = "");
  // Runs mmctl against this operator.
  RunResult Mmctl(std::vector<std::string> args, const std::string& input = "");

  // Pids of live processes started by this operator (MM_MANAGED_BY).
  std::vector<int> ManagedPids() const;

 private:
  std::string data_dir_;
  std::unique_ptr<Child> child_;
  std::uint16_t admin_port_ = 0;
  std::uint16_t client_port_ = 0;
};

// Pids of live processes started by the matchmakerd of `data_dir`.
std::vector<int> ManagedPidsOf(const std::string& data_dir);

// Polls `pred` every 50 ms until true or `timeout`; returns its last value.
bool Eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(20));

// A pool of mm-gameserver processes as YAML.
std::string GameServerPool(const std::string& name, int warm, int max = 20,
                           const std::string& extra_spec = "", const std::string& extra_args = "",
                           int capacity = 3);

// A pool whose instances run `command` (a YAML flow list, e.g.
// "[sleep, \"60\"]") instead of mm-gameserver.
std::string CommandPool(const std::string& name, int warm, int max, const std::string& command,
                        const std::string& extra_spec = "");

std::int64_t Count(const boost::json::value& pool, const std::string& state);
std::string ConditionStatus(const boost::json::value& pool, const std::string& type,
                            std::string* reason = nullptr);
int PidOf(const boost::json::value& instance);

}  // namespace mm::testing
