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

// mm-gameservers of `capacity` slots.
std::string Pool(const std::string& name, int warm, int max, int capacity) {
  return CommandPool(name, warm, max,
                     "[\"" + BinPath("mm-gameserver") + "\", \"--address\", \"127.0.0.1\", \"--capacity\", \"" +
                         std::to_string(capacity) + "\"]");
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

}  // namespace
}  // namespace mm::testing
