// Queue semantics of the engine: validation, send/receive/delete, visibility, receipt
// handles, delay, retention, rewind, dedup, heap bound, storage of a deleted or purged queue.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "harness.h"

namespace wharf::core::queue {
namespace {

using testing::bodies_of;
using testing::harness;

// A 4000 whose message names `parameter`.
void expect_invalid(const result& r, const std::string& parameter) {
  EXPECT_EQ(r.outcome.value, code::invalid_parameter) << r.outcome.message;
  EXPECT_NE(r.outcome.message.find(parameter), std::string::npos) << r.outcome.message;
}

TEST(queue_names, valid_and_invalid) {
  harness h;
  EXPECT_CODE(h.create("a"), code::ok);
  EXPECT_CODE(h.create("Queue_1-x"), code::ok);
  EXPECT_CODE(h.create(std::string(64, 'q')), code::ok);
  for (const std::string bad : {"", "1abc", "_abc", "-abc", "a.b", "a b", "a/b", "é"}) {
    expect_invalid(h.create(bad), "queueName");
  }
  expect_invalid(h.create(std::string(65, 'q')), "queueName");
}

TEST(queue_create, exists_too_many_and_ids) {
  engine_limits limits = harness::test_limits();
  limits.max_queues = 2;
  harness h(limits);
  const result first = h.create("a");
  EXPECT_EQ(first.id, "queue-1");
  EXPECT_CODE(h.create("a"), code::already_exists);
  EXPECT_EQ(h.create("b").id, "queue-2");
  EXPECT_CODE(h.create("c"), code::too_many);
  ASSERT_OK(h.run(delete_queue{"a"}));
  EXPECT_EQ(h.create("c").id, "queue-3");  // ids are never reused
}

TEST(queue_create, attribute_ranges) {
  harness h;
  struct range_case {
    const char* parameter;
    void (*set)(queue_attribute_changes&, std::uint64_t);
    std::uint64_t low, high;
  };
  const range_case cases[] = {
      {"maxMsgHeapNum", [](auto& a, std::uint64_t v) { a.max_msg_heap_num = v; }, 1000000, 1000000000},
      {"pollingWaitSeconds", [](auto& a, std::uint64_t v) { a.polling_wait_seconds = std::uint32_t(v); }, 0,
       30},
      {"visibilityTimeout", [](auto& a, std::uint64_t v) { a.visibility_timeout = std::uint32_t(v); }, 1,
       43200},
      {"maxMsgSize", [](auto& a, std::uint64_t v) { a.max_msg_size = std::uint32_t(v); }, 1024, 1048576},
      {"msgRetentionSeconds", [](auto& a, std::uint64_t v) { a.msg_retention_seconds = std::uint32_t(v); },
       60, 1296000},
      {"rewindSeconds", [](auto& a, std::uint64_t v) { a.rewind_seconds = std::uint32_t(v); }, 0, 1296000},
  };
  int n = 0;
  for (const auto& c : cases) {
    queue_attribute_changes a;
    c.set(a, c.high + 1);
    expect_invalid(h.create("q" + std::to_string(n++), a), c.parameter);
    if (c.low > 0) {
      c.set(a, c.low - 1);
      expect_invalid(h.create("q" + std::to_string(n++), a), c.parameter);
    }
    c.set(a, c.low);
    EXPECT_CODE(h.create("q" + std::to_string(n++), a), code::ok);
    c.set(a, c.high);
    EXPECT_CODE(h.create("q" + std::to_string(n++), a), code::ok);
  }
  queue_attribute_changes dedup;
  dedup.msg_retention_seconds = 100;
  dedup.dedup_window_seconds = 101;
  expect_invalid(h.create("d1", dedup), "dedupWindowSeconds");
  dedup.dedup_window_seconds = 100;
  EXPECT_CODE(h.create("d1", dedup), code::ok);
}

TEST(queue_create, defaults) {
  harness h;
  ASSERT_OK(h.create("q"));
  const auto info = h.eng().queue("q", h.now).value();
  EXPECT_EQ(info.id, "queue-1");
  EXPECT_EQ(info.attributes.max_msg_heap_num, 100000000u);
  EXPECT_EQ(info.attributes.visibility_timeout, 30u);
  EXPECT_EQ(info.attributes.max_msg_size, 65536u);
  EXPECT_EQ(info.attributes.msg_retention_seconds, 345600u);
  EXPECT_EQ(info.attributes.rewind_seconds, 0u);
  EXPECT_EQ(info.create_time_s, h.now / 1000);
  EXPECT_EQ(info.last_modify_time_s, h.now / 1000);
}

TEST(queue_set_attributes, validates_the_merged_result) {
  harness h;
  queue_attribute_changes a;
  a.msg_retention_seconds = 600;
  ASSERT_OK(h.create("q", a));
  queue_attribute_changes shorter;
  shorter.msg_retention_seconds = 200;
  shorter.dedup_window_seconds = 201;  // named: it must fit the (merged) retention
  expect_invalid(h.run(set_queue_attributes{"q", shorter}), "dedupWindowSeconds");
  shorter.dedup_window_seconds.reset();  // not named: the default 300 s follows retention
  h.advance_s(5);
  ASSERT_OK(h.run(set_queue_attributes{"q", shorter}));
  auto info = h.eng().queue("q", h.now).value();
  EXPECT_EQ(info.attributes.msg_retention_seconds, 200u);
  EXPECT_EQ(info.attributes.dedup_window_seconds, 200u);
  EXPECT_EQ(info.attributes.visibility_timeout, 30u);  // untouched
  EXPECT_EQ(info.last_modify_time_s, h.now / 1000);
  queue_attribute_changes window;
  window.dedup_window_seconds = 60;
  ASSERT_OK(h.run(set_queue_attributes{"q", window}));
  info = h.eng().queue("q", h.now).value();
  EXPECT_EQ(info.attributes.dedup_window_seconds, 60u);
  EXPECT_CODE(h.run(set_queue_attributes{"missing", {}}), code::not_found);
}

TEST(queue_commands, missing_queue_is_not_found) {
  harness h;
  EXPECT_CODE(h.send("nope", "x"), code::not_found);
  EXPECT_CODE(h.receive("nope"), code::not_found);
  EXPECT_CODE(h.remove("nope", {"h"}), code::not_found);
  EXPECT_CODE(h.run(delete_queue{"nope"}), code::not_found);
  EXPECT_CODE(h.run(rewind_queue{"nope", 0}), code::not_found);
  EXPECT_CODE(h.run(purge_queue{"nope"}), code::not_found);
  EXPECT_CODE(h.run(redrive_dead_letters{"nope", "", 10}), code::not_found);
  EXPECT_FALSE(h.eng().queue("nope", h.now));
  EXPECT_FALSE(h.eng().has_visible("nope", h.now));
}

TEST(queue_send, batch_and_item_validation_is_all_or_nothing) {
  harness h;
  queue_attribute_changes a;
  a.max_msg_size = 1024;
  ASSERT_OK(h.create("q", a));
  expect_invalid(h.run(send_messages{"q", {}}), "msgBody");
  expect_invalid(h.run(send_messages{"q", std::vector<send_item>(17, send_item{"x", 0, {}, {}})}), "msgBody");
  expect_invalid(h.send("q", ""), "msgBody");
  expect_invalid(h.send("q", "x", 3601), "delaySeconds");
  expect_invalid(h.send("q", "x", 0, ""), "dedupKey");
  expect_invalid(h.send("q", "x", 0, std::string(129, 'k')), "dedupKey");
  EXPECT_CODE(h.send("q", std::string(1025, 'x')), code::message_too_large);
  EXPECT_CODE(h.run(send_messages{"q", {send_item{"ok", 0, {}, {}}, send_item{std::string(1025, 'x'), 0, {}, {}}}}),
              code::message_too_large);
  EXPECT_EQ(h.counts("q").active, 0u);  // nothing of a failed batch was enqueued
  EXPECT_CODE(h.send("q", std::string(1024, 'x'), 3600, std::string(128, 'k')), code::ok);
  EXPECT_CODE(h.run(send_messages{"q", std::vector<send_item>(16, send_item{"x", 0, {}, {}})}), code::ok);
  EXPECT_EQ(h.counts("q").active, 16u);
  EXPECT_EQ(h.counts("q").delayed, 1u);
}

TEST(queue_receive, in_enqueue_order_with_all_fields) {
  harness h;
  ASSERT_OK(h.create("q"));
  const result sent = h.run(send_messages{"q", {send_item{"one", 0, {}, {}}, send_item{"two", 0, {}, {}}}});
  ASSERT_OK(sent);
  EXPECT_EQ(sent.msg_ids, (std::vector<std::string>{"msg-0000000000000001", "msg-0000000000000002"}));
  ASSERT_OK(h.send("q", "three"));
  h.advance_s(2);
  expect_invalid(h.receive("q", 0), "numOfMsg");
  expect_invalid(h.receive("q", 17), "numOfMsg");
  const result r = h.receive("q", 2);
  ASSERT_OK(r);
  EXPECT_EQ(bodies_of(r), (std::vector<std::string>{"one", "two"}));
  const auto& m = r.messages[0];
  EXPECT_EQ(m.msg_id, "msg-0000000000000001");
  EXPECT_EQ(m.enqueue_time_s, testing::start_time_ms / 1000);
  EXPECT_EQ(m.first_dequeue_time_s, h.now / 1000);
  EXPECT_EQ(m.next_visible_time_s, h.now / 1000 + 30);
  EXPECT_EQ(m.dequeue_count, 1u);
  EXPECT_EQ(bodies_of(h.receive("q", 16)), (std::vector<std::string>{"three"}));
  EXPECT_CODE(h.receive("q"), code::no_message);
  const auto c = h.counts("q");
  EXPECT_EQ(c.active, 0u);
  EXPECT_EQ(c.inactive, 3u);
  EXPECT_EQ(c.min_msg_time_s, testing::start_time_ms / 1000);
}

TEST(queue_visibility, message_returns_when_the_timeout_ends) {
  harness h;
  queue_attribute_changes a;
  a.visibility_timeout = 10;
  ASSERT_OK(h.create("q", a));
  ASSERT_OK(h.send("q", "m"));
  const time_ms first_receive = h.now;
  ASSERT_OK(h.receive("q"));
  EXPECT_FALSE(h.eng().has_visible("q", h.now));
  EXPECT_EQ(h.eng().next_visible_time("q", h.now), first_receive + 10000);
  h.now = first_receive + 9999;
  EXPECT_CODE(h.receive("q"), code::no_message);
  h.now = first_receive + 10000;
  EXPECT_TRUE(h.eng().has_visible("q", h.now));
  EXPECT_EQ(h.counts("q").active, 1u);
  const result again = h.receive("q");
  ASSERT_OK(again);
  EXPECT_EQ(again.messages[0].dequeue_count, 2u);
  EXPECT_EQ(again.messages[0].first_dequeue_time_s, first_receive / 1000);
}

TEST(receipt_handle, only_the_newest_deletes) {
  harness h;
  queue_attribute_changes a;
  a.visibility_timeout = 10;
  ASSERT_OK(h.create("q", a));
  ASSERT_OK(h.create("other"));
  ASSERT_OK(h.send("q", "m"));
  const std::string first = h.receive("q").messages.at(0).receipt_handle;
  h.advance_s(10);
  const std::string second = h.receive("q").messages.at(0).receipt_handle;
  EXPECT_NE(first, second);
  // Queue id, sequence number and generation, as 16 + 16 + 8 lower-case hex digits.
  EXPECT_EQ(second, "0000000000000001" "0000000000000001" "00000002");
  EXPECT_CODE(h.remove("q", {first}), code::receipt_handle_invalid);
  EXPECT_CODE(h.remove("other", {second}), code::receipt_handle_invalid);
  for (const std::string& bad : std::vector<std::string>{"", "garbage", std::string(40, 'z'),
                                                         std::string(40, '0'), std::string(41, '1')}) {
    EXPECT_CODE(h.remove("q", {bad}), code::receipt_handle_invalid);
  }
  // Upper-case hex is not the handle's spelling.
  std::string upper = second;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (upper != second) EXPECT_CODE(h.remove("q", {upper}), code::receipt_handle_invalid);
  EXPECT_CODE(h.remove("q", {second}), code::ok);
  EXPECT_CODE(h.remove("q", {second}), code::receipt_handle_invalid);  // already deleted
  EXPECT_EQ(h.counts("q").inactive, 0u);
}

TEST(receipt_handle, still_deletes_after_the_timeout_when_not_received_again) {
  harness h;
  queue_attribute_changes a;
  a.visibility_timeout = 5;
  ASSERT_OK(h.create("q", a));
  ASSERT_OK(h.send("q", "m"));
  const std::string handle = h.receive("q").messages.at(0).receipt_handle;
  h.advance_s(60);
  EXPECT_EQ(h.counts("q").active, 1u);
  EXPECT_CODE(h.remove("q", {handle}), code::ok);
  EXPECT_CODE(h.receive("q"), code::no_message);
}

TEST(receipt_handle, survives_reopen) {
  harness h;
  ASSERT_OK(h.create("q"));
  ASSERT_OK(h.send("q", "m"));
  const std::string handle = h.receive("q").messages.at(0).receipt_handle;
  h.reopen();
  EXPECT_CODE(h.remove("q", {handle}), code::ok);
}

TEST(receipt_handle, of_a_deleted_and_recreated_queue_is_stale) {
  harness h;
  ASSERT_OK(h.create("q"));
  ASSERT_OK(h.send("q", "m"));
  const std::string handle = h.receive("q").messages.at(0).receipt_handle;
  ASSERT_OK(h.run(delete_queue{"q"}));
  ASSERT_OK(h.create("q"));
  ASSERT_OK(h.send("q", "n"));
  ASSERT_OK(h.receive("q"));
  EXPECT_CODE(h.remove("q", {handle}), code::receipt_handle_invalid);
}

TEST(queue_delete_messages, batch_reports_the_failed_handles) {
  harness h;
  ASSERT_OK(h.create("q"));
  ASSERT_OK(h.run(send_messages{"q", {send_item{"a", 0, {}, {}}, send_item{"b", 0, {}, {}}, send_item{"c", 0, {}, {}}}}));
  const result r = h.receive("q", 3);
  ASSERT_EQ(r.messages.size(), 3u);
  expect_invalid(h.remove("q", {}), "receiptHandle");
  expect_invalid(h.remove("q", std::vector<std::string>(17, r.messages[0].receipt_handle)), "receiptHandle");
  const result partial = h.remove("q", {r.messages[0].receipt_handle, "bogus", r.messages[1].receipt_handle,
                                        r.messages[0].receipt_handle});
  EXPECT_CODE(partial, code::batch_delete_partial);
  ASSERT_EQ(partial.errors.size(), 2u);
  EXPECT_EQ(partial.errors[0].value, code::receipt_handle_invalid);
  EXPECT_EQ(partial.errors[0].receipt_handle, "bogus");
  EXPECT_EQ(partial.errors[1].receipt_handle, r.messages[0].receipt_handle);  // deleted just before
  EXPECT_EQ(h.counts("q").inactive, 1u);
  EXPECT_CODE(h.remove("q", {r.messages[2].receipt_handle}), code::ok);
  EXPECT_EQ(h.counts("q").inactive, 0u);
}

TEST(queue_delay, delayed_until_exactly_now_plus_delay) {
  harness h;
  queue_attribute_changes a;
  a.visibility_timeout = 600;
  ASSERT_OK(h.create("q", a));
  const time_ms sent = h.now;
  ASSERT_OK(h.send("q", "later", 30));
  ASSERT_OK(h.send("q", "now"));
  auto c = h.counts("q");
  EXPECT_EQ(c.delayed, 1u);
  EXPECT_EQ(c.active, 1u);
  EXPECT_EQ(bodies_of(h.receive("q", 16)), (std::vector<std::string>{"now"}));
  EXPECT_EQ(h.eng().next_visible_time("q", h.now), sent + 30000);
  h.now = sent + 29999;
  EXPECT_FALSE(h.eng().has_visible("q", h.now));
  EXPECT_CODE(h.receive("q"), code::no_message);
  h.now = sent + 30000;
  EXPECT_TRUE(h.eng().has_visible("q", h.now));
  c = h.counts("q");
  EXPECT_EQ(c.delayed, 0u);
  EXPECT_EQ(c.active, 1u);
  EXPECT_EQ(bodies_of(h.receive("q")), (std::vector<std::string>{"later"}));
}

TEST(queue_retention, ten_thousand_messages_expire_in_order) {
  harness h;
  queue_attribute_changes a;
  a.msg_retention_seconds = 60;
  a.dedup_window_seconds = 0;
  ASSERT_OK(h.create("q", a));
  // 10,000 messages, 16 per command, one command every 10 ms: sent over 6.25 s.
  const time_ms first = h.now;
  for (int batch = 0; batch < 625; ++batch) {
    std::vector<send_item> items;
    for (int i = 0; i < 16; ++i) items.push_back(send_item{std::to_string(batch * 16 + i), 0, {}, {}});
    ASSERT_OK(h.run(send_messages{"q", std::move(items)}));
    h.advance_ms(10);
  }
  EXPECT_EQ(h.counts("q").active, 10000u);
  EXPECT_EQ(h.eng().next_tick_time(), first + 60000);
  // Half-way through the expiry of the sends, then past all of them.
  h.now = first + 60000 + 3120;
  ASSERT_OK(h.tick_now());
  EXPECT_EQ(h.counts("q").active, 10000u - 313 * 16);
  EXPECT_EQ(h.eng().stats().messages_expired, 313u * 16);
  EXPECT_EQ(h.eng().next_tick_time(), first + 60000 + 3130);
  const result r = h.receive("q");
  EXPECT_EQ(bodies_of(r), (std::vector<std::string>{std::to_string(313 * 16)}));
  h.now = first + 60000 + 6250;
  ASSERT_OK(h.tick_now());
  EXPECT_EQ(h.counts("q").active + h.counts("q").inactive, 0u);
  EXPECT_EQ(h.eng().stats().messages_expired, 10000u);
  EXPECT_FALSE(h.eng().next_tick_time());
  EXPECT_TRUE(h.scan("cs/").empty());
  EXPECT_TRUE(h.scan("cb/").empty());
}

TEST(queue_retention, applies_to_received_and_delayed_messages_at_receive) {
  harness h;
  queue_attribute_changes a;
  a.msg_retention_seconds = 60;  // the default dedup window (300 s) follows it down
  ASSERT_OK(h.create("q", a));
  EXPECT_EQ(h.eng().queue("q", h.now)->attributes.dedup_window_seconds, 60u);
  ASSERT_OK(h.send("q", "received"));
  ASSERT_OK(h.send("q", "delayed", 3600));
  ASSERT_OK(h.receive("q"));
  h.advance_s(60);
  ASSERT_OK(h.send("q", "fresh"));  // the send removes what is past retention first
  EXPECT_EQ(h.eng().stats().messages_expired, 2u);
  EXPECT_EQ(bodies_of(h.receive("q")), (std::vector<std::string>{"fresh"}));
}

TEST(queue_rewind, deleted_messages_come_back_in_order) {
  harness h;
  queue_attribute_changes a;
  a.rewind_seconds = 100;
  ASSERT_OK(h.create("q", a));
  const time_ms t0 = h.now;
  for (const std::string body : {"a", "b", "c", "d"}) {
    ASSERT_OK(h.send("q", body));
    h.advance_s(10);
  }
  // Now t0 + 40 s. Receive all; delete a, b and d; c stays in flight.
  const result r = h.receive("q", 4);
  ASSERT_EQ(r.messages.size(), 4u);
  ASSERT_OK(h.remove(
      "q", {r.messages[0].receipt_handle, r.messages[1].receipt_handle, r.messages[3].receipt_handle}));
  auto c = h.counts("q");
  EXPECT_EQ(c.rewindable, 3u);
  EXPECT_EQ(c.inactive, 1u);
  EXPECT_EQ(c.min_msg_time_s, (t0 + 20000) / 1000);
  // Rewind to t0 + 10 s: b, c, d come back (c's handle turns stale), a does not.
  h.advance_s(1);
  const result rewound = h.run(rewind_queue{"q", (t0 + 10000) / 1000});
  ASSERT_OK(rewound);
  EXPECT_EQ(rewound.count, 3u);
  c = h.counts("q");
  EXPECT_EQ(c.active, 3u);
  EXPECT_EQ(c.rewindable, 1u);
  EXPECT_CODE(h.remove("q", {r.messages[2].receipt_handle}), code::receipt_handle_invalid);
  const result again = h.receive("q", 16);
  EXPECT_EQ(bodies_of(again), (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(again.messages[0].dequeue_count, 2u);  // rewinding keeps the count
}

TEST(queue_rewind, window_bounds_and_errors) {
  harness h;
  ASSERT_OK(h.create("off"));
  expect_invalid(h.run(rewind_queue{"off", 0}), "rewind");
  queue_attribute_changes a;
  a.rewind_seconds = 60;
  ASSERT_OK(h.create("q", a));
  expect_invalid(h.run(rewind_queue{"q", h.now / 1000 + 1}), "startConsumeTime");
  expect_invalid(h.run(rewind_queue{"q", -1}), "startConsumeTime");
  ASSERT_OK(h.send("q", "old"));
  h.advance_s(30);
  ASSERT_OK(h.send("q", "new"));
  const result r = h.receive("q", 2);
  ASSERT_OK(h.remove("q", {r.messages[0].receipt_handle, r.messages[1].receipt_handle}));
  EXPECT_EQ(h.counts("q").rewindable, 2u);
  // 31 s later "old" (enqueued 61 s ago) is outside the window even before a tick.
  h.advance_s(31);
  const result rewound = h.run(rewind_queue{"q", 0});
  EXPECT_EQ(rewound.count, 1u);
  EXPECT_EQ(bodies_of(h.receive("q", 16)), (std::vector<std::string>{"new"}));
  EXPECT_EQ(h.counts("q").rewindable, 0u);
}

TEST(queue_rewind, deleted_messages_are_purged_after_the_window) {
  harness h;
  queue_attribute_changes a;
  a.rewind_seconds = 120;
  ASSERT_OK(h.create("q", a));
  const time_ms sent = h.now;
  ASSERT_OK(h.send("q", "m"));
  ASSERT_OK(h.remove("q", {h.receive("q").messages.at(0).receipt_handle}));
  EXPECT_EQ(h.eng().next_tick_time(), sent + 120000);
  h.now = sent + 119999;
  ASSERT_OK(h.tick_now());
  EXPECT_EQ(h.counts("q").rewindable, 1u);
  h.now = sent + 120000;
  ASSERT_OK(h.tick_now());
  EXPECT_EQ(h.counts("q").rewindable, 0u);
  EXPECT_TRUE(h.scan("cb/").empty());
  EXPECT_EQ(h.eng().stats().messages_expired, 0u);  // consumed messages do not count as expired
}

TEST(queue_dedup, a_repeated_key_answers_the_first_msg_id) {
  harness h;
  queue_attribute_changes a;
  a.dedup_window_seconds = 60;
  ASSERT_OK(h.create("q", a));
  const time_ms first = h.now;
  const std::string id = h.send("q", "one", 0, "k").msg_ids.at(0);
  h.advance_s(59);
  EXPECT_EQ(h.send("q", "two", 0, "k").msg_ids.at(0), id);
  EXPECT_EQ(h.eng().stats().dedup_hits, 1u);
  EXPECT_EQ(h.counts("q").active, 1u);
  // The window runs from the first enqueue, not from the last repeat.
  h.now = first + 60000;
  const std::string later = h.send("q", "three", 0, "k").msg_ids.at(0);
  EXPECT_NE(later, id);
  EXPECT_EQ(h.counts("q").active, 2u);
}

TEST(queue_dedup, repeats_inside_one_batch) {
  harness h;
  ASSERT_OK(h.create("q"));
  const result r =
      h.run(send_messages{"q",
                          {send_item{"a", 0, "k1", {}}, send_item{"b", 0, "k2", {}}, send_item{"c", 0, "k1", {}},
                           send_item{"d", 0, {}, {}}, send_item{"e", 0, {}, {}}}});
  ASSERT_OK(r);
  ASSERT_EQ(r.msg_ids.size(), 5u);
  EXPECT_EQ(r.msg_ids[2], r.msg_ids[0]);
  EXPECT_NE(r.msg_ids[1], r.msg_ids[0]);
  EXPECT_NE(r.msg_ids[3], r.msg_ids[4]);  // no key: never a repeat
  EXPECT_EQ(h.counts("q").active, 4u);
  EXPECT_EQ(h.eng().stats().dedup_hits, 1u);
}

TEST(queue_dedup, keys_are_pruned_by_tick_and_off_with_window_zero) {
  harness h;
  queue_attribute_changes a;
  a.dedup_window_seconds = 100;
  ASSERT_OK(h.create("q", a));
  const time_ms sent = h.now;
  ASSERT_OK(h.send("q", "m", 0, "k"));
  EXPECT_EQ(h.scan("cd/").size(), 1u);
  EXPECT_EQ(h.eng().next_tick_time(), sent + 100000);
  h.now = sent + 100000;
  ASSERT_OK(h.tick_now());
  EXPECT_TRUE(h.scan("cd/").empty());

  queue_attribute_changes off;
  off.dedup_window_seconds = 0;
  ASSERT_OK(h.create("nodedup", off));
  const auto first = h.send("nodedup", "m", 0, "k").msg_ids.at(0);
  EXPECT_NE(h.send("nodedup", "m", 0, "k").msg_ids.at(0), first);
}

TEST(queue_delete, erases_every_stored_message) {
  harness h;
  queue_attribute_changes a;
  a.rewind_seconds = 600;
  ASSERT_OK(h.create("q", a));
  ASSERT_OK(h.create("keep"));
  ASSERT_OK(h.send("keep", "k"));
  ASSERT_OK(h.send("q", "a", 0, "key"));
  ASSERT_OK(h.send("q", "b", 100));
  ASSERT_OK(h.remove("q", {h.receive("q").messages.at(0).receipt_handle}));
  ASSERT_OK(h.run(delete_queue{"q"}));
  EXPECT_FALSE(h.eng().queue("q", h.now));
  EXPECT_EQ(h.scan("cs/").size(), 1u);
  EXPECT_EQ(h.scan("cb/").size(), 1u);
  EXPECT_TRUE(h.scan("cd/").empty());
  EXPECT_EQ(h.scan("cq/").size(), 1u);
  h.reopen();
  EXPECT_FALSE(h.eng().queue("q", h.now));
  EXPECT_EQ(h.counts("keep").active, 1u);
}

TEST(queue_purge, removes_visible_in_flight_delayed_and_rewindable_messages) {
  harness h;
  queue_attribute_changes a;
  a.rewind_seconds = 600;
  ASSERT_OK(h.create("q", a));
  ASSERT_OK(h.create("keep"));
  ASSERT_OK(h.send("keep", "k"));
  const time_ms start = h.now;
  const std::string consumed_id = h.send("q", "consumed", 0, "key").msg_ids.at(0);
  ASSERT_OK(h.remove("q", {h.receive("q").messages.at(0).receipt_handle}));
  ASSERT_OK(h.send("q", "in flight"));
  ASSERT_OK(h.send("q", "visible"));
  ASSERT_OK(h.send("q", "delayed", 100));
  const std::string handle = h.receive("q").messages.at(0).receipt_handle;
  queue_counts before = h.counts("q");
  EXPECT_EQ(before.active + before.inactive + before.delayed + before.rewindable, 4u);
  EXPECT_EQ(before.inactive, 1u);
  EXPECT_EQ(before.delayed, 1u);
  EXPECT_EQ(before.rewindable, 1u);

  const result purged = h.run(purge_queue{"q"});
  ASSERT_OK(purged);
  EXPECT_EQ(purged.count, 3u);  // the rewind-only message was consumed: not counted
  const queue_counts after = h.counts("q");
  EXPECT_EQ(after.active + after.inactive + after.delayed + after.rewindable, 0u);
  EXPECT_EQ(after.min_msg_time_s, 0);
  // Storage holds only the other queue's message; no dedup key is left.
  EXPECT_EQ(h.scan("cs/").size(), 1u);
  EXPECT_EQ(h.scan("cb/").size(), 1u);
  EXPECT_TRUE(h.scan("cd/").empty());
  EXPECT_EQ(h.counts("keep").active, 1u);

  // A purged message's handle is stale, a rewind finds nothing, and its dedup key is free.
  EXPECT_CODE(h.remove("q", {handle}), code::receipt_handle_invalid);
  EXPECT_EQ(h.run(rewind_queue{"q", start / 1000}).count, 0u);
  EXPECT_FALSE(h.eng().has_visible("q", h.now + 200000));
  EXPECT_NE(h.send("q", "again", 0, "key").msg_ids.at(0), consumed_id);
  EXPECT_EQ(h.counts("q").active, 1u);
  EXPECT_EQ(h.eng().stats().dedup_hits, 0u);

  const std::string dump = h.eng().dump();
  h.reopen();
  EXPECT_EQ(h.eng().dump(), dump);
  EXPECT_EQ(bodies_of(h.receive("q")), std::vector<std::string>{"again"});
}

TEST(queue_purge, inside_one_batch_removes_only_what_was_sent_before_it) {
  harness h;
  ASSERT_OK(h.create("q"));
  // Range erases and puts of one batch apply in order.
  write_batch batch;
  ASSERT_OK(h.eng().apply(command{h.now, send_messages{"q", {send_item{"before", 0, "k", {}}}}}, batch));
  const result purged = h.eng().apply(command{h.now, purge_queue{"q"}}, batch);
  ASSERT_OK(h.eng().apply(command{h.now, send_messages{"q", {send_item{"after", 0, "k", {}}}}}, batch));
  h.commit(std::move(batch));
  EXPECT_EQ(purged.count, 1u);
  EXPECT_EQ(h.scan("cb/").size(), 1u);
  EXPECT_EQ(h.scan("cd/").size(), 1u);
  h.reopen();
  EXPECT_EQ(bodies_of(h.receive("q", 16)), std::vector<std::string>{"after"});
}

TEST(queue_purge, an_empty_queue_purges_nothing) {
  harness h;
  ASSERT_OK(h.create("q"));
  const result r = h.run(purge_queue{"q"});
  ASSERT_OK(r);
  EXPECT_EQ(r.count, 0u);
}

TEST(queue_list, search_sort_and_paging) {
  harness h;
  for (const std::string name : {"orders-b", "users", "orders-a", "orders-c"}) ASSERT_OK(h.create(name));
  std::size_t total = 0;
  auto page = h.eng().list_queues(std::nullopt, "orders", 1, 5, total, h.now);
  EXPECT_EQ(total, 3u);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].name, "orders-b");
  EXPECT_EQ(page[1].name, "orders-c");
  page = h.eng().list_queues(std::nullopt, "", 0, 2, total, h.now);
  EXPECT_EQ(total, 4u);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].name, "orders-a");
}

TEST(queue_engine, bodies_are_found_before_their_commit) {
  harness h;
  ASSERT_OK(h.create("q"));
  // Send and receive in one uncommitted batch, as within one group commit.
  write_batch batch;
  ASSERT_OK(h.eng().apply(command{h.now, send_messages{"q", {send_item{"body", 0, {}, {}}}}}, batch));
  const result r = h.eng().apply(command{h.now, receive_messages{"q", 1}}, batch);
  EXPECT_EQ(bodies_of(r), (std::vector<std::string>{"body"}));
  h.commit(std::move(batch));
  // After the commit the body comes from storage.
  h.advance_s(30);
  EXPECT_EQ(bodies_of(h.receive("q")), (std::vector<std::string>{"body"}));
}

// The applied index and the counters are written once per batch, by finish_batch(): a
// group commit of many commands carries one value of each, the latest.
TEST(queue_engine, applied_index_and_counters_are_written_once_per_batch) {
  harness h;
  ASSERT_OK(h.create("q"));
  write_batch batch;
  for (int i = 0; i < 3; ++i)
    ASSERT_OK(h.eng().apply(command{h.now, send_messages{"q", {send_item{"m", 0, {}, {}}}}}, batch));
  const auto writes_of = [](const write_batch& b, std::string_view key) {
    const auto ops = b.ops();
    return std::count_if(ops.begin(), ops.end(), [&](const write_batch::op& op) { return op.key == key; });
  };
  EXPECT_EQ(writes_of(batch, "cm/applied"), 0);
  EXPECT_EQ(writes_of(batch, "cm/counters"), 0);
  h.eng().finish_batch(batch);
  EXPECT_EQ(writes_of(batch, "cm/applied"), 1);
  EXPECT_EQ(writes_of(batch, "cm/counters"), 1);
  // Nothing applied since: nothing more to write (a read-only turn commits nothing).
  write_batch empty;
  h.eng().finish_batch(empty);
  EXPECT_TRUE(empty.empty());
  h.commit(std::move(batch));
  const std::string before = h.eng().dump();
  h.reopen();
  EXPECT_EQ(h.eng().applied_index(), 4u);
  EXPECT_EQ(h.eng().dump(), before);
  // The reopened engine goes on from the stored counters.
  EXPECT_EQ(h.send("q", "after").msg_ids.at(0), "msg-0000000000000004");
}

TEST(queue_engine, command_time_out_of_range_changes_nothing) {
  harness h;
  write_batch batch;
  EXPECT_CODE(h.eng().apply(command{-1, create_queue{"q", {}}}, batch), code::invalid_parameter);
  EXPECT_CODE(h.eng().apply(command{std::int64_t{1} << 60, create_queue{"q", {}}}, batch),
              code::invalid_parameter);
  h.commit(std::move(batch));
  EXPECT_FALSE(h.eng().queue("q", h.now));
  EXPECT_EQ(h.eng().applied_index(), 2u);  // still log entries
}

TEST(queue_engine, time_never_goes_back) {
  harness h;
  ASSERT_OK(h.create("q"));
  const time_ms later = h.now;
  h.now -= 60000;  // a clock stepping back: the engine keeps its own time
  ASSERT_OK(h.send("q", "m"));
  EXPECT_EQ(h.receive("q").messages.at(0).enqueue_time_s, later / 1000);
}

TEST(queue_engine, a_corrupt_record_is_refused_at_open) {
  harness h;
  ASSERT_OK(h.create("q"));
  write_batch garbage;
  garbage.put(h.scan("cq/").at(0).first, "\x01\xff");
  h.commit(std::move(garbage));
  EXPECT_THROW(h.reopen(), std::runtime_error);
}

// maxMsgHeapNum is at least 1,000,000 (CMQ), so this fills a queue for real: the commands
// are applied in memory only (bodies released as if committed), not written to storage.
TEST(queue_heap_bound, a_full_queue_refuses_sends_and_fan_out) {
  harness h;
  queue_attribute_changes a;
  a.max_msg_heap_num = 1000000;
  a.dedup_window_seconds = 0;
  ASSERT_OK(h.create("q", a));
  ASSERT_OK(h.run(create_topic{"t", {}}));
  subscription_attributes sub;
  sub.endpoint = "q";
  sub.format = notify_format::simplified;
  ASSERT_OK(h.run(subscribe{"t", "s", sub}));
  const std::vector<send_item> sixteen(16, send_item{"x", 0, {}, {}});
  for (int i = 0; i < 1000000 / 16 - 1; ++i) {
    write_batch discarded;
    ASSERT_OK(h.eng().apply(command{h.now, send_messages{"q", sixteen}}, discarded));
    h.eng().committed(h.eng().applied_index());
  }
  ASSERT_EQ(h.counts("q").active, 1000000u - 16);
  write_batch batch;
  ASSERT_OK(h.eng().apply(command{h.now, send_messages{"q", std::vector<send_item>(15, sixteen[0])}}, batch));
  // One more fits, two do not (the whole batch counts).
  EXPECT_CODE(h.eng().apply(command{h.now, send_messages{"q", std::vector<send_item>(2, sixteen[0])}}, batch),
              code::queue_full);
  ASSERT_OK(h.eng().apply(command{h.now, send_messages{"q", {sixteen[0]}}}, batch));
  EXPECT_EQ(h.counts("q").active, 1000000u);
  EXPECT_CODE(h.eng().apply(command{h.now, send_messages{"q", {sixteen[0]}}}, batch), code::queue_full);
  // A publish still succeeds; the copy the queue cannot take is counted.
  ASSERT_OK(h.eng().apply(command{h.now, publish_messages{"t", {publish_item{"p", {}, ""}}}}, batch));
  EXPECT_EQ(h.eng().stats().publish_queue_full, 1u);
  EXPECT_EQ(h.counts("q").active, 1000000u);
}

}  // namespace
}  // namespace wharf::core::queue
