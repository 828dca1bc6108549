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
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "auth/access_policy.h"
#include "config/config.h"
#include "core/message.h"
#include "core/retained_store.h"
#include "core/storage.h"
#include "gateway/mqtt/admission.h"
#include "gateway/mqtt/transport/io_pool.h"
#include "gateway/mqtt/transport/stream.h"
#include "session/registry.h"

namespace wharf::core::queue {
class service;
}

namespace wharf::gateway {

class shard;
class queue_tap;

// Broker-wide counters. Each is written with relaxed atomics from any shard.
struct broker_counters {
  std::atomic<std::uint64_t> clients_connected{0};
  std::atomic<std::uint64_t> clients_total{0};
  // PUBLISHes received (from clients, and from the queue core) and sent, by QoS.
  std::array<std::atomic<std::uint64_t>, 3> messages_received{};
  std::array<std::atomic<std::uint64_t>, 3> messages_sent{};
  std::atomic<std::uint64_t> bytes_received{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> dropped_queue_full{0};     // session queue bound hit
  std::atomic<std::uint64_t> dropped_offline_qos0{0};   // QoS 0 to an offline session
  std::atomic<std::uint64_t> dropped_expired{0};        // message expiry passed before delivery
  std::atomic<std::uint64_t> dropped_too_large{0};      // above the client's maximum packet size
  std::atomic<std::uint64_t> dropped_slow_client{0};    // QoS 0 while max_queued_bytes wait to be sent
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
  std::atomic<std::uint64_t> connections_refused{0};  // max_connections, max_connection_rate
  std::atomic<std::uint64_t> clients_banned{0};       // CONNECTs refused for flapping
  std::atomic<std::uint64_t> rate_limited{0};         // times a client's reading paused for its rate
};

class broker {
 public:
  broker(const config::config& cfg, core::storage& db, io_pool& pool);
  ~broker();
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
  // The users and ACL in force (the last replace_access_policy's). Thread-safe.
  [[nodiscard]] std::shared_ptr<const auth::access_policy> access_policy() const;
  // Checks `password` against `username`'s stored hash on the password thread (remembering
  // a match in `policy`'s cache) and calls `done(matched)` there. Thread-safe.
  void check_password(std::shared_ptr<const auth::access_policy> policy, std::string username, std::string password,
                      std::function<void(bool matched)> done);
  // Publishes `m` to MQTT subscribers on behalf of the queue core (topic_to_mqtt): on one of
  // the shards, as a message of no client. `done(true)` runs (on that shard's thread) once
  // the copies the broker keeps (offline sessions, retained) are durable; `done(false)`
  // when they could not be stored. Thread-safe.
  void publish_from_core(core::message m, std::function<void(bool durable)> done);
  // Arms the per-shard timers (keep alive, will delay, session expiry, $SYS).
  void start();
  // Takes an accepted stream. REQUIRES: called on the stream's I/O thread.
  void accept(std::shared_ptr<stream> s);
  // Graceful stop: every live connection gets DISCONNECT 0x8B (v5), wills are published,
  // sessions are persisted, storage is flushed. Blocks until done. The pool still runs.
  void shutdown();

  [[nodiscard]] const broker_counters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::size_t session_count() const { return sessions_.size(); }
  [[nodiscard]] std::size_t retained_count() const { return retained_.size(); }

 private:
  friend class shard;
  friend class connection;

  // Will-delay and session-expiry deadlines, processed by shard 0's timer.
  void schedule_session_timer(std::int64_t due_unix_ms, const std::shared_ptr<session::session_entry>& entry);
  void run_session_timers(shard& on, std::int64_t now_unix_ms);
  void publish_sys(shard& on, std::int64_t now_unix_ms);
  void erase_expired_retained(shard& on, std::int64_t now_unix_ms);

  const config::config& cfg_;
  core::queue::service* queue_core_ = nullptr;  // the bridge's; null without one
  std::atomic<std::uint32_t> next_core_publish_shard_{0};
  core::storage& db_;
  io_pool& pool_;
  session::registry sessions_;
  core::retained_store retained_;
  broker_counters counters_;
  admission admission_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::chrono::steady_clock::time_point started_at_;
  std::int64_t last_sys_unix_ms_ = 0;             // shard 0's thread only
  std::int64_t last_retained_sweep_unix_ms_ = 0;  // shard 0's thread only

  // PBKDF2 checks of CONNECT passwords, one at a time: a burst of logins with wrong
  // passwords costs one core, not the I/O threads. Stopped by shutdown().
  boost::asio::thread_pool password_checks_{1};
  mutable std::mutex access_mu_;
  std::shared_ptr<const auth::access_policy> access_;  // what the shards have, or will at their next turn

  std::mutex timers_mu_;
  std::multimap<std::int64_t, std::weak_ptr<session::session_entry>> session_timers_;
};

[[nodiscard]] std::int64_t unix_now_ms();

}  // namespace wharf::gateway
