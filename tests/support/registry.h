#pragma once

// A real image registry for the pull e2e tests: Debian's docker-registry
// (the distribution registry) on 127.0.0.1:<free port>, htpasswd auth, its
// storage in a temporary directory; the docker CLI logged in to it under a
// config dir of its own (never the user's ~/.docker).

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace mm::testing {

class Registry {
 public:
  // Starts one; null with *error when it cannot.
  static std::unique_ptr<Registry> Start(std::string* error);
  ~Registry();  // stops it, removes its storage and the CLI's config

  // "127.0.0.1:PORT"
  const std::string& host() const { return host_; }
  // Tags local image `local` as host()/`repo` and pushes it; "" or why not.
  std::string Push(const std::string& local, const std::string& repo);
  // Docker's config.json with the registry's credentials (written by
  // `docker login`), and one with a wrong password.
  std::string auth_file() const { return dir_ + "/cli/config.json"; }
  std::string wrong_auth_file() const { return dir_ + "/wrong.json"; }

 private:
  Registry() = default;
  std::string dir_;
  std::string host_;
  std::unique_ptr<Child> child_;
};

}  // namespace mm::testing
