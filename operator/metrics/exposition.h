#pragma once

// A small metric registry and its Prometheus text exposition (format
// 0.0.4): counters, gauges and histograms with labels. Ours rather than
// prometheus-cpp's because Debian ships prometheus-cpp only as shared
// libraries and matchmakerd must link statically for its FROM scratch
// image; one implementation serves both builds.
//
// Not thread-safe: Metrics (metrics.h) holds the lock.

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mm::metrics {

// Label pairs in the order they are printed.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Registry {
 public:
  enum class Type { kCounter, kGauge, kHistogram };
  using FamilyId = std::size_t;

  // Families print in the order they are added; `buckets` (histograms
  // only) are the upper bounds, ascending, without +Inf.
  FamilyId Add(std::string name, std::string help, Type type, std::vector<double> buckets = {});

  void Set(FamilyId f, const Labels& labels, double value);        // gauge
  void Increment(FamilyId f, const Labels& labels, double by = 1);  // counter or gauge
  void Observe(FamilyId f, const Labels& labels, double value);    // histogram
  void Touch(FamilyId f, const Labels& labels);                    // create the series at 0
  void Remove(FamilyId f, const Labels& labels);

  std::string Serialize() const;

  // For tests: the value of a counter or gauge series, or nullptr.
  const double* Value(FamilyId f, const Labels& labels) const;

 private:
  struct Series {
    double value = 0;                 // counter, gauge
    std::vector<std::uint64_t> hits;  // histogram: per bucket, not cumulative
    double sum = 0;
    std::uint64_t count = 0;
  };
  struct Family {
    std::string name, help;
    Type type;
    std::vector<double> buckets;
    std::map<Labels, Series> series;
  };
  Series& At(FamilyId f, const Labels& labels);

  std::vector<Family> families_;
};

// The text format's number spelling: shortest round-trip decimal, +Inf,
// -Inf, NaN.
std::string FormatNumber(double v);
// Escapes a label value (backslash, double quote, newline).
std::string EscapeLabelValue(const std::string& v);

}  // namespace mm::metrics
