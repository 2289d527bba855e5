#include "tests/support/engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace mm::testing {

std::string Which(const std::string& name) {
  std::istringstream path(std::getenv("PATH") ? std::getenv("PATH") : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(path, dir, ':');) {
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return dir + "/" + name;
  }
  return name;
}

RunResult Docker(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  static const std::string docker = Which("docker");
  args.insert(args.begin(), docker);
  return RunCommand(args, timeout);
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) out.push_back(l);
  }
  return out;
}

std::string Echo(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::send(fd, "ping", 4, 0) == 4) {
    char buf[16];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return got;
}

std::string UnixTime() {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch());
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(ns.count() / 1'000'000'000),
                static_cast<long long>(ns.count() % 1'000'000'000));
  return buf;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

bool InitSwarmIfInactive(std::string* error) {
  using namespace std::chrono_literals;
  if (Trim(Docker({"info", "--format", "{{.Swarm.LocalNodeState}}"}, 20s).out) != "inactive") return false;
  auto r = Docker({"swarm", "init", "--advertise-addr", "127.0.0.1"});
  if (error) *error = r.err;
  return r.exit_code == 0;
}

std::string SwarmManagerState() {
  using namespace std::chrono_literals;
  return Trim(Docker({"info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"}, 20s).out);
}

}  // namespace mm::testing
