#include "api/reservation/client_id.h"

#include <algorithm>
#include <array>
#include <cstdint>

namespace mm::reservation {
namespace {

// RFC 3986's unreserved characters, as a table: one load per character.
constexpr std::array<bool, 256> kUnreserved = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) {
    t[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
  }
  return t;
}();

bool IsUnreserved(unsigned char c) { return kUnreserved[c]; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
// U+10FFFF.
std::size_t ValidUtf8Prefix(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (extra < 0) return i;
    std::uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1f) : extra == 2 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k <= extra; ++k) {
      if (i + static_cast<std::size_t>(k) >= s.size()) return i;
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += static_cast<std::size_t>(extra) + 1;
  }
  return i;
}

bool ValidUtf8(std::string_view s) { return ValidUtf8Prefix(s) == s.size(); }

std::optional<std::string> CheckClientId(std::string_view id) {
  if (id.empty()) return "client id is empty";
  if (id.size() > kMaxClientIdBytes) {
    return "client id is longer than " + std::to_string(kMaxClientIdBytes) +
           " bytes";
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) return "client id holds a control character";
  }
  // Ids travel in JSON (listings, journal, watch streams): text only.
  if (!ValidUtf8(id)) return "client id is not valid UTF-8";
  return std::nullopt;
}

std::string PercentEncode(std::string_view id) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  // Most ids need no escape: one copy (this runs three times per allocation).
  if (std::all_of(id.begin(), id.end(), [](unsigned char c) { return IsUnreserved(c); })) return std::string(id);
  std::string out;
  out.reserve(id.size());
  for (unsigned char c : id) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::optional<std::string> PercentDecode(std::string_view segment) {
  std::string out;
  out.reserve(segment.size());
  for (std::size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] != '%') {
      out.push_back(segment[i]);
      continue;
    }
    if (i + 2 >= segment.size()) return std::nullopt;
    int hi = HexValue(segment[i + 1]);
    int lo = HexValue(segment[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace mm::reservation
