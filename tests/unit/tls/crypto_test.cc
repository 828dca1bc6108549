// HMAC known answers from RFC 2202 (HMAC-SHA1) and RFC 4231 (HMAC-SHA256), base64 from
// RFC 4648 section 10, and the strictness of the decoder.
#include "tls/crypto.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wharf::tls {
namespace {

std::string hex(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

std::string repeat(unsigned char byte, std::size_t n) { return std::string(n, static_cast<char>(byte)); }

// 0x01, 0x02, ... 0x19: the key of test case 4 in both RFCs.
std::string counting_key() {
  std::string key;
  for (int i = 1; i <= 25; ++i) key.push_back(static_cast<char>(i));
  return key;
}

std::vector<std::uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

struct hmac_case {
  std::string key;
  std::string data;
  std::string expected_hex;
};

TEST(hmac_sha1, rfc2202_test_cases) {
  const std::vector<hmac_case> cases = {
      {repeat(0x0b, 20), "Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"},
      {"Jefe", "what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
      {repeat(0xaa, 20), repeat(0xdd, 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
      {counting_key(), repeat(0xcd, 50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da"},
      {repeat(0x0c, 20), "Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
      {repeat(0xaa, 80), "Test Using Larger Than Block-Size Key - Hash Key First",
       "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
      {repeat(0xaa, 80), "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
       "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(hex(hmac_sha1(cases[i].key, cases[i].data)), cases[i].expected_hex) << "case " << i + 1;
  }
}

TEST(hmac_sha256, rfc4231_test_cases) {
  const std::vector<hmac_case> cases = {
      {repeat(0x0b, 20), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {"Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {repeat(0xaa, 20), repeat(0xdd, 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {counting_key(), repeat(0xcd, 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {repeat(0xaa, 131), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {repeat(0xaa, 131),
       "This is a test using a larger than block-size key and a larger than block-size data. The key "
       "needs to be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(hex(hmac_sha256(cases[i].key, cases[i].data)), cases[i].expected_hex) << "case " << i;
  }
  // Test case 5 checks only the first 128 bits (truncated output).
  EXPECT_EQ(hex(hmac_sha256(repeat(0x0c, 20), "Test With Truncation")).substr(0, 32),
            "a3b6167473100ee06e0c796c2955552b");
}

TEST(hmac, empty_key_and_data) {
  // python3 -c 'import hmac,hashlib; print(hmac.new(b"", b"", hashlib.sha1).hexdigest())'
  EXPECT_EQ(hex(hmac_sha1("", "")), "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
  EXPECT_EQ(hex(hmac_sha256("", "")), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(base64, rfc4648_vectors_both_ways) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(base64_encode(bytes(plain)), encoded);
    auto decoded = base64_decode(encoded);
    ASSERT_TRUE(decoded.has_value()) << encoded;
    EXPECT_EQ(*decoded, bytes(plain)) << encoded;
  }
}

TEST(base64, every_byte_value_round_trips) {
  std::vector<std::uint8_t> all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<std::uint8_t>(i));
  const std::string text = base64_encode(all);
  EXPECT_EQ(text.substr(0, 8), "AAECAwQF");
  EXPECT_EQ(text.substr(text.size() - 8), "/P3+/w==");
  EXPECT_EQ(base64_decode(text), all);
}

TEST(base64, decoder_refuses_what_the_encoder_never_writes) {
  for (const char* bad : {"Zg", "Zg=", "Zm9", "Z===", "====", "Zg==Zg==", "Zm=v", "Zh==", "Zm9=",
                          "Zm 9v", "Zm9v\n", "Zm9-", "Zm9_", "Zm9v=", "=Zm9"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

TEST(base64url, the_url_alphabet_without_padding_both_ways) {
  std::vector<std::uint8_t> all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<std::uint8_t>(i));
  const std::string text = base64url_encode(all);
  EXPECT_EQ(text.substr(text.size() - 6), "_P3-_w");  // no '+', '/' or '='
  EXPECT_EQ(base64url_decode(text), all);
  EXPECT_EQ(base64url_encode(bytes("f")), "Zg");
  EXPECT_EQ(base64url_decode("Zg"), bytes("f"));
  for (const char* bad : {"Zg==", "Z", "Zm9+", "Zm9/"}) EXPECT_FALSE(base64url_decode(bad).has_value()) << bad;
}

TEST(constant_time_equal, compares_contents_and_lengths) {
  EXPECT_TRUE(constant_time_equal(bytes(""), bytes("")));
  EXPECT_TRUE(constant_time_equal(bytes("abc"), bytes("abc")));
  EXPECT_FALSE(constant_time_equal(bytes("abc"), bytes("abd")));
  EXPECT_FALSE(constant_time_equal(bytes("abc"), bytes("ab")));
  const auto a = hmac_sha256("k", "x");
  auto b = a;
  EXPECT_TRUE(constant_time_equal(a, b));
  b[31] ^= 1;
  EXPECT_FALSE(constant_time_equal(a, b));
}

}  // namespace
}  // namespace wharf::tls
