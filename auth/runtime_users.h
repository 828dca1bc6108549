// The MQTT users and roles changed at runtime (the admin API, `wharf ctl users|roles`), as
// the MQTT side reads them: a copy of what the queue core keeps (durable and replicated),
// each user resolved to its stored password and its rules (its own, then its roles', in
// order). Written by the queue core's thread as commands apply; read by the I/O threads at
// CONNECT and when a change refreshes connected clients.
#pragma once

#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/password.h"
#include "config/config.h"

namespace wharf::auth {

class runtime_users {
 public:
  struct account {
    std::string password_hash;                // as stored: part of the password cache's key
    std::optional<stored_password> password;  // none: no password login
    std::vector<config::acl_rule> rules;      // the user's own, then its roles'
  };
  // Which users changed: `usernames`, or everyone.
  using change_listener = std::function<void(const std::vector<std::string>& usernames, bool everyone)>;

  [[nodiscard]] std::optional<account> find(std::string_view username) const;
  [[nodiscard]] std::size_t size() const;

  // Writers (one thread at a time): the whole set (after a load), or single users (nullopt:
  // deleted). Each tells the listener once it is in place.
  void replace_all(std::unordered_map<std::string, account> users);
  void update(std::vector<std::pair<std::string, std::optional<account>>> changed);

  // Who is told of changes (the broker, to refresh its connected clients), on the writer's
  // thread; it must not block.
  void set_listener(change_listener listener);

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, account> users_;  // GUARDED_BY(mu_)
  change_listener listener_;                        // GUARDED_BY(mu_)
};

}  // namespace wharf::auth
