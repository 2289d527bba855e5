// Allocation latency and throughput of matchmakerd's POST /request, beside
// the floor measured in the same run: the same load sent straight to an
// mm-gameserver's POST /reservation/{id}. Everything on 127.0.0.1.
//
//   build/bin/alloc_bench [--seconds 5] [--threads 8] [--rate 1000] [--backend process|docker]
//
// matchmakerd runs 4 mm-gameservers of capacity 1,000,000 kept warm, so
// instance starts are not what is measured; the journal is on (fdatasync
// per group commit). With --backend docker they are containers of
// matchmaker/gameserver:dev (hack/build-images.sh) with ports published on
// 127.0.0.1, and the floor is one of those containers' control port.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "operator/http/blocking_client.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

struct Figures {
  double p50_ms = 0, p99_ms = 0, max_ms = 0, per_s = 0;
  std::size_t ok = 0, errors = 0;
};

Figures Summarize(std::vector<double>& lat_ms, std::size_t errors, double seconds) {
  Figures f;
  f.ok = lat_ms.size();
  f.errors = errors;
  if (lat_ms.empty()) return f;
  std::sort(lat_ms.begin(), lat_ms.end());
  f.p50_ms = lat_ms[lat_ms.size() / 2];
  f.p99_ms = lat_ms[std::min(lat_ms.size() - 1, lat_ms.size() * 99 / 100)];
  f.max_ms = lat_ms.back();
  f.per_s = static_cast<double>(lat_ms.size()) / seconds;
  return f;
}

// `threads` keep-alive connections; each request is `make(i)` with a fresh
// client id. rate 0: closed loop (saturation); else an open-loop schedule
// of `rate` requests/s in total, latency counted from the scheduled time.
Figures Load(std::uint16_t port, int threads, double seconds, double rate, const std::string& prefix,
             bool via_matchmaker) {
  std::mutex mu;
  std::vector<double> all;
  std::atomic<std::size_t> errors{0};
  std::atomic<long> counter{0};
  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      mm::http::HttpConnection conn(port);
      std::vector<double> lat;
      double interval = rate > 0 ? threads / rate : 0;  // seconds between this thread's sends
      auto next = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval * t / threads));
      while (true) {
        if (rate > 0) {
          if (next >= end) break;
          std::this_thread::sleep_until(next);
        } else if (Clock::now() >= end) {
          break;
        }
        auto sent = rate > 0 ? next : Clock::now();
        std::string id = prefix + std::to_string(counter++);
        mm::http::HttpResult r =
            via_matchmaker ? conn.Call("POST", "/request", "", {{"Authorization", id}})
                           : conn.Call("POST", "/reservation/" + id);
        auto done = Clock::now();
        if (r.status == 200) {
          lat.push_back(std::chrono::duration<double, std::milli>(done - sent).count());
        } else {
          errors++;
        }
        if (rate > 0) next += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval));
      }
      std::lock_guard lock(mu);
      all.insert(all.end(), lat.begin(), lat.end());
    });
  }
  for (auto& th : pool) th.join();
  return Summarize(all, errors, seconds);
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

// Waits for "needle" in the file and returns the number after `key`.
int PortFrom(const std::string& file, const std::string& key) {
  for (int i = 0; i < 400; ++i) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
      auto at = line.find(key);
      if (at != std::string::npos) return std::atoi(line.c_str() + at + key.size());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return 0;
}

void Print(const char* what, const Figures& f) {
  std::printf("%-44s %8.3f %8.3f %8.3f %10.0f %8zu %6zu\n", what, f.p50_ms, f.p99_ms, f.max_ms, f.per_s, f.ok,
              f.errors);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  int threads = 8;
  double rate = 1000;
  std::string backend = "process";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--seconds") seconds = std::atof(argv[i + 1]);
    if (k == "--threads") threads = std::atoi(argv[i + 1]);
    if (k == "--rate") rate = std::atof(argv[i + 1]);
    if (k == "--backend") backend = argv[i + 1];
  }
  const bool docker = backend == "docker";
  std::string bin = fs::canonical("/proc/self/exe").parent_path().string();
  std::string dir = "/tmp/mm-bench-" + std::to_string(getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);

  // matchmakerd with a warm pool of mm-gameservers (processes or containers).
  pid_t gs = -1;
  int gs_port = 0;
  std::ofstream pool(dir + "/pool.yaml");
  pool << "apiVersion: matchmaker.dev/v1alpha1\nkind: ServerPool\nmetadata: {name: bench}\n"
          "spec:\n  warm: 4\n  maxInstances: 8\n  template:\n";
  if (docker) {
    pool << "    image: matchmaker/gameserver:dev\n    args: [\"--capacity\", \"1000000\"]\n"
            "    ports: [{name: game, containerPort: 7777}]\n";
  } else {
    pool << "    command: [\"" << bin << "/mm-gameserver\"]\n    args: [\"--address\", \"127.0.0.1\", \"--capacity\", "
            "\"1000000\"]\n    ports: [{name: game, containerPort: 7777}]\n";
  }
  pool.close();
  fs::create_directories(dir + "/data");
  std::vector<std::string> mmd_args = {bin + "/matchmakerd", "--data-dir", dir + "/data", "--admin-listen",
                                       "127.0.0.1:0", "--listen", "127.0.0.1:0", "--pools", dir + "/pool.yaml",
                                       "--log-level", "warn"};
  if (docker) {
    std::ofstream(dir + "/data/owner-id") << "alloc-bench-" << getpid() << "\n";
    mmd_args.insert(mmd_args.end(), {"--backend", "docker", "--publish-ip", "127.0.0.1"});
  }
  pid_t mmd = Spawn(mmd_args, dir + "/mmd.out");
  int mm_port = PortFrom(dir + "/mmd.out", "client=127.0.0.1:");
  int admin_port = PortFrom(dir + "/mmd.out", "admin=127.0.0.1:");
  if (!docker) {
    // The floor: one mm-gameserver answering reservations directly.
    gs = Spawn({bin + "/mm-gameserver", "--address", "127.0.0.1", "--control-port", "0", "--game-port", "0",
                "--capacity", "1000000"},
               dir + "/gs.out");
    gs_port = PortFrom(dir + "/gs.out", "control=");
  }
  // Wait for the warm pool.
  for (int i = 0; i < 200; ++i) {
    if (mm::http::HttpCall(static_cast<std::uint16_t>(mm_port), "POST", "/request", "", {{"Authorization", "warmup"}})
            .status == 200) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // No instance may be starting while latency is measured: a container
  // start takes the engine about a second of CPU on these two cores. A
  // warm-up load at the measured concurrency first spreads clients over the
  // warm instances (concurrent handshakes go to different instances), so
  // the refills it triggers happen now, up to maxInstances.
  auto pool_json = [&] {
    return mm::http::HttpCall(static_cast<std::uint16_t>(admin_port), "GET",
                              "/apis/matchmaker.dev/v1alpha1/serverpools/bench").body;
  };
  auto settle = [&] {
    for (int i = 0; i < 1200; ++i) {
      if (pool_json().find("\"starting\":0,") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  };
  auto instances = [&] {
    auto list = mm::http::HttpCall(static_cast<std::uint16_t>(admin_port), "GET",
                                   "/apis/matchmaker.dev/v1alpha1/serverpools/bench/instances").body;
    int n = 0;
    for (auto at = list.find("\"backendId\""); at != std::string::npos; at = list.find("\"backendId\"", at + 1)) ++n;
    return n;
  };
  settle();
  Load(static_cast<std::uint16_t>(mm_port), threads, 2, rate, "w", true);
  settle();
  const int instances_before = instances();
  if (docker) {
    // The floor: the control port of one of the pool's containers.
    auto list = mm::http::HttpCall(static_cast<std::uint16_t>(admin_port), "GET",
                                   "/apis/matchmaker.dev/v1alpha1/serverpools/bench/instances");
    auto at = list.body.find("\"controlPort\":");
    if (at != std::string::npos) gs_port = std::atoi(list.body.c_str() + at + 14);
  }
  if (!gs_port || !mm_port) {
    std::fprintf(stderr, "bench: servers did not start (see %s)\n", dir.c_str());
    return 1;
  }
  std::printf("backend: %s\n", backend.c_str());

  std::printf("%-44s %8s %8s %8s %10s %8s %6s\n", "run", "p50 ms", "p99 ms", "max ms", "per s", "ok", "errors");
  auto floor_rate = Load(static_cast<std::uint16_t>(gs_port), threads, seconds, rate, "f", false);
  Print((std::string(docker ? "floor: container, " : "floor: mm-gameserver, ") + std::to_string(static_cast<int>(rate)) + "/s").c_str(), floor_rate);
  auto mm_rate = Load(static_cast<std::uint16_t>(mm_port), threads, seconds, rate, "r", true);
  Print(("matchmakerd POST /request, " + std::to_string(static_cast<int>(rate)) + "/s").c_str(), mm_rate);
  auto floor_sat = Load(static_cast<std::uint16_t>(gs_port), threads, seconds, 0, "F", false);
  Print((std::string(docker ? "floor: container, saturation, " : "floor: mm-gameserver, saturation, ") + std::to_string(threads) + " conns").c_str(), floor_sat);
  auto mm_sat = Load(static_cast<std::uint16_t>(mm_port), threads, seconds, 0, "R", true);
  Print(("matchmakerd POST /request, saturation, " + std::to_string(threads) + " conns").c_str(), mm_sat);
  std::printf("ratio matchmakerd/floor: p50 at %d/s %.2fx, p99 at %d/s %.2fx, saturation throughput %.2fx\n",
              static_cast<int>(rate), mm_rate.p50_ms / floor_rate.p50_ms, static_cast<int>(rate),
              mm_rate.p99_ms / floor_rate.p99_ms, mm_sat.per_s / floor_sat.per_s);

  std::printf("instances in the pool: %d before the measured runs, %d after\n", instances_before, instances());

  // The pool's instances outlive matchmakerd by design: delete the pool first.
  auto admin = static_cast<std::uint16_t>(admin_port);
  mm::http::HttpCall(admin, "DELETE", "/apis/matchmaker.dev/v1alpha1/serverpools/bench?force=true");
  for (int i = 0; i < 200; ++i) {
    if (mm::http::HttpCall(admin, "GET", "/apis/matchmaker.dev/v1alpha1/serverpools/bench").status == 404) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(mmd, SIGTERM);
  waitpid(mmd, nullptr, 0);
  if (gs > 0) {
    kill(gs, SIGTERM);
    waitpid(gs, nullptr, 0);
  }
  fs::remove_all(dir);
  return 0;
}
