#include "auth/password.h"

#include <charconv>

#include <fmt/format.h>

#include "tls/crypto.h"

namespace wharf::auth {
namespace {

constexpr std::string_view scheme = "$pbkdf2-sha256$i=";
constexpr std::size_t salt_bytes = 16;
constexpr std::size_t hash_bytes = 32;

}  // namespace

std::string hash_password(std::string_view password, std::uint32_t iterations) {
  const auto salt = tls::random_bytes(salt_bytes);
  const auto hash = tls::pbkdf2_hmac_sha256(password, salt, iterations, hash_bytes);
  return fmt::format("{}{}${}${}", scheme, iterations, tls::base64_encode(salt), tls::base64_encode(hash));
}

std::variant<stored_password, std::string> parse_password_hash(std::string_view text) {
  const std::string expected = "expected \"$pbkdf2-sha256$i=ITERATIONS$SALT$HASH\" as `wharf passwd` prints it";
  if (!text.starts_with(scheme)) return fmt::format("not a password hash wharf knows, {}", expected);
  text.remove_prefix(scheme.size());
  const auto first = text.find('$');
  const auto second = first == std::string_view::npos ? first : text.find('$', first + 1);
  if (second == std::string_view::npos || text.find('$', second + 1) != std::string_view::npos)
    return fmt::format("malformed password hash, {}", expected);
  stored_password out;
  const std::string_view count = text.substr(0, first);
  const auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), out.iterations);
  if (ec != std::errc{} || end != count.data() + count.size() || out.iterations < min_password_iterations ||
      out.iterations > max_password_iterations) {
    return fmt::format("password hash iterations '{}' out of range, expected {}..{}", count, min_password_iterations,
                       max_password_iterations);
  }
  auto salt = tls::base64_decode(text.substr(first + 1, second - first - 1));
  auto hash = tls::base64_decode(text.substr(second + 1));
  if (!salt || salt->empty() || !hash || hash->size() != hash_bytes)
    return fmt::format("password hash salt or hash is not valid base64 of the right length, {}", expected);
  out.salt = std::move(*salt);
  out.hash = std::move(*hash);
  return out;
}

bool password_matches(const stored_password& stored, std::string_view password) {
  const auto candidate = tls::pbkdf2_hmac_sha256(password, stored.salt, stored.iterations, stored.hash.size());
  return tls::constant_time_equal(candidate, stored.hash);
}

}  // namespace wharf::auth
