// Cost of the metric updates one allocation makes (Allocation + Reservation
// on a pool's series), and of one /metrics rendering, through mm::metrics.
// Built against prometheus-cpp (before commit 9e64d7d) and against our own
// registry, the same source compares the two (docs/benchmarks.md).
#include <chrono>
#include <cstdio>
#include <string>

#include "operator/metrics/metrics.h"

int main(int argc, char**) {
  using Clock = std::chrono::steady_clock;
  mm::metrics::Metrics m("bench");
  const std::string pools[] = {"eu", "us", "asia", "sa"};
  for (const auto& p : pools) m.SetPool(p, {}, 3);
  if (argc > 1) {  // --dump: the rendering after one allocation, to compare formats
    m.Allocation("eu", "allocated", 0.0007);
    m.Reservation("eu", 200);
    std::fputs(m.Serialize().c_str(), stdout);
    return 0;
  }
  constexpr int kOps = 2'000'000;
  auto t0 = Clock::now();
  for (int i = 0; i < kOps; ++i) {
    const std::string& p = pools[i & 3];
    m.Allocation(p, "allocated", 0.0007);
    m.Reservation(p, 200);
  }
  auto t1 = Clock::now();
  std::size_t bytes = 0;
  constexpr int kRenders = 2'000;
  for (int i = 0; i < kRenders; ++i) bytes += m.Serialize().size();
  auto t2 = Clock::now();
  double per_alloc_ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / kOps;
  double per_render_us = std::chrono::duration<double, std::micro>(t2 - t1).count() / kRenders;
  std::printf("metric updates per allocation: %.0f ns\n/metrics render (%zu bytes): %.1f us\n", per_alloc_ns,
              bytes / kRenders, per_render_us);
}
