// Encoding and decoding of MQTT packets, all versions. Pure functions over bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/mqtt/protocol/packets.h"

namespace wharf::mqtt {

// The fixed header: first byte (type << 4 | flags) and the Remaining Length.
struct fixed_header {
  std::uint8_t first_byte = 0;
  std::uint32_t remaining_length = 0;
  std::uint8_t size = 0;  // bytes the fixed header itself took (2..5)
  [[nodiscard]] packet_type type() const noexcept { return static_cast<packet_type>(first_byte >> 4); }
  [[nodiscard]] std::uint8_t flags() const noexcept { return first_byte & 0x0F; }
};

enum class header_status { need_more, complete, malformed };

// Parses a fixed header from the start of `bytes`. need_more while fewer bytes than the
// header needs are present; malformed for a Remaining Length longer than 4 bytes
// ([MQTT-1.5.5-1]) or packet type 0.
[[nodiscard]] header_status parse_fixed_header(std::span<const std::uint8_t> bytes, fixed_header& out) noexcept;

struct decode_result {
  packet value;                                // meaningful only when ok()
  reason_code error = reason_code::success;    // malformed_packet, protocol_error, ...
  std::string detail;                          // human text for logs / reason string
  // CONNECT only: the Protocol Level byte as received, 0 when the packet ended before it.
  // Set even when decoding fails, so the caller can answer in the client's version:
  // CONNACK 0x84 for 5 and above, 3.1.1 return code 1 (unacceptable protocol version) below.
  std::uint8_t protocol_level = 0;
  [[nodiscard]] bool ok() const noexcept { return error == reason_code::success; }
};

// Decodes one whole packet: its fixed header and `body` (exactly remaining_length bytes).
// `version` is the connection's negotiated version; for CONNECT it is ignored (the packet
// carries its own). Validates everything that can be validated without connection state:
// reserved flag bits, QoS 3, UTF-8 well-formedness and forbidden code points, wildcards in
// PUBLISH topic names, packet identifier 0, property ids allowed for the packet type,
// duplicate properties, empty SUBSCRIBE/UNSUBSCRIBE payloads, trailing bytes.
[[nodiscard]] decode_result decode(const fixed_header& header, std::span<const std::uint8_t> body,
                                   protocol_version version);

// Appends the encoding of `p` for `version` to `out`. For CONNECT, `version` decides the
// Protocol Name and Level written ("MQIsdp"/3, "MQTT"/4, "MQTT"/5); the packet's own
// `version` and `protocol_name` fields are not consulted. Properties a packet type does not
// allow are left out. Encoding AUTH before 5.0, or a string longer than 65535 bytes, is a
// programmer error (always-on assertion). Fields that the version has no room
// for (properties before 5.0, reason codes where 3.1.1 has none) are left out.
void encode(const packet& p, protocol_version version, std::vector<std::uint8_t>& out);

// A PUBLISH encoded once for every subscriber that is sent the same bytes but for the fixed
// header's flags (DUP, QoS 1 or 2, RETAIN) and the packet identifier: each one is sent the
// shared bytes as they are, or a copy with those patched (connection_machine::send_shared).
struct shared_publish {
  std::shared_ptr<const std::vector<std::uint8_t>> bytes;
  std::size_t packet_id_at = 0;  // where the packet identifier is; 0: a QoS 0 encoding, which has none
};
[[nodiscard]] shared_publish encode_shared(const publish_packet& p, protocol_version version);

// Size in bytes of the encoded packet (fixed header included), without encoding it.
[[nodiscard]] std::size_t encoded_size(const packet& p, protocol_version version);

// The same two for a PUBLISH on its own: passed as a `packet`, it would be copied (payload
// and all) into the variant first.
void encode(const publish_packet& p, protocol_version version, std::vector<std::uint8_t>& out);
[[nodiscard]] std::size_t encoded_size(const publish_packet& p, protocol_version version);

// Topic name and filter rules live in core/topic.h (the trie needs them too).
// Well-formed UTF-8 without U+0000, surrogates or non-characters that the spec forbids ([MQTT-1.5.4]).
[[nodiscard]] bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace wharf::mqtt
