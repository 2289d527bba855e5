#include "operator/log/context.h"

namespace mm::log {
namespace {
thread_local Fields current;
}  // namespace

Scope::Scope(const Fields& f) : saved_(current) {
  if (!f.pool.empty()) current.pool = f.pool;
  if (!f.instance.empty()) current.instance = f.instance;
  if (!f.client.empty()) current.client = f.client;
  if (!f.event.empty()) current.event = f.event;
}

Scope::~Scope() { current = std::move(saved_); }

const Fields& Current() { return current; }

}  // namespace mm::log
