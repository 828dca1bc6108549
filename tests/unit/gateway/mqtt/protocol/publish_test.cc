// PUBLISH (3.3): fixed header flags, topic name, packet identifier, properties, payload.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v3_1 = protocol_version::v3_1;
constexpr auto v3_1_1 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

TEST(publish_decode, qos0_3_1_1) {
  const auto p = test::decode_as<publish_packet>("30 08 00 03 61 2F 62 68 69 21", v3_1_1);
  EXPECT_EQ(p.topic, "a/b");
  EXPECT_EQ(p.qos, qos::at_most_once);
  EXPECT_FALSE(p.dup);
  EXPECT_FALSE(p.retain);
  EXPECT_EQ(p.packet_id, 0);
  EXPECT_EQ(p.payload, "hi!");
}

TEST(publish_decode, qos1_has_packet_id) {
  for (const auto version : {v3_1, v3_1_1}) {
    const auto p = test::decode_as<publish_packet>("32 09 00 03 61 2F 62 00 07 68 69", version);
    EXPECT_EQ(p.qos, qos::at_least_once);
    EXPECT_EQ(p.packet_id, 7);
    EXPECT_EQ(p.payload, "hi");
  }
}

TEST(publish_decode, qos2_dup_retain_flags) {
  const auto p = test::decode_as<publish_packet>("3D 07 00 01 61 01 02 78 79", v3_1_1);
  EXPECT_TRUE(p.dup);
  EXPECT_EQ(p.qos, qos::exactly_once);
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(p.packet_id, 0x0102);
}

TEST(publish_decode, empty_payload) {
  EXPECT_EQ(test::decode_as<publish_packet>("30 03 00 01 61", v3_1_1).payload, "");
  EXPECT_EQ(test::decode_as<publish_packet>("31 04 00 01 61 00", v5).payload, "");
}

// [MQTT-3.3.1-4] A PUBLISH packet MUST NOT have both QoS bits set to 1.
TEST(publish_decode, qos3_is_malformed) {
  for (const auto version : test::all_versions) {
    EXPECT_EQ(decode("36 05 00 01 61 00 01", version).error, reason_code::malformed_packet);
  }
}

// [MQTT-3.3.1-2] The DUP flag MUST be set to 0 for all QoS 0 messages.
TEST(publish_decode, dup_on_qos0_is_malformed) {
  EXPECT_EQ(decode("38 03 00 01 61", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("38 04 00 01 61 00", v5).error, reason_code::malformed_packet);
}

// [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-3] (5.0): PUBLISH with QoS > 0 MUST carry a non-zero
// Packet Identifier. We report the rule violation as protocol_error.
TEST(publish_decode, packet_id_zero_is_protocol_error) {
  EXPECT_EQ(decode("32 05 00 01 61 00 00", v3_1_1).error, reason_code::protocol_error);
  EXPECT_EQ(decode("34 06 00 01 61 00 00 00", v5).error, reason_code::protocol_error);
}

// [MQTT-3.3.2-2] The Topic Name MUST NOT contain wildcard characters.
TEST(publish_decode, wildcard_topic_is_topic_name_invalid) {
  EXPECT_EQ(decode("30 03 00 01 23", v3_1_1).error, reason_code::topic_name_invalid);
  EXPECT_EQ(decode("30 05 00 03 61 2F 2B", v3_1_1).error, reason_code::topic_name_invalid);
  EXPECT_EQ(decode("30 04 00 01 23 00", v5).error, reason_code::topic_name_invalid);
}

// [MQTT-4.7.3-1] Topic names are at least one character long (3.1.1).
TEST(publish_decode, empty_topic_is_invalid_before_5) {
  EXPECT_EQ(decode("30 02 00 00", v3_1_1).error, reason_code::topic_name_invalid);
}

// 3.3.2.1 (5.0): "It is a Protocol Error if the Topic Name is zero length and there is no
// Topic Alias."
TEST(publish_decode, v5_empty_topic_needs_topic_alias) {
  EXPECT_EQ(decode("30 03 00 00 00", v5).error, reason_code::protocol_error);
  const auto p = test::decode_as<publish_packet>("30 06 00 00 03 23 00 05", v5);
  EXPECT_EQ(p.topic, "");
  EXPECT_EQ(p.props.topic_alias, 5);
}

// 3.3.2.3.4: a Topic Alias of 0 is not permitted (DISCONNECT 0x94).
TEST(publish_decode, v5_topic_alias_zero_is_topic_alias_invalid) {
  EXPECT_EQ(decode("30 07 00 01 61 03 23 00 00", v5).error, reason_code::topic_alias_invalid);
}

// [MQTT-1.5.4-1] ill-formed UTF-8 in the Topic Name is a Malformed Packet.
TEST(publish_decode, ill_formed_topic_is_malformed) {
  EXPECT_EQ(decode("30 03 00 01 FF", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("30 05 00 03 ED A0 80", v3_1_1).error, reason_code::malformed_packet);
}

TEST(publish_decode, truncated_is_malformed) {
  EXPECT_EQ(decode("32 04 00 01 61 00", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("30 02 00 05", v3_1_1).error, reason_code::malformed_packet);
  // Property Length beyond the end of the packet.
  EXPECT_EQ(decode("30 05 00 01 61 05 01", v5).error, reason_code::malformed_packet);
}

TEST(publish_decode, v5_properties) {
  // Payload format 1, message expiry 10, user property k=v, payload "x".
  const auto p = test::decode_as<publish_packet>(
      "30 13 00 01 61 0E 01 01 02 00 00 00 0A 26 00 01 6B 00 01 76 78", v5);
  EXPECT_EQ(p.props.payload_format_indicator, 1);
  EXPECT_EQ(p.props.message_expiry_interval, 10u);
  ASSERT_EQ(p.props.user_properties.size(), 1u);
  EXPECT_EQ(p.props.user_properties[0].name, "k");
  EXPECT_EQ(p.payload, "x");
}

// Section 2.2.2.2: Session Expiry Interval (0x11) is not valid in PUBLISH.
TEST(publish_decode, v5_property_not_allowed_is_malformed) {
  EXPECT_EQ(decode("30 09 00 01 61 05 11 00 00 00 01", v5).error, reason_code::malformed_packet);
}

// [MQTT-3.3.2-14] The Response Topic MUST NOT contain wildcard characters.
TEST(publish_decode, v5_response_topic_with_wildcard_is_protocol_error) {
  EXPECT_EQ(decode("30 08 00 01 61 04 08 00 01 23", v5).error, reason_code::protocol_error);
}

// A PUBLISH from the server carries one Subscription Identifier per matching
// subscription (3.3.2.3.8); they may repeat and keep their order. 0 is a Protocol Error.
TEST(publish_decode, v5_subscription_identifiers) {
  const auto p = test::decode_as<publish_packet>("30 08 00 01 61 04 0B 02 0B 01", v5);
  EXPECT_EQ(p.props.subscription_identifiers, (std::vector<std::uint32_t>{2, 1}));
  EXPECT_EQ(decode("30 06 00 01 61 02 0B 00", v5).error, reason_code::protocol_error);
}

// 3.3.2.3.2: the Payload Format Indicator is 0 or 1.
TEST(publish_decode, v5_payload_format_out_of_range_is_protocol_error) {
  EXPECT_EQ(decode("30 06 00 01 61 02 01 02", v5).error, reason_code::protocol_error);
}

// Properties are not part of a 3.1.1 PUBLISH: the bytes are payload.
TEST(publish_decode, no_properties_before_5) {
  EXPECT_EQ(test::decode_as<publish_packet>("30 05 00 01 61 02 01", v3_1_1).payload,
            std::string("\x02\x01", 2));
}

TEST(publish_encode, wire_exact) {
  publish_packet p;
  p.topic = "a/b";
  p.payload = "hi!";
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "30 08 00 03 61 2F 62 68 69 21");
  EXPECT_EQ(test::hex(test::encode(p, v5)), "30 09 00 03 61 2F 62 00 68 69 21");
  p.qos = qos::exactly_once;
  p.dup = true;
  p.retain = true;
  p.packet_id = 0x0102;
  p.payload = "xy";
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "3D 09 00 03 61 2F 62 01 02 78 79");
}

TEST(publish_encode, properties_dropped_before_5) {
  publish_packet p;
  p.topic = "a";
  p.props.message_expiry_interval = 5;
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "30 03 00 01 61");
}

// Remaining Length grows to 2, 3 and 4 bytes; encoded_size agrees (checked in test::encode).
TEST(publish_round_trip, large_payloads) {
  for (const std::size_t size : {100u, 200u, 20'000u, 3'000'000u}) {
    publish_packet p;
    p.topic = "big";
    p.qos = qos::at_least_once;
    p.packet_id = 9;
    p.payload.assign(size, '\x5A');
    for (const auto version : test::all_versions) {
      EXPECT_EQ(test::round_trip(p, version), p) << size;
    }
  }
}

TEST(publish_round_trip, every_version_and_qos) {
  for (const auto version : test::all_versions) {
    for (const auto q : {qos::at_most_once, qos::at_least_once, qos::exactly_once}) {
      publish_packet p;
      p.topic = "sensors/\xC3\xA9t\xC3\xA9/temp";
      p.qos = q;
      p.packet_id = q == qos::at_most_once ? 0 : 65535;
      p.dup = q != qos::at_most_once;
      p.retain = true;
      p.payload = std::string("\x00\xFF\x7F", 3);
      EXPECT_EQ(test::round_trip(p, version), p);
    }
  }
}

TEST(publish_round_trip, v5_all_properties) {
  publish_packet p;
  p.topic = "req";
  p.qos = qos::at_least_once;
  p.packet_id = 1;
  p.props.payload_format_indicator = 1;
  p.props.message_expiry_interval = 0;
  p.props.content_type = "application/json";
  p.props.response_topic = "resp/1";
  p.props.correlation_data = std::string("\x00\x01\x02", 3);
  p.props.subscription_identifiers = {268'435'455, 1, 128};
  p.props.topic_alias = 65535;
  p.props.user_properties = {{"z", "1"}, {"a", "2"}, {"z", "3"}};
  p.payload = "{}";
  EXPECT_EQ(test::round_trip(p, v5), p);

  publish_packet aliased;
  aliased.props.topic_alias = 1;
  EXPECT_EQ(test::round_trip(aliased, v5), aliased);
}

}  // namespace
}  // namespace wharf::mqtt

namespace wharf::mqtt {
namespace {

// A PUBLISH encoded on its own (no packet variant, no copy) is the same bytes and size.
TEST(publish_encode, on_its_own_matches_the_packet_variant) {
  publish_packet p;
  p.qos = qos::exactly_once;
  p.retain = true;
  p.topic = "a/b";
  p.packet_id = 258;
  p.payload = std::string(300, 'p');  // a two-byte Remaining Length
  p.props.user_properties.push_back({"k", "v"});
  for (const auto version : {protocol_version::v3_1_1, protocol_version::v5}) {
    std::vector<std::uint8_t> alone;
    encode(p, version, alone);
    EXPECT_EQ(alone, test::encode(packet(p), version));
    EXPECT_EQ(encoded_size(p, version), alone.size());
    const auto shared = encode_shared(p, version);
    EXPECT_EQ(*shared.bytes, alone);
    EXPECT_EQ(alone[shared.packet_id_at], 1);  // 258 = 0x0102
    EXPECT_EQ(alone[shared.packet_id_at + 1], 2);
  }
}

}  // namespace
}  // namespace wharf::mqtt
