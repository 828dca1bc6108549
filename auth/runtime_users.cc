#include "auth/runtime_users.h"

#include <mutex>
#include <utility>

namespace wharf::auth {

std::optional<runtime_users::account> runtime_users::find(std::string_view username) const {
  std::shared_lock lock(mu_);
  auto found = users_.find(std::string(username));
  if (found == users_.end()) return std::nullopt;
  return found->second;
}

std::size_t runtime_users::size() const {
  std::shared_lock lock(mu_);
  return users_.size();
}

void runtime_users::replace_all(std::unordered_map<std::string, account> users) {
  change_listener tell;
  {
    std::unique_lock lock(mu_);
    users_ = std::move(users);
    tell = listener_;
  }
  if (tell) tell({}, true);
}

void runtime_users::update(std::vector<std::pair<std::string, std::optional<account>>> changed) {
  std::vector<std::string> names;
  names.reserve(changed.size());
  change_listener tell;
  {
    std::unique_lock lock(mu_);
    tell = listener_;
    for (auto& [name, now] : changed) {
      if (now) {
        users_.insert_or_assign(name, std::move(*now));
      } else {
        users_.erase(name);
      }
      names.push_back(std::move(name));
    }
  }
  if (tell && !names.empty()) tell(names, false);
}

void runtime_users::set_listener(change_listener listener) {
  std::unique_lock lock(mu_);
  listener_ = std::move(listener);
}

}  // namespace wharf::auth
