// Users' passwords: stored as salted, iterated PBKDF2-HMAC-SHA256 hashes, never as text.
// The stored form is one string, "$pbkdf2-sha256$i=ITERATIONS$SALT$HASH" with SALT and
// HASH in base64, that `wharf passwd` prints and the config's auth.users entries hold.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wharf::auth {

// About 50 ms of one core here: slow enough to make guessing a leaked hash expensive, and
// paid once per user and password while the broker runs (see access_policy's cache).
inline constexpr std::uint32_t default_password_iterations = 100000;
inline constexpr std::uint32_t min_password_iterations = 1000;
inline constexpr std::uint32_t max_password_iterations = 100000000;

struct stored_password {
  std::uint32_t iterations = 0;
  std::vector<std::uint8_t> salt;
  std::vector<std::uint8_t> hash;
};

// A new stored form of `password` with a random 16-byte salt.
// REQUIRES: min_password_iterations <= iterations <= max_password_iterations.
[[nodiscard]] std::string hash_password(std::string_view password, std::uint32_t iterations);

// Parses the stored form; on failure, says what is wrong with it.
[[nodiscard]] std::variant<stored_password, std::string> parse_password_hash(std::string_view text);

// True when `password` hashes to `stored` (compared in constant time). Takes `iterations`
// rounds of HMAC: call it off the I/O threads.
[[nodiscard]] bool password_matches(const stored_password& stored, std::string_view password);

}  // namespace wharf::auth
