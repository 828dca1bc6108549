// The MQTT broker: shards (one per I/O thread), routing, sessions, wills, retained
// messages, $SYS. Threading and durability are explained in docs/ARCHITECTURE.md.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "auth/access_policy.h"
#include "auth/http_hook.h"
#include "auth/runtime_users.h"
#include "config/config.h"
#include "core/message.h"
#include "core/retained_store.h"
#include "core/storage.h"
#include "gateway/mqtt/admission.h"
#include "net/io_pool.h"
#include "net/stream.h"
#include "session/registry.h"

namespace wharf::core::queue {
class service;
}

namespace wharf::gateway {

class shard;
struct shared_parts;
class queue_tap;

// Where a message came from or went to, for the counters: the queue core (the bridge's
// topic_to_mqtt), or an MQTT client of one protocol version.
enum class message_protocol : std::uint8_t { queue_core, mqtt_3_1, mqtt_3_1_1, mqtt_5 };
inline constexpr std::array<const char*, 4> message_protocol_names = {"queue", "mqtt3.1", "mqtt3.1.1", "mqtt5"};
// The MQTT protocol level (3, 4, 5) as a message_protocol index.
[[nodiscard]] constexpr std::size_t protocol_index(std::uint8_t mqtt_level) noexcept {
  return mqtt_level >= 3 && mqtt_level <= 5 ? std::size_t{mqtt_level} - 2 : 0;
}

// Broker-wide counters. Each is written with relaxed atomics from any shard.
struct broker_counters {
  using by_qos = std::array<std::atomic<std::uint64_t>, 3>;
  std::atomic<std::uint64_t> clients_connected{0};
  std::atomic<std::uint64_t> clients_total{0};
  // PUBLISHes received (from clients, and from the queue core) and sent, by protocol
  // (message_protocol) and QoS.
  std::array<by_qos, 4> messages_received{};
  std::array<by_qos, 4> messages_sent{};
  std::atomic<std::uint64_t> bytes_received{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> dropped_queue_full{0};     // session queue bound hit
  std::atomic<std::uint64_t> dropped_offline_qos0{0};   // QoS 0 to an offline session
  std::atomic<std::uint64_t> dropped_expired{0};        // message expiry passed before delivery
  std::atomic<std::uint64_t> dropped_too_large{0};      // above the client's maximum packet size
  std::atomic<std::uint64_t> dropped_slow_client{0};    // QoS 0 while max_queued_bytes wait to be sent
  std::atomic<std::uint64_t> dropped_memory_watermark{0};  // QoS 0 to a client with output waiting, memory high
  std::atomic<std::uint64_t> retained_rejected{0};      // retained store full
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> storage_errors{0};
  std::atomic<std::uint64_t> wills_published{0};
  std::atomic<std::uint64_t> sessions_expired{0};
  std::atomic<std::uint64_t> bridge_refused{0};        // a bound queue or topic refused a publish (acked with an error)
  std::atomic<std::uint64_t> bridge_events_failed{0};  // device events the events queue refused
  std::atomic<std::uint64_t> auth_failures{0};         // CONNECTs refused: credentials, anonymous, will ACL
  std::atomic<std::uint64_t> acl_denied_publishes{0};
  std::atomic<std::uint64_t> acl_denied_subscriptions{0};
  std::atomic<std::uint64_t> acl_withheld{0};  // deliveries a granted subscription's ACL rules withheld
  std::atomic<std::uint64_t> connections_refused{0};  // max_connections, max_connection_rate
  std::atomic<std::uint64_t> clients_banned{0};       // CONNECTs refused for flapping
  std::atomic<std::uint64_t> rate_limited{0};         // times a client's reading paused for its rate
  std::atomic<std::uint64_t> auth_unavailable{0};     // CONNECTs refused: the HTTP hook failed or was busy
  std::atomic<std::uint64_t> closes_cut{0};           // closes the broker began that timed out
  auth::http_hook::counters hook;                     // the HTTP hook's requests (auth.http)
};

// One session as the admin API shows it (broker::list_sessions, inspect_session).
struct session_view {
  std::string client_id;
  bool online = false;
  bool persistent = false;             // kept after its connection ends (expiry interval > 0)
  std::uint8_t protocol_version = 4;   // 3, 4 or 5
  std::uint32_t expiry_interval_s = 0;
  std::int64_t expires_at_ms = 0;      // offline: when it ends (unix ms); 0: never, or online
  std::size_t subscription_count = 0;
  std::size_t inflight = 0;            // sent and not yet acknowledged (online only)
  std::size_t queued = 0;              // waiting to be sent: in the window (online) or stored (offline)
  // The username it connected with last (none: anonymous), online or not.
  std::optional<std::string> username;
  // Online only: from where, since when.
  std::string peer;                     // "address:port"
  std::int64_t connected_at_ms = 0;
  std::uint16_t keep_alive_s = 0;
  std::vector<session::stored_subscription> subscriptions;  // inspect_session only
};

// One subscription of one session (broker::list_subscriptions).
struct subscription_view {
  std::string client_id;
  session::stored_subscription subscription;
};

// What an admin request to end a session or a connection came to.
enum class admin_outcome : std::uint8_t {
  done,
  not_found,       // no such session, or (disconnect) not connected
  reconnected,     // delete: the client connected again while its session was being deleted
  storage_failed,  // delete: gone from memory, but erasing its keys failed: it returns at the next start
};

class broker {
 public:
  broker(const config::config& cfg, core::storage& db, net::io_pool& pool);
  ~broker();
  // The tenants and their MQTT users (config `tenants:`, as at start).
  [[nodiscard]] const std::vector<config::tenant_config>& tenants() const noexcept { return cfg_.tenants; }
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  // Loads persisted sessions and retained messages into the shards.
  // REQUIRES: before the io_pool runs. Returns the number of sessions loaded.
  std::size_t load();
  // Connects the bridge: PUBLISHes (and wills, and device events) that `tap` binds go to
  // `queue_core`. REQUIRES: before the pool runs; queue_core outlives the broker's traffic.
  void attach_queue_core(core::queue::service& queue_core, std::shared_ptr<const queue_tap> tap);
  // Replaces the bridge's rules (config reload): each shard takes the new ones at its next
  // turn; a publish is matched against one set or the other, never a mix. Thread-safe.
  // REQUIRES: attach_queue_core was called.
  void replace_queue_tap(std::shared_ptr<const queue_tap> tap);
  // Replaces the users and ACL (config reload). Each shard takes the new ones at its next
  // turn; connections keep their identity, and later checks use the new rules. Thread-safe.
  void replace_access_policy(std::shared_ptr<const auth::access_policy> policy);
  // Replaces the mqtt section's limits (config reload). Each shard takes them at its next
  // turn: checks made per packet or per CONNECT use them from then on; a connection's window
  // and packet size are set when it is made. Thread-safe.
  void replace_limits(const config::config& next);
  // Listener `index`'s settings (anonymous, username_from_cert, connection bounds), for its
  // next CONNECTs: one the config started with (index = its position), or one a reload
  // added or changed. Thread-safe.
  void set_listener(std::size_t index, const config::listener_config& listener);
  [[nodiscard]] std::shared_ptr<const config::listener_config> listener_settings(std::size_t index) const;
  // The users and ACL in force (the last replace_access_policy's). Thread-safe.
  [[nodiscard]] std::shared_ptr<const auth::access_policy> access_policy() const;
  // Checks `password` against `stored` on the password thread (remembering a match in
  // `policy`'s cache under `account`: the username, with the stored hash for a runtime user)
  // and calls `done(matched)` there. Thread-safe.
  void check_password(std::shared_ptr<const auth::access_policy> policy, std::string account,
                      auth::stored_password stored, std::string password, std::function<void(bool matched)> done);
  // The runtime users and roles (admin API), as the queue core applied them; null until
  // attach_runtime_users. Their changes refresh the connected clients they concern.
  void attach_runtime_users(auth::runtime_users& users);
  [[nodiscard]] const auth::runtime_users* runtime_users() const noexcept { return runtime_users_; }
  // Verifies the JSON Web Token `token` with `policy`'s keys on the password thread and
  // calls `done` there with the username it names, or why it is refused. Thread-safe.
  void check_token(std::shared_ptr<const auth::access_policy> policy, std::string token,
                   std::function<void(std::variant<auth::jwt_verifier::verified, std::string>)> done);
  // Asks the HTTP hook (auth.http) about `request` on the hook's thread and calls `done`
  // there; `failed` when no hook is configured. Thread-safe.
  void ask_hook(auth::hook_request request, std::function<void(auth::hook_answer)> done);
  // Publishes `m` to MQTT subscribers on behalf of the queue core (topic_to_mqtt): on one of
  // the shards, as a message of no client. `done(true)` runs (on that shard's thread) once
  // the copies the broker keeps (offline sessions, retained) are durable; `done(false)`
  // when they could not be stored. Thread-safe.
  void publish_from_core(core::message m, std::function<void(bool durable)> done);
  // Arms the per-shard timers (keep alive, will delay, session expiry, $SYS).
  void start();
  // Takes an accepted stream. REQUIRES: called on the stream's I/O thread.
  void accept(std::shared_ptr<net::stream> s);
  // Graceful stop: every live connection gets DISCONNECT 0x8B (v5), wills are published,
  // sessions are persisted, storage is flushed. Blocks until done. The pool still runs.
  void shutdown();

  // ---- admin API (broker_admin.cc). Thread-safe; `done` runs on an I/O thread. ----
  // Sessions sorted by client id (only online or only offline ones when `online` says),
  // from `offset`, at most `limit`; `total` counts all that match.
  // `tenant`: only its clients' ("" the default tenant's).
  void list_sessions(std::optional<bool> online, const std::optional<std::string>& tenant, std::size_t offset,
                     std::size_t limit,
                     std::function<void(std::vector<session_view> page, std::size_t total)> done);
  // Subscriptions of every session (only `client_id`'s when given), sorted by client id
  // and filter, from `offset`, at most `limit`; `total` counts all that match. O(sessions):
  // call it off the I/O threads.
  void list_subscriptions(std::optional<std::string> client_id, const std::optional<std::string>& tenant,
                          std::size_t offset, std::size_t limit,
                          std::function<void(std::vector<subscription_view> page, std::size_t total)> done);
  // Retained messages whose topic matches `filter` (as a subscription would: "#" leaves the
  // broker's `$SYS` topics out), sorted by topic, from `offset`, at most `limit`; `total`
  // counts all that match. O(retained): call it off the I/O threads.
  void list_retained(const std::string& filter, std::size_t offset, std::size_t limit,
                     std::function<void(std::vector<core::message> page, std::size_t total)> done);
  // Seconds since the broker was made.
  [[nodiscard]] std::int64_t uptime_s() const;
  // One session with its subscriptions; nullopt when there is none by that id.
  void inspect_session(std::string client_id, std::function<void(std::optional<session_view>)> done);
  // Ends `client_id`'s connection as the broker (v5: DISCONNECT 0x98 Administrative
  // action); its session goes offline or ends as its expiry interval says, and its will is
  // published as on any connection the broker ends.
  void disconnect_client(std::string client_id, std::function<void(admin_outcome)> done);
  // Deletes `client_id`'s session: its connection, if any, is ended as by
  // disconnect_client, then its subscriptions, stored queue and pending will are discarded.
  // `done(admin_outcome::done)` once the deletion is durable.
  void delete_session(std::string client_id, std::function<void(admin_outcome)> done);

  [[nodiscard]] const broker_counters& counters() const noexcept { return counters_; }
  // Whether resident memory was above mqtt.memory_watermark_bytes at the last check.
  [[nodiscard]] bool over_memory_watermark() const noexcept {
    return over_memory_watermark_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t session_count() const { return sessions_.size(); }
  [[nodiscard]] std::size_t retained_count() const { return retained_.size(); }

  // ---- for the shards (the rest they use is in their shared_parts) ----
  // A session's next will-delay or expiry deadline (an offline session's, set when its
  // connection ends). Thread-safe.
  void schedule_session_timer(std::int64_t due_unix_ms, const std::shared_ptr<session::session_entry>& entry);
  // The broker-wide periodic duties, run by shard 0's timer on its thread: due session
  // timers, expired retained messages, $SYS, the memory watermark.
  void run_housekeeping(shard& on, std::int64_t now_unix_ms);

 private:
  // What each shard is given of the broker (shard.h).
  [[nodiscard]] shared_parts parts_for_shards();
  void run_session_timers(shard& on, std::int64_t now_unix_ms);
  void publish_sys(shard& on, std::int64_t now_unix_ms);
  void erase_expired_retained(shard& on, std::int64_t now_unix_ms);
  // Once a second: resident memory against the watermark (shard 0's thread).
  void check_memory(std::int64_t now_unix_ms);
  // Discards an offline session: subscriptions, stored queue, pending will. On `on`'s thread.
  void discard_offline_session(shard& on, const std::shared_ptr<session::session_entry>& entry,
                               std::function<void(admin_outcome)> done);

  const config::config& cfg_;
  std::atomic<std::uint32_t> next_core_publish_shard_{0};
  core::storage& db_;
  net::io_pool& pool_;
  session::registry sessions_;
  core::retained_store retained_;
  broker_counters counters_;
  admission admission_;
  mutable std::mutex listeners_mu_;
  std::vector<std::shared_ptr<const config::listener_config>> listeners_;  // by listener index
  std::vector<std::unique_ptr<shard>> shards_;
  std::chrono::steady_clock::time_point started_at_;
  std::int64_t last_sys_unix_ms_ = 0;             // shard 0's thread only
  std::int64_t last_retained_sweep_unix_ms_ = 0;  // shard 0's thread only
  std::int64_t last_memory_check_unix_ms_ = 0;    // shard 0's thread only
  std::atomic<std::uint64_t> memory_watermark_bytes_{0};  // mqtt.memory_watermark_bytes, 0 resolved
  std::atomic<bool> over_memory_watermark_{false};

  // PBKDF2 checks of CONNECT passwords, one at a time: a burst of logins with wrong
  // passwords costs one core, not the I/O threads. Stopped by shutdown().
  boost::asio::thread_pool password_checks_{1};
  // The HTTP hook's requests and answers (auth.http): its own thread, so that a slow
  // service never delays a password check, and never an I/O thread. Stopped by shutdown().
  boost::asio::thread_pool hook_requests_{1};
  mutable std::mutex access_mu_;
  std::shared_ptr<const auth::access_policy> access_;  // what the shards have, or will at their next turn
  // Built for access_'s auth.http, again when a reload changes it; null without one.
  std::shared_ptr<auth::http_hook> hook_;  // GUARDED_BY(access_mu_)
  auth::runtime_users* runtime_users_ = nullptr;  // set before the pool runs

  // The hook for `policy`'s auth.http: `current` when that is the same service, else a new
  // one; null without auth.http, or when it cannot be built (logged).
  std::shared_ptr<auth::http_hook> make_hook(const auth::access_policy& policy, std::shared_ptr<auth::http_hook> current);

  std::mutex timers_mu_;
  std::multimap<std::int64_t, std::weak_ptr<session::session_entry>> session_timers_;
};

[[nodiscard]] std::int64_t unix_now_ms();

}  // namespace wharf::gateway
