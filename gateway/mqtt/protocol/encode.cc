// Encoding of MQTT control packets, 3.1 / 3.1.1 / 5.0. encode() and encoded_size() run
// the same body writer (once counting, once appending), so they always agree.
#include <variant>

#include "gateway/mqtt/protocol/codec.h"
#include "gateway/mqtt/protocol/properties_codec.h"
#include "gateway/mqtt/protocol/wire.h"

namespace wharf::mqtt {
namespace {

using wire::property_scope;
using wire::writer;

bool is_v5(protocol_version version) noexcept { return version == protocol_version::v5; }

std::uint8_t type_bits(packet_type type) noexcept {
  return static_cast<std::uint8_t>(static_cast<std::uint8_t>(type) << 4);
}

// The CONNACK return code of 3.1/3.1.1 for a 5.0 reason code (mapping in packets.h).
std::uint8_t connack_return_code(reason_code reason) noexcept {
  switch (reason) {
    case reason_code::success: return 0;
    case reason_code::unsupported_protocol_version: return 1;
    case reason_code::client_identifier_not_valid: return 2;
    case reason_code::server_unavailable:
    case reason_code::server_busy: return 3;
    case reason_code::bad_user_name_or_password: return 4;
    case reason_code::not_authorized:
    case reason_code::banned: return 5;
    default: return 3;  // no closer 3.1.1 code: "server unavailable"
  }
}

// The SUBACK return code of 3.1/3.1.1: granted QoS, or 0x80 for any failure.
std::uint8_t suback_return_code(reason_code reason) noexcept {
  switch (reason) {
    case reason_code::success:
    case reason_code::granted_qos_1:
    case reason_code::granted_qos_2: return static_cast<std::uint8_t>(reason);
    default: return 0x80;
  }
}

std::uint8_t first_byte(const connect_packet&) { return type_bits(packet_type::connect); }
std::uint8_t first_byte(const connack_packet&) { return type_bits(packet_type::connack); }
std::uint8_t first_byte(const publish_packet& p) {
  return type_bits(packet_type::publish) | (p.dup ? 0x08 : 0) |
         static_cast<std::uint8_t>(static_cast<std::uint8_t>(p.qos) << 1) | (p.retain ? 0x01 : 0);
}
std::uint8_t first_byte(const ack_packet& p) {
  WHARF_MQTT_ASSERT(p.type == packet_type::puback || p.type == packet_type::pubrec ||
                    p.type == packet_type::pubrel || p.type == packet_type::pubcomp);
  return type_bits(p.type) | (p.type == packet_type::pubrel ? 0x02 : 0);
}
std::uint8_t first_byte(const subscribe_packet&) { return type_bits(packet_type::subscribe) | 0x02; }
std::uint8_t first_byte(const suback_packet&) { return type_bits(packet_type::suback); }
std::uint8_t first_byte(const unsubscribe_packet&) {
  return type_bits(packet_type::unsubscribe) | 0x02;
}
std::uint8_t first_byte(const unsuback_packet&) { return type_bits(packet_type::unsuback); }
std::uint8_t first_byte(const pingreq_packet&) { return type_bits(packet_type::pingreq); }
std::uint8_t first_byte(const pingresp_packet&) { return type_bits(packet_type::pingresp); }
std::uint8_t first_byte(const disconnect_packet&) { return type_bits(packet_type::disconnect); }
std::uint8_t first_byte(const auth_packet&) { return type_bits(packet_type::auth); }

void write_body(writer& out, const connect_packet& p, protocol_version version) {
  const bool v5 = is_v5(version);
  out.binary(version == protocol_version::v3_1 ? "MQIsdp" : "MQTT");
  out.u8(static_cast<std::uint8_t>(version));
  std::uint8_t flags = p.clean_start ? 0x02 : 0;
  if (p.will) {
    flags |= 0x04;
    flags |= static_cast<std::uint8_t>(static_cast<std::uint8_t>(p.will->qos) << 3);
    if (p.will->retain) flags |= 0x20;
  }
  if (p.password) flags |= 0x40;
  if (p.username) flags |= 0x80;
  out.u8(flags);
  out.u16(p.keep_alive_s);
  if (v5) wire::write_properties(out, property_scope::connect, p.props);
  out.binary(p.client_id);
  if (p.will) {
    if (v5) wire::write_properties(out, property_scope::will, p.will->props);
    out.binary(p.will->topic);
    out.binary(p.will->payload);
  }
  if (p.username) out.binary(*p.username);
  if (p.password) out.binary(*p.password);
}

void write_body(writer& out, const connack_packet& p, protocol_version version) {
  out.u8(p.session_present ? 0x01 : 0x00);
  if (is_v5(version)) {
    out.u8(static_cast<std::uint8_t>(p.reason));
    wire::write_properties(out, property_scope::connack, p.props);
  } else {
    out.u8(connack_return_code(p.reason));
  }
}

void write_body(writer& out, const publish_packet& p, protocol_version version) {
  out.binary(p.topic);
  if (p.qos != qos::at_most_once) out.u16(p.packet_id);
  if (is_v5(version)) wire::write_properties(out, property_scope::publish, p.props);
  out.raw(p.payload);
}

property_scope ack_scope(packet_type type) noexcept {
  switch (type) {
    case packet_type::pubrec: return property_scope::pubrec;
    case packet_type::pubrel: return property_scope::pubrel;
    case packet_type::pubcomp: return property_scope::pubcomp;
    default: return property_scope::puback;
  }
}

// 5.0 acknowledgements use the shortest form that keeps their meaning (3.4.2.1).
void write_body(writer& out, const ack_packet& p, protocol_version version) {
  out.u16(p.packet_id);
  if (!is_v5(version)) return;
  const property_scope scope = ack_scope(p.type);
  const bool no_props = wire::properties_empty(scope, p.props);
  if (no_props && p.reason == reason_code::success) return;
  out.u8(static_cast<std::uint8_t>(p.reason));
  if (!no_props) wire::write_properties(out, scope, p.props);
}

void write_body(writer& out, const subscribe_packet& p, protocol_version version) {
  const bool v5 = is_v5(version);
  out.u16(p.packet_id);
  if (v5) wire::write_properties(out, property_scope::subscribe, p.props);
  for (const auto& request : p.subscriptions) {
    out.binary(request.filter);
    const auto& o = request.options;
    std::uint8_t options = static_cast<std::uint8_t>(o.max_qos) & 0x03;
    if (v5) {
      if (o.no_local) options |= 0x04;
      if (o.retain_as_published) options |= 0x08;
      options |= static_cast<std::uint8_t>((o.retain_handling & 0x03) << 4);
    }
    out.u8(options);
  }
}

void write_body(writer& out, const suback_packet& p, protocol_version version) {
  const bool v5 = is_v5(version);
  out.u16(p.packet_id);
  if (v5) wire::write_properties(out, property_scope::suback, p.props);
  for (const reason_code reason : p.reasons) {
    out.u8(v5 ? static_cast<std::uint8_t>(reason) : suback_return_code(reason));
  }
}

void write_body(writer& out, const unsubscribe_packet& p, protocol_version version) {
  out.u16(p.packet_id);
  if (is_v5(version)) wire::write_properties(out, property_scope::unsubscribe, p.props);
  for (const auto& filter : p.filters) out.binary(filter);
}

void write_body(writer& out, const unsuback_packet& p, protocol_version version) {
  out.u16(p.packet_id);
  if (!is_v5(version)) return;
  wire::write_properties(out, property_scope::unsuback, p.props);
  for (const reason_code reason : p.reasons) out.u8(static_cast<std::uint8_t>(reason));
}

void write_body(writer&, const pingreq_packet&, protocol_version) {}
void write_body(writer&, const pingresp_packet&, protocol_version) {}

// 3.14.2.1 / 3.14.2.2.1: Remaining Length 0 for a normal disconnection without
// properties, and no Property Length when there are no properties.
void write_body(writer& out, const disconnect_packet& p, protocol_version version) {
  if (!is_v5(version)) return;
  const bool no_props = wire::properties_empty(property_scope::disconnect, p.props);
  if (no_props && p.reason == reason_code::success) return;
  out.u8(static_cast<std::uint8_t>(p.reason));
  if (!no_props) wire::write_properties(out, property_scope::disconnect, p.props);
}

// 3.15.2.1: Remaining Length 0 for Success without properties.
void write_body(writer& out, const auth_packet& p, protocol_version version) {
  WHARF_MQTT_ASSERT(is_v5(version));  // AUTH does not exist before 5.0
  if (p.reason == reason_code::success &&
      wire::properties_empty(property_scope::auth, p.props)) {
    return;
  }
  out.u8(static_cast<std::uint8_t>(p.reason));
  wire::write_properties(out, property_scope::auth, p.props);
}

// One packet of a known type: the variant's alternatives and a PUBLISH passed on its own
// (no packet variant made of it, so no copy of its payload) share these.
template <class Packet>
std::size_t body_size(const Packet& p, protocol_version version) {
  writer counter(nullptr);
  write_body(counter, p, version);
  WHARF_MQTT_ASSERT(counter.size() <= wire::varint_max);
  return counter.size();
}

std::size_t size_with_header(std::size_t body) {
  return 1 + wire::varint_size(static_cast<std::uint32_t>(body)) + body;
}

// Appends `p`; returns the size of its fixed header.
template <class Packet>
std::size_t encode_typed(const Packet& p, protocol_version version, std::vector<std::uint8_t>& out) {
  const std::size_t body = body_size(p, version);
  out.reserve(out.size() + size_with_header(body));
  writer w(&out);
  w.u8(first_byte(p));
  w.varint(static_cast<std::uint32_t>(body));
  write_body(w, p, version);
  return size_with_header(body) - body;
}

}  // namespace

void encode(const packet& p, protocol_version version, std::vector<std::uint8_t>& out) {
  std::visit([&](const auto& typed) { (void)encode_typed(typed, version, out); }, p);
}

void encode(const publish_packet& p, protocol_version version, std::vector<std::uint8_t>& out) {
  (void)encode_typed(p, version, out);
}

shared_publish encode_shared(const publish_packet& p, protocol_version version) {
  auto bytes = std::make_shared<std::vector<std::uint8_t>>();
  const std::size_t header = encode_typed(p, version, *bytes);
  // The packet identifier follows the topic name (a two-byte length, then its bytes).
  const std::size_t packet_id_at = p.qos == qos::at_most_once ? 0 : header + 2 + p.topic.size();
  return {std::move(bytes), packet_id_at};
}

std::size_t encoded_size(const packet& p, protocol_version version) {
  return std::visit([&](const auto& typed) { return size_with_header(body_size(typed, version)); }, p);
}

std::size_t encoded_size(const publish_packet& p, protocol_version version) {
  return size_with_header(body_size(p, version));
}

}  // namespace wharf::mqtt
