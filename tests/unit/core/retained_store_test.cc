#include "core/retained_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace wharf::core {
namespace {

using testing::temp_dir;

message msg(std::string topic, std::string payload, std::int64_t expiry_unix_ms = 0) {
  message m;
  m.topic = std::move(topic);
  m.payload = std::move(payload);
  m.retain = true;
  m.qos = 1;
  m.expiry_unix_ms = expiry_unix_ms;
  return m;
}

std::vector<std::string> topics(const retained_store& s, std::string_view filter,
                                std::int64_t now = 1000) {
  std::vector<std::string> out;
  s.match(filter, now, [&](const message& m) { out.push_back(m.topic); });
  std::sort(out.begin(), out.end());
  return out;
}

using strings = std::vector<std::string>;

TEST(retained_store, set_match_replace) {
  retained_store s(100);
  write_batch b;
  EXPECT_TRUE(s.set(msg("a/b", "1"), b));
  ASSERT_EQ(b.size(), 1U);
  EXPECT_EQ(b.ops()[0].what, write_batch::op::kind::put);
  EXPECT_EQ(b.ops()[0].key, "r/a/b");
  message decoded;
  ASSERT_TRUE(decode_message(b.ops()[0].value, decoded));
  EXPECT_EQ(decoded, msg("a/b", "1"));

  EXPECT_TRUE(s.set(msg("a/b", "2"), b));
  EXPECT_EQ(s.size(), 1U);
  std::vector<std::string> payloads;
  s.match("a/b", 0, [&](const message& m) { payloads.push_back(m.payload); });
  EXPECT_EQ(payloads, strings{"2"});
  EXPECT_TRUE(topics(s, "a/c").empty());
  EXPECT_TRUE(topics(s, "a").empty());
}

// [MQTT-3.3.1-6], [MQTT-3.3.1-7]
TEST(retained_store, empty_payload_clears) {
  retained_store s(100);
  write_batch b;
  s.set(msg("a/b", "1"), b);
  s.set(msg("a/c", "1"), b);
  write_batch clear;
  EXPECT_TRUE(s.set(msg("a/b", ""), clear));
  ASSERT_EQ(clear.size(), 1U);
  EXPECT_EQ(clear.ops()[0].what, write_batch::op::kind::erase);
  EXPECT_EQ(clear.ops()[0].key, "r/a/b");
  EXPECT_EQ(s.size(), 1U);
  EXPECT_EQ(topics(s, "a/#"), strings{"a/c"});
  EXPECT_TRUE(topics(s, "a/b").empty());

  write_batch nothing;
  EXPECT_TRUE(s.set(msg("never/set", ""), nothing));
  EXPECT_TRUE(nothing.empty());
}

TEST(retained_store, wildcard_match) {
  retained_store s(100);
  write_batch b;
  for (const char* t : {"a", "a/b", "a/b/c", "a/c", "b/b", "/x", "a/", "$SYS/load", "a/$x"}) {
    ASSERT_TRUE(s.set(msg(t, "p"), b));
  }
  EXPECT_EQ(topics(s, "#"), (strings{"/x", "a", "a/", "a/$x", "a/b", "a/b/c", "a/c", "b/b"}));
  EXPECT_EQ(topics(s, "a/#"), (strings{"a", "a/", "a/$x", "a/b", "a/b/c", "a/c"}));
  EXPECT_EQ(topics(s, "a/+"), (strings{"a/", "a/$x", "a/b", "a/c"}));
  EXPECT_EQ(topics(s, "+/b"), (strings{"a/b", "b/b"}));
  EXPECT_EQ(topics(s, "+"), (strings{"a"}));
  EXPECT_EQ(topics(s, "+/+"), (strings{"/x", "a/", "a/$x", "a/b", "a/c", "b/b"}));
  EXPECT_EQ(topics(s, "+/x"), (strings{"/x"}));
  EXPECT_EQ(topics(s, "a/+/c"), (strings{"a/b/c"}));
  EXPECT_EQ(topics(s, "a/b/#"), (strings{"a/b", "a/b/c"}));
  // [MQTT-4.7.2-1] '$' topics only match filters naming their first level.
  EXPECT_EQ(topics(s, "$SYS/#"), (strings{"$SYS/load"}));
  EXPECT_EQ(topics(s, "$SYS/+"), (strings{"$SYS/load"}));
  EXPECT_EQ(topics(s, "+/load"), strings{});
  EXPECT_EQ(topics(s, "$SYS/load"), (strings{"$SYS/load"}));
}

TEST(retained_store, expired_messages_are_skipped_then_erased) {
  retained_store s(100);
  write_batch b;
  s.set(msg("t/old", "p", 500), b);
  s.set(msg("t/new", "p", 5000), b);
  s.set(msg("t/forever", "p", 0), b);
  EXPECT_EQ(topics(s, "t/#", 499), (strings{"t/forever", "t/new", "t/old"}));
  EXPECT_EQ(topics(s, "t/#", 500), (strings{"t/forever", "t/new"}));
  EXPECT_EQ(topics(s, "t/old", 500), strings{});
  EXPECT_EQ(topics(s, "t/new", 4999), strings{"t/new"});
  EXPECT_EQ(s.size(), 3U);

  write_batch sweep;
  EXPECT_EQ(s.erase_expired(1000, sweep), 1U);
  ASSERT_EQ(sweep.size(), 1U);
  EXPECT_EQ(sweep.ops()[0].what, write_batch::op::kind::erase);
  EXPECT_EQ(sweep.ops()[0].key, "r/t/old");
  EXPECT_EQ(s.size(), 2U);
  EXPECT_EQ(topics(s, "t/#", 0), (strings{"t/forever", "t/new"}));
}

TEST(retained_store, bound_rejects_new_topics_only) {
  retained_store s(2);
  write_batch b;
  EXPECT_TRUE(s.set(msg("a", "1"), b));
  EXPECT_TRUE(s.set(msg("b", "1"), b));
  const std::size_t ops = b.size();
  EXPECT_FALSE(s.set(msg("c", "1"), b));
  EXPECT_EQ(b.size(), ops);  // nothing appended
  EXPECT_EQ(s.rejected_full(), 1U);
  EXPECT_TRUE(topics(s, "c").empty());
  EXPECT_TRUE(s.set(msg("a", "2"), b));  // replacing is always allowed
  EXPECT_TRUE(s.set(msg("b", ""), b));   // so is clearing
  EXPECT_TRUE(s.set(msg("c", "1"), b));
  EXPECT_EQ(s.size(), 2U);
  EXPECT_EQ(s.rejected_full(), 1U);
}

// The broker's own `$SYS` topics are retained for late subscribers but are not what clients
// stored: size() leaves them out and max_messages does not bound them.
TEST(retained_store, broker_topics_neither_counted_nor_bounded) {
  retained_store s(1);
  write_batch b;
  EXPECT_TRUE(s.set(msg("$SYS/broker/uptime", "5 seconds"), b));
  EXPECT_TRUE(s.set(msg("$SYS/broker/version", "wharf"), b));
  EXPECT_EQ(s.size(), 0U);
  EXPECT_TRUE(s.set(msg("a", "1"), b));  // the one client topic the bound allows
  EXPECT_FALSE(s.set(msg("b", "1"), b));
  EXPECT_EQ(s.size(), 1U);
  EXPECT_TRUE(s.set(msg("$SYS/broker/clients/total", "3"), b));  // still retained
  EXPECT_EQ(topics(s, "$SYS/#"), (strings{"$SYS/broker/clients/total", "$SYS/broker/uptime",
                                          "$SYS/broker/version"}));
  EXPECT_TRUE(s.set(msg("$SYS/broker/uptime", ""), b));  // cleared: the count stays right
  EXPECT_EQ(s.size(), 1U);
  EXPECT_TRUE(s.set(msg("a", ""), b));
  EXPECT_EQ(s.size(), 0U);
  EXPECT_TRUE(s.set(msg("b", "1"), b));
}

TEST(retained_store, persists_through_storage) {
  temp_dir dir;
  storage_options o;
  o.path = dir.path();
  {
    auto st = storage::open(o);
    retained_store s(100);
    write_batch b;
    message rich = msg("x/y", "payload", 99999);
    rich.content_type = "text/plain";
    rich.user_properties = {{"k", "v"}};
    s.set(rich, b);
    s.set(msg("x/z", "1"), b);
    s.set(msg("x/gone", "1"), b);
    s.set(msg("x/gone", ""), b);
    ASSERT_FALSE(st->write_sync(std::move(b)));
    // A record that is not a message, and one whose key disagrees with its topic.
    write_batch junk;
    junk.put("r/bad", "\x07garbage");
    std::string other;
    encode_message(msg("somewhere/else", "p"), other);
    junk.put("r/mismatch", other);
    junk.put("s/not-retained", "x");
    ASSERT_FALSE(st->write_sync(std::move(junk)));
  }
  auto st = storage::open(o);
  retained_store s(100);
  s.load(*st);
  EXPECT_EQ(s.size(), 2U);
  EXPECT_EQ(s.corrupt_records(), 2U);
  EXPECT_EQ(topics(s, "x/#"), (strings{"x/y", "x/z"}));
  message expected = msg("x/y", "payload", 99999);
  expected.content_type = "text/plain";
  expected.user_properties = {{"k", "v"}};
  std::vector<message> got;
  s.match("x/y", 0, [&](const message& m) { got.push_back(m); });
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0], expected);
}

TEST(retained_store, prunes_level_nodes) {
  retained_store s(10);
  write_batch b;
  s.set(msg("a/b/c/d", "1"), b);
  s.set(msg("a/b/c/d", ""), b);
  s.set(msg("a/b", "1"), b);
  EXPECT_EQ(topics(s, "#"), strings{"a/b"});
  EXPECT_EQ(topics(s, "a/b/#"), strings{"a/b"});
  EXPECT_EQ(topics(s, "+/+/+"), strings{});
}

TEST(retained_store, concurrent_readers_and_writers) {
  retained_store s(1000);
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  std::atomic<std::uint64_t> seen{0};
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        s.match("t/#", 0, [&](const message& m) {
          if (!m.payload.empty()) ++seen;
        });
      }
    });
  }
  for (int i = 0; i < 2000; ++i) {
    write_batch b;
    s.set(msg("t/" + std::to_string(i % 50), i % 3 == 0 ? "" : "p"), b);
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_LE(s.size(), 50U);
}

}  // namespace
}  // namespace wharf::core
