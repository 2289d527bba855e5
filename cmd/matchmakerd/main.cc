// matchmakerd: the matchmaker operator daemon. Wires the components; all
// logic lives in the libraries.

#include <sys/resource.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "api/v1alpha1/decode.h"
#include "cmd/matchmakerd/flags.h"
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

using mm::cmd::Flags;

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

// --auth: the client id is the Authorization header, or a JWT's sub.
std::variant<std::unique_ptr<mm::apiserver::Authorizer>, std::string> MakeAuthorizer(const Flags& f) {
  if (f.auth != "jwt") return mm::apiserver::HeaderAuthorizer();
  mm::apiserver::JwtOptions jwt_options{f.jwt_audience, f.jwt_issuer, std::chrono::seconds(f.jwt_leeway_s),
                                        std::chrono::seconds(f.jwt_max_lifetime_s)};
  if (!f.jwt_secret_file.empty() && !f.jwt_public_key_file.empty()) {
    return std::string("give --jwt-secret-file or --jwt-public-key-file, not both");
  }
  if (!f.jwt_secret_file.empty()) {
    auto secret = ReadSecret(f.jwt_secret_file);
    if (!secret) return "cannot read " + f.jwt_secret_file;
    return mm::apiserver::JwtAuthorizer(mm::apiserver::JwtAlgorithm::kHS256, *secret, jwt_options);
  }
  if (!f.jwt_public_key_file.empty()) {
    auto pem = ReadSecret(f.jwt_public_key_file);
    if (!pem) return "cannot read " + f.jwt_public_key_file;
    return mm::apiserver::JwtAuthorizerFromPublicKey(*pem + "\n", jwt_options);
  }
  return std::string("--auth jwt needs --jwt-secret-file (HS256) or --jwt-public-key-file (RS256/ES256)");
}


struct StartError {
  int code;  // 1: the machine (files, ports); 2: the flags
  std::string message;
};

int Fail(const StartError& e) {
  std::fprintf(stderr, "matchmakerd: %s\n", e.message.c_str());
  return e.code;
}

std::optional<StartError> SetUpLogs(const Flags& f) {
  if (f.log_format == "json") {
    mm::cmd::UseJsonLogs();
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  }
  // spdlog maps an unknown name to "off": say so instead of going silent.
  if (f.log_level != "trace" && f.log_level != "debug" && f.log_level != "info" && f.log_level != "warn" &&
      f.log_level != "error") {
    return StartError{2, "--log-level " + f.log_level + ": must be trace, debug, info, warn or error"};
  }
  spdlog::set_level(spdlog::level::from_str(f.log_level));
  return std::nullopt;
}

// What the flags name and must be read before anything starts.
struct Inputs {
  std::vector<mm::api::ServerPool> pools;  // --pools, applied at start
  std::optional<std::string> token;        // --admin-token-file
  std::pair<std::string, std::uint16_t> admin, client;
};

std::variant<Inputs, StartError> ReadInputs(const Flags& f) {
  Inputs in;
  if (!f.pools.empty()) {
    auto decoded = mm::api::DecodePath(f.pools);
    for (const auto& e : decoded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    if (!decoded.ok()) {
      return StartError{2, "--pools " + f.pools + ": " + std::to_string(decoded.errors.size()) +
                               " error(s); nothing started"};
    }
    in.pools = std::move(decoded.pools);
    // Applied at every start, unconditionally: a resourceVersion saved in
    // the file (mmctl get -o yaml) is stale after any restart.
    for (auto& p : in.pools) p.metadata.resourceVersion.clear();
  }
  if (!f.admin_token_file.empty()) {
    in.token = ReadSecret(f.admin_token_file);
    if (!in.token || in.token->empty()) return StartError{2, "cannot read a token from " + f.admin_token_file};
  }
  auto admin = mm::http::SplitHostPort(f.admin_listen);
  auto client = mm::http::SplitHostPort(f.listen);
  if (!admin || !client) return StartError{2, "--listen and --admin-listen take HOST:PORT"};
  in.admin = *admin;
  in.client = *client;
  return in;
}

// --backend with its engine options; for docker and swarm the owner id and
// the registry credentials (`auth`, kept for SIGHUP) too.
std::variant<std::unique_ptr<mm::backend::Backend>, StartError> MakeBackend(
    boost::asio::io_context& io, const Flags& f, std::shared_ptr<mm::backend::RegistryAuth>& auth) {
  using namespace mm::backend;
  if (!f.registry_auth_file.empty()) {
    auto loaded = RegistryAuth::Load(f.registry_auth_file);
    if (auto* err = std::get_if<std::string>(&loaded)) return StartError{2, "--registry-auth-file: " + *err};
    auth = std::make_shared<RegistryAuth>(std::get<RegistryAuth>(std::move(loaded)));
    spdlog::info("registry credentials for {} registr{} from {}", auth->size(), auth->size() == 1 ? "y" : "ies",
                 f.registry_auth_file);
  }
  auto grace = std::chrono::milliseconds(f.stop_grace_ms);
  if (f.backend == "process") {
    return std::make_unique<ProcessBackend>(
        io, ProcessOptions{.data_dir = f.data_dir, .public_address = f.public_address, .grace = grace});
  }
  auto owner = OwnerId(f.data_dir);
  if (!owner) return StartError{1, "cannot write " + f.data_dir + "/owner-id"};
  EngineOptions engine{.docker_host = f.docker_host, .ping = std::chrono::milliseconds(f.docker_ping_ms), .auth = auth};
  try {
    if (f.backend == "swarm") {
      return std::make_unique<SwarmBackend>(
          io, SwarmOptions{.engine = engine,
                           .service = {.owner = *owner, .control_network = f.control_network, .grace = grace}});
    }
    return std::make_unique<DockerBackend>(
        io, DockerOptions{.engine = engine,
                          .container = {.owner = *owner,
                                        .publish_ip = f.publish_ip,
                                        .control_network = f.control_network,
                                        .public_address = f.public_address},
                          .grace = grace,
                          .resync = std::chrono::milliseconds(f.docker_resync_ms)});
  } catch (const std::invalid_argument& e) {
    return StartError{2, std::string("--docker-host: ") + e.what()};
  }
}

// SIGHUP re-reads --registry-auth-file; a bad file keeps the credentials
// in use.
void OnHangup(boost::asio::signal_set& hangups, const Flags& f, std::shared_ptr<mm::backend::RegistryAuth> auth) {
  hangups.async_wait([&hangups, &f, auth](auto ec, int) {
    if (ec) return;
    if (!auth) {
      spdlog::info("SIGHUP: nothing to reload (no --registry-auth-file)");
    } else if (auto loaded = mm::backend::RegistryAuth::Load(f.registry_auth_file);
               auto* err = std::get_if<std::string>(&loaded)) {
      spdlog::error("SIGHUP: --registry-auth-file: {}; keeping the credentials in use", *err);
    } else {
      *auth = std::get<mm::backend::RegistryAuth>(std::move(loaded));
      spdlog::info("SIGHUP: registry credentials for {} registr{} from {}", auth->size(),
                   auth->size() == 1 ? "y" : "ies", f.registry_auth_file);
    }
    OnHangup(hangups, f, auth);
  });
}

void OnTerminate(boost::asio::signal_set& signals, std::function<void(int)> stop) {
  signals.async_wait([stop = std::move(stop)](auto ec, int sig) {
    if (!ec) stop(sig);
  });
}

// The port banner scripts wait for; with --log-format json it is a log line
// like the others, so stdout stays one JSON object per line.
void PrintBanner(const Flags& f, const std::string& admin_host, std::uint16_t admin_port, const std::string& client_host,
                 std::uint16_t client_port) {
  spdlog::info("matchmakerd {} backend={} admin={}:{} client={}:{} auth={} data-dir={}", MM_VERSION, f.backend,
               admin_host, admin_port, client_host, client_port, f.auth, f.data_dir);
  if (f.log_format == "json") {
    spdlog::info("matchmakerd: admin={}:{} client={}:{}", admin_host, admin_port, client_host, client_port);
    spdlog::default_logger()->flush();
  } else {
    std::printf("matchmakerd: admin=%s:%u client=%s:%u\n", admin_host.c_str(), admin_port, client_host.c_str(),
                client_port);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  mm::cmd::Flags f;
  if (auto parsed = mm::cmd::ParseFlags(argc, argv, f, MM_VERSION); parsed.exit) return parsed.code;

  if (!f.validate.empty()) return Validate(f.validate);

  if (auto err = SetUpLogs(f)) return Fail(*err);
  auto made_auth = MakeAuthorizer(f);
  if (auto* err = std::get_if<std::string>(&made_auth)) return Fail({2, *err});
  auto auth = std::move(std::get<std::unique_ptr<mm::apiserver::Authorizer>>(made_auth));
  auto read = ReadInputs(f);
  if (auto* err = std::get_if<StartError>(&read)) return Fail(*err);
  auto& in = std::get<Inputs>(read);

  RaiseFileLimit();
  boost::asio::io_context io;
  std::unique_ptr<mm::store::Store> store;
  try {
    store = std::make_unique<mm::store::Store>(f.data_dir + "/state", mm::store::StoreOptions{
        .repair = f.repair_journal, .linger = std::chrono::microseconds(f.journal_linger_us)});
  } catch (const std::exception& e) {
    return Fail({1, e.what()});
  }
  if (store->report().repaired) {
    spdlog::error("journal: {}", store->report().detail);
  } else if (store->report().truncated_bytes) {
    spdlog::warn("journal: dropped {} byte(s) of torn tail: {}", store->report().truncated_bytes,
                 store->report().detail);
  }
  mm::metrics::Metrics metrics(MM_VERSION);
  std::shared_ptr<mm::backend::RegistryAuth> registry_auth;
  auto made_backend = MakeBackend(io, f, registry_auth);
  if (auto* err = std::get_if<StartError>(&made_backend)) return Fail(*err);
  auto backend_ptr = std::move(std::get<std::unique_ptr<mm::backend::Backend>>(made_backend));
  mm::backend::Backend& backend = *backend_ptr;
  mm::reconcile::ControllerOptions copts;
  copts.max_instances = f.max_instances < 0 ? DefaultMaxInstances(f.backend) : f.max_instances;
  copts.creates_per_second = f.max_creates_per_second;
  spdlog::debug("at most {} instances, {} creations per second per pool", copts.max_instances,
                copts.creates_per_second);
  mm::reconcile::Controller controller(io, *store, backend, &metrics, copts);
  mm::allocate::Allocator allocator(io, controller, &metrics,
                                    {.queue_limit = f.queue_limit,
                                     .queue_ttl = std::chrono::seconds(f.queue_ttl_s),
                                     .on_backlog = [&store](bool on) { store->Linger(on); },
                                     .linger_siblings = static_cast<std::size_t>(f.journal_linger_handshakes)});
  mm::apiserver::ClientApi client_api(allocator, *auth);
  mm::apiserver::WatchHub watches(io, controller,
                                  {.bookmark = std::chrono::milliseconds(f.watch_bookmark_ms)});
  mm::apiserver::AdminApi admin(controller, metrics, in.token, [&backend, &controller]() -> std::optional<std::string> {
    if (auto err = controller.JournalError()) return "journal cannot write: " + *err;
    if (backend.Available()) return std::nullopt;
    return "backend unavailable: " + backend.UnavailableReason();
  }, f.admin_allowed_hosts, &watches);
  auto accept_error = [](const std::string& what) { spdlog::warn("{}", what); };
  const std::size_t client_cap = ClientConnectionCap(f.max_connections);
  spdlog::debug("client API: at most {} connections, {} per source", client_cap, f.max_connections_per_source);
  mm::http::Server client_server(io, {.address = in.client.first, .port = in.client.second,
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
  mm::http::Server admin_server(io, {.address = in.admin.first, .port = in.admin.second,
                                     .header_timeout = std::chrono::milliseconds(f.header_timeout_ms),
                                     .max_connections = 128,
                                     .on_accept_error = accept_error},
                                [&admin](mm::http::Request&& req, mm::http::Reply reply) {
                                  admin.Handle(std::move(req), std::move(reply));
                                });
  if (auto err = admin_server.Start()) return Fail({1, "admin API: " + *err});
  if (auto err = client_server.Start()) return Fail({1, "client API: " + *err});
  controller.Start();
  for (auto& pool : in.pools) {
    controller.Apply(pool, [](mm::reconcile::ApplyOutcome, mm::api::ServerPool p, std::string error) {
      if (!error.empty()) spdlog::error("--pools: {}: {}", p.metadata.name, error);
    });
  }

  boost::asio::signal_set hangups(io, SIGHUP);
  OnHangup(hangups, f, registry_auth);
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  OnTerminate(signals, [&](int sig) {
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
  PrintBanner(f, in.admin.first, admin_server.port(), in.client.first, client_server.port());
  io.run();
  store->Flush();
  spdlog::info("stopped");
  return 0;
}
