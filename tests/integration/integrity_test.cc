// The allocation contract as independent clients see it: one slot per client
// id whatever they send in parallel, poll or retry, across kill -9, SIGTERM
// and a full disk. Every invariant is checked against the game servers' own
// view (each mm-gameserver's GET /reservations), not only matchmakerd's.

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "tests/support/operator.h"

namespace mm::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
constexpr char kPools[] = "/apis/matchmaker.dev/v1alpha1/serverpools";

void Apply(Operator& op, const std::string& name, const std::string& yaml) {
  auto r = op.Call("PUT", std::string(kPools) + "/" + name, yaml);
  ASSERT_TRUE(r.status == 200 || r.status == 201) << r.body;
}

// mm-gameservers of `capacity` slots, answering POST /reservation after
// `delay_ms`.
std::string Pool(const std::string& name, int warm, int max, int capacity, int delay_ms = 0) {
  return CommandPool(name, warm, max,
                     "[\"" + BinPath("mm-gameserver") + "\", \"--address\", \"127.0.0.1\", \"--capacity\", \"" +
                         std::to_string(capacity) + "\", \"--reservation-delay-ms\", \"" + std::to_string(delay_ms) +
                         "\"]");
}

// client id -> the game address of every server that holds it, as the
// servers themselves report it.
std::map<std::string, std::vector<std::string>> ServerView(Operator& op, const std::vector<std::string>& pools) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& pool : pools) {
    for (const auto& i : op.Instances(pool)) {
      const auto& o = i.as_object();
      const auto* cp = o.if_contains("controlPort");
      const auto* ports = o.if_contains("ports");
      if (!cp || !ports || !ports->is_object() || !ports->as_object().contains("game") || !o.contains("host")) continue;
      auto port = cp->as_int64();
      if (port == 0) continue;
      std::string addr =
          std::string(i.at("host").as_string()) + ":" + std::to_string(i.at("ports").at("game").as_int64());
      auto r = http::HttpCall(static_cast<std::uint16_t>(port), "GET", "/reservations", "", {}, 2s);
      if (r.status != 200) continue;  // exited
      std::size_t at = 0;
      while (at < r.body.size()) {
        auto nl = r.body.find('\n', at);
        out[r.body.substr(at, nl - at)].push_back(addr);
        at = nl + 1;
      }
    }
  }
  return out;
}

std::string Describe(const std::vector<json::value>& instances) {
  std::string out;
  for (const auto& i : instances) out += json::serialize(i) + "\n";
  return out;
}

// POST /request until it is no longer 202 (bounded), as go-matchmaker
// clients poll.
http::HttpResult RequestPolling(Operator& op, const std::string& id, int polls = 200,
                                std::chrono::milliseconds gap = 10ms) {
  auto r = op.Request(id);
  for (int i = 0; i < polls && r.status == 202; ++i) {
    std::this_thread::sleep_for(gap);
    r = op.Request(id);
  }
  return r;
}

TEST(Integrity, SameIdInParallelHoldsOneSlot) {
  Operator op("same-id");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", Pool("eu", 3, 10, 3));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 3; }));
  constexpr int kParallel = 20;
  std::map<std::string, std::string> told;
  for (int round = 0; round < 5; ++round) {
    std::string id = "dup-" + std::to_string(round);
    std::vector<http::HttpResult> results(kParallel);
    std::latch go(kParallel);
    std::vector<std::thread> threads;
    for (int t = 0; t < kParallel; ++t) {
      threads.emplace_back([&, t] {
        go.arrive_and_wait();
        results[t] = op.Request(id);
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& r : results) {
      ASSERT_EQ(r.status, 200) << id << ": " << r.body;
      EXPECT_EQ(r.body, results.front().body) << id << ": every answer names the same server";
    }
    told[id] = results.front().body;
  }
  auto view = ServerView(op, {"eu"});
  for (const auto& [id, addr] : told) {
    ASSERT_EQ(view[id].size(), 1u) << id << " is held by " << view[id].size() << " servers";
    EXPECT_EQ(view[id].front(), addr) << id;
  }
  std::size_t held = 0;
  for (const auto& [id, servers] : view) held += servers.size();
  EXPECT_EQ(held, told.size()) << "no slot leaked to anyone else";
}

TEST(Integrity, QueuedClientPolledInParallelHoldsOneSlot) {
  Operator op("pollers");
  ASSERT_TRUE(op.Start());
  // Nothing warm: every client queues, and instances free up (start) while
  // 8 pollers per client keep asking.
  Apply(op, "eu", Pool("eu", 0, 4, 1));
  constexpr int kClients = 3, kPollers = 8;
  std::vector<std::vector<http::HttpResult>> results(kClients, std::vector<http::HttpResult>(kPollers));
  std::latch go(kClients * kPollers);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    for (int p = 0; p < kPollers; ++p) {
      threads.emplace_back([&, c, p] {
        go.arrive_and_wait();
        results[c][p] = RequestPolling(op, "queued-" + std::to_string(c), 1000, 2ms);
      });
    }
  }
  for (auto& t : threads) t.join();
  auto view = ServerView(op, {"eu"});
  for (int c = 0; c < kClients; ++c) {
    std::string id = "queued-" + std::to_string(c);
    for (const auto& r : results[c]) {
      ASSERT_EQ(r.status, 200) << id << ": " << r.body;
      EXPECT_EQ(r.body, results[c].front().body) << id;
    }
    ASSERT_EQ(view[id].size(), 1u) << id << " is held by " << view[id].size() << " servers";
    EXPECT_EQ(view[id].front(), results[c].front().body);
  }
  EXPECT_EQ(view.size(), static_cast<std::size_t>(kClients));
}

// 200 clients, each sending 3 requests at once (and polling while queued),
// matchmakerd killed with SIGKILL in the middle of every round and
// restarted. Every answer a client got names one server, and that server,
// and only it, holds the client.
TEST(Integrity, DuplicatesAcrossKill9RoundsKeepOneServerPerClient) {
  Operator op("kill9-rounds");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", Pool("eu", 6, 40, 10));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 6; }));
  constexpr int kClients = 200, kDup = 3, kWorkers = 4;
  std::mutex mu;
  std::map<std::string, std::set<std::string>> told;  // id -> every address answered with a 200
  for (int round = 0; round < 3; ++round) {
    std::atomic<bool> stop{false};
    std::atomic<int> done{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) {
      workers.emplace_back([&, w] {
        for (int c = w; c < kClients && !stop; c += kWorkers) {
          std::string id = "player-" + std::to_string(c);
          std::vector<std::thread> dups;
          std::vector<http::HttpResult> res(kDup);
          for (int d = 0; d < kDup; ++d) dups.emplace_back([&, d] { res[d] = RequestPolling(op, id, 100, 10ms); });
          for (auto& t : dups) t.join();
          std::lock_guard lock(mu);
          for (const auto& r : res) {
            if (r.status == 200) told[id].insert(r.body);
          }
          ++done;
        }
      });
    }
    ASSERT_TRUE(Eventually([&] { return done >= kClients / 2; }, 30s));
    op.Kill9();  // mid-load
    stop = true;
    for (auto& t : workers) t.join();
    ASSERT_TRUE(op.Start()) << "restart after round " << round;
    ASSERT_TRUE(Eventually([&] { return op.Call("GET", "/readyz").status == 200; }));
  }
  // Every client once more, calmly: the same server as before.
  for (int c = 0; c < kClients; ++c) {
    std::string id = "player-" + std::to_string(c);
    auto r = RequestPolling(op, id, 300, 10ms);
    ASSERT_EQ(r.status, 200) << id << ": " << r.body;
    told[id].insert(r.body);
  }
  auto view = ServerView(op, {"eu"});
  for (const auto& [id, addrs] : told) {
    EXPECT_EQ(addrs.size(), 1u) << id << " was told " << addrs.size() << " different servers";
    ASSERT_EQ(view[id].size(), 1u) << id << " is held by " << view[id].size() << " servers; told "
                                   << *addrs.begin() << "; instances: " << Describe(op.Instances("eu"));
    EXPECT_EQ(view[id].front(), *addrs.begin()) << id;
  }
  EXPECT_EQ(view.size(), static_cast<std::size_t>(kClients)) << "slots held by ids no client asked for";
}

// A small tmpfs mounted on `dir` for as long as it lives (root only).
class Tmpfs {
 public:
  Tmpfs(const std::string& dir, const std::string& size) : dir_(dir) {
    ok_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~Tmpfs() {
    if (ok_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  std::string dir_;
  bool ok_ = false;
};

// Fills the file system of `dir` (a file written until ENOSPC); false if
// it could not be created.
bool FillDisk(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  std::string block(4096, 'x');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
  }
  std::fclose(f);
  return true;
}

// Clients that keep asking for slots (fresh ids, polling while 202 or 503),
// recording every 200 they get.
class Load {
 public:
  Load(Operator& op, int threads, std::string prefix) : op_(op) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t, prefix] {
        for (int i = 0; !stop_ && i < 100'000; ++i) {
          std::string id = prefix + std::to_string(t) + "-" + std::to_string(i);
          auto r = op_.Request(id);
          // matchmakerd down (restarting): wait, do not burn through ids.
          for (int p = 0; p < 200 && !stop_ && r.status == 0; ++p) {
            std::this_thread::sleep_for(10ms);
            r = op_.Request(id);
          }
          for (int p = 0; p < 50 && !stop_ && (r.status == 202 || r.status == 503); ++p) {
            std::this_thread::sleep_for(5ms);
            r = op_.Request(id);
          }
          std::lock_guard lock(mu_);
          if (r.status != 200) unanswered_.push_back(id);
          statuses_[r.status]++;
          if (r.status == 200) told_[id] = r.body;
        }
      });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::map<std::string, std::string> told() {
    std::lock_guard lock(mu_);
    return told_;
  }
  // Ids whose last answer was not a 200 (cut by a stop, 503, queued).
  std::vector<std::string> unanswered() {
    std::lock_guard lock(mu_);
    return unanswered_;
  }
  int count(int status) {
    std::lock_guard lock(mu_);
    return statuses_[status];
  }

 private:
  Operator& op_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::map<std::string, std::string> told_;
  std::map<int, int> statuses_;
  std::vector<std::string> unanswered_;
};

// Every client told a server is held there, by that server only, and asking
// again answers the same server.
void ExpectEveryAcknowledgedClientHeld(Operator& op, const std::map<std::string, std::string>& told,
                                       const std::vector<std::string>& pools) {
  auto view = ServerView(op, pools);
  for (const auto& [id, addr] : told) {
    ASSERT_EQ(view[id].size(), 1u) << id << " (told " << addr << ") is held by " << view[id].size() << " servers";
    EXPECT_EQ(view[id].front(), addr) << id;
    auto again = RequestPolling(op, id, 100, 10ms);
    EXPECT_EQ(again.status, 200) << id << ": " << again.body;
    EXPECT_EQ(again.body, addr) << id;
  }
}

TEST(Integrity, FullDiskAcknowledgesNothingThatIsNotDurable) {
  Operator op("full-disk");
  Tmpfs disk(op.data_dir(), "2m");
  if (!disk.ok()) {
    if (std::getenv("CI")) FAIL() << "cannot mount a tmpfs (needs root)";
    GTEST_SKIP() << "cannot mount a tmpfs (needs root)";
  }
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", Pool("eu", 4, 12, 1000));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 4; }));
  Load load(op, 4, "disk-");
  ASSERT_TRUE(Eventually([&] { return load.told().size() >= 50; }));
  std::string filler = op.data_dir() + "/filler";
  ASSERT_TRUE(FillDisk(filler));
  // The journal cannot write: not ready, and clients get 503, not 200.
  ASSERT_TRUE(Eventually([&] { return op.Call("GET", "/readyz").status == 503; }, 10s));
  EXPECT_NE(op.Call("GET", "/readyz").body.find("journal"), std::string::npos);
  EXPECT_NE(op.Call("GET", "/metrics").body.find("matchmaker_journal_up 0"), std::string::npos);
  std::size_t before = load.told().size();
  std::this_thread::sleep_for(1s);
  auto direct = op.Request("while-full");
  EXPECT_EQ(direct.status, 503) << direct.body;
  EXPECT_EQ(direct.Header("Retry-After"), "1");
  // Space again: the journal catches up, ready again, 200s again.
  std::filesystem::remove(filler);
  ASSERT_TRUE(Eventually([&] { return op.Call("GET", "/readyz").status == 200; }, 10s));
  ASSERT_TRUE(Eventually([&] { return load.told().size() >= before + 50; }));
  auto served = RequestPolling(op, "while-full", 100, 10ms);
  EXPECT_EQ(served.status, 200) << served.body;
  load.Stop();
  auto told = load.told();
  told["while-full"] = served.body;
  EXPECT_GT(load.count(200), 100);
  // Nothing acknowledged was lost: kill -9, restart, every client where it was told.
  op.Kill9();
  ASSERT_TRUE(op.Start());
  ASSERT_TRUE(Eventually([&] { return op.Call("GET", "/readyz").status == 200; }));
  ExpectEveryAcknowledgedClientHeld(op, told, {"eu"});
  // Scale-down never stops a server holding a player.
  Apply(op, "eu", Pool("eu", 0, 12, 1000));
  std::this_thread::sleep_for(1s);
  auto view = ServerView(op, {"eu"});
  for (const auto& [id, addr] : told) EXPECT_EQ(view[id].size(), 1u) << id << " lost its server";
}

TEST(Integrity, SigtermUnderLoadLosesNoAcknowledgedClient) {
  Operator op("sigterm");
  ASSERT_TRUE(op.Start());
  // Handshakes take 300 ms: SIGTERM always lands in the middle of some.
  Apply(op, "eu", Pool("eu", 4, 12, 1000, 300));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 4; }));
  Load load(op, 6, "term-");
  ASSERT_TRUE(Eventually([&] { return load.told().size() >= 12; }));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(op.Terminate(), 0) << "SIGTERM: exit 0";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);
  load.Stop();
  auto told = load.told();
  ASSERT_TRUE(op.Start());
  ASSERT_TRUE(Eventually([&] { return op.Call("GET", "/readyz").status == 200; }));
  ExpectEveryAcknowledgedClientHeld(op, told, {"eu"});
  // Clients whose request was cut by the stop ask again: one server each.
  auto cut = load.unanswered();
  std::printf("sigterm: %zu acknowledged, %zu unanswered\n", told.size(), cut.size());
  for (const auto& id : cut) RequestPolling(op, id, 100, 10ms);
  auto view = ServerView(op, {"eu"});
  for (const auto& [id, servers] : view) EXPECT_EQ(servers.size(), 1u) << id << " is held by several servers";
}

// New, duplicate, polling, long-polling and cancelling clients, players
// leaving and servers ending their match, all at once for a bounded time;
// then the one-slot invariant against the servers' own view. The seed is
// printed; MM_STRESS_SEED replays a sequence of actions.
TEST(Integrity, RandomizedStressKeepsOneSlotPerClient) {
  std::uint64_t seed = 20261127;
  if (const char* s = std::getenv("MM_STRESS_SEED")) seed = std::strtoull(s, nullptr, 10);
  std::printf("stress seed %llu (MM_STRESS_SEED)\n", static_cast<unsigned long long>(seed));
  Operator op("stress");
  ASSERT_TRUE(op.Start());
  Apply(op, "eu", Pool("eu", 3, 12, 10));
  Apply(op, "us", Pool("us", 1, 4, 3));
  ASSERT_TRUE(Eventually([&] { return Count(op.Pool("eu"), "ready") == 3 && Count(op.Pool("us"), "ready") == 1; }));
  constexpr int kIds = 300, kWorkers = 6;
  const auto deadline = std::chrono::steady_clock::now() + 6s;
  std::atomic<int> actions{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937_64 rng(seed + w);
      for (int n = 0; n < 5000 && std::chrono::steady_clock::now() < deadline; ++n) {
        std::string id = "s" + std::to_string(rng() % kIds);
        std::string pool = rng() % 4 == 0 ? "?pool=us" : "";
        switch (rng() % 10) {
          case 0: {  // the same id twice at once
            std::thread twin([&] { op.Request(id, pool); });
            op.Request(id, pool);
            twin.join();
            break;
          }
          case 1:
            op.Request(id, pool.empty() ? "?wait=200ms" : pool + "&wait=200ms");
            break;
          case 2:
            op.Request(id, "", {}, "DELETE");
            break;
          case 3: {  // a player leaves its server
            auto r = op.Request(id, "", {{"Accept", "application/json"}}, "GET");
            if (r.status != 200) break;
            auto v = json::parse(r.body);
            for (const auto& i : op.Instances(std::string(v.at("pool").as_string()))) {
              if (i.at("name") != v.at("instance")) continue;
              auto port = static_cast<std::uint16_t>(i.at("controlPort").as_int64());
              http::HttpCall(port, "DELETE", "/reservation/" + id, "", {}, 2s);
            }
            break;
          }
          case 4:
            if (rng() % 8 == 0) {  // a server ends its match
              auto list = op.Instances(rng() % 2 ? "eu" : "us");
              if (list.empty()) break;
              const auto& i = list[rng() % list.size()];
              if (i.at("state") == "Ready" || i.at("state") == "Starting") break;
              auto port = static_cast<std::uint16_t>(i.at("controlPort").as_int64());
              http::HttpCall(port, "POST", "/close", "", {}, 2s);
            }
            break;
          default:
            RequestPolling(op, id + "", 5, 5ms);
        }
        ++actions;
      }
    });
  }
  for (auto& t : workers) t.join();
  std::printf("stress: %d actions\n", actions.load());
  EXPECT_GT(actions.load(), 200);
  auto view = ServerView(op, {"eu", "us"});
  for (const auto& [id, servers] : view) {
    EXPECT_EQ(servers.size(), 1u) << id << " holds " << servers.size() << " slots (seed " << seed << ")";
    // What matchmakerd says the client holds is what the server says.
    auto r = op.Request(id, "", {}, "GET");
    if (r.status == 200) {
      EXPECT_EQ(r.body, servers.front()) << id;
    }
  }
}

}  // namespace
}  // namespace mm::testing
