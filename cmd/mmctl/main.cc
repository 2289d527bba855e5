// mmctl: the matchmaker CLI, kubectl-shaped. Talks to matchmakerd's admin API.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "api/v1alpha1/codec.h"
#include "api/v1alpha1/decode.h"
#include "api/v1alpha1/yaml_json.h"
#include "cmd/mmctl/convert.h"
#include "cmd/mmctl/table.h"
#include "operator/http/blocking_client.h"

namespace json = boost::json;
using mm::http::HttpResult;

namespace {

constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

struct Client {
  std::string host = "127.0.0.1";
  std::uint16_t port = 3001;
  std::string token;

  HttpResult Call(const std::string& method, const std::string& target, const std::string& body = "") {
    mm::http::HttpConnection conn(host, port);
    mm::http::Headers h = {{"Accept", "application/json"}, {"Connection", "close"}};
    if (!body.empty()) h.emplace_back("Content-Type", "application/yaml");
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    return conn.Call(method, target, body, h, std::chrono::seconds(30));
  }
};

[[noreturn]] void Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  std::exit(code);
}

// "http://HOST:PORT[/...]" -> a client of HOST:PORT; exit 2 when malformed.
Client ClientFor(std::string url, const std::string& flag) {
  if (url.starts_with("http://")) url = url.substr(7);
  if (auto slash = url.find('/'); slash != std::string::npos) url = url.substr(0, slash);
  auto colon = url.rfind(':');
  if (colon == std::string::npos || colon == 0) Fail(2, flag + " must be http://HOST:PORT");
  Client c;
  c.host = url.substr(0, colon);
  c.port = static_cast<std::uint16_t>(std::atoi(url.c_str() + colon + 1));
  return c;
}

// The message of a JSON error body, else the body itself.
std::string ErrorOf(const HttpResult& r) {
  if (r.status == 0) return r.error;
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  std::string msg = r.body;
  if (!ec && v.is_object() && v.get_object().contains("message")) {
    msg = json::value_to<std::string>(v.at("message"));
    if (auto* errs = v.get_object().if_contains("errors"); errs && errs->is_array()) {
      msg.clear();
      for (const auto& e : errs->get_array()) msg += "\n  " + json::value_to<std::string>(e);
    }
  }
  return "(" + std::to_string(r.status) + ") " + msg;
}

json::value GetJson(Client& c, const std::string& target) {
  auto r = c.Call("GET", target);
  if (r.status != 200) Fail(1, ErrorOf(r));
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec) Fail(1, "GET " + target + ": the answer is not JSON (" + ec.message() + ")");
  return v;
}

std::string ReadAll(std::istream& in) {
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every pool in -f arguments (files, directories, "-"), validated locally.
std::vector<mm::api::ServerPool> LoadPools(const std::vector<std::string>& paths) {
  std::vector<mm::api::ServerPool> pools;
  std::vector<mm::api::FieldError> errors;
  for (const auto& p : paths) {
    auto r = p == "-" ? mm::api::DecodePools(ReadAll(std::cin), "-") : mm::api::DecodePath(p);
    errors.insert(errors.end(), r.errors.begin(), r.errors.end());
    pools.insert(pools.end(), r.pools.begin(), r.pools.end());
  }
  for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
  if (!errors.empty()) Fail(2, std::to_string(errors.size()) + " error(s); nothing applied");
  return pools;
}

const json::value* Condition(const json::value& pool, std::string_view type) {
  auto* st = pool.as_object().if_contains("status");
  if (!st) return nullptr;
  for (const auto& c : st->at("conditions").as_array()) {
    if (c.at("type").as_string() == type) return &c;
  }
  return nullptr;
}

std::int64_t Int(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (auto k : path) {
    auto* o = cur->if_object();
    if (!o || !o->contains(k)) return 0;
    cur = &o->at(k);
  }
  return cur->is_int64() ? cur->get_int64() : 0;
}

bool PoolReady(const json::value& pool) {
  auto* c = Condition(pool, "Ready");
  return c && c->at("status").as_string() == "True" &&
         Int(pool, {"status", "observedGeneration"}) >= Int(pool, {"metadata", "generation"});
}

std::string Progress(const json::value& pool) {
  auto n = [&](std::string_view s) { return Int(pool, {"status", "instances", s}); };
  return std::to_string(n("ready")) + "/" + std::to_string(Int(pool, {"spec", "warm"})) + " warm, " +
         std::to_string(n("starting")) + " starting, " + std::to_string(n("allocated") + n("full")) + " busy" +
         (n("unhealthy") > 0 ? ", " + std::to_string(n("unhealthy")) + " unhealthy" : "");
}

int Apply(Client& c, const std::vector<std::string>& files, bool wait, int timeout_s) {
  auto pools = LoadPools(files);
  if (pools.empty()) Fail(2, "no ServerPool found in the given files");
  for (const auto& p : pools) {
    auto r = c.Call("PUT", std::string(kPools) + "/" + p.metadata.name, mm::api::ToYaml(p));
    if (r.status != 200 && r.status != 201) Fail(r.status == 422 ? 2 : 1, p.metadata.name + ": " + ErrorOf(r));
    std::printf("serverpool/%s %s\n", p.metadata.name.c_str(), r.status == 201 ? "created" : "configured");
  }
  std::fflush(stdout);
  if (!wait) return 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::map<std::string, std::string> last;
  while (true) {
    bool all = true;
    for (const auto& p : pools) {
      auto pool = GetJson(c, std::string(kPools) + "/" + p.metadata.name);
      std::string line = Progress(pool);
      bool ready = PoolReady(pool);
      if (last[p.metadata.name] != line) {
        std::printf("serverpool/%s: %s%s\n", p.metadata.name.c_str(), line.c_str(), ready ? " - Ready" : "");
        std::fflush(stdout);
        last[p.metadata.name] = line;
      }
      all = all && ready;
    }
    if (all) return 0;
    if (std::chrono::steady_clock::now() > deadline) Fail(1, "timed out waiting for Ready");
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::string Age(const std::string& rfc3339) {
  std::tm tm{};
  if (!strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return "<unknown>";
  auto then = std::chrono::system_clock::from_time_t(timegm(&tm));
  return mm::mmctl::HumanDuration(std::chrono::system_clock::now() - then);
}

std::string AgeMillis(std::int64_t ms) {
  if (ms <= 0) return "<none>";
  auto then = std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
  return mm::mmctl::HumanDuration(std::chrono::system_clock::now() - then);
}

std::string Str(const json::value& v, std::string_view k) {
  auto* o = v.if_object();
  auto* f = o ? o->if_contains(k) : nullptr;
  return f && f->is_string() ? std::string(f->get_string()) : "";
}

void Print(const json::value& v, const std::string& output) {
  if (output == "json") {
    std::printf("%s\n", json::serialize(v).c_str());
  } else {
    std::printf("%s", mm::api::ToYaml(v).c_str());
  }
}

int GetPools(Client& c, const std::string& name, const std::string& output) {
  json::value v = GetJson(c, std::string(kPools) + (name.empty() ? "" : "/" + name));
  if (output == "json" || output == "yaml") return Print(v, output), 0;
  std::vector<json::value> items;
  if (name.empty()) {
    for (const auto& p : v.at("items").as_array()) items.push_back(p);
  } else {
    items.push_back(v);
  }
  mm::mmctl::Table t({"NAME", "WARM", "READY", "STARTING", "ALLOCATED", "FULL", "UNHEALTHY", "MAX", "AGE"});
  if (output == "wide") t.AddColumns({"GENERATION", "CONDITIONS", "IMAGE/COMMAND"});
  for (const auto& p : items) {
    auto n = [&](std::string_view s) { return std::to_string(Int(p, {"status", "instances", s})); };
    std::vector<std::string> row = {Str(p.at("metadata"), "name"), std::to_string(Int(p, {"spec", "warm"})),
                                    n("ready"), n("starting"), n("allocated"), n("full"), n("unhealthy"),
                                    std::to_string(Int(p, {"spec", "maxInstances"})),
                                    Age(Str(p.at("metadata"), "creationTimestamp"))};
    if (output == "wide") {
      std::string conds;
      if (auto* st = p.as_object().if_contains("status")) {
        for (const auto& cnd : st->at("conditions").as_array()) {
          if (cnd.at("status").as_string() == "True") conds += (conds.empty() ? "" : ",") + Str(cnd, "type");
        }
      }
      const auto& t2 = p.at("spec").at("template");
      std::string what = Str(t2, "image");
      if (what.empty() && t2.as_object().contains("command")) what = std::string(t2.at("command").as_array()[0].as_string());
      row.push_back(std::to_string(Int(p, {"metadata", "generation"})));
      row.push_back(conds.empty() ? "<none>" : conds);
      row.push_back(what);
    }
    t.AddRow(row);
  }
  std::printf("%s", t.Render().c_str());
  return 0;
}

int GetInstances(Client& c, const std::string& pool, const std::string& output) {
  std::vector<std::string> names;
  if (pool.empty()) {
    json::value list = GetJson(c, kPools);
    for (const auto& p : list.at("items").as_array()) names.push_back(Str(p.at("metadata"), "name"));
  } else {
    names.push_back(pool);
  }
  json::array all;
  for (const auto& n : names) {
    json::value list = GetJson(c, std::string(kPools) + "/" + n + "/instances");
    for (const auto& i : list.at("items").as_array()) all.push_back(i);
  }
  if (output == "json" || output == "yaml") {
    return Print(json::object{{"kind", "InstanceList"}, {"items", all}}, output), 0;
  }
  mm::mmctl::Table t({"NAME", "POOL", "STATE", "CLIENTS", "ADDRESS", "AGE"});
  if (output == "wide") t.AddColumns({"CONTROL", "BACKEND-ID", "TEMPLATE", "MESSAGE"});
  for (const auto& i : all) {
    std::string address = "<none>";
    const auto& ports = i.at("ports").as_object();
    if (!ports.empty()) {
      auto it = ports.find("game");
      const auto& port = it != ports.end() ? it->value() : ports.begin()->value();
      address = Str(i, "host") + ":" + std::to_string(port.as_int64());
    }
    std::vector<std::string> row = {Str(i, "name"), Str(i, "pool"), Str(i, "state"),
                                    std::to_string(i.at("reservations").as_array().size()), address,
                                    AgeMillis(Int(i, {"created"}))};
    if (output == "wide") {
      row.push_back(Str(i, "controlHost") + ":" + std::to_string(Int(i, {"controlPort"})));
      row.push_back(Str(i, "backendId"));
      row.push_back(Str(i, "templateHash"));
      row.push_back(Str(i, "message"));
    }
    t.AddRow(row);
  }
  std::printf("%s", t.Render().c_str());
  return 0;
}

int Describe(Client& c, const std::string& name) {
  auto p = GetJson(c, std::string(kPools) + "/" + name);
  auto events = GetJson(c, std::string(kPools) + "/" + name + "/events");
  auto instances = GetJson(c, std::string(kPools) + "/" + name + "/instances");
  const auto& meta = p.at("metadata");
  std::printf("Name:         %s\n", Str(meta, "name").c_str());
  std::printf("Generation:   %lld\n", static_cast<long long>(Int(p, {"metadata", "generation"})));
  std::printf("Created:      %s (%s ago)\n", Str(meta, "creationTimestamp").c_str(),
              Age(Str(meta, "creationTimestamp")).c_str());
  std::printf("Spec:\n");
  std::string spec = mm::api::ToYaml(p.at("spec"));
  std::istringstream lines(spec);
  for (std::string l; std::getline(lines, l);) std::printf("  %s\n", l.c_str());
  std::printf("Status:\n  Observed generation: %lld\n  Instances: %s\n",
              static_cast<long long>(Int(p, {"status", "observedGeneration"})), Progress(p).c_str());
  mm::mmctl::Table conds({"TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"});
  if (auto* st = p.as_object().if_contains("status")) {
    for (const auto& cnd : st->at("conditions").as_array()) {
      conds.AddRow({Str(cnd, "type"), Str(cnd, "status"), Str(cnd, "reason"), Str(cnd, "lastTransitionTime"),
                    Str(cnd, "message")});
    }
  }
  std::printf("Conditions:\n%s", conds.Render("  ").c_str());
  const auto& items = instances.at("items").as_array();
  std::printf("Instances:    %zu\n", items.size());
  mm::mmctl::Table it({"NAME", "STATE", "CLIENTS", "AGE", "MESSAGE"});
  for (const auto& i : items) {
    it.AddRow({Str(i, "name"), Str(i, "state"), std::to_string(i.at("reservations").as_array().size()),
               AgeMillis(Int(i, {"created"})), Str(i, "message")});
  }
  if (!items.empty()) std::printf("%s", it.Render("  ").c_str());
  mm::mmctl::Table ev({"TIME", "TYPE", "REASON", "MESSAGE"});
  for (const auto& e : events.at("items").as_array()) {
    ev.AddRow({Str(e, "time"), Str(e, "type"), Str(e, "reason"), Str(e, "message")});
  }
  std::printf("Events:\n%s", ev.Render("  ").c_str());
  return 0;
}

int DeletePool(Client& c, const std::string& name, bool force) {
  auto r = c.Call("DELETE", std::string(kPools) + "/" + name + (force ? "?force=true" : ""));
  if (r.status != 200) Fail(r.status == 404 ? 1 : 1, ErrorOf(r));
  std::printf("serverpool/%s deleted%s\n", name.c_str(), force ? " (forced)" : " (draining busy instances)");
  return 0;
}

// `mmctl convert go-matchmaker`: the pool on stdout, the credentials (if
// any, and asked for) in a 0600 file. Needs no server.
int Convert(const std::string& env_file, const mm::mmctl::ConvertOptions& options, const std::string& auth_out) {
  mm::mmctl::Env env;
  if (!env_file.empty()) {
    std::ifstream in(env_file, std::ios::binary);
    if (!in) Fail(1, "cannot read " + env_file);
    std::ostringstream text;
    text << in.rdbuf();
    auto parsed = mm::mmctl::ParseEnvFile(text.str());
    if (auto* err = std::get_if<std::string>(&parsed)) Fail(1, env_file + ": " + *err);
    env = std::get<mm::mmctl::Env>(std::move(parsed));
  } else {
    for (char** e = environ; *e; ++e) {
      std::string kv(*e);
      if (auto eq = kv.find('='); eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  auto converted = mm::mmctl::ConvertGoMatchmaker(env, options);
  if (auto* err = std::get_if<std::string>(&converted)) Fail(1, *err);
  const auto& c = std::get<mm::mmctl::Converted>(converted);
  if (!auth_out.empty()) {
    if (c.auth_json.empty()) Fail(1, "--registry-auth-out: IMAGE_REGISTRY_USERNAME is not set");
    int fd = ::open(auth_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, c.auth_json.data(), c.auth_json.size()) != static_cast<ssize_t>(c.auth_json.size())) {
      if (fd >= 0) ::close(fd);
      Fail(1, "cannot write " + auth_out);
    }
    ::close(fd);
  }
  std::fputs(c.yaml.c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mmctl: drive matchmakerd (kubectl-shaped)"};
  app.require_subcommand(1);
  std::string server = "http://127.0.0.1:3001";
  std::string token_file;
  app.add_option("--server", server, "Admin API URL")->envname("MM_SERVER")->capture_default_str();
  app.add_option("--token-file", token_file, "Bearer token for the admin API")->envname("MM_TOKEN_FILE");

  auto* apply = app.add_subcommand("apply", "Create or update pools from YAML");
  std::vector<std::string> files;
  bool wait = false;
  int timeout_s = 300;
  apply->add_option("-f,--filename", files, "File, directory, or - for stdin")->required();
  apply->add_flag("--wait", wait, "Show progress until every applied pool is Ready");
  apply->add_option("--timeout", timeout_s, "Seconds to --wait")->capture_default_str();

  auto* get = app.add_subcommand("get", "List pools or instances");
  std::string kind, name, output, pool;
  get->add_option("kind", kind, "pools|instances")->required()->check(
      CLI::IsMember({"pools", "pool", "serverpools", "sp", "instances", "instance"}));
  get->add_option("name", name, "Pool name");
  get->add_option("-o,--output", output, "wide|yaml|json")->check(CLI::IsMember({"", "wide", "yaml", "json"}));
  get->add_option("-p,--pool", pool, "Only instances of this pool");

  auto* describe = app.add_subcommand("describe", "Show a pool in detail");
  std::string dkind, dname;
  describe->add_option("kind", dkind, "pool")->required()->check(CLI::IsMember({"pool", "pools", "serverpool", "sp"}));
  describe->add_option("name", dname, "Pool name")->required();

  auto* del = app.add_subcommand("delete", "Delete a pool (drains busy instances)");
  std::string delkind, delname;
  bool force = false;
  del->add_option("kind", delkind, "pool")->required()->check(CLI::IsMember({"pool", "pools", "serverpool", "sp"}));
  del->add_option("name", delname, "Pool name")->required();
  del->add_flag("--force", force, "Stop busy instances too");

  auto* request = app.add_subcommand("request", "Act as a game client: POST /request and print the answer");
  std::string client_id, req_pool, client_server = "http://127.0.0.1:3000";
  request->add_option("--client", client_id, "Client id (the Authorization header value)")->required();
  request->add_option("--pool", req_pool, "Pool to allocate from");
  request->add_option("--client-server", client_server, "Client API URL")->envname("MM_CLIENT_SERVER")
      ->capture_default_str();

  auto* health = app.add_subcommand("health", "Exit 0 when matchmakerd answers /healthz (or /readyz) with 200");
  bool ready = false;
  health->add_flag("--ready", ready, "Ask /readyz: also needs the backend reachable and state loaded");

  auto* convert = app.add_subcommand("convert", "Print the ServerPool equivalent to another matchmaker's settings");
  std::string convert_from, env_file, auth_out;
  mm::mmctl::ConvertOptions convert_options;
  convert->add_option("from", convert_from, "go-matchmaker")->required()->check(CLI::IsMember({"go-matchmaker"}));
  convert->add_option("--env-file", env_file, "go-matchmaker's .env (default: this process's environment)");
  convert->add_option("--name", convert_options.name, "Pool name")->capture_default_str();
  convert->add_option("--warm", convert_options.warm, "Idle servers to keep started")
      ->check(CLI::Range(0, 100000))->capture_default_str();
  convert->add_option("--registry-auth-out", auth_out,
                      "Write IMAGE_REGISTRY_USERNAME/PASSWORD to this file for --registry-auth-file (mode 0600)");

  CLI11_PARSE(app, argc, argv);
  if (*convert) return Convert(env_file, convert_options, auth_out);

  // Whatever the server sends (a proxy's HTML, truncated or malformed JSON,
  // fields of unexpected types), mmctl says so and exits 1; it never aborts.
  try {
    Client c = ClientFor(server, "--server");
    if (!token_file.empty()) {
      std::ifstream in(token_file);
      if (!in) Fail(2, "cannot read " + token_file);
      std::getline(in, c.token);
    }

    if (*health) {
      // The image's HEALTHCHECK: no shell or curl in a FROM scratch image.
      auto r = c.Call("GET", ready ? "/readyz" : "/healthz");
      std::printf("%s\n", r.status == 0 ? ErrorOf(r).c_str() : r.body.c_str());
      return r.status == 200 ? 0 : 1;
    }
    if (*apply) return Apply(c, files, wait, timeout_s);
    if (*get) {
      if (kind.starts_with("instance")) return GetInstances(c, pool.empty() ? name : pool, output);
      return GetPools(c, name, output);
    }
    if (*describe) return Describe(c, dname);
    if (*del) return DeletePool(c, delname, force);
    if (*request) {
      Client api = ClientFor(client_server, "--client-server");
      mm::http::HttpConnection conn(api.host, api.port);
      std::string target = "/request" + (req_pool.empty() ? "" : "?pool=" + req_pool);
      auto r = conn.Call("POST", target, "", {{"Authorization", client_id}, {"Connection", "close"}},
                         std::chrono::seconds(30));
      if (r.status == 200) {
        std::printf("%s\n", r.body.c_str());
        return 0;
      }
      if (r.status == 202) {
        std::printf("queued (retry after %ss)\n", r.Header("Retry-After").c_str());
        return 3;
      }
      Fail(1, ErrorOf(r));
    }
    return 0;
  } catch (const std::exception& e) {
    Fail(1, std::string("cannot read the server's answer: ") + e.what());
  }
}
