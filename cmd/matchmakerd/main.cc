// matchmakerd: the matchmaker operator daemon.

#include <CLI/CLI.hpp>
#include <cstdio>

#include "api/v1alpha1/decode.h"

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"matchmakerd: keeps pools of game servers warm and hands them to players"};
  std::string validate;
  std::string backend = "process";
  std::string pools;
  std::string data_dir = "./.matchmaker";
  app.add_option("--validate", validate,
                 "Check pool files (a file or directory) offline and exit: 0 valid, 2 errors");
  app.add_option("--backend", backend, "process|docker|swarm")
      ->envname("MM_BACKEND")
      ->check(CLI::IsMember({"process", "docker", "swarm"}))
      ->capture_default_str();
  app.add_option("--pools", pools, "File or directory of pool YAML applied at start")
      ->envname("MM_POOLS");
  app.add_option("--data-dir", data_dir, "State directory")
      ->envname("MM_DATA_DIR")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!validate.empty()) return Validate(validate);
  std::fprintf(stderr, "matchmakerd: the daemon is not built yet; only --validate works\n");
  return 1;
}
