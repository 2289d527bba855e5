#pragma once

// Child processes for integration tests: spawn, read stdout lines with a
// deadline, signal, reap. The destructor SIGKILLs and reaps a live child.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mm::testing {

class Child {
 public:
  // argv[0] is a path. `env` adds KEY=VALUE entries to the inherited env.
  static std::unique_ptr<Child> Spawn(const std::vector<std::string>& argv,
                                      const std::vector<std::string>& env = {});
  ~Child();

  // Reads stdout until a line containing `needle` (returned) or the deadline.
  std::optional<std::string> WaitForLine(const std::string& needle,
                                         std::chrono::milliseconds timeout);
  // Exit code (128+signal when killed), or nullopt at the deadline.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  void Signal(int sig);
  pid_t pid() const { return pid_; }
  const std::string& output() const { return output_; }  // stdout read so far

 private:
  Child(pid_t pid, int out_fd) : pid_(pid), out_fd_(out_fd) {}
  bool ReadSome(std::chrono::milliseconds timeout);

  pid_t pid_;
  int out_fd_;
  std::string output_;
  std::size_t scanned_ = 0;
  std::optional<int> status_;
};

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs to completion (bounded by `timeout`, then SIGKILL), capturing both
// streams; `input` is written to stdin.
RunResult RunCommand(const std::vector<std::string>& argv,
              std::chrono::milliseconds timeout = std::chrono::seconds(30),
              const std::string& input = "");

// $MM_BIN_DIR/name: binaries under test.
std::string BinPath(const std::string& name);
// $MM_SOURCE_DIR/rel: files in the source tree.
std::string SourcePath(const std::string& rel);

}  // namespace mm::testing
