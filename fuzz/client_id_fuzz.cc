// Client ids as the client API and the Reservation API take them: the
// check, and percent-encoding (a path segment) both ways.
#include <cstdint>
#include <string>

#include "api/reservation/client_id.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  bool valid = !mm::reservation::CheckClientId(in).has_value();
  if (valid) {
    std::string enc = mm::reservation::PercentEncode(in);
    // One path segment that decodes back to the id.
    if (enc.find('/') != std::string::npos) __builtin_trap();
    auto dec = mm::reservation::PercentDecode(enc);
    if (!dec || *dec != in) __builtin_trap();
  }
  if (auto dec = mm::reservation::PercentDecode(in)) (void)mm::reservation::CheckClientId(*dec);
  return 0;
}
