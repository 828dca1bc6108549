// Stored passwords: the hash string `wharf passwd` prints, and checking passwords against it.
#include "auth/password.h"

#include <gtest/gtest.h>

namespace wharf::auth {
namespace {

const stored_password& parsed(const std::variant<stored_password, std::string>& v) {
  if (const auto* why = std::get_if<std::string>(&v)) ADD_FAILURE() << *why;
  return std::get<stored_password>(v);
}

TEST(password, a_hash_matches_its_password_only) {
  const auto text = hash_password("correct horse", min_password_iterations);
  EXPECT_TRUE(text.starts_with("$pbkdf2-sha256$i=1000$")) << text;
  const auto parsed_hash = parse_password_hash(text);
  const auto& stored = parsed(parsed_hash);
  EXPECT_EQ(stored.iterations, min_password_iterations);
  EXPECT_EQ(stored.salt.size(), 16u);
  EXPECT_TRUE(password_matches(stored, "correct horse"));
  EXPECT_FALSE(password_matches(stored, "correct horse "));
  EXPECT_FALSE(password_matches(stored, ""));
}

TEST(password, the_same_password_gets_a_new_salt_each_time) {
  EXPECT_NE(hash_password("pw", min_password_iterations), hash_password("pw", min_password_iterations));
}

// RFC 7914 section 11 gives a PBKDF2-HMAC-SHA256 vector: P="passwd", S="salt", c=1, 64
// bytes; its first 32 bytes, base64, checked through the stored form (c=1 is below the
// minimum the parser takes, so the parsed value's count is set by hand).
TEST(password, matches_the_rfc_7914_pbkdf2_vector) {
  const auto stored_text = std::string("$pbkdf2-sha256$i=1000$c2FsdA==$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw=");
  auto stored = std::get<stored_password>(parse_password_hash(stored_text));
  stored.iterations = 1;
  EXPECT_TRUE(password_matches(stored, "passwd"));
}

TEST(password, malformed_hashes_say_what_is_wrong) {
  auto error = [](std::string_view text) {
    const auto v = parse_password_hash(text);
    return std::holds_alternative<std::string>(v) ? std::get<std::string>(v) : std::string("(parsed)");
  };
  EXPECT_NE(error("secret").find("not a password hash wharf knows"), std::string::npos);
  EXPECT_NE(error("$pbkdf2-sha256$i=1000$abc").find("malformed"), std::string::npos);
  EXPECT_NE(error("$pbkdf2-sha256$i=10$c2FsdA==$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw=").find("out of range"),
            std::string::npos);
  EXPECT_NE(error("$pbkdf2-sha256$i=x$c2FsdA==$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw=").find("out of range"),
            std::string::npos);
  EXPECT_NE(error("$pbkdf2-sha256$i=1000$c2FsdA==$c2FsdA==").find("base64"), std::string::npos);
  EXPECT_NE(error("$pbkdf2-sha256$i=1000$!!!!$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLw=").find("base64"),
            std::string::npos);
}

}  // namespace
}  // namespace wharf::auth
