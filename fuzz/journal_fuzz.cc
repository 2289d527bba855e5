// The store's recovery on any bytes as a journal (a torn or corrupted
// tail is dropped, as after a crash) and as a snapshot (refused with an
// error): recovered state or a clean exception, never a crash.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "operator/store/store.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string dir = "/tmp/mm-fuzz-journal-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string bytes(reinterpret_cast<const char*>(data), size);
  // The first byte picks which file the rest becomes.
  bool as_snapshot = size > 0 && (data[0] & 1);
  std::ofstream(dir + (as_snapshot ? "/snapshot" : "/journal"), std::ios::binary) << bytes.substr(size > 0 ? 1 : 0);
  try {
    mm::store::Store store(dir);
    for (const auto& [k, v] : store.recovered()) (void)k.size(), (void)v.size();
  } catch (const std::runtime_error&) {
    // An unreadable snapshot is an error at start, by design.
  }
  return 0;
}
