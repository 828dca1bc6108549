// Who may use the MQTT listeners and for what: users and their stored passwords, and the
// ordered ACL rules of the config's `auth:` section. Immutable once built; a config reload
// builds a new one and the broker's shards switch to it at their next turn. Shared by every
// shard (the only mutable part, the cache of checked passwords, has its own lock).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "auth/jwt.h"
#include "auth/password.h"
#include "core/topic_trie.h"
#include "config/config.h"

namespace wharf::auth {

// Who a connected client is, for the ACL.
struct client_identity {
  std::string_view client_id;
  std::optional<std::string_view> username;  // none for an anonymous client
  // Rules of the client's own, from its token's ACL claim (auth.jwt.acl_claim): tried before
  // the config's.
  std::span<const config::acl_rule> own_rules = {};
};

// True when `topic` may be an ACL rule's topic: a topic filter once %c and %u stand for one
// level's worth of text, not a shared subscription's.
[[nodiscard]] bool is_valid_rule_topic(std::string_view topic);

// True when every topic `filter` matches is matched by `pattern` ('+' and '#' in either).
[[nodiscard]] bool filter_covers(std::string_view pattern, std::string_view filter) noexcept;
// True when some topic is matched by both filters.
[[nodiscard]] bool filters_intersect(std::string_view a, std::string_view b) noexcept;
// `pattern` with "%c" and "%u" replaced by the client's id and username; nullopt when a
// placeholder has no value or its value holds '/', '+' or '#' (it would widen the rule).
[[nodiscard]] std::optional<std::string> expand_pattern(std::string_view pattern, const client_identity& who);

// The topics a granted subscription must not be sent: the few ACL rules that overlap only
// part of its filter, compiled when it is granted. A delivery checks its topic against
// these, never against the whole ACL. In the common case (deny rules inside a wildcard
// subscription, allowed otherwise) the rules are one topic trie, and a check is one walk of
// the topic's levels however many rules there are. Shared read-only by the shards.
class withheld_topics {
 public:
  [[nodiscard]] bool withholds(std::string_view topic) const;

 private:
  friend class access_policy;
  struct rule {
    bool allow = false;
    std::string pattern;
  };
  // Rules of mixed permissions, in ACL order: the first that matches decides.
  std::vector<rule> ordered_;
  // Rules of one permission (the opposite of `otherwise_allow_`), when there are no mixed
  // ones: a topic matching any of them gets that permission. Keyed by rule index.
  core::topic_trie<std::uint32_t, char> uniform_;
  bool otherwise_allow_ = true;  // when no rule matches
};

// The ACL's answer to a subscription.
struct subscription_verdict {
  bool granted = false;
  // What a granted subscription must not be sent; null when nothing. For one that is not
  // granted, everything (what a stored subscription gets once a reload denies it).
  std::shared_ptr<const withheld_topics> withheld;
};

class access_policy {
 public:
  // Checks what the entries mean: password hashes and topic patterns.
  // Throws config::config_errors naming each bad entry's source_location.
  explicit access_policy(const config::auth_config& cfg);

  // The stored password of `username`; nullptr when there is no such user or it has none
  // (certificate login only).
  [[nodiscard]] const stored_password* password_of(std::string_view username) const;
  // The verifier of JSON Web Tokens (auth.jwt); nullptr when tokens are not accepted.
  [[nodiscard]] const jwt_verifier* tokens() const noexcept { return tokens_.get(); }
  // The HTTP hook's settings (auth.http); the broker keeps the hook itself.
  [[nodiscard]] const std::optional<config::http_auth_config>& hook() const noexcept { return cfg_.http; }
  // The credentials' sources in the order they are tried (auth.order).
  [[nodiscard]] std::span<const config::auth_source> order() const noexcept { return cfg_.order; }

  // Checked passwords, so a reconnecting client does not pay for PBKDF2 again: remember()
  // records a pair that matched, was_verified() finds it. Keyed by a salted SHA-256, so the
  // cache holds no password. Bounded; when full it starts again empty.
  [[nodiscard]] bool was_verified(std::string_view username, std::string_view password) const;
  void remember(std::string_view username, std::string_view password) const;

  // The ACL's answer: for each topic, the first rule that applies to the client, action and
  // topic decides, otherwise acl_no_match. A subscription is granted when the first rule
  // that covers its whole filter allows (or none covers it and acl_no_match is allow), and
  // refused otherwise: one inside a deny rule's filter, or wider than an allow rule. The
  // rules before that one which overlap part of its filter decide per topic at delivery
  // (`withheld`): a wildcard subscription next to a deny rule receives all but the denied
  // topics, as in Mosquitto. A shared subscription is judged by its inner filter.
  [[nodiscard]] bool may_publish(const client_identity& who, std::string_view topic) const;
  [[nodiscard]] subscription_verdict check_subscription(const client_identity& who, std::string_view filter) const;
  // True when `other` has the same ACL rules and acl_no_match (where they are written aside).
  [[nodiscard]] bool same_acl(const access_policy& other) const noexcept;
  [[nodiscard]] std::uint8_t subscribe_denied_reason() const noexcept { return cfg_.subscribe_denied_reason; }

 private:
  [[nodiscard]] std::string cache_key(std::string_view username, std::string_view password) const;
  // Calls visit(rule, its expanded topic) for each rule about `action` that applies to
  // `who`, the client's own rules first, then the config's, until visit returns true.
  template <class Visit>
  void for_each_rule(const client_identity& who, config::acl_action action, Visit&& visit) const {
    for (const auto* rules : {&who.own_rules, &config_rules_}) {
      for (const auto& rule : *rules) {
        if (rule.action != config::acl_action::all && rule.action != action) continue;
        if (!rule.username.empty() && (!who.username || *who.username != rule.username)) continue;
        auto pattern = expand_pattern(rule.topic, who);
        if (pattern && visit(rule, std::move(*pattern))) return;
      }
    }
  }

  config::auth_config cfg_;
  std::span<const config::acl_rule> config_rules_;  // cfg_.acl
  std::unordered_map<std::string, stored_password> passwords_;  // by username
  std::unique_ptr<const jwt_verifier> tokens_;
  std::string cache_salt_;
  mutable std::mutex verified_mu_;
  mutable std::unordered_set<std::string> verified_;
};

}  // namespace wharf::auth
