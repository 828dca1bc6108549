// Decoding of MQTT control packets, 3.1 / 3.1.1 / 5.0. Spec statements are cited as
// [MQTT-x.y.z-n]; where 3.1.1 and 5.0 number a rule differently both are given.
#include <algorithm>
#include <initializer_list>
#include <string_view>

#include "core/topic.h"
#include "gateway/mqtt/protocol/codec.h"
#include "gateway/mqtt/protocol/properties_codec.h"
#include "gateway/mqtt/protocol/wire.h"

namespace wharf::mqtt {
namespace {

using wire::property_scope;
using wire::reader;

constexpr reason_code malformed = reason_code::malformed_packet;
constexpr reason_code protocol_error = reason_code::protocol_error;

bool is_v5(protocol_version version) noexcept { return version == protocol_version::v5; }

bool one_of(std::uint8_t value, std::initializer_list<std::uint8_t> allowed) noexcept {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

// The reason codes section 2.4 lists for each v5 packet that carries one. A value outside
// the list is treated as a protocol error (the spec names no code for it).
bool reason_allowed(packet_type type, std::uint8_t code) noexcept {
  switch (type) {
    case packet_type::connack:
      return one_of(code, {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                           0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F});
    case packet_type::puback:
    case packet_type::pubrec:
      return one_of(code, {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99});
    case packet_type::pubrel:
    case packet_type::pubcomp:
      return one_of(code, {0x00, 0x92});
    case packet_type::suback:
      return one_of(code, {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2});
    case packet_type::unsuback:
      return one_of(code, {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91});
    case packet_type::disconnect:
      return one_of(code, {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E,
                           0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B,
                           0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2});
    case packet_type::auth:
      return one_of(code, {0x00, 0x18, 0x19});
    default:
      return false;
  }
}

bool read_reason(reader& in, packet_type type, reason_code& out) {
  std::uint8_t code = 0;
  if (!in.u8(code)) return false;
  if (!reason_allowed(type, code)) return in.fail(protocol_error, "reason code not allowed");
  out = static_cast<reason_code>(code);
  return true;
}

// [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-3] (5.0): SUBSCRIBE, UNSUBSCRIBE and PUBLISH with
// QoS > 0 MUST carry a non-zero Packet Identifier. An acknowledgement echoes one, so 0 is
// never valid there either. A rule violation rather than a wire-format one: protocol_error.
bool read_packet_id(reader& in, std::uint16_t& id) {
  if (!in.u16(id)) return false;
  if (id == 0) return in.fail(protocol_error, "packet identifier 0");
  return true;
}

// Reserved flag bits of the fixed header: [MQTT-2.2.2-1] (3.1.1) / [MQTT-2.1.3-1] (5.0).
// PUBLISH flags are checked by decode_publish.
bool flags_valid(packet_type type, std::uint8_t flags) noexcept {
  switch (type) {
    case packet_type::publish:
      return true;
    case packet_type::pubrel:
    case packet_type::subscribe:
    case packet_type::unsubscribe:
      return flags == 0b0010;
    default:
      return flags == 0;
  }
}

bool decode_connect(reader& in, decode_result& result, connect_packet& p) {
  if (!in.utf8(p.protocol_name)) return false;
  std::uint8_t level = 0;
  if (!in.u8(level)) return false;
  result.protocol_level = level;
  const bool mqtt_name = p.protocol_name == "MQTT";
  const bool mqisdp_name = p.protocol_name == "MQIsdp";
  // [MQTT-3.1.2-1] an unknown Protocol Name is a protocol violation.
  if (!mqtt_name && !mqisdp_name) return in.fail(protocol_error, "unknown protocol name");
  // [MQTT-3.1.2-2] unsupported level: the caller answers 0x84 / return code 1.
  if (!(mqtt_name && (level == 4 || level == 5)) && !(mqisdp_name && level == 3)) {
    return in.fail(reason_code::unsupported_protocol_version, "unsupported protocol level");
  }
  p.version = static_cast<protocol_version>(level);
  const bool v5 = is_v5(p.version);

  std::uint8_t flags = 0;
  if (!in.u8(flags)) return false;
  // [MQTT-3.1.2-3] the reserved flag MUST be 0, else a Malformed Packet.
  if ((flags & 0x01) != 0) return in.fail(malformed, "CONNECT reserved flag set");
  p.clean_start = (flags & 0x02) != 0;
  const bool will_flag = (flags & 0x04) != 0;
  const std::uint8_t will_qos = (flags >> 3) & 0x03;
  const bool will_retain = (flags & 0x20) != 0;
  const bool password_flag = (flags & 0x40) != 0;
  const bool username_flag = (flags & 0x80) != 0;
  // [MQTT-3.1.2-13]/[MQTT-3.1.2-15] (3.1.1), [MQTT-3.1.2-11]/[MQTT-3.1.2-13] (5.0): without
  // a will, Will QoS and Will Retain MUST be 0.
  if (!will_flag && (will_qos != 0 || will_retain)) {
    return in.fail(malformed, "will QoS or retain set without will flag");
  }
  // [MQTT-3.1.2-14] (3.1.1) / [MQTT-3.1.2-12] (5.0): Will QoS 3 is malformed.
  if (will_qos == 3) return in.fail(malformed, "will QoS 3");
  // [MQTT-3.1.2-22] (3.1.1): no password without a user name. 5.0 allows it.
  if (!v5 && password_flag && !username_flag) {
    return in.fail(protocol_error, "password without user name");
  }
  if (!in.u16(p.keep_alive_s)) return false;
  if (v5) {
    if (!wire::read_properties(in, property_scope::connect, p.props)) return false;
    // "It is a Protocol Error to include Authentication Data if there is no Authentication
    // Method" (3.1.2.11.10).
    if (p.props.authentication_data && !p.props.authentication_method) {
      return in.fail(protocol_error, "authentication data without method");
    }
  }
  // [MQTT-3.1.3-4] (3.1.1) / [MQTT-3.1.3-3] (5.0): the Client Identifier is a UTF-8 string.
  // Its length and content rules are the broker's to apply (CONNACK 0x85 / return code 2).
  if (!in.utf8(p.client_id)) return false;
  if (will_flag) {
    will_message will;
    will.qos = static_cast<mqtt::qos>(will_qos);
    will.retain = will_retain;
    if (v5 && !wire::read_properties(in, property_scope::will, will.props)) return false;
    if (!in.utf8(will.topic) || !in.binary(will.payload)) return false;
    // A will is published to its topic, so it must be a valid topic name ([MQTT-4.7.3-1]).
    if (!core::is_valid_topic_name(will.topic)) {
      return in.fail(reason_code::topic_name_invalid, "invalid will topic");
    }
    p.will = std::move(will);
  }
  if (username_flag) {
    p.username.emplace();
    if (!in.utf8(*p.username)) return false;
  }
  if (password_flag) {
    p.password.emplace();
    if (!in.binary(*p.password)) return false;
  }
  return true;
}

// 3.1.1 CONNACK return codes (table 3.1) as 5.0 reason codes.
bool connack_code_from_v3(std::uint8_t code, reason_code& out) noexcept {
  switch (code) {
    case 0: out = reason_code::success; return true;
    case 1: out = reason_code::unsupported_protocol_version; return true;
    case 2: out = reason_code::client_identifier_not_valid; return true;
    case 3: out = reason_code::server_unavailable; return true;
    case 4: out = reason_code::bad_user_name_or_password; return true;
    case 5: out = reason_code::not_authorized; return true;
    default: return false;
  }
}

bool decode_connack(reader& in, protocol_version version, connack_packet& p) {
  std::uint8_t ack_flags = 0;
  if (!in.u8(ack_flags)) return false;
  // [MQTT-3.2.2-1] (5.0): bits 7-1 are reserved and MUST be 0.
  if ((ack_flags & 0xFE) != 0) return in.fail(malformed, "CONNACK reserved flags set");
  p.session_present = (ack_flags & 0x01) != 0;
  if (is_v5(version)) {
    if (!read_reason(in, packet_type::connack, p.reason)) return false;
    if (!wire::read_properties(in, property_scope::connack, p.props)) return false;
  } else {
    std::uint8_t code = 0;
    if (!in.u8(code)) return false;
    // Return codes 6-255 are reserved (3.2.2.3).
    if (!connack_code_from_v3(code, p.reason)) return in.fail(malformed, "reserved return code");
  }
  // [MQTT-3.2.2-4] (3.1.1) / [MQTT-3.2.2-6] (5.0): a refusal has Session Present 0.
  if (p.session_present && p.reason != reason_code::success) {
    return in.fail(protocol_error, "session present on a refused connection");
  }
  return true;
}

bool decode_publish(reader& in, std::uint8_t flags, protocol_version version, publish_packet& p) {
  const std::uint8_t qos_bits = (flags >> 1) & 0x03;
  // [MQTT-3.3.1-4]: a PUBLISH packet MUST NOT have both QoS bits set.
  if (qos_bits == 3) return in.fail(malformed, "PUBLISH QoS 3");
  p.dup = (flags & 0x08) != 0;
  p.qos = static_cast<mqtt::qos>(qos_bits);
  p.retain = (flags & 0x01) != 0;
  // [MQTT-3.3.1-2]: the DUP flag MUST be 0 for QoS 0 messages.
  if (p.dup && p.qos == qos::at_most_once) return in.fail(malformed, "DUP set on QoS 0");
  if (!in.utf8(p.topic)) return false;
  if (p.qos != qos::at_most_once && !read_packet_id(in, p.packet_id)) return false;
  if (is_v5(version)) {
    if (!wire::read_properties(in, property_scope::publish, p.props)) return false;
    // 3.3.2.3.4: a Topic Alias of 0 is not permitted; DISCONNECT 0x94.
    if (p.props.topic_alias == std::uint16_t{0}) {
      return in.fail(reason_code::topic_alias_invalid, "topic alias 0");
    }
  }
  if (p.topic.empty()) {
    // 3.3.2.1 (5.0): "It is a Protocol Error if the Topic Name is zero length and there is
    // no Topic Alias." Before 5.0 topic names are at least one character ([MQTT-4.7.3-1]).
    if (!is_v5(version)) return in.fail(reason_code::topic_name_invalid, "empty topic name");
    if (!p.props.topic_alias) return in.fail(protocol_error, "empty topic without topic alias");
  } else if (!core::is_valid_topic_name(p.topic)) {
    // [MQTT-3.3.2-2]: the Topic Name MUST NOT contain wildcard characters.
    return in.fail(reason_code::topic_name_invalid, "invalid topic name");
  }
  in.rest(p.payload);
  return true;
}

property_scope ack_scope(packet_type type) noexcept {
  switch (type) {
    case packet_type::pubrec: return property_scope::pubrec;
    case packet_type::pubrel: return property_scope::pubrel;
    case packet_type::pubcomp: return property_scope::pubcomp;
    default: return property_scope::puback;
  }
}

// PUBACK, PUBREC, PUBREL, PUBCOMP. In 5.0 the Reason Code may be left out when it is 0x00
// and there are no properties (Remaining Length 2), and the Property Length when there are
// no properties (Remaining Length 3) (3.4.2.1 and its siblings).
bool decode_ack(reader& in, packet_type type, protocol_version version, ack_packet& p) {
  p.type = type;
  if (!read_packet_id(in, p.packet_id)) return false;
  if (!is_v5(version)) return true;  // Remaining Length 2; extra bytes are trailing bytes.
  if (in.remaining() > 0 && !read_reason(in, type, p.reason)) return false;
  if (in.remaining() > 0 && !wire::read_properties(in, ack_scope(type), p.props)) return false;
  return true;
}

bool decode_subscribe(reader& in, protocol_version version, subscribe_packet& p) {
  const bool v5 = is_v5(version);
  if (!read_packet_id(in, p.packet_id)) return false;
  if (v5 && !wire::read_properties(in, property_scope::subscribe, p.props)) return false;
  while (in.remaining() > 0) {
    subscription_request request;
    std::uint8_t options = 0;
    // [MQTT-3.8.3-1]: Topic Filters are UTF-8 strings. Their syntax is the broker's to
    // check: an invalid filter gets SUBACK 0x8F, not a closed connection.
    if (!in.utf8(request.filter) || !in.u8(options)) return false;
    const std::uint8_t qos_bits = options & 0x03;
    if (v5) {
      // [MQTT-3.8.3-5]: reserved bits 6-7 non-zero is a Malformed Packet.
      if ((options & 0xC0) != 0) return in.fail(malformed, "subscription options reserved bits");
      // 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3" and
      // "It is a Protocol Error to send a Retain Handling value of 3".
      if (qos_bits == 3) return in.fail(protocol_error, "subscription QoS 3");
      request.options.no_local = (options & 0x04) != 0;
      request.options.retain_as_published = (options & 0x08) != 0;
      request.options.retain_handling = (options >> 4) & 0x03;
      if (request.options.retain_handling == 3) {
        return in.fail(protocol_error, "retain handling 3");
      }
      // [MQTT-3.8.3-4]: No Local on a Shared Subscription is a Protocol Error.
      if (request.options.no_local && core::parse_shared_filter(request.filter)) {
        return in.fail(protocol_error, "no local on a shared subscription");
      }
    } else if ((options & 0xFC) != 0 || qos_bits == 3) {
      // [MQTT-3-8.3-4] (3.1.1): reserved bits non-zero or QoS 3 is malformed.
      return in.fail(malformed, "requested QoS byte invalid");
    }
    request.options.max_qos = static_cast<mqtt::qos>(qos_bits);
    p.subscriptions.push_back(std::move(request));
  }
  // [MQTT-3.8.3-3]: at least one Topic Filter; an empty payload is a protocol violation.
  if (p.subscriptions.empty()) return in.fail(protocol_error, "SUBSCRIBE without topic filters");
  return true;
}

bool decode_suback(reader& in, protocol_version version, suback_packet& p) {
  const bool v5 = is_v5(version);
  if (!read_packet_id(in, p.packet_id)) return false;
  if (v5 && !wire::read_properties(in, property_scope::suback, p.props)) return false;
  while (in.remaining() > 0) {
    reason_code reason = reason_code::success;
    if (v5) {
      if (!read_reason(in, packet_type::suback, reason)) return false;
    } else {
      std::uint8_t code = 0;
      if (!in.u8(code)) return false;
      // [MQTT-3.9.3-2]: return codes other than 0x00, 0x01, 0x02 and 0x80 are reserved.
      if (!one_of(code, {0x00, 0x01, 0x02, 0x80})) {
        return in.fail(malformed, "reserved SUBACK return code");
      }
      reason = static_cast<reason_code>(code);
    }
    p.reasons.push_back(reason);
  }
  // One code per filter of the SUBSCRIBE, which has at least one.
  if (p.reasons.empty()) return in.fail(protocol_error, "SUBACK without return codes");
  return true;
}

bool decode_unsubscribe(reader& in, protocol_version version, unsubscribe_packet& p) {
  if (!read_packet_id(in, p.packet_id)) return false;
  if (is_v5(version) && !wire::read_properties(in, property_scope::unsubscribe, p.props)) {
    return false;
  }
  while (in.remaining() > 0) {
    // [MQTT-3.10.3-1]: Topic Filters are UTF-8 strings.
    if (!in.utf8(p.filters.emplace_back())) return false;
  }
  // [MQTT-3.10.3-2]: at least one Topic Filter.
  if (p.filters.empty()) return in.fail(protocol_error, "UNSUBSCRIBE without topic filters");
  return true;
}

bool decode_unsuback(reader& in, protocol_version version, unsuback_packet& p) {
  if (!read_packet_id(in, p.packet_id)) return false;
  if (!is_v5(version)) return true;  // Remaining Length 2 before 5.0.
  if (!wire::read_properties(in, property_scope::unsuback, p.props)) return false;
  while (in.remaining() > 0) {
    if (!read_reason(in, packet_type::unsuback, p.reasons.emplace_back())) return false;
  }
  if (p.reasons.empty()) return in.fail(protocol_error, "UNSUBACK without reason codes");
  return true;
}

// DISCONNECT (5.0): Remaining Length 0 means Normal disconnection (3.14.2.1), and the
// Property Length may be left out when it would be 0 (3.14.2.2.1). Before 5.0 the packet
// has no variable header: anything after the fixed header is a trailing byte.
bool decode_disconnect(reader& in, protocol_version version, disconnect_packet& p) {
  if (!is_v5(version)) return true;
  if (in.remaining() > 0 && !read_reason(in, packet_type::disconnect, p.reason)) return false;
  if (in.remaining() > 0 && !wire::read_properties(in, property_scope::disconnect, p.props)) {
    return false;
  }
  return true;
}

// AUTH exists only in 5.0 (section 3.15); type 15 is reserved before it. Remaining Length
// 0 means Success without properties (3.15.2.1).
bool decode_auth(reader& in, protocol_version version, auth_packet& p) {
  if (!is_v5(version)) return in.fail(malformed, "AUTH before MQTT 5.0");
  if (in.remaining() > 0 && !read_reason(in, packet_type::auth, p.reason)) return false;
  if (in.remaining() > 0 && !wire::read_properties(in, property_scope::auth, p.props)) {
    return false;
  }
  // 3.15.2.2.2/3: Authentication Data without an Authentication Method is a protocol error.
  if (p.props.authentication_data && !p.props.authentication_method) {
    return in.fail(protocol_error, "authentication data without method");
  }
  return true;
}

// Runs `decode_fn` on a fresh Packet and stores it in `result` when it succeeds.
template <typename Packet, typename Fn>
void decode_as(decode_result& result, Fn&& decode_fn) {
  Packet p;
  if (decode_fn(p)) result.value = std::move(p);
}

}  // namespace

header_status parse_fixed_header(std::span<const std::uint8_t> bytes, fixed_header& out) noexcept {
  if (bytes.empty()) return header_status::need_more;
  // Packet type 0 is reserved (2.1.2).
  if ((bytes[0] >> 4) == 0) return header_status::malformed;
  std::uint32_t length = 0;
  std::size_t consumed = 0;
  switch (wire::read_varint(bytes.subspan(1), length, consumed)) {
    case wire::varint_status::need_more: return header_status::need_more;
    case wire::varint_status::malformed: return header_status::malformed;
    case wire::varint_status::ok: break;
  }
  out.first_byte = bytes[0];
  out.remaining_length = length;
  out.size = static_cast<std::uint8_t>(1 + consumed);
  return header_status::complete;
}

decode_result decode(const fixed_header& header, std::span<const std::uint8_t> body,
                     protocol_version version) {
  decode_result result;
  reader in(body);
  const packet_type type = header.type();
  const std::uint8_t flags = header.flags();
  if (body.size() != header.remaining_length) {
    in.fail(malformed, "body length differs from remaining length");
  } else if (static_cast<std::uint8_t>(type) == 0) {
    in.fail(malformed, "reserved packet type 0");
  } else if (!flags_valid(type, flags)) {
    in.fail(malformed, "reserved fixed header flags");
  }
  if (in.ok()) {
    switch (type) {
      case packet_type::connect:
        decode_as<connect_packet>(result, [&](auto& p) { return decode_connect(in, result, p); });
        break;
      case packet_type::connack:
        decode_as<connack_packet>(result, [&](auto& p) { return decode_connack(in, version, p); });
        break;
      case packet_type::publish:
        decode_as<publish_packet>(result,
                                  [&](auto& p) { return decode_publish(in, flags, version, p); });
        break;
      case packet_type::puback:
      case packet_type::pubrec:
      case packet_type::pubrel:
      case packet_type::pubcomp:
        decode_as<ack_packet>(result, [&](auto& p) { return decode_ack(in, type, version, p); });
        break;
      case packet_type::subscribe:
        decode_as<subscribe_packet>(result,
                                    [&](auto& p) { return decode_subscribe(in, version, p); });
        break;
      case packet_type::suback:
        decode_as<suback_packet>(result, [&](auto& p) { return decode_suback(in, version, p); });
        break;
      case packet_type::unsubscribe:
        decode_as<unsubscribe_packet>(result,
                                      [&](auto& p) { return decode_unsubscribe(in, version, p); });
        break;
      case packet_type::unsuback:
        decode_as<unsuback_packet>(result,
                                   [&](auto& p) { return decode_unsuback(in, version, p); });
        break;
      case packet_type::pingreq:
        result.value = pingreq_packet{};
        break;
      case packet_type::pingresp:
        result.value = pingresp_packet{};
        break;
      case packet_type::disconnect:
        decode_as<disconnect_packet>(result,
                                     [&](auto& p) { return decode_disconnect(in, version, p); });
        break;
      case packet_type::auth:
        decode_as<auth_packet>(result, [&](auto& p) { return decode_auth(in, version, p); });
        break;
    }
  }
  // A packet body longer than its fields is malformed (PINGREQ/PINGRESP [MQTT-3.12],
  // 3.1.1 acknowledgements with Remaining Length 2, ...).
  if (in.ok() && in.remaining() != 0) in.fail(malformed, "trailing bytes after packet");
  result.error = in.error();
  if (!result.ok()) {
    result.detail = std::string(in.detail());
    result.value = packet{};
  }
  return result;
}

}  // namespace wharf::mqtt
