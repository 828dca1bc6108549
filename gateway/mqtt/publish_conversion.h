// The one conversion between MQTT's PUBLISH and core::message, the broker's message: a
// client's PUBLISH (and its will, a PUBLISH to come) becomes a message, and a message becomes
// the PUBLISH each subscriber is sent. Pure: no broker, no clock of its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/message.h"
#include "gateway/mqtt/protocol/packets.h"
#include "session/session_store.h"

namespace wharf::gateway {

// The message of a PUBLISH's (or will's) fields: topic, payload, QoS, retain and the MQTT 5
// properties a message keeps (payload format, content type, response topic, correlation
// data, user properties, message expiry), moved out of `props`. A Message Expiry Interval
// counts from `expiry_from_ms`: the publish time; 0 for a will, whose interval counts from
// when the will is published (MQTT 5.0 3.1.3.2.4), added then. Publish time and publisher
// are the caller's to set.
[[nodiscard]] core::message message_from_publish(std::string topic, std::string payload, mqtt::qos qos, bool retain,
                                                 mqtt::properties& props, std::int64_t expiry_from_ms);

// The Message Expiry Interval `m` is sent with at `now_ms`: the lifetime left, rounded up
// [MQTT-3.3.2-6]; none for a message that does not expire.
[[nodiscard]] std::optional<std::uint32_t> expiry_left_s(const core::message& m, std::int64_t now_ms);

// The PUBLISH a subscriber is sent for delivery `d` of its message, under `topic` (the topic
// as that client knows it): the delivery's QoS, retain flag, packet id and subscription
// identifiers; for MQTT 5 the message's properties, its expiry as the lifetime left at
// `now_ms` [MQTT-3.3.2-6]. No topic alias: that is the connection's own state.
[[nodiscard]] mqtt::publish_packet publish_of_delivery(const session::delivery& d, bool dup, std::string_view topic,
                                                       mqtt::protocol_version version, std::int64_t now_ms);

}  // namespace wharf::gateway
