// Pool files as matchmakerd and mmctl read them: YAML (or JSON) text ->
// libfyaml events -> Boost.JSON -> schema (valijson) -> ServerPool, and
// back out through the codec. Any input: an answer, never a crash, a hang
// or unbounded memory.
#include <cstdint>
#include <string_view>

#include "api/v1alpha1/codec.h"
#include "api/v1alpha1/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = mm::api::DecodePools(text, "fuzz.yaml");
  for (const auto& p : r.pools) {
    // A pool that passed validation must round-trip through the codec.
    if (!(mm::api::FromJson(mm::api::ToJson(p)) == p)) __builtin_trap();
  }
  for (const auto& e : r.errors) (void)e.ToString();
  return 0;
}
