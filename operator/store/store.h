#pragma once

// The embedded store: a key -> value map made durable by an append-only
// journal in the data dir, with group commit, torn-tail recovery, and
// compaction into a snapshot on a thread of its own.
//
// On disk: <dir>/snapshot, <dir>/journal.old (a sealed journal segment, while
// it is being folded into the snapshot) and <dir>/journal (the active
// segment), each a sequence of records
//   [u32 payload length][u32 CRC-32C of payload][payload]
// payload = [u8 op ('P' put, 'D' delete, 'C' commit)][u32 key length][key][value].
// Each group commit in the journal ends with a 'C' record (its value the
// group's number): what follows the last 'C' was never acknowledged.
// Recovery reads the snapshot, then journal.old, then the journal. A bad
// record with nothing valid after it, or with only records of an unfinished
// group after it, is a torn tail (the last write, never acknowledged): the
// journal is cut there. A bad record followed by a committed group is
// damage: acknowledged data lies beyond it, and the store refuses to open
// (naming the offset and what would be lost) unless `repair` says to cut
// there, keeping a copy of the damaged journal.
//
// Compaction never holds a commit: when the journal outgrows its threshold
// the writer seals it (renames it journal.old and starts a new journal: a
// rename, a create and an fdatasync), and the compactor thread writes a new
// snapshot from the old snapshot and the sealed segment, files to file,
// without the writer's help: no copy of the state is kept in memory for it.
// A crash at any point leaves files that recover to the same state (replaying
// a segment the snapshot already holds changes nothing).
//
// Thread-safety: every public method may be called from any thread. Commit
// callbacks run on the store's writer thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace mm::store {

struct Op {
  enum Kind : char { kPut = 'P', kDelete = 'D' };
  Kind kind = kPut;
  std::string key;
  std::string value;  // empty for deletes
};

struct RecoveryReport {
  std::size_t records = 0;          // journal records replayed (puts and deletes)
  std::size_t truncated_bytes = 0;  // torn tail (or, repaired, damage and what followed) dropped
  std::string detail;               // why, when something was dropped
  bool repaired = false;            // damage was cut (StoreOptions::repair)
};

struct StoreOptions {
  // Compact when the journal is larger than this and than the snapshot.
  std::size_t compact_after_bytes = 8 * 1024 * 1024;
  bool sync = true;  // fdatasync each group; off only in benchmarks
  // The journal's blocks are allocated this many bytes at a time
  // (fallocate) ahead of its writes, so a group's fdatasync need not write
  // a new file size (measured on this project's VMs: 64 -> 41 us of CPU and
  // 185 -> 135 us per 600-byte append and fdatasync). Past the last group
  // the file holds zeros, which recovery cuts without a word; a clean stop
  // and a seal cut them too. 0: off.
  std::size_t preallocate_bytes = 4 * 1024 * 1024;
  // Damage in the journal: cut there (losing what follows; the damaged
  // file is kept as journal.damaged-<unix time>) instead of refusing.
  bool repair = false;
  // Lingering (Linger(true): commits queue behind something else anyway):
  // a group waits up to `linger` from its first record, or until it holds
  // `linger_records`, before it is written and flushed. Fewer fdatasyncs
  // for the same records (Kafka's linger.ms, MySQL's
  // binlog_group_commit_sync_delay). 0: never.
  std::chrono::microseconds linger{1000};
  std::size_t linger_records = 64;
  // Tests only: runs on the compactor thread before each compaction.
  std::function<void()> before_compaction;
};

class Store {
 public:
  // Creates `dir` if needed, recovers, and starts the writer thread. Throws
  // std::runtime_error when the directory cannot be used.
  explicit Store(std::string dir, StoreOptions options = {});
  ~Store();  // flushes pending commits
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The state recovered at open (snapshot + journal), until released.
  const std::map<std::string, std::string>& recovered() const { return recovered_; }
  // Frees the recovered state (and gives the memory back to the system) on
  // a thread of its own: the caller has loaded it. recovered() is empty
  // at once.
  void ReleaseRecovered();
  const RecoveryReport& report() const { return report_; }

  // Queues ops; `done` runs once they are on disk (with the other ops that
  // joined the same group) or with an error message if the write failed.
  using Done = std::function<void(std::optional<std::string> error)>;
  void Commit(std::vector<Op> ops, Done done = nullptr);
  // Blocks until everything committed so far is durable (a lingering
  // group is written at once).
  void Flush();
  // While on, groups linger (StoreOptions::linger); turning it off writes
  // a lingering group at once. Any thread.
  void Linger(bool on);

  // Waits (up to `timeout`) until no sealed segment waits to be compacted;
  // false if one still does (tests).
  bool WaitCompacted(std::chrono::milliseconds timeout);

  // Counters for tests and metrics.
  std::uint64_t groups_written() const;
  std::uint64_t compactions() const;
  // Why the last compaction failed (it is retried), or empty.
  std::string compaction_error() const;

  // Encodes one record, and the record that ends group `group` (exposed
  // for tests that write torn, corrupt or damaged files).
  static std::string EncodeRecord(const Op& op);
  static std::string EncodeCommit(std::uint64_t group);
  // Replays records from `data` into `m`; returns the offset after the last
  // good one (`why` says what stopped it short).
  static std::size_t ReplayRecords(std::string_view data, std::map<std::string, std::string>& m,
                                   std::size_t& records, std::string& why);
  const std::string& dir() const { return dir_; }

 private:
  void Run();
  void Recover();
  std::size_t RecoverJournal(const std::string& path, std::map<std::string, std::string>& state, bool sealed);
  void Seal();
  void RunCompactor();
  std::optional<std::string> Compact();
  std::optional<std::string> MarkJournal();
  void Preallocate(std::size_t need);
  bool CutToLastGroup(bool durable);

  std::string dir_;
  StoreOptions options_;
  std::map<std::string, std::string> recovered_;
  RecoveryReport report_;
  int journal_fd_ = -1;            // writer thread only
  std::size_t journal_bytes_ = 0;  // writer thread only
  std::size_t journal_allocated_ = 0;  // writer thread only: the file's size, zeros past journal_bytes_
  std::size_t preallocate_retry_at_ = 0;  // writer thread only: after a failed fallocate
  bool seal_broken_ = false;       // writer thread only: a failed seal left no journal to return to

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable flushed_cv_;
  std::condition_variable compact_cv_;   // the compactor waits for a sealed segment
  std::condition_variable compacted_cv_;
  bool sealed_ = false;                  // journal.old exists and is not folded in yet
  std::size_t snapshot_bytes_ = 0;
  std::string compaction_error_;
  struct Pending {
    std::vector<Op> ops;
    Done done;
  };
  std::vector<Pending> queue_;
  std::chrono::steady_clock::time_point queue_since_;  // when queue_'s first record came
  bool lingering_ = false;
  int flushing_ = 0;  // Flush() callers waiting: no group lingers meanwhile
  std::uint64_t enqueued_ = 0, written_ = 0, groups_ = 0, compactions_ = 0;
  std::uint64_t group_seq_ = 0;  // writer thread only
  bool stop_ = false;
  std::thread writer_;
  std::thread compactor_;
  std::thread releaser_;  // frees the recovered state (ReleaseRecovered)
};

// CRC-32C (Castagnoli), as Boost.CRC computes it.
std::uint32_t Crc32c(std::string_view data);

}  // namespace mm::store
