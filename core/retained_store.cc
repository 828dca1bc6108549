#include "core/retained_store.h"

#include <mutex>
#include <utility>
#include <vector>

#include "core/string_map.h"

namespace wharf::core {
namespace {

bool is_expired(const message& m, std::int64_t now_unix_ms) noexcept {
  return m.expiry_unix_ms != 0 && m.expiry_unix_ms <= now_unix_ms;
}

// The broker's own topics ($SYS): clients cannot publish to a topic starting with '$'.
bool is_broker_topic(std::string_view topic) noexcept { return topic.starts_with('$'); }

std::string storage_key(std::string_view topic) {
  std::string key;
  key.reserve(retained_store::key_prefix.size() + topic.size());
  key.append(retained_store::key_prefix);
  key.append(topic);
  return key;
}

// Next level of `s` from `pos`; sets `last` on the final level.
std::string_view next_level(std::string_view s, std::size_t& pos, bool& last) noexcept {
  const std::size_t end = s.find('/', pos);
  const std::size_t stop = end == std::string_view::npos ? s.size() : end;
  const std::string_view level = s.substr(pos, stop - pos);
  last = end == std::string_view::npos;
  pos = stop + 1;
  return level;
}

}  // namespace

// The retained topics arranged by level, for wildcard filters. Nodes without a message
// and without children are pruned.
struct retained_store::level_node {
  string_map<std::unique_ptr<level_node>> children;
  const message* msg = nullptr;
};

retained_store::retained_store(std::size_t max_messages)
    : max_messages_(max_messages), root_(std::make_unique<level_node>()) {}

retained_store::~retained_store() {
  // Level trees can be deep (a topic may have thousands of levels): tear down iteratively.
  std::vector<std::unique_ptr<level_node>> pending;
  pending.push_back(std::move(root_));
  while (!pending.empty()) {
    std::unique_ptr<level_node> n = std::move(pending.back());
    pending.pop_back();
    for (auto& [level, child] : n->children) pending.push_back(std::move(child));
  }
}

std::shared_lock<std::shared_mutex> retained_store::lock_shared() const {
  { std::lock_guard pass(gate_); }  // waits while a writer is waiting or writing
  return std::shared_lock(mu_);
}

retained_store::exclusive_lock retained_store::lock_exclusive() const {
  std::unique_lock gate(gate_);  // held until the write is done: no new readers meanwhile
  return exclusive_lock{std::move(gate), std::unique_lock(mu_)};
}

void retained_store::load(storage& store) {
  const auto lock = lock_exclusive();
  store.scan_prefix(key_prefix, [&](std::string_view key, std::string_view value) {
    auto m = std::make_unique<message>();
    if (!decode_message(value, *m) || m->topic != key.substr(key_prefix.size())) {
      corrupt_records_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    erase_locked(m->topic);
    insert_locked(std::move(m));
    return true;
  });
}

bool retained_store::set(const message& m, write_batch& batch) {
  const auto lock = lock_exclusive();
  const bool exists = by_topic_.contains(m.topic);
  if (m.payload.empty()) {
    // [MQTT-3.3.1-6] a zero-length retained payload removes the retained message.
    if (exists) {
      batch.erase(storage_key(m.topic));
      erase_locked(m.topic);
    }
    return true;
  }
  if (!exists && !is_broker_topic(m.topic) && by_topic_.size() - broker_topics_ >= max_messages_) {
    rejected_full_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  auto copy = std::make_unique<message>(m);
  std::string value;
  encode_message(*copy, value);
  batch.put(storage_key(m.topic), std::move(value));
  if (exists) erase_locked(m.topic);
  insert_locked(std::move(copy));
  return true;
}

std::size_t retained_store::erase_expired(std::int64_t now_unix_ms, write_batch& batch) {
  const auto lock = lock_exclusive();
  std::vector<std::string> expired;
  for (const auto& [topic, m] : by_topic_) {
    if (is_expired(*m, now_unix_ms)) expired.emplace_back(topic);
  }
  for (const auto& topic : expired) {
    batch.erase(storage_key(topic));
    erase_locked(topic);
  }
  return expired.size();
}

std::size_t retained_store::size() const {
  const auto lock = lock_shared();
  return by_topic_.size() - broker_topics_;
}

void retained_store::insert_locked(std::unique_ptr<message> m) {
  level_node* n = root_.get();
  std::size_t pos = 0;
  bool last = false;
  while (!last) {
    const std::string_view level = next_level(m->topic, pos, last);
    auto it = n->children.find(level);
    if (it == n->children.end()) {
      it = n->children.emplace(std::string(level), std::make_unique<level_node>()).first;
    }
    n = it->second.get();
  }
  n->msg = m.get();
  if (is_broker_topic(m->topic)) ++broker_topics_;
  const std::string_view key = m->topic;
  by_topic_.emplace(key, std::move(m));
}

void retained_store::erase_locked(std::string_view topic) {
  const auto found = by_topic_.find(topic);
  if (found == by_topic_.end()) return;
  std::vector<std::pair<level_node*, std::string_view>> path;  // (parent, level of child)
  level_node* n = root_.get();
  std::size_t pos = 0;
  bool last = false;
  while (!last && n != nullptr) {
    const std::string_view level = next_level(topic, pos, last);
    path.emplace_back(n, level);
    const auto it = n->children.find(level);
    n = it == n->children.end() ? nullptr : it->second.get();
  }
  if (n != nullptr) {
    n->msg = nullptr;
    // Prune from the leaf up while nodes hold neither a message nor children.
    for (auto p = path.rbegin(); p != path.rend(); ++p) {
      auto& children = p->first->children;
      const auto it = children.find(p->second);
      if (it->second->msg != nullptr || !it->second->children.empty()) break;
      children.erase(it);
    }
  }
  if (is_broker_topic(topic)) --broker_topics_;
  // `topic` may view the message being erased: erase the map entry last.
  by_topic_.erase(found);
}

void retained_store::match_impl(std::string_view filter, std::int64_t now_unix_ms, void* ctx,
                                visit_fn visit) const {
  const auto lock = lock_shared();
  const auto emit = [&](const message* m) {
    if (m != nullptr && !is_expired(*m, now_unix_ms)) visit(ctx, *m);
  };
  if (filter.find_first_of("+#") == std::string_view::npos) {
    const auto it = by_topic_.find(filter);
    if (it != by_topic_.end()) emit(it->second.get());
    return;
  }

  // [MQTT-4.7.2-1] a wildcard first level does not match topics starting with '$'.
  const auto skip = [](const level_node* parent, const level_node* root, std::string_view level) {
    return parent == root && !level.empty() && level.front() == '$';
  };
  const level_node* root = root_.get();

  // Every message at or below n.
  std::vector<const level_node*> subtree;
  const auto emit_subtree = [&](const level_node* n) {
    subtree.push_back(n);
    while (!subtree.empty()) {
      const level_node* s = subtree.back();
      subtree.pop_back();
      emit(s->msg);
      for (const auto& [level, child] : s->children) {
        if (!skip(s, root, level)) subtree.push_back(child.get());
      }
    }
  };

  struct frame {
    const level_node* n;  // node reached by the filter levels before pos
    std::size_t pos;      // start of the next filter level
    bool done;            // every filter level is consumed
  };
  std::vector<frame> stack;
  stack.push_back(frame{root, 0, false});
  while (!stack.empty()) {
    const frame f = stack.back();
    stack.pop_back();
    if (f.done) {
      emit(f.n->msg);
      continue;
    }
    std::size_t pos = f.pos;
    bool last = false;
    const std::string_view level = next_level(filter, pos, last);
    if (level == "#") {
      // "#" matches the parent level too: "a/#" matches "a" [MQTT-4.7.1-1].
      emit_subtree(f.n);
    } else if (level == "+") {
      for (const auto& [name, child] : f.n->children) {
        if (!skip(f.n, root, name)) stack.push_back(frame{child.get(), pos, last});
      }
    } else {
      const auto it = f.n->children.find(level);
      if (it != f.n->children.end()) stack.push_back(frame{it->second.get(), pos, last});
    }
  }
}

}  // namespace wharf::core
