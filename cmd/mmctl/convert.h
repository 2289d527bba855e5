#pragma once

// `mmctl convert go-matchmaker`: go-matchmaker's settings (its .env and
// compose environment) as the equivalent ServerPool. Pure: the caller reads
// the env file or the process environment and writes the output.

#include <map>
#include <string>
#include <string_view>
#include <variant>

namespace mm::mmctl {

using Env = std::map<std::string, std::string>;

// A dotenv file: KEY=VALUE lines, `export ` allowed, # comments, values
// optionally in single or double quotes. Error: "line N: ...".
std::variant<Env, std::string> ParseEnvFile(std::string_view text);

struct ConvertOptions {
  std::string name = "default";  // metadata.name
  int warm = 1;                  // go-matchmaker had none: every first client waited for a container
};

struct Converted {
  std::string yaml;       // comments, then the ServerPool
  std::string auth_json;  // Docker config.json for --registry-auth-file, "" without credentials
  std::string backend;    // docker | swarm (CONTAINER_BACKEND)
};

// The pool, or what is wrong with the settings (missing IMAGE_TO_PULL, a
// number that is not one, a malformed IMAGE_EXPOSE_PORT).
std::variant<Converted, std::string> ConvertGoMatchmaker(const Env& env, const ConvertOptions& options);

}  // namespace mm::mmctl
