#include "core/message.h"

#include <cstddef>
#include <string_view>

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

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_str(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

// Bounds-checked reader: every get_* returns false instead of reading past the end.
class reader {
 public:
  explicit reader(std::string_view bytes) : bytes_(bytes) {}

  bool get_u8(std::uint8_t& v) {
    if (pos_ >= bytes_.size()) return false;
    v = static_cast<std::uint8_t>(bytes_[pos_++]);
    return true;
  }

  bool get_varint(std::uint64_t& v) {
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      std::uint8_t b = 0;
      if (!get_u8(b)) return false;
      const std::uint64_t part = b & 0x7f;
      // The 10th byte may only carry the top bit of a 64-bit value.
      if (shift == 63 && part > 1) return false;
      v |= part << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  bool get_str(std::string& s) {
    std::uint64_t n = 0;
    if (!get_varint(n) || n > bytes_.size() - pos_) return false;
    s.assign(bytes_.substr(pos_, static_cast<std::size_t>(n)));
    pos_ += static_cast<std::size_t>(n);
    return true;
  }

  [[nodiscard]] std::size_t remaining() const { return bytes_.size() - pos_; }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

bool get_optional_str(reader& r, bool present, std::optional<std::string>& out) {
  if (!present) {
    out.reset();
    return true;
  }
  if (!out) out.emplace();
  return r.get_str(*out);
}

}  // namespace

void encode_message(const message& m, std::string& out) {
  std::uint8_t flags = m.qos & flag_qos_mask;
  if (m.retain) flags |= flag_retain;
  if (m.payload_format_indicator) flags |= flag_pfi;
  if (m.content_type) flags |= flag_content_type;
  if (m.response_topic) flags |= flag_response_topic;
  if (m.correlation_data) flags |= flag_correlation_data;

  out.push_back(static_cast<char>(format_v1));
  out.push_back(static_cast<char>(flags));
  put_str(out, m.topic);
  put_str(out, m.payload);
  if (m.payload_format_indicator) out.push_back(static_cast<char>(*m.payload_format_indicator));
  if (m.content_type) put_str(out, *m.content_type);
  if (m.response_topic) put_str(out, *m.response_topic);
  if (m.correlation_data) put_str(out, *m.correlation_data);
  put_varint(out, m.user_properties.size());
  for (const auto& [key, value] : m.user_properties) {
    put_str(out, key);
    put_str(out, value);
  }
  put_varint(out, zigzag(m.expiry_unix_ms));
  put_varint(out, zigzag(m.publish_unix_ms));
  put_str(out, m.publisher_client_id);
}

bool decode_message(std::string_view bytes, message& out) {
  reader r(bytes);
  std::uint8_t version = 0;
  std::uint8_t flags = 0;
  if (!r.get_u8(version) || version != format_v1) return false;
  if (!r.get_u8(flags) || (flags & ~flags_known) != 0) return false;
  if ((flags & flag_qos_mask) == 3) return false;
  out.qos = flags & flag_qos_mask;
  out.retain = (flags & flag_retain) != 0;
  if (!r.get_str(out.topic) || !r.get_str(out.payload)) return false;
  if (flags & flag_pfi) {
    std::uint8_t pfi = 0;
    if (!r.get_u8(pfi)) return false;
    out.payload_format_indicator = pfi;
  } else {
    out.payload_format_indicator.reset();
  }
  if (!get_optional_str(r, flags & flag_content_type, out.content_type) ||
      !get_optional_str(r, flags & flag_response_topic, out.response_topic) ||
      !get_optional_str(r, flags & flag_correlation_data, out.correlation_data)) {
    return false;
  }
  std::uint64_t count = 0;
  if (!r.get_varint(count)) return false;
  // Each property takes at least two bytes: a corrupt count cannot make us reserve much.
  if (count > r.remaining() / 2) return false;
  out.user_properties.resize(static_cast<std::size_t>(count));
  for (auto& [key, value] : out.user_properties) {
    if (!r.get_str(key) || !r.get_str(value)) return false;
  }
  std::uint64_t expiry = 0;
  std::uint64_t published = 0;
  if (!r.get_varint(expiry) || !r.get_varint(published)) return false;
  out.expiry_unix_ms = unzigzag(expiry);
  out.publish_unix_ms = unzigzag(published);
  if (!r.get_str(out.publisher_client_id)) return false;
  return r.remaining() == 0;
}

}  // namespace wharf::core
