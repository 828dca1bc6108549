// connection: whether a CONNECT may go on at all (connection limits, rate, flapping), who
// the client is (a client certificate, CONNECT's username and password, or nobody) and what
// the ACL lets it publish. Subscriptions are checked in connection::subscribe.
#include <boost/asio/post.hpp>

#include <utility>

#include <fmt/format.h>

#include "core/log.h"
#include "core/queue/tenant.h"
#include "gateway/mqtt/broker.h"
#include "gateway/mqtt/connection.h"
#include "gateway/mqtt/protocol/codec.h"

namespace wharf::gateway {

using mqtt::reason_code;

namespace {

// The username a verified client certificate gives on `listener`, when it is set to take one.
std::optional<std::string> certificate_username(const config::listener_config& listener, const net::peer_info& peer) {
  switch (listener.username_from_cert) {
    case config::cert_identity::none: break;
    case config::cert_identity::common_name: return peer.cert_common_name;
    case config::cert_identity::subject_alt_name:
      if (!peer.cert_subject_alt_names.empty()) return peer.cert_subject_alt_names.front();
      break;
  }
  return std::nullopt;
}

}  // namespace

bool connection::admitted_by_limits() {
  const auto listener = stream_->peer().listener_index;
  auto& counters = home_.counters();
  switch (home_.admission_control().admit(listener, client_id_, unix_now_ms())) {
    case admission::verdict::admitted:
      admitted_listener_ = listener;
      return true;
    case admission::verdict::too_many_connections:
      refuse_connect(reason_code::quota_exceeded, "max_connections reached", counters.connections_refused);
      return false;
    case admission::verdict::rate_exceeded:
      refuse_connect(reason_code::connection_rate_exceeded, "the listener's max_connection_rate reached",
                     counters.connections_refused);
      return false;
    case admission::verdict::banned:
      refuse_connect(reason_code::banned, "the client id reconnects too often (mqtt.flapping)", counters.clients_banned);
      return false;
  }
  return false;
}

void connection::authenticate(std::optional<std::string> username, std::optional<std::string> password) {
  const auto& peer = stream_->peer();
  const auto listener = broker_.listener_settings(peer.listener_index);
  if (listener != nullptr) {
    if (auto name = certificate_username(*listener, peer)) {
      username_ = std::move(*name);
      admit();
      return;
    }
  }
  try_sources(0, std::move(username), std::move(password));
}

void connection::try_sources(std::size_t next, std::optional<std::string> username,
                             std::optional<std::string> password) {
  const auto& policy = home_.access();
  const auto order = policy->order();
  for (; next < order.size(); ++next) {
    switch (order[next]) {
      case config::auth_source::file: {
        const auto* stored = username ? policy->password_of(*username) : nullptr;
        if (stored == nullptr) break;  // not a user of the file
        check_password(*username, *username, *stored, std::move(password), {}, false);
        return;
      }
      case config::auth_source::runtime: {
        const auto* users = broker_.runtime_users();
        auto account = username && users != nullptr ? users->find(*username) : std::nullopt;
        if (!account || !account->password) break;  // not a runtime user with a password
        // The stored hash is part of the cache's key: a new password is checked again.
        auto key = fmt::format("runtime\x1f{}\x1f{}", *username, account->password_hash);
        check_password(std::move(key), *username, *account->password, std::move(password), std::move(account->rules),
                       true);
        return;
      }
      case config::auth_source::jwt: {
        const auto* tokens = policy->tokens();
        if (tokens == nullptr) break;
        auto& token = tokens->token_in_username() ? username : password;
        if (!token || !auth::jwt_verifier::looks_like_token(*token)) break;
        // The client is who the token names; a username sent beside a token in the password
        // is not used (MQTT 3.1.1 sends no password without one).
        checking_credentials_ = true;
        broker_.check_token(policy, std::move(*token),
                            [on_checked = credentials_answer()](std::variant<auth::jwt_verifier::verified, std::string> r) mutable {
                              if (auto* why = std::get_if<std::string>(&r)) {
                                on_checked(refused_because{reason_code::bad_user_name_or_password, "token refused: " + *why});
                              } else {
                                auto& who = std::get<auth::jwt_verifier::verified>(r);
                                on_checked(admitted_as{std::move(who.username), std::move(who.rules)});
                              }
                            });
        return;
      }
      case config::auth_source::http:
        ask_hook(next, std::move(username), std::move(password));
        return;
    }
  }
  // No source decided. Credentials nobody accepts are refused, never taken for anonymity.
  if (username) {
    refuse_connect(reason_code::bad_user_name_or_password, "unknown user");
    return;
  }
  if (password) {
    refuse_connect(reason_code::bad_user_name_or_password, "a password no source accepts");
    return;
  }
  const auto listener = broker_.listener_settings(stream_->peer().listener_index);
  if (listener != nullptr && listener->anonymous) {
    admit();
    return;
  }
  refuse_connect(reason_code::not_authorized, "anonymous clients are not allowed on this listener");
}

void connection::check_password(std::string account, const std::string& username, const auth::stored_password& stored,
                                std::optional<std::string> password, std::vector<config::acl_rule> rules,
                                bool runtime_user) {
  if (!password) {
    refuse_connect(reason_code::bad_user_name_or_password, "no password");
    return;
  }
  if (home_.access()->was_verified(account, *password)) {
    credentials_checked_now(admitted_as{username, std::move(rules), runtime_user});
    return;
  }
  // PBKDF2 takes milliseconds: off this thread, which serves every client of the shard.
  checking_credentials_ = true;
  broker_.check_password(home_.access(), std::move(account), stored, std::move(*password),
                         [on_checked = credentials_answer(), who = admitted_as{username, std::move(rules), runtime_user}](
                             bool matched) mutable {
                           if (matched)
                             on_checked(std::move(who));
                           else
                             on_checked(refused_because{reason_code::bad_user_name_or_password, "wrong password"});
                         });
}

void connection::ask_hook(std::size_t source, std::optional<std::string> username, std::optional<std::string> password) {
  auto request = hook_request_for(auth::hook_request::kind::connect, {}, username, password);
  checking_credentials_ = true;
  broker_.ask_hook(std::move(request), [on_checked = credentials_answer(), source, username = std::move(username),
                                        password = std::move(password)](auth::hook_answer answer) mutable {
    using outcome = auth::hook_answer::outcome;
    switch (answer.result) {
      case outcome::allow:
        on_checked(admitted_as{std::move(username), std::move(answer.rules)});
        return;
      case outcome::deny:
        on_checked(refused_because{username || password ? reason_code::bad_user_name_or_password : reason_code::not_authorized,
                                   std::move(answer.why)});
        return;
      case outcome::ignore:
        on_checked(passed_on{source + 1, std::move(username), std::move(password)});
        return;
      case outcome::failed:
        on_checked(refused_because{reason_code::server_unavailable, "HTTP hook failed: " + answer.why});
        return;
      case outcome::busy:
        on_checked(refused_because{reason_code::server_busy, std::move(answer.why)});
        return;
    }
  });
}

auth::hook_request connection::hook_request_for(auth::hook_request::kind action, std::string topic,
                                                std::optional<std::string> username,
                                                std::optional<std::string> password) const {
  const auto& peer = stream_->peer();
  const bool text = !password || mqtt::is_valid_utf8(*password);
  return auth::hook_request{.action = action,
                            .topic = std::move(topic),
                            .client_id = client_id_,
                            .username = std::move(username),
                            .password = std::move(password),
                            .password_is_text = text,
                            .peer_address = peer.remote_address,
                            .peer_port = peer.remote_port,
                            .protocol_version = static_cast<std::uint8_t>(machine_.version()),
                            .cert_common_name = peer.cert_common_name,
                            .cert_subject_alt_names = peer.cert_subject_alt_names,
                            .listener = peer.listener_index};
}

bool connection::holds(const mqtt::packet& packet) {
  // With auth.http.authorize_publish / authorize_subscribe: a packet that publishes to a
  // topic, or subscribes to a filter, the hook has not answered about yet waits for its
  // answers (hook_answered releases it).
  const auto& hook = home_.access()->hook();
  if (!hook || (!hook->authorize_publish && !hook->authorize_subscribe)) return false;
  std::vector<std::pair<char, std::string>> unknown;
  if (const auto* publish = std::get_if<mqtt::publish_packet>(&packet); publish && hook->authorize_publish) {
    // The topic as the machine will resolve it; an alias it does not know is its to refuse.
    const std::string_view topic = machine_.resolved_topic(*publish);
    if (!topic.empty() && !hook_verdict_on('p', topic)) unknown.emplace_back('p', topic);
  } else if (const auto* subscribe = std::get_if<mqtt::subscribe_packet>(&packet); subscribe && hook->authorize_subscribe) {
    for (const auto& req : subscribe->subscriptions) {
      if (!hook_verdict_on('s', req.filter)) unknown.emplace_back('s', req.filter);
    }
  }
  if (unknown.empty()) return false;
  hook_answers_awaited_ = static_cast<std::uint32_t>(unknown.size());
  for (auto& [action, topic] : unknown) {
    const auto kind = action == 'p' ? auth::hook_request::kind::publish : auth::hook_request::kind::subscribe;
    std::optional<std::string> username = username_;
    auto key = action + topic;
    broker_.ask_hook(hook_request_for(kind, std::move(topic), std::move(username), std::nullopt),
                     [&home = home_, id = id_, key = std::move(key), fail_open = hook->fail_open,
                      allow_ms = hook->cache_ttl_ms, deny_ms = hook->deny_cache_ttl_ms](auth::hook_answer answer) mutable {
                       using outcome = auth::hook_answer::outcome;
                       // Both must allow: the hook's allow (or ignore) leaves it to the ACL.
                       const bool allowed = answer.result == outcome::allow || answer.result == outcome::ignore ||
                                            (fail_open && answer.result != outcome::deny);
                       if (!allowed && answer.result != outcome::deny)
                         log::mqtt().info("HTTP hook gave no answer about '{}' ({}): refused", key.substr(1), answer.why);
                       boost::asio::post(home.io(), [&home, id, key = std::move(key), allowed,
                                                     remember = allowed ? allow_ms : deny_ms]() mutable {
                         if (auto* c = home.find_connection(id)) c->hook_answered(std::move(key), allowed, remember);
                       });
                     });
  }
  return true;
}

void connection::hook_answered(std::string key, bool allowed, std::uint32_t remember_ms) {
  if (hook_answers_awaited_ == 0 || machine_.current_phase() == mqtt::connection_machine::phase::closed) return;
  constexpr std::size_t max_verdicts = 1024;
  if (!hook_verdicts_) hook_verdicts_ = std::make_unique<std::unordered_map<std::string, hook_verdict>>();
  if (hook_verdicts_->size() >= max_verdicts) hook_verdicts_->clear();
  // Remembered at least long enough for the held packet to run again on this turn.
  (*hook_verdicts_)[std::move(key)] = {allowed, unix_now_ms() + std::max<std::int64_t>(remember_ms, 1000)};
  if (--hook_answers_awaited_ > 0) return;
  machine_.release();
}

std::optional<bool> connection::hook_verdict_on(char action, std::string_view topic) const {
  if (!hook_verdicts_) return std::nullopt;
  std::string key(1, action);
  key += topic;
  const auto found = hook_verdicts_->find(key);
  if (found == hook_verdicts_->end() || found->second.until_ms < unix_now_ms()) return std::nullopt;
  return found->second.allowed;
}

std::function<void(connection::credentials_verdict)> connection::credentials_answer() {
  return [&home = home_, id = id_](credentials_verdict verdict) {
    boost::asio::post(home.io(), [&home, id, verdict = std::move(verdict)]() mutable {
      if (auto* c = home.find_connection(id)) c->credentials_checked(std::move(verdict));
    });
  };
}

void connection::credentials_checked(credentials_verdict verdict) {
  if (!checking_credentials_ || machine_.current_phase() != mqtt::connection_machine::phase::connecting) return;
  checking_credentials_ = false;
  if (auto* refused = std::get_if<refused_because>(&verdict)) {
    // The service failing or busy is not the client's fault: counted apart.
    const bool unavailable =
        refused->code == reason_code::server_unavailable || refused->code == reason_code::server_busy;
    refuse_connect(refused->code, refused->why,
                   unavailable ? home_.counters().auth_unavailable : home_.counters().auth_failures);
    return;
  }
  if (auto* passed = std::get_if<passed_on>(&verdict)) {
    try_sources(passed->next_source, std::move(passed->username), std::move(passed->password));
    return;
  }
  credentials_checked_now(std::move(std::get<admitted_as>(verdict)));
}

void connection::credentials_checked_now(admitted_as who) {
  username_ = std::move(who.username);
  own_rules_ = std::move(who.rules);
  runtime_user_ = who.runtime_user;
  admit();
}

void connection::refresh_runtime_user(const std::unordered_set<std::string>& changed, bool everyone) {
  if (!runtime_user_ || !username_ || machine_.current_phase() == mqtt::connection_machine::phase::closed) return;
  if (!everyone && !changed.contains(*username_)) return;
  const auto* users = broker_.runtime_users();
  auto account = users != nullptr ? users->find(*username_) : std::nullopt;
  if (!account) {
    machine_.end(reason_code::not_authorized, "its runtime user was deleted");
    return;
  }
  own_rules_ = std::move(account->rules);
  if (entry_) {
    // What its routes withhold is compiled again from these (shard::recheck_routes).
    std::lock_guard lock(entry_->mu);
    entry_->rules = own_rules_.empty() ? nullptr : std::make_unique<const std::vector<config::acl_rule>>(own_rules_);
  }
}

bool connection::enter_tenant() {
  const auto tenant = username_ ? config::tenant_of_mqtt_user(broker_.tenants(), *username_) : std::string_view{};
  if (tenant.empty() && client_id_.starts_with(core::queue::mqtt_mount_root)) {
    refuse_connect(reason_code::client_identifier_not_valid,
                   fmt::format("client ids beginning with '{}' are the tenants' own", core::queue::mqtt_mount_root));
    return false;
  }
  client_id_.insert(0, core::queue::mqtt_mount(tenant));
  in_tenant_ = !tenant.empty();
  return true;
}

void connection::admit() {
  if (!enter_tenant()) return;
  if (will_ && !allowed_to_publish(will_->topic)) {
    refuse_connect(reason_code::not_authorized, "the ACL does not allow publishing the will's topic");
    return;
  }
  if (will_ && in_tenant_) {
    will_->topic.insert(0, mount());
    will_->publisher_client_id = client_id_;
  }
  begin_session();
}

void connection::refuse_connect(reason_code rc, std::string_view why) {
  refuse_connect(rc, why, home_.counters().auth_failures);
}

void connection::refuse_connect(reason_code rc, std::string_view why, std::atomic<std::uint64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
  log::mqtt().info("connection from {} refused for client '{}'{}: {} ({})", stream_->peer().remote_address, client_id_,
               username_ ? fmt::format(" as '{}'", *username_) : std::string(), mqtt::to_string(rc), why);
  machine_.refuse_connect(rc);
}

auth::client_identity connection::identity() const noexcept {
  auth::client_identity who{.client_id = device_client_id(), .username = std::nullopt, .own_rules = own_rules_};
  if (username_) who.username = *username_;
  return who;
}

std::string_view connection::device_client_id() const noexcept {
  return std::string_view(client_id_).substr(mount().size());
}

bool connection::allowed_to_publish(std::string_view topic) const {
  // A default-tenant client never names the tenants' tree (its own clients' topics are
  // mounted, so theirs never do).
  if (!in_tenant_ && core::queue::names_tenant_tree(topic)) return false;
  if (hook_verdict_on('p', topic) == false) return false;
  return home_.access()->may_publish(identity(), topic);
}

std::string connection::trace_origin() const { return fmt::format("mqtt client {}", client_id_); }

}  // namespace wharf::gateway
