// UNSUBACK (3.11): packet identifier; in 5.0 also properties and one reason per filter.
#include "test_util.h"

namespace wharf::mqtt {
namespace {

using test::decode;

constexpr auto v3_1_1 = protocol_version::v3_1_1;
constexpr auto v5 = protocol_version::v5;

TEST(unsuback_decode, packet_id_only_before_5) {
  for (const auto version : {protocol_version::v3_1, v3_1_1}) {
    const auto p = test::decode_as<unsuback_packet>("B0 02 00 01", version);
    EXPECT_EQ(p.packet_id, 1);
    EXPECT_TRUE(p.reasons.empty());
  }
  // 3.11.1 (3.1.1): Remaining Length is 2.
  EXPECT_EQ(decode("B0 03 00 01 00", v3_1_1).error, reason_code::malformed_packet);
}

TEST(unsuback_decode, flags_and_packet_id) {
  EXPECT_EQ(decode("B2 02 00 01", v3_1_1).error, reason_code::malformed_packet);
  EXPECT_EQ(decode("B0 02 00 00", v3_1_1).error, reason_code::protocol_error);
}

TEST(unsuback_decode, v5_reason_codes) {
  const auto p = test::decode_as<unsuback_packet>("B0 05 00 01 00 00 11", v5);
  EXPECT_EQ(p.reasons,
            (std::vector<reason_code>{reason_code::success, reason_code::no_subscription_existed}));
  // 3.11.3: 0x01 is not an UNSUBACK reason code.
  EXPECT_EQ(decode("B0 04 00 01 00 01", v5).error, reason_code::protocol_error);
  // One reason code per filter of the UNSUBSCRIBE, which has at least one.
  EXPECT_EQ(decode("B0 03 00 01 00", v5).error, reason_code::protocol_error);
  // The Property Length is not optional in a 5.0 UNSUBACK.
  EXPECT_EQ(decode("B0 02 00 01", v5).error, reason_code::malformed_packet);
}

TEST(unsuback_decode, v5_properties) {
  const auto p = test::decode_as<unsuback_packet>("B0 08 00 01 04 1F 00 01 78 87", v5);
  EXPECT_EQ(p.props.reason_string, "x");
  EXPECT_EQ(p.reasons, (std::vector<reason_code>{reason_code::not_authorized}));
}

TEST(unsuback_encode, wire_exact) {
  unsuback_packet p;
  p.packet_id = 1;
  p.reasons = {reason_code::success, reason_code::no_subscription_existed};
  p.props.reason_string = "x";
  EXPECT_EQ(test::hex(test::encode(p, v3_1_1)), "B0 02 00 01");
  EXPECT_EQ(test::hex(test::encode(p, v5)), "B0 09 00 01 04 1F 00 01 78 00 11");
}

TEST(unsuback_round_trip, every_version) {
  unsuback_packet p;
  p.packet_id = 500;
  EXPECT_EQ(test::round_trip(p, v3_1_1), p);
  EXPECT_EQ(test::round_trip(p, protocol_version::v3_1), p);
  p.reasons = {reason_code::topic_filter_invalid, reason_code::success};
  p.props.user_properties = {{"a", "b"}};
  EXPECT_EQ(test::round_trip(p, v5), p);
}

}  // namespace
}  // namespace wharf::mqtt
