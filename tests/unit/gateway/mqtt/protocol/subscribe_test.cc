// SUBSCRIBE (3.8): packet identifier, topic filters, subscription options, properties.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v3_1 = protocol_version::v3_1;
constexpr auto v3_1_1 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

TEST(subscribe_decode, one_filter_3_1_1) {
  for (const auto version : {v3_1, v3_1_1}) {
    const auto p = test::decode_as<subscribe_packet>("82 06 00 01 00 01 61 01", version);
    EXPECT_EQ(p.packet_id, 1);
    ASSERT_EQ(p.subscriptions.size(), 1u);
    EXPECT_EQ(p.subscriptions[0].filter, "a");
    EXPECT_EQ(p.subscriptions[0].options.max_qos, qos::at_least_once);
  }
}

TEST(subscribe_decode, several_filters_keep_order) {
  const auto p = test::decode_as<subscribe_packet>(
      "82 0E 00 05 00 03 61 2F 23 02 00 03 2B 2F 62 00", v3_1_1);
  ASSERT_EQ(p.subscriptions.size(), 2u);
  EXPECT_EQ(p.subscriptions[0].filter, "a/#");
  EXPECT_EQ(p.subscriptions[0].options.max_qos, qos::exactly_once);
  EXPECT_EQ(p.subscriptions[1].filter, "+/b");
  EXPECT_EQ(p.subscriptions[1].options.max_qos, qos::at_most_once);
}

// [MQTT-3.8.1-1] SUBSCRIBE fixed header bits 3..0 MUST be 0010.
TEST(subscribe_decode, reserved_flags_are_malformed) {
  EXPECT_EQ(decode("80 06 00 01 00 01 61 01", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("8A 06 00 01 00 01 61 01", v3_1_1).error, reason_code::malformed_packet);
}

// [MQTT-3.8.3-3] The payload MUST contain at least one Topic Filter; an empty one is a
// protocol violation.
TEST(subscribe_decode, no_filters_is_protocol_error) {
  EXPECT_EQ(decode("82 02 00 01", v3_1_1).error, reason_code::protocol_error);
  EXPECT_EQ(decode("82 03 00 01 00", v5).error, reason_code::protocol_error);
}

// [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-3] (5.0): a non-zero Packet Identifier.
TEST(subscribe_decode, packet_id_zero_is_protocol_error) {
  EXPECT_EQ(decode("82 06 00 00 00 01 61 00", v3_1_1).error, reason_code::protocol_error);
}

// [MQTT-3-8.3-4] (3.1.1): the upper 6 bits of the Requested QoS byte are 0, QoS is not 3.
TEST(subscribe_decode, requested_qos_byte_3_1_1) {
  EXPECT_EQ(decode("82 06 00 01 00 01 61 04", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("82 06 00 01 00 01 61 80", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("82 06 00 01 00 01 61 03", v3_1_1).error, reason_code::malformed_packet);
}

// Filter syntax is the broker's business: it answers SUBACK 0x8F for that filter alone.
TEST(subscribe_decode, invalid_filter_is_kept) {
  const auto p = test::decode_as<subscribe_packet>("82 08 00 01 00 03 61 23 62 00", v3_1_1);
  EXPECT_EQ(p.subscriptions[0].filter, "a#b");
  EXPECT_EQ(test::decode_as<subscribe_packet>("82 05 00 01 00 00 00", v3_1_1).subscriptions[0].filter,
            "");
}

// [MQTT-3.8.3-1] Topic Filters are UTF-8 strings: ill-formed ones are malformed.
TEST(subscribe_decode, ill_formed_filter_is_malformed) {
  EXPECT_EQ(decode("82 06 00 01 00 01 FE 00", v3_1_1).error, reason_code::malformed_packet);
}

TEST(subscribe_decode, truncated_is_malformed) {
  EXPECT_EQ(decode("82 05 00 01 00 01 61", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("82 01 00", v3_1_1).error, reason_code::malformed_packet);
}

TEST(subscribe_decode, v5_options) {
  // 0x2D: retain handling 2, retain as published, no local, QoS 1.
  const auto p = test::decode_as<subscribe_packet>("82 07 00 01 00 00 01 61 2D", v5);
  const auto& o = p.subscriptions[0].options;
  EXPECT_EQ(o.max_qos, qos::at_least_once);
  EXPECT_TRUE(o.no_local);
  EXPECT_TRUE(o.retain_as_published);
  EXPECT_EQ(o.retain_handling, 2);
}

// [MQTT-3.8.3-5] Reserved bits 6-7 of the Subscription Options are 0, else malformed.
TEST(subscribe_decode, v5_reserved_option_bits_are_malformed) {
  EXPECT_EQ(decode("82 07 00 01 00 00 01 61 40", v5).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("82 07 00 01 00 00 01 61 81", v5).error, reason_code::malformed_packet);
}

// 3.8.3.1 (5.0): "It is a Protocol Error if the Maximum QoS field has the value 3" and
// "It is a Protocol Error to send a Retain Handling value of 3".
TEST(subscribe_decode, v5_qos3_and_retain_handling3_are_protocol_errors) {
  EXPECT_EQ(decode("82 07 00 01 00 00 01 61 03", v5).error, reason_code::protocol_error);
  EXPECT_EQ(decode("82 07 00 01 00 00 01 61 30", v5).error, reason_code::protocol_error);
}

// [MQTT-3.8.3-4] No Local on a Shared Subscription is a Protocol Error.
TEST(subscribe_decode, v5_no_local_on_shared_subscription_is_protocol_error) {
  EXPECT_EQ(decode("82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 67 2F 61 04", v5).error,
            reason_code::protocol_error);
  EXPECT_TRUE(test::decode("82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 67 2F 61 00", v5).ok());
}

TEST(subscribe_decode, v5_subscription_identifier) {
  const auto p = test::decode_as<subscribe_packet>("82 09 00 01 02 0B 05 00 01 61 00", v5);
  EXPECT_EQ(p.props.subscription_identifiers, (std::vector<std::uint32_t>{5}));
  // 3.8.2.1.2: more than once, or 0, is a Protocol Error.
  EXPECT_EQ(decode("82 0B 00 01 04 0B 05 0B 06 00 01 61 00", v5).error,
            reason_code::protocol_error);
  EXPECT_EQ(decode("82 09 00 01 02 0B 00 00 01 61 00", v5).error, reason_code::protocol_error);
  // A four-byte Variable Byte Integer: 268435455, the largest.
  EXPECT_EQ(test::decode_as<subscribe_packet>("82 0C 00 01 05 0B FF FF FF 7F 00 01 61 00", v5)
                .props.subscription_identifiers,
            (std::vector<std::uint32_t>{268'435'455}));
}

// Section 2.2.2.2: Reason String (0x1F) is not valid in SUBSCRIBE.
TEST(subscribe_decode, v5_property_not_allowed_is_malformed) {
  EXPECT_EQ(decode("82 0B 00 01 04 1F 00 01 78 00 01 61 00", v5).error,
            reason_code::malformed_packet);
}

TEST(subscribe_encode, wire_exact) {
  subscribe_packet p;
  p.packet_id = 1;
  p.subscriptions = {{"a", {qos::at_least_once, true, true, 2}}};
  EXPECT_EQ(test::hex(test::encode(p, v5)), "82 07 00 01 00 00 01 61 2D");
  // 3.1.1 has room for the QoS only.
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "82 06 00 01 00 01 61 01");
}

TEST(subscribe_round_trip, every_version) {
  for (const auto version : test::all_versions) {
    subscribe_packet p;
    p.packet_id = 65535;
    p.subscriptions = {{"a/+/c", {qos::exactly_once, false, false, 0}},
                       {"#", {qos::at_most_once, false, false, 0}},
                       {"$SYS/x", {qos::at_least_once, false, false, 0}}};
    EXPECT_EQ(test::round_trip(p, version), p);
  }
}

TEST(subscribe_round_trip, v5_options_and_properties) {
  subscribe_packet p;
  p.packet_id = 3;
  p.subscriptions = {{"x/#", {qos::exactly_once, true, false, 1}},
                     {"$share/g/y", {qos::at_least_once, false, true, 2}}};
  p.props.subscription_identifiers = {1000};
  p.props.user_properties = {{"k", "v"}};
  EXPECT_EQ(test::round_trip(p, v5), p);
}

}  // namespace
}  // namespace wharf::mqtt
