// Resource exhaustion against a real matchmakerd (issue 18).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "operator/http/blocking_client.h"
#include "tests/support/operator.h"
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

// A TCP connection to 127.0.0.1:`port`, from the local address `source`
// (any 127/8 address is this host: a second "client machine" on loopback).
int ConnectFrom(const char* source, std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &from.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
    ::close(fd);
    return -1;
  }
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

// True when the server closed `fd` within `within` (a read returns 0 or an error).
bool ClosedByServer(int fd, std::chrono::milliseconds within) {
  timeval tv{static_cast<time_t>(within.count() / 1000), static_cast<suseconds_t>((within.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  auto n = ::recv(fd, &c, 1, 0);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

int Connect(std::uint16_t port) { return ConnectFrom("127.0.0.1", port); }

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

struct Daemon {
  explicit Daemon(const std::string& name, std::vector<std::string> flags, const std::string& prlimit = "") {
    dir = "/tmp/mm-it-" + std::to_string(::getpid()) + "-" + name;
    std::filesystem::remove_all(dir);
    std::string bin = BinPath("matchmakerd");
    std::vector<std::string> argv;
    if (!prlimit.empty()) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
      // See OutOfFileDescriptorsBacksOffInsteadOfSpinning: sanitizers need
      // descriptors of their own.
      const char* plain = std::getenv("MM_PLAIN_BIN_DIR");
      if (!plain) return;
      bin = std::string(plain) + "/matchmakerd";
#endif
      argv = {"/usr/bin/prlimit", "--nofile=" + prlimit};
    }
    argv.insert(argv.end(), {bin, "--data-dir", dir, "--admin-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"});
    argv.insert(argv.end(), flags.begin(), flags.end());
    child = Child::Spawn(argv);
    auto line = child->WaitForLine("matchmakerd: admin=", 20s);
    if (!line) return;
    unsigned a = 0, c = 0;
    if (std::sscanf(line->c_str() + line->find("admin="), "admin=127.0.0.1:%u client=127.0.0.1:%u", &a, &c) == 2) {
      admin = static_cast<std::uint16_t>(a);
      client = static_cast<std::uint16_t>(c);
    }
  }
  ~Daemon() {
    if (child) {
      child->Signal(SIGKILL);
      child->Wait(5s);
    }
    for (int pid : ManagedPidsOf(dir)) ::kill(-pid, SIGKILL);
    std::filesystem::remove_all(dir);
  }
  std::string dir;
  std::unique_ptr<Child> child;
  std::uint16_t admin = 0, client = 0;
};

// 4,096 idle connections from one address used to lock every client out
// for 30 s. One source is held to its share; the others are served.
TEST(Hardening, OneSourceCannotLockTheOthersOut) {
  Daemon d("per-source", {"--max-connections-per-source", "20"});
  ASSERT_NE(d.client, 0);
  std::vector<int> fds;
  for (int i = 0; i < 30; ++i) fds.push_back(ConnectFrom("127.0.0.2", d.client));
  int refused = 0;
  for (int fd : fds) refused += fd < 0 || ClosedByServer(fd, 100ms);
  EXPECT_EQ(refused, 10) << "127.0.0.2 holds 20 connections, not 30";
  auto r = http::HttpCall(d.client, "GET", "/request", "", {}, 2s);
  EXPECT_EQ(r.status, 401) << "another source is served: " << r.error;
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

// A header trickling in (slowloris) or never sent is cut at the header
// timeout, not at the 30 s request deadline.
TEST(Hardening, AHeaderThatDoesNotArriveIsCutAtTheHeaderTimeout) {
  Daemon d("header-timeout", {"--header-timeout-ms", "500"});
  ASSERT_NE(d.client, 0);
  int fd = Connect(d.client);
  ASSERT_GE(fd, 0);
  std::string partial = "GET /request HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  ASSERT_EQ(::send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedByServer(fd, 3s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ::close(fd);
}

// At the global cap, a new client takes the place of an idle connection.
TEST(Hardening, AtTheConnectionCapIdleConnectionsGiveWay) {
  Daemon d("cap", {"--max-connections", "30", "--max-connections-per-source", "0"});
  ASSERT_NE(d.client, 0);
  std::vector<int> fds;
  for (int i = 0; i < 30; ++i) fds.push_back(ConnectFrom("127.0.0.2", d.client));
  std::this_thread::sleep_for(200ms);
  auto r = http::HttpCall(d.client, "GET", "/request", "", {}, 2s);
  EXPECT_EQ(r.status, 401) << "a new client is served at the cap: " << r.error;
  int evicted = 0;
  for (int fd : fds) evicted += fd < 0 || ClosedByServer(fd, 50ms);
  EXPECT_GE(evicted, 1);
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

// With 1,024 descriptors and more client connections than that, the client
// API stops at the limit less a reserve: the admin API answers and an
// instance still starts.
TEST(Hardening, TheDescriptorReserveKeepsTheAdminApiAndInstancesWorking) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::max<rlim_t>(rl.rlim_cur, std::min<rlim_t>(rl.rlim_max, 4096));
  ::setrlimit(RLIMIT_NOFILE, &rl);  // this test's own 1,100 sockets
  Daemon d("reserve", {}, "1024:1024");
  if (!d.child) GTEST_SKIP() << "sanitized build and no MM_PLAIN_BIN_DIR (hack/test.sh sets it)";
  ASSERT_NE(d.client, 0);
  std::vector<int> fds;
  for (int i = 0; i < 1100; ++i) fds.push_back(ConnectFrom(i % 2 ? "127.0.0.2" : "127.0.0.3", d.client));
  std::this_thread::sleep_for(500ms);
  auto health = http::HttpCall(d.admin, "GET", "/healthz", "", {}, 2s);
  EXPECT_EQ(health.status, 200) << health.error;
  std::string pool =
      "apiVersion: matchmaker.dev/v1alpha1\nkind: ServerPool\nmetadata: {name: eu}\nspec:\n  warm: 1\n"
      "  template:\n    command: [\"" + BinPath("mm-gameserver") +
      "\", \"--address\", \"127.0.0.1\"]\n    ports: [{name: game, containerPort: 7777}]\n";
  auto put = http::HttpCall(d.admin, "PUT", "/apis/matchmaker.dev/v1alpha1/serverpools/eu", pool,
                            {{"Content-Type", "application/yaml"}}, 5s);
  EXPECT_EQ(put.status, 201) << put.body << put.error;
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    auto p = http::HttpCall(d.admin, "GET", "/apis/matchmaker.dev/v1alpha1/serverpools/eu", "", {}, 2s);
    ready = p.body.find("\"ready\":1") != std::string::npos;
    if (!ready) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(ready) << "an instance starts while clients hold every connection they may";
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

std::int64_t Live(Operator& op, const std::string& pool) {
  std::int64_t n = 0;
  for (const auto& i : op.Instances(pool)) n += i.at("state").as_string() != "Exited";
  return n;
}

// A global cap across pools: two pools wanting 4 get 3 between them, and
// room made by deleting one goes to the other.
TEST(Hardening, MaxInstancesCapsEveryPoolTogether) {
  Operator op("max-instances");
  ASSERT_TRUE(op.Start({"--max-instances", "3"}));
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/a", GameServerPool("a", 2)).status, 201);
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/b", GameServerPool("b", 2)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Live(op, "a") + Live(op, "b") == 3; }, 10s));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(Live(op, "a") + Live(op, "b"), 3) << "never past the cap";
  EXPECT_EQ(op.ManagedPids().size(), 3u);
  std::string events = op.Call("GET", std::string(kPools) + "/a/events").body +
                       op.Call("GET", std::string(kPools) + "/b/events").body;
  EXPECT_NE(events.find("AtGlobalMaxInstances"), std::string::npos) << events;
  std::string waiting = Live(op, "a") == 2 ? "b" : "a";
  std::string full = waiting == "a" ? "b" : "a";
  ASSERT_EQ(op.Call("DELETE", std::string(kPools) + "/" + full).status, 200);
  EXPECT_TRUE(Eventually([&] { return Count(op.Pool(waiting), "ready") == 2; }, 10s))
      << "the freed room goes to the pool that waited";
}

// One PUT of warm: 100 used to start ~320 processes a second; creations
// are rate limited per pool (a burst of 50, then the flag's rate).
TEST(Hardening, CreationsAreRateLimitedPerPool) {
  Operator op("create-rate");
  ASSERT_TRUE(op.Start({"--max-creates-per-second", "10"}));
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", CommandPool("eu", 100, 100, "[sleep, \"60\"]")).status, 201);
  std::this_thread::sleep_for(3000ms - (std::chrono::steady_clock::now() - start));
  auto after_3s = op.Instances("eu").size();
  EXPECT_LE(after_3s, 86u) << "a burst of 50, then 10 a second";
  EXPECT_GE(after_3s, 60u) << "it keeps going at that rate";
}

// Per-instance logs go with their instance; a failed one's stays for
// diagnosis (the newest 20 per pool).
TEST(Hardening, InstanceLogsGoWithTheirInstanceUnlessItFailed) {
  Operator op("logs");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 3)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 3; }));
  auto logs = [&] {
    std::size_t n = 0;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(op.data_dir() + "/logs/eu", ec)) n += e.is_regular_file();
    return n;
  };
  EXPECT_EQ(logs(), 3u);
  ASSERT_EQ(op.Call("DELETE", std::string(kPools) + "/eu").status, 200);
  ASSERT_TRUE(Eventually([&] { return op.Pool("eu").is_null(); }, 15s));
  EXPECT_EQ(logs(), 0u) << "finished instances leave no log behind";
  // A command that fails at once: its logs are kept, at most 20.
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu",
                    CommandPool("eu", 1, 3, "[sh, -c, \"echo broken; exit 3\"]",
                                "  readiness: {timeoutMs: 60000, periodMs: 100}\n")).status,
            201);
  ASSERT_TRUE(Eventually([&] {
    return op.Call("GET", "/metrics").body.find(
               "matchmaker_instance_failures_total{pool=\"eu\",reason=\"ExitedBeforeReady\"} 3") != std::string::npos;
  }, 20s));
  std::this_thread::sleep_for(300ms);
  EXPECT_GE(logs(), 2u) << "failed instances' logs are kept";
  EXPECT_LE(logs(), 20u);
}

}  // namespace
}  // namespace mm::testing
