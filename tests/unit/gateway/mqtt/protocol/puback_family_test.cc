// PUBACK (3.4), PUBREC (3.5), PUBREL (3.6), PUBCOMP (3.7): one struct, four packet types.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v3_1_1 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

TEST(ack_decode, each_type_3_1_1) {
  const std::pair<const char*, packet_type> cases[] = {
      {"40 02 00 07", packet_type::puback},
      {"50 02 00 07", packet_type::pubrec},
      {"62 02 00 07", packet_type::pubrel},
      {"70 02 00 07", packet_type::pubcomp},
  };
  for (const auto version : test::all_versions) {
    for (const auto& [hex, type] : cases) {
      const auto p = test::decode_as<ack_packet>(hex, version);
      EXPECT_EQ(p.type, type) << hex;
      EXPECT_EQ(p.packet_id, 7) << hex;
      EXPECT_EQ(p.reason, reason_code::success) << hex;
    }
  }
}

// [MQTT-3.6.1-1] PUBREL fixed header bits 3..0 MUST be 0010; the others are 0000
// ([MQTT-2.2.2-1] (3.1.1) / [MQTT-2.1.3-1] (5.0)).
TEST(ack_decode, reserved_flags_are_malformed) {
  for (const auto version : test::all_versions) {
    EXPECT_EQ(decode("60 02 00 07", version).error, reason_code::malformed_packet);
    EXPECT_EQ(decode("63 02 00 07", version).error, reason_code::malformed_packet);
    EXPECT_EQ(decode("42 02 00 07", version).error, reason_code::malformed_packet);
    EXPECT_EQ(decode("58 02 00 07", version).error, reason_code::malformed_packet);
    EXPECT_EQ(decode("71 02 00 07", version).error, reason_code::malformed_packet);
  }
}

// 3.1.1 acknowledgements have Remaining Length 2 exactly.
TEST(ack_decode, wrong_length_before_5_is_malformed) {
  EXPECT_EQ(decode("40 03 00 07 00", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("40 01 00", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("40 00", v5).error, reason_code::malformed_packet);
}

// The acknowledged PUBLISH had a non-zero id ([MQTT-2.3.1-1] / [MQTT-2.2.1-3]).
TEST(ack_decode, packet_id_zero_is_protocol_error) {
  EXPECT_EQ(decode("40 02 00 00", v3_1_1).error, reason_code::protocol_error);
  EXPECT_EQ(decode("62 02 00 00", v5).error, reason_code::protocol_error);
}

// 3.4.2.1 (5.0): Remaining Length 2 means Success without properties; 3 means a Reason
// Code without properties.
TEST(ack_decode, v5_short_forms) {
  auto p = test::decode_as<ack_packet>("40 02 00 07", v5);
  EXPECT_EQ(p.reason, reason_code::success);
  EXPECT_EQ(p.props, properties{});
  p = test::decode_as<ack_packet>("40 03 00 07 10", v5);
  EXPECT_EQ(p.reason, reason_code::no_matching_subscribers);
  EXPECT_EQ(p.props, properties{});
  p = test::decode_as<ack_packet>("50 04 00 07 97 00", v5);
  EXPECT_EQ(p.type, packet_type::pubrec);
  EXPECT_EQ(p.reason, reason_code::quota_exceeded);
}

TEST(ack_decode, v5_reason_string_and_user_property) {
  const auto p = test::decode_as<ack_packet>("40 0F 00 07 80 0B 1F 00 01 78 26 00 01 6B 00 01 76",
                                             v5);
  EXPECT_EQ(p.reason, reason_code::unspecified_error);
  EXPECT_EQ(p.props.reason_string, "x");
  EXPECT_EQ(p.props.user_properties, (std::vector<user_property>{{"k", "v"}}));
}

// 3.6.2.1 / 3.7.2.1: PUBREL and PUBCOMP know only 0x00 and 0x92; PUBACK/PUBREC their list.
TEST(ack_decode, v5_reason_code_outside_packet_list_is_protocol_error) {
  EXPECT_EQ(test::decode_as<ack_packet>("62 03 00 07 92", v5).reason,
            reason_code::packet_identifier_not_found);
  EXPECT_EQ(decode("62 03 00 07 10", v5).error, reason_code::protocol_error);
  EXPECT_EQ(decode("70 03 00 07 80", v5).error, reason_code::protocol_error);
  EXPECT_EQ(decode("40 03 00 07 92", v5).error, reason_code::protocol_error);
  EXPECT_EQ(decode("50 03 00 07 02", v5).error, reason_code::protocol_error);
}

// Section 2.2.2.2: Session Expiry Interval (0x11) is not valid in PUBACK.
TEST(ack_decode, v5_property_not_allowed_is_malformed) {
  EXPECT_EQ(decode("40 09 00 07 00 05 11 00 00 00 01", v5).error, reason_code::malformed_packet);
}

// 3.4.2.2.2: "It is a Protocol Error to include the Reason String more than once".
TEST(ack_decode, v5_duplicate_reason_string_is_protocol_error) {
  EXPECT_EQ(decode("40 0C 00 07 80 08 1F 00 01 78 1F 00 01 79", v5).error,
            reason_code::protocol_error);
}

TEST(ack_encode, v5_uses_short_forms) {
  ack_packet p{packet_type::puback, 7, reason_code::success, {}};
  EXPECT_EQ(test::hex(test::encode(p, v5)), "40 02 00 07");
  p.reason = reason_code::no_matching_subscribers;
  EXPECT_EQ(test::hex(test::encode(p, v5)), "40 03 00 07 10");
  p.props.reason_string = "x";
  EXPECT_EQ(test::hex(test::encode(p, v5)), "40 08 00 07 10 04 1F 00 01 78");
  p.reason = reason_code::success;
  EXPECT_EQ(test::hex(test::encode(p, v5)), "40 08 00 07 00 04 1F 00 01 78");
}

TEST(ack_encode, reason_and_properties_dropped_before_5) {
  ack_packet p{packet_type::pubrel, 0x1234, reason_code::packet_identifier_not_found, {}};
  p.props.reason_string = "gone";
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "62 02 12 34");
}

TEST(ack_round_trip, every_type_and_version) {
  for (const auto version : test::all_versions) {
    for (const auto type :
         {packet_type::puback, packet_type::pubrec, packet_type::pubrel, packet_type::pubcomp}) {
      ack_packet p{type, 42, reason_code::success, {}};
      EXPECT_EQ(test::round_trip(p, version), p);
      if (version == v5) {
        p.reason = type == packet_type::pubrel || type == packet_type::pubcomp
                       ? reason_code::packet_identifier_not_found
                       : reason_code::not_authorized;
        EXPECT_EQ(test::round_trip(p, version), p);
        p.props.reason_string = "why";
        p.props.user_properties = {{"a", "b"}};
        EXPECT_EQ(test::round_trip(p, version), p);
      }
    }
  }
}

}  // namespace
}  // namespace wharf::mqtt
