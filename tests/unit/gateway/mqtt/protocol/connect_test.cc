// CONNECT (3.1): protocol name and level, flags, payload, v5 properties.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v3_1 = protocol_version::v3_1;
constexpr auto v3_1_1 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

TEST(connect_decode, minimal_3_1_1) {
  // "MQTT" level 4, clean session, keep alive 60, client id "a".
  const auto p = test::decode_as<connect_packet>(
      "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 01 61", v5 /* ignored for CONNECT */);
  EXPECT_EQ(p.version, v3_1_1);
  EXPECT_EQ(p.protocol_name, "MQTT");
  EXPECT_TRUE(p.clean_start);
  EXPECT_EQ(p.keep_alive_s, 60);
  EXPECT_EQ(p.client_id, "a");
  EXPECT_FALSE(p.will);
  EXPECT_FALSE(p.username);
  EXPECT_FALSE(p.password);
}

TEST(connect_decode, minimal_3_1_mqisdp) {
  const auto p = test::decode_as<connect_packet>(
      "10 0F 00 06 4D 51 49 73 64 70 03 02 00 3C 00 01 61", v3_1_1);
  EXPECT_EQ(p.version, v3_1);
  EXPECT_EQ(p.protocol_name, "MQIsdp");
  EXPECT_EQ(p.client_id, "a");
}

TEST(connect_decode, minimal_5_with_empty_properties) {
  const auto p = test::decode_as<connect_packet>(
      "10 0E 00 04 4D 51 54 54 05 00 00 0A 00 00 01 61", v3_1_1);
  EXPECT_EQ(p.version, v5);
  EXPECT_FALSE(p.clean_start);
  EXPECT_EQ(p.keep_alive_s, 10);
  EXPECT_EQ(p.props, properties{});
}

TEST(connect_decode, empty_client_id_is_the_brokers_business) {
  // [MQTT-3.1.3-7]/[MQTT-3.1.3-8]: acceptance of a zero-length id is decided by the broker.
  const auto p = test::decode_as<connect_packet>("10 0C 00 04 4D 51 54 54 04 00 00 3C 00 00", v3_1_1);
  EXPECT_EQ(p.client_id, "");
}

TEST(connect_decode, full_payload_3_1_1) {
  // flags 0xEE: user name, password, will retain, will QoS 1, will, clean session.
  const auto p = test::decode_as<connect_packet>(
      "10 1E 00 04 4D 51 54 54 04 EE 00 3C 00 01 61"
      " 00 03 61 2F 62 00 02 FF 00"  // will topic "a/b", will payload FF 00
      " 00 01 75 00 03 70 00 77",    // user "u", password 70 00 77
      v3_1_1);
  ASSERT_TRUE(p.will);
  EXPECT_EQ(p.will->topic, "a/b");
  EXPECT_EQ(p.will->payload, std::string("\xFF\x00", 2));
  EXPECT_EQ(p.will->qos, qos::at_least_once);
  EXPECT_TRUE(p.will->retain);
  EXPECT_EQ(p.username, "u");
  EXPECT_EQ(p.password, std::string("p\0w", 3));
}

// [MQTT-3.1.2-1] A Protocol Name other than "MQTT" ("MQIsdp" for 3.1) is a protocol violation.
TEST(connect_decode, unknown_protocol_name_is_protocol_error) {
  const auto r = decode("10 0D 00 04 4D 51 54 58 04 02 00 3C 00 01 61", v3_1_1);
  EXPECT_EQ(r.error, reason_code::protocol_error);
  EXPECT_EQ(r.protocol_level, 4);
}

// [MQTT-3.1.2-2] Unsupported level: the caller answers 0x84 (5.0) or return code 1 (3.1.1),
// so the level seen travels in protocol_level.
TEST(connect_decode, unknown_level_is_unsupported_protocol_version) {
  const auto r = decode("10 0D 00 04 4D 51 54 54 06 02 00 3C 00 01 61", v3_1_1);
  EXPECT_EQ(r.error, reason_code::unsupported_protocol_version);
  EXPECT_EQ(r.protocol_level, 6);
  EXPECT_EQ(make_error_code(r.error).message(), "unsupported protocol version");
}

TEST(connect_decode, name_and_level_mismatch_is_unsupported_protocol_version) {
  EXPECT_EQ(decode("10 0F 00 06 4D 51 49 73 64 70 04 02 00 3C 00 01 61", v3_1_1).error,
            reason_code::unsupported_protocol_version);
  EXPECT_EQ(decode("10 0D 00 04 4D 51 54 54 03 02 00 3C 00 01 61", v3_1_1).error,
            reason_code::unsupported_protocol_version);
}

// [MQTT-3.1.2-3] The reserved flag bit 0 MUST be 0.
TEST(connect_decode, reserved_flag_is_malformed) {
  for (const char* level : {"04", "05"}) {
    const std::string hex = std::string("10 0D 00 04 4D 51 54 54 ") + level + " 03 00 3C 00 01 61";
    EXPECT_EQ(decode(hex, v3_1_1).error, reason_code::malformed_packet) << level;
  }
}

// [MQTT-3.1.2-13] (3.1.1) / [MQTT-3.1.2-11] (5.0): Will QoS 0 when the Will Flag is 0.
TEST(connect_decode, will_qos_without_will_flag_is_malformed) {
  EXPECT_EQ(decode("10 0D 00 04 4D 51 54 54 04 0A 00 3C 00 01 61", v3_1_1).error,
            reason_code::malformed_packet);
}

// [MQTT-3.1.2-15] (3.1.1) / [MQTT-3.1.2-13] (5.0): Will Retain 0 when the Will Flag is 0.
TEST(connect_decode, will_retain_without_will_flag_is_malformed) {
  EXPECT_EQ(decode("10 0D 00 04 4D 51 54 54 04 22 00 3C 00 01 61", v3_1_1).error,
            reason_code::malformed_packet);
}

// [MQTT-3.1.2-14] (3.1.1) / [MQTT-3.1.2-12] (5.0): Will QoS MUST NOT be 3.
TEST(connect_decode, will_qos_3_is_malformed) {
  EXPECT_EQ(decode("10 13 00 04 4D 51 54 54 04 1E 00 3C 00 01 61 00 01 74 00 01 78", v3_1_1).error,
            reason_code::malformed_packet);
}

// [MQTT-3.1.2-22] (3.1.1): the Password Flag MUST be 0 when the User Name Flag is 0.
TEST(connect_decode, password_without_user_name_is_protocol_error_before_5) {
  EXPECT_EQ(decode("10 10 00 04 4D 51 54 54 04 42 00 3C 00 01 61 00 01 70", v3_1_1).error,
            reason_code::protocol_error);
  EXPECT_EQ(decode("10 12 00 06 4D 51 49 73 64 70 03 42 00 3C 00 01 61 00 01 70", v3_1_1).error,
            reason_code::protocol_error);
}

// 5.0 (3.1.2.9) allows a password without a user name.
TEST(connect_decode, password_without_user_name_is_allowed_in_5) {
  const auto p = test::decode_as<connect_packet>(
      "10 11 00 04 4D 51 54 54 05 42 00 3C 00 00 01 61 00 01 70", v5);
  EXPECT_FALSE(p.username);
  EXPECT_EQ(p.password, "p");
}

// [MQTT-1.5.4-1] ill-formed UTF-8 in the client id is a Malformed Packet.
TEST(connect_decode, client_id_ill_formed_utf8_is_malformed) {
  EXPECT_EQ(decode("10 0D 00 04 4D 51 54 54 04 02 00 3C 00 01 C0", v3_1_1).error,
            reason_code::malformed_packet);
}

// [MQTT-1.5.4-2] U+0000 in the client id is a Malformed Packet.
TEST(connect_decode, client_id_null_character_is_malformed) {
  EXPECT_EQ(decode("10 0D 00 04 4D 51 54 54 04 02 00 3C 00 01 00", v3_1_1).error,
            reason_code::malformed_packet);
}

TEST(connect_decode, truncated_and_trailing_bytes_are_malformed) {
  EXPECT_EQ(decode("10 0C 00 04 4D 51 54 54 04 02 00 3C 00 01", v3_1_1).error,
            reason_code::malformed_packet);
  EXPECT_EQ(decode("10 0E 00 04 4D 51 54 54 04 02 00 3C 00 01 61 62", v3_1_1).error,
            reason_code::malformed_packet);
  // The will flag promises a will topic that is not there.
  EXPECT_EQ(decode("10 0D 00 04 4D 51 54 54 04 06 00 3C 00 01 61", v3_1_1).error,
            reason_code::malformed_packet);
}

// [MQTT-4.7.1-1] wildcards are for filters; a will is published to a topic name.
TEST(connect_decode, will_topic_with_wildcard_is_topic_name_invalid) {
  EXPECT_EQ(decode("10 13 00 04 4D 51 54 54 04 06 00 3C 00 01 61 00 01 23 00 01 78", v3_1_1).error,
            reason_code::topic_name_invalid);
}

TEST(connect_decode, v5_properties) {
  // Properties: session expiry 0x11 = 120, receive maximum 0x21 = 10, user property a=b.
  const auto p = test::decode_as<connect_packet>(
      "10 1D 00 04 4D 51 54 54 05 02 00 3C"
      " 0F 11 00 00 00 78 21 00 0A 26 00 01 61 00 01 62"
      " 00 01 61",
      v5);
  EXPECT_EQ(p.props.session_expiry_interval, 120u);
  EXPECT_EQ(p.props.receive_maximum, 10);
  ASSERT_EQ(p.props.user_properties.size(), 1u);
  EXPECT_EQ(p.props.user_properties[0], (user_property{"a", "b"}));
}

// Section 2.2.2.2: Topic Alias (0x23) is not valid in CONNECT: a Malformed Packet.
TEST(connect_decode, v5_property_not_allowed_is_malformed) {
  EXPECT_EQ(decode("10 11 00 04 4D 51 54 54 05 02 00 3C 03 23 00 01 00 01 61", v5).error,
            reason_code::malformed_packet);
}

// 3.1.2.11.2: "It is a Protocol Error to include the Session Expiry Interval more than once".
TEST(connect_decode, v5_duplicate_property_is_protocol_error) {
  EXPECT_EQ(decode("10 18 00 04 4D 51 54 54 05 02 00 3C 0A 11 00 00 00 01 11 00 00 00 02 00 01 61",
                   v5)
                .error,
            reason_code::protocol_error);
}

// 3.1.2.11.3: Receive Maximum 0 is a Protocol Error.
TEST(connect_decode, v5_receive_maximum_zero_is_protocol_error) {
  EXPECT_EQ(decode("10 11 00 04 4D 51 54 54 05 02 00 3C 03 21 00 00 00 01 61", v5).error,
            reason_code::protocol_error);
}

// 3.1.2.11.10: Authentication Data without Authentication Method is a Protocol Error.
TEST(connect_decode, v5_authentication_data_without_method_is_protocol_error) {
  EXPECT_EQ(decode("10 12 00 04 4D 51 54 54 05 02 00 3C 04 16 00 01 78 00 01 61", v5).error,
            reason_code::protocol_error);
}

// A will property in the will properties, and a CONNECT-only one there, which is not allowed.
TEST(connect_decode, v5_will_properties) {
  const auto p = test::decode_as<connect_packet>(
      "10 1A 00 04 4D 51 54 54 05 06 00 3C 00 00 01 61"
      " 05 18 00 00 00 05 00 01 74 00 01 78",
      v5);
  ASSERT_TRUE(p.will);
  EXPECT_EQ(p.will->props.will_delay_interval, 5u);
  EXPECT_EQ(decode("10 1A 00 04 4D 51 54 54 05 06 00 3C 00 00 01 61"
                   " 05 11 00 00 00 05 00 01 74 00 01 78",
                   v5)
                .error,
            reason_code::malformed_packet);
}

connect_packet full_connect() {
  connect_packet p;
  p.clean_start = false;
  p.keep_alive_s = 300;
  p.client_id = "client-1";
  p.will = will_message{"will/topic", std::string("bye\0", 4), qos::exactly_once, true, {}};
  p.username = "user";
  p.password = std::string("\x00\x01\xFF", 3);
  return p;
}

TEST(connect_round_trip, every_version) {
  for (const auto version : test::all_versions) {
    connect_packet p = full_connect();
    p.version = version;
    p.protocol_name = version == v3_1 ? "MQIsdp" : "MQTT";
    EXPECT_EQ(test::round_trip(p, version), p) << static_cast<int>(version);
  }
}

TEST(connect_round_trip, v5_with_all_properties) {
  connect_packet p = full_connect();
  p.version = v5;
  p.protocol_name = "MQTT";
  p.props.session_expiry_interval = 3600;
  p.props.authentication_method = "SCRAM-SHA-1";
  p.props.authentication_data = std::string("\x01\x00", 2);
  p.props.request_problem_information = 0;
  p.props.request_response_information = 1;
  p.props.receive_maximum = 100;
  p.props.topic_alias_maximum = 16;
  p.props.maximum_packet_size = 1 << 20;
  p.props.user_properties = {{"k", "v1"}, {"k", "v2"}, {"a", ""}};
  p.will->props.will_delay_interval = 30;
  p.will->props.payload_format_indicator = 1;
  p.will->props.message_expiry_interval = 60;
  p.will->props.content_type = "text/plain";
  p.will->props.response_topic = "reply/here";
  p.will->props.correlation_data = std::string("\x00\x42", 2);
  p.will->props.user_properties = {{"x", "y"}};
  EXPECT_EQ(test::round_trip(p, v5), p);
}

TEST(connect_encode, wire_exact_3_1_1) {
  connect_packet p;
  p.keep_alive_s = 60;
  p.client_id = "a";
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "10 0D 00 04 4D 51 54 54 04 02 00 3C 00 01 61");
  EXPECT_EQ(test::hex(test::encode(p, v3_1)),
            "10 0F 00 06 4D 51 49 73 64 70 03 02 00 3C 00 01 61");
  EXPECT_EQ(test::hex(test::encode(p, v5)), "10 0E 00 04 4D 51 54 54 05 02 00 3C 00 00 01 61");
}

TEST(connect_encode, properties_are_dropped_before_5) {
  connect_packet p;
  p.client_id = "a";
  p.props.session_expiry_interval = 10;
  p.props.user_properties = {{"k", "v"}};
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "10 0D 00 04 4D 51 54 54 04 02 00 00 00 01 61");
}

TEST(connect_encode, properties_not_allowed_in_connect_are_left_out) {
  connect_packet p;
  p.client_id = "a";
  p.props.topic_alias = 3;  // PUBLISH only
  EXPECT_EQ(test::hex(test::encode(p, v5)), "10 0E 00 04 4D 51 54 54 05 02 00 00 00 00 01 61");
}

}  // namespace
}  // namespace wharf::mqtt
