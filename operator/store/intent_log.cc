#include "operator/store/intent_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "operator/store/store.h"

namespace mm::store {
namespace {

// Past this size the file is cut back to the live intents (empty when none
// is live, else rewritten: a handful of records).
constexpr std::size_t kCompactAfter = 256 * 1024;

}  // namespace

IntentLog::IntentLog(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) throw std::runtime_error(path_ + ": " + std::strerror(errno));
  std::string data;
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd_, buf, sizeof buf)) > 0) data.append(buf, static_cast<std::size_t>(n));
  std::size_t records = 0;
  std::string why;
  // A torn tail is an intent the process died writing: its handshake never
  // started.
  std::size_t good = Store::ReplayRecords(data, recovered_, records, why);
  if (good != data.size() && ::ftruncate(fd_, static_cast<off_t>(good)) != 0) {
    throw std::runtime_error(path_ + ": truncate: " + std::strerror(errno));
  }
  bytes_ = good;
  live_.insert(recovered_.begin(), recovered_.end());
}

IntentLog::~IntentLog() {
  if (fd_ >= 0) ::close(fd_);
}

void IntentLog::Stage(const std::string& key, const std::string& value) {
  pending_ += Store::EncodeRecord({Op::kPut, key, value});
  // A key already live (a handshake asked again) stays live if this write
  // fails: its earlier record is on disk.
  if (live_.insert_or_assign(key, value).second) staged_.push_back(key);
}

std::optional<std::string> IntentLog::Flush() {
  if (pending_.empty()) return std::nullopt;
  ssize_t n = ::write(fd_, pending_.data(), pending_.size());
  if (n == static_cast<ssize_t>(pending_.size())) {
    bytes_ += pending_.size();
    pending_.clear();
    staged_.clear();
    return std::nullopt;
  }
  std::string err = n < 0 ? std::strerror(errno) : "short write";
  if (n > 0) (void)::ftruncate(fd_, static_cast<off_t>(bytes_));  // no torn record before the next
  // Not on disk: those handshakes do not start. (A delete that waited with
  // them is lost too, which leaves its intent "maybe held": the safe side.)
  for (const auto& key : staged_) live_.erase(key);
  pending_.clear();
  staged_.clear();
  return "intent log: " + err;
}

void IntentLog::Remove(const std::string& key, bool record) {
  // A settled key is written again only when asked (a release of a slot
  // whose intent record may have been left behind).
  if (live_.erase(key) == 0 && !record) return;
  if (!pending_.empty()) {
    if (record) pending_ += Store::EncodeRecord({Op::kDelete, key, ""});
    return;
  }
  if (bytes_ > kCompactAfter) return live_.empty() ? Clear() : Rewrite();
  if (!record) return;
  std::string rec = Store::EncodeRecord({Op::kDelete, key, ""});
  // A delete that cannot be written leaves an intent that recovery takes as
  // "maybe held": the safe side.
  if (::write(fd_, rec.data(), rec.size()) == static_cast<ssize_t>(rec.size())) {
    bytes_ += rec.size();
  } else {
    (void)::ftruncate(fd_, static_cast<off_t>(bytes_));
  }
}

void IntentLog::Rewrite() {
  std::string buf;
  for (const auto& [k, v] : live_) buf += Store::EncodeRecord({Op::kPut, k, v});
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  // rename(2) swaps the files atomically; no fsync: like every intent, the
  // result need only survive the process.
  if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size()) ||
      ::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return;
  }
  ::close(fd_);
  fd_ = fd;
  bytes_ = buf.size();
}

void IntentLog::Clear() {
  if (::ftruncate(fd_, 0) == 0) bytes_ = 0;
  live_.clear();
}

}  // namespace mm::store
