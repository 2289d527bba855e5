#pragma once

// Reservation handshakes in flight, recorded before each
// POST /reservation/{id} and cleared once its outcome is journaled. After a
// crash, the recovered intents name the servers that may hold a slot that
// no journal record knows: the controller takes each as held until the
// server says otherwise, so a client is never given a second server.
//
// Records are written with write(2) and no fsync, in the journal's record
// format: an intent survives the process (kill -9, OOM kill), not the
// machine. Intents are staged and written together (Flush): the handshakes
// that start in one turn of the io loop cost one system call between them,
// not a disk flush, nor a system call, each.
//
// Not thread-safe: one owner (matchmakerd's io thread).

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace mm::store {

class IntentLog {
 public:
  // Opens (creating) `path` and recovers what it holds. Throws
  // std::runtime_error when the file cannot be used.
  explicit IntentLog(std::string path);
  ~IntentLog();
  IntentLog(const IntentLog&) = delete;
  IntentLog& operator=(const IntentLog&) = delete;

  // key -> value, as left by the previous process.
  const std::map<std::string, std::string>& recovered() const { return recovered_; }
  // Records an intent in memory; on disk at the next Flush, which must
  // succeed before its handshake starts.
  void Stage(const std::string& key, const std::string& value);
  // Writes what was staged (and the deletes since) with one write(2); an
  // error message when it could not be written, and then the intents
  // staged since the last Flush are dropped (their handshakes must not
  // start; a key that was live before stays). Nothing staged: nothing
  // written.
  std::optional<std::string> Flush();
  // The intent is settled. `record` false skips the delete record: for an
  // intent whose outcome the journal holds durably, recovery finds the same
  // answer there, so a leftover record is harmless (it saves a system call
  // per allocation). With `record`, the delete is written even for a key
  // already settled that way. While intents are staged, the delete record
  // waits with them (the file keeps the order of the calls).
  void Remove(const std::string& key, bool record = true);

 private:
  std::string path_;
  int fd_ = -1;
  std::size_t bytes_ = 0;
  std::unordered_map<std::string, std::string> live_;  // key -> value
  std::string pending_;                                // records not yet written
  std::vector<std::string> staged_;                    // keys new to live_ since the last Flush

  void Clear();    // no live intent: the file back to empty
  void Rewrite();  // the live intents only, into a fresh file
  std::map<std::string, std::string> recovered_;
};

}  // namespace mm::store
