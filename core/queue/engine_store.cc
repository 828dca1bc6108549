// The queue core's storage records (key layout: engine.cc) and loading the state from them.
// Every record starts with a format byte; load() refuses a record it cannot read whole.
// Fields added after a record kind was first written go at its end, so a record written
// before them reads with their default.
#include <stdexcept>
#include <string>
#include <utility>

#include "core/binary.h"
#include "core/queue/engine_impl.h"

namespace wharf::core::queue::detail {
namespace {

constexpr std::uint8_t record_version = 1;

using core::binary::reader;
using core::binary::writer;

writer record() {
  writer w;
  w.u8(record_version);
  return w;
}

[[noreturn]] void corrupt(std::string_view what) {
  throw std::runtime_error("queue core storage: corrupt " + std::string(what) + " record");
}

// A reader over `value` past its format byte; throws when the version is unknown.
reader open_record(std::string_view value, std::string_view what) {
  reader r(value);
  if (r.u8() != record_version) corrupt(what);
  return r;
}

void finish(const reader& r, std::string_view what) {
  if (!r.done()) corrupt(what);
}

// The be64 numbers that follow `prefix` in a key.
std::uint64_t key_number(std::string_view key, std::string_view prefix, std::size_t position) {
  const std::size_t at = prefix.size() + 8 * position;
  if (key.size() < at + 8) corrupt("key");
  return read_be64(key.substr(at, 8));
}

template <class Enum>
Enum read_enum(reader& r, Enum first, Enum last) {
  const std::uint8_t v = r.u8();
  if (v < static_cast<std::uint8_t>(first) || v > static_cast<std::uint8_t>(last)) r.fail();
  return static_cast<Enum>(v);
}

void write_attributes(writer& w, const queue_attributes& a) {
  w.varint(a.max_msg_heap_num);
  w.varint(a.polling_wait_seconds);
  w.varint(a.visibility_timeout);
  w.varint(a.max_msg_size);
  w.varint(a.msg_retention_seconds);
  w.varint(a.rewind_seconds);
  w.bytes(a.dead_letter_queue);
  w.u8(static_cast<std::uint8_t>(a.policy));
  w.varint(a.max_receive_count);
  w.varint(a.max_time_to_live);
  w.varint(a.dedup_window_seconds);
}

queue_attributes read_attributes(reader& r) {
  queue_attributes a;
  a.max_msg_heap_num = r.varint();
  a.polling_wait_seconds = r.u32();
  a.visibility_timeout = r.u32();
  a.max_msg_size = r.u32();
  a.msg_retention_seconds = r.u32();
  a.rewind_seconds = r.u32();
  a.dead_letter_queue = r.bytes();
  a.policy = read_enum(r, dead_letter_policy::max_receive_count, dead_letter_policy::max_time_to_live);
  a.max_receive_count = r.u32();
  a.max_time_to_live = r.u32();
  a.dedup_window_seconds = r.u32();
  return a;
}

}  // namespace

namespace keys {

std::string with_ids(std::string_view prefix, std::uint64_t a) {
  std::string key(prefix);
  append_be64(key, a);
  return key;
}

std::string with_ids(std::string_view prefix, std::uint64_t a, std::uint64_t b) {
  std::string key;
  key.reserve(prefix.size() + 16);  // one allocation, not a growth after the first id
  key.append(prefix);
  append_be64(key, a);
  append_be64(key, b);
  return key;
}

std::string log_entry(std::uint64_t index) { return with_ids(log_key_prefix, index); }

std::string dedup(std::uint64_t queue_id, time_ms first_ms, std::string_view key) {
  std::string k = with_ids(dedup_prefix, queue_id, static_cast<std::uint64_t>(first_ms));
  k.append(key);
  return k;
}

}  // namespace keys

std::string encode_applied(std::uint64_t index, time_ms last_now) {
  writer w = record();
  w.varint(index);
  w.svarint(last_now);
  return w.take();
}

std::string encode_counters(const counters& c) {
  writer w = record();
  w.varint(c.next_queue_id);
  w.varint(c.next_topic_id);
  w.varint(c.next_subscription_id);
  w.varint(c.next_msg_number);
  w.varint(c.next_seq);
  w.varint(c.next_delivery_id);
  w.varint(c.stats.messages_expired);
  w.varint(c.stats.messages_dead_lettered);
  w.varint(c.stats.publish_queue_full);
  w.varint(c.stats.pushes_given_up);
  w.varint(c.stats.dedup_hits);
  w.varint(c.stats.group_heads_dead_lettered);
  w.varint(c.stats.tenant_quota_refusals);
  return w.take();
}

std::string encode_queue(const queue_state& q) {
  writer w = record();
  w.bytes(q.name);
  write_attributes(w, q.attributes);
  w.svarint(q.create_ms);
  w.svarint(q.modify_ms);
  w.varint(q.ttl_checked_seq);
  w.boolean(q.attributes.ordered);
  return w.take();
}

std::string encode_message(const message& m) {
  writer w = record();
  w.varint(m.msg_number);
  w.svarint(m.enqueue_ms);
  w.svarint(m.visible_ms);
  w.svarint(m.first_dequeue_ms);
  w.varint(m.dequeue_count);
  w.varint(m.generation);
  w.u8(static_cast<std::uint8_t>(m.state));
  w.bytes(m.dead_letter_source);
  w.bytes(m.group);
  w.varint(m.body_bytes);
  return w.take();
}

std::string encode_topic(const topic_state& t) {
  writer w = record();
  w.bytes(t.name);
  w.varint(t.attributes.max_msg_size);
  w.u8(static_cast<std::uint8_t>(t.attributes.filter));
  w.svarint(t.create_ms);
  w.svarint(t.modify_ms);
  w.varint(t.msg_count);
  return w.take();
}

std::string encode_subscription(const subscription_state& s) {
  writer w = record();
  w.varint(s.topic->id);
  w.bytes(s.name);
  const auto& a = s.attributes;
  w.u8(static_cast<std::uint8_t>(a.protocol));
  w.bytes(a.endpoint);
  w.u8(static_cast<std::uint8_t>(a.strategy));
  w.u8(static_cast<std::uint8_t>(a.format));
  w.strings(a.filter_tags);
  w.strings(a.binding_keys);
  w.svarint(s.create_ms);
  w.svarint(s.modify_ms);
  return w.take();
}

std::string encode_push(const pending_push& p) {
  writer w = record();
  w.varint(p.msg_number);
  w.strings(p.tags);
  w.svarint(p.publish_ms);
  w.varint(p.attempts);
  w.svarint(p.due_ms);
  w.bytes(p.routing_key);
  return w.take();
}

std::string encode_dedup(std::uint64_t msg_number) {
  writer w = record();
  w.varint(msg_number);
  return w.take();
}

void engine_impl::load() {
  if (const auto v = store_.get(keys::applied)) {
    reader r = open_record(*v, "applied index");
    applied_index_ = r.varint();
    finished_index_ = applied_index_;
    last_now_ = r.svarint();
    finish(r, "applied index");
  }
  if (const auto v = store_.get(keys::counters)) {
    reader r = open_record(*v, "counters");
    counters& c = counters_;
    c.next_queue_id = r.varint();
    c.next_topic_id = r.varint();
    c.next_subscription_id = r.varint();
    c.next_msg_number = r.varint();
    c.next_seq = r.varint();
    c.next_delivery_id = r.varint();
    c.stats.messages_expired = r.varint();
    c.stats.messages_dead_lettered = r.varint();
    c.stats.publish_queue_full = r.varint();
    c.stats.pushes_given_up = r.varint();
    c.stats.dedup_hits = r.varint();
    if (!r.done()) c.stats.group_heads_dead_lettered = r.varint();
    if (!r.done()) c.stats.tenant_quota_refusals = r.varint();
    finish(r, "counters");
  }
  // Message indexes split visible from not-yet-visible messages as of the last command.
  now_ = last_now_;
  load_queues();
  load_messages();
  load_dedup_keys();
  load_topics_and_subscriptions();
  load_pushes();
  load_mqtt_auth();
  for (auto& [name, q] : queues_) reschedule(q);
}

void engine_impl::load_mqtt_auth() {
  store_.scan_prefix(keys::mqtt_user_prefix, [&](std::string_view key, std::string_view value) {
    auto user = decode_mqtt_user(value);
    if (!user) corrupt("MQTT user");
    mqtt_users_.emplace(std::string(key.substr(keys::mqtt_user_prefix.size())), std::move(*user));
    return true;
  });
  store_.scan_prefix(keys::mqtt_role_prefix, [&](std::string_view key, std::string_view value) {
    auto role = decode_mqtt_role(value);
    if (!role) corrupt("MQTT role");
    mqtt_roles_.emplace(std::string(key.substr(keys::mqtt_role_prefix.size())), std::move(*role));
    return true;
  });
  mqtt_auth_changes_ = {.reloaded = true, .users = {}, .roles = {}};
}

void engine_impl::load_queues() {
  store_.scan_prefix(keys::queue_prefix, [&](std::string_view key, std::string_view value) {
    reader r = open_record(value, "queue");
    queue_state q;
    q.id = key_number(key, keys::queue_prefix, 0);
    q.name = r.bytes();
    q.attributes = read_attributes(r);
    q.create_ms = r.svarint();
    q.modify_ms = r.svarint();
    q.ttl_checked_seq = r.varint();
    if (!r.done()) q.attributes.ordered = r.boolean();
    finish(r, "queue");
    const auto [it, inserted] = queues_.emplace(q.name, std::move(q));
    if (!inserted) corrupt("queue (duplicate name)");
    queue_by_id_.emplace(it->second.id, &it->second);
    return true;
  });
}

void engine_impl::load_messages() {
  store_.scan_prefix(keys::message_state_prefix, [&](std::string_view key, std::string_view value) {
    const auto q = queue_by_id_.find(key_number(key, keys::message_state_prefix, 0));
    if (q == queue_by_id_.end()) corrupt("message (unknown queue)");
    const seq_t seq = key_number(key, keys::message_state_prefix, 1);
    reader r = open_record(value, "message");
    message m;
    m.msg_number = r.varint();
    m.enqueue_ms = r.svarint();
    m.visible_ms = r.svarint();
    m.first_dequeue_ms = r.svarint();
    m.dequeue_count = r.u32();
    m.generation = r.u32();
    m.state = read_enum(r, message_state::waiting, message_state::deleted);
    m.dead_letter_source = r.bytes();
    if (!r.done()) m.group = r.bytes();
    const bool sized = !r.done();
    if (sized) m.body_bytes = r.u32();
    finish(r, "message");
    queue_state& queue = *q->second;
    // A record from before sizes were kept: its body tells.
    if (!sized) {
      const auto body = store_.get(keys::with_ids(keys::message_body_prefix, queue.id, seq));
      m.body_bytes = body ? static_cast<std::uint32_t>(body->size()) : 0;
    }
    stored_added(queue, m.body_bytes);
    if (m.state == message_state::deleted) {
      queue.deleted.emplace(seq, std::move(m));
    } else {
      // Keys come in seq order, so each group's head joins (and is indexed) first.
      const auto it = queue.live.emplace(seq, std::move(m)).first;
      join_group(queue, seq, it->second);
      index_message(queue, seq, it->second);
    }
    return true;
  });
}

void engine_impl::load_dedup_keys() {
  store_.scan_prefix(keys::dedup_prefix, [&](std::string_view key, std::string_view value) {
    const auto q = queue_by_id_.find(key_number(key, keys::dedup_prefix, 0));
    if (q == queue_by_id_.end()) corrupt("dedup key (unknown queue)");
    const auto first_ms = static_cast<time_ms>(key_number(key, keys::dedup_prefix, 1));
    std::string dedup_key(key.substr(keys::dedup_prefix.size() + 16));
    reader r = open_record(value, "dedup key");
    const std::uint64_t msg_number = r.varint();
    finish(r, "dedup key");
    q->second->dedup_by_time.emplace(first_ms, dedup_key);
    q->second->dedup.emplace(std::move(dedup_key), dedup_entry{first_ms, msg_number});
    return true;
  });
}

void engine_impl::load_topics_and_subscriptions() {
  std::unordered_map<std::uint64_t, topic_state*> topic_by_id;
  store_.scan_prefix(keys::topic_prefix, [&](std::string_view key, std::string_view value) {
    reader r = open_record(value, "topic");
    topic_state t;
    t.id = key_number(key, keys::topic_prefix, 0);
    t.name = r.bytes();
    t.attributes.max_msg_size = r.u32();
    t.attributes.filter = read_enum(r, filter_type::tag, filter_type::routing_key);
    t.create_ms = r.svarint();
    t.modify_ms = r.svarint();
    t.msg_count = r.varint();
    finish(r, "topic");
    const auto [it, inserted] = topics_.emplace(t.name, std::move(t));
    if (!inserted) corrupt("topic (duplicate name)");
    topic_by_id.emplace(it->second.id, &it->second);
    return true;
  });
  store_.scan_prefix(keys::subscription_prefix, [&](std::string_view key, std::string_view value) {
    reader r = open_record(value, "subscription");
    subscription_state s;
    s.id = key_number(key, keys::subscription_prefix, 0);
    const auto topic = topic_by_id.find(r.varint());
    if (topic == topic_by_id.end()) corrupt("subscription (unknown topic)");
    s.topic = topic->second;
    s.name = r.bytes();
    auto& a = s.attributes;
    a.protocol = read_enum(r, sub_protocol::http, sub_protocol::mqtt);
    a.endpoint = r.bytes();
    a.strategy = read_enum(r, notify_strategy::backoff_retry, notify_strategy::exponential_decay_retry);
    a.format = read_enum(r, notify_format::json, notify_format::simplified);
    a.filter_tags = r.strings();
    a.binding_keys = r.strings();
    s.create_ms = r.svarint();
    s.modify_ms = r.svarint();
    finish(r, "subscription");
    const auto [it, inserted] = s.topic->subscriptions.emplace(s.name, std::move(s));
    if (!inserted) corrupt("subscription (duplicate name)");
    subscription_by_id_.emplace(it->second.id, &it->second);
    return true;
  });
}

void engine_impl::load_pushes() {
  store_.scan_prefix(keys::push_prefix, [&](std::string_view key, std::string_view value) {
    const auto sub = subscription_by_id_.find(key_number(key, keys::push_prefix, 0));
    if (sub == subscription_by_id_.end()) corrupt("push (unknown subscription)");
    const std::uint64_t delivery_id = key_number(key, keys::push_prefix, 1);
    reader r = open_record(value, "push");
    pending_push p;
    p.subscription_id = sub->first;
    p.msg_number = r.varint();
    p.tags = r.strings();
    p.publish_ms = r.svarint();
    p.attempts = r.u32();
    p.due_ms = r.svarint();
    // Records written before routing keys were kept end here (no key).
    if (!r.done()) p.routing_key = r.bytes();
    finish(r, "push");
    sub->second->pending_pushes.insert(delivery_id);
    push_schedule_.emplace(p.due_ms, delivery_id);
    pushes_.emplace(delivery_id, std::move(p));
    return true;
  });
}

}  // namespace wharf::core::queue::detail

namespace wharf::core::queue {

std::uint64_t stored_applied_index(storage_view& state) {
  const auto v = state.get(detail::keys::applied);
  if (!v) return 0;
  binary::reader r = detail::open_record(*v, "applied index");
  const std::uint64_t index = r.varint();
  (void)r.svarint();  // the latest command time
  detail::finish(r, "applied index");
  return index;
}

}  // namespace wharf::core::queue
