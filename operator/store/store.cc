#include "operator/store/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace mm::store {
namespace {

constexpr std::size_t kHeader = 8;
constexpr std::uint32_t kMaxRecord = 64 * 1024 * 1024;

std::array<std::uint32_t, 256> MakeTable() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

void PutU32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint32_t GetU32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

void Apply(std::map<std::string, std::string>& m, const Op& op) {
  if (op.kind == Op::kPut) {
    m[op.key] = op.value;
  } else {
    m.erase(op.key);
  }
}

// Replays records from `data`; returns the offset after the last good one.
std::size_t Replay(std::string_view data, std::map<std::string, std::string>& m,
                   std::size_t& records, std::string& why) {
  std::size_t off = 0;
  while (off < data.size()) {
    if (data.size() - off < kHeader) {
      why = "torn record header at offset " + std::to_string(off);
      break;
    }
    std::uint32_t len = GetU32(data.data() + off);
    std::uint32_t crc = GetU32(data.data() + off + 4);
    if (len > kMaxRecord || data.size() - off - kHeader < len) {
      why = "torn record at offset " + std::to_string(off);
      break;
    }
    std::string_view payload = data.substr(off + kHeader, len);
    if (Crc32c(payload) != crc) {
      why = "corrupt record (CRC mismatch) at offset " + std::to_string(off);
      break;
    }
    if (payload.size() < 5 || (payload[0] != 'P' && payload[0] != 'D')) {
      why = "malformed record at offset " + std::to_string(off);
      break;
    }
    std::uint32_t klen = GetU32(payload.data() + 1);
    if (payload.size() < 5 + static_cast<std::size_t>(klen)) {
      why = "malformed record at offset " + std::to_string(off);
      break;
    }
    Op op{static_cast<Op::Kind>(payload[0]), std::string(payload.substr(5, klen)),
          std::string(payload.substr(5 + klen))};
    Apply(m, op);
    ++records;
    off += kHeader + len;
  }
  return off;
}

void SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::uint32_t Crc32c(std::string_view data) {
  static const auto kTable = MakeTable();
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = kTable[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::size_t Store::ReplayRecords(std::string_view data, std::map<std::string, std::string>& m,
                                 std::size_t& records, std::string& why) {
  return Replay(data, m, records, why);
}

std::string Store::EncodeRecord(const Op& op) {
  std::string payload;
  payload.push_back(static_cast<char>(op.kind));
  PutU32(payload, static_cast<std::uint32_t>(op.key.size()));
  payload += op.key;
  payload += op.value;
  std::string out;
  PutU32(out, static_cast<std::uint32_t>(payload.size()));
  PutU32(out, Crc32c(payload));
  out += payload;
  return out;
}

Store::Store(std::string dir, StoreOptions options)
    : dir_(std::move(dir)), options_(options) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("data dir " + dir_ + ": " + ec.message());
  Recover();
  writer_ = std::thread([this] { Run(); });
}

Store::~Store() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
  if (journal_fd_ >= 0) ::close(journal_fd_);
}

void Store::Recover() {
  std::string snapshot = ReadFile(dir_ + "/snapshot");
  std::size_t ignored = 0;
  std::string why;
  std::size_t good = Replay(snapshot, recovered_, ignored, why);
  if (good != snapshot.size()) {
    // A snapshot is renamed into place only when complete, so this is disk
    // corruption: refuse to start rather than lose acknowledged state.
    throw std::runtime_error(dir_ + "/snapshot: " + why);
  }
  snapshot_bytes_ = snapshot.size();
  std::string journal_path = dir_ + "/journal";
  std::string journal = ReadFile(journal_path);
  why.clear();
  good = Replay(journal, recovered_, report_.records, why);
  journal_fd_ = ::open(journal_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (journal_fd_ < 0) throw std::runtime_error(Errno(journal_path));
  if (good != journal.size()) {
    report_.truncated_bytes = journal.size() - good;
    report_.detail = why;
    if (::ftruncate(journal_fd_, static_cast<off_t>(good)) != 0) {
      throw std::runtime_error(Errno("truncate " + journal_path));
    }
    ::fdatasync(journal_fd_);
  }
  ::lseek(journal_fd_, static_cast<off_t>(good), SEEK_SET);
  journal_bytes_ = good;
  live_ = recovered_;
}

void Store::Commit(std::vector<Op> ops, Done done) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(ops), std::move(done)});
    ++enqueued_;
  }
  cv_.notify_one();
}

void Store::Flush() {
  std::unique_lock lock(mu_);
  std::uint64_t target = enqueued_;
  flushed_cv_.wait(lock, [&] { return written_ >= target; });
}

std::uint64_t Store::groups_written() const {
  std::lock_guard lock(mu_);
  return groups_;
}

std::uint64_t Store::compactions() const {
  std::lock_guard lock(mu_);
  return compactions_;
}

void Store::Run() {
  while (true) {
    std::vector<Pending> group;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) return;
      group.swap(queue_);
    }
    // One write and one fdatasync for everything that queued meanwhile.
    std::string buf;
    for (const auto& p : group) {
      for (const auto& op : p.ops) buf += EncodeRecord(op);
    }
    std::optional<std::string> error;
    if (!WriteAll(journal_fd_, buf)) {
      error = Errno("journal write");
    } else if (options_.sync && ::fdatasync(journal_fd_) != 0) {
      error = Errno("journal fdatasync");
    }
    if (!error) {
      journal_bytes_ += buf.size();
      for (const auto& p : group) {
        for (const auto& op : p.ops) Apply(live_, op);
      }
      if (journal_bytes_ > options_.compact_after_bytes && journal_bytes_ > snapshot_bytes_) {
        if (auto err = Compact()) error = err;
      }
    } else {
      // Drop whatever part of the group reached the file: it was never
      // acknowledged, and a later group must not follow a torn record.
      (void)::ftruncate(journal_fd_, static_cast<off_t>(journal_bytes_));
      ::lseek(journal_fd_, static_cast<off_t>(journal_bytes_), SEEK_SET);
    }
    for (auto& p : group) {
      if (p.done) p.done(error);
    }
    {
      std::lock_guard lock(mu_);
      written_ += group.size();
      ++groups_;
    }
    flushed_cv_.notify_all();
  }
}

std::optional<std::string> Store::Compact() {
  std::string tmp = dir_ + "/snapshot.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno(tmp);
  std::string buf;
  for (const auto& [k, v] : live_) buf += EncodeRecord({Op::kPut, k, v});
  bool ok = WriteAll(fd, buf) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), (dir_ + "/snapshot").c_str()) != 0) {
    return Errno("snapshot");
  }
  SyncDir(dir_);
  // The snapshot holds everything the journal did; replaying both after a
  // crash right here is harmless (puts and deletes are idempotent).
  if (::ftruncate(journal_fd_, 0) != 0) return Errno("journal truncate");
  ::lseek(journal_fd_, 0, SEEK_SET);
  ::fdatasync(journal_fd_);
  snapshot_bytes_ = buf.size();
  journal_bytes_ = 0;
  std::lock_guard lock(mu_);
  ++compactions_;
  return std::nullopt;
}

}  // namespace mm::store
