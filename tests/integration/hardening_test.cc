// Resource exhaustion against a real matchmakerd (issue 18).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "operator/http/blocking_client.h"
#include "tests/support/process.h"

namespace mm::testing {
namespace {
using namespace std::chrono_literals;

// utime + stime of `pid`, in clock ticks.
long CpuTicks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

int Connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Out of file descriptors (a hard limit of 64, more idle connections than
// that), the accept loop used to retry EMFILE at once: 100% of a core, no
// log. It must back off, say so once, and serve again when they close.
TEST(Hardening, OutOfFileDescriptorsBacksOffInsteadOfSpinning) {
  std::string dir = "/tmp/mm-it-" + std::to_string(::getpid()) + "-fds";
  std::filesystem::remove_all(dir);
  // Sanitizer runtimes need descriptors of their own: at the limit, UBSan's
  // vptr check cannot tell an object's dynamic type and aborts on a false
  // "invalid vptr" (seen on the first virtual call on an error_category).
  // So the daemon under test is a build without sanitizers: hack/test.sh
  // points MM_PLAIN_BIN_DIR at the Release binaries it builds for the image.
  std::string bin = BinPath("matchmakerd");
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
  const char* plain = std::getenv("MM_PLAIN_BIN_DIR");
  if (!plain) GTEST_SKIP() << "sanitized build and no MM_PLAIN_BIN_DIR (hack/test.sh sets it)";
  bin = std::string(plain) + "/matchmakerd";
#endif
  auto child = Child::Spawn({"/usr/bin/prlimit", "--nofile=64:64", bin, "--data-dir", dir, "--admin-listen",
                             "127.0.0.1:0", "--listen", "127.0.0.1:0"});
  auto line = child->WaitForLine("matchmakerd: admin=", 20s);
  ASSERT_TRUE(line);
  unsigned admin = 0, client = 0;
  ASSERT_EQ(std::sscanf(line->c_str() + line->find("admin="), "admin=127.0.0.1:%u client=127.0.0.1:%u", &admin,
                        &client),
            2);
  std::vector<int> fds;
  for (int i = 0; i < 100; ++i) {
    int fd = Connect(static_cast<std::uint16_t>(client));
    if (fd >= 0) fds.push_back(fd);
  }
  std::this_thread::sleep_for(500ms);  // the descriptors run out
  long before = CpuTicks(child->pid());
  std::this_thread::sleep_for(2s);
  long used = CpuTicks(child->pid()) - before;
  long hz = ::sysconf(_SC_CLK_TCK);
  EXPECT_LT(used, hz * 2 / 10) << "over 10% of a core in 2 s while out of descriptors: a busy loop";
  for (int fd : fds) ::close(fd);
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    served = http::HttpCall(static_cast<std::uint16_t>(admin), "GET", "/healthz", "", {}, 2s).status == 200;
    if (!served) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(served) << "the admin API answers again once descriptors are free";
  child->WaitForLine("\x01never", 200ms);
  EXPECT_NE(child->output().find("backing off"), std::string::npos) << "the condition is logged";
  child->Signal(SIGKILL);
  child->Wait(5s);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mm::testing
