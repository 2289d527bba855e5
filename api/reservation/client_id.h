#pragma once

// Client ids on the Reservation API (POST|GET /reservation/{client-id}).
// Pure functions, thread-safe.

#include <optional>
#include <string>
#include <string_view>

namespace mm::reservation {

inline constexpr std::size_t kMaxClientIdBytes = 256;

// Empty when `id` is usable; otherwise why not (for a 400 body).
// Unusable: empty, longer than kMaxClientIdBytes, or holding a control
// character (C0, DEL).
std::optional<std::string> CheckClientId(std::string_view id);

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
// U+10FFFF. The prefix length is where the first invalid sequence starts.
std::size_t ValidUtf8Prefix(std::string_view s);
bool ValidUtf8(std::string_view s);

// RFC 3986 percent-encoding of one path segment: unreserved characters
// (ALPHA DIGIT - . _ ~) stay, every other byte becomes %XX. So no id can
// escape its segment ("../close" -> "..%2Fclose").
std::string PercentEncode(std::string_view id);

// Inverse of PercentEncode; nullopt on a malformed escape ("%G1", "%4").
std::optional<std::string> PercentDecode(std::string_view segment);

}  // namespace mm::reservation
