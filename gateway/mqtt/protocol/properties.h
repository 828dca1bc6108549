// MQTT 5.0 properties (section 2.2.2). Each packet type allows a subset; the codec
// rejects a property that is not allowed for the packet, or one that appears twice where
// the spec forbids it, with malformed_packet / protocol_error as section 2.2.2.2 says.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wharf::mqtt {

struct user_property {
  std::string name;
  std::string value;
  friend bool operator==(const user_property&, const user_property&) = default;
};

struct properties {
  // PUBLISH / will properties
  std::optional<std::uint8_t> payload_format_indicator;     // 0x01
  std::optional<std::uint32_t> message_expiry_interval;     // 0x02, seconds
  std::optional<std::string> content_type;                  // 0x03
  std::optional<std::string> response_topic;                // 0x08
  std::optional<std::string> correlation_data;              // 0x09, binary
  std::vector<std::uint32_t> subscription_identifiers;      // 0x0B, may repeat in PUBLISH
  // CONNECT / CONNACK / DISCONNECT
  std::optional<std::uint32_t> session_expiry_interval;     // 0x11, seconds
  std::optional<std::string> assigned_client_identifier;    // 0x12
  std::optional<std::uint16_t> server_keep_alive;           // 0x13, seconds
  std::optional<std::string> authentication_method;         // 0x15
  std::optional<std::string> authentication_data;           // 0x16, binary
  std::optional<std::uint8_t> request_problem_information;  // 0x17
  std::optional<std::uint32_t> will_delay_interval;         // 0x18, seconds
  std::optional<std::uint8_t> request_response_information; // 0x19
  std::optional<std::string> response_information;          // 0x1A
  std::optional<std::string> server_reference;              // 0x1C
  std::optional<std::string> reason_string;                 // 0x1F
  std::optional<std::uint16_t> receive_maximum;             // 0x21
  std::optional<std::uint16_t> topic_alias_maximum;         // 0x22
  std::optional<std::uint16_t> topic_alias;                 // 0x23
  std::optional<std::uint8_t> maximum_qos;                  // 0x24
  std::optional<std::uint8_t> retain_available;             // 0x25
  std::vector<user_property> user_properties;               // 0x26, may repeat, order kept
  std::optional<std::uint32_t> maximum_packet_size;         // 0x27
  std::optional<std::uint8_t> wildcard_subscription_available;        // 0x28
  std::optional<std::uint8_t> subscription_identifier_available;      // 0x29
  std::optional<std::uint8_t> shared_subscription_available;          // 0x2A

  friend bool operator==(const properties&, const properties&) = default;
};

}  // namespace wharf::mqtt
