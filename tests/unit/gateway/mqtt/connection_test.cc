// The broker's per-connection protocol rules, over byte arrays: packets in, packets out.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <thread>

#include "config/config.h"
#include "core/storage.h"
#include "gateway/mqtt/broker.h"
#include "gateway/mqtt/protocol/codec.h"
#include "net/io_pool.h"
#include "session/session_store.h"
#include "tests/support/fake_stream.h"

namespace wharf::gateway {
namespace {

using mqtt::protocol_version;
using mqtt::reason_code;

class connection_test : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.mqtt.receive_maximum = 2;
    cfg_.mqtt.topic_alias_maximum = 3;
    // The fake streams' peer is listener 0, open to clients without credentials.
    config::listener_config open_listener;
    open_listener.anonymous = true;
    cfg_.listeners.push_back(open_listener);
    cfg_.mqtt.max_packet_size = 4096;
    dir_ = std::filesystem::temp_directory_path() /
           ("wharf-conn-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    db_ = core::storage::open({.path = dir_.string()});
    pool_ = std::make_unique<net::io_pool>(1);  // its threads never start: the test runs shard 0
    broker_ = std::make_unique<broker>(cfg_, *db_, *pool_);
    (void)broker_->load();
  }
  void TearDown() override {
    for (auto& c : clients_) c.stream->finish();
    run();
    broker_.reset();
    pool_.reset();
    db_->close();
    std::filesystem::remove_all(dir_);
  }

  struct client {
    std::shared_ptr<test::fake_stream> stream;
    protocol_version version;
  };

  client& open(protocol_version v) {
    auto s = std::make_shared<test::fake_stream>();
    broker_->accept(s);
    clients_.push_back({s, v});
    return clients_.back();
  }

  void send(client& c, const mqtt::packet& p) {
    std::vector<std::uint8_t> bytes;
    mqtt::encode(p, c.version, bytes);
    c.stream->feed(bytes);
  }
  void send_raw(client& c, const std::vector<std::uint8_t>& bytes) { c.stream->feed(bytes); }

  // Runs shard 0's ready handlers until the acks that wait for a commit have gone out: each
  // round waits (an empty write_sync queues behind every batch the shard has handed over)
  // until the storage writer has committed and posted back, and lets short timers expire.
  void run() {
    auto& io = pool_->context(0);
    for (int i = 0; i < 3; ++i) {
      io.restart();
      io.poll();
      ASSERT_FALSE(db_->write_sync(core::write_batch{}));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    io.restart();
    io.poll();
  }

  // Decodes every complete packet the client has been sent, and forgets them.
  std::vector<mqtt::packet> received(client& c) {
    std::vector<mqtt::packet> out;
    auto& bytes = c.stream->output();
    std::span<const std::uint8_t> rest(bytes);
    while (!rest.empty()) {
      mqtt::fixed_header h;
      if (mqtt::parse_fixed_header(rest, h) != mqtt::header_status::complete) break;
      auto r = mqtt::decode(h, rest.subspan(h.size, h.remaining_length), c.version);
      EXPECT_TRUE(r.ok()) << r.detail;
      out.push_back(std::move(r.value));
      rest = rest.subspan(h.size + h.remaining_length);
    }
    bytes.clear();
    return out;
  }

  template <class T>
  T only(client& c) {
    auto packets = received(c);
    EXPECT_EQ(packets.size(), 1u);
    if (packets.size() != 1 || !std::holds_alternative<T>(packets[0])) {
      ADD_FAILURE() << "expected exactly one packet of the asked type";
      return T{};
    }
    return std::get<T>(packets[0]);
  }

  client& connected(const std::string& id, protocol_version v = protocol_version::v5, bool clean = true,
                    mqtt::properties props = {}) {
    auto& c = open(v);
    mqtt::connect_packet p;
    p.client_id = id;
    p.clean_start = clean;
    p.props = std::move(props);
    send(c, p);
    run();
    EXPECT_EQ(only<mqtt::connack_packet>(c).reason, reason_code::success);
    return c;
  }

  void subscribe(client& c, const std::string& filter, mqtt::qos q, std::uint32_t sub_id = 0, bool no_local = false) {
    mqtt::subscribe_packet s;
    s.packet_id = 10;
    s.subscriptions.push_back({filter, {q, no_local, false, 0}});
    if (sub_id) s.props.subscription_identifiers.push_back(sub_id);
    send(c, s);
    run();
    (void)only<mqtt::suback_packet>(c);
  }

  static mqtt::connect_packet connect_as(std::string id, bool clean = true) {
    mqtt::connect_packet p;
    p.client_id = std::move(id);
    p.clean_start = clean;
    return p;
  }

  static mqtt::publish_packet publish(const std::string& topic, mqtt::qos q, std::uint16_t id = 0, std::string payload = "x") {
    mqtt::publish_packet p;
    p.topic = topic;
    p.qos = q;
    p.packet_id = id;
    p.payload = std::move(payload);
    return p;
  }

  reason_code disconnect_reason(client& c) {
    auto d = only<mqtt::disconnect_packet>(c);
    EXPECT_TRUE(c.stream->closed());
    return d.reason;
  }

  config::config cfg_;
  std::filesystem::path dir_;
  std::unique_ptr<core::storage> db_;
  std::unique_ptr<net::io_pool> pool_;
  std::unique_ptr<broker> broker_;
  std::deque<client> clients_;
};

TEST_F(connection_test, connack_advertises_the_broker_limits) {
  auto& c = open(protocol_version::v5);
  send(c, connect_as("dev"));
  run();
  auto ack = only<mqtt::connack_packet>(c);
  EXPECT_EQ(ack.reason, reason_code::success);
  EXPECT_EQ(ack.props.receive_maximum, std::uint16_t{2});
  EXPECT_EQ(ack.props.topic_alias_maximum, std::uint16_t{3});
  EXPECT_EQ(ack.props.maximum_packet_size, std::uint32_t{4096});
  EXPECT_EQ(ack.props.shared_subscription_available, std::uint8_t{1});
  EXPECT_FALSE(ack.props.assigned_client_identifier);
}

// [MQTT-3.1.3-6] An empty client id gets one assigned (v5 returns it in CONNACK).
TEST_F(connection_test, v5_empty_client_id_gets_an_assigned_identifier) {
  auto& c = open(protocol_version::v5);
  send(c, connect_as(""));
  run();
  auto ack = only<mqtt::connack_packet>(c);
  ASSERT_TRUE(ack.props.assigned_client_identifier);
  EXPECT_FALSE(ack.props.assigned_client_identifier->empty());
}

// [MQTT-3.1.3-8] 3.1.1: empty id with clean session 0 -> return code 0x02, then close.
TEST_F(connection_test, v311_empty_id_without_clean_session_is_refused) {
  auto& c = open(protocol_version::v3_1_1);
  send(c, connect_as("", false));
  run();
  EXPECT_EQ(c.stream->output(), (std::vector<std::uint8_t>{0x20, 0x02, 0x00, 0x02}));
  EXPECT_TRUE(c.stream->closed());
}

TEST_F(connection_test, authentication_method_is_refused_with_0x8c) {
  auto& c = open(protocol_version::v5);
  auto p = connect_as("dev");
  p.props.authentication_method = "SCRAM-SHA-1";
  send(c, p);
  run();
  EXPECT_EQ(only<mqtt::connack_packet>(c).reason, reason_code::bad_authentication_method);
  EXPECT_TRUE(c.stream->closed());
}

// [MQTT-3.1.2-2] An unsupported protocol level: 3.1.1 CONNACK return code 0x01, then close.
TEST_F(connection_test, unsupported_protocol_level_is_refused) {
  auto& c = open(protocol_version::v3_1_1);
  // CONNECT "MQTT" level 9, clean, keep alive 60, client id "x".
  send_raw(c, {0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x09, 0x02, 0x00, 0x3C, 0x00, 0x01, 'x'});
  run();
  EXPECT_EQ(c.stream->output(), (std::vector<std::uint8_t>{0x20, 0x02, 0x00, 0x01}));
  EXPECT_TRUE(c.stream->closed());
}

// A malformed v5 CONNECT is answered in the v5 form: CONNACK 0x81 or 0x82.
TEST_F(connection_test, malformed_v5_connect_gets_a_v5_connack) {
  auto& c = open(protocol_version::v5);
  // v5 CONNECT whose properties repeat Session Expiry Interval (0x11) -> protocol error.
  send_raw(c, {0x10, 0x18, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3C, 0x0A, 0x11, 0, 0, 0, 1,
               0x11, 0, 0, 0, 2, 0x00, 0x01, 'x'});
  run();
  auto ack = only<mqtt::connack_packet>(c);
  EXPECT_TRUE(ack.reason == reason_code::protocol_error || ack.reason == reason_code::malformed_packet);
  EXPECT_TRUE(c.stream->closed());
}

// [MQTT-3.1.0-1] The first packet must be CONNECT: close without a reply.
TEST_F(connection_test, first_packet_other_than_connect_closes_silently) {
  auto& c = open(protocol_version::v5);
  send_raw(c, {0xC0, 0x00});
  run();
  EXPECT_TRUE(c.stream->output().empty());
  EXPECT_TRUE(c.stream->closed());
}

// [MQTT-3.1.0-2] A second CONNECT is a protocol error.
TEST_F(connection_test, second_connect_is_a_protocol_error) {
  auto& c = connected("dev");
  send(c, connect_as("dev"));
  run();
  EXPECT_EQ(disconnect_reason(c), reason_code::protocol_error);
}

// [MQTT-3.3.4-6] Clients may not send subscription identifiers.
TEST_F(connection_test, subscription_identifier_in_client_publish_is_a_protocol_error) {
  auto& c = connected("dev");
  auto p = publish("a", mqtt::qos::at_most_once);
  p.props.subscription_identifiers.push_back(4);
  send(c, p);
  run();
  EXPECT_EQ(disconnect_reason(c), reason_code::protocol_error);
}

// [MQTT-3.3.4-9] More unacknowledged QoS 2 publishes than our Receive Maximum -> 0x93.
TEST_F(connection_test, receive_maximum_exceeded_disconnects_with_0x93) {
  auto& c = connected("dev");
  for (std::uint16_t id = 1; id <= 2; ++id) send(c, publish("a", mqtt::qos::exactly_once, id));
  run();
  EXPECT_EQ(received(c).size(), 2u) << "two PUBRECs";
  send(c, publish("a", mqtt::qos::exactly_once, 3));
  run();
  EXPECT_EQ(disconnect_reason(c), reason_code::receive_maximum_exceeded);
}

// [MQTT-3.3.2-9/10] A topic alias above our Topic Alias Maximum -> 0x94.
TEST_F(connection_test, topic_alias_above_maximum_disconnects_with_0x94) {
  auto& c = connected("dev");
  auto p = publish("a", mqtt::qos::at_most_once);
  p.props.topic_alias = 4;
  send(c, p);
  run();
  EXPECT_EQ(disconnect_reason(c), reason_code::topic_alias_invalid);
}

TEST_F(connection_test, inbound_topic_alias_resolves_for_subscribers) {
  auto& sub = connected("sub");
  subscribe(sub, "x/y", mqtt::qos::at_most_once);
  auto& c = connected("pub");
  auto first = publish("x/y", mqtt::qos::at_most_once, 0, "1");
  first.props.topic_alias = 1;
  auto second = publish("", mqtt::qos::at_most_once, 0, "2");
  second.props.topic_alias = 1;
  send(c, first);
  send(c, second);
  run();
  auto got = received(sub);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(std::get<mqtt::publish_packet>(got[1]).topic, "x/y");
  EXPECT_EQ(std::get<mqtt::publish_packet>(got[1]).payload, "2");
}

// [MQTT-4.3.3] QoS 2: a resent PUBLISH before PUBREL is not delivered twice; PUBREL for an
// unknown id gets PUBCOMP 0x92.
TEST_F(connection_test, qos2_exactly_once_flow) {
  auto& sub = connected("sub");
  subscribe(sub, "q2", mqtt::qos::exactly_once);
  auto& c = connected("pub");
  send(c, publish("q2", mqtt::qos::exactly_once, 7));
  auto dup = publish("q2", mqtt::qos::exactly_once, 7);
  dup.dup = true;
  send(c, dup);
  run();
  auto recs = received(c);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(std::get<mqtt::ack_packet>(recs[0]).type, mqtt::packet_type::pubrec);
  EXPECT_EQ(received(sub).size(), 1u) << "delivered once";
  send(c, mqtt::ack_packet{mqtt::packet_type::pubrel, 7, reason_code::success, {}});
  run();
  auto comp = only<mqtt::ack_packet>(c);
  EXPECT_EQ(comp.type, mqtt::packet_type::pubcomp);
  EXPECT_EQ(comp.reason, reason_code::success);
  send(c, mqtt::ack_packet{mqtt::packet_type::pubrel, 8, reason_code::success, {}});
  run();
  EXPECT_EQ(only<mqtt::ack_packet>(c).reason, reason_code::packet_identifier_not_found);
}

// The durability contract: PUBACK for a message stored for an offline session only after
// the storage batch holding it is committed.
TEST_F(connection_test, puback_for_an_offline_session_waits_for_the_commit) {
  mqtt::properties keep;
  keep.session_expiry_interval = 300;
  auto& sub = connected("offline-sub", protocol_version::v5, false, keep);
  subscribe(sub, "store/me", mqtt::qos::at_least_once);
  send(sub, mqtt::disconnect_packet{});
  run();
  auto& c = connected("pub");
  send(c, publish("store/me", mqtt::qos::at_least_once, 1));
  EXPECT_TRUE(c.stream->output().empty()) << "no PUBACK before the group commit";
  run();
  auto ack = only<mqtt::ack_packet>(c);
  EXPECT_EQ(ack.type, mqtt::packet_type::puback);
  const auto queue = session::load_queue(*db_, "offline-sub");
  ASSERT_EQ(queue.size(), 1u) << "durable before acknowledged";
  EXPECT_EQ(queue[0].second.msg.topic, "store/me");
}

// [MQTT-3.3.4-3..5] Overlapping subscriptions: one copy, the highest QoS, every identifier.
TEST_F(connection_test, overlapping_subscriptions_deliver_once_with_max_qos_and_all_ids) {
  auto& sub = connected("sub");
  subscribe(sub, "a/+", mqtt::qos::at_most_once, 1);
  subscribe(sub, "a/#", mqtt::qos::at_least_once, 2);
  auto& c = connected("pub");
  send(c, publish("a/b", mqtt::qos::at_least_once, 1));
  run();
  auto p = only<mqtt::publish_packet>(sub);
  EXPECT_EQ(p.qos, mqtt::qos::at_least_once);
  std::sort(p.props.subscription_identifiers.begin(), p.props.subscription_identifiers.end());
  EXPECT_EQ(p.props.subscription_identifiers, (std::vector<std::uint32_t>{1, 2}));
}

TEST_F(connection_test, no_local_does_not_echo_to_the_publisher) {
  auto& c = connected("self");
  subscribe(c, "echo", mqtt::qos::at_most_once, 0, /*no_local=*/true);
  send(c, publish("echo", mqtt::qos::at_most_once));
  run();
  EXPECT_TRUE(received(c).empty());
}

TEST_F(connection_test, outbound_topic_aliases_up_to_the_clients_maximum) {
  mqtt::properties props;
  props.topic_alias_maximum = 1;
  auto& sub = connected("sub", protocol_version::v5, true, props);
  subscribe(sub, "t/#", mqtt::qos::at_most_once);
  auto& c = connected("pub");
  for (const char* topic : {"t/1", "t/1", "t/2"}) send(c, publish(topic, mqtt::qos::at_most_once));
  run();
  auto got = received(sub);
  ASSERT_EQ(got.size(), 3u);
  auto& first = std::get<mqtt::publish_packet>(got[0]);
  auto& second = std::get<mqtt::publish_packet>(got[1]);
  auto& third = std::get<mqtt::publish_packet>(got[2]);
  EXPECT_EQ(first.topic, "t/1");
  EXPECT_EQ(first.props.topic_alias, std::uint16_t{1});
  EXPECT_EQ(second.topic, "") << "alias only";
  EXPECT_EQ(second.props.topic_alias, std::uint16_t{1});
  EXPECT_EQ(third.topic, "t/2") << "aliases exhausted: full topic";
  EXPECT_FALSE(third.props.topic_alias);
}

TEST_F(connection_test, unsubscribe_of_an_unknown_filter_answers_0x11) {
  auto& c = connected("dev");
  mqtt::unsubscribe_packet u;
  u.packet_id = 3;
  u.filters.push_back("never/subscribed");
  send(c, u);
  run();
  auto ack = only<mqtt::unsuback_packet>(c);
  ASSERT_EQ(ack.reasons.size(), 1u);
  EXPECT_EQ(ack.reasons[0], reason_code::no_subscription_existed);
}

// [MQTT-3.3.1-4] QoS 3 is malformed: DISCONNECT 0x81 and close.
TEST_F(connection_test, qos3_publish_is_malformed) {
  auto& c = connected("dev");
  send_raw(c, {0x36, 0x04, 0x00, 0x01, 0x61, 0x00});
  run();
  EXPECT_EQ(disconnect_reason(c), reason_code::malformed_packet);
}

TEST_F(connection_test, packet_above_maximum_size_disconnects_with_0x95) {
  auto& c = connected("dev");
  send(c, publish("big", mqtt::qos::at_most_once, 0, std::string(5000, 'x')));
  run();
  EXPECT_EQ(disconnect_reason(c), reason_code::packet_too_large);
}

// [MQTT-3.1.4-3] Takeover: the old connection gets 0x8E and its will is published.
TEST_F(connection_test, takeover_sends_0x8e_and_publishes_the_will) {
  auto& watcher = connected("watcher");
  subscribe(watcher, "wills/#", mqtt::qos::at_most_once);
  auto& old = open(protocol_version::v5);
  auto p = connect_as("same");
  p.will.emplace();
  p.will->topic = "wills/same";
  p.will->payload = "gone";
  send(old, p);
  run();
  (void)received(old);
  auto& fresh = open(protocol_version::v5);
  send(fresh, connect_as("same"));
  run();
  EXPECT_EQ(disconnect_reason(old), reason_code::session_taken_over);
  EXPECT_EQ(only<mqtt::connack_packet>(fresh).reason, reason_code::success);
  EXPECT_EQ(only<mqtt::publish_packet>(watcher).payload, "gone");
}

// One message to subscribers of every kind: each gets its own flags, packet id, QoS and
// properties, whether it was sent the shard's one encoding or one of its own (a
// subscription identifier, topic aliases).
TEST_F(connection_test, fan_out_gives_each_subscriber_its_own_publish) {
  auto& v5_qos0 = connected("v5-qos0");
  subscribe(v5_qos0, "fan/#", mqtt::qos::at_most_once);
  auto& v5_qos1 = connected("v5-qos1");
  subscribe(v5_qos1, "fan/#", mqtt::qos::at_least_once);
  auto& v3_qos2 = connected("v3-qos2", protocol_version::v3_1_1);
  subscribe(v3_qos2, "fan/#", mqtt::qos::exactly_once);
  auto& with_id = connected("with-id");
  subscribe(with_id, "fan/#", mqtt::qos::at_least_once, 77);
  mqtt::properties aliases;
  aliases.topic_alias_maximum = 2;
  auto& with_alias = connected("with-alias", protocol_version::v5, true, aliases);
  subscribe(with_alias, "fan/#", mqtt::qos::at_most_once);

  auto& pub = connected("pub");
  auto p = publish("fan/out", mqtt::qos::exactly_once, 9, "payload");
  p.props.message_expiry_interval = 600;
  p.props.user_properties.push_back({"k", "v"});
  send(pub, p);
  run();
  auto first = only<mqtt::publish_packet>(v5_qos1);
  EXPECT_EQ(first.qos, mqtt::qos::at_least_once);
  EXPECT_NE(first.packet_id, 0);
  EXPECT_EQ(first.payload, "payload");
  EXPECT_EQ(first.props.user_properties.size(), 1u);
  EXPECT_TRUE(first.props.message_expiry_interval && *first.props.message_expiry_interval <= 600 &&
              *first.props.message_expiry_interval >= 599);
  send(pub, publish("fan/out", mqtt::qos::at_least_once, 10, "second"));
  run();
  auto second = only<mqtt::publish_packet>(v5_qos1);
  EXPECT_EQ(second.payload, "second");
  EXPECT_NE(second.packet_id, first.packet_id);  // its own packet id, patched into the shared bytes
  EXPECT_FALSE(second.props.message_expiry_interval);
  auto q0 = received(v5_qos0);
  ASSERT_EQ(q0.size(), 2u);
  EXPECT_EQ(std::get<mqtt::publish_packet>(q0[0]).qos, mqtt::qos::at_most_once);
  EXPECT_EQ(std::get<mqtt::publish_packet>(q0[0]).packet_id, 0);
  EXPECT_EQ(std::get<mqtt::publish_packet>(q0[1]).payload, "second");
  auto v3 = received(v3_qos2);
  ASSERT_EQ(v3.size(), 2u);
  EXPECT_EQ(std::get<mqtt::publish_packet>(v3[0]).qos, mqtt::qos::exactly_once);  // min(2, 2)
  EXPECT_EQ(std::get<mqtt::publish_packet>(v3[1]).qos, mqtt::qos::at_least_once);  // min(1, 2)
  EXPECT_TRUE(std::get<mqtt::publish_packet>(v3[0]).props.user_properties.empty());  // 3.1.1 has none
  const auto with_ids = received(with_id);
  ASSERT_EQ(with_ids.size(), 2u);
  for (const auto& got : with_ids)
    EXPECT_EQ(std::get<mqtt::publish_packet>(got).props.subscription_identifiers, std::vector<std::uint32_t>{77});
  auto aliased = received(with_alias);
  ASSERT_EQ(aliased.size(), 2u);
  EXPECT_EQ(std::get<mqtt::publish_packet>(aliased[0]).topic, "fan/out");
  EXPECT_EQ(std::get<mqtt::publish_packet>(aliased[0]).props.topic_alias, std::uint16_t{1});
  EXPECT_EQ(std::get<mqtt::publish_packet>(aliased[1]).topic, "");
}

// What a client sends right behind its CONNECT waits while the CONNECT takes the session
// over: it runs once the CONNACK is out, not as packets before a CONNECT.
TEST_F(connection_test, packets_pipelined_behind_a_takeover_connect_wait_for_its_connack) {
  auto& old = connected("same");
  auto& fresh = open(protocol_version::v5);
  std::vector<std::uint8_t> bytes;
  mqtt::encode(connect_as("same"), protocol_version::v5, bytes);
  mqtt::subscribe_packet s;
  s.packet_id = 3;
  s.subscriptions.push_back({"pipelined/#", {mqtt::qos::at_least_once, false, false, 0}});
  mqtt::encode(s, protocol_version::v5, bytes);
  send_raw(fresh, bytes);
  run();
  EXPECT_EQ(disconnect_reason(old), reason_code::session_taken_over);
  auto packets = received(fresh);
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(std::get<mqtt::connack_packet>(packets[0]).reason, reason_code::success);
  EXPECT_EQ(std::get<mqtt::suback_packet>(packets[1]).reasons, std::vector<reason_code>{reason_code::granted_qos_1});
  EXPECT_FALSE(fresh.stream->closed());
}

// [MQTT-3.14.4-3] A normal DISCONNECT discards the will; 0x04 publishes it.
TEST_F(connection_test, will_follows_the_disconnect_reason) {
  auto& watcher = connected("watcher");
  subscribe(watcher, "wills/#", mqtt::qos::at_most_once);
  for (auto reason : {reason_code::success, reason_code::disconnect_with_will}) {
    auto& c = open(protocol_version::v5);
    auto p = connect_as("w");
    p.will.emplace();
    p.will->topic = "wills/w";
    p.will->payload = "bye";
    send(c, p);
    run();
    send(c, mqtt::disconnect_packet{reason, {}});
    run();
    EXPECT_EQ(received(watcher).size(), reason == reason_code::success ? 0u : 1u);
  }
}

}  // namespace
}  // namespace wharf::gateway
