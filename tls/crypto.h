// Message authentication and encodings for request signing (the CMQ queue API): HMAC-SHA1
// and HMAC-SHA256 over raw bytes, base64 (RFC 4648, standard alphabet, padded), and a
// comparison whose time does not depend on where two secrets differ; password hashing
// (PBKDF2) and random bytes for users' passwords. Raw OpenSSL stays in this module; callers
// see bytes and strings only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wharf::tls {

inline constexpr std::size_t sha1_digest_bytes = 20;
inline constexpr std::size_t sha256_digest_bytes = 32;

using sha1_digest = std::array<std::uint8_t, sha1_digest_bytes>;
using sha256_digest = std::array<std::uint8_t, sha256_digest_bytes>;

// HMAC (RFC 2104) of `data` under `key`; any key length (longer than the hash's block size
// is hashed first, as the RFC says). Raw digest bytes.
[[nodiscard]] sha1_digest hmac_sha1(std::string_view key, std::string_view data);
[[nodiscard]] sha256_digest hmac_sha256(std::string_view key, std::string_view data);

// SHA-256 of `data`.
[[nodiscard]] sha256_digest sha256(std::string_view data);

// PBKDF2-HMAC-SHA256 (RFC 8018) of `password` with `salt`, `iterations` rounds, `length`
// bytes of output. Throws std::runtime_error when OpenSSL fails (out of memory).
[[nodiscard]] std::vector<std::uint8_t> pbkdf2_hmac_sha256(std::string_view password,
                                                           std::span<const std::uint8_t> salt,
                                                           std::uint32_t iterations, std::size_t length);

// `count` bytes from OpenSSL's CSPRNG. Throws std::runtime_error when it is not seeded.
[[nodiscard]] std::vector<std::uint8_t> random_bytes(std::size_t count);

// RFC 4648 base64 with the standard alphabet and '=' padding, no line breaks.
[[nodiscard]] std::string base64_encode(std::span<const std::uint8_t> bytes);
// Strict inverse of base64_encode: the length must be a multiple of 4, padding only at the
// end, no whitespace, and the unused bits of the last group zero (so every byte string has
// exactly one accepted encoding). nullopt when `text` is not such an encoding.
[[nodiscard]] std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);

// base64url (RFC 4648 section 5) without padding, as JSON Web Tokens and keys use it; as
// strict as base64_decode. nullopt when `text` is not such an encoding.
[[nodiscard]] std::optional<std::vector<std::uint8_t>> base64url_decode(std::string_view text);
// Its inverse (the tests and fuzz targets make tokens and keys with it).
[[nodiscard]] std::string base64url_encode(std::span<const std::uint8_t> bytes);

// Public keys for verifying signatures (JSON Web Tokens), as PEM SubjectPublicKeyInfo.
enum class public_key_kind { rsa, p256, other };
// From a JSON Web Key's parts (RFC 7518 6.3.1 and 6.2.1): an RSA modulus and exponent, or a
// point on P-256, big-endian bytes. nullopt when OpenSSL refuses them (a point off the curve).
[[nodiscard]] std::optional<std::string> rsa_public_key_pem(std::span<const std::uint8_t> modulus,
                                                            std::span<const std::uint8_t> exponent);
[[nodiscard]] std::optional<std::string> p256_public_key_pem(std::span<const std::uint8_t> x,
                                                             std::span<const std::uint8_t> y);
// The kind of the first public key in `pem`; nullopt when it holds none.
[[nodiscard]] std::optional<public_key_kind> public_key_kind_of(std::string_view pem);

// True when both hold the same bytes. For equal lengths the time taken does not depend on
// the contents (CRYPTO_memcmp), so comparing a secret-derived value leaks nothing about it;
// different lengths return false at once (lengths are not secret here: digests have fixed
// sizes).
[[nodiscard]] bool constant_time_equal(std::span<const std::uint8_t> a,
                                       std::span<const std::uint8_t> b) noexcept;

}  // namespace wharf::tls
