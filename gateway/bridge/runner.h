// The bridge as it runs: its current rules (replaced as a whole by a config reload), the
// broker's copy of them, the core's deliveries to MQTT, and the uplink.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "gateway/bridge/bridge.h"
#include "gateway/bridge/uplink.h"

namespace wharf::gateway::bridge {

class runner {
 public:
  // queue_core and mqtt_broker outlive the runner.
  runner(core::queue::service& queue_core, broker& mqtt_broker);
  ~runner();  // stop()
  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  // Provisions `rules` (queues, topics, mqtt subscriptions) and hands them to the broker.
  // REQUIRES: before the I/O pool runs. Throws std::runtime_error when the core refuses.
  void attach(std::shared_ptr<const bridge> rules);
  // Starts the uplink, if the rules have one. REQUIRES: the I/O pool runs.
  void start();
  // Replaces the rules (SIGHUP): the new ones are provisioned first, and a failure there
  // keeps the old ones (false, logged). The shards switch at their next turn; the uplink
  // restarts only when its settings changed. Connections are not touched.
  bool reload(std::shared_ptr<const bridge> rules);
  // The core's push sender for `mqtt` subscriptions (any thread).
  void deliver(const core::queue::push_delivery& d, std::function<void(bool)> done);
  // Stops the uplink (before the broker and the core stop). Idempotent.
  void stop();
  // What the uplink did since start (over its restarts), and whether one is configured now.
  [[nodiscard]] const uplink_counters& uplink_stats() const noexcept { return uplink_counters_; }
  [[nodiscard]] bool has_uplink() const noexcept { return has_uplink_.load(std::memory_order_relaxed); }

 private:
  void start_uplink_locked();

  core::queue::service& queue_core_;
  broker& broker_;
  std::mutex mu_;  // rules_ and uplink_: reload vs. the core's thread and shutdown
  std::shared_ptr<const bridge> rules_;
  uplink_counters uplink_counters_;  // before uplink_: outlives every uplink that writes it
  std::atomic<bool> has_uplink_{false};
  std::unique_ptr<uplink> uplink_;
};

}  // namespace wharf::gateway::bridge
