#pragma once

// --log-format json: one JSON object per line, the message JSON-escaped.

namespace mm::cmd {

// Installs a pattern of {"time","level","msg"} on spdlog's default logger.
void UseJsonLogs();

}  // namespace mm::cmd
