// The broker's side of the MQTT ↔ queue-core bridge: what it hands to the queue core
// besides delivering to its own subscribers. The bridge (gateway/bridge) implements it; the
// broker only batches the commands and waits for them (docs/BRIDGE.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/message.h"
#include "core/queue/types.h"

namespace wharf::gateway {

// Something that happened to a device, recorded in the bridge's events queue.
struct device_event {
  enum class kind : std::uint8_t { connected, disconnected, session_expired, will_published };
  kind what = kind::connected;
  std::string client_id;
  std::int64_t time_unix_ms = 0;
  // connected
  std::string remote_address;
  std::uint8_t protocol_version = 0;  // 3, 4 or 5 (the CONNECT's protocol level)
  bool clean_start = false;
  bool session_present = false;
  std::uint32_t session_expiry_s = 0;
  std::uint16_t keep_alive_s = 0;
  // disconnected: the MQTT reason code, when the connection ended with one (a dropped
  // socket has none), and the reason in words
  std::optional<std::uint8_t> reason_code;
  std::string reason;
  // will_published
  const core::message* will = nullptr;
};

// Thread-safe: every shard calls it from its own thread.
class queue_tap {
 public:
  virtual ~queue_tap() = default;
  // Appends the commands that carry `m` to the queues and topics bound to its topic; none
  // when no binding matches.
  virtual void commands_for(const core::message& m, std::vector<core::queue::command_body>& out) const = 0;
  // The command that records `e`; nullopt when events are not configured.
  [[nodiscard]] virtual std::optional<core::queue::command_body> event_command(const device_event& e) const = 0;
};

}  // namespace wharf::gateway
