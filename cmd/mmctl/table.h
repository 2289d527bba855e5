#pragma once

// kubectl-style plain tables: upper-case headers, columns padded by three
// spaces, no borders.

#include <chrono>
#include <string>
#include <vector>

namespace mm::mmctl {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddColumns(const std::vector<std::string>& headers);
  void AddRow(std::vector<std::string> row);
  std::string Render(const std::string& indent = "") const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "45s", "3m12s", "2h5m", "4d3h": kubectl's AGE.
std::string HumanDuration(std::chrono::system_clock::duration d);

}  // namespace mm::mmctl
