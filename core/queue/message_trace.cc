// The message trace store (message_trace.h).
#include "core/queue/message_trace.h"

#include <iterator>
#include <utility>

namespace wharf::core::queue {

std::string_view to_string(trace_event::kind what) noexcept {
  using k = trace_event::kind;
  switch (what) {
    case k::enqueued: return "enqueued";
    case k::deduplicated: return "deduplicated";
    case k::received: return "received";
    case k::deleted: return "deleted";
    case k::rewound: return "rewound";
    case k::dead_lettered: return "dead_lettered";
    case k::redriven: return "redriven";
    case k::expired: return "expired";
    case k::purged: return "purged";
    case k::queue_deleted: return "queue_deleted";
    case k::published: return "published";
    case k::delivered: return "delivered";
    case k::not_delivered: return "not_delivered";
    case k::push_succeeded: return "push_succeeded";
    case k::push_failed: return "push_failed";
    case k::push_given_up: return "push_given_up";
  }
  return "unknown";
}

message_trace::string_pool::held message_trace::string_pool::hold(std::string_view s) {
  auto it = counts_.find(s);
  if (it == counts_.end()) it = counts_.emplace(std::string(s), 0).first;
  ++it->second;
  return &*it;
}

void message_trace::string_pool::release(held h) {
  if (--h->second == 0) counts_.erase(counts_.find(h->first));  // a lookup only for the last one
}

message_trace::message_trace(trace_limits limits) : limits_(limits) {}

bool message_trace::expired(const entry& e, time_ms now) const noexcept {
  return e.last_event_ms + limits_.retention.count() <= now;
}

void message_trace::release(const kept_event& e) {
  strings_.release(e.queue);
  strings_.release(e.actor);
  strings_.release(e.detail);
}

void message_trace::erase(entries::iterator it) {
  for (const auto& e : it->events) release(e);
  strings_.release(it->queue_or_topic);
  index_.erase(it->msg_id);
  by_last_event_.erase(it);
}

void message_trace::record(std::string_view msg_id, trace_event event) {
  const time_ms at = event.at;
  auto found = index_.find(msg_id);
  if (found == index_.end()) {
    if (limits_.max_messages == 0) return;
    while (index_.size() >= limits_.max_messages) {
      erase(by_last_event_.begin());
      ++evicted_;
    }
    entry e;
    e.msg_id = msg_id;
    // The first event says where the message came in: a publish, or a send to a queue.
    e.is_topic = event.what == trace_event::kind::published;
    e.queue_or_topic = strings_.hold(event.queue);
    by_last_event_.push_back(std::move(e));
    found = index_.emplace(by_last_event_.back().msg_id, std::prev(by_last_event_.end())).first;
  } else {
    by_last_event_.splice(by_last_event_.end(), by_last_event_, found->second);
  }
  entry& e = *found->second;
  e.last_event_ms = at;
  auto& events = e.events;
  if (events.size() >= limits_.max_events_per_message && !events.empty()) {
    // Keep the first event (how the message came in) and the latest ones.
    const auto dropped = events.begin() + (events.size() > 1 ? 1 : 0);
    release(*dropped);
    events.erase(dropped);
    e.truncated = true;
  }
  if (limits_.max_events_per_message > 0) {
    events.push_back({event.at, event.what, event.dequeue_count, strings_.hold(event.queue),
                      strings_.hold(event.actor), strings_.hold(event.detail)});
  }
}

std::optional<message_history> message_trace::find(std::string_view msg_id, time_ms now) const {
  const auto it = index_.find(msg_id);
  if (it == index_.end() || expired(*it->second, now)) return std::nullopt;
  const entry& e = *it->second;
  message_history h{e.msg_id, e.queue_or_topic->first, e.is_topic, {}, e.truncated};
  h.events.reserve(e.events.size());
  for (const auto& k : e.events) {
    h.events.push_back({k.at, k.what, k.queue->first, k.actor->first, k.dequeue_count, k.detail->first});
  }
  return h;
}

void message_trace::expire(time_ms now) {
  while (!by_last_event_.empty() && expired(by_last_event_.front(), now)) erase(by_last_event_.begin());
}

}  // namespace wharf::core::queue
