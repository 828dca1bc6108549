// One I/O thread's share of the broker: its connections, its copy of the routing trie,
// and its outboxes to the other shards. Everything here runs on the shard's thread,
// except where a comment says otherwise.
//
// Cross-shard traffic goes in batches: deliveries and route changes for shard k are
// collected in outbox k during a loop turn and handed over with one post at its end,
// or earlier where an acknowledgement depends on them (send_outboxes).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/access_policy.h"
#include "core/storage.h"
#include "core/topic_trie.h"
#include "gateway/mqtt/broker.h"
#include "gateway/mqtt/protocol/connection_machine.h"
#include "gateway/mqtt/queue_tap.h"
#include "session/registry.h"
#include "session/session_store.h"

namespace wharf::gateway {

class connection;

// A routing-trie entry: one session's subscription to one filter (plain, or in a
// shared-subscription group).
struct route_key {
  session::session_entry* session = nullptr;
  std::string group;  // empty: not shared
  friend bool operator==(const route_key&, const route_key&) = default;
};
struct route_key_hash {
  std::size_t operator()(const route_key& k) const noexcept {
    return std::hash<const void*>{}(k.session) ^ (std::hash<std::string>{}(k.group) << 1);
  }
};
struct route_value {
  std::shared_ptr<session::session_entry> entry;  // keeps the entry alive while routed
  session::stored_subscription sub;
  // The topics the ACL withholds from this subscription (null: none). Compiled when it is
  // added, again in every shard when a reload changes the ACL (recheck_routes).
  std::shared_ptr<const auth::withheld_topics> withheld;
};

struct route_change {
  bool add = true;
  std::string filter;  // plain filter (share prefix removed)
  route_key key;
  route_value value;
};

// The trie change that adds `sub` of `entry`, with what the ACL withholds from it.
[[nodiscard]] route_change make_route_change(const std::shared_ptr<session::session_entry>& entry,
                                             const session::stored_subscription& sub,
                                             std::shared_ptr<const auth::withheld_topics> withheld);
// What `policy` withholds from `filter` subscribed by the session `entry` (its client id,
// username and own rules, as the entry holds them now).
[[nodiscard]] std::shared_ptr<const auth::withheld_topics> withheld_from(const auth::access_policy& policy,
                                                                         const session::session_entry& entry,
                                                                         std::string_view filter);

// The broker's parts every shard and its connections share, handed to each shard when it
// is made: what a shard and its connections use of the broker beyond its public interface
// (`owner`), instead of reaching into it.
struct shared_parts {
  broker& owner;
  core::storage& db;
  session::registry& sessions;
  core::retained_store& retained;
  broker_counters& counters;
  admission& admission_control;
  const std::vector<std::unique_ptr<shard>>& shards;  // every shard, by index
};

// What a publish added to the shard's pending storage batch (`added`) and what it hands to
// the queue core (`core_commands`, from the bridge): its acknowledgement waits for both.
struct durable_ops {
  bool added = false;
  std::vector<core::queue::command_body> core_commands;
};

class shard {
 public:
  shard(shared_parts parts, boost::asio::io_context& ioc, int index, std::size_t shard_count);

  [[nodiscard]] int index() const noexcept { return index_; }
  [[nodiscard]] boost::asio::io_context& io() noexcept { return ioc_; }
  [[nodiscard]] broker& owner() noexcept { return parts_.owner; }
  // What a session needs of the broker's shared parts: the client-id index, the retained
  // messages, the store, the counters, the admission of CONNECTs.
  [[nodiscard]] session::registry& sessions() noexcept { return parts_.sessions; }
  [[nodiscard]] core::retained_store& retained() noexcept { return parts_.retained; }
  [[nodiscard]] core::storage& storage() noexcept { return parts_.db; }
  [[nodiscard]] broker_counters& counters() noexcept { return parts_.counters; }
  [[nodiscard]] admission& admission_control() noexcept { return parts_.admission_control; }

  // Puts in force (on this shard's thread, between turns): the users and ACL (`acl_changed`:
  // every route's withheld topics compiled again), the bridge's rules, the mqtt limits.
  void set_access_policy(std::shared_ptr<const auth::access_policy> policy, bool acl_changed);
  void set_queue_tap(std::shared_ptr<const queue_tap> tap) { tap_ = std::move(tap); }
  void set_limits(std::shared_ptr<const config::mqtt_config> limits);
  // After the ACL, or a runtime user's own rules, changed: compiles again what it withholds
  // from each route here.
  void recheck_routes();
  // The queue core the bridge hands commands to. REQUIRES: before the pool runs.
  void attach_queue_core(core::queue::service& queue_core) { queue_core_ = &queue_core; }
  // The users and ACL this shard applies now (replaced by a config reload between turns).
  [[nodiscard]] const std::shared_ptr<const auth::access_policy>& access() const noexcept { return access_; }
  // The mqtt section's limits this shard applies now (replaced by a config reload between
  // turns: a reference is good until the caller returns to the event loop).
  [[nodiscard]] const config::mqtt_config& limits() const noexcept { return *limits_; }
  // The same limits as the protocol's rules read them (mqtt::connection_machine); the
  // object stays in place, its values replaced with limits_.
  [[nodiscard]] const mqtt::connection_limits& protocol_limits() const noexcept { return protocol_limits_; }

  // Routes `m` (published by `publisher_id`) to every matching session. Offline copies
  // go into this shard's pending storage batch; `ops.added` tells the caller to hold its
  // acknowledgement until that batch is durable (run_after_commit).
  void route(const std::shared_ptr<const core::message>& m, durable_ops& ops);
  // Adds to `ops` the queue-core commands of the bridge bindings `m` matches.
  void bridge(const core::message& m, durable_ops& ops);
  // Publishes `client_id`'s will at `now_ms` (its expiry interval, stored relative, becomes
  // absolute): retained store, routing, bridge bindings, and the will_published event.
  // Nobody waits for it.
  void publish_will(core::message will, const std::string& client_id, std::int64_t now_ms);
  // Records a device event in the bridge's events queue (when configured).
  void record_event(const device_event& e);
  // Sends `d` (unacknowledged by a shared-subscription member that left) to another member
  // of its group, if one is left.
  void redispatch_shared(session::session_entry* leaving, session::delivery d);
  // Hands one delivery to the session, wherever it is now.
  void deliver(const std::shared_ptr<session::session_entry>& entry, session::delivery d, durable_ops& ops);

  // The PUBLISH of delivery `d`'s message for subscribers of `version` that know its topic
  // as `topic` (the message's topic less their mount), without subscription identifiers,
  // topic alias or packet identifier of its own: encoded once for every connection here
  // that is sent it (one message at a time: a fan-out reaches a shard's subscribers one
  // after another).
  [[nodiscard]] const mqtt::shared_publish& shared_publish_of(const session::delivery& d, std::string_view topic,
                                                              mqtt::protocol_version version, std::int64_t now_ms);

  // Adds / removes a session's subscription in every shard's trie (here at once, the
  // others at the end of this loop turn). `filter` as subscribed: "$share/g/f" is shared.
  void add_route(const std::shared_ptr<session::session_entry>& entry, const session::stored_subscription& sub,
                 std::shared_ptr<const auth::withheld_topics> withheld);
  void remove_route(session::session_entry* entry, std::string_view filter);
  // Applies a change from another shard (or from load()).
  void apply_route(route_change&& change);
  // Hands the outboxes to the other shards now. Called before a SUBACK, UNSUBACK or
  // CONNACK leaves: each shard runs posted work in order, so a PUBLISH its clients send
  // after seeing that ack is routed with the change already applied.
  void send_outboxes();

  // Storage batching: ops added during this loop turn are committed together.
  core::write_batch& batch() { schedule_flush(); return batch_; }
  // `fn` runs on this shard once this turn's batch is durable; `on_failure`, if given, runs
  // here instead when the commit fails (without it nothing runs: acks are withheld).
  void run_after_commit(std::function<void()> fn, std::function<void()> on_failure = {});
  // Hands `commands` to the queue core together with the rest of this turn's (one post
  // there, one back); `done` runs on this shard with the worst result code once all of them
  // are durable (code::ok when all succeeded). `origin` says who sent them (message trace).
  void submit_to_core(std::vector<core::queue::command_body> commands, std::string_view origin,
                      std::function<void(core::queue::code)> done);
  // Hands this turn's queue-core commands over now (done at the end of every turn anyway).
  void send_core_outbox();
  // Queues a completion behind the batch without adding ops (keeps acks ordered).
  void note_offline_write(const std::shared_ptr<session::session_entry>& entry);

  // Live sessions on this shard.
  void attach(session::session_entry* entry, connection* c) { live_[entry] = c; }
  void detach(session::session_entry* entry, connection* c);
  [[nodiscard]] connection* live(session::session_entry* entry) const;
  std::uint64_t add_connection(connection* c);
  void remove_connection(std::uint64_t id);
  [[nodiscard]] connection* find_connection(std::uint64_t id) const;
  void for_each_connection(const std::function<void(connection&)>& fn);

  // Runs `fn` on shard `target`'s thread (one post; for rare control messages).
  void post_to(int target, std::function<void()> fn);
  // Takeover of a session live on shard `owner_shard` [MQTT-3.1.4-3]: there, its connection
  // of `owner_generation` (if still live) is ended with 0x8E and its events go to the queue
  // core; then `then` runs back on this shard.
  void end_on_owner(int owner_shard, std::shared_ptr<session::session_entry> entry, std::uint64_t owner_generation,
                    std::function<void()> then);

  void start_timer();

 private:
  void change_route(route_change change);
  // False when the ACL withholds `topic` from the subscription `value` (counted).
  bool sends(const route_value& value, std::string_view topic);
  // Picks one member of a shared group for the next message: round robin, connected first.
  route_value* pick_member(const std::string& group_id, const std::vector<route_value*>& members);
  void schedule_flush();
  void flush();  // end of loop turn: outboxes, queue-core commands, then storage
  void receive_deliveries(std::vector<std::pair<std::shared_ptr<session::session_entry>, session::delivery>>&& batch);
  void tick();

  shared_parts parts_;
  core::queue::service* queue_core_ = nullptr;  // the bridge's; null without one
  boost::asio::io_context& ioc_;
  const int index_;
  core::topic_trie<route_key, route_value, route_key_hash> routes_;
  std::unordered_map<session::session_entry*, connection*> live_;
  std::unordered_map<std::uint64_t, connection*> connections_;
  std::uint64_t next_connection_id_ = 1;
  std::unordered_map<std::string, std::uint32_t> share_cursor_;  // round robin per group+filter

  using remote_delivery = std::pair<std::shared_ptr<session::session_entry>, session::delivery>;
  std::vector<std::vector<remote_delivery>> delivery_outbox_;
  std::vector<std::vector<route_change>> route_outbox_;
  bool flush_scheduled_ = false;

  // This turn's commands for the queue core, and who waits for which of them (a count of
  // consecutive commands each).
  struct core_waiter {
    std::size_t commands = 0;
    std::function<void(core::queue::code)> done;
  };
  std::shared_ptr<const queue_tap> tap_;  // the bridge's rules; null: no bridge
  std::shared_ptr<const auth::access_policy> access_;
  std::shared_ptr<const config::mqtt_config> limits_;
  mqtt::connection_limits protocol_limits_;
  std::vector<core::queue::command_body> core_outbox_;
  std::vector<std::string> core_origins_;  // one per command of core_outbox_
  std::vector<core_waiter> core_waiters_;

  // The encodings of the last message sent here (shared_publish_of): one per kind of
  // subscriber (version, with or without packet id, topic, expiry left).
  struct publish_encoding {
    bool v5 = false;
    bool with_packet_id = false;
    std::size_t topic_size = 0;  // the topic is the message's less a mount: its size tells which
    std::optional<std::uint32_t> expiry_left_s;
    mqtt::shared_publish encoded;
  };
  std::shared_ptr<const core::message> encoded_message_;
  std::vector<publish_encoding> encodings_;

  core::write_batch batch_;
  std::vector<std::function<void()>> after_commit_;
  std::vector<std::function<void()>> after_failed_commit_;
  std::vector<std::shared_ptr<session::session_entry>> offline_writes_;

  boost::asio::steady_timer timer_;
};

}  // namespace wharf::gateway
