#include "tests/support/registry.h"

#include <crypt.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "operator/http/blocking_client.h"
#include "tests/support/engine.h"

namespace mm::testing {

namespace {
constexpr char kUser[] = "mm-e2e";
constexpr char kPassword[] = "pw-e2e-0451";
constexpr char kBinary[] = "/usr/bin/docker-registry";
}  // namespace

std::unique_ptr<Registry> Registry::Start(std::string* error) {
  if (!std::filesystem::exists(kBinary)) {
    *error = std::string(kBinary) + " is missing: hack/install-deps.sh installs docker-registry";
    return nullptr;
  }
  std::unique_ptr<Registry> r(new Registry());
  r->dir_ = "/tmp/mm-registry-" + std::to_string(::getpid()) + "-" + std::to_string(FreePort());
  std::filesystem::remove_all(r->dir_);
  std::filesystem::create_directories(r->dir_ + "/data");
  std::filesystem::create_directories(r->dir_ + "/cli");
  int port = FreePort();
  if (port == 0) {
    *error = "no free port";
    return nullptr;
  }
  r->host_ = "127.0.0.1:" + std::to_string(port);
  // bcrypt, as the registry's htpasswd wants (libxcrypt).
  const char* salt = crypt_gensalt("$2b$", 5, nullptr, 0);
  const char* hash = salt ? crypt(kPassword, salt) : nullptr;
  if (!hash || hash[0] != '$') {
    *error = "bcrypt is not available from crypt(3)";
    return nullptr;
  }
  std::ofstream(r->dir_ + "/htpasswd") << kUser << ":" << hash << "\n";
  std::ofstream(r->dir_ + "/config.yml")
      << "version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: " << r->dir_ << "/data}\n"
      << "  delete: {enabled: true}\nhttp:\n  addr: " << r->host_ << "\n"
      << "auth:\n  htpasswd: {realm: matchmaker-e2e, path: " << r->dir_ << "/htpasswd}\n";
  r->child_ = Child::Spawn({kBinary, "serve", r->dir_ + "/config.yml"});
  if (!r->child_) {
    *error = "cannot start " + std::string(kBinary);
    return nullptr;
  }
  // Up when /v2/ asks for credentials.
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = http::HttpCall(static_cast<std::uint16_t>(port), "GET", "/v2/").status == 401;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!up) {
    *error = "docker-registry did not answer on " + r->host_;
    return nullptr;
  }
  auto login = RunCommand(
      {Which("docker"), "--config", r->dir_ + "/cli", "login", r->host_, "-u", kUser, "--password-stdin"},
      std::chrono::seconds(30), kPassword);
  if (login.exit_code != 0) {
    *error = "docker login " + r->host_ + ": " + login.err;
    return nullptr;
  }
  std::ofstream(r->dir_ + "/wrong.json")
      << R"({"auths": {")" << r->host_ << R"(": {"username": ")" << kUser << R"(", "password": "not-the-password"}}})";
  return r;
}

Registry::~Registry() {
  if (child_) {
    child_->Signal(SIGTERM);
    child_->Wait(std::chrono::seconds(5));
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string Registry::Push(const std::string& local, const std::string& repo) {
  std::string remote = host_ + "/" + repo;
  auto tag = Docker({"tag", local, remote});
  if (tag.exit_code != 0) return "docker tag: " + tag.err;
  auto push = Docker({"--config", dir_ + "/cli", "push", remote}, std::chrono::seconds(120));
  if (push.exit_code != 0) return "docker push: " + push.err + push.out;
  return "";
}

}  // namespace mm::testing
