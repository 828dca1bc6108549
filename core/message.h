// An application message as the broker stores and routes it: what a PUBLISH carries,
// independent of the protocol version of its publisher or its subscribers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::core {

struct message {
  std::string topic;
  std::string payload;
  std::uint8_t qos = 0;
  bool retain = false;
  // MQTT 5.0 properties carried through untouched.
  std::optional<std::uint8_t> payload_format_indicator;
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  std::vector<std::pair<std::string, std::string>> user_properties;
  // Absolute expiry, unix milliseconds; 0 = never. The remaining interval is computed at
  // forward time ([MQTT-3.3.2-6]).
  std::int64_t expiry_unix_ms = 0;
  std::int64_t publish_unix_ms = 0;
  std::string publisher_client_id;  // for no-local and for traces

  friend bool operator==(const message&, const message&) = default;
};

// Compact binary encoding for storage; the first byte is the format version (1).
// encode appends to `out`. decode returns false on corrupt, truncated, over-long or
// unknown-version input and never reads out of bounds; on false `out` holds unspecified
// (but valid) values.
void encode_message(const message& m, std::string& out);
[[nodiscard]] bool decode_message(std::string_view bytes, message& out);

}  // namespace wharf::core
