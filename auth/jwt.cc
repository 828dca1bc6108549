#include "auth/jwt.h"
#include "auth/rules_json.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>
#include <jwt.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "auth/access_policy.h"
#include "core/log.h"
#include "tls/crypto.h"

namespace wharf::auth {
namespace {

// Larger tokens are refused before any parsing (an MQTT password holds at most 65,535 bytes).
constexpr std::size_t max_token_bytes = 65535;

std::string_view name_of(jwt_algorithm a) {
  switch (a) {
    case jwt_algorithm::rs256: return "RS256";
    case jwt_algorithm::es256: return "ES256";
    case jwt_algorithm::hs256: return "HS256";
  }
  return "?";
}

std::optional<jwt_algorithm> algorithm_named(std::string_view name) {
  if (name == "RS256") return jwt_algorithm::rs256;
  if (name == "ES256") return jwt_algorithm::es256;
  if (name == "HS256") return jwt_algorithm::hs256;
  return std::nullopt;
}

// A base64url segment decoded and parsed as a JSON object; nullopt when it is not one.
std::optional<boost::json::object> json_object_of(std::string_view segment) {
  const auto bytes = tls::base64url_decode(segment);
  if (!bytes) return std::nullopt;
  boost::system::error_code ec;
  auto value = boost::json::parse(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()), ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

// A NumericDate (RFC 7519 2): seconds since the epoch, integer or not.
std::optional<double> numeric_date(const boost::json::object& claims, std::string_view name) {
  const auto* v = claims.if_contains(name);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  if (v->is_double()) return v->as_double();
  return std::nullopt;
}

std::optional<std::string> decoded(const boost::json::object& jwk, std::string_view member) {
  const auto* text = string_member(jwk, member);
  if (text == nullptr) return std::nullopt;
  auto bytes = tls::base64url_decode(*text);
  if (!bytes || bytes->empty()) return std::nullopt;
  return std::string(bytes->begin(), bytes->end());
}

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct jwt_deleter {
  void operator()(jwt_t* token) const noexcept { ::jwt_free(token); }
};

}  // namespace

bool jwt_verifier::looks_like_token(std::string_view credential) noexcept {
  const auto first_dot = credential.find('.');
  if (first_dot == 0 || first_dot == std::string_view::npos) return false;
  const auto second_dot = credential.find('.', first_dot + 1);
  return second_dot != std::string_view::npos && second_dot > first_dot + 1 &&
         credential.find('.', second_dot + 1) == std::string_view::npos;
}

jwt_verifier::jwt_verifier(const config::jwt_config& cfg) : cfg_(cfg) {
  std::ifstream in(cfg_.keys_file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    throw config::config_errors(
        {config::error_at(cfg_.keys_location, fmt::format("auth.jwt.keys_file '{}': cannot be read", cfg_.keys_file))});
  }
  const std::string contents = text.str();
  const auto first = contents.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && contents[first] == '{')
    load_jwks(contents);
  else
    load_pem(contents);
}

void jwt_verifier::load_pem(const std::string& text) {
  const auto kind = tls::public_key_kind_of(text);
  const auto fail = [&](std::string why) {
    throw config::config_errors({config::error_at(
        cfg_.keys_location, fmt::format("auth.jwt.keys_file '{}': {}", cfg_.keys_file, why))});
  };
  if (!kind) fail("neither a JWKS (a JSON object with \"keys\") nor a PEM public key");
  if (*kind == tls::public_key_kind::other) fail("the PEM key is neither RSA nor EC P-256 (RS256, ES256)");
  keys_.push_back({"", *kind == tls::public_key_kind::rsa ? jwt_algorithm::rs256 : jwt_algorithm::es256, text});
}

void jwt_verifier::load_jwks(std::string_view text) {
  std::vector<config::config_error> errors;
  const auto error = [&](std::string why) {
    errors.push_back(
        config::error_at(cfg_.keys_location, fmt::format("auth.jwt.keys_file '{}': {}", cfg_.keys_file, why)));
  };
  boost::system::error_code ec;
  const auto doc = boost::json::parse(text, ec);
  const auto* set = doc.if_object();
  const auto* list = set != nullptr && set->if_contains("keys") != nullptr ? set->at("keys").if_array() : nullptr;
  if (ec || list == nullptr) {
    error(ec ? fmt::format("not valid JSON ({})", ec.message()) : "a JWKS needs a \"keys\" array");
    throw config::config_errors(std::move(errors));
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto* jwk = (*list)[i].if_object();
    const auto* kty = jwk != nullptr ? string_member(*jwk, "kty") : nullptr;
    if (kty == nullptr) {
      error(fmt::format("keys[{}]: expected an object with \"kty\"", i));
      continue;
    }
    const auto* kid = string_member(*jwk, "kid");
    const std::string id = kid != nullptr ? std::string(*kid) : std::string();
    const std::string named = fmt::format("keys[{}]{}", i, id.empty() ? "" : fmt::format(" (kid '{}')", id));
    const auto* use = string_member(*jwk, "use");
    const auto* alg = string_member(*jwk, "alg");
    std::optional<jwt_algorithm> algorithm = *kty == "RSA" ? std::optional(jwt_algorithm::rs256)
                                             : *kty == "EC" ? std::optional(jwt_algorithm::es256)
                                             : *kty == "oct" ? std::optional(jwt_algorithm::hs256)
                                                             : std::nullopt;
    if ((use != nullptr && *use != "sig") || !algorithm || (alg != nullptr && algorithm_named(*alg) != algorithm)) {
      // An identity provider's set may hold keys for other uses and algorithms: those are
      // left out, not fatal.
      log::mqtt().warn("auth.jwt.keys_file '{}': {} left out: only signing keys for RS256, ES256 and HS256 are used",
                       cfg_.keys_file, named);
      continue;
    }
    std::optional<std::string> material;
    if (*algorithm == jwt_algorithm::rs256) {
      const auto n = decoded(*jwk, "n");
      const auto e = decoded(*jwk, "e");
      if (n && e) material = tls::rsa_public_key_pem(bytes_of(*n), bytes_of(*e));
    } else if (*algorithm == jwt_algorithm::es256) {
      const auto* crv = string_member(*jwk, "crv");
      const auto x = decoded(*jwk, "x");
      const auto y = decoded(*jwk, "y");
      if (crv != nullptr && *crv == "P-256" && x && y) material = tls::p256_public_key_pem(bytes_of(*x), bytes_of(*y));
    } else {
      material = decoded(*jwk, "k");
    }
    if (!material) {
      error(fmt::format("{}: not a valid {} key (RFC 7518 section 6)", named, name_of(*algorithm)));
      continue;
    }
    keys_.push_back({id, *algorithm, std::move(*material)});
  }
  if (errors.empty() && keys_.empty()) error("holds no RS256, ES256 or HS256 signing key");
  if (!errors.empty()) throw config::config_errors(std::move(errors));
}

std::variant<jwt_verifier::verified, std::string> jwt_verifier::verify(std::string_view token,
                                                                      std::int64_t now_unix_s) const {
  if (token.size() > max_token_bytes) return std::string("the token is longer than 65,535 bytes");
  const double now = static_cast<double>(now_unix_s);
  const auto digest = tls::sha256(token);
  std::string cache_key(digest.begin(), digest.end());
  {
    std::lock_guard lock(cache_mu_);
    if (const auto it = cache_.find(cache_key); it != cache_.end()) {
      if (now <= it->second.valid_until) return it->second.identity;
      cache_.erase(it);  // checked again below: it may have expired, or only its time here
    }
  }
  double valid_until = now + cache_seconds;
  auto result = check(token, now, valid_until);
  if (const auto* ok = std::get_if<verified>(&result)) {
    std::lock_guard lock(cache_mu_);
    if (cache_.size() >= cache_entries) cache_.clear();
    cache_.emplace(std::move(cache_key), remembered{*ok, valid_until});
  }
  return result;
}

std::variant<jwt_verifier::verified, std::string> jwt_verifier::check(std::string_view token, double now,
                                                                     double& valid_until) const {
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos || dot2 + 1 == token.size())
    return std::string("not a signed JSON Web Token (three base64url parts, the last one the signature)");
  const auto header = json_object_of(token.substr(0, dot1));
  const auto claims = json_object_of(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!header || !claims) return std::string("its header or claims are not base64url-encoded JSON objects");

  const auto* alg = string_member(*header, "alg");
  const auto algorithm = alg != nullptr ? algorithm_named(*alg) : std::nullopt;
  if (!algorithm) {
    return fmt::format("algorithm '{}' is not accepted (RS256, ES256, HS256)",
                       alg != nullptr ? std::string_view(*alg) : std::string_view("(none given)"));
  }
  if (header->contains("crit")) return std::string("it names critical header extensions, which wharf does not know");
  const auto* kid = string_member(*header, "kid");

  // The algorithm picks the keys, never the other way round: an RS256 key's PEM text must
  // not be tried as an HS256 secret.
  const std::string token_text(token);  // libjwt reads a NUL-terminated string
  bool candidate = false;
  bool signed_by_a_key = false;
  for (const auto& k : keys_) {
    if (k.algorithm != *algorithm || (kid != nullptr && !k.id.empty() && k.id != *kid)) continue;
    candidate = true;
    jwt_t* raw = nullptr;
    const int rc = jwt_decode(&raw, token_text.c_str(), reinterpret_cast<const unsigned char*>(k.material.data()),
                              static_cast<int>(k.material.size()));
    std::unique_ptr<jwt_t, jwt_deleter> decoded_token(raw);
    if (rc == 0 && decoded_token && jwt_get_alg(decoded_token.get()) != JWT_ALG_NONE) {
      signed_by_a_key = true;
      break;
    }
  }
  if (!candidate) {
    return kid != nullptr ? fmt::format("no {} key with kid '{}'", name_of(*algorithm), std::string_view(*kid))
                          : fmt::format("no {} key", name_of(*algorithm));
  }
  if (!signed_by_a_key) return std::string("the signature does not verify");

  const double skew = cfg_.clock_skew_s;
  const auto exp = numeric_date(*claims, "exp");
  if (!exp && (claims->contains("exp") || cfg_.require_expiry)) return std::string("no numeric exp claim");
  if (exp && now > *exp + skew) return std::string("expired");
  if (exp) valid_until = std::min(valid_until, *exp + skew);
  const auto nbf = numeric_date(*claims, "nbf");
  if (claims->contains("nbf") && !nbf) return std::string("a non-numeric nbf claim");
  if (nbf && now + skew < *nbf) return std::string("not valid yet (nbf)");
  if (!cfg_.issuer.empty()) {
    const auto* iss = string_member(*claims, "iss");
    if (iss == nullptr || *iss != cfg_.issuer) return std::string("another issuer (iss)");
  }
  if (!cfg_.audience.empty()) {
    const auto* aud = claims->if_contains("aud");
    bool ours = false;
    if (aud != nullptr && aud->is_string()) ours = aud->get_string() == cfg_.audience;
    if (aud != nullptr && aud->is_array()) {
      const auto& list = aud->get_array();
      ours = std::any_of(list.begin(), list.end(),
                         [&](const boost::json::value& v) { return v.is_string() && v.get_string() == cfg_.audience; });
    }
    if (!ours) return std::string("not for this audience (aud)");
  }
  const auto* username = string_member(*claims, cfg_.username_claim);
  if (username == nullptr || username->empty())
    return fmt::format("no non-empty string claim '{}' to name the client", cfg_.username_claim);
  verified out{std::string(*username), {}};
  if (const auto* acl = cfg_.acl_claim.empty() ? nullptr : claims->if_contains(cfg_.acl_claim)) {
    auto rules = rules_from_json(*acl, "token");
    if (const auto* why = std::get_if<std::string>(&rules)) return fmt::format("acl claim '{}': {}", cfg_.acl_claim, *why);
    out.rules = std::move(std::get<std::vector<config::acl_rule>>(rules));
  }
  return out;
}

}  // namespace wharf::auth
