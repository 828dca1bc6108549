#include "session/registry.h"

namespace wharf::session {

registry::shard& registry::shard_for(std::string_view id) const {
  return shards_[std::hash<std::string_view>{}(id) % shard_count];
}

std::shared_ptr<session_entry> registry::get_or_create(std::string_view client_id) {
  auto& s = shard_for(client_id);
  std::lock_guard lock(s.mu);
  if (auto it = s.by_id.find(client_id); it != s.by_id.end()) return it->second;
  auto entry = std::make_shared<session_entry>(std::string(client_id));
  s.by_id.emplace(entry->client_id, entry);
  return entry;
}

std::shared_ptr<session_entry> registry::find(std::string_view client_id) const {
  auto& s = shard_for(client_id);
  std::lock_guard lock(s.mu);
  auto it = s.by_id.find(client_id);
  return it == s.by_id.end() ? nullptr : it->second;
}

void registry::erase(const std::shared_ptr<session_entry>& entry) {
  auto& s = shard_for(entry->client_id);
  std::lock_guard lock(s.mu);
  if (auto it = s.by_id.find(entry->client_id); it != s.by_id.end() && it->second == entry) s.by_id.erase(it);
}

std::size_t registry::size() const {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.by_id.size();
  }
  return n;
}

void registry::for_each(const std::function<void(const std::shared_ptr<session_entry>&)>& visit) const {
  for (auto& s : shards_) {
    std::vector<std::shared_ptr<session_entry>> entries;
    {
      std::lock_guard lock(s.mu);
      entries.reserve(s.by_id.size());
      for (auto& [id, e] : s.by_id) entries.push_back(e);
    }
    for (auto& e : entries) visit(e);
  }
}

}  // namespace wharf::session
