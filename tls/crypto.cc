#include "tls/crypto.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <stdexcept>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

namespace wharf::tls {
namespace {

// OpenSSL wants non-null pointers even for empty inputs; string_view may hold nullptr.
const unsigned char* bytes_of(std::string_view s) noexcept {
  static constexpr unsigned char empty = 0;
  return s.empty() ? &empty : reinterpret_cast<const unsigned char*>(s.data());
}

struct mac_context_free {
  void operator()(EVP_MAC_CTX* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }
};
using mac_context = std::unique_ptr<EVP_MAC_CTX, mac_context_free>;

// An HMAC context over `digest` ("SHA1", "SHA256"), without a key; nullptr when OpenSSL
// lacks it.
mac_context new_hmac_context(const char* digest) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return nullptr;
  mac_context ctx(EVP_MAC_CTX_new(mac));
  EVP_MAC_free(mac);  // the context holds its own reference
  if (!ctx) return nullptr;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(ctx.get(), params) != 1) return nullptr;
  return ctx;
}

// `ctx` is keyed anew on every call. Callers keep one context per thread and digest:
// OpenSSL 3's one-shot HMAC() fetches the algorithm and builds, configures and frees a
// context on every call, which added about a third to hashing a CMQ request's string to
// sign.
template <std::size_t N>
std::array<std::uint8_t, N> hmac(EVP_MAC_CTX* ctx, std::string_view key, std::string_view data) {
  std::array<std::uint8_t, N> out{};
  std::size_t length = 0;
  // A non-null key, even an empty one: EVP_MAC_init with a null key would reuse the last one.
  if (ctx == nullptr || EVP_MAC_init(ctx, bytes_of(key), key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx, bytes_of(data), data.size()) != 1 || EVP_MAC_final(ctx, out.data(), &length, N) != 1 ||
      length != N) {
    // Only an OpenSSL build without SHA-1/SHA-256 or out of memory gets here.
    throw std::runtime_error("HMAC computation failed");
  }
  return out;
}

// Value of a base64 alphabet character, or -1.
int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

sha1_digest hmac_sha1(std::string_view key, std::string_view data) {
  thread_local const mac_context ctx = new_hmac_context("SHA1");
  return hmac<sha1_digest_bytes>(ctx.get(), key, data);
}

sha256_digest hmac_sha256(std::string_view key, std::string_view data) {
  thread_local const mac_context ctx = new_hmac_context("SHA256");
  return hmac<sha256_digest_bytes>(ctx.get(), key, data);
}

sha256_digest sha256(std::string_view data) {
  sha256_digest out{};
  unsigned int length = 0;
  if (EVP_Digest(bytes_of(data), data.size(), out.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != out.size()) {
    throw std::runtime_error("SHA-256 computation failed");
  }
  return out;
}

std::vector<std::uint8_t> pbkdf2_hmac_sha256(std::string_view password, std::span<const std::uint8_t> salt,
                                             std::uint32_t iterations, std::size_t length) {
  static constexpr unsigned char no_salt = 0;
  std::vector<std::uint8_t> out(length);
  if (iterations == 0 || iterations > static_cast<std::uint32_t>(std::numeric_limits<int>::max()) ||
      PKCS5_PBKDF2_HMAC(password.empty() ? "" : password.data(), static_cast<int>(password.size()),
                        salt.empty() ? &no_salt : salt.data(), static_cast<int>(salt.size()),
                        static_cast<int>(iterations), EVP_sha256(), static_cast<int>(length), out.data()) != 1) {
    throw std::runtime_error("PBKDF2 computation failed");
  }
  return out;
}

std::vector<std::uint8_t> random_bytes(std::size_t count) {
  std::vector<std::uint8_t> out(count);
  if (count > 0 && RAND_bytes(out.data(), static_cast<int>(count)) != 1)
    throw std::runtime_error("the random generator failed");
  return out;
}

std::string base64_encode(std::span<const std::uint8_t> bytes) {
  // EVP_EncodeBlock writes 4 characters per started 3-byte group plus a NUL.
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  std::size_t done = 0;
  // EVP_EncodeBlock takes an int length: encode in chunks that are a multiple of 3 bytes.
  constexpr std::size_t chunk = 3 * (std::size_t{1} << 28);
  for (std::size_t pos = 0; pos < bytes.size(); pos += chunk) {
    const std::size_t n = std::min(chunk, bytes.size() - pos);
    done += static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + done),
                                                     bytes.data() + pos, static_cast<int>(n)));
  }
  out.resize(done);
  return out;
}

std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::vector<std::uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t pos = 0; pos < text.size(); pos += 4) {
    const bool last = pos + 4 == text.size();
    // '=' may only end the last group: "xx==" (one byte) or "xxx=" (two bytes).
    std::size_t padding = 0;
    if (last && text[pos + 3] == '=') padding = text[pos + 2] == '=' ? 2 : 1;
    std::uint32_t group = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      int v = 0;
      if (i < 4 - padding) {
        v = base64_value(text[pos + i]);
        if (v < 0) return std::nullopt;
      }
      group = (group << 6) | static_cast<std::uint32_t>(v);
    }
    const std::size_t n = 3 - padding;
    // Bits below the last encoded byte must be zero, else two texts would decode alike.
    if ((group & ((std::uint32_t{1} << (8 * padding)) - 1)) != 0) return std::nullopt;
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(group >> (16 - 8 * i)));
  }
  return out;
}

bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base64url_encode(std::span<const std::uint8_t> bytes) {
  auto text = base64_encode(bytes);
  for (char& c : text) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!text.empty() && text.back() == '=') text.pop_back();
  return text;
}

std::optional<std::vector<std::uint8_t>> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string standard(text);
  for (char& c : standard) {
    if (c == '+' || c == '/' || c == '=') return std::nullopt;  // not of this alphabet
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  standard.append((4 - standard.size() % 4) % 4, '=');
  return base64_decode(standard);
}

namespace {

struct pkey_free {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct pkey_ctx_free {
  void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};
struct param_bld_free {
  void operator()(OSSL_PARAM_BLD* b) const noexcept { OSSL_PARAM_BLD_free(b); }
};
struct params_free {
  void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};
struct bignum_free {
  void operator()(BIGNUM* n) const noexcept { BN_free(n); }
};
struct bio_free {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};

// Leaves OpenSSL's error queue of this thread empty when it goes out of scope: a refused
// key must not leave errors that a later TLS call on the same thread would read as its own.
struct openssl_errors_cleared {
  openssl_errors_cleared() = default;
  openssl_errors_cleared(const openssl_errors_cleared&) = delete;
  openssl_errors_cleared& operator=(const openssl_errors_cleared&) = delete;
  ~openssl_errors_cleared() { ERR_clear_error(); }
};

// A public key of `type` ("RSA", "EC") made from `params`, written as PEM.
std::optional<std::string> public_key_pem(const char* type, OSSL_PARAM_BLD* builder) {
  const openssl_errors_cleared cleared;
  std::unique_ptr<OSSL_PARAM, params_free> params(OSSL_PARAM_BLD_to_param(builder));
  std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_free> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return std::nullopt;
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) return std::nullopt;
  std::unique_ptr<EVP_PKEY, pkey_free> key(raw);
  // fromdata does not check an EC point; a point off the curve must not become a key.
  std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_free> check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return std::nullopt;
  std::unique_ptr<BIO, bio_free> out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_PUBKEY(out.get(), key.get()) != 1) return std::nullopt;
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

std::optional<std::string> rsa_public_key_pem(std::span<const std::uint8_t> modulus,
                                              std::span<const std::uint8_t> exponent) {
  std::unique_ptr<BIGNUM, bignum_free> n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
  std::unique_ptr<BIGNUM, bignum_free> e(BN_bin2bn(exponent.data(), static_cast<int>(exponent.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, param_bld_free> builder(OSSL_PARAM_BLD_new());
  if (!n || !e || !builder || modulus.empty() || exponent.empty() ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1)
    return std::nullopt;
  return public_key_pem("RSA", builder.get());
}

std::optional<std::string> p256_public_key_pem(std::span<const std::uint8_t> x, std::span<const std::uint8_t> y) {
  if (x.size() != 32 || y.size() != 32) return std::nullopt;
  // SEC 1 uncompressed point: 0x04, then x and y.
  std::array<std::uint8_t, 65> point{0x04};
  std::copy(x.begin(), x.end(), point.begin() + 1);
  std::copy(y.begin(), y.end(), point.begin() + 33);
  std::unique_ptr<OSSL_PARAM_BLD, param_bld_free> builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
    return std::nullopt;
  return public_key_pem("EC", builder.get());
}

std::optional<public_key_kind> public_key_kind_of(std::string_view pem) {
  const openssl_errors_cleared cleared;
  std::unique_ptr<BIO, bio_free> in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!in) return std::nullopt;
  std::unique_ptr<EVP_PKEY, pkey_free> key(PEM_read_bio_PUBKEY(in.get(), nullptr, nullptr, nullptr));
  if (!key) return std::nullopt;
  if (EVP_PKEY_is_a(key.get(), "RSA")) return public_key_kind::rsa;
  if (EVP_PKEY_is_a(key.get(), "EC")) {
    char group[64] = {};
    std::size_t length = 0;
    if (EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length) == 1 &&
        std::string_view(group, length) == "prime256v1")
      return public_key_kind::p256;
  }
  return public_key_kind::other;
}

}  // namespace wharf::tls
