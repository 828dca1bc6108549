// The MQTT broker: shards (one per I/O thread), routing, sessions, wills, retained
// messages, $SYS. Threading and durability are explained in docs/ARCHITECTURE.md.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/message.h"
#include "core/retained_store.h"
#include "core/storage.h"
#include "gateway/mqtt/transport/io_pool.h"
#include "gateway/mqtt/transport/stream.h"
#include "session/registry.h"

namespace wharf::gateway {

class shard;

// Broker-wide counters. Each is written with relaxed atomics from any shard.
struct broker_counters {
  std::atomic<std::uint64_t> clients_connected{0};
  std::atomic<std::uint64_t> clients_total{0};
  std::atomic<std::uint64_t> messages_received{0};
  std::atomic<std::uint64_t> messages_sent{0};
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
  // Arms the per-shard timers (keep alive, will delay, session expiry, $SYS).
  void start();
  // Takes an accepted stream. REQUIRES: called on the stream's I/O thread.
  void accept(std::shared_ptr<stream> s);
  // Graceful stop: every live connection gets DISCONNECT 0x8B (v5), wills are published,
  // sessions are persisted, storage is flushed. Blocks until done. The pool still runs.
  void shutdown();

  [[nodiscard]] const broker_counters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::size_t session_count() const { return sessions_.size(); }

 private:
  friend class shard;
  friend class connection;

  // Will-delay and session-expiry deadlines, processed by shard 0's timer.
  void schedule_session_timer(std::int64_t due_unix_ms, const std::shared_ptr<session::session_entry>& entry);
  void run_session_timers(shard& on, std::int64_t now_unix_ms);
  void publish_sys(shard& on, std::int64_t now_unix_ms);
  void erase_expired_retained(shard& on, std::int64_t now_unix_ms);

  const config::config& cfg_;
  core::storage& db_;
  io_pool& pool_;
  session::registry sessions_;
  core::retained_store retained_;
  broker_counters counters_;
  std::vector<std::unique_ptr<shard>> shards_;
  std::chrono::steady_clock::time_point started_at_;
  std::int64_t last_sys_unix_ms_ = 0;             // shard 0's thread only
  std::int64_t last_retained_sweep_unix_ms_ = 0;  // shard 0's thread only

  std::mutex timers_mu_;
  std::multimap<std::int64_t, std::weak_ptr<session::session_entry>> session_timers_;
};

[[nodiscard]] std::int64_t unix_now_ms();

}  // namespace wharf::gateway
