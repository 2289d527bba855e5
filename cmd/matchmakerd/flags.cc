#include "cmd/matchmakerd/flags.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <map>
#include <memory>

namespace mm::cmd {
namespace {

// CLI11 applies a config file before the environment; ours puts the
// environment first: a config key whose MM_* variable is set is dropped.
class EnvFirstConfig : public CLI::ConfigTOML {
 public:
  explicit EnvFirstConfig(std::map<std::string, std::string> env_of) : env_of_(std::move(env_of)) {}
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    auto items = CLI::ConfigTOML::from_config(input);
    std::erase_if(items, [&](const CLI::ConfigItem& item) {
      auto it = env_of_.find(item.name);
      if (it == env_of_.end()) return false;
      const char* v = std::getenv(it->second.c_str());
      return v != nullptr && *v != '\0';
    });
    return items;
  }

 private:
  std::map<std::string, std::string> env_of_;  // config key -> MM_* variable
};

void AddFlags(CLI::App& app, Flags& f) {
  app.add_option("--validate", f.validate, "Check pool files (a file or directory) offline and exit: 0 valid, 2 errors")->configurable(false);
  app.add_option("--backend", f.backend, "Where instances run: process|docker|swarm")
      ->envname("MM_BACKEND")->check(CLI::IsMember({"process", "docker", "swarm"}))->capture_default_str();
  app.add_option("--pools", f.pools, "File or directory of pool YAML applied at start")->envname("MM_POOLS")->capture_default_str();
  app.add_option("--data-dir", f.data_dir, "State directory (journal, logs)")->envname("MM_DATA_DIR")->capture_default_str();
  app.add_option("--docker-host", f.docker_host, "Docker Engine URL (default: DOCKER_HOST or the unix socket)")
      ->envname("MM_DOCKER_HOST")->capture_default_str();
  app.add_option("--publish-ip", f.publish_ip, "docker: host address game ports are published on")
      ->envname("MM_PUBLISH_IP")->capture_default_str();
  app.add_option("--control-network", f.control_network,
                 "docker, swarm: reach control ports at container (task) addresses on this network, which matchmakerd is on; they are then not published")
      ->envname("MM_CONTROL_NETWORK")->capture_default_str();
  app.add_option("--registry-auth-file", f.registry_auth_file,
                 "docker, swarm: registry credentials for image pulls, Docker's config.json format; re-read on SIGHUP")
      ->envname("MM_REGISTRY_AUTH_FILE")->capture_default_str();
  app.add_option("--watch-bookmark-ms", f.watch_bookmark_ms, "watch heartbeat (BOOKMARK) period (tests)")
      ->envname("MM_WATCH_BOOKMARK_MS")->check(CLI::Range(50, 600000))->group("")->configurable(false);
  app.add_option("--docker-resync-ms", f.docker_resync_ms, "docker: full container list compare period (tests)")
      ->envname("MM_DOCKER_RESYNC_MS")->check(CLI::Range(50, 3600000))->group("")->configurable(false);
  app.add_option("--docker-ping-ms", f.docker_ping_ms, "docker: engine liveness check period (tests)")
      ->envname("MM_DOCKER_PING_MS")->check(CLI::Range(50, 3600000))->group("")->configurable(false);
  app.add_flag("--repair-journal", f.repair_journal,
               "A damaged journal (acknowledged records after a bad one) is cut at the damage, keeping a copy, "
               "instead of stopping the start")
      ->envname("MM_REPAIR_JOURNAL")->configurable(false);
  app.add_option("--listen", f.listen, "Client API address")->envname("MM_LISTEN")->capture_default_str();
  app.add_option("--max-instances", f.max_instances,
                 "Instances of all pools together (default: one per 16 MiB of memory, at least 64; 10,000 with "
                 "swarm; 0: no cap)")
      ->envname("MM_MAX_INSTANCES")->check(CLI::Range(-1, 10'000'000))->capture_default_str();
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
  app.add_option("--jwt-secret-file", f.jwt_secret_file, "HS256 secret (with --auth jwt)")->envname("MM_JWT_SECRET_FILE")->capture_default_str();
  app.add_option("--jwt-public-key-file", f.jwt_public_key_file, "RS256/ES256 public key (with --auth jwt)")
      ->envname("MM_JWT_PUBLIC_KEY_FILE")->capture_default_str();
  app.add_option("--jwt-audience", f.jwt_audience, "With --auth jwt: the aud claim must name this")
      ->envname("MM_JWT_AUDIENCE")->capture_default_str();
  app.add_option("--jwt-issuer", f.jwt_issuer, "With --auth jwt: the iss claim must equal this")
      ->envname("MM_JWT_ISSUER")->capture_default_str();
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
      ->envname("MM_ADMIN_TOKEN_FILE")->capture_default_str();
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
  app.add_option("--journal-linger-us", f.journal_linger_us,
                 "While clients wait for busy instances, or many handshakes are in flight, a journal write waits up "
                 "to this long for others to share its flush (0: never)")
      ->envname("MM_JOURNAL_LINGER_US")->check(CLI::Range(0, 10000000))->capture_default_str();
  app.add_option("--journal-linger-handshakes", f.journal_linger_handshakes,
                 "Journal writes also linger while at least this many handshakes are in flight (0: only while "
                 "clients wait for busy instances)")
      ->envname("MM_JOURNAL_LINGER_HANDSHAKES")->check(CLI::Range(0, 1000000))->capture_default_str();
}

}  // namespace

Parsed ParseFlags(int argc, char** argv, Flags& f, const char* version) {
  CLI::App app{"matchmakerd: keeps pools of game servers warm and hands them to players"};
  AddFlags(app, f);
  app.set_version_flag("--version", version);
  // MM_CONFIG names the file when --config does not (CLI11 reads the file
  // before the environment, so the variable is its default, and required).
  const char* config_env = std::getenv("MM_CONFIG");
  bool from_env = config_env && *config_env;
  app.set_config("--config", from_env ? config_env : "",
                 "TOML file of flags (keys: flag names without --); flags and MM_* env override it (env MM_CONFIG)",
                 from_env);
  bool print_config = false;
  app.add_flag("--print-config", print_config, "Print the configuration in effect as a --config file, and exit")
      ->configurable(false);
  app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt key is an error, not ignored
  std::map<std::string, std::string> env_of;
  for (const CLI::Option* opt : app.get_options()) {
    if (!opt->get_envname().empty() && !opt->get_lnames().empty()) env_of[opt->get_lnames().front()] = opt->get_envname();
  }
  app.config_formatter(std::make_shared<EnvFirstConfig>(std::move(env_of)));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return {true, code == 0 ? 0 : 2};  // usage errors exit 2, whatever CLI11's code
  }
  // An empty list in a config file reads as one empty name.
  std::erase(f.admin_allowed_hosts, std::string());
  if (print_config) {
    std::fputs(app.config_to_str(/*default_also=*/true, /*write_description=*/true).c_str(), stdout);
    return {true, 0};
  }
  return {};
}

}  // namespace mm::cmd
