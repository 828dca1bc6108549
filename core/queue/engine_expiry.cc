// Time-based work: retention, dead-lettering by time to live, the rewind window and the
// dedup window. Each queue keeps its messages and dedup keys in enqueue order, and enqueue
// times never decrease along that order, so the next expiry is always at the front (or,
// for time to live, just past a cursor): an expiry costs O(log n), never a scan.
//
// engine_impl::housekeeping_ orders queues by when they next need this work; tick runs
// the due ones, and next_tick_time() answers its first entry.
#include <fmt/format.h>

#include "core/queue/engine_impl.h"

namespace wharf::core::queue::detail {

void engine_impl::expire(queue_state& q) {
  if (!q.housekeeping_ms || *q.housekeeping_ms > now_) return;
  // Retention first: a message past retention is removed even when its time to live
  // passed too (both can be due when no tick ran for a while).
  expire_retention(q);
  expire_time_to_live(q);
  expire_rewind_window(q);
  expire_dedup_keys(q);
  reschedule(q);
}

void engine_impl::expire_retention(queue_state& q) {
  const time_ms retention = from_seconds(q.attributes.msg_retention_seconds);
  while (!q.live.empty() && q.live.begin()->second.enqueue_ms + retention <= now_) {
    if (observer_) {
      const message& m = q.live.begin()->second;
      report(trace_event::kind::expired, m.msg_number, q.name, m.dequeue_count,
             fmt::format("msgRetentionSeconds {}", q.attributes.msg_retention_seconds));
    }
    remove_live(q, q.live.begin());
    ++counters_.stats.messages_expired;
    counters_changed();
  }
  // Deleted messages kept for rewind go too; they were consumed, so they are not counted.
  while (!q.deleted.empty() && q.deleted.begin()->second.enqueue_ms + retention <= now_) {
    remove_deleted(q, q.deleted.begin());
  }
}

void engine_impl::expire_time_to_live(queue_state& q) {
  const queue_attributes& a = q.attributes;
  if (a.policy != dead_letter_policy::max_time_to_live || a.dead_letter_queue.empty()) return;
  const time_ms ttl = from_seconds(a.max_time_to_live);
  const seq_t checked_before = q.ttl_checked_seq;
  for (auto it = q.live.upper_bound(q.ttl_checked_seq);
       it != q.live.end() && it->second.enqueue_ms + ttl <= now_;
       it = q.live.upper_bound(q.ttl_checked_seq)) {
    q.ttl_checked_seq = it->first;
    // A message whose dead-letter queue is missing or full stays where it is (deliverable,
    // and removed by retention at the latest); it is not tried again.
    if (queue_state* dlq = dead_letter_target(q)) {
      if (observer_) {
        report(trace_event::kind::dead_lettered, it->second.msg_number, q.name, it->second.dequeue_count,
               fmt::format("to {} after maxTimeToLive {} s", dlq->name, a.max_time_to_live));
      }
      count_dead_letter(q, it->first, it->second);
      move_message(q, it->first, *dlq, q.name);
    }
  }
  if (q.ttl_checked_seq != checked_before) put(keys::with_ids(keys::queue_prefix, q.id), encode_queue(q));
}

void engine_impl::expire_rewind_window(queue_state& q) {
  const time_ms window = from_seconds(q.attributes.rewind_seconds);
  while (!q.deleted.empty() && q.deleted.begin()->second.enqueue_ms + window <= now_) {
    remove_deleted(q, q.deleted.begin());
  }
}

void engine_impl::expire_dedup_keys(queue_state& q) {
  const time_ms window = from_seconds(q.attributes.dedup_window_seconds);
  while (!q.dedup_by_time.empty() && q.dedup_by_time.begin()->first + window <= now_) {
    const auto& [first_ms, key] = *q.dedup_by_time.begin();
    erase(keys::dedup(q.id, first_ms, key));
    q.dedup.erase(key);
    q.dedup_by_time.erase(q.dedup_by_time.begin());
  }
}

std::optional<time_ms> engine_impl::next_expiry(const queue_state& q) const {
  std::optional<time_ms> next;
  const auto consider = [&](time_ms t) {
    if (!next || t < *next) next = t;
  };
  const queue_attributes& a = q.attributes;
  const time_ms retention = from_seconds(a.msg_retention_seconds);
  if (!q.live.empty()) consider(q.live.begin()->second.enqueue_ms + retention);
  if (!q.deleted.empty()) {
    const time_ms kept = std::min(retention, from_seconds(a.rewind_seconds));
    consider(q.deleted.begin()->second.enqueue_ms + kept);
  }
  if (a.policy == dead_letter_policy::max_time_to_live && !a.dead_letter_queue.empty()) {
    if (const auto it = q.live.upper_bound(q.ttl_checked_seq); it != q.live.end()) {
      consider(it->second.enqueue_ms + from_seconds(a.max_time_to_live));
    }
  }
  if (!q.dedup_by_time.empty())
    consider(q.dedup_by_time.begin()->first + from_seconds(a.dedup_window_seconds));
  return next;
}

void engine_impl::reschedule(queue_state& q) {
  const std::optional<time_ms> next = next_expiry(q);
  if (next == q.housekeeping_ms) return;
  if (q.housekeeping_ms) housekeeping_.erase({*q.housekeeping_ms, q.id});
  if (next) housekeeping_.emplace(*next, q.id);
  q.housekeeping_ms = next;
}

}  // namespace wharf::core::queue::detail
