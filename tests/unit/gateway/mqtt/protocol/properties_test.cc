// MQTT 5.0 properties (2.2.2): identifiers, data types, allowed sets, duplicates.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v5 = protocol_version::v5;

// Builds a v5 PUBACK (id 1, reason 0x00) with the given property bytes.
std::string puback_with(std::string_view props_hex) {
  const auto props = test::bytes(props_hex);
  std::vector<std::uint8_t> data = {0x40, static_cast<std::uint8_t>(4 + props.size()), 0x00, 0x01,
                                    0x00, static_cast<std::uint8_t>(props.size())};
  data.insert(data.end(), props.begin(), props.end());
  return test::hex(data);
}

// Builds a v5 PUBLISH QoS 0 to topic "a" with the given property bytes.
std::string publish_with(std::string_view props_hex) {
  const auto props = test::bytes(props_hex);
  std::vector<std::uint8_t> data = {0x30, static_cast<std::uint8_t>(4 + props.size()), 0x00, 0x01,
                                    0x61, static_cast<std::uint8_t>(props.size())};
  data.insert(data.end(), props.begin(), props.end());
  return test::hex(data);
}

// An identifier that 5.0 does not define cannot be skipped (its type is unknown).
TEST(properties_decode, unknown_identifier_is_malformed) {
  for (const char* props : {"00", "04 00", "7F 00", "2B 00", "80 01 00"}) {
    EXPECT_EQ(decode(publish_with(props), v5).error, reason_code::malformed_packet) << props;
  }
}

// Section 2.2.2.2: an identifier not valid for the packet type is a Malformed Packet. PUBACK
// allows only Reason String (0x1F) and User Property (0x26).
TEST(properties_decode, identifiers_outside_the_puback_set_are_malformed) {
  const char* others[] = {"01 00", "02 00 00 00 00", "03 00 00", "08 00 01 61", "09 00 00",
                          "0B 01", "11 00 00 00 00", "12 00 00", "13 00 00", "15 00 00",
                          "16 00 00", "17 00", "18 00 00 00 00", "19 00", "1A 00 00",
                          "1C 00 00", "21 00 01", "22 00 00", "23 00 01", "24 00", "25 00",
                          "27 00 00 00 01", "28 00", "29 00", "2A 00"};
  for (const char* props : others) {
    EXPECT_EQ(decode(puback_with(props), v5).error, reason_code::malformed_packet) << props;
  }
  EXPECT_TRUE(decode(puback_with("1F 00 00"), v5).ok());
  EXPECT_TRUE(decode(puback_with("26 00 00 00 00"), v5).ok());
}

// "It is a Protocol Error to include <property> more than once" for every single-occurrence
// property of PUBLISH.
TEST(properties_decode, duplicates_are_protocol_errors) {
  const char* once[] = {"01 00", "02 00 00 00 05", "03 00 01 61", "08 00 01 61", "09 00 01 61",
                        "23 00 01"};
  for (const char* prop : once) {
    const std::string twice = std::string(prop) + " " + prop;
    EXPECT_TRUE(decode(publish_with(prop), v5).ok()) << prop;
    EXPECT_EQ(decode(publish_with(twice), v5).error, reason_code::protocol_error) << prop;
  }
}

// User Property may appear more than once, also with the same name; order is kept
// (3.3.2.3.7 "The Server MUST maintain the order of User Properties").
TEST(properties_decode, user_properties_repeat_in_order) {
  const auto p = test::decode_as<publish_packet>(
      publish_with("26 00 01 62 00 01 31 01 01 26 00 01 61 00 01 32 26 00 01 62 00 01 33"), v5);
  EXPECT_EQ(p.props.user_properties,
            (std::vector<user_property>{{"b", "1"}, {"a", "2"}, {"b", "3"}}));
  EXPECT_EQ(p.props.payload_format_indicator, 1);
}

TEST(properties_decode, truncated_values_are_malformed) {
  // Property Length says 3, the four-byte Message Expiry Interval needs 4.
  EXPECT_EQ(decode("30 08 00 01 61 03 02 00 00 00", v5).error, reason_code::malformed_packet);
  // A string longer than the property list.
  EXPECT_EQ(decode(publish_with("03 00 05 61"), v5).error, reason_code::malformed_packet);
  // A user property without its value.
  EXPECT_EQ(decode(publish_with("26 00 01 61"), v5).error, reason_code::malformed_packet);
  // A Subscription Identifier Variable Byte Integer cut off.
  EXPECT_EQ(decode(publish_with("0B 80"), v5).error, reason_code::malformed_packet);
  // A five-byte Variable Byte Integer (1.5.5).
  EXPECT_EQ(decode(publish_with("0B 80 80 80 80 01"), v5).error, reason_code::malformed_packet);
  // Property Length itself as a non-minimal Variable Byte Integer [MQTT-1.5.5-1].
  EXPECT_EQ(decode("30 05 00 01 61 80 00", v5).error, reason_code::malformed_packet);
}

// Values the spec forbids for otherwise well-formed properties.
TEST(properties_decode, forbidden_values_are_protocol_errors) {
  // 3.1.2.11.7 / 3.1.2.11.6: Request Problem / Response Information other than 0 or 1.
  EXPECT_EQ(decode("10 10 00 04 4D 51 54 54 05 02 00 3C 02 17 02 00 01 61", v5).error,
            reason_code::protocol_error);
  EXPECT_EQ(decode("10 10 00 04 4D 51 54 54 05 02 00 3C 02 19 05 00 01 61", v5).error,
            reason_code::protocol_error);
  // 3.2.2.3.11..13: availability flags other than 0 or 1.
  EXPECT_EQ(decode("20 05 00 00 02 28 02", v5).error, reason_code::protocol_error);
  EXPECT_EQ(decode("20 05 00 00 02 29 02", v5).error, reason_code::protocol_error);
  EXPECT_EQ(decode("20 05 00 00 02 2A 02", v5).error, reason_code::protocol_error);
}

// Sections of the wire form for each data type (1.5.2 .. 1.5.7) in one CONNACK.
TEST(properties_encode, wire_exact_data_types) {
  connack_packet p;
  p.props.server_keep_alive = 0x0102;           // two-byte integer
  p.props.session_expiry_interval = 0x01020304; // four-byte integer
  p.props.reason_string = "r";                  // UTF-8 string
  p.props.authentication_method = "m";
  p.props.authentication_data = std::string("\x00", 1);  // binary data
  p.props.user_properties = {{"k", "v"}};       // string pair
  EXPECT_EQ(test::hex(test::encode(p, v5)),
            "20 1E 00 00 1B 11 01 02 03 04 13 01 02 15 00 01 6D 16 00 01 00 1F 00 01 72 26 00 01 "
            "6B 00 01 76");
}

TEST(properties_encode, subscription_identifier_is_a_variable_byte_integer) {
  publish_packet p;
  p.topic = "a";
  p.props.subscription_identifiers = {1, 16'384};
  EXPECT_EQ(test::hex(test::encode(p, v5)), "30 0A 00 01 61 06 0B 01 0B 80 80 01");
}

// Properties not allowed in the packet are left out, so what is encoded always decodes.
TEST(properties_encode, disallowed_properties_are_left_out) {
  ack_packet p{packet_type::puback, 1, reason_code::success, {}};
  p.props.topic_alias = 4;
  p.props.session_expiry_interval = 5;
  EXPECT_EQ(test::hex(test::encode(p, v5)), "40 02 00 01");
  subscribe_packet s;
  s.packet_id = 1;
  s.subscriptions = {{"a", {}}};
  s.props.subscription_identifiers = {7, 8};  // SUBSCRIBE has room for one
  s.props.reason_string = "no";
  EXPECT_EQ(test::hex(test::encode(s, v5)), "82 09 00 01 02 0B 07 00 01 61 00");
}

}  // namespace
}  // namespace wharf::mqtt
