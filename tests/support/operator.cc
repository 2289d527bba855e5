#include "tests/support/operator.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

namespace mm::testing {
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::string EnvOf(int pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    if (entry.starts_with(key + "=")) return entry.substr(key.size() + 1);
  }
  return "";
}

bool Zombie(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return true;
  auto close = line.rfind(')');
  return close == std::string::npos || line[close + 2] == 'Z';
}

}  // namespace

Operator::Operator(std::string name) {
  data_dir_ = "/tmp/mm-it-" + std::to_string(getpid()) + "-" + name;
  std::filesystem::remove_all(data_dir_);
  std::filesystem::create_directories(data_dir_);
  data_dir_ = std::filesystem::canonical(data_dir_).string();
}

Operator::~Operator() {
  if (child_ && ::testing::Test::HasFailure()) {
    child_->WaitForLine("\x01never", std::chrono::milliseconds(100));  // drain what it printed
    std::fprintf(stderr, "--- matchmakerd output (%s) ---\n%s\n---\n", data_dir_.c_str(), child_->output().c_str());
  }
  if (child_) child_->Signal(SIGKILL);
  child_.reset();
  for (int pid : ManagedPids()) ::kill(-pid, SIGKILL);
  for (int pid : ManagedPids()) ::kill(pid, SIGKILL);
  Eventually([&] { return ManagedPids().empty(); }, 5s);
  std::filesystem::remove_all(data_dir_);
}

bool Operator::Start(const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {BinPath("matchmakerd"), "--data-dir", data_dir_, "--admin-listen",
                                   "127.0.0.1:0", "--listen", "127.0.0.1:0", "--stop-grace-ms", "2000"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  child_ = Child::Spawn(argv);
  auto line = child_->WaitForLine("matchmakerd: admin=", 20s);
  if (!line) return false;
  unsigned admin = 0, client = 0;
  auto at = line->find("admin=");
  if (std::sscanf(line->c_str() + at, "admin=127.0.0.1:%u client=127.0.0.1:%u", &admin, &client) != 2) return false;
  admin_port_ = static_cast<std::uint16_t>(admin);
  client_port_ = static_cast<std::uint16_t>(client);
  return true;
}

void Operator::Kill9() {
  child_->Signal(SIGKILL);
  child_->Wait(10s);
}

int Operator::Terminate() {
  child_->Signal(SIGTERM);
  return child_->Wait(20s).value_or(-1);
}

http::HttpResult Operator::Call(const std::string& method, const std::string& path, const std::string& body) {
  // As mmctl sends pools (YAML is a superset of JSON).
  http::Headers h;
  if (!body.empty()) h.emplace_back("Content-Type", "application/yaml");
  return http::HttpCall(admin_port_, method, path, body, h);
}

json::value Operator::Pool(const std::string& name) {
  auto r = Call("GET", "/apis/matchmaker.dev/v1alpha1/serverpools/" + name);
  if (r.status != 200) return nullptr;
  return json::parse(r.body);
}

std::vector<json::value> Operator::Instances(const std::string& pool) {
  auto r = Call("GET", "/apis/matchmaker.dev/v1alpha1/serverpools/" + pool + "/instances");
  std::vector<json::value> out;
  if (r.status != 200) return out;
  json::value list = json::parse(r.body);
  for (const auto& i : list.at("items").as_array()) out.push_back(i);
  return out;
}

http::HttpResult Operator::Request(const std::string& client, const std::string& query,
                                  const http::Headers& extra, const std::string& method, const std::string& body) {
  http::Headers h = extra;
  if (!client.empty()) h.emplace_back("Authorization", client);
  return http::HttpCall(client_port_, method, "/request" + query, body, h);
}

RunResult Operator::Mmctl(std::vector<std::string> args, const std::string& input) {
  args.insert(args.begin(), {BinPath("mmctl"), "--server", server()});
  return RunCommand(args, 60s, input);
}

std::vector<int> Operator::ManagedPids() const { return ManagedPidsOf(data_dir_); }

std::vector<int> ManagedPidsOf(const std::string& data_dir) {
  std::vector<int> out;
  const std::string want = "matchmakerd:" + data_dir;
  DIR* d = ::opendir("/proc");
  while (d) {
    dirent* e = ::readdir(d);
    if (!e) break;
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    if (EnvOf(static_cast<int>(pid), "MM_MANAGED_BY") == want && !Zombie(static_cast<int>(pid))) {
      out.push_back(static_cast<int>(pid));
    }
  }
  if (d) ::closedir(d);
  return out;
}

bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
}

namespace {

std::string PoolYaml(const std::string& name, int warm, int max, const std::string& extra_spec,
                     const std::string& template_lines) {
  return "apiVersion: matchmaker.dev/v1alpha1\nkind: ServerPool\nmetadata: {name: " + name +
         "}\nspec:\n  warm: " + std::to_string(warm) + "\n  maxInstances: " + std::to_string(max) +
         "\n" + extra_spec + "  template:\n" + template_lines;
}

}  // namespace

std::string GameServerPool(const std::string& name, int warm, int max, const std::string& extra_spec,
                           const std::string& extra_args, int capacity) {
  return PoolYaml(name, warm, max, extra_spec,
                  "    command: [\"" + BinPath("mm-gameserver") +
                      "\"]\n    args: [\"--address\", \"127.0.0.1\", \"--capacity\", \"" +
                      std::to_string(capacity) + "\"" + extra_args +
                      "]\n    ports: [{name: game, containerPort: 7777, protocol: udp}]\n");
}

std::string CommandPool(const std::string& name, int warm, int max, const std::string& command,
                        const std::string& extra_spec) {
  return PoolYaml(name, warm, max, extra_spec,
                  "    command: " + command + "\n    ports: [{name: game, containerPort: 1}]\n");
}

std::int64_t Count(const json::value& pool, const std::string& state) {
  if (!pool.is_object()) return -1;
  const auto* st = pool.as_object().if_contains("status");
  if (!st) return -1;
  return st->at("instances").at(state).as_int64();
}

std::string ConditionStatus(const json::value& pool, const std::string& type, std::string* reason) {
  if (!pool.is_object() || !pool.as_object().contains("status")) return "";
  for (const auto& c : pool.at("status").at("conditions").as_array()) {
    if (c.at("type").as_string() == type) {
      if (reason && c.as_object().contains("reason")) reason->assign(c.at("reason").as_string());
      return std::string(c.at("status").as_string());
    }
  }
  return "";
}

int PidOf(const json::value& instance) {
  return std::atoi(std::string(instance.at("backendId").as_string()).c_str());
}

}  // namespace mm::testing
