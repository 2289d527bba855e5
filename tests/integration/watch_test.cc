// Watches and resource versions against the real daemon: events arrive in
// order for changes made through the API and for an instance's exit,
// several watchers see the same stream, a watcher resumes from a
// resourceVersion, one that does not read is dropped without slowing the
// operator, and a PUT naming a stale resourceVersion is 409 — across a
// restart too.

#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tests/support/operator.h"

namespace mm::testing {
namespace {
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

// A watch read on its own thread; lines kept as they arrive.
class Watcher {
 public:
  Watcher(std::uint16_t port, std::string target) {
    thread_ = std::thread([this, port, target] {
      http::HttpConnection conn(port);
      auto r = conn.Stream(target, {}, [this](std::string_view line) {
        std::lock_guard lock(mu_);
        lines_.push_back(json::parse(line));
        cv_.notify_all();
        return !stop_;
      }, 20s);
      std::lock_guard lock(mu_);
      result_ = r;
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~Watcher() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }
  // Waits until `pred` holds for the events (BOOKMARKs left out) or `timeout`.
  bool Until(const std::function<bool(const std::vector<json::value>&)>& pred, std::chrono::milliseconds timeout = 15s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(EventsLocked()) || ended_; }) && pred(EventsLocked());
  }
  std::vector<json::value> Events() {
    std::lock_guard lock(mu_);
    return EventsLocked();
  }
  std::uint64_t LastResourceVersion() {
    std::lock_guard lock(mu_);
    std::uint64_t rv = 0;
    for (const auto& l : lines_) rv = std::max(rv, Rv(l));
    return rv;
  }
  bool ended() {
    std::lock_guard lock(mu_);
    return ended_;
  }
  http::HttpResult result() {
    std::lock_guard lock(mu_);
    return result_;
  }
  static std::uint64_t Rv(const json::value& event) {
    const auto& o = event.at("object").as_object();
    const json::value* meta = o.if_contains("metadata");
    const json::value* rv = meta ? meta->as_object().if_contains("resourceVersion") : o.if_contains("resourceVersion");
    return rv ? std::stoull(std::string(rv->as_string())) : 0;
  }

 private:
  std::vector<json::value> EventsLocked() const {
    std::vector<json::value> out;
    for (const auto& l : lines_) {
      if (l.at("type").as_string() != "BOOKMARK") out.push_back(l);
    }
    return out;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json::value> lines_;
  bool stop_ = false;
  bool ended_ = false;
  http::HttpResult result_;
  std::thread thread_;
};

std::string TypeAndName(const json::value& e) {
  const auto& o = e.at("object").as_object();
  std::string name = o.contains("metadata") ? std::string(o.at("metadata").at("name").as_string())
                                            : std::string(o.at("name").as_string());
  return std::string(e.at("type").as_string()) + " " + name;
}

bool Has(const std::vector<json::value>& events, const std::string& type_and_name) {
  for (const auto& e : events) {
    if (TypeAndName(e) == type_and_name) return true;
  }
  return false;
}

bool Increasing(const std::vector<json::value>& events) {
  std::uint64_t last = 0;
  for (const auto& e : events) {
    auto rv = Watcher::Rv(e);
    if (rv <= last) return false;
    last = rv;
  }
  return true;
}

TEST(Watch, PoolChangesReachEveryWatcherInOrder) {
  Operator op("watch-pools");
  ASSERT_TRUE(op.Start({"--watch-bookmark-ms", "200"}));
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 1)).status, 201);
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < 3; ++i) watchers.push_back(std::make_unique<Watcher>(op.admin_port(), std::string(kPools) + "?watch=true"));
  for (auto& w : watchers) {
    ASSERT_TRUE(w->Until([](const auto& ev) { return Has(ev, "ADDED eu"); })) << "the current pool comes first";
  }
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/us", GameServerPool("us", 0)).status, 201);
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 2)).status, 200);
  ASSERT_EQ(op.Call("DELETE", std::string(kPools) + "/us").status, 200);
  for (auto& w : watchers) {
    ASSERT_TRUE(w->Until([](const auto& ev) {
      bool gen2 = false;
      for (const auto& e : ev) {
        gen2 = gen2 || (TypeAndName(e) == "MODIFIED eu" && e.at("object").at("metadata").at("generation").as_int64() == 2);
      }
      return Has(ev, "ADDED us") && gen2 && Has(ev, "DELETED us");
    })) << json::serialize(json::value_from(w->Events()));
    auto ev = w->Events();
    EXPECT_TRUE(Increasing(ev)) << "resourceVersions grow in the order events arrive";
    EXPECT_EQ(TypeAndName(ev.front()), "ADDED eu");
  }
  // All three saw the same stream.
  auto a = watchers[0]->Events(), b = watchers[1]->Events(), c = watchers[2]->Events();
  auto rvs = [](const std::vector<json::value>& ev) {
    std::vector<std::uint64_t> out;
    for (const auto& e : ev) out.push_back(Watcher::Rv(e));
    return out;
  };
  EXPECT_EQ(rvs(a), rvs(b));
  EXPECT_EQ(rvs(a), rvs(c));
  // Heartbeats: BOOKMARKs keep coming while nothing changes.
  auto before = watchers[0]->LastResourceVersion();
  std::this_thread::sleep_for(500ms);
  EXPECT_GE(watchers[0]->LastResourceVersion(), before);
  EXPECT_FALSE(watchers[0]->ended());
}

TEST(Watch, AnInstanceExitIsAnEventAndAWatchResumesFromAResourceVersion) {
  Operator op("watch-instances");
  ASSERT_TRUE(op.Start({"--watch-bookmark-ms", "200"}));
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 1)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  auto first = std::make_unique<Watcher>(op.admin_port(), std::string(kPools) + "/eu/instances?watch=true");
  std::string name;
  ASSERT_TRUE(first->Until([&](const auto& ev) {
    for (const auto& e : ev) {
      if (e.at("type").as_string() == "ADDED") name = std::string(e.at("object").at("name").as_string());
    }
    return !name.empty();
  }));
  // The game server dies: its end is an event, then its replacement.
  int pid = PidOf(op.Instances("eu").front());
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(first->Until([&](const auto& ev) {
    bool exited = false, other = false;
    for (const auto& e : ev) {
      const auto& o = e.at("object");
      exited = exited || (o.at("name").as_string() == name &&
                          (e.at("type").as_string() == "DELETED" || o.at("state").as_string() == "Exited"));
      other = other || (e.at("type").as_string() == "ADDED" && o.at("name").as_string() != name);
    }
    return exited && other;
  })) << json::serialize(json::value_from(first->Events()));
  EXPECT_TRUE(Increasing(first->Events()));
  auto seen = first->LastResourceVersion();
  first.reset();

  // Changes while nobody watches, then a watch from where the last one was.
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 2)).status, 200);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 2; }));
  Watcher resumed(op.admin_port(), std::string(kPools) + "/eu/instances?watch=true&resourceVersion=" + std::to_string(seen));
  ASSERT_TRUE(resumed.Until([](const auto& ev) {
    for (const auto& e : ev) {
      if (e.at("type").as_string() == "ADDED") return true;
    }
    return false;
  })) << json::serialize(json::value_from(resumed.Events()));
  for (const auto& e : resumed.Events()) EXPECT_GT(Watcher::Rv(e), seen) << "only what came after " << seen;
}

TEST(Watch, ATooOldResourceVersionIs410) {
  Operator op("watch-expired");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 1)).status, 201);
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 1; }));
  // Nobody watched: there is no history to resume from.
  http::HttpConnection conn(op.admin_port());
  auto r = conn.Stream(std::string(kPools) + "?watch=true&resourceVersion=1", {}, [](std::string_view) { return false; }, 5s);
  EXPECT_EQ(r.status, 410) << r.body;
  auto status = json::parse(r.body);
  EXPECT_EQ(status.at("kind").as_string(), "Status");
  EXPECT_EQ(status.at("reason").as_string(), "Expired");
  auto bad = op.Call("GET", std::string(kPools) + "?watch=true&resourceVersion=x1");
  EXPECT_EQ(bad.status, 400);
}

TEST(Watch, AWatcherThatDoesNotReadIsDroppedAndNobodyWaitsForIt) {
  Operator op("watch-slow");
  ASSERT_TRUE(op.Start({"--watch-bookmark-ms", "200"}));
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 0)).status, 201);
  // The slow one: a socket with a tiny receive buffer that is never read.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(op.admin_port());
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string get = std::string("GET ") + kPools + "?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(::write(fd, get.data(), get.size()), static_cast<ssize_t>(get.size()));
  Watcher reader(op.admin_port(), std::string(kPools) + "?watch=true");
  ASSERT_TRUE(reader.Until([](const auto& ev) { return Has(ev, "ADDED eu"); }));

  // 60 updates of a 200 KB annotation: 12 MB of events, more than the
  // kernel's buffers and the watcher's bound together.
  std::string big(200 * 1024, 'x');
  auto slowest = 0ms;
  for (int i = 0; i < 60; ++i) {
    std::string yaml = GameServerPool("eu", 0);
    yaml.replace(yaml.find("metadata: {name: eu}"), std::string("metadata: {name: eu}").size(),
                 "metadata: {name: eu, annotations: {n: \"" + std::to_string(i) + "\", big: \"" + big + "\"}}");
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", yaml).status, 200);
    slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0));
  }
  EXPECT_LT(slowest, 2000ms) << "writes are never held up by a watcher";
  // The reader that reads saw every update.
  ASSERT_TRUE(reader.Until([](const auto& ev) {
    for (const auto& e : ev) {
      const auto* a = e.at("object").at("metadata").as_object().if_contains("annotations");
      if (a && a->at("n").as_string() == "59") return true;
    }
    return false;
  }, 30s));
  // The one that did not was dropped: draining its socket ends in EOF.
  ASSERT_TRUE(op.process()->WaitForLine("dropping a watcher", 20s)) << op.process()->output();
  small = 1 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<char> buf(1 << 16);
  std::size_t total = 0;
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) total += static_cast<std::size_t>(n);
  ::close(fd);
  EXPECT_EQ(n, 0) << "the server closed the slow watcher's connection";
  EXPECT_LT(total, 12u * 1024 * 1024) << "it did not get every event";
  EXPECT_EQ(op.Call("GET", "/healthz").status, 200);
}

// Watches cannot take the admin API's every connection: beyond 64, 429,
// and the rest of the API (the image's HEALTHCHECK) still answers.
TEST(Watch, WatchesAreCappedSoTheAdminApiStaysReachable) {
  Operator op("watch-cap");
  ASSERT_TRUE(op.Start({"--watch-bookmark-ms", "100"}));
  std::vector<int> fds;
  std::string get = std::string("GET ") + kPools + "?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  for (int i = 0; i < 64; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(op.admin_port());
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::write(fd, get.data(), get.size()), static_cast<ssize_t>(get.size()));
    fds.push_back(fd);
  }
  ASSERT_TRUE(Eventually([&] {
    http::HttpConnection conn(op.admin_port());
    return conn.Stream(std::string(kPools) + "?watch=true", {}, [](std::string_view) { return false; }, 5s).status == 429;
  }, 10s));
  EXPECT_EQ(op.Call("GET", "/healthz").status, 200);
  EXPECT_EQ(op.Call("GET", kPools).status, 200);
  for (int fd : fds) ::close(fd);
  // Their places come back.
  EXPECT_TRUE(Eventually([&] {
    http::HttpConnection conn(op.admin_port());
    return conn.Stream(std::string(kPools) + "?watch=true", {}, [](std::string_view) { return false; }, 5s).status == 200;
  }, 10s));
}

TEST(ResourceVersion, AStalePutIs409AcrossARestartToo) {
  Operator op("resource-version");
  ASSERT_TRUE(op.Start());
  ASSERT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 0)).status, 201);
  auto rv_of = [&] { return std::string(op.Pool("eu").at("metadata").at("resourceVersion").as_string()); };
  auto with_rv = [](std::string yaml, const std::string& rv, int warm) {
    yaml.replace(yaml.find("metadata: {name: eu}"), std::string("metadata: {name: eu}").size(),
                 "metadata: {name: eu, resourceVersion: \"" + rv + "\"}");
    yaml.replace(yaml.find("warm: 0"), 7, "warm: " + std::to_string(warm));
    return yaml;
  };
  std::string seen = rv_of();
  auto ok = op.Call("PUT", std::string(kPools) + "/eu", with_rv(GameServerPool("eu", 0), seen, 0));
  EXPECT_EQ(ok.status, 200) << "unchanged and current: fine";
  seen = rv_of();
  auto first = op.Call("PUT", std::string(kPools) + "/eu", with_rv(GameServerPool("eu", 0), seen, 1));
  ASSERT_EQ(first.status, 200) << first.body;
  // A second writer that read the same version loses, and says so.
  auto second = op.Call("PUT", std::string(kPools) + "/eu", with_rv(GameServerPool("eu", 0), seen, 3));
  ASSERT_EQ(second.status, 409) << second.body;
  auto status = json::parse(second.body);
  EXPECT_EQ(status.at("kind").as_string(), "Status");
  EXPECT_EQ(status.at("reason").as_string(), "Conflict");
  EXPECT_NE(status.at("message").as_string().find("the object has been modified"), json::string::npos);
  EXPECT_EQ(op.Pool("eu").at("spec").at("warm").as_int64(), 1) << "the stale write changed nothing";
  // Without a resourceVersion the last write wins, as kubectl apply.
  EXPECT_EQ(op.Call("PUT", std::string(kPools) + "/eu", GameServerPool("eu", 2)).status, 200);
  EXPECT_EQ(op.Pool("eu").at("spec").at("warm").as_int64(), 2);

  // After a restart every number is new and larger: the old one is stale.
  std::string before = rv_of();
  op.Kill9();
  ASSERT_TRUE(op.Start());
  std::string after = rv_of();
  EXPECT_GT(std::stoull(after), std::stoull(before));
  EXPECT_EQ(op.Call("PUT", std::string(kPools) + "/eu", with_rv(GameServerPool("eu", 0), before, 1)).status, 409);
  EXPECT_EQ(op.Call("PUT", std::string(kPools) + "/eu", with_rv(GameServerPool("eu", 0), rv_of(), 1)).status, 200);
  // Lists carry the version a watch would start from.
  auto list = json::parse(op.Call("GET", kPools).body);
  EXPECT_EQ(list.at("apiVersion").as_string(), "matchmaker.dev/v1alpha1");
  // (Within one answer: a second GET may see the pool's status move on.)
  ASSERT_EQ(list.at("items").as_array().size(), 1u);
  EXPECT_GE(std::stoull(std::string(list.at("metadata").at("resourceVersion").as_string())),
            std::stoull(std::string(list.at("items").at(0).at("metadata").at("resourceVersion").as_string())));
  auto instances = json::parse(op.Call("GET", std::string(kPools) + "/eu/instances").body);
  EXPECT_EQ(instances.at("apiVersion").as_string(), "matchmaker.dev/v1alpha1");
  EXPECT_EQ(instances.at("kind").as_string(), "InstanceList");
}

}  // namespace
}  // namespace mm::testing
