// JSON Web Tokens (RFC 7519) as CONNECT credentials: a token signed with one of the
// operator's keys names the client. Keys come from a JWKS or one PEM public key; RS256,
// ES256 and HS256 are accepted, nothing else (never "none"). libjwt checks the signature;
// the algorithm is checked against the key's kind first, so a public key can never serve
// as an HMAC secret. Immutable once built; a config reload builds a new one.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "config/config.h"

namespace wharf::auth {

enum class jwt_algorithm { rs256, es256, hs256 };

class jwt_verifier {
 public:
  // Reads cfg.keys_file. Throws config::config_errors at cfg.keys_location when it holds no
  // usable key (each bad key of a JWKS is named).
  explicit jwt_verifier(const config::jwt_config& cfg);

  // What a good token says: the client's username, and its own ACL rules when acl_claim
  // names a claim the token has.
  struct verified {
    std::string username;
    std::vector<config::acl_rule> rules;
  };
  // The most rules one token may carry.
  static constexpr std::size_t max_claim_rules = 256;
  // `token` checked at `now_unix_s`: its form, algorithm, signature, exp/nbf (with the
  // configured skew), iss, aud, and the username claim. Otherwise why not, for the log
  // (never the token itself). A token that verified is remembered until it expires (at most
  // `cache_seconds`): a device reconnecting with it is not verified again. Thread-safe.
  [[nodiscard]] std::variant<verified, std::string> verify(std::string_view token, std::int64_t now_unix_s) const;

  // True when `credential` has a token's shape (three dot-separated parts, the first two not
  // empty): only then is it this source's to judge; anything else goes to the next source.
  [[nodiscard]] static bool looks_like_token(std::string_view credential) noexcept;
  [[nodiscard]] bool token_in_username() const noexcept { return cfg_.from_username; }
  [[nodiscard]] std::size_t key_count() const noexcept { return keys_.size(); }

  static constexpr std::size_t cache_entries = 65536;
  static constexpr double cache_seconds = 300;

 private:
  struct key {
    std::string id;  // the JWK's kid; "" when none
    jwt_algorithm algorithm;
    std::string material;  // PEM public key, or the HMAC secret's bytes
  };
  void load_jwks(std::string_view text);
  void load_pem(const std::string& text);
  [[nodiscard]] std::variant<verified, std::string> check(std::string_view token, double now,
                                                          double& valid_until) const;

  config::jwt_config cfg_;
  std::vector<key> keys_;

  // Tokens that verified, by their SHA-256: the username and until when it holds. Bounded;
  // when full it starts again empty (as the password cache does).
  struct remembered {
    verified identity;
    double valid_until = 0;
  };
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, remembered> cache_;  // GUARDED_BY(cache_mu_)
};

}  // namespace wharf::auth
