#include "operator/state/client_index.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "operator/state/instance.h"

namespace mm::state {
namespace {

TEST(ClientIndex, FindsWhatWasSetAndForgetsWhatWasErased) {
  Instance a, b;
  std::string alice = "alice", bob = "bob";
  ClientIndex idx;
  idx.Set(alice, &a);
  idx.Set(bob, &b);
  EXPECT_EQ(idx.Find("alice"), &a);
  EXPECT_EQ(idx.Find("bob"), &b);
  EXPECT_EQ(idx.Find("carol"), nullptr);
  EXPECT_EQ(idx.size(), 2u);
  idx.Set(alice, &a);  // again: nothing changes
  EXPECT_EQ(idx.size(), 2u);
  EXPECT_FALSE(idx.Erase("alice", &a));
  EXPECT_EQ(idx.Find("alice"), nullptr);
  EXPECT_EQ(idx.Find("bob"), &b);
  EXPECT_EQ(idx.size(), 1u);
  EXPECT_FALSE(idx.Erase("alice", &a));  // twice: nothing
  EXPECT_EQ(idx.size(), 1u);
}

// A client two instances hold: the entry names the first, and when that
// one lets go the caller is told to name the other. The second key is a
// different string (each instance has its own copy of the id); under ASan
// this also shows the entry never views the first copy once it is gone.
TEST(ClientIndex, HeldTwiceTheEntryMovesToTheOtherHolder) {
  Instance a, b;
  auto in_a = std::make_unique<std::string>("a-client-id-longer-than-sso-buffers");
  std::string in_b = *in_a;
  ClientIndex idx;
  idx.Set(*in_a, &a);
  idx.Set(in_b, &b);
  EXPECT_EQ(idx.Find(in_b), &a);
  EXPECT_EQ(idx.size(), 1u);
  EXPECT_TRUE(idx.Erase(*in_a, &a));  // b still holds it
  in_a.reset();
  EXPECT_EQ(idx.Find(in_b), nullptr);
  idx.Set(in_b, &b);
  EXPECT_EQ(idx.Find(in_b), &b);
  EXPECT_FALSE(idx.Erase(in_b, &b));  // nobody else
  EXPECT_EQ(idx.Find(in_b), nullptr);
  EXPECT_EQ(idx.size(), 0u);
}

TEST(ClientIndex, HeldTwiceTheOtherHolderLetsGoFirst) {
  Instance a, b;
  std::string in_a = "carol", in_b = "carol";
  ClientIndex idx;
  idx.Set(in_a, &a);
  idx.Set(in_b, &b);
  EXPECT_FALSE(idx.Erase(in_b, &b));
  EXPECT_EQ(idx.Find("carol"), &a);
  EXPECT_FALSE(idx.Erase(in_a, &a));  // the count went with b
  EXPECT_EQ(idx.Find("carol"), nullptr);
}

TEST(ClientIndex, ManyClientsOverEveryShard) {
  std::vector<Instance> inst(3);
  std::vector<std::string> ids;
  for (int i = 0; i < 20000; ++i) ids.push_back("client-" + std::to_string(i));
  ClientIndex idx;
  for (std::size_t i = 0; i < ids.size(); ++i) idx.Set(ids[i], &inst[i % 3]);
  EXPECT_EQ(idx.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(idx.Find(ids[i]), &inst[i % 3]) << ids[i];
  for (std::size_t i = 0; i < ids.size(); i += 2) ASSERT_FALSE(idx.Erase(ids[i], &inst[i % 3]));
  EXPECT_EQ(idx.size(), ids.size() / 2);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(idx.Find(ids[i]), i % 2 ? &inst[i % 3] : nullptr) << ids[i];
  }
  EXPECT_EQ(idx.Find("client-20000"), nullptr);
}

// Sized ahead (a restart) or again while it holds clients: nothing is lost,
// and more than reserved still fits.
TEST(ClientIndex, ReserveKeepsWhatItHoldsAndMoreStillFits) {
  std::vector<Instance> inst(2);
  std::vector<std::string> ids;
  for (int i = 0; i < 30000; ++i) ids.push_back("c" + std::to_string(i));
  ClientIndex idx;
  idx.Reserve(10000);
  for (std::size_t i = 0; i < 10000; ++i) idx.Set(ids[i], &inst[i % 2]);
  idx.Reserve(idx.size() + 5000);
  for (std::size_t i = 10000; i < ids.size(); ++i) idx.Set(ids[i], &inst[i % 2]);
  idx.Reserve(0);
  EXPECT_EQ(idx.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(idx.Find(ids[i]), &inst[i % 2]) << ids[i];
}

}  // namespace
}  // namespace mm::state
