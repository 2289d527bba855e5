#include "cmd/mmctl/table.h"

#include <algorithm>

namespace mm::mmctl {

void Table::AddColumns(const std::vector<std::string>& headers) {
  headers_.insert(headers_.end(), headers.begin(), headers.end());
}

void Table::AddRow(std::vector<std::string> row) {
  row.resize(headers_.size());
  rows_.push_back(std::move(row));
}

std::string Table::Render(const std::string& indent, bool headers) const {
  std::vector<std::size_t> width(headers_.size());
  for (std::size_t c = 0; c < headers_.size(); ++c) {
    width[c] = headers_[c].size();
    for (const auto& r : rows_) width[c] = std::max(width[c], r[c].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l = indent;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      l += cells[c];
      if (c + 1 < cells.size()) l += std::string(width[c] - cells[c].size() + 3, ' ');
    }
    out += l + "\n";
  };
  if (headers) line(headers_);
  for (const auto& r : rows_) line(r);
  return out;
}

std::string RowPrinter::Row(const std::vector<std::string>& row) {
  if (width_.empty()) {
    for (const auto& h : headers_) width_.push_back(h.size());
  }
  for (std::size_t c = 0; c < row.size() && c < width_.size(); ++c) width_[c] = std::max(width_[c], row[c].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      l += cells[c];
      if (c + 1 < cells.size() && c < width_.size()) l += std::string(width_[c] - std::min(width_[c], cells[c].size()) + 3, ' ');
    }
    return l + "\n";
  };
  std::string out;
  if (!started_ && print_headers_) out = line(headers_);
  started_ = true;
  return out + line(row);
}

std::string HumanDuration(std::chrono::system_clock::duration d) {
  long long s = std::max<long long>(0, std::chrono::duration_cast<std::chrono::seconds>(d).count());
  if (s < 120) return std::to_string(s) + "s";
  long long m = s / 60;
  if (m < 60) return std::to_string(m) + "m" + (s % 60 ? std::to_string(s % 60) + "s" : "");
  long long h = m / 60;
  if (h < 48) return std::to_string(h) + "h" + (m % 60 ? std::to_string(m % 60) + "m" : "");
  return std::to_string(h / 24) + "d" + (h % 24 ? std::to_string(h % 24) + "h" : "");
}

}  // namespace mm::mmctl
