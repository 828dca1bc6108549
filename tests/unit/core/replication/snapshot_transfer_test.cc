// The snapshot transfer between two real RocksDB stores, its frames carried by hand: chunks
// of bounded size, one at a time, the install frame last; a member that is not behind keeps
// nothing; out-of-sequence chunks are refused; a stalled transfer starts again.
#include "core/replication/snapshot_transfer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <map>
#include <string>
#include <utility>

#include "../test_util.h"

namespace wharf::core::replication {
namespace {

using namespace std::chrono_literals;
using core::testing::temp_dir;
using clock = std::chrono::steady_clock;

struct sent_frame {
  std::uint64_t to;
  frame_kind kind;
  std::string body;
};

std::unique_ptr<storage> open_store(const temp_dir& dir) {
  storage_options o;
  o.path = dir.path();
  o.sync = false;
  return storage::open(o);
}

std::map<std::string, std::string> range_of(storage& s) {
  std::map<std::string, std::string> out;
  s.scan_range("c", "d", [&](std::string_view k, std::string_view v) {
    out.emplace(k, v);
    return true;
  });
  return out;
}

class snapshot_transfer_test : public ::testing::Test {
 protected:
  snapshot_transfer_test()
      : leader_store(open_store(leader_dir)),
        member_store(open_store(member_dir)),
        sender(options(), [this](std::uint64_t to, frame_kind k, std::string b) {
          to_member.push_back({to, k, std::move(b)});
        }),
        receiver(*member_store, options(), [this](std::uint64_t to, frame_kind k, std::string b) {
          to_leader.push_back({to, k, std::move(b)});
        }) {}

  static snapshot_transfer_options options() {
    snapshot_transfer_options o{"c", "d"};
    o.chunk_bytes = 4096;
    o.stall_timeout = 10s;
    return o;
  }

  // 100 keys of ~1 KiB in the state, one key on each side of it.
  void fill_leader() {
    write_batch b;
    b.put("a/not-state", "x");
    for (int i = 0; i < 100; ++i) b.put("c/" + std::to_string(1000 + i), std::string(1000, static_cast<char>('a' + i % 26)));
    b.put("d/not-state", "y");
    ASSERT_FALSE(leader_store->write_sync(std::move(b)));
  }

  // Carries frames both ways until none is left; returns the chunks the member got.
  int pump(std::uint64_t own_state_index) {
    int chunks = 0;
    while (!to_member.empty() || !to_leader.empty()) {
      while (!to_member.empty()) {
        auto f = std::move(to_member.front());
        to_member.pop_front();
        EXPECT_EQ(f.to, 2u);
        if (f.kind == frame_kind::snapshot_chunk) {
          EXPECT_LE(f.body.size(), options().chunk_bytes + 1100) << "a chunk beyond its bound";
          ++chunks;
          receiver.on_chunk(1, f.body, own_state_index);
        } else {
          install_frames.push_back(std::move(f.body));
        }
      }
      while (!to_leader.empty()) {
        auto f = std::move(to_leader.front());
        to_leader.pop_front();
        EXPECT_EQ(f.kind, frame_kind::snapshot_ack);
        sender.on_ack(2, f.body, now);
      }
    }
    return chunks;
  }

  temp_dir leader_dir;
  temp_dir member_dir;
  std::unique_ptr<storage> leader_store;
  std::unique_ptr<storage> member_store;
  std::deque<sent_frame> to_member;
  std::deque<sent_frame> to_leader;
  std::vector<std::string> install_frames;
  snapshot_sender sender;
  snapshot_receiver receiver;
  clock::time_point now = clock::now();
};

TEST_F(snapshot_transfer_test, the_state_goes_in_bounded_chunks_then_the_install_frame) {
  fill_leader();
  write_batch old;
  old.put("c/stale", "gone after the swap");
  old.put("a/mine", "kept");
  ASSERT_FALSE(member_store->write_sync(std::move(old)));

  sender.start(2, 40, leader_store->view(), 45, "install-frame", now);
  EXPECT_TRUE(sender.sending(2, 40, now));
  EXPECT_FALSE(sender.sending(3, 40, now));
  // The leader's writes after the start are not in what it sends.
  write_batch later;
  later.put("c/9999", "written after the transfer began");
  ASSERT_FALSE(leader_store->write_sync(std::move(later)));

  const int chunks = pump(/*own_state_index=*/10);
  EXPECT_GE(chunks, 25);  // 100 KiB in 4 KiB chunks
  ASSERT_EQ(install_frames, std::vector<std::string>{"install-frame"});
  EXPECT_FALSE(sender.sending(2, 40, now));
  ASSERT_TRUE(receiver.complete(1, 40));
  EXPECT_FALSE(receiver.complete(1, 41));
  std::error_code ec;
  EXPECT_EQ(receiver.swap_in(ec), 45u);
  ASSERT_FALSE(ec);

  auto expected = range_of(*leader_store);
  expected.erase("c/9999");
  EXPECT_EQ(range_of(*member_store), expected);
  EXPECT_EQ(member_store->get("a/mine"), "kept");
  EXPECT_EQ(member_store->get("d/not-state"), std::nullopt);
  EXPECT_EQ(sender.stats().sent, 1u);
  EXPECT_EQ(receiver.stats().received, 1u);
  EXPECT_EQ(receiver.stats().bytes_received, sender.stats().bytes_sent);
}

TEST_F(snapshot_transfer_test, a_member_already_that_far_keeps_nothing) {
  fill_leader();
  write_batch mine;
  mine.put("c/mine", "newer");
  ASSERT_FALSE(member_store->write_sync(std::move(mine)));
  sender.start(2, 40, leader_store->view(), 45, "install-frame", now);
  pump(/*own_state_index=*/50);
  ASSERT_TRUE(receiver.complete(1, 40));
  std::error_code ec;
  EXPECT_EQ(receiver.swap_in(ec), 0u);
  EXPECT_FALSE(ec);
  EXPECT_EQ(range_of(*member_store), (std::map<std::string, std::string>{{"c/mine", "newer"}}));
}

TEST_F(snapshot_transfer_test, a_chunk_out_of_sequence_is_refused_and_the_leader_stops) {
  fill_leader();
  sender.start(2, 40, leader_store->view(), 45, "install-frame", now);
  ASSERT_EQ(to_member.size(), 1u);
  auto first = to_member.front().body;
  to_member.clear();
  // The second chunk before the first: refused.
  auto c = decode_snapshot_chunk(first);
  ASSERT_TRUE(c);
  c->seq = 1;
  receiver.on_chunk(1, encode_snapshot_chunk(*c), 0);
  ASSERT_EQ(to_leader.size(), 1u);
  const auto ack = decode_snapshot_ack(to_leader.front().body);
  ASSERT_TRUE(ack);
  EXPECT_FALSE(ack->accepted);
  EXPECT_FALSE(receiver.complete(1, 40));
  // A refusal of the chunk the leader waits on stops it: libraft asks again later.
  sender.on_ack(2, encode_snapshot_ack({40, 0, false}), now);
  EXPECT_FALSE(sender.sending(2, 40, now));
  EXPECT_EQ(sender.stats().abandoned, 1u);
  EXPECT_TRUE(to_member.empty());
}

TEST_F(snapshot_transfer_test, a_stalled_transfer_is_dropped_and_starts_again) {
  fill_leader();
  sender.start(2, 40, leader_store->view(), 45, "install-frame", now);
  to_member.clear();  // the chunk is lost with its link
  EXPECT_TRUE(sender.sending(2, 40, now + 9s));
  EXPECT_FALSE(sender.sending(2, 40, now + 10s));
  EXPECT_EQ(sender.stats().abandoned, 1u);
  sender.start(2, 40, leader_store->view(), 45, "install-frame", now + 10s);
  now += 10s;
  pump(0);
  EXPECT_EQ(install_frames.size(), 1u);
  EXPECT_TRUE(receiver.complete(1, 40));
}

}  // namespace
}  // namespace wharf::core::replication
