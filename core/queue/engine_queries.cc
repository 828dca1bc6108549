// Read-only queries, answered from memory (bodies from storage), and dump().
#include <algorithm>
#include <iterator>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/queue/engine_impl.h"

namespace wharf::core::queue::detail {
namespace {

// Counts at `now`. Messages in delayed/in_flight whose time has come are visible even if
// no receive has moved them to `ready` yet; only those few are walked. In an ordered queue
// the messages waiting behind their group's head (in no index) count as active: they are
// neither received nor delayed, only not their group's turn yet.
queue_counts count_messages(const queue_state& q, time_ms now) {
  queue_counts c;
  c.active = q.live.size() - q.delayed.size() - q.in_flight.size();
  c.delayed = q.delayed.size();
  c.inactive = q.in_flight.size();
  const auto count_due = [now](const time_index& index) {
    std::uint64_t n = 0;
    for (auto it = index.begin(); it != index.end() && it->first <= now; ++it) ++n;
    return n;
  };
  const std::uint64_t delayed_due = count_due(q.delayed);
  const std::uint64_t in_flight_due = count_due(q.in_flight);
  c.delayed -= delayed_due;
  c.inactive -= in_flight_due;
  c.active += delayed_due + in_flight_due;
  c.rewindable = q.deleted.size();
  if (!q.live.empty()) c.min_msg_time_s = to_seconds(q.live.begin()->second.enqueue_ms);
  return c;
}

queue_info describe(const queue_state& q, time_ms now) {
  queue_info info;
  info.id = format_queue_id(q.id);
  info.name = q.name;
  info.attributes = q.attributes;
  info.create_time_s = to_seconds(q.create_ms);
  info.last_modify_time_s = to_seconds(q.modify_ms);
  info.counts = count_messages(q, now);
  return info;
}

topic_info describe(const topic_state& t) {
  topic_info info;
  info.id = format_topic_id(t.id);
  info.name = t.name;
  info.attributes = t.attributes;
  info.create_time_s = to_seconds(t.create_ms);
  info.last_modify_time_s = to_seconds(t.modify_ms);
  info.msg_count = t.msg_count;
  return info;
}

subscription_info describe(const subscription_state& s) {
  subscription_info info;
  info.id = format_subscription_id(s.id);
  info.topic = s.topic->name;
  info.name = s.name;
  info.attributes = s.attributes;
  info.create_time_s = to_seconds(s.create_ms);
  info.last_modify_time_s = to_seconds(s.modify_ms);
  info.pending_pushes = s.pending_pushes.size();
  return info;
}

// Entries of a name-ordered map whose name contains `search_word`, paged. `tenant`: only
// that tenant's, matched by the name within it.
template <class Map, class Describe>
auto list_page(const Map& map, std::optional<std::string_view> tenant, std::string_view search_word,
               std::size_t offset, std::size_t limit, std::size_t& total, Describe describe_one) {
  std::vector<decltype(describe_one(map.begin()->second))> page;
  total = 0;
  for (const auto& [name, entry] : map) {
    if (tenant && tenant_of(name) != *tenant) continue;
    const std::string_view shown = tenant ? local_name(name) : std::string_view(name);
    if (shown.find(search_word) == std::string::npos) continue;
    if (total++ >= offset && page.size() < limit) page.push_back(describe_one(entry));
  }
  return page;
}

// Bytes as text for dump(): printable ASCII as is, the rest as \xNN.
std::string escaped(std::string_view bytes) {
  std::string out;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", u);
    }
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out.push_back(',');
    out += escaped(item);
  }
  return out;
}

}  // namespace

std::optional<queue_info> engine_impl::queue(std::string_view name, time_ms now) const {
  const queue_state* q = find_queue(name);
  if (!q) return std::nullopt;
  return describe(*q, now);
}

std::vector<queue_info> engine_impl::list_queues(std::optional<std::string_view> tenant,
                                                 std::string_view search_word, std::size_t offset,
                                                 std::size_t limit, std::size_t& total, time_ms now) const {
  return list_page(queues_, tenant, search_word, offset, limit, total,
                   [now](const queue_state& q) { return describe(q, now); });
}

std::optional<topic_info> engine_impl::topic(std::string_view name) const {
  const topic_state* t = find_topic(name);
  if (!t) return std::nullopt;
  return describe(*t);
}

std::vector<topic_info> engine_impl::list_topics(std::optional<std::string_view> tenant,
                                                 std::string_view search_word, std::size_t offset,
                                                 std::size_t limit, std::size_t& total) const {
  return list_page(topics_, tenant, search_word, offset, limit, total,
                   [](const topic_state& t) { return describe(t); });
}

tenant_usage engine_impl::usage(std::string_view tenant) const {
  tenant_usage u;
  u.queues = tenant_count(tenant, false);
  u.topics = tenant_count(tenant, true);
  if (const auto it = tenant_bytes_.find(tenant); it != tenant_bytes_.end()) u.stored_bytes = it->second;
  return u;
}

std::vector<std::string> engine_impl::tenants() const {
  std::set<std::string, std::less<>> named;
  std::vector<std::string> out;
  bool default_tenant = false;
  const auto collect = [&](const auto& map) {
    for (const auto& entry : map) {
      const auto tenant = tenant_of(entry.first);
      if (tenant.empty()) default_tenant = true;
      else named.emplace(tenant);
    }
  };
  collect(queues_);
  collect(topics_);
  if (default_tenant) out.emplace_back();
  out.insert(out.end(), named.begin(), named.end());
  return out;
}

std::optional<subscription_info> engine_impl::subscription(std::string_view topic,
                                                           std::string_view name) const {
  const topic_state* t = find_topic(topic);
  if (!t) return std::nullopt;
  const auto it = t->subscriptions.find(name);
  if (it == t->subscriptions.end()) return std::nullopt;
  return describe(it->second);
}

std::vector<subscription_info> engine_impl::list_subscriptions(std::string_view topic,
                                                               std::string_view search_word,
                                                               std::size_t offset, std::size_t limit,
                                                               std::size_t& total) const {
  const topic_state* t = find_topic(topic);
  if (!t) {
    total = 0;
    return {};
  }
  return list_page(t->subscriptions, std::nullopt, search_word, offset, limit, total,
                   [](const subscription_state& s) { return describe(s); });
}

bool engine_impl::has_visible(std::string_view queue, time_ms now) const {
  const queue_state* q = find_queue(queue);
  if (!q) return false;
  const auto due = [now](const time_index& index) { return !index.empty() && index.begin()->first <= now; };
  return !q->ready.empty() || due(q->delayed) || due(q->in_flight);
}

std::size_t engine_impl::visible_messages(std::string_view queue, time_ms now, std::size_t up_to) const {
  const queue_state* q = find_queue(queue);
  if (!q) return 0;
  std::size_t n = std::min(q->ready.size(), up_to);
  for (const time_index* index : {&q->delayed, &q->in_flight})
    for (auto it = index->begin(); n < up_to && it != index->end() && it->first <= now; ++it) ++n;
  return n;
}

std::optional<time_ms> engine_impl::next_visible_time(std::string_view queue, time_ms now) const {
  const queue_state* q = find_queue(queue);
  if (!q) return std::nullopt;
  std::optional<time_ms> next;
  for (const time_index* index : {&q->delayed, &q->in_flight}) {
    const auto it = index->lower_bound({now + 1, 0});
    if (it != index->end() && (!next || it->first < *next)) next = it->first;
  }
  return next;
}

std::optional<time_ms> engine_impl::next_tick_time() const {
  if (housekeeping_.empty()) return std::nullopt;
  return housekeeping_.begin()->first;
}

std::vector<push_delivery> engine_impl::due_pushes(time_ms now, std::size_t limit,
                                                   const std::vector<std::uint64_t>& in_flight) const {
  std::vector<push_delivery> due;
  for (auto it = push_schedule_.begin(); it != push_schedule_.end() && it->first <= now && due.size() < limit;
       ++it) {
    const std::uint64_t delivery_id = it->second;
    if (std::binary_search(in_flight.begin(), in_flight.end(), delivery_id)) continue;
    const pending_push& p = pushes_.at(delivery_id);
    const subscription_state& s = *subscription_by_id_.at(p.subscription_id);
    push_delivery d;
    d.delivery_id = delivery_id;
    d.topic = s.topic->name;
    d.subscription = s.name;
    d.endpoint = s.attributes.endpoint;
    d.protocol = s.attributes.protocol;
    d.format = s.attributes.format;
    d.strategy = s.attributes.strategy;
    d.msg_id = format_msg_id(p.msg_number);
    d.body = read_body(keys::with_ids(keys::push_body_prefix, s.id, delivery_id));
    d.tags = p.tags;
    d.routing_key = p.routing_key;
    d.publish_time_s = to_seconds(p.publish_ms);
    d.attempts = p.attempts;
    d.due = p.due_ms;
    due.push_back(std::move(d));
  }
  return due;
}

std::optional<time_ms> engine_impl::next_push_time() const {
  if (push_schedule_.empty()) return std::nullopt;
  return push_schedule_.begin()->first;
}

engine_stats engine_impl::stats() const {
  engine_stats s = counters_.stats;
  s.applied_index = applied_index_;
  return s;
}

std::string engine_impl::dump() const {
  std::string out;
  const counters& c = counters_;
  const engine_stats& st = c.stats;
  fmt::format_to(std::back_inserter(out), "applied {} last_now {}\n", applied_index_, last_now_);
  fmt::format_to(std::back_inserter(out),
                 "next queue {} topic {} subscription {} msg {} seq {} delivery {}\n"
                 "stats expired {} dead_lettered {} publish_queue_full {} pushes_given_up {} dedup_hits {} "
                 "group_heads_dead_lettered {} tenant_quota_refusals {}\n",
                 c.next_queue_id, c.next_topic_id, c.next_subscription_id, c.next_msg_number, c.next_seq,
                 c.next_delivery_id, st.messages_expired, st.messages_dead_lettered, st.publish_queue_full,
                 st.pushes_given_up, st.dedup_hits, st.group_heads_dead_lettered, st.tenant_quota_refusals);
  for (const auto& [name, q] : queues_) {
    const queue_attributes& a = q.attributes;
    fmt::format_to(std::back_inserter(out),
                   "queue {} {} created {} modified {} ttl_checked {}\n"
                   "  heap {} polling {} visibility {} size {} retention {} rewind {} dlq '{}' policy {} "
                   "max_receive {} ttl {} dedup_window {} ordered {}\n",
                   q.id, name, q.create_ms, q.modify_ms, q.ttl_checked_seq, a.max_msg_heap_num,
                   a.polling_wait_seconds, a.visibility_timeout, a.max_msg_size, a.msg_retention_seconds,
                   a.rewind_seconds, a.dead_letter_queue, static_cast<int>(a.policy), a.max_receive_count,
                   a.max_time_to_live, a.dedup_window_seconds, a.ordered);
    for (const auto* messages : {&q.live, &q.deleted}) {
      for (const auto& [seq, m] : *messages) {
        fmt::format_to(std::back_inserter(out),
                       "  message {} msg {} state {} enqueue {} visible {} first_dequeue {} dequeues {} "
                       "generation {} source '{}' group '{}' body '",
                       seq, m.msg_number, static_cast<int>(m.state), m.enqueue_ms, m.visible_ms,
                       m.first_dequeue_ms, m.dequeue_count, m.generation, m.dead_letter_source, escaped(m.group));
        out += escaped(read_body(keys::with_ids(keys::message_body_prefix, q.id, seq))) + "'\n";
      }
    }
    for (const auto& [first_ms, key] : q.dedup_by_time) {
      fmt::format_to(std::back_inserter(out), "  dedup '{}' first {} msg {}\n", escaped(key), first_ms,
                     q.dedup.at(key).msg_number);
    }
  }
  for (const auto& [name, t] : topics_) {
    fmt::format_to(std::back_inserter(out), "topic {} {} size {} filter {} created {} modified {} msgs {}\n",
                   t.id, name, t.attributes.max_msg_size, static_cast<int>(t.attributes.filter), t.create_ms,
                   t.modify_ms, t.msg_count);
    for (const auto& [sub_name, s] : t.subscriptions) {
      const subscription_attributes& a = s.attributes;
      fmt::format_to(
          std::back_inserter(out),
          "  subscription {} {} protocol {} endpoint '{}' strategy {} format {} tags [{}] keys [{}] "
          "created {} modified {}\n",
          s.id, sub_name, static_cast<int>(a.protocol), escaped(a.endpoint), static_cast<int>(a.strategy),
          static_cast<int>(a.format), joined(a.filter_tags), joined(a.binding_keys), s.create_ms,
          s.modify_ms);
    }
  }
  for (const auto& [delivery_id, p] : pushes_) {
    fmt::format_to(std::back_inserter(out),
                   "push {} subscription {} msg {} tags [{}] key '{}' published {} attempts {} due {} body '",
                   delivery_id, p.subscription_id, p.msg_number, joined(p.tags), escaped(p.routing_key),
                   p.publish_ms, p.attempts, p.due_ms);
    out += escaped(read_body(keys::with_ids(keys::push_body_prefix, p.subscription_id, delivery_id))) + "'\n";
  }
  auto rules_text = [](const std::vector<access_rule>& rules) {
    std::string text;
    for (const auto& r : rules)
      fmt::format_to(std::back_inserter(text), " [{} {} '{}']", r.allow ? "allow" : "deny", static_cast<int>(r.action),
                     escaped(r.topic));
    return text;
  };
  for (const auto& [name, u] : mqtt_users_) {
    fmt::format_to(std::back_inserter(out), "mqtt user '{}' hash '{}' roles '{}'{}\n", escaped(name),
                   escaped(u.password_hash), fmt::join(u.roles, ","), rules_text(u.rules));
  }
  for (const auto& [name, role] : mqtt_roles_) {
    fmt::format_to(std::back_inserter(out), "mqtt role '{}'{}\n", escaped(name), rules_text(role.rules));
  }
  return out;
}

}  // namespace wharf::core::queue::detail
