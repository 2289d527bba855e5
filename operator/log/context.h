#pragma once

// Structured fields for log lines: what a line is about (pool, instance,
// client, event). A Scope sets them for every line this thread writes while
// it lives; --log-format json writes them as keys beside "msg" (text lines
// name them in the message already). Scopes nest: the innermost non-empty
// value of each field wins.

#include <string>

namespace mm::log {

struct Fields {
  std::string pool;
  std::string instance;
  std::string client;
  std::string event;  // the pool event's reason, when a line reports one
};

class Scope {
 public:
  explicit Scope(const Fields& fields);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Fields saved_;
};

// The fields in effect on this thread.
const Fields& Current();

}  // namespace mm::log
