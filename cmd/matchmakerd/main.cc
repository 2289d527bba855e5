// matchmakerd: the matchmaker operator daemon. Wires the components; all
// logic lives in the libraries.

#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "api/v1alpha1/decode.h"
#include "cmd/matchmakerd/json_log.h"
#include "operator/allocate/allocator.h"
#include "operator/backend/docker_backend.h"
#include "operator/backend/process_backend.h"
#include "operator/backend/swarm_backend.h"
#include "operator/apiserver/auth.h"
#include "operator/apiserver/client_api.h"
#include "operator/apiserver/admin_api.h"
#include "operator/apiserver/watch.h"
#include "operator/http/server.h"
#include "operator/metrics/metrics.h"
#include "operator/reconcile/controller.h"
#include "operator/store/store.h"

#ifndef MM_VERSION
#define MM_VERSION "dev"
#endif

namespace {

int Validate(const std::string& path) {
  auto result = mm::api::DecodePath(path);
  for (const auto& e : result.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
  if (!result.ok()) {
    std::fprintf(stderr, "%zu error(s)\n", result.errors.size());
    return 2;
  }
  for (const auto& p : result.pools) std::printf("serverpool/%s valid\n", p.metadata.name.c_str());
  return 0;
}

std::optional<std::string> ReadSecret(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  std::string v = s.str();
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ')) v.pop_back();
  return v;
}

// This daemon's identity on a shared engine: a random id kept in the data
// dir, so a restarted (or redeployed) matchmakerd with the same data adopts
// its containers, and never another daemon's.
std::optional<std::string> OwnerId(const std::string& data_dir) {
  const std::string path = data_dir + "/owner-id";
  if (auto id = ReadSecret(path); id && id->size() >= 8) return id;
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  std::ofstream out(path, std::ios::trunc);
  out << buf << "\n";
  out.close();
  if (!out) return std::nullopt;
  return std::string(buf);
}

struct Flags {
  std::string validate;
  std::string backend = "process";
  std::string pools;
  std::string data_dir = "./.matchmaker";
  std::string docker_host;
  std::string publish_ip = "0.0.0.0";
  std::string control_network;
  std::string listen = "0.0.0.0:3000";
  std::string admin_listen = "127.0.0.1:3001";
  std::string public_address = "127.0.0.1";
  std::string auth = "header";
  std::string registry_auth_file;
  int watch_bookmark_ms = 10'000;
  std::string jwt_secret_file;
  std::string jwt_public_key_file;
  std::string jwt_audience;
  std::string jwt_issuer;
  int jwt_leeway_s = 30;
  int jwt_max_lifetime_s = 24 * 3600;
  std::string admin_token_file;
  std::vector<std::string> admin_allowed_hosts;
  std::string log_format = "text";
  std::string log_level = "info";
  int stop_grace_ms = 5000;
  int docker_resync_ms = 30000;
  int docker_ping_ms = 2000;
  std::size_t queue_limit = 10000;
  int queue_ttl_s = 60;
  int max_connections = 0;  // 0: sized from the descriptor limit
  int max_instances = -1;   // -1: sized to the machine
  double max_creates_per_second = 50;
  int max_connections_per_source = 256;
  int header_timeout_ms = 10'000;
};

// The default --max-instances: one instance per 16 MiB of this machine's
// memory for the process and docker backends (at least 64); a swarm spans
// other machines: 10,000.
int DefaultMaxInstances(const std::string& backend) {
  if (backend == "swarm") return 10'000;
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 1000;
  long mib = static_cast<long>((static_cast<long double>(pages) * page) / (1024 * 1024));
  return static_cast<int>(std::max(64L, mib / 16));
}

// Descriptors kept out of the client API's reach: the admin API, the
// journal, instance logs and engine connections keep working when clients
// hold every connection they may.
constexpr rlim_t kDescriptorReserve = 512;

// The client API's connection cap: the flag, within the descriptor limit
// less the reserve.
std::size_t ClientConnectionCap(int flag) {
  rlimit rl{};
  std::size_t by_limit = 4096;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    by_limit = rl.rlim_cur > kDescriptorReserve + 64 ? static_cast<std::size_t>(rl.rlim_cur - kDescriptorReserve) : 64;
  }
  if (flag > 0) return std::min<std::size_t>(static_cast<std::size_t>(flag), by_limit);
  return std::min<std::size_t>(by_limit, 100'000);
}

// Every connection, instance log and engine socket is a descriptor: the
// soft limit (often 1,024) goes up to the hard one.
void RaiseFileLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rlim_t was = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) == 0) {
    spdlog::debug("open files: soft limit raised from {} to {}", was, rl.rlim_max);
  }
}

// How long a graceful stop may wait for attempts in flight: the longest
// handshake any pool allows (every retry timing out, with its cooldowns),
// twice (an attempt may move on to a second instance), plus a second for
// the journal.
std::chrono::milliseconds StopBound(const mm::reconcile::Controller& controller) {
  long long longest = 0;
  for (const auto& p : controller.List()) {
    const auto& r = p.spec.reservation;
    longest = std::max<long long>(longest, 1LL * r.timeoutMs * (r.retries + 1) + 1LL * r.cooldownMs * r.retries);
  }
  return std::chrono::milliseconds(2 * longest + 1000);
}

// Polls every 10 ms; stops `io` once every attempt has answered (`drained`)
// and its responses are written (`idle`), or at `deadline`. Once drained,
// at most a second more is given to the writes: a connection still open
// then (a slow client sending headers, a stuck peer) is owed nothing.
void WaitThenStop(boost::asio::io_context& io, std::chrono::steady_clock::time_point start,
                  std::chrono::steady_clock::time_point deadline, std::function<bool()> drained,
                  std::function<bool()> idle) {
  auto now = std::chrono::steady_clock::now();
  bool is_drained = drained();
  if (is_drained) deadline = std::min(deadline, now + std::chrono::seconds(1));
  if ((is_drained && idle()) || now >= deadline) {
    if (!is_drained) spdlog::warn("stop: requests still in flight at the deadline; stopping anyway");
    spdlog::info("stop: in-flight work finished in {} ms",
                 std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count());
    return io.stop();
  }
  auto timer = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(10));
  timer->async_wait([&io, start, deadline, drained = std::move(drained), idle = std::move(idle), timer](auto) {
    WaitThenStop(io, start, deadline, drained, idle);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"matchmakerd: keeps pools of game servers warm and hands them to players"};
  Flags f;
  app.add_option("--validate", f.validate, "Check pool files (a file or directory) offline and exit: 0 valid, 2 errors");
  app.add_option("--backend", f.backend, "Where instances run: process|docker|swarm")
      ->envname("MM_BACKEND")->check(CLI::IsMember({"process", "docker", "swarm"}))->capture_default_str();
  app.add_option("--pools", f.pools, "File or directory of pool YAML applied at start")->envname("MM_POOLS");
  app.add_option("--data-dir", f.data_dir, "State directory (journal, logs)")->envname("MM_DATA_DIR")->capture_default_str();
  app.add_option("--docker-host", f.docker_host, "Docker Engine URL (default: DOCKER_HOST or the unix socket)")
      ->envname("MM_DOCKER_HOST");
  app.add_option("--publish-ip", f.publish_ip, "docker: host address game ports are published on")
      ->envname("MM_PUBLISH_IP")->capture_default_str();
  app.add_option("--control-network", f.control_network,
                 "docker, swarm: reach control ports at container (task) addresses on this network, which matchmakerd is on; they are then not published")
      ->envname("MM_CONTROL_NETWORK");
  app.add_option("--registry-auth-file", f.registry_auth_file,
                 "docker, swarm: registry credentials for image pulls, Docker's config.json format; re-read on SIGHUP")
      ->envname("MM_REGISTRY_AUTH_FILE");
  app.add_option("--watch-bookmark-ms", f.watch_bookmark_ms, "watch heartbeat (BOOKMARK) period (tests)")
      ->envname("MM_WATCH_BOOKMARK_MS")->check(CLI::Range(50, 600000))->group("");
  app.add_option("--docker-resync-ms", f.docker_resync_ms, "docker: full container list compare period (tests)")
      ->envname("MM_DOCKER_RESYNC_MS")->check(CLI::Range(50, 3600000))->group("");
  app.add_option("--docker-ping-ms", f.docker_ping_ms, "docker: engine liveness check period (tests)")
      ->envname("MM_DOCKER_PING_MS")->check(CLI::Range(50, 3600000))->group("");
  app.add_option("--listen", f.listen, "Client API address")->envname("MM_LISTEN")->capture_default_str();
  app.add_option("--max-instances", f.max_instances,
                 "Instances of all pools together (default: one per 16 MiB of memory, at least 64; 10,000 with "
                 "swarm; 0: no cap)")
      ->envname("MM_MAX_INSTANCES")->check(CLI::Range(-1, 10'000'000));
  app.add_option("--max-creates-per-second", f.max_creates_per_second,
                 "Instance creations per second per pool, bursts of 50 (0: no limit)")
      ->envname("MM_MAX_CREATES_PER_SECOND")->check(CLI::Range(0.0, 100000.0))->capture_default_str();
  app.add_option("--max-connections", f.max_connections,
                 "Client API connections at once (0: the descriptor limit less a reserve of 512); at the cap an "
                 "idle connection gives its place to a new one")
      ->envname("MM_MAX_CONNECTIONS")->check(CLI::Range(0, 10'000'000))->capture_default_str();
  app.add_option("--max-connections-per-source", f.max_connections_per_source,
                 "Client API connections one remote address may hold (0: no cap)")
      ->envname("MM_MAX_CONNECTIONS_PER_SOURCE")->check(CLI::Range(0, 10'000'000))->capture_default_str();
  app.add_option("--header-timeout-ms", f.header_timeout_ms,
                 "A request's header must arrive within this (also the idle keep-alive timeout)")
      ->envname("MM_HEADER_TIMEOUT_MS")->check(CLI::Range(100, 600'000))->capture_default_str();
  app.add_option("--admin-listen", f.admin_listen, "Admin API, /metrics, /healthz, /readyz address")
      ->envname("MM_ADMIN_LISTEN")->capture_default_str();
  app.add_option("--public-address", f.public_address, "Host given to clients")
      ->envname("MM_PUBLIC_ADDRESS")->capture_default_str();
  app.add_option("--auth", f.auth, "Client authentication: header|jwt")
      ->envname("MM_AUTH")->check(CLI::IsMember({"header", "jwt"}))->capture_default_str();
  app.add_option("--jwt-secret-file", f.jwt_secret_file, "HS256 secret (with --auth jwt)")->envname("MM_JWT_SECRET_FILE");
  app.add_option("--jwt-public-key-file", f.jwt_public_key_file, "RS256/ES256 public key (with --auth jwt)")
      ->envname("MM_JWT_PUBLIC_KEY_FILE");
  app.add_option("--jwt-audience", f.jwt_audience, "With --auth jwt: the aud claim must name this")
      ->envname("MM_JWT_AUDIENCE");
  app.add_option("--jwt-issuer", f.jwt_issuer, "With --auth jwt: the iss claim must equal this")
      ->envname("MM_JWT_ISSUER");
  app.add_option("--jwt-leeway", f.jwt_leeway_s, "With --auth jwt: clock skew allowed on exp and nbf, seconds")
      ->envname("MM_JWT_LEEWAY")->check(CLI::Range(0, 3600))->capture_default_str();
  app.add_option("--jwt-max-lifetime", f.jwt_max_lifetime_s,
                 "With --auth jwt: tokens whose exp is further away than this (seconds) are refused")
      ->envname("MM_JWT_MAX_LIFETIME")->check(CLI::Range(60, 365 * 24 * 3600))->capture_default_str();
  app.add_option("--admin-allowed-hosts", f.admin_allowed_hosts,
                 "Host names a browser may use to reach the admin API, besides IP addresses and localhost")
      ->envname("MM_ADMIN_ALLOWED_HOSTS")
      ->delimiter(',');
  app.add_option("--admin-token-file", f.admin_token_file, "When set, /apis/ needs Authorization: Bearer <token>")
      ->envname("MM_ADMIN_TOKEN_FILE");
  app.add_option("--log-format", f.log_format, "text|json")
      ->envname("MM_LOG_FORMAT")->check(CLI::IsMember({"text", "json"}))->capture_default_str();
  app.add_option("--log-level", f.log_level, "trace|debug|info|warn|error")
      ->envname("MM_LOG_LEVEL")->capture_default_str();
  app.add_option("--stop-grace-ms", f.stop_grace_ms, "SIGTERM to SIGKILL grace for instances")
      ->envname("MM_STOP_GRACE_MS")->capture_default_str();
  app.add_option("--queue-limit", f.queue_limit, "Queued clients per pool; 429 beyond")
      ->envname("MM_QUEUE_LIMIT")->check(CLI::Range(std::size_t{1}, std::size_t{10000000}))->capture_default_str();
  app.add_option("--queue-ttl", f.queue_ttl_s, "Seconds a queued client that does not ask again is kept")
      ->envname("MM_QUEUE_TTL")->check(CLI::Range(1, 86400))->capture_default_str();
  app.set_version_flag("--version", MM_VERSION);
  // Usage errors exit 2 (as --validate errors do), whatever CLI11's code.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (!f.validate.empty()) return Validate(f.validate);

  if (f.log_format == "json") {
    mm::cmd::UseJsonLogs();
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  }
  // spdlog maps an unknown name to "off": say so instead of going silent.
  if (f.log_level != "trace" && f.log_level != "debug" && f.log_level != "info" && f.log_level != "warn" &&
      f.log_level != "error") {
    std::fprintf(stderr, "matchmakerd: --log-level %s: must be trace, debug, info, warn or error\n",
                 f.log_level.c_str());
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(f.log_level));

  std::unique_ptr<mm::apiserver::Authorizer> auth = mm::apiserver::HeaderAuthorizer();
  if (f.auth == "jwt") {
    mm::apiserver::JwtOptions jwt_options{f.jwt_audience, f.jwt_issuer, std::chrono::seconds(f.jwt_leeway_s),
                                          std::chrono::seconds(f.jwt_max_lifetime_s)};
    std::variant<std::unique_ptr<mm::apiserver::Authorizer>, std::string> made = std::string(
        "--auth jwt needs --jwt-secret-file (HS256) or --jwt-public-key-file (RS256/ES256)");
    if (!f.jwt_secret_file.empty() && !f.jwt_public_key_file.empty()) {
      made = std::string("give --jwt-secret-file or --jwt-public-key-file, not both");
    } else if (!f.jwt_secret_file.empty()) {
      auto secret = ReadSecret(f.jwt_secret_file);
      made = secret ? mm::apiserver::JwtAuthorizer(mm::apiserver::JwtAlgorithm::kHS256, *secret, jwt_options)
                    : std::string("cannot read " + f.jwt_secret_file);
    } else if (!f.jwt_public_key_file.empty()) {
      auto pem = ReadSecret(f.jwt_public_key_file);
      made = pem ? mm::apiserver::JwtAuthorizerFromPublicKey(*pem + "\n", jwt_options)
                 : std::string("cannot read " + f.jwt_public_key_file);
    }
    if (auto* err = std::get_if<std::string>(&made)) {
      std::fprintf(stderr, "matchmakerd: %s\n", err->c_str());
      return 2;
    }
    auth = std::move(std::get<0>(made));
  }
  std::vector<mm::api::ServerPool> initial;
  if (!f.pools.empty()) {
    auto decoded = mm::api::DecodePath(f.pools);
    for (const auto& e : decoded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    if (!decoded.ok()) {
      std::fprintf(stderr, "matchmakerd: --pools %s: %zu error(s); nothing started\n", f.pools.c_str(),
                   decoded.errors.size());
      return 2;
    }
    initial = std::move(decoded.pools);
  }
  std::optional<std::string> token;
  if (!f.admin_token_file.empty()) {
    token = ReadSecret(f.admin_token_file);
    if (!token || token->empty()) {
      std::fprintf(stderr, "matchmakerd: cannot read a token from %s\n", f.admin_token_file.c_str());
      return 2;
    }
  }
  auto admin_addr = mm::http::SplitHostPort(f.admin_listen);
  auto client_addr = mm::http::SplitHostPort(f.listen);
  if (!admin_addr || !client_addr) {
    std::fprintf(stderr, "matchmakerd: --listen and --admin-listen take HOST:PORT\n");
    return 2;
  }

  RaiseFileLimit();
  boost::asio::io_context io;
  std::unique_ptr<mm::store::Store> store;
  try {
    store = std::make_unique<mm::store::Store>(f.data_dir + "/state");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "matchmakerd: %s\n", e.what());
    return 1;
  }
  if (store->report().truncated_bytes) {
    spdlog::warn("journal: dropped {} byte(s) of torn tail: {}", store->report().truncated_bytes,
                 store->report().detail);
  }
  mm::metrics::Metrics metrics(MM_VERSION);
  std::unique_ptr<mm::backend::Backend> backend_ptr;
  std::optional<std::string> owner;
  if (f.backend != "process") {
    owner = OwnerId(f.data_dir);
    if (!owner) {
      std::fprintf(stderr, "matchmakerd: cannot write %s/owner-id\n", f.data_dir.c_str());
      return 1;
    }
  }
  // Registry credentials: read now (a bad file stops the start), again on
  // SIGHUP (a bad file then keeps the credentials in use).
  std::shared_ptr<mm::backend::RegistryAuth> registry_auth;
  if (!f.registry_auth_file.empty()) {
    auto loaded = mm::backend::RegistryAuth::Load(f.registry_auth_file);
    if (auto* err = std::get_if<std::string>(&loaded)) {
      std::fprintf(stderr, "matchmakerd: --registry-auth-file: %s\n", err->c_str());
      return 2;
    }
    registry_auth = std::make_shared<mm::backend::RegistryAuth>(std::get<mm::backend::RegistryAuth>(std::move(loaded)));
    spdlog::info("registry credentials for {} registr{} from {}", registry_auth->size(),
                 registry_auth->size() == 1 ? "y" : "ies", f.registry_auth_file);
  }
  mm::backend::EngineOptions engine{.docker_host = f.docker_host,
                                    .ping = std::chrono::milliseconds(f.docker_ping_ms),
                                    .auth = registry_auth};
  if (f.backend == "swarm") {
    try {
      backend_ptr = std::make_unique<mm::backend::SwarmBackend>(
          io, mm::backend::SwarmOptions{.engine = engine,
                                        .service = {.owner = *owner,
                                                    .control_network = f.control_network,
                                                    .grace = std::chrono::milliseconds(f.stop_grace_ms)}});
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "matchmakerd: --docker-host: %s\n", e.what());
      return 2;
    }
  } else if (f.backend == "docker") {
    try {
      backend_ptr = std::make_unique<mm::backend::DockerBackend>(
          io, mm::backend::DockerOptions{.engine = engine,
                                         .container = {.owner = *owner,
                                                       .publish_ip = f.publish_ip,
                                                       .control_network = f.control_network,
                                                       .public_address = f.public_address},
                                         .grace = std::chrono::milliseconds(f.stop_grace_ms),
                                         .resync = std::chrono::milliseconds(f.docker_resync_ms)});
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "matchmakerd: --docker-host: %s\n", e.what());
      return 2;
    }
  } else {
    backend_ptr = std::make_unique<mm::backend::ProcessBackend>(
        io, mm::backend::ProcessOptions{.data_dir = f.data_dir, .public_address = f.public_address,
                                        .grace = std::chrono::milliseconds(f.stop_grace_ms)});
  }
  mm::backend::Backend& backend = *backend_ptr;
  mm::reconcile::ControllerOptions copts;
  copts.max_instances = f.max_instances < 0 ? DefaultMaxInstances(f.backend) : f.max_instances;
  copts.creates_per_second = f.max_creates_per_second;
  spdlog::debug("at most {} instances, {} creations per second per pool", copts.max_instances,
                copts.creates_per_second);
  mm::reconcile::Controller controller(io, *store, backend, &metrics, copts);
  mm::allocate::Allocator allocator(io, controller, &metrics,
                                    {.queue_limit = f.queue_limit, .queue_ttl = std::chrono::seconds(f.queue_ttl_s)});
  mm::apiserver::ClientApi client_api(allocator, *auth);
  mm::apiserver::WatchHub watches(io, controller,
                                  {.bookmark = std::chrono::milliseconds(f.watch_bookmark_ms)});
  mm::apiserver::AdminApi admin(controller, metrics, token, [&backend, &controller]() -> std::optional<std::string> {
    if (auto err = controller.JournalError()) return "journal cannot write: " + *err;
    if (backend.Available()) return std::nullopt;
    return "backend unavailable: " + backend.UnavailableReason();
  }, f.admin_allowed_hosts, &watches);
  auto accept_error = [](const std::string& what) { spdlog::warn("{}", what); };
  const std::size_t client_cap = ClientConnectionCap(f.max_connections);
  spdlog::debug("client API: at most {} connections, {} per source", client_cap, f.max_connections_per_source);
  mm::http::Server client_server(io, {.address = client_addr->first, .port = client_addr->second,
                                      .body_limit = 64 * 1024,
                                      .header_timeout = std::chrono::milliseconds(f.header_timeout_ms),
                                      .max_connections = client_cap,
                                      .max_connections_per_source = static_cast<std::size_t>(f.max_connections_per_source),
                                      .on_accept_error = accept_error},
                                 [&client_api](mm::http::Request&& req, mm::http::Reply reply) {
                                   client_api.Handle(std::move(req), std::move(reply));
                                 });
  // The admin API has its own small budget, inside the reserve (its
  // clients are local and trusted: no per-source cap).
  mm::http::Server admin_server(io, {.address = admin_addr->first, .port = admin_addr->second,
                                     .header_timeout = std::chrono::milliseconds(f.header_timeout_ms),
                                     .max_connections = 128,
                                     .on_accept_error = accept_error},
                                [&admin](mm::http::Request&& req, mm::http::Reply reply) {
                                  admin.Handle(std::move(req), std::move(reply));
                                });
  if (auto err = admin_server.Start()) {
    std::fprintf(stderr, "matchmakerd: admin API: %s\n", err->c_str());
    return 1;
  }
  if (auto err = client_server.Start()) {
    std::fprintf(stderr, "matchmakerd: client API: %s\n", err->c_str());
    return 1;
  }
  controller.Start();
  for (auto& pool : initial) {
    controller.Apply(pool, [](mm::reconcile::ApplyOutcome, mm::api::ServerPool p, std::string error) {
      if (!error.empty()) spdlog::error("--pools: {}: {}", p.metadata.name, error);
    });
  }

  boost::asio::signal_set hangups(io, SIGHUP);
  std::function<void()> on_hangup = [&] {
    hangups.async_wait([&](auto ec, int) {
      if (ec) return;
      if (registry_auth) {
        auto loaded = mm::backend::RegistryAuth::Load(f.registry_auth_file);
        if (auto* err = std::get_if<std::string>(&loaded)) {
          spdlog::error("SIGHUP: --registry-auth-file: {}; keeping the credentials in use", *err);
        } else {
          *registry_auth = std::get<mm::backend::RegistryAuth>(std::move(loaded));
          spdlog::info("SIGHUP: registry credentials for {} registr{} from {}", registry_auth->size(),
                       registry_auth->size() == 1 ? "y" : "ies", f.registry_auth_file);
        }
      } else {
        spdlog::info("SIGHUP: nothing to reload (no --registry-auth-file)");
      }
      on_hangup();
    });
  };
  on_hangup();
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](auto ec, int sig) {
    if (ec) return;
    // Stop accepting, let every request in flight finish (handshakes,
    // journal writes), answer long-polls now, then exit; instances keep
    // running. Bounded by the longest handshake the pools allow.
    auto bound = StopBound(controller);
    spdlog::info("signal {}: stopping: finishing in-flight requests (at most {} ms; instances keep running)", sig,
                 bound.count());
    hangups.cancel();
    client_server.Stop();
    admin_server.Stop();
    controller.Stop();
    auto drained = std::make_shared<bool>(false);
    allocator.Stop([drained] { *drained = true; });
    auto now = std::chrono::steady_clock::now();
    WaitThenStop(
        io, now, now + bound, [drained] { return *drained; },
        [&] { return client_server.connections() == 0 && admin_server.connections() == 0; });
  });
  spdlog::info("matchmakerd {} backend={} admin={}:{} client={}:{} auth={} data-dir={}", MM_VERSION, f.backend,
               admin_addr->first, admin_server.port(), client_addr->first, client_server.port(), f.auth, f.data_dir);
  // The port banner scripts wait for; with --log-format json it is a log
  // line like the others, so stdout stays one JSON object per line.
  if (f.log_format == "json") {
    spdlog::info("matchmakerd: admin={}:{} client={}:{}", admin_addr->first, admin_server.port(), client_addr->first,
                 client_server.port());
    spdlog::default_logger()->flush();
  } else {
    std::printf("matchmakerd: admin=%s:%u client=%s:%u\n", admin_addr->first.c_str(), admin_server.port(),
                client_addr->first.c_str(), client_server.port());
    std::fflush(stdout);
  }
  io.run();
  store->Flush();
  spdlog::info("stopped");
  return 0;
}
