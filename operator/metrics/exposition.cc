#include "operator/metrics/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace mm::metrics {
namespace {

const char* TypeName(Registry::Type t) {
  switch (t) {
    case Registry::Type::kCounter: return "counter";
    case Registry::Type::kGauge: return "gauge";
    case Registry::Type::kHistogram: return "histogram";
  }
  return "untyped";
}

std::string EscapeHelp(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// `name{a="x",b="y"[,extra]} value\n`
void Line(std::string& out, const std::string& name, const Labels& labels, const char* extra_key,
          const std::string& extra_value, double value) {
  out += name;
  if (!labels.empty() || extra_key) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      out += EscapeLabelValue(v);
      out += '"';
    }
    if (extra_key) {
      if (!first) out += ',';
      out += extra_key;
      out += "=\"";
      out += extra_value;
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += FormatNumber(value);
  out += '\n';
}

}  // namespace

std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  return std::string(buf, res.ptr);
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

Registry::FamilyId Registry::Add(std::string name, std::string help, Type type, std::vector<double> buckets) {
  std::sort(buckets.begin(), buckets.end());
  families_.push_back(Family{std::move(name), std::move(help), type, std::move(buckets), {}});
  return families_.size() - 1;
}

Registry::Series& Registry::At(FamilyId f, const Labels& labels) {
  Family& fam = families_.at(f);
  auto it = fam.series.find(labels);
  if (it == fam.series.end()) {
    it = fam.series.emplace(labels, Series{}).first;
    if (fam.type == Type::kHistogram) it->second.hits.assign(fam.buckets.size(), 0);
  }
  return it->second;
}

void Registry::Set(FamilyId f, const Labels& labels, double value) { At(f, labels).value = value; }

void Registry::Increment(FamilyId f, const Labels& labels, double by) { At(f, labels).value += by; }

void Registry::Observe(FamilyId f, const Labels& labels, double value) {
  Series& s = At(f, labels);
  const auto& bounds = families_[f].buckets;
  // The first bucket whose bound is >= value; past the last one only +Inf.
  auto i = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  if (i < s.hits.size()) ++s.hits[i];
  s.sum += value;
  ++s.count;
}

void Registry::Touch(FamilyId f, const Labels& labels) { At(f, labels); }

void Registry::Remove(FamilyId f, const Labels& labels) { families_.at(f).series.erase(labels); }

const double* Registry::Value(FamilyId f, const Labels& labels) const {
  const auto& series = families_.at(f).series;
  auto it = series.find(labels);
  return it == series.end() ? nullptr : &it->second.value;
}

std::string Registry::Serialize() const {
  std::string out;
  for (const Family& fam : families_) {
    if (fam.series.empty()) continue;
    out += "# HELP " + fam.name + ' ' + EscapeHelp(fam.help) + '\n';
    out += "# TYPE " + fam.name + ' ' + TypeName(fam.type) + '\n';
    for (const auto& [labels, s] : fam.series) {
      if (fam.type != Type::kHistogram) {
        Line(out, fam.name, labels, nullptr, {}, s.value);
        continue;
      }
      const std::string bucket = fam.name + "_bucket";
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < fam.buckets.size(); ++i) {
        cumulative += s.hits[i];
        Line(out, bucket, labels, "le", FormatNumber(fam.buckets[i]), static_cast<double>(cumulative));
      }
      Line(out, bucket, labels, "le", "+Inf", static_cast<double>(s.count));
      Line(out, fam.name + "_sum", labels, nullptr, {}, s.sum);
      Line(out, fam.name + "_count", labels, nullptr, {}, static_cast<double>(s.count));
    }
  }
  return out;
}

}  // namespace mm::metrics
