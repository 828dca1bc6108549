// Dead-letter queues: policy 0 (maxReceiveCount), policy 1 (maxTimeToLive), redrive.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "harness.h"

namespace wharf::core::queue {
namespace {

using testing::bodies_of;
using testing::harness;

void expect_invalid(const result& r, const std::string& parameter) {
  EXPECT_EQ(r.outcome.value, code::invalid_parameter) << r.outcome.message;
  EXPECT_NE(r.outcome.message.find(parameter), std::string::npos) << r.outcome.message;
}

queue_attribute_changes by_count(const std::string& dlq, std::uint32_t max_receive_count,
                                 std::uint32_t visibility_timeout = 10) {
  queue_attribute_changes a;
  a.dead_letter_queue = dlq;
  a.policy = dead_letter_policy::max_receive_count;
  a.max_receive_count = max_receive_count;
  a.visibility_timeout = visibility_timeout;
  return a;
}

queue_attribute_changes by_time(const std::string& dlq, std::uint32_t max_time_to_live) {
  queue_attribute_changes a;
  a.dead_letter_queue = dlq;
  a.policy = dead_letter_policy::max_time_to_live;
  a.max_time_to_live = max_time_to_live;
  return a;
}

TEST(dead_letter_settings, validation) {
  harness h;
  ASSERT_OK(h.create("dlq"));
  expect_invalid(h.create("q", by_count("missing", 3)), "deadLetterQueueName");
  expect_invalid(h.create("q", by_count("q", 3)), "deadLetterQueueName");
  expect_invalid(h.create("q", by_count("dlq", 0)), "maxReceiveCount");
  expect_invalid(h.create("q", by_count("dlq", 1001)), "maxReceiveCount");
  EXPECT_CODE(h.create("q1", by_count("dlq", 1000)), code::ok);
  expect_invalid(h.create("q", by_time("dlq", 299)), "maxTimeToLive");
  expect_invalid(h.create("q", by_time("dlq", 43201)), "maxTimeToLive");
  queue_attribute_changes short_retention = by_time("dlq", 600);
  short_retention.msg_retention_seconds = 600;
  expect_invalid(h.create("q", short_retention), "msgRetentionSeconds");
  short_retention.msg_retention_seconds = 601;
  EXPECT_CODE(h.create("q2", short_retention), code::ok);
  // Settings without a dead-letter queue are not checked.
  queue_attribute_changes unused;
  unused.max_receive_count = 5000;
  EXPECT_CODE(h.create("q3", unused), code::ok);
  // A deleted dead-letter queue does not block later changes that do not name it.
  ASSERT_OK(h.run(delete_queue{"dlq"}));
  queue_attribute_changes visibility;
  visibility.visibility_timeout = 99;
  EXPECT_CODE(h.run(set_queue_attributes{"q1", visibility}), code::ok);
  expect_invalid(h.run(set_queue_attributes{"q1", by_count("dlq", 3)}), "deadLetterQueueName");
}

TEST(dead_letter_policy0, the_receive_after_max_receive_count_dead_letters) {
  harness h;
  ASSERT_OK(h.create("dlq"));
  ASSERT_OK(h.create("q", by_count("dlq", 2)));
  const std::string id = h.send("q", "poison").msg_ids.at(0);
  ASSERT_OK(h.send("q", "fine"));
  EXPECT_EQ(bodies_of(h.receive("q", 2)), (std::vector<std::string>{"poison", "fine"}));
  h.advance_s(10);
  const result second = h.receive("q", 2);
  ASSERT_EQ(second.messages.size(), 2u);
  EXPECT_EQ(second.messages[0].dequeue_count, 2u);
  ASSERT_OK(h.remove("q", {second.messages[1].receipt_handle}));
  h.advance_s(10);
  // Third receive: "poison" was received twice already and goes to the dead-letter queue.
  EXPECT_CODE(h.receive("q"), code::no_message);
  EXPECT_EQ(h.eng().stats().messages_dead_lettered, 1u);
  EXPECT_EQ(h.counts("q").active + h.counts("q").inactive, 0u);
  const result letter = h.receive("dlq");
  ASSERT_OK(letter);
  EXPECT_EQ(letter.messages[0].msg_id, id);
  EXPECT_EQ(letter.messages[0].body, "poison");
  EXPECT_EQ(letter.messages[0].dequeue_count, 1u);  // a fresh message in the dead-letter queue
  EXPECT_EQ(letter.messages[0].enqueue_time_s, h.now / 1000);
}

TEST(dead_letter_policy0, delivered_when_the_dead_letter_queue_is_gone) {
  harness h;
  ASSERT_OK(h.create("dlq"));
  ASSERT_OK(h.create("q", by_count("dlq", 1)));
  ASSERT_OK(h.send("q", "m"));
  ASSERT_OK(h.receive("q"));
  ASSERT_OK(h.run(delete_queue{"dlq"}));
  h.advance_s(10);
  const result again = h.receive("q");
  ASSERT_OK(again);
  EXPECT_EQ(again.messages[0].dequeue_count, 2u);
  EXPECT_EQ(h.eng().stats().messages_dead_lettered, 0u);
}

TEST(dead_letter_policy1, moved_when_not_deleted_within_the_time_to_live) {
  harness h;
  ASSERT_OK(h.create("dlq"));
  ASSERT_OK(h.create("q", by_time("dlq", 300)));
  const time_ms sent = h.now;
  const std::string id = h.send("q", "held").msg_ids.at(0);
  h.advance_s(100);
  ASSERT_OK(h.send("q", "later"));
  ASSERT_OK(h.receive("q"));  // "held" is in flight: it still goes at its time to live
  EXPECT_EQ(h.eng().next_tick_time(), sent + 300000);
  h.now = sent + 299999;
  ASSERT_OK(h.tick_now());
  EXPECT_EQ(h.counts("dlq").active, 0u);
  h.now = sent + 300000;
  ASSERT_OK(h.tick_now());
  EXPECT_EQ(h.counts("dlq").active, 1u);
  EXPECT_EQ(h.counts("q").inactive, 0u);
  EXPECT_EQ(h.counts("q").active, 1u);
  EXPECT_EQ(h.eng().stats().messages_dead_lettered, 1u);
  const result letter = h.receive("dlq");
  EXPECT_EQ(letter.messages.at(0).msg_id, id);
  EXPECT_EQ(letter.messages.at(0).body, "held");
  EXPECT_EQ(h.eng().next_tick_time(), sent + 400000);  // "later"
}

TEST(dead_letter_policy1, a_receive_applies_the_time_to_live_first) {
  harness h;
  ASSERT_OK(h.create("dlq"));
  ASSERT_OK(h.create("q", by_time("dlq", 300)));
  ASSERT_OK(h.send("q", "m"));
  h.advance_s(300);
  EXPECT_CODE(h.receive("q"), code::no_message);
  EXPECT_EQ(bodies_of(h.receive("dlq")), (std::vector<std::string>{"m"}));
}

TEST(dead_letter_policy1, stays_when_the_dead_letter_queue_is_gone) {
  harness h;
  ASSERT_OK(h.create("dlq"));
  queue_attribute_changes a = by_time("dlq", 300);
  a.msg_retention_seconds = 1000;
  ASSERT_OK(h.create("q", a));
  ASSERT_OK(h.send("q", "m"));
  ASSERT_OK(h.run(delete_queue{"dlq"}));
  h.advance_s(300);
  ASSERT_OK(h.tick_now());
  EXPECT_EQ(h.counts("q").active, 1u);
  // Not tried again: the next tick is the retention, not another time-to-live check.
  EXPECT_EQ(h.eng().next_tick_time(), testing::start_time_ms + 1000000);
  EXPECT_EQ(bodies_of(h.receive("q")), (std::vector<std::string>{"m"}));
}

TEST(dead_letter_redrive, letters_go_back_with_their_count_reset) {
  harness h;
  ASSERT_OK(h.create("dlq"));
  ASSERT_OK(h.create("a", by_count("dlq", 1)));
  ASSERT_OK(h.create("b", by_count("dlq", 1)));
  for (const std::string q : {"a", "b", "a"}) {
    ASSERT_OK(h.send(q, q + "-msg"));
  }
  ASSERT_OK(h.receive("a", 16));
  ASSERT_OK(h.receive("b", 16));
  h.advance_s(10);
  EXPECT_CODE(h.receive("a", 16), code::no_message);
  EXPECT_CODE(h.receive("b", 16), code::no_message);
  EXPECT_EQ(h.counts("dlq").active, 3u);

  expect_invalid(h.run(redrive_dead_letters{"dlq", "", 0}), "max_messages");
  EXPECT_CODE(h.run(redrive_dead_letters{"dlq", "missing", 10}), code::not_found);
  // Only letters from "a", at most one.
  result r = h.run(redrive_dead_letters{"dlq", "a", 1});
  ASSERT_OK(r);
  EXPECT_EQ(r.count, 1u);
  EXPECT_EQ(h.counts("a").active, 1u);
  EXPECT_EQ(h.counts("dlq").active, 2u);
  r = h.run(redrive_dead_letters{"dlq", "", 100});
  EXPECT_EQ(r.count, 2u);
  EXPECT_EQ(h.counts("dlq").active, 0u);
  const result back = h.receive("a", 16);
  EXPECT_EQ(bodies_of(back), (std::vector<std::string>{"a-msg", "a-msg"}));
  EXPECT_EQ(back.messages[0].dequeue_count, 1u);  // reset, then received once
  EXPECT_EQ(bodies_of(h.receive("b", 16)), (std::vector<std::string>{"b-msg"}));
}

TEST(dead_letter_redrive, skips_held_letters_and_letters_of_missing_queues) {
  harness h;
  ASSERT_OK(h.create("dlq"));
  ASSERT_OK(h.create("a", by_count("dlq", 1)));
  ASSERT_OK(h.create("b", by_count("dlq", 1)));
  ASSERT_OK(h.send("a", "1"));
  ASSERT_OK(h.send("b", "2"));
  ASSERT_OK(h.send("a", "3"));
  ASSERT_OK(h.receive("a", 16));
  ASSERT_OK(h.receive("b", 16));
  h.advance_s(10);
  EXPECT_CODE(h.receive("a", 16), code::no_message);
  EXPECT_CODE(h.receive("b", 16), code::no_message);
  ASSERT_OK(h.run(delete_queue{"b"}));
  ASSERT_OK(h.receive("dlq"));  // "1" is held by a consumer
  const result r = h.run(redrive_dead_letters{"dlq", "", 100});
  EXPECT_EQ(r.count, 1u);
  EXPECT_EQ(bodies_of(h.receive("a", 16)), (std::vector<std::string>{"3"}));
  EXPECT_EQ(h.counts("dlq").inactive + h.counts("dlq").active, 2u);
  // A letter is a plain message in its queue: a plain send is not a letter.
  ASSERT_OK(h.send("dlq", "plain"));
  EXPECT_EQ(h.run(redrive_dead_letters{"dlq", "", 100}).count, 0u);
}

}  // namespace
}  // namespace wharf::core::queue
