// The journal on a real file system: reopen, torn tail, corrupt record,
// group commit, compaction, and kill -9 of a writer mid-stream.

#include "operator/store/store.h"

#include "operator/store/intent_log.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

namespace mm::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mm-store-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Kill9Round(int round, std::size_t kill_after_bytes, std::map<std::string, bool>& acked);
  std::string dir() const { return dir_.string(); }
  std::size_t JournalSize() const { return fs::file_size(dir_ / "journal"); }
  void AppendRaw(const std::string& bytes) {
    std::ofstream out(dir_ / "journal", std::ios::binary | std::ios::app);
    out << bytes;
  }
  fs::path dir_;
};

TEST_F(StoreTest, PutsAndDeletesSurviveReopen) {
  {
    Store s(dir());
    EXPECT_TRUE(s.recovered().empty());
    s.Commit({{Op::kPut, "pool/a", "1"}, {Op::kPut, "pool/b", "2"}});
    s.Commit({{Op::kDelete, "pool/a", ""}, {Op::kPut, "pool/b", "3"}});
    s.Flush();
  }
  Store s(dir());
  EXPECT_EQ(s.recovered(), (std::map<std::string, std::string>{{"pool/b", "3"}}));
  EXPECT_EQ(s.report().records, 4u);
  EXPECT_EQ(s.report().truncated_bytes, 0u);
}

// Replay applies a file's records sorted by key (a journal's keys come in
// arrival order): the state must be that of the ops in file order, with a
// key put, deleted and put again within a journal and across a snapshot.
// The keys of the records in a snapshot file, in file order.
std::vector<std::string> KeysOf(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto u32 = [&](std::size_t at) {  // little-endian, as the store writes
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(data[at + i]);
    return v;
  };
  std::vector<std::string> keys;
  for (std::size_t off = 0; off + 8 <= data.size();) {
    std::uint32_t len = u32(off);
    if (len < 5 || off + 8 + len > data.size()) break;
    keys.push_back(data.substr(off + 13, u32(off + 9)));
    off += 8 + len;
  }
  return keys;
}

TEST_F(StoreTest, ReplayEndsInTheStateOfTheOpsInFileOrder) {
  std::mt19937 rng(7);
  std::map<std::string, std::string> model;
  auto groups = [&](Store& s, int from, int to) {
    for (int g = from; g < to; ++g) {
      std::vector<Op> ops;
      for (int i = 0; i < 5; ++i) {
        std::string key = "k" + std::to_string(rng() % 60);
        if (rng() % 3 == 0) {
          ops.push_back({Op::kDelete, key, ""});
          model.erase(key);
        } else {
          std::string value = std::to_string(g * 10 + i);
          ops.push_back({Op::kPut, key, value});
          model[key] = value;
        }
      }
      s.Commit(std::move(ops));
    }
    s.Flush();
  };
  {
    StoreOptions small;
    small.compact_after_bytes = 4096;
    Store s(dir(), small);
    for (int from = 0; from < 200; from += 50) {  // into a snapshot, compaction after compaction
      groups(s, from, from + 50);
      ASSERT_TRUE(s.WaitCompacted(10s));
    }
    EXPECT_GE(s.compactions(), 2u);
  }
  // Compactions merge the segment's keys in: a snapshot's keys ascend, and
  // a restart applies them as read.
  auto keys = KeysOf(dir_ / "snapshot");
  EXPECT_FALSE(keys.empty());
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end()) << "a key twice";
  {
    Store s(dir());  // 8 MiB before a compaction: these stay in the journal
    groups(s, 200, 400);
  }
  ASSERT_TRUE(fs::exists(dir_ / "snapshot"));
  Store s(dir());
  EXPECT_GE(s.report().records, 1000u);
  EXPECT_EQ(s.recovered(), model);
}

TEST_F(StoreTest, TornTailIsTruncatedAndLaterWritesAreReadable) {
  {
    Store s(dir());
    s.Commit({{Op::kPut, "k1", "v1"}});
    s.Flush();
  }
  std::size_t good = JournalSize();
  std::string rec = Store::EncodeRecord({Op::kPut, "k2", "a value that never fully landed"});
  AppendRaw(rec.substr(0, rec.size() / 2));
  {
    Store s(dir());
    EXPECT_EQ(s.recovered(), (std::map<std::string, std::string>{{"k1", "v1"}}));
    EXPECT_EQ(s.report().truncated_bytes, rec.size() / 2);
    EXPECT_NE(s.report().detail.find("torn"), std::string::npos);
    EXPECT_EQ(JournalSize(), good);
    s.Commit({{Op::kPut, "k3", "v3"}});
    s.Flush();
  }
  Store s(dir());
  EXPECT_EQ(s.recovered().size(), 2u);
  EXPECT_EQ(s.recovered().at("k3"), "v3");
}

// One flipped byte in an acknowledged group, with acknowledged groups after
// it: damage, not a torn tail. Nothing is dropped silently: the store
// refuses to open, naming the offset and what follows; repair cuts there
// and keeps the damaged file.
TEST_F(StoreTest, DamageBeforeAcknowledgedGroupsStopsTheStartAndRepairCutsThere) {
  {
    Store s(dir());
    s.Commit({{Op::kPut, "k1", "v1"}});
    s.Flush();
    s.Commit({{Op::kPut, "k2", "v2"}});
    s.Flush();
    s.Commit({{Op::kPut, "k3", "v3"}});
    s.Flush();
  }
  std::size_t rec = Store::EncodeRecord({Op::kPut, "k1", "v1"}).size();
  std::size_t k2 = Store::EncodeCommit(0).size() + rec + Store::EncodeCommit(1).size();
  {
    std::fstream f(dir_ / "journal", std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(k2 + 10));  // a payload byte of k2's record
    f.put('X');
  }
  std::size_t before = JournalSize();
  try {
    Store s(dir());
    ADD_FAILURE() << "a damaged journal opened";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("is damaged: corrupt record (CRC mismatch) at offset " + std::to_string(k2)), std::string::npos)
        << what;
    EXPECT_NE(what.find("acknowledged group(s)"), std::string::npos) << what;
    EXPECT_NE(what.find("--repair-journal"), std::string::npos) << what;
  }
  EXPECT_EQ(JournalSize(), before) << "refusing changes nothing";
  Store repaired(dir(), {.repair = true});
  EXPECT_TRUE(repaired.report().repaired);
  EXPECT_EQ(repaired.recovered(), (std::map<std::string, std::string>{{"k1", "v1"}}));
  EXPECT_EQ(JournalSize(), k2);
  bool kept = false;
  for (const auto& e : fs::directory_iterator(dir_)) {
    kept = kept || (e.path().filename().string().starts_with("journal.damaged-") && fs::file_size(e.path()) == before);
  }
  EXPECT_TRUE(kept) << "the damaged journal is kept";
}

// The journal's blocks are allocated ahead of its writes: while the store
// runs the file is longer than its groups; a clean stop cuts it back.
TEST_F(StoreTest, JournalIsPreallocatedWhileOpenAndCutOnAcleanStop) {
  std::size_t logical = 0;
  {
    Store s(dir());
    s.Commit({{Op::kPut, "k1", "v1"}});
    s.Flush();
    logical = Store::EncodeCommit(0).size() + Store::EncodeRecord({Op::kPut, "k1", "v1"}).size() +
              Store::EncodeCommit(1).size();
    EXPECT_EQ(JournalSize(), StoreOptions{}.preallocate_bytes) << "allocated a chunk ahead";
  }
  EXPECT_EQ(JournalSize(), logical) << "a clean stop leaves no zeros";
  {
    Store off(dir(), {.preallocate_bytes = 0});
    off.Commit({{Op::kPut, "k2", "v2"}});
    off.Flush();
    EXPECT_EQ(JournalSize(), logical + Store::EncodeRecord({Op::kPut, "k2", "v2"}).size() + Store::EncodeCommit(1).size());
  }
}

// What a kill -9 leaves: groups, then preallocated zeros. Cut without a
// report; every record kept. (In a sealed segment, cut to its last group
// before it is sealed, zeros are damage: EveryCrashPointOfACompactionRecovers.)
TEST_F(StoreTest, PreallocatedZerosAreCutWithoutAReport) {
  {
    Store s(dir());
    s.Commit({{Op::kPut, "k1", "v1"}});
    s.Commit({{Op::kPut, "k2", "v2"}});
    s.Flush();
  }
  std::size_t good = JournalSize();
  AppendRaw(std::string(1 << 20, '\0'));
  {
    Store s(dir());
    EXPECT_EQ(s.recovered(), (std::map<std::string, std::string>{{"k1", "v1"}, {"k2", "v2"}}));
    EXPECT_EQ(s.report().truncated_bytes, 0u);
    EXPECT_EQ(s.report().detail, "");
    EXPECT_FALSE(s.report().repaired);
    EXPECT_EQ(JournalSize(), good);
  }
  // A group torn mid-record before the zeros is still a torn tail: reported.
  std::string rec = Store::EncodeRecord({Op::kPut, "k3", "a value that never fully landed"});
  good = JournalSize();
  AppendRaw(rec.substr(0, rec.size() / 2) + std::string(1 << 16, '\0'));
  Store s(dir());
  EXPECT_EQ(s.recovered().size(), 2u);
  EXPECT_EQ(s.report().truncated_bytes, rec.size() / 2 + (1 << 16));
  EXPECT_NE(s.report().detail.find("at offset " + std::to_string(good)), std::string::npos) << s.report().detail;
  EXPECT_FALSE(s.report().repaired);
  EXPECT_EQ(JournalSize(), good);
}

// A file longer than the store knows (a failed fallocate can still grow
// it): a seal asks the file's size and cuts to the last group, so the
// sealed segment folds in and the next start opens.
TEST_F(StoreTest, ASealCutsZerosTheStoreDidNotAllocate) {
  StoreOptions opts;
  opts.compact_after_bytes = 4096;
  opts.preallocate_bytes = 0;  // the store believes the file ends at its last group
  {
    Store s(dir(), opts);
    s.Commit({{Op::kPut, "k0", "v0"}});
    s.Flush();
    fs::resize_file(dir_ / "journal", JournalSize() + 65536);  // zeros the store did not allocate
    for (int i = 1; i <= 100; ++i) s.Commit({{Op::kPut, "k" + std::to_string(i), std::string(50, 'v')}});
    s.Flush();
    ASSERT_TRUE(s.WaitCompacted(10s)) << s.compaction_error();
    EXPECT_GT(s.compactions(), 0u);
    EXPECT_TRUE(s.compaction_error().empty()) << s.compaction_error();
  }
  Store s(dir(), opts);
  EXPECT_EQ(s.recovered().size(), 101u);
  EXPECT_EQ(s.report().truncated_bytes, 0u);
}

// A torn last write may keep a later sector and lose an earlier one: valid
// records after garbage, but of a group that never finished. That is a
// torn tail, cut as before.
TEST_F(StoreTest, ATornLastGroupWithValidRecordsAfterGarbageIsCut) {
  {
    Store s(dir());
    s.Commit({{Op::kPut, "k1", "v1"}});
    s.Flush();
  }
  std::size_t good = JournalSize();
  std::string garbage(100, '\x5a');
  AppendRaw(garbage + Store::EncodeRecord({Op::kPut, "k2", "never acknowledged"}));
  Store s(dir());
  EXPECT_EQ(s.recovered(), (std::map<std::string, std::string>{{"k1", "v1"}}));
  EXPECT_FALSE(s.report().repaired);
  EXPECT_EQ(JournalSize(), good);
}

// 150 journals, each with one random corruption (a flipped bit, a smashed
// range, garbage spliced in): the store never crashes, never opens with a
// wrong value, and opens without repair only when nothing acknowledged
// follows the damage; with repair it keeps every group before it.
TEST_F(StoreTest, OneHundredFiftyCorruptedJournals) {
  unsigned seed = static_cast<unsigned>(std::random_device{}());
  if (const char* s = std::getenv("MM_STORE_SEED")) seed = static_cast<unsigned>(std::strtoul(s, nullptr, 10));
  SCOPED_TRACE("MM_STORE_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  // The journal: groups of puts of unique keys, each group then its commit.
  std::string journal = Store::EncodeCommit(0);
  std::vector<std::size_t> group_start;                        // offset of each group's first record
  std::vector<std::vector<std::pair<std::string, std::string>>> groups;
  for (int g = 0; g < 60; ++g) {
    group_start.push_back(journal.size());
    groups.emplace_back();
    int n = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) {
      std::string key = "instance/eu/" + std::to_string(g) + "-" + std::to_string(i);
      std::string value(5 + rng() % 40, static_cast<char>('a' + g % 26));
      journal += Store::EncodeRecord({Op::kPut, key, value});
      groups.back().emplace_back(key, value);
    }
    journal += Store::EncodeCommit(static_cast<std::uint64_t>(g + 1));
  }
  int refused = 0, opened = 0;
  for (int trial = 0; trial < 150; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    std::string bytes = journal;
    std::size_t at = rng() % bytes.size();
    std::size_t end = at + 1;  // the corrupted range [at, end)
    switch (trial % 3) {
      case 0: bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8))); break;
      case 1:
        end = std::min(bytes.size(), at + 1 + rng() % 64);
        for (std::size_t i = at; i < end; ++i) bytes[i] = static_cast<char>(bytes[i] ^ (1 + rng() % 255));
        break;
      case 2: bytes.insert(at, std::string(1 + rng() % 32, static_cast<char>(rng()))); end = at; break;
    }
    // Damage, not a torn tail, when the last group's commit record (which
    // acknowledged it) survives after the corrupted range.
    const std::size_t final_commit = journal.size() - Store::EncodeCommit(60).size();
    const bool acknowledged_after = end <= final_commit;
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "journal", std::ios::binary) << bytes;
    // The first group the corruption touches; every group before it is intact.
    std::size_t hit = 0;
    while (hit + 1 < group_start.size() && group_start[hit + 1] <= at) ++hit;
    auto intact = [&](const std::map<std::string, std::string>& m, std::size_t upto) {
      for (std::size_t g = 0; g < upto; ++g) {
        for (const auto& [k, v] : groups[g]) {
          auto it = m.find(k);
          if (it == m.end() || it->second != v) return false;
        }
      }
      for (const auto& [k, v] : m) {  // nothing with a wrong value
        bool known = false;
        for (const auto& grp : groups) {
          for (const auto& [gk, gv] : grp) known = known || (gk == k && gv == v);
        }
        if (!known) return false;
      }
      return true;
    };
    try {
      Store s(dir());
      ++opened;
      EXPECT_FALSE(acknowledged_after) << "opened although an acknowledged group follows the damage at " << at;
      EXPECT_TRUE(intact(s.recovered(), groups.size() - 1));
    } catch (const std::runtime_error& e) {
      ++refused;
      EXPECT_TRUE(acknowledged_after) << e.what();
      EXPECT_NE(std::string(e.what()).find("is damaged"), std::string::npos) << e.what();
      Store s(dir(), {.repair = true});
      EXPECT_TRUE(intact(s.recovered(), hit)) << "repair keeps every group before the damage";
    }
  }
  EXPECT_GT(refused, 100) << "most corruption lands before the last group";
  EXPECT_EQ(opened + refused, 150);
}

TEST_F(StoreTest, ConcurrentCommitsShareGroups) {
  Store s(dir());
  constexpr int kThreads = 8, kEach = 200;
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        s.Commit({{Op::kPut, "k" + std::to_string(t) + "-" + std::to_string(i), "v"}},
                 [&](std::optional<std::string> err) {
                   if (!err) acked++;
                 });
      }
    });
  }
  for (auto& th : threads) th.join();
  s.Flush();
  EXPECT_EQ(acked.load(), kThreads * kEach);
  EXPECT_LT(s.groups_written(), static_cast<std::uint64_t>(kThreads * kEach));
}

// Lingering: a group waits for linger_records (here 3, the window being
// far longer than the test) and is then written as one; before that,
// nothing of it is acknowledged.
TEST_F(StoreTest, ALingeringGroupIsWrittenWhenItHoldsLingerRecords) {
  StoreOptions opts;
  opts.linger = std::chrono::microseconds(60s);
  opts.linger_records = 3;
  // Before the store: its destructor may still run callbacks.
  std::atomic<int> acked{0};
  std::promise<void> all;
  auto done = [&](std::optional<std::string> err) {
    if (!err && ++acked == 3) all.set_value();
  };
  Store s(dir(), opts);
  s.Linger(true);
  std::uint64_t before = s.groups_written();
  s.Commit({{Op::kPut, "a", "1"}}, done);
  s.Commit({{Op::kPut, "b", "2"}}, done);
  std::this_thread::sleep_for(100ms);  // the writer lingers meanwhile
  EXPECT_EQ(acked.load(), 0) << "a lingering group is not acknowledged before it is written";
  s.Commit({{Op::kPut, "c", "3"}}, done);
  ASSERT_EQ(all.get_future().wait_for(20s), std::future_status::ready) << "the third record closes the group";
  s.Flush();  // the count moves just after the callbacks run
  EXPECT_EQ(s.groups_written() - before, 1u) << "three records, one group, one fdatasync";
}

// Linger(false) and Flush() write a lingering group at once; a lingering
// group that never fills is written when its window ends; a stop writes it
// too. (The window here, 60 s, is far longer than any bound below.)
TEST_F(StoreTest, LingerEndsWithItsWindowOrWhenTurnedOffOrFlushedOrAtStop) {
  StoreOptions opts;
  opts.linger = std::chrono::microseconds(60s);
  opts.linger_records = 100;
  std::promise<void> landed;  // before the store: its destructor may still run callbacks
  auto future = landed.get_future();
  std::chrono::steady_clock::time_point stopping;
  {
    Store s(dir(), opts);
    s.Linger(true);
    s.Commit({{Op::kPut, "a", "1"}}, [&](std::optional<std::string> err) {
      if (!err) landed.set_value();
    });
    EXPECT_EQ(future.wait_for(200ms), std::future_status::timeout) << "lingers";
    s.Linger(false);
    ASSERT_EQ(future.wait_for(20s), std::future_status::ready) << "Linger(false) writes it";

    s.Linger(true);
    auto flushing = std::chrono::steady_clock::now();
    s.Commit({{Op::kPut, "b", "2"}});
    s.Flush();
    EXPECT_LT(std::chrono::steady_clock::now() - flushing, 20s) << "Flush() writes a lingering group";

    s.Commit({{Op::kPut, "c", "3"}});
    stopping = std::chrono::steady_clock::now();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 20s) << "a stop writes a lingering group";
  opts.linger = std::chrono::microseconds(50ms);
  std::promise<void> windowed;
  Store s(dir(), opts);
  EXPECT_EQ(s.recovered(), (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  s.Linger(true);
  auto start = std::chrono::steady_clock::now();
  s.Commit({{Op::kPut, "d", "4"}}, [&](std::optional<std::string> err) {
    if (!err) windowed.set_value();
  });
  ASSERT_EQ(windowed.get_future().wait_for(20s), std::future_status::ready) << "the window ends the wait";
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms) << "not before the window";
}

TEST_F(StoreTest, CompactionKeepsStateAndShrinksTheJournal) {
  StoreOptions opts;
  opts.compact_after_bytes = 4096;
  {
    Store s(dir(), opts);
    for (int i = 0; i < 500; ++i) {
      s.Commit({{Op::kPut, "key" + std::to_string(i % 10), std::string(50, 'a' + i % 26)}});
    }
    s.Commit({{Op::kDelete, "key9", ""}});
    s.Flush();
    ASSERT_TRUE(s.WaitCompacted(10s)) << s.compaction_error();
    // Records written while that compaction ran stay in the new journal
    // (how many depends on the compactor's speed). One more group, written
    // with no compaction running, seals them if they passed the threshold.
    s.Commit({{Op::kPut, "key8", std::string(50, 'z')}});
    s.Flush();
    ASSERT_TRUE(s.WaitCompacted(10s)) << s.compaction_error();
    EXPECT_GT(s.compactions(), 0u);
    EXPECT_TRUE(s.compaction_error().empty()) << s.compaction_error();
    EXPECT_FALSE(fs::exists(dir_ / "journal.old"));
  }
  // Measured after the clean stop, which cuts the preallocated zeros.
  EXPECT_LE(JournalSize(), opts.compact_after_bytes + 100) << "500 records of 66 bytes went in";
  Store s(dir(), opts);
  EXPECT_EQ(s.recovered().size(), 9u);
  EXPECT_EQ(s.recovered().at("key0"), std::string(50, 'a' + 490 % 26));
  EXPECT_EQ(s.recovered().at("key8"), std::string(50, 'z'));
  EXPECT_TRUE(fs::exists(dir_ / "snapshot"));
}

// The compactor is held mid-compaction (a hook on its thread): commits go
// on, each acknowledged, and none waits for it.
TEST_F(StoreTest, CommitsGoOnWhileACompactionRuns) {
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  bool released_once = false;
  // Whatever fails below, the compactor is let go (else the store's
  // destructor would wait for it for ever).
  auto let_go = std::shared_ptr<void>(nullptr, [&](void*) {
    if (!released_once) release.set_value();
  });
  std::atomic<bool> first = true;
  StoreOptions opts;
  opts.compact_after_bytes = 4096;
  opts.before_compaction = [&] {
    if (!first.exchange(false)) return;
    entered.set_value();
    released.wait();
  };
  {
    Store s(dir(), opts);
    for (int i = 0; i < 100; ++i) s.Commit({{Op::kPut, "k" + std::to_string(i), std::string(60, 'x')}});
    ASSERT_EQ(entered.get_future().wait_for(10s), std::future_status::ready) << "no compaction started";
    // The writer sealed the journal and is free: 300 more groups land while
    // the compaction is held.
    std::atomic<int> acked = 0;
    auto more = std::async(std::launch::async, [&] {
      for (int i = 100; i < 400; ++i) {
        s.Commit({{Op::kPut, "k" + std::to_string(i), std::string(60, 'y')}}, [&](auto err) {
          if (!err) ++acked;
        });
        if (i % 10 == 0) s.Flush();
      }
      s.Flush();
    });
    EXPECT_EQ(more.wait_for(10s), std::future_status::ready) << "commits waited for the compaction";
    EXPECT_EQ(acked.load(), 300);
    EXPECT_EQ(s.compactions(), 0u);
    EXPECT_TRUE(fs::exists(dir_ / "journal.old"));
    release.set_value();
    released_once = true;
    more.wait();
    ASSERT_TRUE(s.WaitCompacted(10s)) << s.compaction_error();
    EXPECT_GE(s.compactions(), 1u);
  }
  Store s(dir(), opts);
  ASSERT_EQ(s.recovered().size(), 400u);
  EXPECT_EQ(s.recovered().at("k5"), std::string(60, 'x'));
  EXPECT_EQ(s.recovered().at("k399"), std::string(60, 'y'));
}

// Every state a crash can leave a compaction in, built by hand: the snapshot
// before or after the fold, the sealed segment there or gone, a half-written
// snapshot.tmp, no active journal yet. Each recovers to the same state.
TEST_F(StoreTest, EveryCrashPointOfACompactionRecovers) {
  auto records = [](std::vector<Op> ops, bool committed = true) {
    std::string out = Store::EncodeCommit(0);
    for (const auto& op : ops) out += Store::EncodeRecord(op);
    if (committed) out += Store::EncodeCommit(1);
    return out;
  };
  auto puts = [](std::vector<Op> ops) {
    std::string out;
    for (const auto& op : ops) out += Store::EncodeRecord(op);
    return out;
  };
  const std::string s0 = puts({{Op::kPut, "a", "1"}, {Op::kPut, "b", "2"}, {Op::kPut, "c", "3"}});
  const std::string s1 = puts({{Op::kPut, "c", "3"}, {Op::kPut, "a", "10"}, {Op::kPut, "d", "4"}});  // s0 + j1
  const std::string j1 = records({{Op::kPut, "a", "10"}, {Op::kDelete, "b", ""}, {Op::kPut, "d", "4"}});
  const std::string j2 = records({{Op::kPut, "d", "40"}, {Op::kPut, "b", "20"}});
  using M = std::map<std::string, std::string>;
  const M after_j1 = {{"a", "10"}, {"c", "3"}, {"d", "4"}};
  const M all = {{"a", "10"}, {"b", "20"}, {"c", "3"}, {"d", "40"}};
  struct Case {
    std::string desc, snapshot, sealed, journal, tmp;
    bool has_sealed, has_journal;
    M want;
  };
  std::vector<Case> cases = {
      {"sealed, no new journal yet", s0, j1, "", "", true, false, after_j1},
      {"sealed, new journal written", s0, j1, j2, "", true, true, all},
      {"compaction half-written", s0, j1, j2, s1.substr(0, 7), true, true, all},
      {"snapshot renamed, segment not yet removed", s1, j1, j2, "", true, true, all},
      {"compaction done", s1, "", j2, "", false, true, all},
      {"first seal ever: no snapshot yet", "", j1, j2, "", true, true,
       {{"a", "10"}, {"b", "20"}, {"d", "40"}}},
      {"sealed, the new journal only its mark", s0, j1, Store::EncodeCommit(0), "", true, true, after_j1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.desc);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "snapshot", std::ios::binary) << c.snapshot;
    if (c.has_sealed) std::ofstream(dir_ / "journal.old", std::ios::binary) << c.sealed;
    if (c.has_journal) std::ofstream(dir_ / "journal", std::ios::binary) << c.journal;
    if (!c.tmp.empty()) std::ofstream(dir_ / "snapshot.tmp", std::ios::binary) << c.tmp;
    {
      Store s(dir());
      EXPECT_EQ(s.recovered(), c.want);
      EXPECT_EQ(s.report().truncated_bytes, 0u);
      ASSERT_TRUE(s.WaitCompacted(10s)) << s.compaction_error();  // a sealed segment is folded in at open
      EXPECT_TRUE(s.compaction_error().empty()) << s.compaction_error();
      EXPECT_FALSE(fs::exists(dir_ / "journal.old"));
      EXPECT_FALSE(fs::exists(dir_ / "snapshot.tmp"));
    }
    Store again(dir());
    EXPECT_EQ(again.recovered(), c.want);
  }
  // A sealed segment was whole and on disk before it was sealed: a bad
  // record in it, even at its very end, is damage, and the store refuses to
  // open (a zeroed last sector decodes as a malformed record).
  for (const std::string& bad : {j1.substr(0, j1.size() - 3), j1 + std::string(16, '\0')}) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "snapshot", std::ios::binary) << s0;
    std::ofstream(dir_ / "journal.old", std::ios::binary) << bad;
    std::ofstream(dir_ / "journal", std::ios::binary) << j2;
    EXPECT_THROW(Store s(dir()), std::runtime_error);
    EXPECT_EQ(fs::file_size(dir_ / "journal.old"), bad.size()) << "changed nothing";
  }
}

TEST_F(StoreTest, CorruptSnapshotRefusesToOpen) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "snapshot", std::ios::binary) << "garbage!garbage!";
  EXPECT_THROW(Store s(dir()), std::runtime_error);
}

// A child commits keys and reports each acknowledgement on a pipe; it is
// killed with SIGKILL mid-stream. Every acknowledged key must be recovered.
// With a 16 KiB threshold the journal is sealed and compacted every few
// hundred records, so kills also land mid-seal and mid-compaction; five
// rounds on the same directory, each killed at a different point.
TEST_F(StoreTest, EveryAcknowledgedCommitSurvivesKill9) {
  std::map<std::string, bool> acked;  // every key acknowledged so far: present (put) or absent (deleted)
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Kill9Round(round, 4000 + round * 4000, acked);
    if (HasFatalFailure()) return;
  }
}

// The child puts r<round>-<i>, and every 10th commit also deletes the
// key put 5 commits before; it reports "<i>" per acknowledged commit.
void StoreTest::Kill9Round(int round, std::size_t kill_after_bytes, std::map<std::string, bool>& acked) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  StoreOptions opts;
  opts.compact_after_bytes = 16 * 1024;
  const std::string prefix = "r" + std::to_string(round) + "-";
  if (pid == 0) {
    close(fds[0]);
    Store s(dir(), opts);
    for (int i = 0; i < 100000; ++i) {
      std::vector<Op> ops = {{Op::kPut, prefix + std::to_string(i), "v"}};
      if (i % 10 == 9) ops.push_back({Op::kDelete, prefix + std::to_string(i - 5), ""});
      s.Commit(std::move(ops), [&, i](std::optional<std::string> err) {
        if (!err) {
          std::string line = std::to_string(i) + "\n";
          (void)!write(fds[1], line.data(), line.size());
        }
      });
      if (i % 64 == 0) usleep(100);
    }
    s.Flush();
    _exit(0);
  }
  close(fds[1]);
  std::string lines;
  char buf[4096];
  while (lines.size() < kill_after_bytes) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    lines.append(buf, static_cast<std::size_t>(n));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  close(fds[0]);
  std::printf("round %d: killed after %zu acknowledged bytes%s%s\n", round, lines.size(),
              fs::exists(dir_ / "journal.old") ? ", a sealed segment not folded in yet" : "",
              fs::exists(dir_ / "snapshot.tmp") ? ", a snapshot half-written" : "");
  auto last_nl = lines.rfind('\n');
  ASSERT_NE(last_nl, std::string::npos);
  lines.resize(last_nl + 1);
  // Acknowledgements come in commit order: commits 0..last were acknowledged.
  // A key whose delete is in a later commit may be either way (that commit
  // may be durable yet unreported): not checked.
  int last = -1;
  for (std::size_t at = 0; at < lines.size();) {
    auto nl = lines.find('\n', at);
    last = std::stoi(lines.substr(at, nl - at));
    at = nl + 1;
  }
  ASSERT_GT(last, 100);
  for (int i = 0; i <= last; ++i) {
    int deleted_by = i % 10 == 4 ? i + 5 : -1;  // commit i+5 (i+5 % 10 == 9) deletes key i
    if (deleted_by > last) continue;
    acked[prefix + std::to_string(i)] = deleted_by < 0;
  }
  Store s(dir(), opts);
  std::size_t present = 0;
  for (const auto& [key, want] : acked) {  // this round's keys and every earlier round's
    EXPECT_EQ(s.recovered().contains(key), want) << key;
    present += want;
  }
  EXPECT_GT(present, 100u);
}

// Intents are staged and written together: nothing reaches the file before
// Flush, everything after it, and a delete made while intents wait is
// written after them (the file keeps the order of the calls).
TEST_F(StoreTest, StagedIntentsReachTheFileTogetherAndInOrder) {
  fs::create_directories(dir_);
  const std::string path = dir() + "/intents";
  using Map = std::map<std::string, std::string>;
  {
    IntentLog log(path);
    log.Stage("intent/eu/a/alice", "alice");
    log.Stage("intent/eu/b/bob", "bob");
    EXPECT_EQ(fs::file_size(path), 0u) << "staged only";
    EXPECT_EQ(log.Flush(), std::nullopt);
    const auto written = fs::file_size(path);
    EXPECT_GT(written, 0u);
    EXPECT_EQ(log.Flush(), std::nullopt);
    EXPECT_EQ(fs::file_size(path), written) << "nothing staged, nothing written";
    log.Stage("intent/eu/a/carol", "carol");
    log.Remove("intent/eu/b/bob");  // waits behind carol's put
    log.Stage("intent/eu/a/dave", "dave");
    log.Remove("intent/eu/a/dave");  // put then delete, in that order
    EXPECT_EQ(fs::file_size(path), written);
    EXPECT_EQ(log.Flush(), std::nullopt);
  }  // the process ends with alice and carol in flight
  IntentLog reopened(path);
  EXPECT_EQ(reopened.recovered(), (Map{{"intent/eu/a/alice", "alice"}, {"intent/eu/a/carol", "carol"}}));
}

}  // namespace
}  // namespace mm::store
