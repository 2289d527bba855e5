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
  std::string Render(const std::string& indent = "", bool headers = true) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Rows printed as they come (watches): the header first (unless off), each
// column as wide as the widest cell seen so far.
class RowPrinter {
 public:
  RowPrinter(std::vector<std::string> headers, bool print_headers)
      : headers_(std::move(headers)), print_headers_(print_headers) {}
  std::string Row(const std::vector<std::string>& row);

 private:
  std::vector<std::string> headers_;
  std::vector<std::size_t> width_;
  bool print_headers_;
  bool started_ = false;
};

// "45s", "3m12s", "2h5m", "4d3h": kubectl's AGE.
std::string HumanDuration(std::chrono::system_clock::duration d);

}  // namespace mm::mmctl
