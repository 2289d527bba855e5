// The journal on a real file system: reopen, torn tail, corrupt record,
// group commit, compaction, and kill -9 of a writer mid-stream.

#include "operator/store/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace mm::store {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mm-store-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
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

TEST_F(StoreTest, CorruptRecordStopsReplayThere) {
  {
    Store s(dir());
    s.Commit({{Op::kPut, "k1", "v1"}});
    s.Commit({{Op::kPut, "k2", "v2"}});
    s.Commit({{Op::kPut, "k3", "v3"}});
    s.Flush();
  }
  std::size_t rec = Store::EncodeRecord({Op::kPut, "k1", "v1"}).size();
  {
    // Flip one payload byte of the second record.
    std::fstream f(dir_ / "journal", std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(rec + 10));
    f.put('X');
  }
  Store s(dir());
  EXPECT_EQ(s.recovered(), (std::map<std::string, std::string>{{"k1", "v1"}}));
  EXPECT_NE(s.report().detail.find("CRC"), std::string::npos);
  EXPECT_EQ(s.report().truncated_bytes, 2 * rec);
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
    EXPECT_GT(s.compactions(), 0u);
    EXPECT_LT(JournalSize(), 4096u + 200u);
  }
  Store s(dir(), opts);
  EXPECT_EQ(s.recovered().size(), 9u);
  EXPECT_EQ(s.recovered().at("key0"), std::string(50, 'a' + 490 % 26));
  EXPECT_TRUE(fs::exists(dir_ / "snapshot"));
}

TEST_F(StoreTest, CorruptSnapshotRefusesToOpen) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "snapshot", std::ios::binary) << "garbage!garbage!";
  EXPECT_THROW(Store s(dir()), std::runtime_error);
}

// A child commits keys and reports each acknowledgement on a pipe; it is
// killed with SIGKILL mid-stream. Every acknowledged key must be recovered.
TEST_F(StoreTest, EveryAcknowledgedCommitSurvivesKill9) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    Store s(dir());
    for (int i = 0; i < 100000; ++i) {
      s.Commit({{Op::kPut, "k" + std::to_string(i), "v"}}, [&, i](std::optional<std::string> err) {
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
  std::string acked;
  char buf[4096];
  while (acked.size() < 4000) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    acked.append(buf, static_cast<std::size_t>(n));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  close(fds[0]);
  auto last_nl = acked.rfind('\n');
  ASSERT_NE(last_nl, std::string::npos);
  acked.resize(last_nl + 1);
  Store s(dir());
  std::size_t start = 0, count = 0;
  while (start < acked.size()) {
    auto nl = acked.find('\n', start);
    std::string key = "k" + acked.substr(start, nl - start);
    EXPECT_TRUE(s.recovered().contains(key)) << key;
    ++count;
    start = nl + 1;
  }
  EXPECT_GT(count, 100u);
}

}  // namespace
}  // namespace mm::store
