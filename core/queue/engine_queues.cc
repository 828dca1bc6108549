// Queue commands: create, set attributes, delete, purge, send, receive, delete messages,
// rewind, redrive; and the message bookkeeping they share.
#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/queue/engine_impl.h"

namespace wharf::core::queue::detail {
namespace {

constexpr std::size_t max_batch = 16;
constexpr std::uint32_t max_delay_seconds = 3600;
// wharf extension: dedup keys are 1..128 bytes.
constexpr std::size_t max_dedup_key_bytes = 128;
// One redrive command moves at most this many messages (it is one log entry and one batch).
constexpr std::uint32_t max_redrive_messages = 10000;

queue_attributes merged(queue_attributes a, const queue_attribute_changes& c) {
  if (c.max_msg_heap_num) a.max_msg_heap_num = *c.max_msg_heap_num;
  if (c.polling_wait_seconds) a.polling_wait_seconds = *c.polling_wait_seconds;
  if (c.visibility_timeout) a.visibility_timeout = *c.visibility_timeout;
  if (c.max_msg_size) a.max_msg_size = *c.max_msg_size;
  if (c.msg_retention_seconds) a.msg_retention_seconds = *c.msg_retention_seconds;
  if (c.rewind_seconds) a.rewind_seconds = *c.rewind_seconds;
  if (c.dead_letter_queue) a.dead_letter_queue = *c.dead_letter_queue;
  if (c.policy) a.policy = *c.policy;
  if (c.max_receive_count) a.max_receive_count = *c.max_receive_count;
  if (c.max_time_to_live) a.max_time_to_live = *c.max_time_to_live;
  if (c.ordered) a.ordered = *c.ordered;
  // Unless named, the dedup window follows a retention shorter than it (a queue keeping
  // messages 60 s cannot remember keys for 300 s): a CMQ client never names it.
  a.dedup_window_seconds = c.dedup_window_seconds
                               ? *c.dedup_window_seconds
                               : std::min(a.dedup_window_seconds, a.msg_retention_seconds);
  return a;
}

// "<name> must be <low>..<high>" when v is outside the range.
template <class T>
std::optional<status> out_of_range(std::string_view name, T v, std::uint64_t low, std::uint64_t high) {
  if (v >= low && v <= high) return std::nullopt;
  return invalid(fmt::format("{} must be {}..{}", name, low, high));
}

result queue_not_found(std::string_view name) {
  return failure(code::not_found, fmt::format("queue {} does not exist", name));
}

result batch_size_error(std::string_view what) {
  return failure(code::invalid_parameter, fmt::format("{} must hold 1..{} entries", what, max_batch));
}

}  // namespace

queue_state* engine_impl::find_queue(std::string_view name) {
  const auto it = queues_.find(name);
  return it == queues_.end() ? nullptr : &it->second;
}

const queue_state* engine_impl::find_queue(std::string_view name) const {
  const auto it = queues_.find(name);
  return it == queues_.end() ? nullptr : &it->second;
}

status engine_impl::validate(const queue_attributes& a, std::string_view queue_name,
                             bool dead_letter_queue_named) const {
  const std::optional<status> range_error[] = {
      out_of_range("maxMsgHeapNum", a.max_msg_heap_num, 1000000, 1000000000),
      out_of_range("pollingWaitSeconds", a.polling_wait_seconds, 0, 30),
      out_of_range("visibilityTimeout", a.visibility_timeout, 1, 43200),
      out_of_range("maxMsgSize", a.max_msg_size, 1024, 1048576),
      out_of_range("msgRetentionSeconds", a.msg_retention_seconds, 60, 1296000),
      out_of_range("rewindSeconds", a.rewind_seconds, 0, 1296000),
  };
  for (const auto& e : range_error) {
    if (e) return *e;
  }
  if (a.dedup_window_seconds > a.msg_retention_seconds) {
    return invalid("dedupWindowSeconds must be 0..msgRetentionSeconds");
  }
  if (a.dead_letter_queue.empty()) return {};
  // The dead-letter queue must exist when it is named; a later DeleteQueue of it does not
  // invalidate this queue (its messages then simply stay: see dead_letter_target).
  // It is a queue of the same tenant: another tenant's is as if it did not exist.
  if (dead_letter_queue_named && (a.dead_letter_queue == queue_name || !find_queue(a.dead_letter_queue) ||
                                  tenant_of(a.dead_letter_queue) != tenant_of(queue_name))) {
    return invalid("deadLetterQueueName must name an existing queue other than this one");
  }
  switch (a.policy) {
    case dead_letter_policy::max_receive_count:
      if (auto e = out_of_range("maxReceiveCount", a.max_receive_count, 1, 1000)) return *e;
      return {};
    case dead_letter_policy::max_time_to_live:
      if (auto e = out_of_range("maxTimeToLive", a.max_time_to_live, 300, 43200)) return *e;
      if (a.max_time_to_live >= a.msg_retention_seconds) {
        return invalid("maxTimeToLive must be less than msgRetentionSeconds");
      }
      return {};
  }
  return invalid("policy must be 0 or 1");
}

result engine_impl::on(const create_queue& c) {
  if (!is_valid_engine_name(c.name)) {
    return failure(code::invalid_parameter,
                   "queueName must be 1..64 characters: a letter, then letters, digits, '_' or '-'");
  }
  if (find_queue(c.name))
    return failure(code::already_exists, fmt::format("queue {} already exists", c.name));
  if (queues_.size() >= limits_.max_queues) {
    return failure(code::too_many, fmt::format("at most {} queues", limits_.max_queues));
  }
  if (auto refused = over_tenant_count(tenant_of(c.name), false)) return std::move(*refused);
  const queue_attributes attributes = merged({}, c.attributes);
  if (status s = validate(attributes, c.name, true); !s.ok()) return failure(s.value, std::move(s.message));

  queue_state& q = queues_[c.name];
  q.id = counters_.next_queue_id++;
  counters_changed();
  q.name = c.name;
  q.attributes = attributes;
  q.create_ms = now_;
  q.modify_ms = now_;
  queue_by_id_.emplace(q.id, &q);
  put(keys::with_ids(keys::queue_prefix, q.id), encode_queue(q));
  result r;
  r.id = format_queue_id(q.id);
  return r;
}

result engine_impl::on(const set_queue_attributes& c) {
  queue_state* q = find_queue(c.name);
  if (!q) return queue_not_found(c.name);
  // Groups are kept only by an ordered queue: turning it on or off later would have to
  // order (or forget the order of) messages already sent.
  if (c.attributes.ordered && *c.attributes.ordered != q->attributes.ordered) {
    return failure(code::invalid_parameter, "orderedQueue is fixed when the queue is created");
  }
  const queue_attributes attributes = merged(q->attributes, c.attributes);
  const bool named = c.attributes.dead_letter_queue.has_value();
  if (status s = validate(attributes, c.name, named); !s.ok()) return failure(s.value, std::move(s.message));
  q->attributes = attributes;
  q->modify_ms = now_;
  put(keys::with_ids(keys::queue_prefix, q->id), encode_queue(*q));
  // A shorter retention, rewind or dedup window may take effect at once.
  reschedule(*q);
  expire(*q);
  return {};
}

result engine_impl::on(const delete_queue& c) {
  const auto it = queues_.find(c.name);
  if (it == queues_.end()) return queue_not_found(c.name);
  queue_state& q = it->second;
  if (observer_) {
    for (const auto& [seq, m] : q.live) {
      report(trace_event::kind::queue_deleted, m.msg_number, q.name, m.dequeue_count);
    }
  }
  erase_message_records(q);
  stored_removed(q, q.stored_bytes);
  erase(keys::with_ids(keys::queue_prefix, q.id));
  if (q.housekeeping_ms) housekeeping_.erase({*q.housekeeping_ms, q.id});
  queue_by_id_.erase(q.id);
  queues_.erase(it);
  return {};
}

result engine_impl::on(const purge_queue& c) {
  queue_state* q = find_queue(c.name);
  if (!q) return queue_not_found(c.name);
  // Retention first, so a message already past it counts as expired, not purged.
  expire(*q);
  if (observer_) {
    for (const auto& [seq, m] : q->live) {
      report(trace_event::kind::purged, m.msg_number, q->name, m.dequeue_count);
    }
  }
  erase_message_records(*q);
  result r;
  r.count = q->live.size();
  stored_removed(*q, q->stored_bytes);
  q->live.clear();
  q->deleted.clear();
  q->ready.clear();
  q->delayed.clear();
  q->in_flight.clear();
  q->groups.clear();
  q->dedup.clear();
  q->dedup_by_time.clear();
  // ttl_checked_seq stays: the sequence numbers of later messages are all above it.
  reschedule(*q);
  return r;
}

void engine_impl::erase_message_records(const queue_state& q) {
  // One range per record kind, not a key per message: a queue may hold millions.
  for (const std::string_view prefix :
       {keys::message_state_prefix, keys::message_body_prefix, keys::dedup_prefix}) {
    erase_range(keys::with_ids(prefix, q.id), keys::with_ids(prefix, q.id + 1));
  }
}

void engine_impl::report(trace_event::kind what, std::uint64_t msg_number, std::string_view where,
                         std::uint32_t dequeue_count, std::string detail) {
  report(what, format_msg_id(msg_number), where, dequeue_count, std::move(detail));
}

void engine_impl::report(trace_event::kind what, std::string_view msg_id, std::string_view where,
                         std::uint32_t dequeue_count, std::string detail) {
  trace_event e;
  e.at = now_;
  e.what = what;
  e.queue = where;
  e.dequeue_count = dequeue_count;
  e.detail = std::move(detail);
  observer_->observe(msg_id, std::move(e));
}

bool engine_impl::is_full(const queue_state& q, std::size_t adding) const {
  return q.live.size() + adding > q.attributes.max_msg_heap_num;
}

queue_state* engine_impl::dead_letter_target(const queue_state& q) {
  if (q.attributes.dead_letter_queue.empty()) return nullptr;
  queue_state* dlq = find_queue(q.attributes.dead_letter_queue);
  if (!dlq || dlq == &q || is_full(*dlq)) return nullptr;
  return dlq;
}

void engine_impl::index_message(queue_state& q, seq_t seq, const message& m) {
  if (q.attributes.ordered && !heads_group(q, seq, m)) return;
  if (m.visible_ms <= now_) {
    q.ready.insert(seq);
  } else if (m.state == message_state::received) {
    q.in_flight.emplace(m.visible_ms, seq);
  } else {
    q.delayed.emplace(m.visible_ms, seq);
  }
}

void engine_impl::unindex_message(queue_state& q, seq_t seq, const message& m) {
  if (q.ready.erase(seq) != 0) return;
  (m.state == message_state::received ? q.in_flight : q.delayed).erase({m.visible_ms, seq});
}

bool engine_impl::heads_group(const queue_state& q, seq_t seq, const message& m) {
  const auto group = q.groups.find(m.group);
  return group != q.groups.end() && *group->second.begin() == seq;
}

void engine_impl::join_group(queue_state& q, seq_t seq, const message& m) {
  if (q.attributes.ordered) q.groups[m.group].insert(seq);
}

void engine_impl::leave_group(queue_state& q, seq_t seq, const message& m) {
  if (!q.attributes.ordered) return;
  const auto group = q.groups.find(m.group);
  if (group == q.groups.end()) return;
  std::set<seq_t>& members = group->second;
  const bool was_head = *members.begin() == seq;
  members.erase(seq);
  if (members.empty()) {
    q.groups.erase(group);
  } else if (was_head) {
    const seq_t next = *members.begin();
    index_message(q, next, q.live.at(next));
  }
}

void engine_impl::count_dead_letter(const queue_state& q, seq_t seq, const message& m) {
  ++counters_.stats.messages_dead_lettered;
  if (q.attributes.ordered && heads_group(q, seq, m)) ++counters_.stats.group_heads_dead_lettered;
  counters_changed();
}

void engine_impl::promote_visible(queue_state& q) {
  for (time_index* index : {&q.delayed, &q.in_flight}) {
    while (!index->empty() && index->begin()->first <= now_) {
      q.ready.insert(index->begin()->second);
      index->erase(index->begin());
    }
  }
}

void engine_impl::store_message(const queue_state& q, seq_t seq, const message& m) {
  put(keys::with_ids(keys::message_state_prefix, q.id, seq), encode_message(m));
}

void engine_impl::enqueue(queue_state& q, std::uint64_t msg_number, std::string_view body,
                          time_ms visible_ms, std::string dead_letter_source, std::string group) {
  const seq_t seq = counters_.next_seq++;
  counters_changed();
  message m;
  m.msg_number = msg_number;
  m.enqueue_ms = now_;
  m.visible_ms = visible_ms;
  m.dead_letter_source = std::move(dead_letter_source);
  m.group = std::move(group);
  m.body_bytes = static_cast<std::uint32_t>(body.size());
  stored_added(q, m.body_bytes);
  store_message(q, seq, m);
  put_body(keys::with_ids(keys::message_body_prefix, q.id, seq), body);
  const message& stored = q.live.emplace(seq, std::move(m)).first->second;
  join_group(q, seq, stored);
  index_message(q, seq, stored);
  reschedule(q);
}

void engine_impl::move_message(queue_state& from, seq_t seq, queue_state& to,
                               std::string dead_letter_source) {
  const auto it = from.live.find(seq);
  const std::string body = read_body(keys::with_ids(keys::message_body_prefix, from.id, seq));
  const std::uint64_t msg_number = it->second.msg_number;
  std::string group = it->second.group;
  remove_live(from, it);
  enqueue(to, msg_number, body, now_, std::move(dead_letter_source), std::move(group));
}

void engine_impl::remove_live(queue_state& q, std::map<seq_t, message>::iterator it) {
  unindex_message(q, it->first, it->second);
  leave_group(q, it->first, it->second);
  erase(keys::with_ids(keys::message_state_prefix, q.id, it->first));
  erase(keys::with_ids(keys::message_body_prefix, q.id, it->first));
  stored_removed(q, it->second.body_bytes);
  q.live.erase(it);
}

void engine_impl::remove_deleted(queue_state& q, std::map<seq_t, message>::iterator it) {
  erase(keys::with_ids(keys::message_state_prefix, q.id, it->first));
  erase(keys::with_ids(keys::message_body_prefix, q.id, it->first));
  stored_removed(q, it->second.body_bytes);
  q.deleted.erase(it);
}

void engine_impl::stored_added(queue_state& q, std::uint64_t bytes) {
  q.stored_bytes += bytes;
  const auto tenant = tenant_of(q.name);
  auto it = tenant_bytes_.find(tenant);
  if (it == tenant_bytes_.end()) it = tenant_bytes_.emplace(std::string(tenant), 0).first;
  it->second += bytes;
}

void engine_impl::stored_removed(queue_state& q, std::uint64_t bytes) {
  if (bytes == 0) return;
  q.stored_bytes -= bytes;
  const auto it = tenant_bytes_.find(tenant_of(q.name));
  it->second -= bytes;
  if (it->second == 0) tenant_bytes_.erase(it);
}

std::size_t engine_impl::tenant_count(std::string_view tenant, bool topics) const {
  const auto count = [&](const auto& by_name) -> std::size_t {
    if (tenant.empty()) {
      return static_cast<std::size_t>(std::count_if(by_name.begin(), by_name.end(), [](const auto& entry) {
        return tenant_of(entry.first).empty();
      }));
    }
    // A named tenant's names are one range of the sorted map: "<tenant>:" up to "<tenant>;".
    const std::string first = engine_name(tenant, "");
    std::string past = first;
    past.back() = static_cast<char>(tenant_separator + 1);
    return static_cast<std::size_t>(std::distance(by_name.lower_bound(first), by_name.lower_bound(past)));
  };
  return topics ? count(topics_) : count(queues_);
}

std::optional<result> engine_impl::over_tenant_count(std::string_view tenant, bool topics) {
  const auto quota = limits_.tenant_quotas.find(tenant);
  if (quota == limits_.tenant_quotas.end()) return std::nullopt;
  const std::size_t max = topics ? quota->second.max_topics : quota->second.max_queues;
  if (max == 0 || tenant_count(tenant, topics) < max) return std::nullopt;
  ++counters_.stats.tenant_quota_refusals;
  counters_changed();
  return failure(code::too_many, fmt::format("tenant {} has its quota of {} {} (tenants quotas.{})", tenant, max,
                                             topics ? "topics" : "queues", topics ? "topics" : "queues"));
}

std::optional<result> engine_impl::over_tenant_bytes(std::string_view tenant, std::uint64_t adding) {
  const auto quota = limits_.tenant_quotas.find(tenant);
  if (quota == limits_.tenant_quotas.end() || quota->second.max_stored_bytes == 0) return std::nullopt;
  const auto stored = tenant_bytes_.find(tenant);
  const std::uint64_t now_stored = stored == tenant_bytes_.end() ? 0 : stored->second;
  if (now_stored + adding <= quota->second.max_stored_bytes) return std::nullopt;
  ++counters_.stats.tenant_quota_refusals;
  counters_changed();
  return failure(code::queue_full,
                 fmt::format("tenant {} stores {} bytes of messages; {} more would pass its quota of {} "
                             "(tenants quotas.stored_bytes)",
                             tenant, now_stored, adding, quota->second.max_stored_bytes));
}

result engine_impl::on(const send_messages& c) {
  if (c.items.empty() || c.items.size() > max_batch) return batch_size_error("msgBody");
  queue_state* q = find_queue(c.queue);
  if (!q) return queue_not_found(c.queue);
  for (const send_item& item : c.items) {
    if (item.body.empty()) return failure(code::invalid_parameter, "msgBody must not be empty");
    if (item.delay_seconds > max_delay_seconds) {
      return failure(code::invalid_parameter, fmt::format("delaySeconds must be 0..{}", max_delay_seconds));
    }
    if (item.dedup_key && (item.dedup_key->empty() || item.dedup_key->size() > max_dedup_key_bytes)) {
      return failure(code::invalid_parameter,
                     fmt::format("dedupKey must be 1..{} bytes", max_dedup_key_bytes));
    }
    if (item.group && !q->attributes.ordered) {
      return failure(code::invalid_parameter,
                     fmt::format("msgGroupId needs an ordered queue: {} was not created with orderedQueue=1",
                                 q->name));
    }
    if (item.group && (item.group->empty() || item.group->size() > max_group_id_bytes)) {
      return failure(code::invalid_parameter, fmt::format("msgGroupId must be 1..{} bytes", max_group_id_bytes));
    }
    if (item.body.size() > q->attributes.max_msg_size) {
      return failure(code::message_too_large,
                     fmt::format("msgBody is larger than maxMsgSize ({} bytes)", q->attributes.max_msg_size));
    }
  }
  expire(*q);

  // Which items are repeats: of a key still inside the window (answered with that
  // message's id), or of an earlier item of this batch.
  const bool dedup = q->attributes.dedup_window_seconds > 0;
  constexpr std::size_t not_a_repeat = static_cast<std::size_t>(-1);
  std::vector<std::size_t> repeat_of_item(c.items.size(), not_a_repeat);
  std::vector<const dedup_entry*> repeat_of_entry(c.items.size(), nullptr);
  std::unordered_map<std::string_view, std::size_t> first_item_with_key;
  std::size_t new_messages = 0;
  for (std::size_t i = 0; i < c.items.size(); ++i) {
    const auto& key = c.items[i].dedup_key;
    if (dedup && key) {
      if (const auto it = q->dedup.find(*key); it != q->dedup.end()) {
        repeat_of_entry[i] = &it->second;
        continue;
      }
      const auto [first, inserted] = first_item_with_key.emplace(*key, i);
      if (!inserted) {
        repeat_of_item[i] = first->second;
        continue;
      }
    }
    ++new_messages;
  }
  if (is_full(*q, new_messages)) {
    return failure(code::queue_full, fmt::format("queue {} holds maxMsgHeapNum ({}) messages", q->name,
                                                 q->attributes.max_msg_heap_num));
  }
  std::uint64_t new_bytes = 0;
  for (std::size_t i = 0; i < c.items.size(); ++i) {
    if (!repeat_of_entry[i] && repeat_of_item[i] == not_a_repeat) new_bytes += c.items[i].body.size();
  }
  if (auto refused = over_tenant_bytes(tenant_of(q->name), new_bytes)) return std::move(*refused);

  result r;
  r.msg_ids.reserve(c.items.size());
  for (std::size_t i = 0; i < c.items.size(); ++i) {
    const send_item& item = c.items[i];
    if (repeat_of_entry[i] || repeat_of_item[i] != not_a_repeat) {
      r.msg_ids.push_back(repeat_of_entry[i] ? format_msg_id(repeat_of_entry[i]->msg_number)
                                             : r.msg_ids[repeat_of_item[i]]);
      if (observer_) {
        report(trace_event::kind::deduplicated, r.msg_ids.back(), q->name, 0,
               fmt::format("dedup key {}", *item.dedup_key));
      }
      ++counters_.stats.dedup_hits;
      counters_changed();
      continue;
    }
    const std::uint64_t msg_number = counters_.next_msg_number++;
    enqueue(*q, msg_number, item.body, now_ + from_seconds(item.delay_seconds), {}, item.group.value_or(""));
    if (dedup && item.dedup_key) {
      q->dedup.emplace(*item.dedup_key, dedup_entry{now_, msg_number});
      q->dedup_by_time.emplace(now_, *item.dedup_key);
      put(keys::dedup(q->id, now_, *item.dedup_key), encode_dedup(msg_number));
    }
    r.msg_ids.push_back(format_msg_id(msg_number));
    if (observer_) {
      report(trace_event::kind::enqueued, r.msg_ids.back(), q->name, 0,
             item.delay_seconds > 0 ? fmt::format("delay {} s", item.delay_seconds) : std::string());
    }
  }
  reschedule(*q);
  return r;
}

result engine_impl::on(const receive_messages& c) {
  if (c.max_messages < 1 || c.max_messages > max_batch) {
    return failure(code::invalid_parameter, fmt::format("numOfMsg must be 1..{}", max_batch));
  }
  queue_state* q = find_queue(c.queue);
  if (!q) return queue_not_found(c.queue);
  expire(*q);
  promote_visible(*q);

  const queue_attributes& a = q->attributes;
  const bool dead_letter_by_count =
      !a.dead_letter_queue.empty() && a.policy == dead_letter_policy::max_receive_count;
  result r;
  while (r.messages.size() < c.max_messages && !q->ready.empty()) {
    const seq_t seq = *q->ready.begin();
    message& m = q->live.find(seq)->second;
    // Policy 0: the receive after maxReceiveCount receives dead-letters the message. When
    // the dead-letter queue is missing or full it is delivered instead (never dropped).
    if (dead_letter_by_count && m.dequeue_count >= a.max_receive_count) {
      if (queue_state* dlq = dead_letter_target(*q)) {
        if (observer_) {
          report(trace_event::kind::dead_lettered, m.msg_number, q->name, m.dequeue_count,
                 fmt::format("to {} after maxReceiveCount {}", dlq->name, a.max_receive_count));
        }
        count_dead_letter(*q, seq, m);
        move_message(*q, seq, *dlq, q->name);
        continue;
      }
    }
    q->ready.erase(q->ready.begin());
    if (m.dequeue_count == 0) m.first_dequeue_ms = now_;
    ++m.dequeue_count;
    ++m.generation;
    m.state = message_state::received;
    m.visible_ms = now_ + from_seconds(a.visibility_timeout);
    q->in_flight.emplace(m.visible_ms, seq);
    store_message(*q, seq, m);

    received_message out;
    out.msg_id = format_msg_id(m.msg_number);
    out.receipt_handle = format_receipt_handle(receipt{q->id, seq, m.generation});
    out.body = read_body(keys::with_ids(keys::message_body_prefix, q->id, seq));
    out.enqueue_time_s = to_seconds(m.enqueue_ms);
    out.first_dequeue_time_s = to_seconds(m.first_dequeue_ms);
    out.next_visible_time_s = to_seconds(m.visible_ms);
    out.dequeue_count = m.dequeue_count;
    out.group = m.group;
    if (observer_) report(trace_event::kind::received, out.msg_id, q->name, m.dequeue_count);
    r.messages.push_back(std::move(out));
  }
  reschedule(*q);
  if (r.messages.empty()) r.outcome = status{code::no_message, "no message"};
  return r;
}

result engine_impl::on(const delete_messages& c) {
  if (c.receipt_handles.empty() || c.receipt_handles.size() > max_batch)
    return batch_size_error("receiptHandle");
  queue_state* q = find_queue(c.queue);
  if (!q) return queue_not_found(c.queue);
  expire(*q);

  result r;
  for (const std::string& handle : c.receipt_handles) {
    const auto parsed = parse_receipt_handle(handle);
    const auto it = parsed && parsed->queue_id == q->id ? q->live.find(parsed->seq) : q->live.end();
    // Only the newest handle of a message that is still out (received) deletes it, also
    // after its visibility timeout as long as nobody received it again.
    if (it == q->live.end() || it->second.state != message_state::received ||
        it->second.generation != parsed->generation) {
      r.errors.push_back(
          item_error{code::receipt_handle_invalid, "receipt handle is invalid or expired", handle});
      continue;
    }
    message& m = it->second;
    if (observer_) report(trace_event::kind::deleted, m.msg_number, q->name, m.dequeue_count);
    if (m.enqueue_ms + from_seconds(q->attributes.rewind_seconds) > now_) {
      // Kept (metadata and body) for RewindQueue until the rewind window passes.
      unindex_message(*q, it->first, m);
      leave_group(*q, it->first, m);
      m.state = message_state::deleted;
      store_message(*q, it->first, m);
      q->deleted.insert(q->live.extract(it));
    } else {
      remove_live(*q, it);
    }
  }
  reschedule(*q);
  if (r.errors.empty()) return r;
  if (c.receipt_handles.size() == 1) {
    return failure(code::receipt_handle_invalid, "receipt handle is invalid or expired");
  }
  r.outcome = status{code::batch_delete_partial, "some receipt handles are invalid or expired"};
  return r;
}

result engine_impl::on(const rewind_queue& c) {
  queue_state* q = find_queue(c.name);
  if (!q) return queue_not_found(c.name);
  if (q->attributes.rewind_seconds == 0) {
    return failure(code::invalid_parameter,
                   fmt::format("queue {} has rewindSeconds 0: rewind is off", q->name));
  }
  if (c.start_time_s < 0 || c.start_time_s > to_seconds(now_)) {
    return failure(code::invalid_parameter, "startConsumeTime must be a unix time not in the future");
  }
  expire(*q);
  const time_ms from = std::max(from_seconds(static_cast<std::uint64_t>(c.start_time_s)),
                                now_ - from_seconds(q->attributes.rewind_seconds));
  // Both maps are in enqueue order: walk each back from its end to `from`.
  std::vector<seq_t> rewound;
  for (auto it = q->live.rbegin(); it != q->live.rend() && it->second.enqueue_ms >= from; ++it) {
    rewound.push_back(it->first);
    unindex_message(*q, it->first, it->second);
  }
  while (!q->deleted.empty() && std::prev(q->deleted.end())->second.enqueue_ms >= from) {
    const seq_t seq = std::prev(q->deleted.end())->first;
    rewound.push_back(seq);
    const auto it = q->live.insert(q->deleted.extract(std::prev(q->deleted.end()))).position;
    join_group(*q, seq, it->second);
  }
  // Every live message of a group sent before `from` precedes every rewound one (seq order
  // is enqueue order), so the heads of such groups stay; the rewound messages queue up
  // behind them, or one heads its group.
  for (const seq_t seq : rewound) {
    message& m = q->live.find(seq)->second;
    m.state = message_state::waiting;
    m.visible_ms = now_;
    ++m.generation;  // every handle given out before is stale now
    index_message(*q, seq, m);
    store_message(*q, seq, m);
    if (observer_) report(trace_event::kind::rewound, m.msg_number, q->name, m.dequeue_count);
  }
  reschedule(*q);
  result r;
  r.count = rewound.size();
  return r;
}

result engine_impl::on(const redrive_dead_letters& c) {
  if (c.max_messages < 1 || c.max_messages > max_redrive_messages) {
    return failure(code::invalid_parameter, fmt::format("max_messages must be 1..{}", max_redrive_messages));
  }
  queue_state* dlq = find_queue(c.dead_letter_queue);
  if (!dlq) return queue_not_found(c.dead_letter_queue);
  if (!c.source_queue.empty() &&
      (!find_queue(c.source_queue) || tenant_of(c.source_queue) != tenant_of(c.dead_letter_queue)))
    return queue_not_found(c.source_queue);
  expire(*dlq);

  // Letters in enqueue order. A letter a consumer holds (received, not yet visible again)
  // stays, as does one whose source queue is gone or full; they are skipped, not counted.
  result r;
  for (auto it = dlq->live.begin(); it != dlq->live.end() && r.count < c.max_messages;) {
    const auto next = std::next(it);
    const message& m = it->second;
    const bool held = m.state == message_state::received && m.visible_ms > now_;
    const bool wanted =
        !m.dead_letter_source.empty() && (c.source_queue.empty() || m.dead_letter_source == c.source_queue);
    queue_state* source = wanted && !held ? find_queue(m.dead_letter_source) : nullptr;
    if (source && source != dlq && !is_full(*source)) {
      if (observer_) {
        report(trace_event::kind::redriven, m.msg_number, dlq->name, m.dequeue_count,
               fmt::format("to {}", source->name));
      }
      move_message(*dlq, it->first, *source, {});
      ++r.count;
    }
    it = next;
  }
  reschedule(*dlq);
  return r;
}

}  // namespace wharf::core::queue::detail
