// The queue core's vocabulary: result codes (CMQ's), attributes, commands and results.
// Commands are the only way state changes (see engine.h); each carries the time it
// happened, so applying the same commands in the same order gives the same state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace wharf::core::queue {

// Unix time in milliseconds, as carried inside a command. Never read from a clock in apply().
using time_ms = std::int64_t;

// Outcome codes, numerically CMQ's (docs/API.md, "Answers and error codes"), so the API layer
// passes them on.
enum class code : int {
  ok = 0,
  invalid_parameter = 4000,
  auth_failed = 4100,          // API layer only
  message_too_large = 4400,
  queue_full = 4410,
  rate_limited = 4420,         // API layer only
  receipt_handle_invalid = 4430,
  not_found = 4440,
  too_many = 4450,             // queues (or topics, subscriptions) at their configured maximum
  already_exists = 4460,
  internal_error = 6000,
  batch_delete_partial = 6010,
  no_message = 7000,
};

// A code with the human-readable message the API returns next to it.
struct status {
  code value = code::ok;
  std::string message;
  [[nodiscard]] bool ok() const noexcept { return value == code::ok; }
};

// ---- attributes -------------------------------------------------------------------------

enum class dead_letter_policy : std::uint8_t {
  max_receive_count = 0,  // dead-letter on the receive after maxReceiveCount receives
  max_time_to_live = 1,   // dead-letter when not deleted maxTimeToLive seconds after enqueue
};

// Queue attributes with CMQ's names and defaults. Ranges are checked by the engine.
struct queue_attributes {
  std::uint64_t max_msg_heap_num = 100000000;     // 1e6..1e9
  std::uint32_t polling_wait_seconds = 0;         // 0..30
  std::uint32_t visibility_timeout = 30;          // 1..43200
  std::uint32_t max_msg_size = 65536;             // 1024..1048576
  std::uint32_t msg_retention_seconds = 345600;   // 60..1296000
  std::uint32_t rewind_seconds = 0;               // 0..1296000, 0 = rewind off
  std::string dead_letter_queue;                  // empty: no dead-letter queue
  dead_letter_policy policy = dead_letter_policy::max_receive_count;
  std::uint32_t max_receive_count = 0;            // policy 0: 1..1000
  std::uint32_t max_time_to_live = 0;             // policy 1: 300..43200, < retention
  std::uint32_t dedup_window_seconds = 300;       // wharf extension: 0..retention; unnamed: min(300, retention)
  // An ordered queue (CMQ's orderedQueue): messages of one group (send_item::group) are
  // delivered in send order, one at a time. Fixed at CreateQueue.
  bool ordered = false;
};

// The attributes a Create/SetQueueAttributes names; absent fields keep their value
// (create: the default).
struct queue_attribute_changes {
  std::optional<std::uint64_t> max_msg_heap_num;
  std::optional<std::uint32_t> polling_wait_seconds;
  std::optional<std::uint32_t> visibility_timeout;
  std::optional<std::uint32_t> max_msg_size;
  std::optional<std::uint32_t> msg_retention_seconds;
  std::optional<std::uint32_t> rewind_seconds;
  std::optional<std::string> dead_letter_queue;
  std::optional<dead_letter_policy> policy;
  std::optional<std::uint32_t> max_receive_count;
  std::optional<std::uint32_t> max_time_to_live;
  std::optional<std::uint32_t> dedup_window_seconds;
  // Create: whether the queue is ordered. Set: allowed only with the queue's own value.
  std::optional<bool> ordered;
};

enum class filter_type : std::uint8_t { tag = 1, routing_key = 2 };

struct topic_attributes {
  std::uint32_t max_msg_size = 65536;  // 1024..1048576
  filter_type filter = filter_type::tag;
};

// mqtt: deliveries go to the MQTT broker's subscribers (the bridge's topic_to_mqtt bindings,
// docs/BRIDGE.md); the endpoint is the MQTT topic template. Only the bridge creates them.
enum class sub_protocol : std::uint8_t { http, queue, mqtt };
enum class notify_strategy : std::uint8_t { backoff_retry, exponential_decay_retry };
enum class notify_format : std::uint8_t { json, simplified };

struct subscription_attributes {
  sub_protocol protocol = sub_protocol::queue;
  std::string endpoint;                      // http: URL; queue: queue name; mqtt: topic template
  notify_strategy strategy = notify_strategy::exponential_decay_retry;
  notify_format format = notify_format::json;
  std::vector<std::string> filter_tags;      // ≤5, each ≤16 chars
  std::vector<std::string> binding_keys;     // ≤5
};

// ---- commands ---------------------------------------------------------------------------

struct create_queue { std::string name; queue_attribute_changes attributes; };
struct set_queue_attributes { std::string name; queue_attribute_changes attributes; };
struct delete_queue { std::string name; };
// Messages enqueued at or after start_time_s (unix seconds) and still inside the queue's
// rewind window become receivable again, in enqueue order.
struct rewind_queue { std::string name; std::int64_t start_time_s = 0; };
// Removes every message of the queue (wharf extension): visible, received (in flight),
// delayed, and those kept only for the rewind window, metadata and bodies alike, so a later
// rewind brings none of them back. result.count is the number of messages removed that were
// not yet deleted (visible + in flight + delayed, as GetQueueAttributes counted them);
// rewind-only ones were consumed already and are not counted. The queue's dedup keys go too:
// a dedup hit answers "your message is in the queue under this id", which no longer holds,
// so a send after the purge with a key used before it is enqueued as a new message.
struct purge_queue { std::string name; };

struct send_item {
  std::string body;
  std::uint32_t delay_seconds = 0;           // 0..3600
  std::optional<std::string> dedup_key;      // wharf extension, see docs/API.md
  // Ordered queues only (msgGroupId), 1..max_group_id_bytes; unnamed: the queue's default group.
  std::optional<std::string> group;
};
inline constexpr std::size_t max_group_id_bytes = 128;
// All items or none: a batch that does not fit fails as a whole.
struct send_messages { std::string queue; std::vector<send_item> items; };

// Takes up to max_messages visible messages (1..16) and makes them invisible for the
// queue's visibility timeout. Answers code::no_message when none is visible.
//
// In an ordered queue only the oldest message of each group (its head) can be visible: the
// next becomes visible once the head is deleted, dead-lettered or expired; a head whose
// visibility timeout ends is visible again, before anything behind it. One receive may take
// the heads of several groups, so groups are consumed in parallel.
struct receive_messages { std::string queue; std::uint32_t max_messages = 1; };
struct delete_messages { std::string queue; std::vector<std::string> receipt_handles; };

// Moves up to max_messages dead letters of `dead_letter_queue` back to the queues they
// came from, with their dequeue count reset (wharf extension). Empty source_queue: every
// source; otherwise only letters that came from it.
struct redrive_dead_letters {
  std::string dead_letter_queue;
  std::string source_queue;
  std::uint32_t max_messages = 1000;
};

struct create_topic { std::string name; topic_attributes attributes; };
struct set_topic_attributes { std::string name; std::optional<std::uint32_t> max_msg_size; };
struct delete_topic { std::string name; };

struct publish_item {
  std::string body;
  std::vector<std::string> tags;   // ≤5, each ≤16 chars
  std::string routing_key;         // ≤64 bytes, ≤15 dots
};
struct publish_messages { std::string topic; std::vector<publish_item> items; };

struct subscribe { std::string topic; std::string subscription; subscription_attributes attributes; };
struct set_subscription_attributes {
  std::string topic;
  std::string subscription;
  std::optional<notify_strategy> strategy;
  std::optional<notify_format> format;
  std::optional<std::vector<std::string>> filter_tags;
  std::optional<std::vector<std::string>> binding_keys;
};
struct clear_subscription_filter_tags { std::string topic; std::string subscription; };
struct unsubscribe { std::string topic; std::string subscription; };

// The result of one HTTP push attempt (reported by the push sender). On failure the
// delivery is retried after retry_delay_ms, chosen by the caller from the subscription's
// strategy and attempt count (push_retry.h) so that apply() needs no randomness; when
// give_up is set the delivery is dropped (counted).
struct push_result {
  std::uint64_t delivery_id = 0;
  bool success = false;
  bool give_up = false;
  std::int64_t retry_delay_ms = 0;
};

// Periodic housekeeping at `now`: retention expiry, dead-lettering by time to live,
// dedup-window pruning, trimming deleted messages past the rewind window. Idempotent.
struct tick {};

// ---- MQTT users and roles (the runtime store, docs/CONFIG.md "auth") ----------------------
// Kept by the queue core so that they are durable and replicated like everything else; the
// MQTT side reads them (auth/runtime_users.h). What a hash or a topic means is checked by
// the API layer before the command is made; the engine bounds sizes and keeps references
// whole (a user's roles exist; a role held by a user is not deleted).

enum class rule_action : std::uint8_t { publish = 0, subscribe = 1, all = 2 };
struct access_rule {
  bool allow = true;
  rule_action action = rule_action::all;
  std::string topic;  // a topic filter; %c and %u stand for the client id and username
  friend bool operator==(const access_rule&, const access_rule&) = default;
};
struct mqtt_user {
  std::string password_hash;        // as `wharf passwd` prints it; "": no password login
  std::vector<std::string> roles;   // their rules follow the user's own, in this order
  std::vector<access_rule> rules;   // tried first
  friend bool operator==(const mqtt_user&, const mqtt_user&) = default;
};
struct mqtt_role {
  std::vector<access_rule> rules;
  friend bool operator==(const mqtt_role&, const mqtt_role&) = default;
};
// Creates or replaces the whole user / role.
struct put_mqtt_user { std::string username; mqtt_user user; };
struct delete_mqtt_user { std::string username; };
struct put_mqtt_role { std::string name; mqtt_role role; };
struct delete_mqtt_role { std::string name; };

using command_body = std::variant<create_queue, set_queue_attributes, delete_queue, rewind_queue,
                                  send_messages, receive_messages, delete_messages,
                                  redrive_dead_letters, create_topic, set_topic_attributes,
                                  delete_topic, publish_messages, subscribe,
                                  set_subscription_attributes, clear_subscription_filter_tags,
                                  unsubscribe, push_result, tick, purge_queue, put_mqtt_user,
                                  delete_mqtt_user, put_mqtt_role, delete_mqtt_role>;

struct command {
  time_ms now = 0;  // when it happened; the only time apply() knows
  command_body body;
};

// ---- results ----------------------------------------------------------------------------

struct received_message {
  std::string msg_id;
  std::string receipt_handle;
  std::string body;
  std::int64_t enqueue_time_s = 0;       // CMQ answers times in unix seconds
  std::int64_t first_dequeue_time_s = 0;
  std::int64_t next_visible_time_s = 0;
  std::uint32_t dequeue_count = 0;
  std::string group;  // ordered queues: the message's group ("" for the default group)
};

struct item_error {
  code value = code::ok;
  std::string message;
  std::string receipt_handle;  // delete: the handle that failed
};

// What apply() answers. `status` is the whole command's outcome; the other fields are
// filled by the commands they belong to.
struct result {
  status outcome;
  std::string id;                         // create_queue / create_topic / subscribe: the new id
  std::vector<std::string> msg_ids;       // send / publish, in item order
  std::vector<received_message> messages; // receive
  std::vector<item_error> errors;         // delete with code::batch_delete_partial
  std::uint64_t count = 0;                // redrive: messages moved; rewind: messages made receivable;
                                          // purge: messages removed (see purge_queue)
};

}  // namespace wharf::core::queue
