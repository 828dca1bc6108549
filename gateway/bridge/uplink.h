// The uplink: wharf as a client of a remote MQTT broker (Paho MQTT C++ async client), in
// the manner of Mosquitto's bridge, with store-and-forward.
//
// Up (direction out): local publishes that match an out topic are put into the uplink's
// core queue by the bridge bindings (durably, before the local publisher's ack). One worker
// thread takes them from the queue in batches, in order, while connected; publishes each
// on the remote topic; and deletes the batch once the remote acknowledged it. While the
// remote is down nothing is taken, so the queue holds them (bounded, surviving restarts)
// and they go up in order on reconnect. A batch cut off by a disconnect is sent again
// after reconnecting (at least once).
//
// Down (direction in): the uplink subscribes the remote filters and publishes what arrives
// to local subscribers (retained and offline copies durable before the remote gets its
// PUBACK). Such messages are not bridged again, so they never go back up; on MQTT 5 the
// remote subscriptions are No Local, so the remote does not echo ours back either.
#pragma once

#include <cstdint>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.h"

namespace wharf::core::queue {
class service;
}

namespace wharf::gateway {
class broker;
}

namespace wharf::gateway::bridge {

// The visibility timeout of the uplink's queue: how long a batch taken from it stays
// invisible. After a restart the worker first waits for the batch that was in flight to
// become visible again, so that it goes up before anything newer (order kept).
constexpr std::uint32_t uplink_visibility_timeout_s = 10;

// What the uplinks did, for /metrics: kept by the runner across uplink restarts (a reload
// that changes its settings), written by the uplink's threads, read from any.
struct uplink_counters {
  std::atomic<bool> connected{false};
  std::atomic<std::uint64_t> connects{0};
  std::atomic<std::uint64_t> connect_failures{0};
  std::atomic<std::uint64_t> sent{0};      // messages the remote acknowledged
  std::atomic<std::uint64_t> received{0};  // messages from the remote published here
  std::atomic<std::uint64_t> dropped{0};   // queued messages no out topic maps any more
};

class uplink {
 public:
  // REQUIRES: the bridge provisioned cfg.queue; queue_core, mqtt_broker and counters
  // outlive this.
  uplink(config::uplink_config cfg, core::queue::service& queue_core, broker& mqtt_broker, uplink_counters& counters);
  ~uplink();  // stop()
  uplink(const uplink&) = delete;
  uplink& operator=(const uplink&) = delete;

  // Starts the worker thread (connects, then forwards).
  void start();
  // Disconnects and joins the worker, and logs what the uplink did. What was not sent stays
  // in the queue. Idempotent.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The remote topic of a local message going up, or nullopt when no out topic maps it.
[[nodiscard]] std::optional<std::pair<std::string, std::uint8_t>> remote_topic_for(const config::uplink_config& cfg,
                                                                                   std::string_view local_topic);
// The local topic of a remote message coming down, or nullopt when no in topic maps it.
[[nodiscard]] std::optional<std::string> local_topic_for(const config::uplink_config& cfg,
                                                         std::string_view remote_topic);

}  // namespace wharf::gateway::bridge
