// MQTT control packets as plain values. One struct per packet type; the acknowledgement
// packets PUBACK, PUBREC, PUBREL and PUBCOMP share `ack_packet`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "gateway/mqtt/protocol/properties.h"
#include "gateway/mqtt/protocol/types.h"

namespace wharf::mqtt {

struct will_message {
  std::string topic;
  std::string payload;  // binary
  mqtt::qos qos = qos::at_most_once;
  bool retain = false;
  properties props;  // v5 will properties (delay, expiry, format, content type, ...)
  friend bool operator==(const will_message&, const will_message&) = default;
};

struct connect_packet {
  protocol_version version = protocol_version::v3_1_1;
  std::string protocol_name;  // "MQTT", or "MQIsdp" for 3.1
  bool clean_start = true;    // "clean session" before 5.0
  std::uint16_t keep_alive_s = 0;
  std::string client_id;
  std::optional<will_message> will;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary
  properties props;
  friend bool operator==(const connect_packet&, const connect_packet&) = default;
};

struct connack_packet {
  bool session_present = false;
  // v5 reason code. Encoding for 3.1/3.1.1 maps it to the return codes 0..5
  // (unsupported_protocol_version -> 1, client_identifier_not_valid -> 2,
  // server_unavailable/busy -> 3, bad_user_name_or_password -> 4, not_authorized/banned -> 5,
  // anything else that is an error -> 3).
  reason_code reason = reason_code::success;
  properties props;
  friend bool operator==(const connack_packet&, const connack_packet&) = default;
};

struct publish_packet {
  bool dup = false;
  mqtt::qos qos = qos::at_most_once;
  bool retain = false;
  std::string topic;             // may be empty in v5 when a topic alias is used
  std::uint16_t packet_id = 0;   // present only for QoS 1 and 2
  properties props;
  std::string payload;           // binary
  friend bool operator==(const publish_packet&, const publish_packet&) = default;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP.
struct ack_packet {
  packet_type type = packet_type::puback;
  std::uint16_t packet_id = 0;
  reason_code reason = reason_code::success;
  properties props;
  friend bool operator==(const ack_packet&, const ack_packet&) = default;
};

struct subscribe_options {
  mqtt::qos max_qos = qos::at_most_once;
  bool no_local = false;            // v5
  bool retain_as_published = false; // v5
  std::uint8_t retain_handling = 0; // v5: 0 send on subscribe, 1 only if new, 2 never
  friend bool operator==(const subscribe_options&, const subscribe_options&) = default;
};

struct subscription_request {
  std::string filter;
  subscribe_options options;
  friend bool operator==(const subscription_request&, const subscription_request&) = default;
};

struct subscribe_packet {
  std::uint16_t packet_id = 0;
  std::vector<subscription_request> subscriptions;
  properties props;  // subscription identifier, user properties
  friend bool operator==(const subscribe_packet&, const subscribe_packet&) = default;
};

struct suback_packet {
  std::uint16_t packet_id = 0;
  // One per requested filter: granted_qos_0/1/2 or an error (3.1.1 encodes any error as 0x80).
  std::vector<reason_code> reasons;
  properties props;
  friend bool operator==(const suback_packet&, const suback_packet&) = default;
};

struct unsubscribe_packet {
  std::uint16_t packet_id = 0;
  std::vector<std::string> filters;
  properties props;
  friend bool operator==(const unsubscribe_packet&, const unsubscribe_packet&) = default;
};

struct unsuback_packet {
  std::uint16_t packet_id = 0;
  std::vector<reason_code> reasons;  // v5 only; empty payload before 5.0
  properties props;
  friend bool operator==(const unsuback_packet&, const unsuback_packet&) = default;
};

struct pingreq_packet { friend bool operator==(const pingreq_packet&, const pingreq_packet&) = default; };
struct pingresp_packet { friend bool operator==(const pingresp_packet&, const pingresp_packet&) = default; };

struct disconnect_packet {
  reason_code reason = reason_code::success;
  properties props;
  friend bool operator==(const disconnect_packet&, const disconnect_packet&) = default;
};

struct auth_packet {
  reason_code reason = reason_code::success;
  properties props;
  friend bool operator==(const auth_packet&, const auth_packet&) = default;
};

using packet = std::variant<connect_packet, connack_packet, publish_packet, ack_packet,
                            subscribe_packet, suback_packet, unsubscribe_packet, unsuback_packet,
                            pingreq_packet, pingresp_packet, disconnect_packet, auth_packet>;

}  // namespace wharf::mqtt
