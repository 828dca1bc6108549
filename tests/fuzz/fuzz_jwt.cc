// libFuzzer target over JSON Web Tokens (auth/jwt.h), what any client can put in a CONNECT's
// password: the token's form, base64url, the header and claims JSON, libjwt's decoding, and
// the keys file's parser (a JWKS an operator writes). The first input byte picks what the
// rest is:
//   0: a token, verified as it is (against an HS256 key and a P-256 key);
//   1: a claims object, signed here with the HS256 key, so the claim checks are reached;
//   2: a keys file, loaded (a bad one must be a config error, nothing worse).
// A token that verifies must name a non-empty username.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "auth/jwt.h"
#include "tls/crypto.h"

namespace {

constexpr std::string_view secret = "fuzz-secret";

std::string base64url(std::string_view bytes) {
  return wharf::tls::base64url_encode({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
}

std::filesystem::path scratch(std::string_view name) {
  return std::filesystem::temp_directory_path() / (std::string(name) + "-" + std::to_string(::getpid()));
}

wharf::config::jwt_config config_for(const std::filesystem::path& path) {
  wharf::config::jwt_config cfg;
  cfg.keys_file = path.string();
  cfg.keys_location = "fuzz.yaml:1:1";
  cfg.issuer = "fuzz";
  cfg.audience = "wharf";
  return cfg;
}

// A P-256 point (the generator) and the HS256 secret, in a keys file read once.
std::filesystem::path write_keys() {
  const auto path = scratch("fuzz-jwt-keys");
  std::ofstream(path) << R"({"keys":[{"kty":"EC","crv":"P-256","kid":"e",)"
                         R"("x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",)"
                         R"("y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"},)"
                         R"({"kty":"oct","kid":"h","k":")"
                      << base64url(secret) << R"("}]})";
  return path;
}

struct keys_fixture {
  std::filesystem::path path = write_keys();
  wharf::auth::jwt_verifier verifier{config_for(path)};
  keys_fixture() { std::filesystem::remove(path); }
};

const wharf::auth::jwt_verifier& verifier() {
  static const keys_fixture fixture;
  return fixture.verifier;
}

void check(const std::string& token) {
  const auto r = verifier().verify(token, 1'900'000'000);
  if (const auto* ok = std::get_if<wharf::auth::jwt_verifier::verified>(&r); ok && ok->username.empty()) {
    std::fprintf(stderr, "fuzz_jwt: a token verified without a username\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      check(std::string(rest));
      break;
    case 1: {
      const std::string input = base64url(R"({"alg":"HS256","kid":"h"})") + "." + base64url(rest);
      const auto mac = wharf::tls::hmac_sha256(secret, input);
      check(input + "." + base64url({reinterpret_cast<const char*>(mac.data()), mac.size()}));
      break;
    }
    default: {
      // One scratch file for the run, removed when the process exits.
      static const struct scratch_file {
        std::filesystem::path path = scratch("fuzz-jwt-input");
        ~scratch_file() { std::filesystem::remove(path); }
      } file;
      const auto& path = file.path;
      std::ofstream(path, std::ios::binary | std::ios::trunc) << rest;
      try {
        (void)wharf::auth::jwt_verifier(config_for(path));
      } catch (const wharf::config::config_errors&) {
      }
      break;
    }
  }
  return 0;
}
