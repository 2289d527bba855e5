// What liveness probing after Ready costs matchmakerd: the real Controller
// (its probe chains, keep-alive connections, JudgeProbe, metrics) with N
// Ready instances, beside the same controller with the same N instances not
// probing, measured in the same run. The instances are N HTTP listeners on
// 127.0.0.1 in a child process (so their CPU is not counted); a placement
// stub stands in for the backend, which plays no part once they are Ready.
//
//   build/bin/probe_bench [--instances 1000,10000] [--period-ms 1000] [--seconds 5]
//
// Prints, per N: probes/s, matchmakerd CPU (% of one core) while probing
// and while not, the difference per probe, and the sockets held (keep-alive:
// one per instance, not one per probe); then the same with a new connection
// per probe (the baseline, as readiness probes do), and the ratio.

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "api/v1alpha1/codec.h"
#include "operator/backend/backend.h"
#include "operator/http/server.h"
#include "operator/metrics/metrics.h"
#include "operator/reconcile/controller.h"
#include "operator/store/store.h"

namespace {

namespace net = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

void RaiseFdLimit() {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::size_t OpenFds() {
  std::size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Child: N listeners answering every request with 200; their ports on `fd`.
[[noreturn]] void Serve(int n, int fd) {
  RaiseFdLimit();
  net::io_context io;
  std::vector<std::unique_ptr<mm::http::Server>> servers;
  std::string ports;
  for (int i = 0; i < n; ++i) {
    auto s = std::make_unique<mm::http::Server>(
        io, mm::http::ServerOptions{.address = "127.0.0.1", .port = 0, .read_timeout = 600s},
        [](mm::http::Request&&, mm::http::Reply reply) { reply(mm::http::Response{.body = "ok\n"}); });
    if (auto err = s->Start()) {
      std::fprintf(stderr, "probe_bench: listener %d: %s\n", i, err->c_str());
      std::_Exit(1);
    }
    ports += std::to_string(s->port()) + "\n";
    servers.push_back(std::move(s));
  }
  ports += "end\n";
  for (std::size_t at = 0; at < ports.size();) {
    auto w = ::write(fd, ports.data() + at, ports.size() - at);
    if (w <= 0) std::_Exit(1);
    at += static_cast<std::size_t>(w);
  }
  ::close(fd);
  io.run();
  std::_Exit(0);
}

// Places instance k at the k-th listener; nothing runs, nothing exits.
class PortBackend : public mm::backend::Backend {
 public:
  PortBackend(net::io_context& io, std::vector<int> ports) : io_(io), ports_(std::move(ports)) {}
  std::string_view name() const override { return "bench"; }
  void Create(const mm::backend::InstanceSpec& spec, std::function<void(mm::backend::CreateResult)> done) override {
    if (next_ >= ports_.size()) {
      return net::post(io_, [done] { done(std::string("no listener left")); });
    }
    mm::backend::Placement p{"bench-" + spec.name, "127.0.0.1", "127.0.0.1", ports_[next_++], {}};
    net::post(io_, [done, p] { done(p); });
  }
  void Remove(const mm::state::Instance&) override {}
  void Adopt(const std::vector<const mm::state::Instance*>&, const Templates&,
             std::function<void(Adopted)> done) override {
    net::post(io_, [done] { done({}); });
  }
  void OnExit(std::function<void(mm::backend::ExitEvent)>) override {}

 private:
  net::io_context& io_;
  std::vector<int> ports_;
  std::size_t next_ = 0;
};

std::string PoolYaml(int n, int period_ms) {
  std::ostringstream y;
  y << "{\"apiVersion\":\"matchmaker.dev/v1alpha1\",\"kind\":\"ServerPool\",\"metadata\":{\"name\":\"bench\"},"
    << "\"spec\":{\"warm\":" << n << ",\"maxInstances\":" << n << ",\"template\":{\"command\":[\"x\"]},"
    << "\"readiness\":{\"periodMs\":100,\"timeoutMs\":600000},"
    << "\"health\":{\"periodMs\":" << period_ms << ",\"timeoutMs\":1000,\"failureThreshold\":3}}}";
  return y.str();
}

double ProbesTotal(const mm::metrics::Metrics& m) {
  std::string text = m.Serialize();
  double total = 0;
  for (const char* series : {"matchmaker_health_probes_total{pool=\"bench\",result=\"ok\"} ",
                             "matchmaker_health_probes_total{pool=\"bench\",result=\"failed\"} "}) {
    auto at = text.find(series);
    if (at != std::string::npos) total += std::atof(text.c_str() + at + std::string(series).size());
  }
  return total;
}

struct Row {
  int n = 0;
  double probes_per_s = 0, cpu_probing = 0, cpu_idle = 0;
  std::size_t fds = 0;
};

// Each listener process holds 2 descriptors per instance (the listener and
// the accepted connection): 4,000 instances each stays within a 20,000
// descriptor limit.
constexpr int kPerChild = 4000;

Row Run(int n, int period_ms, double seconds, bool keep_alive) {
  std::vector<pid_t> children;
  std::vector<int> ports;
  for (int first = 0; first < n; first += kPerChild) {
    int count = std::min(kPerChild, n - first);
    int pipefd[2];
    if (::pipe(pipefd) != 0) std::exit(1);
    pid_t child = ::fork();
    if (child == 0) {
      ::close(pipefd[0]);
      Serve(count, pipefd[1]);
    }
    children.push_back(child);
    ::close(pipefd[1]);
    std::string buf, line;
    char chunk[65536];
    ssize_t r;
    while ((r = ::read(pipefd[0], chunk, sizeof chunk)) > 0) buf.append(chunk, static_cast<std::size_t>(r));
    std::istringstream in(buf);
    while (std::getline(in, line) && line != "end") ports.push_back(std::atoi(line.c_str()));
    ::close(pipefd[0]);
  }
  if (static_cast<int>(ports.size()) != n) {
    std::fprintf(stderr, "probe_bench: %zu of %d listeners\n", ports.size(), n);
    std::exit(1);
  }

  std::string dir = (fs::temp_directory_path() / ("probe-bench-" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  Row row;
  row.n = n;
  {
    net::io_context io;
    mm::store::Store store(dir);
    PortBackend backend(io, ports);
    mm::metrics::Metrics metrics("bench");
    mm::reconcile::ControllerOptions options;
    options.limits.max_creates_per_pass = 256;
    options.max_creates_in_flight = 256;
    options.probe_keep_alive = keep_alive;
    options.creates_per_second = 0;  // 10,000 at once: not what is measured
    mm::reconcile::Controller controller(io, store, backend, &metrics, options);
    controller.Start();
    auto apply = [&](int period) {
      bool done = false;
      controller.Apply(mm::api::FromJson(boost::json::parse(PoolYaml(n, period))),
                       [&](auto, auto, std::string err) {
                         if (!err.empty()) std::fprintf(stderr, "probe_bench: apply: %s\n", err.c_str());
                         done = true;
                       });
      while (!done) io.run_one();
    };
    auto run_for = [&](std::chrono::duration<double> d) {
      io.restart();
      io.run_for(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
    };
    // Both sides start: adoption, then the pool.
    run_for(200ms);
    apply(period_ms);
    for (int i = 0; i < 600; ++i) {
      run_for(100ms);
      auto p = controller.Get("bench");
      if (p && p->status && p->status->instances.ready == n) break;
    }
    auto ready = controller.Get("bench")->status->instances.ready;
    if (ready != n) {
      std::fprintf(stderr, "probe_bench: %d of %d Ready\n", ready, n);
      std::exit(1);
    }
    run_for(std::chrono::milliseconds(2 * period_ms));  // every chain past its first probe
    double p0 = ProbesTotal(metrics), c0 = CpuSeconds();
    run_for(std::chrono::duration<double>(seconds));
    double p1 = ProbesTotal(metrics), c1 = CpuSeconds();
    row.probes_per_s = (p1 - p0) / seconds;
    row.cpu_probing = (c1 - c0) / seconds;
    row.fds = OpenFds();
    // The same controller and instances, not probing: every chain takes the
    // new period at its next probe.
    apply(3'600'000 / 10);
    run_for(std::chrono::milliseconds(2 * period_ms + 1000));
    double c2 = CpuSeconds();
    run_for(std::chrono::duration<double>(seconds));
    row.cpu_idle = (CpuSeconds() - c2) / seconds;
    controller.Stop();
  }
  for (pid_t child : children) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  }
  fs::remove_all(dir);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {1000, 10000};
  int period_ms = 1000;
  double seconds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--instances") {
      sizes.clear();
      std::istringstream in(argv[i + 1]);
      for (std::string s; std::getline(in, s, ',');) sizes.push_back(std::atoi(s.c_str()));
    } else if (a == "--period-ms") {
      period_ms = std::atoi(argv[i + 1]);
    } else if (a == "--seconds") {
      seconds = std::atof(argv[i + 1]);
    }
  }
  RaiseFdLimit();
  std::signal(SIGPIPE, SIG_IGN);
  std::printf("liveness probing, health.periodMs %d, %.0f s per figure\n", period_ms, seconds);
  std::printf("%-22s %10s %10s %14s %14s %16s %10s\n", "connections", "instances", "probes/s", "cpu probing",
              "cpu not", "cpu per probe", "fds");
  auto per_probe = [](const Row& r) {
    return r.probes_per_s > 0 ? (r.cpu_probing - r.cpu_idle) / r.probes_per_s * 1e6 : 0;
  };
  for (int n : sizes) {
    Row rows[2];
    for (bool keep : {true, false}) {
      Row r = rows[keep ? 0 : 1] = Run(n, period_ms, seconds, keep);
      std::printf("%-22s %10d %10.0f %13.1f%% %13.1f%% %13.1f us %10zu\n",
                  keep ? "kept alive" : "one per probe (base)", r.n, r.probes_per_s, 100 * r.cpu_probing,
                  100 * r.cpu_idle, per_probe(r), r.fds);
      std::fflush(stdout);
    }
    if (per_probe(rows[1]) > 0) {
      std::printf("%-22s %10d  cpu per probe kept alive / one per probe = %.2f\n", "ratio", n,
                  per_probe(rows[0]) / per_probe(rows[1]));
    }
  }
  return 0;
}
