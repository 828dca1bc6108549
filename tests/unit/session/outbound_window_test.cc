#include "session/outbound_window.h"

#include <gtest/gtest.h>

namespace wharf::session {
namespace {

delivery make(std::uint8_t qos, std::string payload = "p") {
  auto m = std::make_shared<core::message>();
  m->topic = "t";
  m->payload = std::move(payload);
  m->qos = qos;
  delivery d;
  d.msg = m;
  d.qos = qos;
  return d;
}

// [MQTT-4.9.0-2] No more unacknowledged QoS 1/2 PUBLISHes than the client's Receive Maximum.
TEST(outbound_window, honours_inflight_maximum) {
  outbound_window w(2, 100, 1 << 20);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(w.push(make(1)));
  auto a = w.next();
  auto b = w.next();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(w.next()) << "window of 2 is full";
  EXPECT_NE(a->delivery.packet_id, b->delivery.packet_id);
  EXPECT_TRUE(w.complete(a->delivery.packet_id));
  EXPECT_TRUE(w.next());
  EXPECT_FALSE(w.next());
  EXPECT_EQ(w.inflight(), 2u);
  EXPECT_EQ(w.waiting(), 2u);
}

TEST(outbound_window, unknown_ack_is_ignored) {
  outbound_window w(2, 100, 1 << 20);
  EXPECT_FALSE(w.complete(7));
  EXPECT_FALSE(w.received(7));
}

TEST(outbound_window, qos2_flow_waits_for_pubcomp) {
  outbound_window w(1, 100, 1 << 20);
  ASSERT_TRUE(w.push(make(2)));
  ASSERT_TRUE(w.push(make(2)));
  auto first = w.next();
  ASSERT_TRUE(first);
  EXPECT_TRUE(w.received(first->delivery.packet_id));
  EXPECT_FALSE(w.next()) << "PUBREC does not free the slot; PUBCOMP does";
  EXPECT_TRUE(w.complete(first->delivery.packet_id));
  EXPECT_TRUE(w.next());
}

TEST(outbound_window, received_refuses_qos1) {
  outbound_window w(1, 100, 1 << 20);
  ASSERT_TRUE(w.push(make(1)));
  auto d = w.next();
  EXPECT_FALSE(w.received(d->delivery.packet_id));
}

TEST(outbound_window, queue_bounds_count_and_bytes) {
  outbound_window by_count(1, 2, 1 << 20);
  EXPECT_TRUE(by_count.push(make(1)));
  EXPECT_TRUE(by_count.push(make(1)));
  EXPECT_FALSE(by_count.push(make(1)));
  outbound_window by_bytes(1, 100, 10);
  EXPECT_TRUE(by_bytes.push(make(1, "12345678")));  // 8 + topic 1
  EXPECT_FALSE(by_bytes.push(make(1, "12")));
}

TEST(outbound_window, packet_ids_skip_ids_in_use_and_never_zero) {
  outbound_window w(3, 70000, 1u << 30);
  for (int i = 0; i < 70000; ++i) ASSERT_TRUE(w.push(make(1)));
  auto held = w.next();  // keeps its id for the whole run
  ASSERT_TRUE(held);
  for (int i = 0; i < 69990; ++i) {
    auto d = w.next();
    ASSERT_TRUE(d);
    ASSERT_NE(d->delivery.packet_id, 0);
    ASSERT_NE(d->delivery.packet_id, held->delivery.packet_id);
    ASSERT_TRUE(w.complete(d->delivery.packet_id));
  }
}

// [MQTT-4.4.0-1] On reconnect, unacknowledged PUBLISHes are resent with DUP and their ids,
// PUBRELs resent for those that got PUBREC; they come before everything else.
TEST(outbound_window, restore_resends_in_flight_first_with_dup) {
  outbound_window w(10, 100, 1 << 20);
  ASSERT_TRUE(w.push(make(1, "live")));
  auto sent = make(1, "was-sent");
  sent.packet_id = 42;
  auto released = make(2, "was-released");
  released.packet_id = 43;
  released.pubrel_sent = true;
  auto unsent = make(1, "unsent");
  w.restore({sent, released, unsent});

  auto a = w.next();
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->dup);
  EXPECT_EQ(a->delivery.packet_id, 42);
  auto b = w.next();
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->delivery.pubrel_sent);
  EXPECT_EQ(b->delivery.packet_id, 43);
  auto c = w.next();
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->dup);
  EXPECT_EQ(c->delivery.msg->payload, "unsent");
  auto d = w.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->delivery.msg->payload, "live");
}

TEST(outbound_window, drain_returns_inflight_in_send_order_then_waiting) {
  outbound_window w(2, 100, 1 << 20);
  for (auto p : {"a", "b", "c", "d"}) ASSERT_TRUE(w.push(make(1, p)));
  auto a = w.next();
  auto b = w.next();
  ASSERT_TRUE(a && b);
  auto all = w.drain();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].msg->payload, "a");
  EXPECT_EQ(all[0].packet_id, a->delivery.packet_id);
  EXPECT_EQ(all[1].msg->payload, "b");
  EXPECT_EQ(all[2].msg->payload, "c");
  EXPECT_EQ(all[3].msg->payload, "d");
  EXPECT_EQ(w.inflight(), 0u);
  EXPECT_EQ(w.waiting(), 0u);
}

TEST(outbound_window, qos0_behind_others_keeps_order_without_a_slot) {
  outbound_window w(1, 100, 1 << 20);
  ASSERT_TRUE(w.push(make(1, "one")));
  ASSERT_TRUE(w.push(make(0, "zero")));
  auto one = w.next();
  ASSERT_TRUE(one);
  auto zero = w.next();
  ASSERT_TRUE(zero) << "QoS 0 needs no slot";
  EXPECT_EQ(zero->delivery.packet_id, 0);
  EXPECT_EQ(w.inflight(), 1u);
}

}  // namespace
}  // namespace wharf::session
