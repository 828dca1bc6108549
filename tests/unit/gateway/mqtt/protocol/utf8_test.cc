// UTF-8 Encoded Strings (1.5.4 in 5.0, 1.5.3 in 3.1.1).
#include "test_util.h"

namespace wharf::mqtt {
namespace {

std::string chars(std::string_view hex) {
  const auto b = test::bytes(hex);
  return std::string(b.begin(), b.end());
}

TEST(utf8, well_formed_text_is_valid) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("sensors/room-1/temp"));
  EXPECT_TRUE(is_valid_utf8(chars("C3 A9")));        // U+00E9
  EXPECT_TRUE(is_valid_utf8(chars("E2 82 AC")));     // U+20AC
  EXPECT_TRUE(is_valid_utf8(chars("F0 9F 98 80")));  // U+1F600
  EXPECT_TRUE(is_valid_utf8(chars("F4 8F BF BF")));  // U+10FFFF, the last code point
  EXPECT_TRUE(is_valid_utf8(chars("ED 9F BF")));     // U+D7FF, just below the surrogates
  EXPECT_TRUE(is_valid_utf8(chars("EE 80 80")));     // U+E000, just above them
}

// [MQTT-1.5.4-1]: ill-formed UTF-8 (overlong forms, stray continuation bytes, truncated
// sequences, code points above U+10FFFF).
TEST(utf8, ill_formed_is_invalid) {
  EXPECT_FALSE(is_valid_utf8(chars("80")));
  EXPECT_FALSE(is_valid_utf8(chars("C3")));
  EXPECT_FALSE(is_valid_utf8(chars("E2 82")));
  EXPECT_FALSE(is_valid_utf8(chars("F0 9F 98")));
  EXPECT_FALSE(is_valid_utf8(chars("C3 41")));
  EXPECT_FALSE(is_valid_utf8(chars("C0 80")));        // overlong U+0000
  EXPECT_FALSE(is_valid_utf8(chars("C1 BF")));        // overlong U+007F
  EXPECT_FALSE(is_valid_utf8(chars("E0 80 AF")));     // overlong '/'
  EXPECT_FALSE(is_valid_utf8(chars("F0 8F BF BF")));  // overlong U+FFFF
  EXPECT_FALSE(is_valid_utf8(chars("F4 90 80 80")));  // U+110000
  EXPECT_FALSE(is_valid_utf8(chars("F5 80 80 80")));
  EXPECT_FALSE(is_valid_utf8(chars("F8 88 80 80 80")));
  EXPECT_FALSE(is_valid_utf8(chars("FF")));
  EXPECT_FALSE(is_valid_utf8(chars("61 FE 62")));
}

// [MQTT-1.5.4-1]: no encodings of the surrogates U+D800..U+DFFF.
TEST(utf8, surrogates_are_invalid) {
  EXPECT_FALSE(is_valid_utf8(chars("ED A0 80")));  // U+D800
  EXPECT_FALSE(is_valid_utf8(chars("ED BF BF")));  // U+DFFF
  EXPECT_FALSE(is_valid_utf8(chars("ED A0 BD ED B8 80")));  // CESU-8 pair
}

// [MQTT-1.5.4-2]: no U+0000.
TEST(utf8, null_character_is_invalid) {
  EXPECT_FALSE(is_valid_utf8(std::string_view("a\0b", 3)));
  EXPECT_FALSE(is_valid_utf8(std::string_view("\0", 1)));
}

// Control characters and non-characters are "SHOULD NOT" (1.5.4), not "MUST NOT": accepted.
// [MQTT-1.5.4-3]: a BOM is a ZERO WIDTH NO-BREAK SPACE, kept and not skipped.
TEST(utf8, discouraged_code_points_are_accepted) {
  EXPECT_TRUE(is_valid_utf8(chars("01 1F 7F")));
  EXPECT_TRUE(is_valid_utf8(chars("C2 80 C2 9F")));  // U+0080, U+009F
  EXPECT_TRUE(is_valid_utf8(chars("EF BF BF")));     // U+FFFF
  EXPECT_TRUE(is_valid_utf8(chars("EF BB BF 61")));  // BOM
  const auto p = test::decode_as<publish_packet>("30 06 00 04 EF BB BF 61", protocol_version::v3_1_1);
  EXPECT_EQ(p.topic, chars("EF BB BF 61"));
}

// Every string field of every packet goes through the check; spot checks beyond the
// per-packet tests: user property name/value, content type, reason string.
TEST(utf8, property_strings_are_checked) {
  const auto v5 = protocol_version::v5;
  EXPECT_EQ(test::decode("30 0B 00 01 61 07 26 00 01 C0 00 01 61", v5).error,
            reason_code::malformed_packet);
  EXPECT_EQ(test::decode("30 0B 00 01 61 07 26 00 01 61 00 01 00", v5).error,
            reason_code::malformed_packet);
  EXPECT_EQ(test::decode("30 08 00 01 61 04 03 00 01 80", v5).error,
            reason_code::malformed_packet);
  EXPECT_EQ(test::decode("40 08 00 01 00 04 1F 00 01 FF", v5).error,
            reason_code::malformed_packet);
  // Binary data is not UTF-8 checked: correlation data may hold anything.
  EXPECT_TRUE(test::decode("30 08 00 01 61 04 09 00 01 FF", v5).ok());
}

}  // namespace
}  // namespace wharf::mqtt
