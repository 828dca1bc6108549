#include "auth/access_policy.h"

#include <fmt/format.h>

#include <algorithm>

#include "auth/http_hook.h"
#include "core/topic.h"
#include "tls/crypto.h"

namespace wharf::auth {
namespace {

constexpr std::size_t max_verified_entries = 65536;

// Splits a topic or filter into its levels, one at a time.
class levels {
 public:
  explicit levels(std::string_view text) : rest_(text), done_(false) {}
  [[nodiscard]] bool done() const noexcept { return done_; }
  std::string_view next() noexcept {
    const auto slash = rest_.find('/');
    const std::string_view level = rest_.substr(0, slash);
    if (slash == std::string_view::npos) {
      done_ = true;
      rest_ = {};
    } else {
      rest_.remove_prefix(slash + 1);
    }
    return level;
  }

 private:
  std::string_view rest_;
  bool done_;
};

bool starts_with_wildcard(std::string_view filter) noexcept {
  return !filter.empty() && (filter.front() == '+' || filter.front() == '#');
}

// [MQTT-4.7.2-1]: a filter starting with a wildcard matches no topic starting with '$'.
bool dollar_excluded(std::string_view wild, std::string_view other) noexcept {
  return starts_with_wildcard(wild) && !other.empty() && other.front() == '$';
}

}  // namespace

bool filter_covers(std::string_view pattern, std::string_view filter) noexcept {
  if (dollar_excluded(pattern, filter)) return false;
  levels p(pattern);
  levels f(filter);
  while (!p.done()) {
    const auto pl = p.next();
    if (pl == "#") return true;
    if (f.done()) return false;  // "a/b" does not cover "a"
    const auto fl = f.next();
    if (fl == "#") return false;
    if (pl != "+" && pl != fl) return false;
  }
  return f.done();
}

bool filters_intersect(std::string_view a, std::string_view b) noexcept {
  if (dollar_excluded(a, b) || dollar_excluded(b, a)) return false;
  levels x(a);
  levels y(b);
  while (!x.done() && !y.done()) {
    const auto xl = x.next();
    const auto yl = y.next();
    if (xl == "#" || yl == "#") return true;
    if (xl != "+" && yl != "+" && xl != yl) return false;
  }
  // One ran out: the other matches the same topic only when all it has left is "#".
  levels& longer = x.done() ? y : x;
  return longer.done() || (longer.next() == "#" && longer.done());
}

std::optional<std::string> expand_pattern(std::string_view pattern, const client_identity& who) {
  std::string out;
  out.reserve(pattern.size());
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%' || i + 1 == pattern.size() || (pattern[i + 1] != 'c' && pattern[i + 1] != 'u')) {
      out.push_back(pattern[i]);
      continue;
    }
    const std::optional<std::string_view> value = pattern[++i] == 'c' ? std::optional(who.client_id) : who.username;
    if (!value || value->empty() || value->find_first_of("/+#") != std::string_view::npos) return std::nullopt;
    out.append(*value);
  }
  return out;
}

bool is_valid_rule_topic(std::string_view topic) {
  // Placeholders stand for one whole level's worth of text, so check the pattern with a
  // sample value in their place.
  const auto sample = expand_pattern(topic, {.client_id = "c", .username = "u"});
  return sample && core::is_valid_topic_filter(*sample) && !sample->starts_with("$share/");
}

access_policy::access_policy(const config::auth_config& cfg) : cfg_(cfg), config_rules_(cfg_.acl) {
  std::vector<config::config_error> errors;
  for (const auto& user : cfg_.users) {
    if (user.password_hash.empty()) continue;
    auto parsed = parse_password_hash(user.password_hash);
    if (auto* why = std::get_if<std::string>(&parsed)) {
      errors.push_back(config::error_at(user.source_location, fmt::format("auth.users: password_hash of '{}': {}", user.username, *why)));
      continue;
    }
    passwords_.emplace(user.username, std::move(std::get<stored_password>(parsed)));
  }
  for (const auto& rule : cfg_.acl) {
    if (!is_valid_rule_topic(rule.topic)) {
      errors.push_back(config::error_at(
          rule.source_location,
          fmt::format("auth.acl: topic '{}' is not a topic filter, expected a topic filter ('+' and '#' as whole levels, "
                      "'#' last; %c and %u stand for the client id and username)",
                      rule.topic)));
    }
  }
  if (cfg_.jwt) {
    try {
      tokens_ = std::make_unique<const jwt_verifier>(*cfg_.jwt);
    } catch (const config::config_errors& bad_keys) {
      errors.insert(errors.end(), bad_keys.errors().begin(), bad_keys.errors().end());
    }
  }
  if (cfg_.http) {
    try {
      (void)hook_endpoint(*cfg_.http);
    } catch (const config::config_errors& bad_url) {
      errors.insert(errors.end(), bad_url.errors().begin(), bad_url.errors().end());
    }
  }
  if (!errors.empty()) throw config::config_errors(std::move(errors));
  cache_salt_ = tls::base64_encode(tls::random_bytes(16));
}

const stored_password* access_policy::password_of(std::string_view username) const {
  const auto it = passwords_.find(std::string(username));
  return it == passwords_.end() ? nullptr : &it->second;
}

std::string access_policy::cache_key(std::string_view username, std::string_view password) const {
  // Lengths first, so no two (username, password) pairs share an input.
  const auto digest = tls::sha256(fmt::format("{}{}:{}:{}{}", cache_salt_, username.size(), password.size(), username, password));
  return {digest.begin(), digest.end()};
}

bool access_policy::was_verified(std::string_view username, std::string_view password) const {
  const auto key = cache_key(username, password);
  std::lock_guard lock(verified_mu_);
  return verified_.contains(key);
}

void access_policy::remember(std::string_view username, std::string_view password) const {
  auto key = cache_key(username, password);
  std::lock_guard lock(verified_mu_);
  if (verified_.size() >= max_verified_entries) verified_.clear();
  verified_.insert(std::move(key));
}

bool access_policy::same_acl(const access_policy& other) const noexcept {
  return cfg_.acl_no_match == other.cfg_.acl_no_match &&
         std::equal(cfg_.acl.begin(), cfg_.acl.end(), other.cfg_.acl.begin(), other.cfg_.acl.end(),
                    [](const config::acl_rule& a, const config::acl_rule& b) { return a.same_as(b); });
}

bool withheld_topics::withholds(std::string_view topic) const {
  for (const auto& r : ordered_)
    if (core::topic_matches(r.pattern, topic)) return !r.allow;
  if (ordered_.empty()) {
    // One permission, the opposite of otherwise_allow_, for every rule here.
    bool matched = false;
    uniform_.match(topic, [&](std::string_view, std::uint32_t, char) { matched = true; });
    if (matched) return otherwise_allow_;
  }
  return !otherwise_allow_;
}

subscription_verdict access_policy::check_subscription(const client_identity& who, std::string_view filter) const {
  // A shared subscription receives what its inner filter matches.
  if (auto shared = core::parse_shared_filter(filter)) filter = shared->filter;
  // The rules that overlap part of the filter, in order, up to the first that covers it
  // whole: that one (or acl_no_match) decides every topic none of the partial ones match.
  std::vector<withheld_topics::rule> partial;
  std::optional<bool> covered_allow;
  for_each_rule(who, config::acl_action::subscribe, [&](const config::acl_rule& rule, std::string pattern) {
    if (!filters_intersect(pattern, filter)) return false;
    const bool allow = rule.permission == config::acl_permission::allow;
    if (filter_covers(pattern, filter)) {
      covered_allow = allow;
      return true;
    }
    partial.push_back({allow, std::move(pattern)});
    return false;
  });
  const bool otherwise_allow = covered_allow.value_or(cfg_.acl_no_match == config::acl_permission::allow);
  // Rules at the end with the rest's permission change nothing.
  while (!partial.empty() && partial.back().allow == otherwise_allow) partial.pop_back();

  subscription_verdict verdict;
  // A partial allow does not grant what the covering rule (or acl_no_match) denies: a
  // subscription wider than what the client may read is refused, as in Mosquitto.
  verdict.granted = otherwise_allow;
  if (!verdict.granted) {
    static const auto everything = [] {
      auto all = std::make_shared<withheld_topics>();
      all->otherwise_allow_ = false;
      return std::shared_ptr<const withheld_topics>(std::move(all));
    }();
    verdict.withheld = everything;
    return verdict;
  }
  if (partial.empty()) return verdict;
  auto withheld = std::make_shared<withheld_topics>();
  withheld->otherwise_allow_ = otherwise_allow;
  const bool mixed = std::any_of(partial.begin(), partial.end(), [&](const auto& r) { return r.allow == otherwise_allow; });
  if (mixed) {
    withheld->ordered_ = std::move(partial);
  } else {
    for (std::uint32_t i = 0; i < partial.size(); ++i) withheld->uniform_.insert(partial[i].pattern, i, 0);
  }
  verdict.withheld = std::move(withheld);
  return verdict;
}

bool access_policy::may_publish(const client_identity& who, std::string_view topic) const {
  std::optional<bool> allowed;
  for_each_rule(who, config::acl_action::publish, [&](const config::acl_rule& rule, const std::string& pattern) {
    if (!core::topic_matches(pattern, topic)) return false;
    allowed = rule.permission == config::acl_permission::allow;
    return true;
  });
  return allowed.value_or(cfg_.acl_no_match == config::acl_permission::allow);
}

}  // namespace wharf::auth
