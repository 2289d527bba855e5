#pragma once

// matchmakerd's flags: every one also an MM_* environment variable and a
// key of the --config file (TOML, keys are the flag names without "--").
// A flag given on the command line wins over its variable, which wins over
// the config file, which wins over the default.

#include <cstddef>
#include <string>
#include <vector>

namespace mm::cmd {

struct Flags {
  std::string config;  // --config PATH
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
  bool repair_journal = false;
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
  int journal_linger_us = 1000;
  int journal_linger_handshakes = 16;
  int max_connections = 0;  // 0: sized from the descriptor limit
  int max_instances = -1;   // -1: sized to the machine
  double max_creates_per_second = 50;
  int max_connections_per_source = 256;
  int header_timeout_ms = 10'000;
};

struct Parsed {
  bool exit = false;  // --help, --version, --print-config, or a usage error
  int code = 0;       // the exit code then: 0, or 2 for usage errors
};

// Parses argv (and the environment, and --config) into `f`.
Parsed ParseFlags(int argc, char** argv, Flags& f, const char* version);

}  // namespace mm::cmd
