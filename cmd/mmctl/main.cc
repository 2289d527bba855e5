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
#include "api/reservation/client_id.h"
#include "cmd/mmctl/completion.h"
#include "cmd/mmctl/convert.h"
#include "cmd/mmctl/server_url.h"
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

Client ClientFor(const std::string& url, const std::string& flag) {
  auto parsed = mm::mmctl::ParseServerUrl(url);
  if (auto* err = std::get_if<std::string>(&parsed)) Fail(2, flag + " " + *err);
  Client c;
  c.host = std::get<mm::mmctl::ServerAddress>(parsed).host;
  c.port = std::get<mm::mmctl::ServerAddress>(parsed).port;
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

struct GetOptions {
  std::string output;  // "", wide, yaml, json, name
  std::string selector;  // -l
  bool no_headers = false;
  bool watch = false;
};

std::vector<std::string> PoolHeaders(bool wide) {
  std::vector<std::string> h = {"NAME", "WARM", "READY", "STARTING", "ALLOCATED", "FULL", "UNHEALTHY", "MAX", "AGE"};
  if (wide) h.insert(h.end(), {"GENERATION", "CONDITIONS", "IMAGE/COMMAND"});
  return h;
}

std::vector<std::string> PoolRow(const json::value& p, bool wide) {
  auto n = [&](std::string_view s) { return std::to_string(Int(p, {"status", "instances", s})); };
  std::vector<std::string> row = {Str(p.at("metadata"), "name"), std::to_string(Int(p, {"spec", "warm"})),
                                  n("ready"), n("starting"), n("allocated"), n("full"), n("unhealthy"),
                                  std::to_string(Int(p, {"spec", "maxInstances"})),
                                  Age(Str(p.at("metadata"), "creationTimestamp"))};
  if (wide) {
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
  return row;
}

// How many clients hold a slot: "clients", or from a server before it, the
// length of "reservations" (which now lists at most 1,000 ids).
std::int64_t Clients(const json::value& i) {
  const auto* c = i.as_object().if_contains("clients");
  if (c && c->is_int64()) return c->get_int64();
  return static_cast<std::int64_t>(i.at("reservations").as_array().size());
}

std::vector<std::string> InstanceHeaders(bool wide) {
  std::vector<std::string> h = {"NAME", "POOL", "STATE", "CLIENTS", "ADDRESS", "AGE"};
  if (wide) h.insert(h.end(), {"CONTROL", "BACKEND-ID", "TEMPLATE", "MESSAGE"});
  return h;
}

std::vector<std::string> InstanceRow(const json::value& i, bool wide) {
  std::string address = "<none>";
  const auto& ports = i.at("ports").as_object();
  if (!ports.empty()) {
    auto it = ports.find("game");
    const auto& port = it != ports.end() ? it->value() : ports.begin()->value();
    address = Str(i, "host") + ":" + std::to_string(port.as_int64());
  }
  std::vector<std::string> row = {Str(i, "name"), Str(i, "pool"), Str(i, "state"),
                                  std::to_string(Clients(i)), address,
                                  AgeMillis(Int(i, {"created"}))};
  if (wide) {
    row.push_back(Str(i, "controlHost") + ":" + std::to_string(Int(i, {"controlPort"})));
    row.push_back(Str(i, "backendId"));
    row.push_back(Str(i, "templateHash"));
    row.push_back(Str(i, "message"));
  }
  return row;
}

std::string Query(const std::string& selector) {
  return selector.empty() ? "" : "labelSelector=" + mm::reservation::PercentEncode(selector);
}

int GetPools(Client& c, const std::string& name, const GetOptions& o) {
  std::string q = Query(o.selector);
  json::value v = GetJson(c, std::string(kPools) + (name.empty() ? "" : "/" + name) + (q.empty() ? "" : "?" + q));
  std::vector<json::value> items;
  if (name.empty()) {
    for (const auto& p : v.at("items").as_array()) items.push_back(p);
  } else {
    items.push_back(v);
  }
  if (o.output == "json" || o.output == "yaml") return Print(v, o.output), 0;
  if (o.output == "name") {
    for (const auto& p : items) std::printf("serverpool/%s\n", Str(p.at("metadata"), "name").c_str());
    return 0;
  }
  mm::mmctl::Table t(PoolHeaders(o.output == "wide"));
  for (const auto& p : items) t.AddRow(PoolRow(p, o.output == "wide"));
  std::printf("%s", t.Render("", !o.no_headers).c_str());
  return 0;
}

int GetInstances(Client& c, const std::string& pool, const GetOptions& o) {
  std::vector<std::string> names;
  if (pool.empty()) {
    std::string q = Query(o.selector);
    json::value list = GetJson(c, std::string(kPools) + (q.empty() ? "" : "?" + q));
    for (const auto& p : list.at("items").as_array()) names.push_back(Str(p.at("metadata"), "name"));
  } else {
    names.push_back(pool);
  }
  json::array all;
  for (const auto& n : names) {
    json::value list = GetJson(c, std::string(kPools) + "/" + n + "/instances");
    for (const auto& i : list.at("items").as_array()) all.push_back(i);
  }
  if (o.output == "json" || o.output == "yaml") {
    return Print(json::object{{"apiVersion", mm::api::kApiVersion}, {"kind", "InstanceList"}, {"items", all}}, o.output),
           0;
  }
  if (o.output == "name") {
    for (const auto& i : all) std::printf("instance/%s\n", Str(i, "name").c_str());
    return 0;
  }
  mm::mmctl::Table t(InstanceHeaders(o.output == "wide"));
  for (const auto& i : all) t.AddRow(InstanceRow(i, o.output == "wide"));
  std::printf("%s", t.Render("", !o.no_headers).c_str());
  return 0;
}

// `get -w`: the watch stream, printed as it comes (kubectl get -w): the
// current objects, then each change. Ends when the server ends it.
int Watch(Client& c, bool instances, const std::string& name, const GetOptions& o) {
  if (instances && name.empty()) Fail(2, "get instances -w needs a pool: -p POOL");
  std::string target = std::string(kPools) + (name.empty() ? "" : "/" + name) + (instances ? "/instances" : "") +
                       "?watch=true";
  if (!instances && !o.selector.empty()) target += "&" + Query(o.selector);
  bool wide = o.output == "wide";
  mm::mmctl::RowPrinter rows(instances ? InstanceHeaders(wide) : PoolHeaders(wide), !o.no_headers);
  mm::http::HttpConnection conn(c.host, c.port);
  mm::http::Headers headers;
  if (!c.token.empty()) headers.emplace_back("Authorization", "Bearer " + c.token);
  auto r = conn.Stream(target, headers, [&](std::string_view line) {
    boost::system::error_code ec;
    auto ev = json::parse(line, ec);
    if (ec || !ev.is_object()) Fail(1, "the watch sent a line that is not an event: " + std::string(line.substr(0, 200)));
    std::string type = Str(ev, "type");
    if (type == "BOOKMARK") return true;
    const auto& obj = ev.at("object");
    if (o.output == "json") {
      std::printf("%s\n", json::serialize(ev).c_str());
    } else if (o.output == "yaml") {
      std::printf("---\n%s", mm::api::ToYaml(ev).c_str());
    } else if (o.output == "name") {
      std::printf("%s/%s\n", instances ? "instance" : "serverpool",
                  (instances ? Str(obj, "name") : Str(obj.at("metadata"), "name")).c_str());
    } else {
      auto row = instances ? InstanceRow(obj, wide) : PoolRow(obj, wide);
      if (type == "DELETED") row[2] = "<deleted>";  // STATE of an instance, READY of a pool
      std::printf("%s", rows.Row(row).c_str());
    }
    std::fflush(stdout);
    return true;
  }, std::chrono::minutes(5));
  if (r.status != 200) Fail(1, ErrorOf(r));
  if (!r.error.empty()) Fail(1, "watch: " + r.error);
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
    it.AddRow({Str(i, "name"), Str(i, "state"), std::to_string(Clients(i)),
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

int DeletePool(Client& c, const std::string& name, bool force, bool ignore_not_found) {
  auto r = c.Call("DELETE", std::string(kPools) + "/" + name + (force ? "?force=true" : ""));
  if (r.status == 404 && ignore_not_found) return 0;
  if (r.status != 200) Fail(1, ErrorOf(r));
  std::printf("serverpool/%s deleted%s\n", name.c_str(), force ? " (forced)" : " (draining busy instances)");
  return 0;
}

// Client and server versions; the server's from matchmaker_build_info.
int Version(Client& c, bool client_only) {
  std::printf("Client Version: %s\n", MM_VERSION);
  if (client_only) return 0;
  auto r = c.Call("GET", "/metrics");
  if (r.status != 200) Fail(1, "cannot read the server's version: " + ErrorOf(r));
  const std::string key = "matchmaker_build_info{version=\"";
  auto at = r.body.find(key);
  if (at == std::string::npos) Fail(1, "the server's /metrics has no matchmaker_build_info");
  auto end = r.body.find('"', at + key.size());
  std::printf("Server Version: %s\n", r.body.substr(at + key.size(), end - at - key.size()).c_str());
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

constexpr char kExitCodes[] =
    "Exit codes: 0 done; 1 error (the server said no, or could not be reached); 2 usage (bad flags, "
    "arguments or input files; nothing was sent); 3 queued (mmctl request: the client waits in line).";

int main(int argc, char** argv) {
  CLI::App app{"mmctl: drive matchmakerd (kubectl-shaped)"};
  app.footer(kExitCodes);
  app.set_version_flag("--version", std::string("mmctl ") + MM_VERSION);
  app.require_subcommand(1);
  std::string server = "http://127.0.0.1:3001";
  std::string token_file;
  app.add_option("--server", server, "Admin API URL (http://HOST:PORT, IPv6 as http://[::1]:3001)")
      ->envname("MM_SERVER")->capture_default_str();
  app.add_option("--token-file", token_file, "Bearer token for the admin API")->envname("MM_TOKEN_FILE");

  auto* apply = app.add_subcommand("apply", "Create or update pools from YAML");
  std::vector<std::string> files;
  bool wait = false;
  int timeout_s = 300;
  apply->add_option("-f,--filename", files, "File, directory, or - for stdin")->required();
  apply->add_flag("--wait", wait, "Show progress until every applied pool is Ready");
  apply->add_option("--timeout", timeout_s, "Seconds to --wait")->capture_default_str();

  auto* get = app.add_subcommand("get", "List pools or instances");
  std::string kind, name, pool;
  GetOptions get_options;
  get->add_option("kind", kind, "pools|instances")->required()->check(
      CLI::IsMember({"pools", "pool", "serverpools", "sp", "instances", "instance"}));
  get->add_option("name", name, "Pool name");
  get->add_option("-o,--output", get_options.output, "wide|yaml|json|name")
      ->check(CLI::IsMember({"", "wide", "yaml", "json", "name"}));
  get->add_option("-p,--pool", pool, "Only instances of this pool");
  get->add_option("-l,--selector", get_options.selector, "Pools whose labels match: key=value[,key!=value...]");
  get->add_flag("--no-headers", get_options.no_headers, "Tables without their header line");
  get->add_flag("-w,--watch", get_options.watch, "After listing, print each change as it happens");

  auto* describe = app.add_subcommand("describe", "Show a pool in detail");
  std::string dkind, dname;
  describe->add_option("kind", dkind, "pool")->required()->check(CLI::IsMember({"pool", "pools", "serverpool", "sp"}));
  describe->add_option("name", dname, "Pool name")->required();

  auto* del = app.add_subcommand("delete", "Delete a pool (drains busy instances)");
  std::string delkind, delname;
  bool force = false, ignore_not_found = false;
  del->add_option("kind", delkind, "pool")->required()->check(CLI::IsMember({"pool", "pools", "serverpool", "sp"}));
  del->add_option("name", delname, "Pool name")->required();
  del->add_flag("--force", force, "Stop busy instances too");
  del->add_flag("--ignore-not-found", ignore_not_found, "A pool that does not exist is not an error");

  auto* request = app.add_subcommand("request", "Act as a game client: POST /request and print the answer");
  std::string client_id, req_pool, client_server = "http://127.0.0.1:3000";
  request->add_option("--client", client_id, "Client id (the Authorization header value)")->required();
  request->add_option("--pool", req_pool, "Pool to allocate from");
  request->add_option("--client-server", client_server, "Client API URL")->envname("MM_CLIENT_SERVER")
      ->capture_default_str();

  auto* health = app.add_subcommand("health", "Exit 0 when matchmakerd answers /healthz (or /readyz) with 200");
  bool ready = false;
  health->add_flag("--ready", ready, "Ask /readyz: also needs the backend reachable and state loaded");

  auto* version = app.add_subcommand("version", "Print the client's version and the server's");
  bool client_only = false;
  version->add_flag("--client", client_only, "The client's only (no server needed)");

  auto* completion = app.add_subcommand("completion", "Print a shell completion script: source <(mmctl completion bash)");
  std::string shell;
  completion->add_option("shell", shell, "bash")->required()->check(CLI::IsMember({"bash"}));

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

  // Usage errors exit 2, whatever CLI11's own code for them (--help and
  // --version exit 0).
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (*convert) return Convert(env_file, convert_options, auth_out);
  if (*completion) {
    std::fputs(mm::mmctl::BashCompletion().data(), stdout);
    return 0;
  }

  // Whatever the server sends (a proxy's HTML, truncated or malformed JSON,
  // fields of unexpected types), mmctl says so and exits 1; it never aborts.
  try {
    Client c = ClientFor(server, "--server");
    if (!token_file.empty()) {
      std::ifstream in(token_file);
      if (!in) Fail(2, "cannot read " + token_file);
      std::getline(in, c.token);
    }

    if (*version) return Version(c, client_only);
    if (*health) {
      // The image's HEALTHCHECK: no shell or curl in a FROM scratch image.
      auto r = c.Call("GET", ready ? "/readyz" : "/healthz");
      std::printf("%s\n", r.status == 0 ? ErrorOf(r).c_str() : r.body.c_str());
      return r.status == 200 ? 0 : 1;
    }
    if (*apply) return Apply(c, files, wait, timeout_s);
    if (*get) {
      bool instances = kind.starts_with("instance");
      std::string target = instances ? (pool.empty() ? name : pool) : name;
      // -w: the current objects, then each change, from one stream (no gap).
      if (get_options.watch) return Watch(c, instances, target, get_options);
      if (instances) return GetInstances(c, target, get_options);
      return GetPools(c, target, get_options);
    }
    if (*describe) return Describe(c, dname);
    if (*del) return DeletePool(c, delname, force, ignore_not_found);
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
