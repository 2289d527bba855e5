#include "operator/store/store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(MM_JEMALLOC)
#include <jemalloc/jemalloc.h>
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

#include <spdlog/spdlog.h>

#include <boost/crc.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory_resource>
#include <new>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace mm::store {
namespace {

// Hands the pages of freed blocks back to the system. Freeing a map of a
// million small blocks returns nothing by itself, with either allocator.
void ReturnFreedMemory() {
#if defined(MM_JEMALLOC)
  (void)::mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
  const std::string purge = "arena." + std::to_string(MALLCTL_ARENAS_ALL) + ".purge";
  (void)::mallctl(purge.c_str(), nullptr, nullptr, nullptr, 0);
#elif defined(__GLIBC__)
  ::malloc_trim(0);
#endif
}

// Memory straight from the kernel, given back at once: for allocations that
// all end together (a compaction's index of the segment).
class PageResource final : public std::pmr::memory_resource {
  void* do_allocate(std::size_t bytes, std::size_t) override {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t) override { ::munmap(p, bytes); }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }
};

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

// The whole file into `out`; a missing file is empty. An error (open other
// than ENOENT, read) is returned, never taken for an empty or short file.
template <class String>
std::optional<std::string> ReadFile(const std::string& path, String& out) {
  out.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? std::nullopt : std::optional(Errno(path));
  if (struct stat st {}; ::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto err = Errno(path);
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return std::nullopt;
}

std::string ReadFileOrThrow(const std::string& path) {
  std::string out;
  if (auto err = ReadFile(path, out)) throw std::runtime_error(*err);
  return out;
}

// Applies a file's puts and deletes to a map in key order: a key's last op
// decides it, so ops on different keys may go in any order, and each is
// placed next to the one before instead of by a search. A snapshot's keys
// ascend (Compact writes them so) and are applied as read; a journal's come
// in arrival order, and from the first that does not ascend the rest are
// collected and applied sorted, stably (a key's ops keep their order).
// Inserting a million random ids one search at a time was most of a
// restart that found a compaction unfinished.
class SortedApply {
 public:
  explicit SortedApply(std::map<std::string, std::string>& m) : m_(m), at_(m.begin()) {}
  void Add(char op, std::string_view key, std::string_view value) {
    if (!collecting_ && (!started_ || !(key < previous_))) {
      started_ = true;
      previous_ = key;
      return Apply(op, key, value);
    }
    collecting_ = true;
    later_.push_back({op, key, value});
  }
  void Finish() {
    auto by_key = [](const Read& a, const Read& b) { return a.key < b.key; };
    std::stable_sort(later_.begin(), later_.end(), by_key);
    at_ = m_.begin();
    for (const Read& r : later_) Apply(r.op, r.key, r.value);
    later_.clear();
  }

 private:
  struct Read {
    char op;
    std::string_view key, value;
  };
  // `at_`: the first element not less than the previous key applied; the
  // next key, not less than it, goes there, just after it, or is searched.
  void Apply(char op, std::string_view key_view, std::string_view value) {
    std::string key(key_view);
    if (at_ != m_.end() && at_->first < key) {
      auto next = std::next(at_);
      at_ = next == m_.end() || !(next->first < key) ? next : m_.lower_bound(key);
    }
    bool found = at_ != m_.end() && at_->first == key;
    if (op != Op::kPut) {
      if (found) at_ = m_.erase(at_);
    } else if (found) {
      at_->second.assign(value);
    } else {
      at_ = m_.emplace_hint(at_, std::move(key), value);
    }
  }
  std::map<std::string, std::string>& m_;
  std::map<std::string, std::string>::iterator at_;
  bool started_ = false, collecting_ = false;
  std::string_view previous_;
  std::vector<Read> later_;
};

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
  std::optional<SortedApply> apply;
  if (m) apply.emplace(*m);
  while (r.end < data.size()) {
    auto rec = ReadRecord(data, r.end, &r.why);
    if (!rec) break;
    if (rec->op == 'C') {
      ++r.commits;
    } else {
      if (apply) apply->Add(rec->op, rec->key, rec->value);
      ++r.records;
    }
    r.end += rec->size;
  }
  if (apply) apply->Finish();
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

// Makes the directory's entries (creates, renames, unlinks) durable.
bool SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Cuts the file at `path` to `size`, durably; throws when it cannot.
void CutFile(const std::string& path, std::size_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(Errno("truncate " + path));
  }
  ::fdatasync(fd);
  ::close(fd);
}

// The compactor thread's nice value (the io thread and the writer keep 0).
constexpr int kCompactorNice = 10;

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
    : dir_(std::move(dir)), options_(std::move(options)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("data dir " + dir_ + ": " + ec.message());
  Recover();
  writer_ = std::thread([this] { Run(); });
  compactor_ = std::thread([this] { RunCompactor(); });
}

Store::~Store() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  compact_cv_.notify_all();
  writer_.join();  // writes what is queued
  compactor_.join();  // an unfinished compaction is dropped: its files are not in use yet
  if (releaser_.joinable()) releaser_.join();
  // A clean stop leaves no preallocated zeros (recovery would cut them anyway).
  if (journal_fd_ >= 0) {
    (void)CutToLastGroup(/*durable=*/false);
    ::close(journal_fd_);
  }
}

void Store::ReleaseRecovered() {
  // Freed on a thread of its own: a million records take a tenth of a
  // second to free and trim, which the caller (a restart) need not wait for.
  if (releaser_.joinable()) releaser_.join();
  auto release = [](std::map<std::string, std::string>& m) {
    std::map<std::string, std::string>().swap(m);
    ReturnFreedMemory();
  };
  try {
    releaser_ = std::thread([release, m = std::move(recovered_)]() mutable { release(m); });
  } catch (const std::system_error&) {
    release(recovered_);  // no thread to be had: here, then
  }
  recovered_.clear();  // moved from: valid, and now surely empty
}

// Replays one journal file into `state`: a torn tail is cut, damage refuses
// the open (or is cut, with a copy kept, under `repair`). Returns the size
// of its good part.
std::size_t Store::RecoverJournal(const std::string& path, std::map<std::string, std::string>& state,
                                  bool sealed) {
  std::string journal = ReadFileOrThrow(path);
  Replayed r = Replay(journal, &state);
  std::size_t good = r.end;
  report_.records += r.records;
  if (good == journal.size()) return good;
  // Zeros to the end of the active journal: blocks allocated ahead of the
  // writes (StoreOptions::preallocate_bytes) that no group reached. Neither
  // torn nor damage: cut without a word. A sealed segment was cut to its
  // last group before it was sealed: zeros there are a lost sector (damage).
  bool zeros = !sealed && std::all_of(journal.begin() + static_cast<std::ptrdiff_t>(good), journal.end(),
                           [](char c) { return c == 0; });
  if (zeros) {
    CutFile(path, good);
    return good;
  }
  // Torn tail or damage? Valid records after the bad one that include a
  // finished group mean acknowledged data lies beyond it. A journal
  // written before groups were marked has no 'C' at all: any valid
  // record after the bad one then counts as acknowledged. A sealed
  // segment was complete and on disk before it was sealed: any bad record
  // in it is damage.
  auto after = ValidAfter(journal, good);
  bool marked = r.commits > 0 || (after && after->second.commits > 0);
  bool damage = sealed || (after && (!marked || after->second.commits > 0));
  std::string detail;
  if (damage) {
    std::string what = !after ? r.why + " in a sealed segment, whose every group was acknowledged"
                              : r.why + "; " + std::to_string(after->second.records) + " record(s) in " +
                                    std::to_string(journal.size() - after->first) + " byte(s) from offset " +
                                    std::to_string(after->first) + " follow it" +
                                    (after->second.commits > 0
                                         ? " (" + std::to_string(after->second.commits) + " acknowledged group(s))"
                                         : "");
    if (!options_.repair) {
      throw std::runtime_error(path + " is damaged: " + what +
                               ". Nothing was changed. Start with --repair-journal to cut the journal there "
                               "(those records are lost; the damaged file is kept), or restore a backup.");
    }
    std::string copy = path + ".damaged-" +
                       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
    std::error_code ec;
    std::filesystem::copy_file(path, copy, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) throw std::runtime_error("keep a copy of the damaged journal as " + copy + ": " + ec.message());
    report_.repaired = true;
    detail = "damaged, cut (a copy is " + copy + "): " + what;
  } else {
    detail = r.why;
  }
  report_.detail = report_.detail.empty() ? detail : report_.detail + "; " + detail;
  report_.truncated_bytes += journal.size() - good;
  CutFile(path, good);
  return good;
}

void Store::Recover() {
  std::string snapshot = ReadFileOrThrow(dir_ + "/snapshot");
  Replayed snap = Replay(snapshot, &recovered_);
  if (snap.end != snapshot.size()) {
    // A snapshot is renamed into place only when complete, so this is disk
    // corruption: refuse to start rather than lose acknowledged state.
    throw std::runtime_error(dir_ + "/snapshot: " + snap.why);
  }
  snapshot_bytes_ = snapshot.size();
  std::string().swap(snapshot);
  std::filesystem::remove(dir_ + "/snapshot.tmp");  // a compaction the last run did not finish
  // A sealed segment the last run did not fold in (possibly already in the
  // snapshot: replaying it again changes nothing), then the active journal.
  const std::string sealed_path = dir_ + "/journal.old";
  if (std::filesystem::exists(sealed_path)) {
    RecoverJournal(sealed_path, recovered_, true);
    sealed_ = true;  // the compactor folds it in first thing
  }
  const std::string journal_path = dir_ + "/journal";
  std::size_t good = std::filesystem::exists(journal_path) ? RecoverJournal(journal_path, recovered_, false) : 0;
  journal_fd_ = ::open(journal_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (journal_fd_ < 0) throw std::runtime_error(Errno(journal_path));
  ::lseek(journal_fd_, static_cast<off_t>(good), SEEK_SET);
  journal_bytes_ = good;
  journal_allocated_ = good;
  if (journal_bytes_ == 0) {
    if (auto err = MarkJournal()) throw std::runtime_error(*err);
    if (!SyncDir(dir_)) throw std::runtime_error(Errno("fsync " + dir_));
  }
}

// A journal starts with a commit record (group 0): a journal of this
// format always has one, so recovery can tell its torn last group from an
// older journal's damage.
std::optional<std::string> Store::MarkJournal() {
  std::string mark = EncodeCommit(0);
  if (!WriteAll(journal_fd_, mark)) return Errno("journal write");
  if (options_.sync && ::fdatasync(journal_fd_) != 0) return Errno("journal fdatasync");
  journal_bytes_ = mark.size();
  journal_allocated_ = journal_bytes_;
  preallocate_retry_at_ = 0;
  return std::nullopt;
}

// Writer thread: blocks for the journal up to `need` bytes and beyond, a
// whole number of StoreOptions::preallocate_bytes. Failing (a full disk, a
// file system without fallocate) changes nothing: groups extend the file
// as they are written, and it is tried again a chunk later.
void Store::Preallocate(std::size_t need) {
  const std::size_t chunk = options_.preallocate_bytes;
  const std::size_t target = (need + chunk - 1) / chunk * chunk;
  if (::fallocate(journal_fd_, 0, static_cast<off_t>(journal_allocated_),
                  static_cast<off_t>(target - journal_allocated_)) == 0) {
    journal_allocated_ = target;
    return;
  }
  preallocate_retry_at_ = journal_bytes_ + chunk;
}

// Writer thread (or after it): the journal file ends at its last group
// (with `durable` and StoreOptions::sync, a cut is flushed). Its size is
// asked, not assumed: a failed fallocate may still have grown it (ext4
// allocates in pieces and moves the size after each). False when it could
// not be cut.
bool Store::CutToLastGroup(bool durable) {
  if (struct stat st {}; ::fstat(journal_fd_, &st) == 0) {
    journal_allocated_ = std::max(journal_allocated_, static_cast<std::size_t>(st.st_size));
  }
  if (journal_allocated_ <= journal_bytes_) return true;
  if (::ftruncate(journal_fd_, static_cast<off_t>(journal_bytes_)) != 0) return false;
  journal_allocated_ = journal_bytes_;
  return !durable || !options_.sync || ::fdatasync(journal_fd_) == 0;
}

void Store::Commit(std::vector<Op> ops, Done done) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (queue_.empty()) queue_since_ = std::chrono::steady_clock::now();
    queue_.push_back({std::move(ops), std::move(done)});
    ++enqueued_;
    // The writer waits only for a first record, or lingers for a full
    // group: waking it for every record would cost a context switch each.
    wake = queue_.size() == 1 || queue_.size() >= options_.linger_records;
  }
  if (wake) cv_.notify_one();
}

void Store::Linger(bool on) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (lingering_ == on) return;
    lingering_ = on;
    // Only a queued group can be lingering: a writer that waits for a
    // first record is not woken for nothing.
    wake = !on && !queue_.empty();
  }
  if (wake) cv_.notify_one();
}

void Store::Flush() {
  std::unique_lock lock(mu_);
  std::uint64_t target = enqueued_;
  ++flushing_;  // a lingering group is written now
  cv_.notify_one();
  flushed_cv_.wait(lock, [&] { return written_ >= target; });
  --flushing_;
}

bool Store::WaitCompacted(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return compacted_cv_.wait_for(lock, timeout, [&] { return !sealed_ || stop_; }) && !sealed_;
}

std::uint64_t Store::groups_written() const {
  std::lock_guard lock(mu_);
  return groups_;
}

std::uint64_t Store::compactions() const {
  std::lock_guard lock(mu_);
  return compactions_;
}

std::string Store::compaction_error() const {
  std::lock_guard lock(mu_);
  return compaction_error_;
}

void Store::Run() {
  // Swapped with the queue each round and cleared after: the queue keeps
  // the capacity of earlier groups instead of growing from empty each time.
  std::vector<Pending> group;
  while (true) {
    group.clear();
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) return;
      if (lingering_ && options_.linger.count() > 0) {
        cv_.wait_until(lock, queue_since_ + options_.linger, [&] {
          return stop_ || !lingering_ || flushing_ > 0 || queue_.size() >= options_.linger_records;
        });
      }
      group.swap(queue_);
    }
    // One write and one fdatasync for everything that queued meanwhile.
    std::string buf;
    for (const auto& p : group) {
      for (const auto& op : p.ops) buf += EncodeRecord(op);
    }
    buf += EncodeCommit(++group_seq_);  // the group ends here: what follows a torn write is not ours
    // Not into a journal that could not be given back its name after a
    // failed seal: it is read as a sealed segment, where zeros are damage.
    if (options_.preallocate_bytes > 0 && !seal_broken_ && journal_bytes_ + buf.size() > journal_allocated_ &&
        journal_bytes_ >= preallocate_retry_at_) {
      Preallocate(journal_bytes_ + buf.size());
    }
    std::optional<std::string> error;
    if (!WriteAll(journal_fd_, buf)) {
      error = Errno("journal write");
    } else if (options_.sync && ::fdatasync(journal_fd_) != 0) {
      error = Errno("journal fdatasync");
    }
    if (!error) {
      journal_bytes_ += buf.size();
      journal_allocated_ = std::max(journal_allocated_, journal_bytes_);
    } else {
      // Drop whatever part of the group reached the file: it was never
      // acknowledged, and a later group must not follow a torn record.
      (void)::ftruncate(journal_fd_, static_cast<off_t>(journal_bytes_));
      ::lseek(journal_fd_, static_cast<off_t>(journal_bytes_), SEEK_SET);
      journal_allocated_ = journal_bytes_;
    }
    for (auto& p : group) {
      if (p.done) p.done(error);
    }
    bool seal = false;
    {
      std::lock_guard lock(mu_);
      seal = !error && !sealed_ && !seal_broken_ && journal_bytes_ > options_.compact_after_bytes &&
             journal_bytes_ > snapshot_bytes_;
    }
    if (seal) Seal();  // before Flush() returns: a caller that flushed sees the segment sealed
    {
      std::lock_guard lock(mu_);
      written_ += group.size();
      ++groups_;
    }
    flushed_cv_.notify_all();
  }
}

// Writer thread: the journal becomes journal.old, a new journal starts, and
// the compactor is told. On failure nothing changes and writes go on.
void Store::Seal() {
  const std::string journal = dir_ + "/journal", sealed = dir_ + "/journal.old";
  // A sealed segment ends at its last group: whatever follows it goes,
  // durably, before it takes the name.
  if (!CutToLastGroup(/*durable=*/true)) return;
  if (::rename(journal.c_str(), sealed.c_str()) != 0) return;
  int previous = journal_fd_;
  std::size_t previous_bytes = journal_bytes_;
  journal_fd_ = ::open(journal.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  // Both names durable before a group is written to the new journal: else a
  // power loss could leave `journal` naming the old file, and groups
  // acknowledged from the new one would be lost.
  if (journal_fd_ >= 0 && !MarkJournal() && SyncDir(dir_)) {
    ::close(previous);
    {
      std::lock_guard lock(mu_);
      sealed_ = true;
    }
    compact_cv_.notify_one();
    return;
  }
  // No new journal (a full disk, say): go on with the old one, under its
  // old name if it can have it back. If not, it goes on as journal.old,
  // which recovery reads too; it is never sealed again in this run.
  if (journal_fd_ >= 0) {
    ::close(journal_fd_);
    ::unlink(journal.c_str());
  }
  journal_fd_ = previous;
  journal_bytes_ = previous_bytes;
  journal_allocated_ = previous_bytes;  // cut above
  preallocate_retry_at_ = 0;
  if (::rename(sealed.c_str(), journal.c_str()) != 0) seal_broken_ = true;
  SyncDir(dir_);
}

void Store::RunCompactor() {
  // Background work: on a busy machine the io thread and the journal writer
  // go first (a compaction at a million reservations takes about a second
  // of CPU; at the same priority it delayed commits by tens of ms). Linux
  // gives each thread its own nice value; failing changes nothing.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kCompactorNice);
  std::unique_lock lock(mu_);
  std::chrono::milliseconds backoff(1000);
  while (true) {
    compact_cv_.wait(lock, [&] { return stop_ || sealed_; });
    if (stop_) {
      compacted_cv_.notify_all();
      return;
    }
    lock.unlock();
    if (options_.before_compaction) options_.before_compaction();
    auto began = std::chrono::steady_clock::now();
    auto err = Compact();
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began);
    lock.lock();
    if (stop_) {
      compacted_cv_.notify_all();
      return;
    }
    if (err) {
      // Retried with backoff (1 s doubling to a minute): a full disk is not
      // rewritten a snapshot every second. Meanwhile the journal is not
      // sealed again and grows; nothing acknowledged is at risk.
      if (compaction_error_ != *err) {
        spdlog::warn("store: compaction failed: {} (retried; the journal grows meanwhile, nothing is lost)", *err);
      }
      compaction_error_ = *err;
      compact_cv_.wait_for(lock, backoff, [&] { return stop_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(60'000));
      continue;
    }
    backoff = std::chrono::milliseconds(1000);
    if (!compaction_error_.empty()) spdlog::info("store: compaction works again");
    compaction_error_.clear();
    sealed_ = false;
    ++compactions_;
    spdlog::info("store: journal segment folded into the snapshot in {} ms", took.count());
    compacted_cv_.notify_all();
    lock.unlock();
    ReturnFreedMemory();  // what the io thread freed since: without it RSS stays 25% higher
    lock.lock();
  }
}

// Compactor thread: snapshot.tmp = the snapshot's records for keys the
// sealed segment does not touch, copied as they are, then the segment's
// last word on the keys it does; fsync, renamed over the snapshot, then the
// segment goes. Memory: the segment's keys, not the state.
std::optional<std::string> Store::Compact() {
  const std::string sealed_path = dir_ + "/journal.old", snap_path = dir_ + "/snapshot",
                    tmp = dir_ + "/snapshot.tmp";
  // The whole segment, read without error and ending in a commit record,
  // or no compaction: it is removed at the end. `last` maps each key it
  // touches to its last record there, as a view of the segment's bytes
  // (empty for a delete), with no copy. The segment and the nodes live in
  // pages of their own, unmapped at the end: nothing of theirs stays in the
  // heap.
  PageResource pages;
  std::pmr::string sealed(&pages);
  if (auto err = ReadFile(sealed_path, sealed)) return err;
  std::pmr::monotonic_buffer_resource nodes(std::size_t{1} << 20, &pages);
  std::pmr::map<std::string_view, std::string_view, std::less<>> last(&nodes);
  {
    std::string why;
    char last_op = 0;
    for (std::size_t off = 0; off < sealed.size();) {
      auto rec = ReadRecord(sealed, off, &why);
      if (!rec) return sealed_path + ": " + why;
      if (rec->op == Op::kPut) {
        last.insert_or_assign(rec->key, std::string_view(sealed).substr(off, rec->size));
      } else if (rec->op == Op::kDelete) {
        last.insert_or_assign(rec->key, std::string_view());
      }
      last_op = rec->op;
      off += rec->size;
    }
    if (last_op != 'C') return sealed_path + ": does not end with a commit record; not folded in";
  }
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) return Errno(tmp);
  std::size_t written = 0;
  std::string pending;
  auto next_new = last.begin();  // the segment's next key to merge in
  auto flush = [&] {
    bool ok = WriteAll(out, pending);
    written += pending.size();
    pending.clear();
    return ok;
  };
  auto fail = [&](std::string why) -> std::optional<std::string> {
    ::close(out);
    ::unlink(tmp.c_str());
    return why;
  };
  int in = ::open(snap_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0 && errno != ENOENT) return fail(Errno(snap_path));
  if (in >= 0) {
    std::string buf;
    std::size_t pos = 0;
    bool eof = false;
    while (true) {
      std::size_t avail = buf.size() - pos;
      bool whole = avail >= kHeader && (GetU32(buf.data() + pos) > kMaxRecord ||  // ReadRecord says why
                                        avail >= kHeader + GetU32(buf.data() + pos));
      if (!whole) {
        if (eof) break;
        buf.erase(0, pos);
        pos = 0;
        char chunk[1 << 16];
        ssize_t n = ::read(in, chunk, sizeof chunk);
        if (n < 0) {
          ::close(in);
          return fail(Errno(snap_path));
        }
        if (n == 0) eof = true;
        buf.append(chunk, static_cast<std::size_t>(n));
        {
          std::lock_guard lock(mu_);
          if (stop_) {
            ::close(in);
            return fail("stopped");
          }
        }
        continue;
      }
      std::string why;
      auto rec = ReadRecord(buf, pos, &why);
      if (!rec) {
        ::close(in);
        return fail(snap_path + ": " + why);
      }
      // The segment's keys merged in: the snapshot's keys ascend (a
      // snapshot from before they did still comes out whole, each key once).
      for (; next_new != last.end() && next_new->first < rec->key; ++next_new) pending += next_new->second;
      if (!last.contains(rec->key)) pending.append(buf, pos, rec->size);
      pos += rec->size;
      if (pending.size() >= (1 << 20) && !flush()) {
        ::close(in);
        return fail(Errno(tmp));
      }
    }
    ::close(in);
    if (pos != buf.size()) return fail(snap_path + ": torn record at its end");
  }
  for (; next_new != last.end(); ++next_new) pending += next_new->second;  // a delete's is empty
  if (!flush() || ::fsync(out) != 0) return fail(Errno(tmp));
  ::close(out);
  if (::rename(tmp.c_str(), snap_path.c_str()) != 0) return Errno("snapshot");
  // The new snapshot's name durable before the segment goes.
  if (!SyncDir(dir_)) return Errno("fsync " + dir_);
  // The snapshot now holds the segment; should the unlink not reach the
  // disk, replaying the segment again at the next start changes nothing.
  ::unlink(sealed_path.c_str());
  (void)SyncDir(dir_);
  std::lock_guard lock(mu_);
  snapshot_bytes_ = written;
  return std::nullopt;
}

}  // namespace mm::store
