// The queue core engine's state and implementation class. Internal to core/queue: the
// engine*.cc files share it; everyone else uses engine.h.
//
//   engine.cc          key layout, apply() and the log, body cache, open()
//   engine_queues.cc   queue commands: attributes, send, receive, delete, rewind, redrive
//   engine_expiry.cc   time-based work: retention, time to live, rewind window, dedup keys
//   engine_topics.cc   topics, subscriptions, publish fan-out, HTTP pushes
//   engine_queries.cc  read-only queries and dump()
//   engine_store.cc    storage keys and records, loading the state from storage
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/queue/engine.h"

namespace wharf::core::queue::detail {

// Per-queue message sequence numbers come from one engine-wide counter: unique across
// queues and never reused, so a receipt handle never matches a later message.
using seq_t = std::uint64_t;

enum class message_state : std::uint8_t {
  waiting = 0,   // sent, rewound, dead-lettered or redriven: visible from visible_ms on
  received = 1,  // handed out under `generation`; visible again from visible_ms on
  deleted = 2,   // deleted, kept only for the rewind window
};

// One message's metadata; the body lives in storage ("cb/"), not in memory.
struct message {
  std::uint64_t msg_number = 0;  // msgId = "msg-" + 16 hex digits; shared by DLQ and fan-out copies
  time_ms enqueue_ms = 0;
  time_ms visible_ms = 0;
  time_ms first_dequeue_ms = 0;  // set by the first receive (dequeue_count 0 → 1)
  std::uint32_t dequeue_count = 0;
  // Bumped by every receive and every rewind; a receipt handle deletes only while its
  // generation is the current one and the message is `received`.
  std::uint32_t generation = 0;
  message_state state = message_state::waiting;
  std::string dead_letter_source;  // in a dead-letter queue: the queue it came from
  // The group it was sent with (ordered queues; "" the default group). Kept when the
  // message is dead-lettered, so a redrive puts it back into its group.
  std::string group;
  std::uint32_t body_bytes = 0;  // its body's size, for its tenant's stored bytes
};

struct dedup_entry {
  time_ms first_ms = 0;  // the window runs from the key's first enqueue
  std::uint64_t msg_number = 0;
};

using time_index = std::set<std::pair<time_ms, seq_t>>;

struct queue_state {
  std::uint64_t id = 0;
  std::string name;
  queue_attributes attributes;
  time_ms create_ms = 0;
  time_ms modify_ms = 0;
  // Policy 1: every message with seq ≤ this has had its time to live handled (moved to the
  // dead-letter queue, or left in place because that queue was missing or full).
  seq_t ttl_checked_seq = 0;

  // Messages by seq, which is enqueue order; enqueue times never decrease along it
  // (command times never decrease), so every expiry looks at the front only.
  std::map<seq_t, message> live;     // not deleted
  std::map<seq_t, message> deleted;  // deleted, kept for the rewind window

  // Indexes over `live`, memory only (open() rebuilds them). A message is in exactly one,
  // except in an ordered queue a message behind its group's head, which is in none until it
  // heads the group. `delayed` and `in_flight` may hold messages whose time has already
  // come: receive moves those to `ready` first.
  std::set<seq_t> ready;  // visible, taken in seq order
  time_index delayed;     // waiting, by visible time
  time_index in_flight;   // received, by visible time
  // Ordered queues: the live messages of each group, in seq (send) order; the first is the
  // group's head. Memory only. A group with no live message has no entry.
  std::unordered_map<std::string, std::set<seq_t>> groups;

  std::unordered_map<std::string, dedup_entry> dedup;  // key → first enqueue
  std::set<std::pair<time_ms, std::string>> dedup_by_time;

  std::optional<time_ms> housekeeping_ms;  // this queue's entry in engine_impl::housekeeping_
  std::uint64_t stored_bytes = 0;  // bodies of live and deleted messages, memory only
};

struct topic_state;

struct subscription_state {
  std::uint64_t id = 0;
  topic_state* topic = nullptr;
  std::string name;
  subscription_attributes attributes;
  time_ms create_ms = 0;
  time_ms modify_ms = 0;
  std::set<std::uint64_t> pending_pushes;  // delivery ids
};

struct topic_state {
  std::uint64_t id = 0;
  std::string name;
  topic_attributes attributes;
  time_ms create_ms = 0;
  time_ms modify_ms = 0;
  std::uint64_t msg_count = 0;
  std::map<std::string, subscription_state, std::less<>> subscriptions;  // by name
};

// An HTTP push not yet acknowledged; the body lives in storage ("cpb/").
struct pending_push {
  std::uint64_t subscription_id = 0;
  std::uint64_t msg_number = 0;
  std::vector<std::string> tags;
  std::string routing_key;
  time_ms publish_ms = 0;
  std::uint32_t attempts = 0;
  time_ms due_ms = 0;
};

// Counters that make ids, plus the statistics; persisted together ("cm/counters").
struct counters {
  std::uint64_t next_queue_id = 1;
  std::uint64_t next_topic_id = 1;
  std::uint64_t next_subscription_id = 1;
  std::uint64_t next_msg_number = 1;
  seq_t next_seq = 1;
  std::uint64_t next_delivery_id = 1;
  engine_stats stats;  // applied_index is kept in engine_impl (stored with "cm/applied")
};

// ---- helpers (engine.cc) -----------------------------------------------------------------

// Attribute seconds to internal milliseconds.
[[nodiscard]] constexpr time_ms from_seconds(std::uint64_t seconds) noexcept {
  return static_cast<time_ms>(seconds) * 1000;
}
// Internal milliseconds to the unix seconds CMQ answers with.
[[nodiscard]] constexpr std::int64_t to_seconds(time_ms ms) noexcept { return ms / 1000; }

// Tags count characters, not bytes (UTF-8).
[[nodiscard]] std::size_t utf8_length(std::string_view s) noexcept;

[[nodiscard]] result failure(code value, std::string message);
[[nodiscard]] status invalid(std::string message);

[[nodiscard]] std::string format_queue_id(std::uint64_t id);
[[nodiscard]] std::string format_topic_id(std::uint64_t id);
[[nodiscard]] std::string format_subscription_id(std::uint64_t id);
[[nodiscard]] std::string format_msg_id(std::uint64_t msg_number);

// A receipt handle names one delivery of one message: queue id, seq and generation, as 40
// hex digits.
struct receipt {
  std::uint64_t queue_id = 0;
  seq_t seq = 0;
  std::uint32_t generation = 0;
};
[[nodiscard]] std::string format_receipt_handle(const receipt& r);
[[nodiscard]] std::optional<receipt> parse_receipt_handle(std::string_view handle) noexcept;

// ---- storage layout (engine_store.cc) ----------------------------------------------------

namespace keys {
inline constexpr std::string_view applied = "cm/applied";
inline constexpr std::string_view counters = "cm/counters";
inline constexpr std::string_view queue_prefix = "cq/";
inline constexpr std::string_view message_state_prefix = "cs/";
inline constexpr std::string_view message_body_prefix = "cb/";
inline constexpr std::string_view dedup_prefix = "cd/";
inline constexpr std::string_view topic_prefix = "ct/";
inline constexpr std::string_view subscription_prefix = "cu/";
inline constexpr std::string_view push_prefix = "cp/";
inline constexpr std::string_view push_body_prefix = "cpb/";
inline constexpr std::string_view mqtt_user_prefix = "cau/";  // + username
inline constexpr std::string_view mqtt_role_prefix = "car/";  // + role name

std::string with_ids(std::string_view prefix, std::uint64_t a);
std::string with_ids(std::string_view prefix, std::uint64_t a, std::uint64_t b);
std::string log_entry(std::uint64_t index);
std::string dedup(std::uint64_t queue_id, time_ms first_ms, std::string_view key);
}  // namespace keys

std::string encode_counters(const counters& c);
std::string encode_queue(const queue_state& q);
std::string encode_message(const message& m);
std::string encode_topic(const topic_state& t);
std::string encode_subscription(const subscription_state& s);
std::string encode_push(const pending_push& p);
std::string encode_dedup(std::uint64_t msg_number);
std::string encode_applied(std::uint64_t index, time_ms last_now);
// MQTT users and roles (command_codec.cc: the command's own field encoding).
std::string encode_mqtt_user(const mqtt_user& user);
std::optional<mqtt_user> decode_mqtt_user(std::string_view bytes);
std::string encode_mqtt_role(const mqtt_role& role);
std::optional<mqtt_role> decode_mqtt_role(std::string_view bytes);

// ---- the engine --------------------------------------------------------------------------

class engine_impl final : public engine {
 public:
  engine_impl(storage& store, engine_limits limits);

  // Rebuilds the whole state from storage (engine::open). Throws on a corrupt record.
  void load();

  result apply(const command& cmd, write_batch& batch) override;
  void finish_batch(write_batch& batch) override;
  std::uint64_t applied_index() const override { return applied_index_; }
  void set_entry_index(std::uint64_t index) override;
  void committed(std::uint64_t index) override;

  std::optional<queue_info> queue(std::string_view name, time_ms now) const override;
  std::vector<queue_info> list_queues(std::optional<std::string_view> tenant, std::string_view search_word,
                                      std::size_t offset, std::size_t limit, std::size_t& total,
                                      time_ms now) const override;
  std::optional<topic_info> topic(std::string_view name) const override;
  std::vector<topic_info> list_topics(std::optional<std::string_view> tenant, std::string_view search_word,
                                      std::size_t offset, std::size_t limit, std::size_t& total) const override;
  tenant_usage usage(std::string_view tenant) const override;
  std::vector<std::string> tenants() const override;
  std::optional<subscription_info> subscription(std::string_view topic, std::string_view name) const override;
  std::vector<subscription_info> list_subscriptions(std::string_view topic, std::string_view search_word,
                                                    std::size_t offset, std::size_t limit,
                                                    std::size_t& total) const override;
  bool has_visible(std::string_view queue, time_ms now) const override;
  std::size_t visible_messages(std::string_view queue, time_ms now, std::size_t up_to) const override;
  std::optional<time_ms> next_visible_time(std::string_view queue, time_ms now) const override;
  std::optional<time_ms> next_tick_time() const override;
  std::vector<push_delivery> due_pushes(time_ms now, std::size_t limit,
                                        const std::vector<std::uint64_t>& in_flight) const override;
  std::optional<time_ms> next_push_time() const override;
  engine_stats stats() const override;
  std::string dump() const override;
  void set_observer(message_observer* observer) override { observer_ = observer; }
  const std::map<std::string, mqtt_user, std::less<>>& mqtt_users() const override { return mqtt_users_; }
  const std::map<std::string, mqtt_role, std::less<>>& mqtt_roles() const override { return mqtt_roles_; }
  mqtt_auth_changes take_mqtt_auth_changes() override { return std::exchange(mqtt_auth_changes_, {}); }

 private:
  // ---- commands (one per command type; now_ and batch_ are set by apply) ----
  result on(const create_queue& c);
  result on(const set_queue_attributes& c);
  result on(const delete_queue& c);
  result on(const rewind_queue& c);
  result on(const send_messages& c);
  result on(const receive_messages& c);
  result on(const delete_messages& c);
  result on(const redrive_dead_letters& c);
  result on(const create_topic& c);
  result on(const set_topic_attributes& c);
  result on(const delete_topic& c);
  result on(const publish_messages& c);
  result on(const subscribe& c);
  result on(const set_subscription_attributes& c);
  result on(const clear_subscription_filter_tags& c);
  result on(const unsubscribe& c);
  result on(const push_result& c);
  result on(const tick& c);
  result on(const purge_queue& c);
  result on(const put_mqtt_user& c);
  result on(const delete_mqtt_user& c);
  result on(const put_mqtt_role& c);
  result on(const delete_mqtt_role& c);

  // ---- queues and messages (engine_queues.cc) ----
  queue_state* find_queue(std::string_view name);
  const queue_state* find_queue(std::string_view name) const;
  // Checks merged attributes of queue `queue_name`. The dead-letter queue must exist only
  // when the command names it.
  [[nodiscard]] status validate(const queue_attributes& a, std::string_view queue_name,
                                bool dead_letter_queue_named) const;
  // Enqueues a new message at now_ (sequence number from the counter), visible at visible_ms.
  void enqueue(queue_state& q, std::uint64_t msg_number, std::string_view body, time_ms visible_ms,
               std::string dead_letter_source, std::string group);
  // Moves the live message `seq` of `from` to the end of `to` as a fresh visible message
  // (dead-lettering and redrive); the caller checked that `to` has room.
  void move_message(queue_state& from, seq_t seq, queue_state& to, std::string dead_letter_source);
  [[nodiscard]] bool is_full(const queue_state& q, std::size_t adding = 1) const;
  // The dead-letter queue of `q` when it exists and has room, else nullptr.
  queue_state* dead_letter_target(const queue_state& q);
  // Moves the messages of `q` whose visible time has come from delayed/in_flight to ready.
  void promote_visible(queue_state& q);
  // Puts a live message into the index its state and time call for; in an ordered queue only
  // when it heads its group (the others wait unindexed).
  void index_message(queue_state& q, seq_t seq, const message& m);
  void unindex_message(queue_state& q, seq_t seq, const message& m);
  // Ordered queues (no-ops otherwise): a message becoming live joins its group before it is
  // indexed; one leaving `live` leaves it after it is unindexed, and when it was the head,
  // the next message of the group becomes the head and is indexed.
  void join_group(queue_state& q, seq_t seq, const message& m);
  void leave_group(queue_state& q, seq_t seq, const message& m);
  [[nodiscard]] static bool heads_group(const queue_state& q, seq_t seq, const message& m);
  // Counts a dead-letter that unblocks a group (call before the message leaves `q`).
  void count_dead_letter(const queue_state& q, seq_t seq, const message& m);
  // Removes a live message: memory, indexes and storage.
  void remove_live(queue_state& q, std::map<seq_t, message>::iterator it);
  void remove_deleted(queue_state& q, std::map<seq_t, message>::iterator it);
  // A tenant's stored bytes follow its messages' bodies: added at enqueue, removed with the
  // message (memory only; load() counts them again).
  void stored_added(queue_state& q, std::uint64_t bytes);
  void stored_removed(queue_state& q, std::uint64_t bytes);
  // Why `tenant` may not make one more queue (topics: `topics`) or store `adding` more
  // bytes, or nullopt when it may (counted when refused).
  [[nodiscard]] std::optional<result> over_tenant_count(std::string_view tenant, bool topics);
  [[nodiscard]] std::optional<result> over_tenant_bytes(std::string_view tenant, std::uint64_t adding);
  // The number of queues (or topics) of `tenant`.
  [[nodiscard]] std::size_t tenant_count(std::string_view tenant, bool topics) const;
  void store_message(const queue_state& q, seq_t seq, const message& m);
  // Erases every message and dedup key record of `q` from storage (not from memory).
  void erase_message_records(const queue_state& q);
  // Tells the observer about a message (message_trace.h): `where` is the queue, or the topic
  // for topic events. REQUIRES: observer_ set; callers test it first, so nothing is
  // formatted when nobody observes.
  void report(trace_event::kind what, std::uint64_t msg_number, std::string_view where,
              std::uint32_t dequeue_count = 0, std::string detail = {});
  void report(trace_event::kind what, std::string_view msg_id, std::string_view where,
              std::uint32_t dequeue_count = 0, std::string detail = {});

  // ---- time-based work (engine_expiry.cc) ----
  // Runs whatever of `q`'s retention, time to live, rewind window and dedup window is due
  // at now_. A command calls it first for the queue it names, so it sees that queue as of
  // now_; queues it reaches indirectly (dead-letter queue, fan-out, redrive target) are
  // brought up to date by the next tick, at most a tick interval later.
  void expire(queue_state& q);
  void expire_retention(queue_state& q);
  void expire_time_to_live(queue_state& q);
  void expire_rewind_window(queue_state& q);
  void expire_dedup_keys(queue_state& q);
  // Recomputes when `q` next needs expire() and updates housekeeping_.
  void reschedule(queue_state& q);
  [[nodiscard]] std::optional<time_ms> next_expiry(const queue_state& q) const;

  // ---- topics (engine_topics.cc) ----
  topic_state* find_topic(std::string_view name);
  const topic_state* find_topic(std::string_view name) const;
  // The queue named by a queue endpoint must exist only when the command names it.
  [[nodiscard]] status validate_subscription(const subscription_attributes& a, bool endpoint_named) const;
  void fan_out(topic_state& t, const publish_item& item, std::uint64_t msg_number);
  void remove_subscription(topic_state& t,
                           std::map<std::string, subscription_state, std::less<>>::iterator it);
  void remove_push(std::map<std::uint64_t, pending_push>::iterator it);
  void store_push(std::uint64_t delivery_id, const pending_push& p);
  // The observer's event for a push attempt's outcome. REQUIRES: observer_ set.
  void report_push(const pending_push& p, const push_result& c);

  // ---- storage (engine.cc) ----
  void put(std::string_view key, std::string_view value);
  void erase(std::string_view key);
  void erase_range(std::string_view begin, std::string_view end);
  // Writes a body and keeps it in memory until committed.
  void put_body(std::string key, std::string_view body);
  // A body written by put_body, from memory before its commit, from storage after.
  [[nodiscard]] std::string read_body(const std::string& key) const;
  void counters_changed() { counters_dirty_ = true; }
  void trim_log();

  // ---- loading (engine_store.cc) ----
  void load_queues();
  void load_messages();
  void load_dedup_keys();
  void load_topics_and_subscriptions();
  void load_pushes();
  void load_mqtt_auth();

  storage& store_;
  const engine_limits limits_;

  std::uint64_t applied_index_ = 0;
  bool index_from_log_ = false;  // set_entry_index() numbers the commands, not apply()
  std::uint64_t finished_index_ = 0;  // applied_index_ as of the last finish_batch (or load)
  time_ms last_now_ = 0;  // the latest command time: time never goes back inside the engine
  counters counters_;
  bool counters_dirty_ = false;  // changed since the last finish_batch

  std::map<std::string, queue_state, std::less<>> queues_;  // by name
  std::unordered_map<std::uint64_t, queue_state*> queue_by_id_;
  std::map<std::string, mqtt_user, std::less<>> mqtt_users_;  // by username
  std::map<std::string, mqtt_role, std::less<>> mqtt_roles_;  // by name
  mqtt_auth_changes mqtt_auth_changes_;  // observation only (take_mqtt_auth_changes)
  std::set<std::pair<time_ms, std::uint64_t>> housekeeping_;  // (due, queue id)
  std::map<std::string, std::uint64_t, std::less<>> tenant_bytes_;  // stored bytes by tenant, memory only

  std::map<std::string, topic_state, std::less<>> topics_;  // by name
  std::unordered_map<std::uint64_t, subscription_state*> subscription_by_id_;
  std::map<std::uint64_t, pending_push> pushes_;               // by delivery id
  std::set<std::pair<time_ms, std::uint64_t>> push_schedule_;  // (due, delivery id)

  // Bodies written by apply() and not yet committed, by storage key, with the log index
  // that wrote them (in that order), so committed() can drop them.
  std::unordered_map<std::string, std::string> uncommitted_bodies_;
  std::deque<std::pair<std::uint64_t, std::string>> uncommitted_order_;

  message_observer* observer_ = nullptr;

  // Set for the duration of one apply().
  write_batch* batch_ = nullptr;
  time_ms now_ = 0;
};

}  // namespace wharf::core::queue::detail
