// The connection's protocol rules with no broker, no storage and no sockets: packets go in
// as bytes with the current time, and what the machine asks of its host is recorded.
#include "gateway/mqtt/protocol/connection_machine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "test_util.h"

namespace wharf::mqtt {
namespace {

// Records every call; its answers are set by each test.
class recording_host final : public connection_host {
 public:
  connection_limits limits_in_force;
  std::vector<std::uint8_t> written;
  bool reading = true;
  std::optional<close_cause> closed;
  std::string close_why;
  int rate_limits = 0;
  std::vector<connect_request> connects;
  std::vector<std::string> published;  // topics handed to publish()
  std::vector<ack_ticket> tickets;
  publish_commits publish_answer;
  bool allow_publish = true;
  bool hold_next = false;
  std::vector<std::string> hold_once;  // PUBLISH topics held the first time they are seen
  std::vector<std::uint16_t> stored_qos2, forgotten_qos2, completed;
  std::vector<ack_ticket> stored_qos2_tickets, sent_tickets;
  std::vector<std::vector<reason_code>> subscribe_reasons_seen;
  change_commits change_answer;
  bool received_known = true;

  const connection_limits& limits() const override { return limits_in_force; }
  void write(std::vector<std::uint8_t> bytes) override { written.insert(written.end(), bytes.begin(), bytes.end()); }
  void write_shared(std::shared_ptr<const std::vector<std::uint8_t>> bytes) override {
    written.insert(written.end(), bytes->begin(), bytes->end());
    shared_writes.push_back(std::move(bytes));
  }
  std::vector<std::shared_ptr<const std::vector<std::uint8_t>>> shared_writes;

  void set_reading(bool on) override { reading = on; }
  void closing(const close_cause& cause) override {
    closed = cause;
    close_why = std::string(cause.why);
  }
  void rate_limited() override { ++rate_limits; }
  void connect(connect_request request) override { connects.push_back(std::move(request)); }
  bool holds(const packet& p) override {
    if (std::exchange(hold_next, false)) return true;
    const auto* publish = std::get_if<publish_packet>(&p);
    if (publish == nullptr) return false;
    const auto it = std::find(hold_once.begin(), hold_once.end(), publish->topic);
    if (it == hold_once.end()) return false;
    hold_once.erase(it);
    return true;
  }
  bool may_publish(std::string_view) override { return allow_publish; }
  publish_commits publish(publish_packet& p, ack_ticket ticket) override {
    published.push_back(p.topic);
    tickets.push_back(ticket);
    return publish_answer;
  }
  void store_inbound_qos2(std::uint16_t id, ack_ticket ticket) override {
    stored_qos2.push_back(id);
    stored_qos2_tickets.push_back(ticket);
  }
  void forget_inbound_qos2(std::uint16_t id) override { forgotten_qos2.push_back(id); }
  change_commits subscribe(const subscribe_packet&, std::uint32_t, std::vector<reason_code>& reasons,
                           ack_ticket ticket) override {
    subscribe_reasons_seen.push_back(reasons);
    for (auto& r : reasons) {
      if (r == reason_code::success) r = reason_code::granted_qos_1;
    }
    tickets.push_back(ticket);
    return change_answer;
  }
  change_commits unsubscribe(const unsubscribe_packet& p, std::vector<reason_code>& reasons, ack_ticket) override {
    reasons.assign(p.filters.size(), reason_code::success);
    return change_answer;
  }
  void acknowledgement_sent(ack_ticket ticket) override { sent_tickets.push_back(ticket); }
  void delivery_completed(std::uint16_t id) override { completed.push_back(id); }
  bool delivery_received(std::uint16_t) override { return received_known; }
};

class connection_machine_test : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.limits_in_force.receive_maximum = 2;
    host_.limits_in_force.topic_alias_maximum = 3;
    host_.limits_in_force.max_keep_alive_s = 60;
    host_.limits_in_force.max_session_expiry_s = 3600;
  }

  void send(const packet& p, std::int64_t now_ms = 0) {
    machine_.receive(test::encode(p, version_), now_ms);
  }
  // Everything written since the last call, decoded.
  std::vector<packet> output() {
    std::vector<packet> out;
    framer f(1 << 20);
    f.feed(std::span<const std::uint8_t>(host_.written), [&](const fixed_header& h, std::span<const std::uint8_t> body) {
      auto decoded = decode(h, body, version_);
      EXPECT_TRUE(decoded.ok()) << decoded.detail;
      out.push_back(std::move(decoded.value));
      return true;
    });
    host_.written.clear();
    return out;
  }
  template <class T>
  T only(std::vector<packet> packets) {
    EXPECT_EQ(packets.size(), 1u);
    if (packets.size() != 1 || !std::holds_alternative<T>(packets[0])) {
      ADD_FAILURE() << "expected one packet of the type asked for";
      return T{};
    }
    return std::get<T>(packets[0]);
  }
  // A machine of its own on `host` (other limits, another version), connected and admitted.
  static std::unique_ptr<connection_machine> connected(recording_host& host, protocol_version version,
                                                       connect_packet c = {}) {
    auto machine = std::make_unique<connection_machine>(host, 0);
    if (c.client_id.empty()) c.client_id = "other";
    c.version = version;
    machine->receive(test::encode(c, version), 0);
    machine->accept_connect(false, {});
    machine->release();
    host.written.clear();
    return machine;
  }
  // CONNECT, admitted at once.
  void connect(protocol_version v, connect_packet p = {}) {
    version_ = v;
    p.version = v;
    if (p.client_id.empty()) p.client_id = "dev-1";
    send(p);
    ASSERT_EQ(host_.connects.size(), 1u);
    machine_.accept_connect(false, {});
    machine_.release();
    const auto ack = only<connack_packet>(output());
    ASSERT_EQ(ack.reason, reason_code::success);
  }
  publish_packet publish(std::string topic, qos q, std::uint16_t id) {
    publish_packet p;
    p.topic = std::move(topic);
    p.qos = q;
    p.packet_id = id;
    p.payload = "x";
    return p;
  }
  std::vector<std::pair<packet_type, std::uint16_t>> acks(const std::vector<packet>& packets) {
    std::vector<std::pair<packet_type, std::uint16_t>> out;
    for (const auto& p : packets) {
      if (const auto* a = std::get_if<ack_packet>(&p)) out.emplace_back(a->type, a->packet_id);
    }
    return out;
  }

  recording_host host_;
  connection_machine machine_{host_, 0};
  protocol_version version_ = protocol_version::v5;
};

TEST_F(connection_machine_test, first_packet_not_connect_closes_without_answer) {
  send(pingreq_packet{});
  ASSERT_TRUE(host_.closed);
  EXPECT_TRUE(host_.closed->protocol_error);
  EXPECT_FALSE(host_.closed->reason);
  EXPECT_TRUE(host_.written.empty());
  EXPECT_EQ(machine_.current_phase(), connection_machine::phase::closed);
}

TEST_F(connection_machine_test, connect_refused_by_protocol_rules) {
  struct refused {
    protocol_version version;
    connect_packet packet;
    reason_code expected;
  };
  connect_packet auth_method;
  auth_method.client_id = "a";
  auth_method.props.authentication_method = "SCRAM";
  connect_packet zero_receive_maximum;
  zero_receive_maximum.client_id = "a";
  zero_receive_maximum.props.receive_maximum = 0;
  connect_packet long_id;
  long_id.client_id = std::string(300, 'c');
  connect_packet empty_id_persistent;
  empty_id_persistent.clean_start = false;
  for (const auto& [version, packet, expected] :
       {refused{protocol_version::v5, auth_method, reason_code::bad_authentication_method},
        refused{protocol_version::v5, zero_receive_maximum, reason_code::protocol_error},
        refused{protocol_version::v5, long_id, reason_code::client_identifier_not_valid},
        refused{protocol_version::v3_1_1, empty_id_persistent, reason_code::client_identifier_not_valid}}) {
    recording_host host;
    connection_machine machine(host, 0);
    auto p = packet;
    p.version = version;
    machine.receive(test::encode(p, version), 0);
    EXPECT_TRUE(host.connects.empty());
    ASSERT_TRUE(host.closed);
    version_ = version;
    host_.written = host.written;
    // 3.1.1 carries the code as its return code: 0x85 is 2 there, and decodes back as 0x85.
    EXPECT_EQ(only<connack_packet>(output()).reason, expected);
  }
}

TEST_F(connection_machine_test, connect_negotiates_keep_alive_expiry_and_holds_what_follows) {
  version_ = protocol_version::v5;
  connect_packet p;
  p.version = version_;
  p.client_id = "";
  p.keep_alive_s = 600;                          // above the broker's 60
  p.props.session_expiry_interval = 86400;       // above the broker's 3600
  p.props.receive_maximum = 5;
  auto bytes = test::encode(p, version_);
  subscribe_packet sub;
  sub.packet_id = 1;
  sub.subscriptions.push_back({"a/#", {}});
  const auto sub_bytes = test::encode(sub, version_);
  bytes.insert(bytes.end(), sub_bytes.begin(), sub_bytes.end());  // pipelined in one read
  machine_.receive(bytes, 0);

  ASSERT_EQ(host_.connects.size(), 1u);
  EXPECT_EQ(host_.connects[0].session_expiry_s, 3600u);
  EXPECT_TRUE(host_.connects[0].client_id.empty());
  EXPECT_EQ(machine_.client_receive_maximum(), 5);
  EXPECT_FALSE(host_.reading);                       // held while the host admits it
  EXPECT_TRUE(host_.subscribe_reasons_seen.empty());

  machine_.accept_connect(false, "wharf-assigned");
  auto ack = only<connack_packet>(output());
  EXPECT_EQ(ack.props.server_keep_alive, std::uint16_t{60});
  EXPECT_EQ(ack.props.session_expiry_interval, 3600u);
  EXPECT_EQ(ack.props.assigned_client_identifier, "wharf-assigned");
  EXPECT_EQ(ack.props.receive_maximum, std::uint16_t{2});
  EXPECT_TRUE(host_.subscribe_reasons_seen.empty());  // still held until release()

  machine_.release();
  EXPECT_TRUE(host_.reading);
  EXPECT_EQ(only<suback_packet>(output()).reasons, std::vector<reason_code>{reason_code::granted_qos_1});
}

TEST_F(connection_machine_test, keep_alive_lapses_after_one_and_a_half_times) {
  connect_packet p;
  p.keep_alive_s = 10;
  connect(protocol_version::v5, p);
  machine_.tick(15'000);
  EXPECT_FALSE(host_.closed);
  send(pingreq_packet{}, 15'000);
  EXPECT_TRUE(std::holds_alternative<pingresp_packet>(output().at(0)));
  machine_.tick(30'000);
  EXPECT_FALSE(host_.closed);
  machine_.tick(30'001);
  ASSERT_TRUE(host_.closed);
  EXPECT_EQ(host_.closed->reason, reason_code::keep_alive_timeout);
  EXPECT_EQ(only<disconnect_packet>(output()).reason, reason_code::keep_alive_timeout);
}

TEST_F(connection_machine_test, connect_timeout_closes_silently) {
  machine_.tick(host_.limits_in_force.connect_timeout_ms);
  EXPECT_FALSE(host_.closed);
  machine_.tick(host_.limits_in_force.connect_timeout_ms + 1);
  ASSERT_TRUE(host_.closed);
  EXPECT_FALSE(host_.closed->reason);
}

TEST_F(connection_machine_test, acknowledgements_leave_in_packet_order_after_their_commits) {
  connect(protocol_version::v5);
  host_.publish_answer = {.commits = 1, .then_store_qos2 = false};
  send(publish("t/1", qos::at_least_once, 1));
  host_.publish_answer = {};
  send(publish("t/2", qos::at_least_once, 2));  // waits for nothing, but behind the first
  EXPECT_TRUE(output().empty());
  machine_.commit_done(host_.tickets.at(0), reason_code::success);
  EXPECT_EQ(acks(output()), (std::vector<std::pair<packet_type, std::uint16_t>>{{packet_type::puback, 1},
                                                                               {packet_type::puback, 2}}));
  EXPECT_EQ(machine_.inbound_unacked(), 0u);
}

TEST_F(connection_machine_test, receive_maximum_exceeded_disconnects) {
  connect(protocol_version::v5);
  host_.publish_answer = {.commits = 1, .then_store_qos2 = false};
  send(publish("t", qos::at_least_once, 1));
  send(publish("t", qos::at_least_once, 2));
  EXPECT_FALSE(host_.closed);
  send(publish("t", qos::at_least_once, 3));
  ASSERT_TRUE(host_.closed);
  EXPECT_EQ(host_.closed->reason, reason_code::receive_maximum_exceeded);
  EXPECT_EQ(only<disconnect_packet>(output()).reason, reason_code::receive_maximum_exceeded);
  EXPECT_EQ(host_.published.size(), 2u);
}

TEST_F(connection_machine_test, topic_aliases_resolve_and_bad_ones_disconnect) {
  connect(protocol_version::v5);
  auto set = publish("sensors/1", qos::at_most_once, 0);
  set.props.topic_alias = 2;
  send(set);
  auto use = publish("", qos::at_most_once, 0);
  use.props.topic_alias = 2;
  send(use);
  EXPECT_EQ(host_.published, (std::vector<std::string>{"sensors/1", "sensors/1"}));

  auto unknown = publish("", qos::at_most_once, 0);
  unknown.props.topic_alias = 3;
  send(unknown);
  ASSERT_TRUE(host_.closed);
  EXPECT_EQ(host_.closed->reason, reason_code::protocol_error);
}

TEST_F(connection_machine_test, topic_alias_above_maximum_is_invalid) {
  connect(protocol_version::v5);
  auto p = publish("a", qos::at_most_once, 0);
  p.props.topic_alias = 4;
  send(p);
  ASSERT_TRUE(host_.closed);
  EXPECT_EQ(only<disconnect_packet>(output()).reason, reason_code::topic_alias_invalid);
}

TEST_F(connection_machine_test, qos2_resend_is_acknowledged_not_routed_again_and_pubrel_completes) {
  connect(protocol_version::v5);
  send(publish("t", qos::exactly_once, 7));
  auto resend = publish("t", qos::exactly_once, 7);
  resend.dup = true;
  send(resend);
  EXPECT_EQ(host_.published.size(), 1u);
  EXPECT_EQ(acks(output()), (std::vector<std::pair<packet_type, std::uint16_t>>{{packet_type::pubrec, 7},
                                                                               {packet_type::pubrec, 7}}));
  send(ack_packet{.type = packet_type::pubrel, .packet_id = 7, .reason = reason_code::success, .props = {}});
  auto comp = only<ack_packet>(output());
  EXPECT_EQ(comp.type, packet_type::pubcomp);
  EXPECT_EQ(comp.reason, reason_code::success);
  EXPECT_EQ(host_.forgotten_qos2, std::vector<std::uint16_t>{7});
  EXPECT_EQ(machine_.inbound_unacked(), 0u);

  send(ack_packet{.type = packet_type::pubrel, .packet_id = 8, .reason = reason_code::success, .props = {}});
  EXPECT_EQ(only<ack_packet>(output()).reason, reason_code::packet_identifier_not_found);
}

TEST_F(connection_machine_test, qos2_id_is_stored_as_a_second_stage) {
  connect(protocol_version::v5);
  host_.publish_answer = {.commits = 1, .then_store_qos2 = true};
  send(publish("t", qos::exactly_once, 9));
  machine_.commit_done(host_.tickets.at(0), reason_code::success);
  ASSERT_EQ(host_.stored_qos2, std::vector<std::uint16_t>{9});
  EXPECT_TRUE(output().empty());  // its own commit still to come
  machine_.commit_done(host_.stored_qos2_tickets.at(0), reason_code::success);
  EXPECT_EQ(acks(output()), (std::vector<std::pair<packet_type, std::uint16_t>>{{packet_type::pubrec, 9}}));
}

TEST_F(connection_machine_test, refused_publish_v5_gets_the_reason_v3_is_disconnected) {
  connect(protocol_version::v5);
  host_.publish_answer = {.commits = 1, .then_store_qos2 = true};
  send(publish("t", qos::exactly_once, 3));
  machine_.commit_done(host_.tickets.at(0), reason_code::quota_exceeded);
  auto rec = only<ack_packet>(output());
  EXPECT_EQ(rec.type, packet_type::pubrec);
  EXPECT_EQ(rec.reason, reason_code::quota_exceeded);
  EXPECT_TRUE(host_.stored_qos2.empty());  // no second stage for a refused copy
  EXPECT_EQ(host_.forgotten_qos2, std::vector<std::uint16_t>{3});
  EXPECT_EQ(machine_.inbound_unacked(), 0u);

  recording_host host;
  auto v3 = connected(host, protocol_version::v3_1_1);
  host.publish_answer = {.commits = 1, .then_store_qos2 = false};
  v3->receive(test::encode(publish("t", qos::at_least_once, 4), protocol_version::v3_1_1), 0);
  v3->commit_done(host.tickets.at(0), reason_code::quota_exceeded);
  EXPECT_TRUE(host.written.empty());  // no PUBACK: 3.1.1 has no negative one
  ASSERT_TRUE(host.closed);
  EXPECT_EQ(host.closed->reason, reason_code::quota_exceeded);
}

TEST_F(connection_machine_test, acl_denial_is_acknowledged_per_version) {
  connect(protocol_version::v5);
  host_.allow_publish = false;
  send(publish("secret", qos::at_least_once, 5));
  EXPECT_EQ(only<ack_packet>(output()).reason, reason_code::not_authorized);
  EXPECT_TRUE(host_.published.empty());
}

TEST_F(connection_machine_test, invalid_utf8_payload_with_format_indicator_is_refused) {
  connect(protocol_version::v5);
  auto p = publish("t", qos::at_least_once, 6);
  p.payload = "\xff\xfe";
  p.props.payload_format_indicator = 1;
  send(p);
  EXPECT_EQ(only<ack_packet>(output()).reason, reason_code::payload_format_invalid);
  EXPECT_TRUE(host_.published.empty());
}

TEST_F(connection_machine_test, over_the_publish_rate_input_waits_until_the_bucket_refills) {
  host_.limits_in_force.max_publish_rate = 1;
  auto machine = connected(host_, version_);
  auto two = test::encode(publish("a", qos::at_most_once, 0), version_);
  const auto second = test::encode(publish("b", qos::at_most_once, 0), version_);
  two.insert(two.end(), second.begin(), second.end());
  machine->receive(two, 0);
  machine->receive(two, 0);  // more, read before the pause took effect
  EXPECT_EQ(host_.published.size(), 2u);  // the burst of one, then one in debt
  EXPECT_FALSE(host_.reading);
  EXPECT_EQ(host_.rate_limits, 1);
  machine->tick(1000);
  EXPECT_EQ(host_.published.size(), 3u);
  machine->tick(3000);
  EXPECT_EQ(host_.published, (std::vector<std::string>{"a", "b", "a", "b"}));
  EXPECT_TRUE(host_.reading);
}

TEST_F(connection_machine_test, what_the_host_holds_runs_in_order_on_release) {
  connect(protocol_version::v5);
  host_.hold_next = true;
  send(publish("first", qos::at_most_once, 0));
  send(publish("second", qos::at_most_once, 0));
  EXPECT_TRUE(host_.published.empty());
  EXPECT_FALSE(host_.reading);
  machine_.release();
  EXPECT_EQ(host_.published, (std::vector<std::string>{"first", "second"}));
  EXPECT_TRUE(host_.reading);
}

TEST_F(connection_machine_test, a_packet_held_again_on_release_keeps_its_place) {
  connect(protocol_version::v5);
  host_.hold_once = {"a", "b"};
  for (const char* topic : {"a", "b", "c", "d"}) send(publish(topic, qos::at_most_once, 0));
  EXPECT_TRUE(host_.published.empty());
  machine_.release();  // "a" runs, "b" is held again, and "c", "d" behind it
  EXPECT_EQ(host_.published, std::vector<std::string>{"a"});
  EXPECT_FALSE(host_.reading);
  machine_.release();
  EXPECT_EQ(host_.published, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_TRUE(host_.reading);
}

TEST_F(connection_machine_test, subscribe_checks_filters_before_the_host) {
  connect(protocol_version::v5);
  subscribe_packet sub;
  sub.packet_id = 2;
  sub.subscriptions.push_back({"a/#/b", {}});
  sub.subscriptions.push_back({"ok/+", {}});
  host_.change_answer = {.commits = 0, .tell_when_sent = true};
  send(sub);
  ASSERT_EQ(host_.subscribe_reasons_seen.size(), 1u);
  EXPECT_EQ(host_.subscribe_reasons_seen[0],
            (std::vector<reason_code>{reason_code::topic_filter_invalid, reason_code::success}));
  EXPECT_EQ(only<suback_packet>(output()).reasons,
            (std::vector<reason_code>{reason_code::topic_filter_invalid, reason_code::granted_qos_1}));
  EXPECT_EQ(host_.sent_tickets, host_.tickets);

  subscribe_packet shared;
  shared.packet_id = 3;
  shared.subscriptions.push_back({"$share/g/x", {.max_qos = qos::at_most_once, .no_local = true}});
  send(shared);
  ASSERT_TRUE(host_.closed);
  EXPECT_EQ(only<disconnect_packet>(output()).reason, reason_code::protocol_error);  // [MQTT-3.8.3-4]
}

TEST_F(connection_machine_test, disconnect_rules) {
  connect(protocol_version::v5);
  disconnect_packet revive;
  revive.props.session_expiry_interval = 60;
  send(revive);  // CONNECT had 0: [MQTT-3.14.2-2]
  ASSERT_TRUE(host_.closed);
  EXPECT_TRUE(host_.closed->protocol_error);

  for (auto [reason, will] : {std::pair{reason_code::success, false}, std::pair{reason_code::disconnect_with_will, true}}) {
    recording_host host;
    host.limits_in_force.max_session_expiry_s = 3600;
    connect_packet c;
    c.props.session_expiry_interval = 100;
    auto m = connected(host, protocol_version::v5, c);
    disconnect_packet d{reason, {}};
    d.props.session_expiry_interval = 5000;
    m->receive(test::encode(d, protocol_version::v5), 0);
    ASSERT_TRUE(host.closed);
    EXPECT_EQ(host.closed->publish_will, will);
    EXPECT_EQ(m->session_expiry_s(), 3600u);  // changed, within the broker's cap
  }
}

TEST_F(connection_machine_test, second_connect_is_a_protocol_error) {
  connect(protocol_version::v3_1_1);
  connect_packet again;
  again.version = protocol_version::v3_1_1;
  again.client_id = "x";
  send(again);
  ASSERT_TRUE(host_.closed);
  EXPECT_TRUE(host_.closed->protocol_error);
  EXPECT_TRUE(output().empty());  // 3.1.1 has no DISCONNECT from the server
}

TEST_F(connection_machine_test, outbound_publish_respects_client_packet_size_and_sets_aliases) {
  connect_packet c;
  c.props.maximum_packet_size = 64;
  c.props.topic_alias_maximum = 1;
  connect(protocol_version::v5, c);
  auto big = publish("t", qos::at_most_once, 0);
  big.payload = std::string(100, 'x');
  EXPECT_FALSE(machine_.send_publish(big));
  EXPECT_TRUE(output().empty());

  auto first = publish("room/1", qos::at_most_once, 0);
  ASSERT_TRUE(machine_.send_publish(first));
  auto second = publish("room/1", qos::at_most_once, 0);
  ASSERT_TRUE(machine_.send_publish(second));
  auto third = publish("room/2", qos::at_most_once, 0);  // no alias left: topic in full
  ASSERT_TRUE(machine_.send_publish(third));
  auto out = output();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(std::get<publish_packet>(out[0]).topic, "room/1");
  EXPECT_EQ(std::get<publish_packet>(out[0]).props.topic_alias, std::uint16_t{1});
  EXPECT_EQ(std::get<publish_packet>(out[1]).topic, "");
  EXPECT_EQ(std::get<publish_packet>(out[1]).props.topic_alias, std::uint16_t{1});
  EXPECT_EQ(std::get<publish_packet>(out[2]).topic, "room/2");
  EXPECT_FALSE(std::get<publish_packet>(out[2]).props.topic_alias);
}

TEST_F(connection_machine_test, a_shared_encoding_is_sent_as_it_is_or_patched) {
  connect(protocol_version::v5);
  auto p = publish("shared/t", qos::at_most_once, 0);
  p.props.user_properties.push_back({"k", "v"});
  const auto qos0 = encode_shared(p, version_);
  EXPECT_EQ(*qos0.bytes, test::encode(p, version_));
  ASSERT_TRUE(machine_.send_shared(qos0, false, qos::at_most_once, false, 0));
  ASSERT_EQ(host_.shared_writes.size(), 1u);
  EXPECT_EQ(host_.shared_writes[0], qos0.bytes);  // the same bytes, not a copy

  p.qos = qos::at_least_once;
  p.packet_id = 1;
  const auto with_id = encode_shared(p, version_);
  host_.written.clear();
  ASSERT_TRUE(machine_.send_shared(with_id, true, qos::exactly_once, true, 0x1234));
  EXPECT_EQ(host_.shared_writes.size(), 1u);  // patched: a copy of its own
  auto expected = p;
  expected.dup = true;
  expected.qos = qos::exactly_once;
  expected.retain = true;
  expected.packet_id = 0x1234;
  EXPECT_EQ(only<publish_packet>(output()), expected);
  ASSERT_TRUE(machine_.send_shared(with_id, false, qos::at_least_once, false, 1));
  EXPECT_EQ(host_.shared_writes.size(), 2u);  // what it was encoded with: shared
}

TEST_F(connection_machine_test, a_shared_encoding_above_the_clients_maximum_is_not_sent) {
  connect_packet c;
  c.props.maximum_packet_size = 32;
  connect(protocol_version::v5, c);
  auto p = publish("t", qos::at_most_once, 0);
  p.payload = std::string(40, 'z');
  EXPECT_FALSE(machine_.send_shared(encode_shared(p, version_), false, qos::at_most_once, false, 0));
  EXPECT_TRUE(host_.written.empty());
}

TEST_F(connection_machine_test, pubrec_from_the_client_is_answered_with_pubrel) {
  connect(protocol_version::v5);
  send(ack_packet{.type = packet_type::pubrec, .packet_id = 11, .reason = reason_code::success, .props = {}});
  auto rel = only<ack_packet>(output());
  EXPECT_EQ(rel.type, packet_type::pubrel);
  EXPECT_EQ(rel.reason, reason_code::success);
  host_.received_known = false;
  send(ack_packet{.type = packet_type::pubrec, .packet_id = 12, .reason = reason_code::success, .props = {}});
  EXPECT_EQ(only<ack_packet>(output()).reason, reason_code::packet_identifier_not_found);
  send(ack_packet{.type = packet_type::pubrec, .packet_id = 13, .reason = reason_code::quota_exceeded, .props = {}});
  send(ack_packet{.type = packet_type::puback, .packet_id = 14, .reason = reason_code::success, .props = {}});
  EXPECT_TRUE(output().empty());
  EXPECT_EQ(host_.completed, (std::vector<std::uint16_t>{13, 14}));
}

TEST_F(connection_machine_test, malformed_header_and_oversize_packets_end_the_connection) {
  host_.limits_in_force.max_packet_size = 32;
  auto machine = connected(host_, version_);
  auto p = publish("t", qos::at_most_once, 0);
  p.payload = std::string(64, 'y');
  machine->receive(test::encode(p, version_), 0);
  ASSERT_TRUE(host_.closed);
  EXPECT_EQ(host_.closed->reason, reason_code::packet_too_large);
  EXPECT_EQ(only<disconnect_packet>(output()).reason, reason_code::packet_too_large);
}

}  // namespace
}  // namespace wharf::mqtt
