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

}  // namespace mm::testing
