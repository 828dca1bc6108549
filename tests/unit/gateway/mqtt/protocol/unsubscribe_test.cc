// UNSUBSCRIBE (3.10): packet identifier and topic filters.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v3_1_1 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

TEST(unsubscribe_decode, filters_3_1_1) {
  const auto p = test::decode_as<unsubscribe_packet>("A2 0A 00 02 00 01 61 00 03 62 2F 23", v3_1_1);
  EXPECT_EQ(p.packet_id, 2);
  EXPECT_EQ(p.filters, (std::vector<std::string>{"a", "b/#"}));
}

// [MQTT-3.10.1-1] UNSUBSCRIBE fixed header bits 3..0 MUST be 0010.
TEST(unsubscribe_decode, reserved_flags_are_malformed) {
  EXPECT_EQ(decode("A0 05 00 01 00 01 61", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("A3 05 00 01 00 01 61", v5).error, reason_code::malformed_packet);
}

// [MQTT-3.10.3-2] The payload MUST contain at least one Topic Filter.
TEST(unsubscribe_decode, no_filters_is_protocol_error) {
  EXPECT_EQ(decode("A2 02 00 01", v3_1_1).error, reason_code::protocol_error);
  EXPECT_EQ(decode("A2 03 00 01 00", v5).error, reason_code::protocol_error);
}

TEST(unsubscribe_decode, packet_id_zero_is_protocol_error) {
  EXPECT_EQ(decode("A2 05 00 00 00 01 61", v3_1_1).error, reason_code::protocol_error);
}

// [MQTT-3.10.3-1] Topic Filters are UTF-8 strings; syntax is left to the broker.
TEST(unsubscribe_decode, filter_encoding) {
  EXPECT_EQ(decode("A2 05 00 01 00 01 80", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(test::decode_as<unsubscribe_packet>("A2 06 00 01 00 02 23 23", v3_1_1).filters[0],
            "##");
  EXPECT_EQ(decode("A2 06 00 01 00 03 61 62", v3_1_1).error, reason_code::malformed_packet);
}

TEST(unsubscribe_decode, v5_properties) {
  const auto p = test::decode_as<unsubscribe_packet>(
      "A2 0D 00 01 07 26 00 01 6B 00 01 76 00 01 61", v5);
  EXPECT_EQ(p.props.user_properties, (std::vector<user_property>{{"k", "v"}}));
  EXPECT_EQ(p.filters, (std::vector<std::string>{"a"}));
  // Section 2.2.2.2: Subscription Identifier (0x0B) is not valid in UNSUBSCRIBE.
  EXPECT_EQ(decode("A2 08 00 01 02 0B 01 00 01 61", v5).error, reason_code::malformed_packet);
}

TEST(unsubscribe_encode, wire_exact) {
  unsubscribe_packet p;
  p.packet_id = 2;
  p.filters = {"a", "b/#"};
  p.props.user_properties = {{"k", "v"}};
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "A2 0A 00 02 00 01 61 00 03 62 2F 23");
  EXPECT_EQ(test::hex(test::encode(p, v5)),
            "A2 12 00 02 07 26 00 01 6B 00 01 76 00 01 61 00 03 62 2F 23");
}

TEST(unsubscribe_round_trip, every_version) {
  for (const auto version : test::all_versions) {
    unsubscribe_packet p;
    p.packet_id = 77;
    p.filters = {"a/b", "+", "$share/g/#"};
    EXPECT_EQ(test::round_trip(p, version), p);
  }
}

}  // namespace
}  // namespace wharf::mqtt
