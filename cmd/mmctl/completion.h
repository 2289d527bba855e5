#pragma once

#include <string_view>

namespace mm::mmctl {
// cmd/mmctl/mmctl.bash, embedded at build time (`mmctl completion bash`).
std::string_view BashCompletion();
}  // namespace mm::mmctl
