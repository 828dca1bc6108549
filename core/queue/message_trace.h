// Message trace (CMQ's "message trace"): for one msgId, what happened to it — enqueued by
// whom, each receive, deletion, dead-lettering, redrive, expiry, purge, queue deletion; for
// a topic message its publish and each delivery to a subscription.
//
// An observation of the engine, not part of its state: kept in memory only, bounded, lost
// on restart, never in the log or in engine::dump(). The engine reports events through
// message_observer while apply() runs; queue::service adds who sent the command (the
// caller's origin) and records them in a message_trace.
//
// Threading: one owner (queue::service's thread), like the engine.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/queue/types.h"
#include "core/string_map.h"

namespace wharf::core::queue {

struct trace_event {
  enum class kind : std::uint8_t {
    enqueued,        // sent to `queue`; detail: the delay, if any
    deduplicated,    // a send with a dedup key in its window: answered with this id, nothing enqueued
    received,        // handed to `actor`; dequeue_count is the count after this receive
    deleted,         // deleted by `actor` with a current receipt handle
    rewound,         // made receivable again by a rewind of `queue`
    dead_lettered,   // moved from `queue` to the dead-letter queue named in detail
    redriven,        // moved from the dead-letter queue `queue` back to the queue named in detail
    expired,         // removed from `queue` by its retention (msgRetentionSeconds)
    purged,          // removed by a purge of `queue`
    queue_deleted,   // removed with `queue`
    published,       // published to the topic `queue`
    delivered,       // a queue subscription's copy enqueued in `queue` (same msgId); detail: subscription
    not_delivered,   // a queue subscription's copy refused (its queue missing or full); detail says which
    push_succeeded,  // an http or mqtt subscription's delivery succeeded; detail: subscription, endpoint
    push_failed,     // one attempt failed, retried later; detail: subscription, attempt
    push_given_up,   // the subscription's retry policy ran out; the delivery is dropped
  };

  time_ms at = 0;           // the command's time (unix ms)
  kind what = kind::enqueued;
  std::string queue;        // where it happened: the queue, or the topic for published and push_*
  std::string actor;        // who sent the command (the service caller's origin); empty: housekeeping
  std::uint32_t dequeue_count = 0;  // the message's dequeue count after the event; 0 for topic events
  std::string detail;       // human-readable particulars (see kind)
};

[[nodiscard]] std::string_view to_string(trace_event::kind what) noexcept;

struct message_history {
  std::string msg_id;
  std::string queue_or_topic;  // where it first appeared
  bool is_topic = false;       // published to a topic (else sent to a queue)
  std::vector<trace_event> events;  // in the order they happened
  // Events were dropped from the middle (beyond max_events_per_message): the first one (how
  // the message came in) and the latest ones are kept, so its current fate always shows.
  bool truncated = false;
};

// The engine's side: told each event while apply() runs, after the change is made. Pure
// observation — nothing it does changes a result or a storage write. `event.actor` is
// empty (the engine does not know who sent a command).
class message_observer {
 public:
  virtual ~message_observer() = default;
  virtual void observe(std::string_view msg_id, trace_event event) = 0;
};

struct trace_limits {
  // A message's history is dropped this long after its last event. Default: 1 hour.
  std::chrono::milliseconds retention{std::chrono::hours(1)};
  // Histories kept at most; beyond, those with the oldest last event go first (counted in
  // evicted()). Default: 100000.
  std::size_t max_messages = 100000;
  // Events kept per message; beyond, the oldest but the first are dropped (`truncated`).
  // Default: 64.
  std::size_t max_events_per_message = 64;
};

// The histories, by msgId. Events arrive with non-decreasing times (command times), so the
// history touched least recently is also the one whose last event is oldest: one list in
// that order serves both time-based expiry and eviction by count, each from its front.
//
// Memory: a queue name, a command's origin and a detail repeat across thousands of events,
// so each distinct string is held once (counted) and an event stores pointers to it: a
// send-receive-delete history costs about 420 bytes of RSS instead of about 900
// (docs/PERFORMANCE.md).
class message_trace {
 public:
  explicit message_trace(trace_limits limits);

  // Appends `event` to msg_id's history, starting one if there is none.
  void record(std::string_view msg_id, trace_event event);
  // The history of msg_id, unless none was recorded or it expired by `now`.
  [[nodiscard]] std::optional<message_history> find(std::string_view msg_id, time_ms now) const;
  // Drops the histories whose last event is more than the retention before `now`.
  void expire(time_ms now);

  [[nodiscard]] std::size_t size() const noexcept { return index_.size(); }
  // Histories dropped because max_messages were traced (not those that expired).
  [[nodiscard]] std::uint64_t evicted() const noexcept { return evicted_; }

 private:
  // Each distinct string once, with the number of references the histories hold to it.
  class string_pool {
   public:
    // A pool entry: the string and its count (the pointer stays valid until its release).
    using held = std::pair<const std::string, std::size_t>*;
    [[nodiscard]] held hold(std::string_view s);
    void release(held h);

   private:
    string_map<std::size_t> counts_;
  };
  using held = string_pool::held;

  // A trace_event as kept: its strings in the pool.
  struct kept_event {
    time_ms at = 0;
    trace_event::kind what = trace_event::kind::enqueued;
    std::uint32_t dequeue_count = 0;
    held queue = nullptr;
    held actor = nullptr;
    held detail = nullptr;
  };
  struct entry {
    std::string msg_id;
    held queue_or_topic = nullptr;
    bool is_topic = false;
    bool truncated = false;
    time_ms last_event_ms = 0;
    std::vector<kept_event> events;
  };
  using entries = std::list<entry>;

  [[nodiscard]] bool expired(const entry& e, time_ms now) const noexcept;
  void release(const kept_event& e);
  void erase(entries::iterator it);

  const trace_limits limits_;
  string_pool strings_;
  entries by_last_event_;  // oldest last event first
  std::unordered_map<std::string_view, entries::iterator> index_;  // keys view entry::msg_id
  std::uint64_t evicted_ = 0;
};

}  // namespace wharf::core::queue
