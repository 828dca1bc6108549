#include "core/message.h"

#include <cstddef>
#include <string_view>
#include <utility>

#include "core/binary.h"

namespace wharf::core {
namespace {

// Layout, version 1 (all integers unsigned LEB128 varints unless noted):
//   u8 version (= 1)
//   u8 flags: bits 0-1 qos, bit 2 retain, bit 3 payload_format_indicator present,
//             bit 4 content_type, bit 5 response_topic, bit 6 correlation_data
//   str topic, str payload
//   [u8 payload_format_indicator] [str content_type] [str response_topic]
//   [str correlation_data]
//   varint user property count, then str key, str value for each
//   zigzag varint expiry_unix_ms, zigzag varint publish_unix_ms
//   str publisher_client_id
// where str = varint length + bytes. Nothing may follow.
constexpr std::uint8_t format_v1 = 1;

constexpr std::uint8_t flag_qos_mask = 0x03;
constexpr std::uint8_t flag_retain = 0x04;
constexpr std::uint8_t flag_pfi = 0x08;
constexpr std::uint8_t flag_content_type = 0x10;
constexpr std::uint8_t flag_response_topic = 0x20;
constexpr std::uint8_t flag_correlation_data = 0x40;
constexpr std::uint8_t flags_known = 0x7f;

// A string field the flags say is there, read into `out`; reset when it is not.
void read_optional(binary::reader& r, bool present, std::optional<std::string>& out) {
  if (present)
    out = r.bytes();
  else
    out.reset();
}

}  // namespace

void encode_message(const message& m, std::string& out) {
  std::uint8_t flags = m.qos & flag_qos_mask;
  if (m.retain) flags |= flag_retain;
  if (m.payload_format_indicator) flags |= flag_pfi;
  if (m.content_type) flags |= flag_content_type;
  if (m.response_topic) flags |= flag_response_topic;
  if (m.correlation_data) flags |= flag_correlation_data;

  binary::writer w(std::move(out));
  w.u8(format_v1);
  w.u8(flags);
  w.bytes(m.topic);
  w.bytes(m.payload);
  if (m.payload_format_indicator) w.u8(*m.payload_format_indicator);
  if (m.content_type) w.bytes(*m.content_type);
  if (m.response_topic) w.bytes(*m.response_topic);
  if (m.correlation_data) w.bytes(*m.correlation_data);
  w.varint(m.user_properties.size());
  for (const auto& [key, value] : m.user_properties) {
    w.bytes(key);
    w.bytes(value);
  }
  w.svarint(m.expiry_unix_ms);
  w.svarint(m.publish_unix_ms);
  w.bytes(m.publisher_client_id);
  out = w.take();
}

bool decode_message(std::string_view bytes, message& out) {
  binary::reader r(bytes);
  const std::uint8_t version = r.u8();
  const std::uint8_t flags = r.u8();
  if (!r.ok() || version != format_v1 || (flags & ~flags_known) != 0 || (flags & flag_qos_mask) == 3) return false;
  out.qos = flags & flag_qos_mask;
  out.retain = (flags & flag_retain) != 0;
  out.topic = r.bytes();
  out.payload = r.bytes();
  if (flags & flag_pfi)
    out.payload_format_indicator = r.u8();
  else
    out.payload_format_indicator.reset();
  read_optional(r, flags & flag_content_type, out.content_type);
  read_optional(r, flags & flag_response_topic, out.response_topic);
  read_optional(r, flags & flag_correlation_data, out.correlation_data);
  const std::uint64_t count = r.varint();
  // Each property takes at least two bytes: a corrupt count cannot make us reserve much.
  if (!r.ok() || count > r.remaining() / 2) return false;
  out.user_properties.resize(static_cast<std::size_t>(count));
  for (auto& [key, value] : out.user_properties) {
    key = r.bytes();
    value = r.bytes();
  }
  out.expiry_unix_ms = r.svarint();
  out.publish_unix_ms = r.svarint();
  out.publisher_client_id = r.bytes();
  return r.done();
}

}  // namespace wharf::core
