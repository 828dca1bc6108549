// Which CONNECTs may go on (overload protection, docs/CONFIG.md): connections at once, over
// all MQTT listeners (mqtt.max_connections) and per listener (its max_connections), new
// connections a second per listener (its max_connection_rate), and client ids that connect
// too often (mqtt.flapping: more than max_connects in window_s is banned for ban_s).
// Thread-safe; touched once per CONNECT and once per connection end, never per message.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"

namespace wharf::gateway {

class admission {
 public:
  enum class verdict { admitted, too_many_connections, rate_exceeded, banned };

  // `listeners[i]` is listener i; set_listener adds more.
  admission(const config::mqtt_config& mqtt, const std::vector<config::listener_config>& listeners);

  // Decides a CONNECT of `client_id` on listener `listener` at `now_ms`. An admitted one
  // counts against the connection limits until released(listener). Every attempt counts
  // towards the client id's flapping window, admitted or not.
  [[nodiscard]] verdict admit(std::size_t listener, std::string_view client_id, std::int64_t now_ms);
  void released(std::size_t listener);
  // New bounds from a config reload: mqtt.max_connections and mqtt.flapping. Connections
  // already admitted stay; the counts go on.
  void update(const config::mqtt_config& mqtt);
  // Listener `index`'s max_connections and max_connection_rate: a listener a reload started,
  // or new bounds for a running one (its count goes on).
  void set_listener(std::size_t index, const config::listener_config& listener);

 private:
  struct per_listener {
    std::atomic<std::size_t> max_connections{0};  // 0: only the global bound
    std::atomic<std::uint32_t> max_rate{0};       // new connections a second, 0: no limit
    std::atomic<std::size_t> connections{0};
    std::mutex rate_mu;
    double tokens = 0;
    std::int64_t refilled_ms = 0;
  };
  struct flapping_record {
    std::int64_t window_start_ms = 0;
    std::uint32_t connects = 0;
    std::int64_t banned_until_ms = 0;
  };

  [[nodiscard]] bool take_rate_token(per_listener& l, std::int64_t now_ms);
  [[nodiscard]] std::shared_ptr<per_listener> listener(std::size_t index) const;
  // Records a connect of `client_id`; true when it is banned now.
  [[nodiscard]] bool flapping(std::string_view client_id, std::int64_t now_ms);

  std::atomic<std::size_t> max_connections_;
  std::atomic<std::size_t> connections_{0};
  mutable std::mutex listeners_mu_;  // the vector; each record is shared and lock-free
  std::vector<std::shared_ptr<per_listener>> listeners_;
  std::mutex flapping_mu_;
  config::flapping_config flapping_limits_;  // guarded by flapping_mu_
  std::unordered_map<std::string, flapping_record> flapping_;
};

}  // namespace wharf::gateway
