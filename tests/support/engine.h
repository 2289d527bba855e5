#pragma once

// Helpers for e2e tests against a real Docker Engine: the docker CLI, a TCP
// echo probe on 127.0.0.1, and time as `docker events --since` wants it.

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace mm::testing {

// `name` looked up in $PATH (RunCommand takes a path).
std::string Which(const std::string& name);
// Runs the docker CLI.
RunResult Docker(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(60));
// Non-empty lines of `s`.
std::vector<std::string> Lines(const std::string& s);
// Sends "ping" to 127.0.0.1:port over TCP and returns what comes back.
std::string Echo(int port);
// Now as seconds.nanoseconds since the epoch.
std::string UnixTime();

}  // namespace mm::testing
