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
// `s` without trailing newlines and spaces (CLI output).
std::string Trim(std::string s);
// A TCP port on 127.0.0.1 that the kernel just chose (0 if none).
int FreePort();

// Makes this engine a single-node swarm manager (advertise 127.0.0.1) when it
// is in no swarm. True when it did, so the caller leaves it again with
// `docker swarm leave --force`; *error gets the CLI's words on failure.
bool InitSwarmIfInactive(std::string* error);
// "active true" when this engine is a swarm manager.
std::string SwarmManagerState();

}  // namespace mm::testing
