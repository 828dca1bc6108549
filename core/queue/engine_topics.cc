// Topic commands: topics, subscriptions, publish with fan-out to queues and HTTP
// endpoints, and the results of HTTP pushes.
#include <algorithm>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "core/queue/engine_impl.h"
#include "core/queue/filters.h"

namespace wharf::core::queue::detail {
namespace {

constexpr std::size_t max_batch = 16;
constexpr std::uint32_t min_topic_msg_size = 1024;
constexpr std::uint32_t max_topic_msg_size = 1048576;
constexpr std::size_t max_tags = 5;
constexpr std::size_t max_tag_chars = 16;
constexpr std::size_t max_keys = 5;
constexpr std::size_t max_key_bytes = 64;
constexpr std::size_t max_key_dots = 15;
// A retry delay beyond a week is a caller bug; it is cut to this.
constexpr std::int64_t max_retry_delay_ms = 7LL * 24 * 3600 * 1000;

// Tags travel in the x-cmq-message-tag header of HTTP pushes: control characters (CR, LF,
// NUL, ...) could split or end that header, so they are refused here, at publish.
bool valid_tags(const std::vector<std::string>& tags) {
  const auto is_control = [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; };
  return tags.size() <= max_tags && std::all_of(tags.begin(), tags.end(), [&](const std::string& t) {
           const std::size_t n = utf8_length(t);
           return n >= 1 && n <= max_tag_chars && std::none_of(t.begin(), t.end(), is_control);
         });
}

// Routing keys may be empty (no words); binding keys may not.
bool valid_routing_key(std::string_view key) {
  return key.size() <= max_key_bytes &&
         static_cast<std::size_t>(std::count(key.begin(), key.end(), '.')) <= max_key_dots;
}

bool valid_binding_keys(const std::vector<std::string>& keys) {
  return keys.size() <= max_keys && std::all_of(keys.begin(), keys.end(), [](const std::string& k) {
           return !k.empty() && valid_routing_key(k);
         });
}

std::optional<status> invalid_topic_msg_size(std::uint32_t size) {
  if (size >= min_topic_msg_size && size <= max_topic_msg_size) return std::nullopt;
  return invalid(fmt::format("maxMsgSize must be {}..{}", min_topic_msg_size, max_topic_msg_size));
}

result topic_not_found(std::string_view name) {
  return failure(code::not_found, fmt::format("topic {} does not exist", name));
}

result subscription_not_found(std::string_view topic, std::string_view name) {
  return failure(code::not_found, fmt::format("subscription {} of topic {} does not exist", name, topic));
}

// `parameter` is msgTag (publish) or filterTag (subscription).
std::string tags_error(std::string_view parameter) {
  return fmt::format("{}: at most {} tags of 1..{} characters, no control characters", parameter, max_tags,
                     max_tag_chars);
}

std::string binding_keys_error() {
  return fmt::format("bindingKey: at most {} keys of 1..{} bytes with at most {} dots", max_keys,
                     max_key_bytes, max_key_dots);
}

}  // namespace

topic_state* engine_impl::find_topic(std::string_view name) {
  const auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : &it->second;
}

const topic_state* engine_impl::find_topic(std::string_view name) const {
  const auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : &it->second;
}

result engine_impl::on(const create_topic& c) {
  if (!is_valid_engine_name(c.name)) {
    return failure(code::invalid_parameter,
                   "topicName must be 1..64 characters: a letter, then letters, digits, '_' or '-'");
  }
  if (find_topic(c.name))
    return failure(code::already_exists, fmt::format("topic {} already exists", c.name));
  if (topics_.size() >= limits_.max_topics) {
    return failure(code::too_many, fmt::format("at most {} topics", limits_.max_topics));
  }
  if (auto refused = over_tenant_count(tenant_of(c.name), true)) return std::move(*refused);
  if (auto e = invalid_topic_msg_size(c.attributes.max_msg_size)) return failure(e->value, e->message);
  if (c.attributes.filter != filter_type::tag && c.attributes.filter != filter_type::routing_key) {
    return failure(code::invalid_parameter, "filterType must be 1 or 2");
  }
  topic_state& t = topics_[c.name];
  t.id = counters_.next_topic_id++;
  counters_changed();
  t.name = c.name;
  t.attributes = c.attributes;
  t.create_ms = now_;
  t.modify_ms = now_;
  put(keys::with_ids(keys::topic_prefix, t.id), encode_topic(t));
  result r;
  r.id = format_topic_id(t.id);
  return r;
}

result engine_impl::on(const set_topic_attributes& c) {
  topic_state* t = find_topic(c.name);
  if (!t) return topic_not_found(c.name);
  if (c.max_msg_size) {
    if (auto e = invalid_topic_msg_size(*c.max_msg_size)) return failure(e->value, e->message);
    t->attributes.max_msg_size = *c.max_msg_size;
  }
  t->modify_ms = now_;
  put(keys::with_ids(keys::topic_prefix, t->id), encode_topic(*t));
  return {};
}

result engine_impl::on(const delete_topic& c) {
  const auto it = topics_.find(c.name);
  if (it == topics_.end()) return topic_not_found(c.name);
  topic_state& t = it->second;
  while (!t.subscriptions.empty()) remove_subscription(t, t.subscriptions.begin());
  erase(keys::with_ids(keys::topic_prefix, t.id));
  topics_.erase(it);
  return {};
}

result engine_impl::on(const publish_messages& c) {
  if (c.items.empty() || c.items.size() > max_batch) {
    return failure(code::invalid_parameter, fmt::format("msgBody must hold 1..{} entries", max_batch));
  }
  topic_state* t = find_topic(c.topic);
  if (!t) return topic_not_found(c.topic);
  for (const publish_item& item : c.items) {
    if (item.body.empty()) return failure(code::invalid_parameter, "msgBody must not be empty");
    if (!valid_tags(item.tags)) return failure(code::invalid_parameter, tags_error("msgTag"));
    if (!valid_routing_key(item.routing_key)) {
      return failure(code::invalid_parameter,
                     fmt::format("routingKey must be at most {} bytes with at most {} dots", max_key_bytes,
                                 max_key_dots));
    }
    if (item.body.size() > t->attributes.max_msg_size) {
      return failure(code::message_too_large,
                     fmt::format("msgBody is larger than maxMsgSize ({} bytes)", t->attributes.max_msg_size));
    }
  }
  result r;
  for (const publish_item& item : c.items) {
    const std::uint64_t msg_number = counters_.next_msg_number++;
    ++t->msg_count;
    if (observer_) report(trace_event::kind::published, msg_number, t->name);
    fan_out(*t, item, msg_number);
    r.msg_ids.push_back(format_msg_id(msg_number));
  }
  counters_changed();
  put(keys::with_ids(keys::topic_prefix, t->id), encode_topic(*t));
  return r;
}

void engine_impl::fan_out(topic_state& t, const publish_item& item, std::uint64_t msg_number) {
  for (auto& [name, s] : t.subscriptions) {
    const subscription_attributes& a = s.attributes;
    const bool match = t.attributes.filter == filter_type::tag
                           ? tags_match(a.filter_tags, item.tags)
                           : routing_key_matches(a.binding_keys, item.routing_key);
    if (!match) continue;
    if (a.protocol == sub_protocol::queue) {
      // The publish succeeds whatever one subscription's queue does; a copy the queue
      // cannot take (gone or full) is counted, never silently dropped.
      queue_state* q = find_queue(a.endpoint);
      // (Subscribe keeps the queue in the topic's tenant; a queue of that name made later
      // by another tenant cannot be one.)
      if (q && tenant_of(q->name) != tenant_of(t.name)) q = nullptr;
      const bool over_quota = q && !is_full(*q) && over_tenant_bytes(tenant_of(q->name), item.body.size());
      if (!q || is_full(*q) || over_quota) {
        ++counters_.stats.publish_queue_full;
        if (observer_) {
          report(trace_event::kind::not_delivered, msg_number, a.endpoint, 0,
                 fmt::format("subscription {}: queue {} is {}", name, a.endpoint,
                             !q ? "missing" : over_quota ? "at its tenant's stored-bytes quota" : "full"));
        }
        continue;
      }
      enqueue(*q, msg_number, item.body, now_, {}, {});
      if (observer_) {
        report(trace_event::kind::delivered, msg_number, q->name, 0, fmt::format("subscription {}", name));
      }
      continue;
    }
    const std::uint64_t delivery_id = counters_.next_delivery_id++;
    pending_push p;
    p.subscription_id = s.id;
    p.msg_number = msg_number;
    p.tags = item.tags;
    if (a.protocol == sub_protocol::mqtt) p.routing_key = item.routing_key;
    p.publish_ms = now_;
    p.due_ms = now_;
    store_push(delivery_id, p);
    put_body(keys::with_ids(keys::push_body_prefix, s.id, delivery_id), item.body);
    s.pending_pushes.insert(delivery_id);
    push_schedule_.emplace(p.due_ms, delivery_id);
    pushes_.emplace(delivery_id, std::move(p));
  }
}

status engine_impl::validate_subscription(const subscription_attributes& a, bool endpoint_named) const {
  switch (a.protocol) {
    case sub_protocol::http:
      if (!a.endpoint.starts_with("http://") && !a.endpoint.starts_with("https://")) {
        return invalid("endpoint must be an http:// or https:// URL for protocol http");
      }
      break;
    case sub_protocol::queue:
      if (a.format != notify_format::simplified) {
        return invalid("notifyContentFormat must be SIMPLIFIED for protocol queue");
      }
      // The queue must exist when the subscription is made; if it is deleted later,
      // publishes count the copies it misses (publish_queue_full).
      if (endpoint_named && !find_queue(a.endpoint)) {
        return status{code::not_found, fmt::format("endpoint queue {} does not exist", a.endpoint)};
      }
      break;
    case sub_protocol::mqtt:
      if (a.endpoint.empty()) return invalid("endpoint must be an MQTT topic template for protocol mqtt");
      break;
    default: return invalid("protocol must be http or queue");
  }
  if (a.strategy != notify_strategy::backoff_retry &&
      a.strategy != notify_strategy::exponential_decay_retry) {
    return invalid("notifyStrategy must be BACKOFF_RETRY or EXPONENTIAL_DECAY_RETRY");
  }
  if (a.format != notify_format::json && a.format != notify_format::simplified) {
    return invalid("notifyContentFormat must be JSON or SIMPLIFIED");
  }
  if (!valid_tags(a.filter_tags)) return invalid(tags_error("filterTag"));
  if (!valid_binding_keys(a.binding_keys)) return invalid(binding_keys_error());
  return {};
}

result engine_impl::on(const subscribe& c) {
  if (!is_valid_name(c.subscription)) {
    return failure(code::invalid_parameter,
                   "subscriptionName must be 1..64 characters: a letter, then letters, digits, '_' or '-'");
  }
  topic_state* t = find_topic(c.topic);
  if (!t) return topic_not_found(c.topic);
  if (t->subscriptions.contains(c.subscription)) {
    return failure(code::already_exists,
                   fmt::format("subscription {} of topic {} already exists", c.subscription, c.topic));
  }
  if (t->subscriptions.size() >= limits_.max_subscriptions_per_topic) {
    return failure(code::too_many,
                   fmt::format("at most {} subscriptions per topic", limits_.max_subscriptions_per_topic));
  }
  if (status s = validate_subscription(c.attributes, true); !s.ok())
    return failure(s.value, std::move(s.message));
  // A topic's copies go to queues of its own tenant only.
  if (c.attributes.protocol == sub_protocol::queue && tenant_of(c.attributes.endpoint) != tenant_of(c.topic)) {
    return failure(code::not_found, fmt::format("endpoint queue {} does not exist", c.attributes.endpoint));
  }

  subscription_state& s = t->subscriptions[c.subscription];
  s.id = counters_.next_subscription_id++;
  counters_changed();
  s.topic = t;
  s.name = c.subscription;
  s.attributes = c.attributes;
  s.create_ms = now_;
  s.modify_ms = now_;
  subscription_by_id_.emplace(s.id, &s);
  put(keys::with_ids(keys::subscription_prefix, s.id), encode_subscription(s));
  result r;
  r.id = format_subscription_id(s.id);
  return r;
}

result engine_impl::on(const set_subscription_attributes& c) {
  topic_state* t = find_topic(c.topic);
  if (!t) return topic_not_found(c.topic);
  const auto it = t->subscriptions.find(c.subscription);
  if (it == t->subscriptions.end()) return subscription_not_found(c.topic, c.subscription);
  subscription_state& s = it->second;
  subscription_attributes a = s.attributes;
  if (c.strategy) a.strategy = *c.strategy;
  if (c.format) a.format = *c.format;
  if (c.filter_tags) a.filter_tags = *c.filter_tags;
  if (c.binding_keys) a.binding_keys = *c.binding_keys;
  if (status e = validate_subscription(a, false); !e.ok()) return failure(e.value, std::move(e.message));
  s.attributes = std::move(a);
  s.modify_ms = now_;
  put(keys::with_ids(keys::subscription_prefix, s.id), encode_subscription(s));
  return {};
}

result engine_impl::on(const clear_subscription_filter_tags& c) {
  topic_state* t = find_topic(c.topic);
  if (!t) return topic_not_found(c.topic);
  const auto it = t->subscriptions.find(c.subscription);
  if (it == t->subscriptions.end()) return subscription_not_found(c.topic, c.subscription);
  subscription_state& s = it->second;
  s.attributes.filter_tags.clear();
  s.modify_ms = now_;
  put(keys::with_ids(keys::subscription_prefix, s.id), encode_subscription(s));
  return {};
}

result engine_impl::on(const unsubscribe& c) {
  topic_state* t = find_topic(c.topic);
  if (!t) return topic_not_found(c.topic);
  const auto it = t->subscriptions.find(c.subscription);
  if (it == t->subscriptions.end()) return subscription_not_found(c.topic, c.subscription);
  remove_subscription(*t, it);
  return {};
}

void engine_impl::remove_subscription(topic_state& t,
                                      std::map<std::string, subscription_state, std::less<>>::iterator it) {
  subscription_state& s = it->second;
  for (const std::uint64_t delivery_id : s.pending_pushes) {
    const auto push = pushes_.find(delivery_id);
    push_schedule_.erase({push->second.due_ms, delivery_id});
    pushes_.erase(push);
  }
  for (const std::string_view prefix : {keys::push_prefix, keys::push_body_prefix}) {
    erase_range(keys::with_ids(prefix, s.id), keys::with_ids(prefix, s.id + 1));
  }
  erase(keys::with_ids(keys::subscription_prefix, s.id));
  subscription_by_id_.erase(s.id);
  t.subscriptions.erase(it);
}

void engine_impl::report_push(const pending_push& p, const push_result& c) {
  const subscription_state& s = *subscription_by_id_.at(p.subscription_id);
  const bool mqtt = s.attributes.protocol == sub_protocol::mqtt;
  const std::string to = fmt::format("subscription {} to {}{}", s.name, mqtt ? "MQTT topic " : "",
                                     s.attributes.endpoint);
  const std::uint32_t attempt = p.attempts + 1;
  if (c.success) {
    report(trace_event::kind::push_succeeded, p.msg_number, s.topic->name, 0,
           fmt::format("{}, attempt {}", to, attempt));
  } else if (c.give_up) {
    report(trace_event::kind::push_given_up, p.msg_number, s.topic->name, 0,
           fmt::format("{}, after {} failed attempts", to, attempt));
  } else {
    report(trace_event::kind::push_failed, p.msg_number, s.topic->name, 0,
           fmt::format("{}, attempt {} failed, retry in {} ms", to, attempt,
                       std::clamp<std::int64_t>(c.retry_delay_ms, 0, max_retry_delay_ms)));
  }
}

void engine_impl::store_push(std::uint64_t delivery_id, const pending_push& p) {
  put(keys::with_ids(keys::push_prefix, p.subscription_id, delivery_id), encode_push(p));
}

void engine_impl::remove_push(std::map<std::uint64_t, pending_push>::iterator it) {
  const auto& [delivery_id, p] = *it;
  erase(keys::with_ids(keys::push_prefix, p.subscription_id, delivery_id));
  erase(keys::with_ids(keys::push_body_prefix, p.subscription_id, delivery_id));
  subscription_by_id_.at(p.subscription_id)->pending_pushes.erase(delivery_id);
  push_schedule_.erase({p.due_ms, delivery_id});
  pushes_.erase(it);
}

result engine_impl::on(const push_result& c) {
  // An unknown id is a delivery removed meanwhile (unsubscribe, topic deleted): nothing to do.
  const auto it = pushes_.find(c.delivery_id);
  if (it == pushes_.end()) return {};
  if (observer_) report_push(it->second, c);
  if (c.success || c.give_up) {
    if (!c.success) {
      ++counters_.stats.pushes_given_up;
      counters_changed();
    }
    remove_push(it);
    return {};
  }
  pending_push& p = it->second;
  push_schedule_.erase({p.due_ms, c.delivery_id});
  ++p.attempts;
  p.due_ms = now_ + std::clamp<std::int64_t>(c.retry_delay_ms, 0, max_retry_delay_ms);
  push_schedule_.emplace(p.due_ms, c.delivery_id);
  store_push(c.delivery_id, p);
  return {};
}

}  // namespace wharf::core::queue::detail
