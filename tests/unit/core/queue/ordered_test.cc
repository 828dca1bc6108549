// Ordered queues and message groups: within a group, send order and one message in flight;
// groups in parallel; what a visibility timeout, a dead-letter, expiry, rewind, purge and a
// reload do to a group.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "harness.h"

namespace wharf::core::queue {
namespace {

using testing::bodies_of;
using testing::harness;

queue_attribute_changes ordered(std::uint32_t visibility_timeout = 10) {
  queue_attribute_changes a;
  a.ordered = true;
  a.visibility_timeout = visibility_timeout;
  return a;
}

result send_to_group(harness& h, const std::string& queue, const std::string& body,
                     std::optional<std::string> group, std::uint32_t delay_seconds = 0) {
  return h.run(send_messages{queue, {send_item{body, delay_seconds, std::nullopt, std::move(group)}}});
}

// Receives up to 16 and returns the handles by body.
std::map<std::string, std::string> receive_all(harness& h, const std::string& queue) {
  std::map<std::string, std::string> handles;
  for (const auto& m : h.receive(queue, 16).messages) handles[m.body] = m.receipt_handle;
  return handles;
}

TEST(ordered_queue, is_chosen_at_create_and_fixed) {
  harness h;
  ASSERT_OK(h.create("plain"));
  ASSERT_OK(h.create("orders", ordered()));
  EXPECT_TRUE(h.eng().queue("orders", h.now)->attributes.ordered);
  EXPECT_FALSE(h.eng().queue("plain", h.now)->attributes.ordered);

  queue_attribute_changes off;
  off.ordered = false;
  const result r = h.run(set_queue_attributes{"orders", off});
  EXPECT_EQ(r.outcome.value, code::invalid_parameter);
  EXPECT_NE(r.outcome.message.find("orderedQueue"), std::string::npos) << r.outcome.message;
  queue_attribute_changes on;
  on.ordered = true;
  EXPECT_CODE(h.run(set_queue_attributes{"plain", on}), code::invalid_parameter);
  // Naming the value it has changes nothing and is allowed (a client resending all).
  EXPECT_CODE(h.run(set_queue_attributes{"orders", on}), code::ok);
  EXPECT_CODE(h.run(set_queue_attributes{"plain", off}), code::ok);

  h.reopen();
  EXPECT_TRUE(h.eng().queue("orders", h.now)->attributes.ordered);
  EXPECT_FALSE(h.eng().queue("plain", h.now)->attributes.ordered);
}

TEST(ordered_queue, groups_are_refused_by_plain_queues_and_bounded) {
  harness h;
  ASSERT_OK(h.create("plain"));
  ASSERT_OK(h.create("orders", ordered()));
  const result plain = send_to_group(h, "plain", "x", "g");
  EXPECT_EQ(plain.outcome.value, code::invalid_parameter);
  EXPECT_NE(plain.outcome.message.find("msgGroupId"), std::string::npos) << plain.outcome.message;
  EXPECT_CODE(send_to_group(h, "orders", "x", ""), code::invalid_parameter);
  EXPECT_CODE(send_to_group(h, "orders", "x", std::string(129, 'g')), code::invalid_parameter);
  EXPECT_CODE(send_to_group(h, "orders", "x", std::string(128, 'g')), code::ok);
  // A batch with one bad group is refused whole.
  const result batch = h.run(send_messages{
      "orders", {send_item{"a", 0, std::nullopt, "g"}, send_item{"b", 0, std::nullopt, std::string()}}});
  EXPECT_EQ(batch.outcome.value, code::invalid_parameter);
  EXPECT_EQ(h.counts("orders").active, 1u);
}

TEST(ordered_queue, a_group_gives_one_message_at_a_time_in_send_order_and_groups_go_in_parallel) {
  harness h;
  ASSERT_OK(h.create("orders", ordered()));
  for (const char* body : {"a1", "b1", "a2", "a3", "b2"}) ASSERT_OK(send_to_group(h, "orders", body, std::string(1, body[0])));
  ASSERT_OK(send_to_group(h, "orders", "d1", std::nullopt));  // the default group
  ASSERT_OK(send_to_group(h, "orders", "d2", std::nullopt));

  // The heads only, in send order.
  result first = h.receive("orders", 16);
  EXPECT_EQ(bodies_of(first), (std::vector<std::string>{"a1", "b1", "d1"}));
  EXPECT_EQ(first.messages[0].group, "a");
  EXPECT_EQ(first.messages[2].group, "");
  EXPECT_CODE(h.receive("orders", 16), code::no_message);
  EXPECT_FALSE(h.eng().has_visible("orders", h.now));
  // Waiting behind their heads counts as active; the heads are in flight.
  EXPECT_EQ(h.counts("orders").active, 4u);
  EXPECT_EQ(h.counts("orders").inactive, 3u);

  // Deleting a head lets exactly the next of its group through.
  ASSERT_OK(h.remove("orders", {first.messages[0].receipt_handle}));
  EXPECT_EQ(bodies_of(h.receive("orders", 16)), std::vector<std::string>{"a2"});
  ASSERT_OK(h.remove("orders", {first.messages[1].receipt_handle, first.messages[2].receipt_handle}));
  EXPECT_EQ(bodies_of(h.receive("orders", 16)), (std::vector<std::string>{"b2", "d2"}));
}

TEST(ordered_queue, a_head_whose_visibility_timeout_ends_comes_again_before_the_rest) {
  harness h;
  ASSERT_OK(h.create("orders", ordered(10)));
  ASSERT_OK(send_to_group(h, "orders", "a1", "a"));
  ASSERT_OK(send_to_group(h, "orders", "a2", "a"));
  const result r1 = h.receive("orders");
  ASSERT_EQ(bodies_of(r1), std::vector<std::string>{"a1"});
  h.advance_s(9);
  EXPECT_CODE(h.receive("orders"), code::no_message);
  EXPECT_EQ(h.eng().next_visible_time("orders", h.now), r1.messages[0].next_visible_time_s * 1000);
  h.advance_s(1);
  EXPECT_TRUE(h.eng().has_visible("orders", h.now));
  const result r2 = h.receive("orders", 16);
  ASSERT_EQ(bodies_of(r2), std::vector<std::string>{"a1"});
  EXPECT_EQ(r2.messages[0].dequeue_count, 2u);
  // The first handle is stale; the second deletes, and a2 follows.
  EXPECT_CODE(h.remove("orders", {r1.messages[0].receipt_handle}), code::receipt_handle_invalid);
  ASSERT_OK(h.remove("orders", {r2.messages[0].receipt_handle}));
  EXPECT_EQ(bodies_of(h.receive("orders")), std::vector<std::string>{"a2"});
}

TEST(ordered_queue, a_delayed_head_holds_its_group) {
  harness h;
  ASSERT_OK(h.create("orders", ordered()));
  ASSERT_OK(send_to_group(h, "orders", "a1", "a", 5));
  ASSERT_OK(send_to_group(h, "orders", "a2", "a"));
  ASSERT_OK(send_to_group(h, "orders", "b1", "b"));
  EXPECT_EQ(bodies_of(h.receive("orders", 16)), std::vector<std::string>{"b1"});
  EXPECT_EQ(h.counts("orders").delayed, 1u);
  h.advance_s(5);
  EXPECT_EQ(bodies_of(h.receive("orders", 16)), std::vector<std::string>{"a1"});
}

TEST(ordered_queue, dead_lettering_a_head_unblocks_its_group_and_is_counted) {
  harness h;
  ASSERT_OK(h.create("dlq"));
  queue_attribute_changes a = ordered(10);
  a.dead_letter_queue = "dlq";
  a.policy = dead_letter_policy::max_receive_count;
  a.max_receive_count = 1;
  ASSERT_OK(h.create("orders", a));
  ASSERT_OK(send_to_group(h, "orders", "a1", "a"));
  ASSERT_OK(send_to_group(h, "orders", "a2", "a"));
  ASSERT_EQ(bodies_of(h.receive("orders")), std::vector<std::string>{"a1"});
  h.advance_s(10);
  // a1 has had its one receive: this one dead-letters it and hands out a2 instead.
  const result r = h.receive("orders", 16);
  EXPECT_EQ(bodies_of(r), std::vector<std::string>{"a2"});
  EXPECT_EQ(h.eng().stats().messages_dead_lettered, 1u);
  EXPECT_EQ(h.eng().stats().group_heads_dead_lettered, 1u);
  ASSERT_OK(h.remove("orders", {r.messages[0].receipt_handle}));
  const result letter = h.receive("dlq");
  ASSERT_EQ(bodies_of(letter), std::vector<std::string>{"a1"});
  EXPECT_EQ(letter.messages[0].group, "a");  // kept, so a redrive returns it to its group

  // Redriven, a1 joins the end of group a: after a3, sent before the redrive.
  h.advance_s(30);  // the letter is visible again (no consumer holds it)
  ASSERT_OK(send_to_group(h, "orders", "a3", "a"));
  const result redrive = h.run(redrive_dead_letters{"dlq", "orders", 10});
  ASSERT_OK(redrive);
  EXPECT_EQ(redrive.count, 1u);
  std::vector<std::string> order;
  for (int i = 0; i < 2; ++i) {
    const result next = h.receive("orders", 16);
    ASSERT_EQ(next.messages.size(), 1u);
    order.push_back(next.messages[0].body);
    ASSERT_OK(h.remove("orders", {next.messages[0].receipt_handle}));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"a3", "a1"}));
}

TEST(ordered_queue, time_to_live_and_retention_unblock_a_group) {
  harness h;
  ASSERT_OK(h.create("dlq"));
  queue_attribute_changes a = ordered(3600);
  a.dead_letter_queue = "dlq";
  a.policy = dead_letter_policy::max_time_to_live;
  a.max_time_to_live = 300;
  a.msg_retention_seconds = 900;
  ASSERT_OK(h.create("orders", a));
  ASSERT_OK(send_to_group(h, "orders", "a1", "a"));
  h.advance_s(100);
  ASSERT_OK(send_to_group(h, "orders", "a2", "a"));
  ASSERT_EQ(bodies_of(h.receive("orders")), std::vector<std::string>{"a1"});  // held for an hour
  h.advance_s(200);  // a1's time to live is over
  ASSERT_OK(h.tick_now());
  EXPECT_EQ(h.eng().stats().group_heads_dead_lettered, 1u);
  EXPECT_EQ(bodies_of(h.receive("orders")), std::vector<std::string>{"a2"});

  // Retention: with no dead-letter queue, an unconsumed head expires and the next follows.
  harness r;
  queue_attribute_changes short_retention = ordered(3600);
  short_retention.msg_retention_seconds = 60;
  ASSERT_OK(r.create("orders", short_retention));
  ASSERT_OK(send_to_group(r, "orders", "b1", "b"));
  r.advance_s(30);
  ASSERT_OK(send_to_group(r, "orders", "b2", "b"));
  ASSERT_EQ(bodies_of(r.receive("orders")), std::vector<std::string>{"b1"});
  r.advance_s(30);
  ASSERT_OK(r.tick_now());
  EXPECT_EQ(r.eng().stats().messages_expired, 1u);
  EXPECT_EQ(bodies_of(r.receive("orders")), std::vector<std::string>{"b2"});
}

TEST(ordered_queue, rewind_replays_each_group_in_order) {
  harness h;
  queue_attribute_changes a = ordered();
  a.rewind_seconds = 3600;
  ASSERT_OK(h.create("orders", a));
  for (const char* body : {"a1", "b1", "a2"}) ASSERT_OK(send_to_group(h, "orders", body, std::string(1, body[0])));
  // Consume a1 and b1; a2 is received and still held when the rewind comes.
  for (const auto& [body, handle] : receive_all(h, "orders")) ASSERT_OK(h.remove("orders", {handle}));
  ASSERT_EQ(receive_all(h, "orders").count("a2"), 1u);
  h.advance_s(1);
  const result rewound = h.run(rewind_queue{"orders", h.now / 1000 - 10});
  ASSERT_OK(rewound);
  EXPECT_EQ(rewound.count, 3u);
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    const auto got = receive_all(h, "orders");
    for (const auto& [body, handle] : got) {
      order.push_back(body);
      ASSERT_OK(h.remove("orders", {handle}));
    }
  }
  // Group a from its start again; b1 once.
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "b1", "a2"}));
}

TEST(ordered_queue, purge_forgets_the_groups) {
  harness h;
  ASSERT_OK(h.create("orders", ordered()));
  ASSERT_OK(send_to_group(h, "orders", "a1", "a"));
  ASSERT_OK(send_to_group(h, "orders", "a2", "a"));
  ASSERT_EQ(h.receive("orders").messages.size(), 1u);
  ASSERT_OK(h.run(purge_queue{"orders"}));
  ASSERT_OK(send_to_group(h, "orders", "a3", "a"));
  EXPECT_EQ(bodies_of(h.receive("orders")), std::vector<std::string>{"a3"});
}

TEST(ordered_queue, a_reload_keeps_heads_in_flight_and_the_rest_waiting) {
  harness h;
  ASSERT_OK(h.create("orders", ordered(10)));
  for (const char* body : {"a1", "a2", "b1", "b2"}) ASSERT_OK(send_to_group(h, "orders", body, std::string(1, body[0])));
  const auto held = receive_all(h, "orders");
  ASSERT_EQ(held.size(), 2u);
  const std::string dump = h.eng().dump();
  h.reopen();
  EXPECT_EQ(h.eng().dump(), dump);
  EXPECT_CODE(h.receive("orders", 16), code::no_message);
  ASSERT_OK(h.remove("orders", {held.at("b1")}));
  EXPECT_EQ(bodies_of(h.receive("orders", 16)), std::vector<std::string>{"b2"});
  h.advance_s(10);  // both heads out are visible again; a2 still waits for a1
  EXPECT_EQ(bodies_of(h.receive("orders", 16)), (std::vector<std::string>{"a1", "b2"}));
}

// Several consumers receiving, deleting and letting timeouts pass at random: every group
// is delivered in send order (a message comes only once everything sent before it in its
// group was deleted), never two of one group at once, and nothing is lost.
TEST(ordered_queue, random_consumers_never_break_group_order) {
  harness h;
  ASSERT_OK(h.create("orders", ordered(5)));
  std::mt19937 rng(3);
  constexpr int groups = 7;
  std::map<std::string, std::vector<std::string>> sent;      // group → bodies in send order
  std::map<std::string, std::size_t> deleted;                // group → how many deleted (a prefix)
  struct held { std::string group, body, handle; };
  std::vector<held> out;                                     // received, not deleted
  int next_body = 0;
  for (int step = 0; step < 3000; ++step) {
    h.advance_ms(rng() % 1500);
    switch (rng() % 4) {
      case 0: {
        const std::string group = "g" + std::to_string(rng() % groups);
        const std::string body = group + "-" + std::to_string(next_body++);
        ASSERT_OK(send_to_group(h, "orders", body, group));
        sent[group].push_back(body);
        break;
      }
      case 1:
      case 2: {
        const result r = h.receive("orders", 1 + rng() % 4);
        std::set<std::string> groups_in_this_receive;
        for (const auto& m : r.messages) {
          ASSERT_TRUE(groups_in_this_receive.insert(m.group).second) << "two of group " << m.group;
          // The group's first message not yet deleted, and no other of its group is out
          // (one still held would have to have timed out: then it is this same message).
          ASSERT_EQ(m.body, sent[m.group].at(deleted[m.group])) << "step " << step;
          std::erase_if(out, [&](const held& x) { return x.group == m.group; });
          out.push_back({m.group, m.body, m.receipt_handle});
        }
        break;
      }
      default: {
        if (out.empty()) break;
        const std::size_t i = rng() % out.size();
        const result r = h.remove("orders", {out[i].handle});
        if (r.outcome.ok()) {
          ASSERT_EQ(out[i].body, sent[out[i].group].at(deleted[out[i].group]));
          ++deleted[out[i].group];
        }
        out.erase(out.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    if (step % 1000 == 999) h.reopen();
  }
  // Drain: everything sent comes, in order.
  for (int round = 0; round < 10000 && h.counts("orders").active + h.counts("orders").inactive > 0; ++round) {
    h.advance_s(5);
    for (const auto& m : h.receive("orders", 16).messages) {
      ASSERT_EQ(m.body, sent[m.group].at(deleted[m.group]));
      ASSERT_OK(h.remove("orders", {m.receipt_handle}));
      ++deleted[m.group];
    }
  }
  for (const auto& [group, bodies] : sent) EXPECT_EQ(deleted[group], bodies.size()) << group;
}

TEST(ordered_queue, ten_thousand_groups_are_served_without_a_scan) {
  harness h;
  ASSERT_OK(h.create("orders", ordered()));
  for (int g = 0; g < 10000; g += 16) {
    send_messages batch{"orders", {}};
    for (int i = g; i < g + 16 && i < 10000; ++i)
      batch.items.push_back(send_item{"m" + std::to_string(i), 0, std::nullopt, "g" + std::to_string(i)});
    ASSERT_OK(h.run(std::move(batch)));
  }
  // Every head is ready: each receive takes 16 in send order.
  const result r = h.receive("orders", 16);
  ASSERT_EQ(r.messages.size(), 16u);
  EXPECT_EQ(r.messages[0].body, "m0");
  EXPECT_EQ(r.messages[15].body, "m15");
  EXPECT_EQ(h.eng().visible_messages("orders", h.now, 100), 100u);
}

}  // namespace
}  // namespace wharf::core::queue
