// JSON Web Tokens as credentials: keys from a JWKS or a PEM file, tokens made here with
// libjwt and OpenSSL (RS256, ES256, HS256), and every way a token is refused.
#include "auth/jwt.h"
#include "auth/rules_json.h"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "tls/crypto.h"

namespace wharf::auth {
namespace {

constexpr std::int64_t now = 1'900'000'000;

std::string base64url(std::string_view bytes) {
  return tls::base64url_encode({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
}

struct key_pair {
  std::string private_pem;
  std::string public_pem;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr, &EVP_PKEY_free};
};

key_pair generate(bool rsa) {
  key_pair k;
  k.key.reset(rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))
                  : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  EXPECT_NE(k.key, nullptr);
  auto write = [&](bool is_private) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    if (is_private)
      PEM_write_bio_PrivateKey(bio.get(), k.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    else
      PEM_write_bio_PUBKEY(bio.get(), k.key.get());
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
  };
  k.private_pem = write(true);
  k.public_pem = write(false);
  return k;
}

std::string big_endian(const EVP_PKEY* key, const char* param, int pad_to = 0) {
  BIGNUM* n = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key, param, &n), 1);
  std::string out(static_cast<std::size_t>(std::max(BN_num_bytes(n), pad_to)), '\0');
  BN_bn2binpad(n, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(n);
  return out;
}

std::string rsa_jwk(const key_pair& k, std::string_view kid) {
  return R"({"kty":"RSA","use":"sig","kid":")" + std::string(kid) + R"(","n":")" +
         base64url(big_endian(k.key.get(), OSSL_PKEY_PARAM_RSA_N)) + R"(","e":")" +
         base64url(big_endian(k.key.get(), OSSL_PKEY_PARAM_RSA_E)) + R"("})";
}

std::string ec_jwk(const key_pair& k, std::string_view kid) {
  return R"({"kty":"EC","crv":"P-256","kid":")" + std::string(kid) + R"(","x":")" +
         base64url(big_endian(k.key.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32)) + R"(","y":")" +
         base64url(big_endian(k.key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32)) + R"("})";
}

std::string oct_jwk(std::string_view secret, std::string_view kid) {
  return R"({"kty":"oct","kid":")" + std::string(kid) + R"(","k":")" + base64url(secret) + R"("})";
}

// A token signed by libjwt: `claims` is the payload's JSON, `kid` goes in the header.
std::string sign(jwt_alg_t alg, std::string_view key, std::string_view claims, std::string_view kid = "") {
  jwt_t* raw = nullptr;
  EXPECT_EQ(jwt_new(&raw), 0);
  std::unique_ptr<jwt_t, decltype(&jwt_free)> token(raw, &jwt_free);
  EXPECT_EQ(jwt_add_grants_json(token.get(), std::string(claims).c_str()), 0);
  if (!kid.empty()) {
    EXPECT_EQ(jwt_add_header(token.get(), "kid", std::string(kid).c_str()), 0);
  }
  EXPECT_EQ(jwt_set_alg(token.get(), alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size())), 0);
  char* encoded = jwt_encode_str(token.get());
  std::string out = encoded != nullptr ? encoded : "";
  std::free(encoded);  // libjwt 1.10 allocates it with malloc
  return out;
}

// A token of any header and payload, signed with HMAC-SHA256 under `secret` by hand.
std::string hand_made(std::string_view header, std::string_view claims, std::string_view secret) {
  const std::string input = base64url(header) + "." + base64url(claims);
  const auto mac = tls::hmac_sha256(secret, input);
  return input + "." + base64url({reinterpret_cast<const char*>(mac.data()), mac.size()});
}

class jwt_test : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove_all(dir_); }

  config::jwt_config config_with(std::string_view keys) {
    std::filesystem::create_directories(dir_);
    const auto path = dir_ / ("keys-" + std::to_string(files_++));
    std::ofstream(path) << keys;
    config::jwt_config cfg;
    cfg.keys_file = path.string();
    cfg.keys_location = "wharf.yaml:9:16";
    return cfg;
  }
  std::string jwks(std::initializer_list<std::string> keys) {
    std::string out = R"({"keys":[)";
    for (const auto& k : keys) out += (out.back() == '[' ? "" : ",") + k;
    return out + "]}";
  }
  // The first error message a keys file gives.
  std::string load_error(const config::jwt_config& cfg) {
    try {
      jwt_verifier v(cfg);
      return "accepted";
    } catch (const config::config_errors& e) {
      return e.errors().front().message;
    }
  }

  std::filesystem::path dir_ = std::filesystem::temp_directory_path() / ("wharf-jwt-test-" + std::to_string(::getpid()));
  int files_ = 0;
};

std::string username_of(const jwt_verifier& v, const std::string& token, std::int64_t at = now) {
  auto r = v.verify(token, at);
  if (auto* ok = std::get_if<jwt_verifier::verified>(&r)) return ok->username;
  return "refused: " + std::get<std::string>(r);
}

const std::string good_claims = R"({"sub":"meter-7","exp":1900000600})";

TEST_F(jwt_test, rs256_es256_and_hs256_tokens_name_their_client) {
  const auto rsa = generate(true);
  const auto ec = generate(false);
  const jwt_verifier v(config_with(jwks({rsa_jwk(rsa, "r1"), ec_jwk(ec, "e1"), oct_jwk("a shared secret of 32 bytes!!!!", "h1")})));
  EXPECT_EQ(v.key_count(), 3U);
  EXPECT_EQ(username_of(v, sign(JWT_ALG_RS256, rsa.private_pem, good_claims, "r1")), "meter-7");
  EXPECT_EQ(username_of(v, sign(JWT_ALG_ES256, ec.private_pem, good_claims, "e1")), "meter-7");
  EXPECT_EQ(username_of(v, sign(JWT_ALG_HS256, "a shared secret of 32 bytes!!!!", good_claims)), "meter-7");
  // Without a kid every key of the algorithm is tried.
  EXPECT_EQ(username_of(v, sign(JWT_ALG_ES256, ec.private_pem, good_claims)), "meter-7");
}

TEST_F(jwt_test, a_pem_public_key_takes_the_algorithm_of_its_kind) {
  const auto rsa = generate(true);
  const auto ec = generate(false);
  const jwt_verifier by_rsa(config_with(rsa.public_pem));
  EXPECT_EQ(username_of(by_rsa, sign(JWT_ALG_RS256, rsa.private_pem, good_claims)), "meter-7");
  EXPECT_EQ(username_of(by_rsa, sign(JWT_ALG_ES256, ec.private_pem, good_claims)), "refused: no ES256 key");
  // The classic confusion: an HS256 token whose secret is the RSA public key's PEM text.
  EXPECT_EQ(username_of(by_rsa, sign(JWT_ALG_HS256, rsa.public_pem, good_claims)), "refused: no HS256 key");
  const jwt_verifier by_ec(config_with(ec.public_pem));
  EXPECT_EQ(username_of(by_ec, sign(JWT_ALG_ES256, ec.private_pem, good_claims)), "meter-7");
}

TEST_F(jwt_test, wrong_keys_and_algorithms_are_refused) {
  const auto rsa = generate(true);
  const auto other = generate(true);
  const jwt_verifier v(config_with(jwks({rsa_jwk(rsa, "r1"), oct_jwk("secret-one", "h1")})));
  EXPECT_EQ(username_of(v, sign(JWT_ALG_RS256, other.private_pem, good_claims)), "refused: the signature does not verify");
  EXPECT_EQ(username_of(v, sign(JWT_ALG_HS256, "secret-two", good_claims)), "refused: the signature does not verify");
  EXPECT_EQ(username_of(v, sign(JWT_ALG_RS256, rsa.private_pem, good_claims, "r9")), "refused: no RS256 key with kid 'r9'");
  EXPECT_EQ(username_of(v, sign(JWT_ALG_RS384, rsa.private_pem, good_claims)),
            "refused: algorithm 'RS384' is not accepted (RS256, ES256, HS256)");
  // "none", with and without a signature part.
  const std::string none = base64url(R"({"alg":"none"})") + "." + base64url(good_claims);
  EXPECT_EQ(username_of(v, none + "."), "refused: not a signed JSON Web Token (three base64url parts, the last one the signature)");
  EXPECT_EQ(username_of(v, none + ".c2ln"), "refused: algorithm 'none' is not accepted (RS256, ES256, HS256)");
  EXPECT_EQ(username_of(v, hand_made(R"({"alg":"HS256","crit":["exp"]})", good_claims, "secret-one")),
            "refused: it names critical header extensions, which wharf does not know");
}

TEST_F(jwt_test, time_issuer_audience_and_the_username_claim_are_checked) {
  auto cfg = config_with(jwks({oct_jwk("k", "h")}));
  cfg.issuer = "https://id.example";
  cfg.audience = "wharf";
  cfg.username_claim = "device";
  const jwt_verifier v(cfg);
  const auto token = [](std::string claims) { return hand_made(R"({"alg":"HS256","typ":"JWT"})", claims, "k"); };
  const std::string ok = R"("iss":"https://id.example","aud":["x","wharf"],"device":"meter-7")";
  EXPECT_EQ(username_of(v, token("{" + ok + R"(,"exp":1900000000})")), "meter-7");
  EXPECT_EQ(username_of(v, token("{" + ok + R"(,"exp":1900000000})"), now + 30), "meter-7");  // within the skew
  EXPECT_EQ(username_of(v, token("{" + ok + R"(,"exp":1900000000})"), now + 31), "refused: expired");
  EXPECT_EQ(username_of(v, token("{" + ok + R"(,"exp":1900000100,"nbf":1900000031})")), "refused: not valid yet (nbf)");
  EXPECT_EQ(username_of(v, token("{" + ok + R"(,"exp":1900000100.5,"nbf":1900000030})")), "meter-7");
  EXPECT_EQ(username_of(v, token("{" + ok + "}")), "refused: no numeric exp claim");
  EXPECT_EQ(username_of(v, token("{" + ok + R"(,"exp":"soon"})")), "refused: no numeric exp claim");
  EXPECT_EQ(username_of(v, token(R"({"iss":"https://other","aud":"wharf","device":"d","exp":1900000100})")),
            "refused: another issuer (iss)");
  EXPECT_EQ(username_of(v, token(R"({"iss":"https://id.example","aud":"other","device":"d","exp":1900000100})")),
            "refused: not for this audience (aud)");
  EXPECT_EQ(username_of(v, token(R"({"iss":"https://id.example","aud":"wharf","device":"","exp":1900000100})")),
            "refused: no non-empty string claim 'device' to name the client");
  cfg.require_expiry = false;
  cfg.issuer.clear();
  cfg.audience.clear();
  const jwt_verifier lenient(cfg);
  EXPECT_EQ(username_of(lenient, token(R"({"device":"d"})")), "d");
}

TEST_F(jwt_test, a_verified_token_is_remembered_until_it_expires) {
  const jwt_verifier v(config_with(jwks({oct_jwk("k", "h")})));
  const std::string token = hand_made(R"({"alg":"HS256"})", R"({"sub":"d","exp":1900001000})", "k");
  EXPECT_EQ(username_of(v, token), "d");
  EXPECT_EQ(username_of(v, token, now + 299), "d");   // remembered
  EXPECT_EQ(username_of(v, token, now + 301), "d");   // past the cache's 300 s: verified again
  EXPECT_EQ(username_of(v, token, now + 1030), "d");  // within exp + skew
  EXPECT_EQ(username_of(v, token, now + 1031), "refused: expired");
  // A token that failed is not remembered as good, nor a good one as bad.
  const std::string forged = token.substr(0, token.rfind('.')) + ".AAAA";
  EXPECT_EQ(username_of(v, forged), "refused: the signature does not verify");
  EXPECT_EQ(username_of(v, token), "d");
}

TEST_F(jwt_test, an_acl_claim_gives_the_client_rules_of_its_own) {
  auto cfg = config_with(jwks({oct_jwk("k", "h")}));
  cfg.acl_claim = "acl";
  const jwt_verifier v(cfg);
  const auto token = [](std::string acl) {
    return hand_made(R"({"alg":"HS256"})", R"({"sub":"d","exp":1900001000,"acl":)" + acl + "}", "k");
  };
  auto r = v.verify(token(R"([{"permission":"allow","action":"publish","topic":"up/%c/#"},)"
                          R"({"permission":"deny","topic":"down/secret"}])"),
                    now);
  ASSERT_TRUE(std::holds_alternative<jwt_verifier::verified>(r));
  const auto& rules = std::get<jwt_verifier::verified>(r).rules;
  ASSERT_EQ(rules.size(), 2U);
  EXPECT_EQ(rules[0].permission, config::acl_permission::allow);
  EXPECT_EQ(rules[0].action, config::acl_action::publish);
  EXPECT_EQ(rules[0].topic, "up/%c/#");
  EXPECT_EQ(rules[1].permission, config::acl_permission::deny);
  EXPECT_EQ(rules[1].action, config::acl_action::all);
  EXPECT_EQ(username_of(v, token("{}")), "refused: acl claim 'acl': expected an array of rules");
  EXPECT_EQ(username_of(v, token(R"([{"permission":"maybe","topic":"x"}])")),
            "refused: acl claim 'acl': rule 0: permission must be allow or deny");
  EXPECT_EQ(username_of(v, token(R"([{"permission":"deny","topic":"a/#/b"}])")),
            "refused: acl claim 'acl': rule 0: topic must be a topic filter ('+' and '#' as whole levels, '#' last)");
  EXPECT_EQ(username_of(v, token(R"([{"permission":"deny","topic":"x","username":"y"}])")),
            "refused: acl claim 'acl': rule 0: unknown key 'username'");
  EXPECT_EQ(username_of(v, token(R"([{"permission":"deny","topic":"x","action":"read"}])")),
            "refused: acl claim 'acl': rule 0: action must be publish, subscribe or all");
  std::string many = "[";
  for (std::size_t i = 0; i <= max_client_rules; ++i) many += R"({"permission":"deny","topic":"x"},)";
  many.back() = ']';
  EXPECT_EQ(username_of(v, token(many)), "refused: acl claim 'acl': 257 rules, at most 256");
  // Without acl_claim configured, the claim is not read.
  EXPECT_EQ(username_of(jwt_verifier(config_with(jwks({oct_jwk("k", "h")}))), token("{}")), "d");
}

TEST_F(jwt_test, malformed_tokens_are_refused_with_a_reason) {
  const jwt_verifier v(config_with(jwks({oct_jwk("k", "h")})));
  for (const std::string bad : {"", "abc", "a.b", "a.b.c.d", "..", "a..c", "!!!.e30.c2ln", "e30.!!!.c2ln", "WzFd.e30.c2ln"}) {
    auto r = v.verify(bad, now);
    ASSERT_TRUE(std::holds_alternative<std::string>(r)) << bad;
  }
  EXPECT_EQ(username_of(v, "WzFd.e30.c2ln"), "refused: its header or claims are not base64url-encoded JSON objects");
  EXPECT_EQ(username_of(v, std::string(70000, 'a')), "refused: the token is longer than 65,535 bytes");
}

TEST_F(jwt_test, bad_keys_files_are_config_errors_naming_the_key) {
  const auto path_of = [](const config::jwt_config& c) { return "auth.jwt.keys_file '" + c.keys_file + "': "; };
  auto cfg = config_with("{\"keys\": [");
  EXPECT_TRUE(load_error(cfg).starts_with(path_of(cfg) + "not valid JSON (")) << load_error(cfg);
  cfg = config_with(R"({"keys":[]})");
  EXPECT_EQ(load_error(cfg), path_of(cfg) + "holds no RS256, ES256 or HS256 signing key");
  cfg = config_with(R"({"keys":[{"kty":"EC","crv":"P-256","kid":"bad","x":"AAAA","y":"AAAA"}]})");
  EXPECT_EQ(load_error(cfg), path_of(cfg) + "keys[0] (kid 'bad'): not a valid ES256 key (RFC 7518 section 6)");
  // A point off the curve.
  const std::string zeros = base64url(std::string(32, '\x01'));
  cfg = config_with(R"({"keys":[{"kty":"EC","crv":"P-256","x":")" + zeros + R"(","y":")" + zeros + R"("}]})");
  EXPECT_EQ(load_error(cfg), path_of(cfg) + "keys[0]: not a valid ES256 key (RFC 7518 section 6)");
  cfg = config_with("not a key");
  EXPECT_EQ(load_error(cfg), path_of(cfg) + "neither a JWKS (a JSON object with \"keys\") nor a PEM public key");
  // Keys for other uses or algorithms are left out; the rest serve.
  cfg = config_with(jwks({R"({"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"})", R"({"kty":"OKP","crv":"Ed25519","x":"AA"})",
                          oct_jwk("k", "h")}));
  EXPECT_EQ(jwt_verifier(cfg).key_count(), 1U);
  cfg.keys_file = (dir_ / "missing").string();
  EXPECT_EQ(load_error(cfg), "auth.jwt.keys_file '" + cfg.keys_file + "': cannot be read");
  // Ed25519 in a PEM file.
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), &EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PUBKEY(bio.get(), ed.get());
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  cfg = config_with(std::string(data, static_cast<std::size_t>(size)));
  EXPECT_EQ(load_error(cfg), path_of(cfg) + "the PEM key is neither RSA nor EC P-256 (RS256, ES256)");
}

}  // namespace
}  // namespace wharf::auth
