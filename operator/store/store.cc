#include "operator/store/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>

namespace mm::store {
namespace {

constexpr std::size_t kHeader = 8;
constexpr std::uint32_t kMaxRecord = 64 * 1024 * 1024;

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

// One record at `off`: its op, key and value, and its size; nullopt (with
// `why`) when it is short, oversized, corrupt or malformed.
struct Record {
  char op;
  std::string_view key, value;
  std::size_t size;
};
std::optional<Record> ReadRecord(std::string_view data, std::size_t off, std::string* why) {
  auto fail = [&](const char* what) -> std::optional<Record> {
    if (why) *why = std::string(what) + " at offset " + std::to_string(off);
    return std::nullopt;
  };
  if (data.size() - off < kHeader) return fail("torn record header");
  std::uint32_t len = GetU32(data.data() + off);
  std::uint32_t crc = GetU32(data.data() + off + 4);
  if (len > kMaxRecord || data.size() - off - kHeader < len) return fail("torn record");
  std::string_view payload = data.substr(off + kHeader, len);
  if (Crc32c(payload) != crc) return fail("corrupt record (CRC mismatch)");
  if (payload.size() < 5 || (payload[0] != 'P' && payload[0] != 'D' && payload[0] != 'C')) {
    return fail("malformed record");
  }
  std::uint32_t klen = GetU32(payload.data() + 1);
  if (payload.size() < 5 + static_cast<std::size_t>(klen)) return fail("malformed record");
  return Record{payload[0], payload.substr(5, klen), payload.substr(5 + klen), kHeader + len};
}

struct Replayed {
  std::size_t end = 0;        // offset after the last good record
  std::size_t records = 0;    // puts and deletes
  std::size_t commits = 0;    // 'C' records
  std::string why;            // what stopped it before the end
};

// Replays records from `data` (into `m` when given) up to the first bad one.
Replayed Replay(std::string_view data, std::map<std::string, std::string>* m) {
  Replayed r;
  while (r.end < data.size()) {
    auto rec = ReadRecord(data, r.end, &r.why);
    if (!rec) break;
    if (rec->op == 'C') {
      ++r.commits;
    } else {
      if (m) Apply(*m, Op{static_cast<Op::Kind>(rec->op), std::string(rec->key), std::string(rec->value)});
      ++r.records;
    }
    r.end += rec->size;
  }
  return r;
}

// After a bad record at `bad`: the first offset where valid records start
// again, and what they hold (up to the next bad one); nullopt when nothing
// valid follows.
std::optional<std::pair<std::size_t, Replayed>> ValidAfter(std::string_view data, std::size_t bad) {
  for (std::size_t off = bad + 1; off + kHeader <= data.size(); ++off) {
    if (!ReadRecord(data, off, nullptr)) continue;
    Replayed after = Replay(data.substr(off), nullptr);
    return std::make_pair(off, after);
  }
  return std::nullopt;
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
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

std::size_t Store::ReplayRecords(std::string_view data, std::map<std::string, std::string>& m,
                                 std::size_t& records, std::string& why) {
  Replayed r = Replay(data, &m);
  records += r.records;
  why = r.why;
  return r.end;
}

std::string Store::EncodeCommit(std::uint64_t group) {
  std::string payload = "C";
  PutU32(payload, 0);
  payload += std::to_string(group);
  std::string out;
  PutU32(out, static_cast<std::uint32_t>(payload.size()));
  PutU32(out, Crc32c(payload));
  out += payload;
  return out;
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
  Replayed snap = Replay(snapshot, &recovered_);
  if (snap.end != snapshot.size()) {
    // A snapshot is renamed into place only when complete, so this is disk
    // corruption: refuse to start rather than lose acknowledged state.
    throw std::runtime_error(dir_ + "/snapshot: " + snap.why);
  }
  snapshot_bytes_ = snapshot.size();
  std::string journal_path = dir_ + "/journal";
  std::string journal = ReadFile(journal_path);
  std::map<std::string, std::string> state = recovered_;
  Replayed r = Replay(journal, &state);
  std::size_t good = r.end;
  if (good != journal.size()) {
    // Torn tail or damage? Valid records after the bad one that include a
    // finished group mean acknowledged data lies beyond it. A journal
    // written before groups were marked has no 'C' at all: any valid
    // record after the bad one then counts as acknowledged.
    auto after = ValidAfter(journal, good);
    bool marked = r.commits > 0 || (after && after->second.commits > 0);
    bool damage = after && (!marked || after->second.commits > 0);
    if (damage) {
      std::string what = r.why + "; " + std::to_string(after->second.records) + " record(s) in " +
                         std::to_string(journal.size() - after->first) + " byte(s) from offset " +
                         std::to_string(after->first) + " follow it" +
                         (after->second.commits > 0
                              ? " (" + std::to_string(after->second.commits) + " acknowledged group(s))"
                              : "");
      if (!options_.repair) {
        throw std::runtime_error(journal_path + " is damaged: " + what +
                                 ". Nothing was changed. Start with --repair-journal to cut the journal there "
                                 "(those records are lost; the damaged file is kept), or restore a backup.");
      }
      std::string copy = journal_path + ".damaged-" +
                         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
      std::error_code ec;
      std::filesystem::copy_file(journal_path, copy, std::filesystem::copy_options::overwrite_existing, ec);
      if (ec) throw std::runtime_error("keep a copy of the damaged journal as " + copy + ": " + ec.message());
      report_.repaired = true;
      report_.detail = "damaged, cut (a copy is " + copy + "): " + what;
    } else {
      report_.detail = r.why;
    }
    report_.truncated_bytes = journal.size() - good;
  }
  recovered_ = std::move(state);
  report_.records = r.records;
  journal_fd_ = ::open(journal_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (journal_fd_ < 0) throw std::runtime_error(Errno(journal_path));
  if (good != journal.size()) {
    if (::ftruncate(journal_fd_, static_cast<off_t>(good)) != 0) {
      throw std::runtime_error(Errno("truncate " + journal_path));
    }
    ::fdatasync(journal_fd_);
  }
  ::lseek(journal_fd_, static_cast<off_t>(good), SEEK_SET);
  journal_bytes_ = good;
  if (journal_bytes_ == 0) {
    if (auto err = MarkJournal()) throw std::runtime_error(*err);
  }
  live_ = recovered_;
}

// A journal starts with a commit record (group 0): a journal of this
// format always has one, so recovery can tell its torn last group from an
// older journal's damage.
std::optional<std::string> Store::MarkJournal() {
  std::string mark = EncodeCommit(0);
  if (!WriteAll(journal_fd_, mark)) return Errno("journal write");
  if (options_.sync && ::fdatasync(journal_fd_) != 0) return Errno("journal fdatasync");
  journal_bytes_ = mark.size();
  return std::nullopt;
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
    buf += EncodeCommit(++group_seq_);  // the group ends here: what follows a torn write is not ours
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
  if (auto err = MarkJournal()) return err;
  std::lock_guard lock(mu_);
  ++compactions_;
  return std::nullopt;
}

}  // namespace mm::store
