// CONNACK (3.2): acknowledge flags, return codes (3.1.1) and reason codes (5.0).
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v3_1 = protocol_version::v3_1;
constexpr auto v3_1_1 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

TEST(connack_decode, accepted_3_1_1) {
  const auto p = test::decode_as<connack_packet>("20 02 00 00", v3_1_1);
  EXPECT_FALSE(p.session_present);
  EXPECT_EQ(p.reason, reason_code::success);
  EXPECT_TRUE(test::decode_as<connack_packet>("20 02 01 00", v3_1_1).session_present);
}

// Table 3.1 (3.1.1): return codes 1..5 map onto the 5.0 reason codes; 6..255 are reserved.
TEST(connack_decode, return_codes_3_1_1) {
  const std::pair<const char*, reason_code> cases[] = {
      {"20 02 00 01", reason_code::unsupported_protocol_version},
      {"20 02 00 02", reason_code::client_identifier_not_valid},
      {"20 02 00 03", reason_code::server_unavailable},
      {"20 02 00 04", reason_code::bad_user_name_or_password},
      {"20 02 00 05", reason_code::not_authorized},
  };
  for (const auto& [hex, reason] : cases) {
    EXPECT_EQ(test::decode_as<connack_packet>(hex, v3_1_1).reason, reason) << hex;
    EXPECT_EQ(test::decode_as<connack_packet>(hex, v3_1).reason, reason) << hex;
  }
  EXPECT_EQ(decode("20 02 00 06", v3_1_1).error, reason_code::malformed_packet);
}

// [MQTT-3.2.2-1] (5.0) / 3.2.2.1 (3.1.1): acknowledge flags bits 7-1 are reserved, 0.
TEST(connack_decode, reserved_ack_flags_are_malformed) {
  EXPECT_EQ(decode("20 02 02 00", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("20 03 80 00 00", v5).error, reason_code::malformed_packet);
}

// [MQTT-3.2.2-4] (3.1.1) / [MQTT-3.2.2-6] (5.0): Session Present 0 with a non-zero code.
TEST(connack_decode, session_present_on_refusal_is_protocol_error) {
  EXPECT_EQ(decode("20 02 01 05", v3_1_1).error, reason_code::protocol_error);
  EXPECT_EQ(decode("20 03 01 87 00", v5).error, reason_code::protocol_error);
}

// [MQTT-2.2.2-1] (3.1.1) reserved fixed header flags, and Remaining Length 2 exactly.
TEST(connack_decode, bad_flags_and_lengths_are_malformed) {
  EXPECT_EQ(decode("21 02 00 00", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("20 03 00 00 00", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("20 01 00", v3_1_1).error, reason_code::malformed_packet);
  // 5.0 CONNACK always carries a Property Length.
  EXPECT_EQ(decode("20 02 00 00", v5).error, reason_code::malformed_packet);
}

TEST(connack_decode, v5_reason_codes) {
  EXPECT_EQ(test::decode_as<connack_packet>("20 03 00 00 00", v5).reason, reason_code::success);
  EXPECT_EQ(test::decode_as<connack_packet>("20 03 00 84 00", v5).reason,
            reason_code::unsupported_protocol_version);
  EXPECT_EQ(test::decode_as<connack_packet>("20 03 00 9F 00", v5).reason,
            reason_code::connection_rate_exceeded);
  // 0x04 (disconnect with will) is not a CONNACK reason code (3.2.2.2).
  EXPECT_EQ(decode("20 03 00 04 00", v5).error, reason_code::protocol_error);
}

TEST(connack_decode, v5_properties) {
  // Assigned client id "c1", server keep alive 30, topic alias maximum 5.
  const auto p = test::decode_as<connack_packet>(
      "20 0E 01 00 0B 12 00 02 63 31 13 00 1E 22 00 05", v5);
  EXPECT_TRUE(p.session_present);
  EXPECT_EQ(p.props.assigned_client_identifier, "c1");
  EXPECT_EQ(p.props.server_keep_alive, 30);
  EXPECT_EQ(p.props.topic_alias_maximum, 5);
}

// 3.2.2.3.4: "It is a Protocol Error to include Maximum QoS more than once, or to have a
// value other than 0 or 1"; likewise Retain Available (3.2.2.3.5).
TEST(connack_decode, v5_flag_property_out_of_range_is_protocol_error) {
  EXPECT_EQ(decode("20 05 00 00 02 24 02", v5).error, reason_code::protocol_error);
  EXPECT_EQ(decode("20 05 00 00 02 25 07", v5).error, reason_code::protocol_error);
  EXPECT_EQ(decode("20 07 00 00 04 24 01 24 00", v5).error, reason_code::protocol_error);
}

// 3.2.2.3.6: Maximum Packet Size 0 is a Protocol Error.
TEST(connack_decode, v5_maximum_packet_size_zero_is_protocol_error) {
  EXPECT_EQ(decode("20 08 00 00 05 27 00 00 00 00", v5).error, reason_code::protocol_error);
}

TEST(connack_encode, wire_exact) {
  connack_packet p;
  p.session_present = true;
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "20 02 01 00");
  EXPECT_EQ(test::hex(test::encode(p, v5)), "20 03 01 00 00");
  p.session_present = false;
  p.reason = reason_code::not_authorized;
  EXPECT_EQ(test::hex(test::encode(p, v5)), "20 03 00 87 00");
}

// The mapping documented in packets.h.
TEST(connack_encode, reason_to_return_code_3_1_1) {
  const std::pair<reason_code, const char*> cases[] = {
      {reason_code::success, "20 02 00 00"},
      {reason_code::unsupported_protocol_version, "20 02 00 01"},
      {reason_code::client_identifier_not_valid, "20 02 00 02"},
      {reason_code::server_unavailable, "20 02 00 03"},
      {reason_code::server_busy, "20 02 00 03"},
      {reason_code::bad_user_name_or_password, "20 02 00 04"},
      {reason_code::not_authorized, "20 02 00 05"},
      {reason_code::banned, "20 02 00 05"},
      {reason_code::malformed_packet, "20 02 00 03"},
  };
  for (const auto& [reason, hex] : cases) {
    connack_packet p;
    p.reason = reason;
    p.props.reason_string = "dropped before 5.0";
    EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), hex) << to_string(reason);
    EXPECT_EQ(test::hex(test::encode(p, v3_1)), hex) << to_string(reason);
  }
}

TEST(connack_round_trip, v5_all_properties) {
  connack_packet p;
  p.session_present = true;
  p.props.session_expiry_interval = 0xFFFFFFFF;
  p.props.assigned_client_identifier = "auto-1234";
  p.props.server_keep_alive = 120;
  p.props.authentication_method = "m";
  p.props.authentication_data = "d";
  p.props.response_information = "resp/";
  p.props.server_reference = "other:1883";
  p.props.reason_string = "welcome";
  p.props.receive_maximum = 65535;
  p.props.topic_alias_maximum = 10;
  p.props.maximum_qos = 1;
  p.props.retain_available = 0;
  p.props.user_properties = {{"a", "1"}, {"b", "2"}};
  p.props.maximum_packet_size = 268435460;
  p.props.wildcard_subscription_available = 1;
  p.props.subscription_identifier_available = 0;
  p.props.shared_subscription_available = 1;
  EXPECT_EQ(test::round_trip(p, v5), p);
}

TEST(connack_round_trip, every_version) {
  for (const auto version : test::all_versions) {
    connack_packet p;
    p.reason = reason_code::bad_user_name_or_password;
    EXPECT_EQ(test::round_trip(p, version), p);
  }
}

}  // namespace
}  // namespace wharf::mqtt
