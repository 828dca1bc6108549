// The queue core's deterministic state machine: queues, topics and subscriptions with CMQ
// semantics, persisted in RocksDB under the "c" key prefixes (docs/ARCHITECTURE.md).
//
// Every change is a `command` (types.h) applied in log order by apply(). apply() reads no
// clock and no randomness: time is command.now, ids come from counters in the state, retry
// delays come inside push_result. Applying the same commands to an empty store therefore
// gives the same state, in memory and on disk; replication puts a Raft log under this.
//
// Durability: apply() changes memory at once and appends the matching storage operations,
// plus the command itself (the log entry), to the caller's write_batch; finish_batch()
// appends the applied index and the id counters once for all the commands of the batch.
// The caller commits the batch (group commit) and answers its commands only after the
// commit: nothing is acknowledged before it is durable.
//
// Threading: one owner. Every method, queries included, runs on the thread that owns the
// engine (queue::service's executor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/queue/message_trace.h"
#include "core/queue/tenant.h"
#include "core/queue/types.h"
#include "core/storage.h"

namespace wharf::core::queue {

// Limits of the core as a whole (config `queue:`).
struct engine_limits {
  std::size_t max_mqtt_users = 1000000;  // put_mqtt_user of a new user beyond → 4450. Default: 1000000.
  std::size_t max_mqtt_roles = 10000;    // put_mqtt_role of a new role beyond → 4450. Default: 10000.
  std::size_t max_queues = 10000;         // CreateQueue beyond → code::too_many (4450). Default: 10000.
  std::size_t max_topics = 10000;         // CreateTopic beyond → 4450. Default: 10000.
  std::size_t max_subscriptions_per_topic = 100;  // Subscribe beyond → 4450. Default: 100.
  // Commands kept in the persisted log ("cl/" keys) behind the applied index; older entries
  // are trimmed (the materialized state is the snapshot). 0 keeps all (tests). Default: 100000.
  std::uint64_t log_retain_entries = 100000;
  // Whether apply() writes the "cl/" log at all: not when a replicated log (the Raft log)
  // keeps the commands. Default: true.
  bool keep_command_log = true;
  // Quotas of named tenants (config `tenants:`); a tenant not here has none of its own.
  std::map<std::string, tenant_quota, std::less<>> tenant_quotas;
};

// What a tenant holds in the queue core (engine::usage), against its quota.
struct tenant_usage {
  std::size_t queues = 0;
  std::size_t topics = 0;
  std::uint64_t stored_bytes = 0;  // bodies of its messages not yet removed (rewindable ones too)
};

// Counts of one queue at a moment (GetQueueAttributes).
struct queue_counts {
  std::uint64_t active = 0;    // visible now
  std::uint64_t inactive = 0;  // received, invisible until their visibility timeout
  std::uint64_t delayed = 0;   // sent with a delay that has not passed
  std::uint64_t rewindable = 0;  // deleted but kept for the rewind window (rewindMsgNum)
  std::int64_t min_msg_time_s = 0;  // enqueue time of the oldest message not deleted; 0 if none
};

struct queue_info {
  std::string id;
  std::string name;
  queue_attributes attributes;
  std::int64_t create_time_s = 0;
  std::int64_t last_modify_time_s = 0;
  queue_counts counts;
};

struct topic_info {
  std::string id;
  std::string name;
  topic_attributes attributes;
  std::int64_t create_time_s = 0;
  std::int64_t last_modify_time_s = 0;
  std::uint64_t msg_count = 0;  // messages published (CMQ's msgCount)
};

struct subscription_info {
  std::string id;
  std::string topic;
  std::string name;
  subscription_attributes attributes;
  std::int64_t create_time_s = 0;
  std::int64_t last_modify_time_s = 0;
  std::uint64_t pending_pushes = 0;  // http: deliveries not yet acknowledged by the endpoint
};

// One push to make (protocol http subscriptions: an HTTP request; mqtt: a publish to MQTT).
struct push_delivery {
  std::uint64_t delivery_id = 0;
  std::string topic;
  std::string subscription;
  std::string endpoint;
  sub_protocol protocol = sub_protocol::http;
  notify_format format = notify_format::json;
  notify_strategy strategy = notify_strategy::exponential_decay_retry;
  std::string msg_id;
  std::string body;
  std::vector<std::string> tags;
  std::string routing_key;
  std::int64_t publish_time_s = 0;
  std::uint32_t attempts = 0;  // failed attempts so far
  time_ms due = 0;
};

// What changed among the MQTT users and roles since the last take_mqtt_auth_changes().
struct mqtt_auth_changes {
  bool reloaded = false;  // everything may have: the state was loaded (startup, a snapshot)
  std::set<std::string> users;
  std::set<std::string> roles;
  [[nodiscard]] bool empty() const noexcept { return !reloaded && users.empty() && roles.empty(); }
};

struct engine_stats {
  std::uint64_t applied_index = 0;
  std::uint64_t messages_expired = 0;        // removed by retention
  std::uint64_t messages_dead_lettered = 0;
  std::uint64_t publish_queue_full = 0;      // topic → queue subscription deliveries refused (queue full)
  std::uint64_t pushes_given_up = 0;
  std::uint64_t dedup_hits = 0;
  // Dead-lettered heads of a group in an ordered queue: each let the rest of its group go on.
  std::uint64_t group_heads_dead_lettered = 0;
  // Requests refused by a tenant's quota (queues, topics, stored bytes) and copies of a
  // publish a queue did not take for its tenant's stored-bytes quota.
  std::uint64_t tenant_quota_refusals = 0;
};

class engine {
 public:
  // Loads the persisted state from `store` (empty store: empty state).
  // Throws std::runtime_error on a corrupt record (startup only).
  static std::unique_ptr<engine> open(storage& store, engine_limits limits = {});
  virtual ~engine() = default;

  // Applies `cmd` as log entry applied_index()+1. Changes memory and appends the storage
  // operations (state, the log entry) to `batch`. Never throws for bad input: a bad command
  // is a result with a non-zero code and no change.
  [[nodiscard]] virtual result apply(const command& cmd, write_batch& batch) = 0;
  // Under a replicated log: the commands applied next belong to the log's entry `index`
  // (one entry may carry several commands; an entry that carries none moves the index too),
  // and apply() no longer numbers them itself. applied_index() is `index` from now on.
  // REQUIRES: index > applied_index().
  virtual void set_entry_index(std::uint64_t index) = 0;
  // Appends the applied index (with the latest command time) and, when they changed, the id
  // counters, unless nothing was applied since the last call. Once per batch rather than
  // per command: a group commit holds many commands and only the last value of these keys
  // counts, while the batch is durable as a whole.
  // REQUIRES: called after the last apply() into a batch and before that batch is committed
  // (otherwise the stored applied index lags the stored log and state).
  virtual void finish_batch(write_batch& batch) = 0;
  [[nodiscard]] virtual std::uint64_t applied_index() const = 0;
  // Entries up to `index` are durable. Until then apply() keeps the bodies it wrote in
  // memory (a receive in the same group commit reads them there); this releases them.
  virtual void committed(std::uint64_t index) = 0;

  // ---- queries: read-only, answered from memory ----
  [[nodiscard]] virtual std::optional<queue_info> queue(std::string_view name, time_ms now) const = 0;
  // Names containing search_word (all when empty), sorted by name, paged by offset/limit;
  // total is the number matching before paging.
  // `tenant`: only that tenant's names ("" the default tenant's; nullopt every tenant's),
  // with `search_word` matched against the name within the tenant.
  [[nodiscard]] virtual std::vector<queue_info> list_queues(std::optional<std::string_view> tenant,
                                                            std::string_view search_word, std::size_t offset,
                                                            std::size_t limit, std::size_t& total,
                                                            time_ms now) const = 0;
  [[nodiscard]] virtual std::optional<topic_info> topic(std::string_view name) const = 0;
  [[nodiscard]] virtual std::vector<topic_info> list_topics(std::optional<std::string_view> tenant,
                                                            std::string_view search_word, std::size_t offset,
                                                            std::size_t limit, std::size_t& total) const = 0;
  // What `tenant` ("" the default tenant) holds.
  [[nodiscard]] virtual tenant_usage usage(std::string_view tenant) const = 0;
  // The tenants holding a queue or a topic, "" (the default tenant) first, then by name.
  [[nodiscard]] virtual std::vector<std::string> tenants() const = 0;
  [[nodiscard]] virtual std::optional<subscription_info> subscription(std::string_view topic,
                                                                      std::string_view name) const = 0;
  [[nodiscard]] virtual std::vector<subscription_info> list_subscriptions(std::string_view topic,
                                                                          std::string_view search_word,
                                                                          std::size_t offset, std::size_t limit,
                                                                          std::size_t& total) const = 0;

  // Long polling support: whether `queue` has a message visible at `now`, and the earliest
  // time after `now` at which one becomes visible (a delay or a visibility timeout ending),
  // if any.
  [[nodiscard]] virtual bool has_visible(std::string_view queue, time_ms now) const = 0;
  // How many messages of `queue` are visible at `now`, counting at most `up_to` (cheap for
  // small `up_to`: the service asks how many waiting receives a queue can serve).
  [[nodiscard]] virtual std::size_t visible_messages(std::string_view queue, time_ms now, std::size_t up_to) const = 0;
  [[nodiscard]] virtual std::optional<time_ms> next_visible_time(std::string_view queue, time_ms now) const = 0;
  // The earliest time a tick would change something (retention, time to live), if any.
  [[nodiscard]] virtual std::optional<time_ms> next_tick_time() const = 0;

  // HTTP pushes due at `now`, oldest first, at most `limit`, skipping ids in `in_flight`
  // (sorted). A delivery stays pending until a push_result says success or give_up.
  [[nodiscard]] virtual std::vector<push_delivery> due_pushes(time_ms now, std::size_t limit,
                                                              const std::vector<std::uint64_t>& in_flight) const = 0;
  [[nodiscard]] virtual std::optional<time_ms> next_push_time() const = 0;

  [[nodiscard]] virtual engine_stats stats() const = 0;

  // Where apply() reports what it does to each message (message trace); nullptr, the
  // default, reports nothing. Not owned; it must outlive its use here. Observation only:
  // results, storage writes and dump() are the same with or without one.
  virtual void set_observer(message_observer* observer) = 0;

  // The MQTT users and roles (the runtime store), by name.
  [[nodiscard]] virtual const std::map<std::string, mqtt_user, std::less<>>& mqtt_users() const = 0;
  [[nodiscard]] virtual const std::map<std::string, mqtt_role, std::less<>>& mqtt_roles() const = 0;
  // The users and roles that changed since the last call (every one after a load), for
  // whoever mirrors them (the MQTT side). Observation only, like set_observer.
  [[nodiscard]] virtual mqtt_auth_changes take_mqtt_auth_changes() = 0;

  // A canonical text dump of the whole in-memory state (queues, messages with all fields,
  // topics, subscriptions, pushes, dedup keys, counters). Two engines that applied the
  // same log have equal dumps. For tests.
  [[nodiscard]] virtual std::string dump() const = 0;
};

// Encoding of a command as a log entry (stable binary format, versioned by its first byte).
[[nodiscard]] std::string encode_command(const command& cmd);
// std::nullopt when `bytes` is not a valid encoding.
[[nodiscard]] std::optional<command> decode_command(std::string_view bytes);

// A replicated log entry of the queue core: the commands the leader took in one turn, each
// with its origin (who asked; the message trace records it on every replica, nothing else
// reads it). Several commands per entry: the Raft overhead is paid per turn, not per command.
struct origin_command {
  std::string origin;
  command cmd;
};
[[nodiscard]] std::string encode_command_batch(const std::vector<origin_command>& commands);
// std::nullopt when `bytes` is not a valid encoding.
[[nodiscard]] std::optional<std::vector<origin_command>> decode_command_batch(std::string_view bytes);

// A result as bytes, for a member that relays a request to the leader and the answer back.
[[nodiscard]] std::string encode_result(const result& r);
// std::nullopt when `bytes` is not a valid encoding.
[[nodiscard]] std::optional<result> decode_result(std::string_view bytes);

// Storage key prefixes owned by the queue core (MQTT uses s/ u/ q/ i/ r/).
inline constexpr std::string_view log_key_prefix = "cl/";  // + be64 index → encode_command
// The engine's whole state, what a Raft snapshot carries: the keys in [begin, end).
inline constexpr std::string_view state_keys_begin = "c";
inline constexpr std::string_view state_keys_end = "d";
// The applied index a stored state is at (`state`: a frozen view of the store); 0 when the
// store holds none. Throws std::runtime_error on a corrupt record.
[[nodiscard]] std::uint64_t stored_applied_index(storage_view& state);

}  // namespace wharf::core::queue
