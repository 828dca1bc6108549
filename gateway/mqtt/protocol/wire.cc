#include "gateway/mqtt/protocol/wire.h"

#include "gateway/mqtt/protocol/codec.h"

namespace wharf::mqtt {

// [MQTT-1.5.4-1] well-formed UTF-8 (no overlong forms, nothing above U+10FFFF) and no
// surrogates U+D800..U+DFFF; [MQTT-1.5.4-2] no U+0000. Control characters and
// non-characters are only "SHOULD NOT" in the spec, so they are accepted here.
bool is_valid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char lead = *p;
    if (lead < 0x80) {
      if (lead == 0) return false;
      ++p;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t code_point = 0;
    std::uint32_t min_code_point = 0;
    if ((lead & 0xE0) == 0xC0) {
      length = 2, code_point = lead & 0x1F, min_code_point = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, code_point = lead & 0x0F, min_code_point = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, code_point = lead & 0x07, min_code_point = 0x10000;
    } else {
      return false;  // a continuation byte, or 0xF8..0xFF
    }
    if (static_cast<std::size_t>(end - p) < length) return false;
    for (std::size_t i = 1; i < length; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (p[i] & 0x3F);
    }
    if (code_point < min_code_point) return false;  // overlong
    if (code_point > 0x10FFFF) return false;
    if (code_point >= 0xD800 && code_point <= 0xDFFF) return false;
    p += length;
  }
  return true;
}

namespace wire {

void assertion_failed(const char* expr, const char* file, int line) noexcept {
  std::fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
  std::abort();
}

varint_status read_varint(std::span<const std::uint8_t> bytes, std::uint32_t& value,
                          std::size_t& consumed) noexcept {
  std::uint32_t result = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    if (i >= bytes.size()) return varint_status::need_more;
    const std::uint8_t byte = bytes[i];
    result |= static_cast<std::uint32_t>(byte & 0x7F) << (7 * i);
    if ((byte & 0x80) == 0) {
      // [MQTT-1.5.5-1] the minimum number of bytes: a trailing zero group is padding.
      if (i > 0 && byte == 0) return varint_status::malformed;
      value = result;
      consumed = i + 1;
      return varint_status::ok;
    }
  }
  return varint_status::malformed;  // a fifth byte would be needed
}

bool reader::fail(reason_code code, std::string_view why) noexcept {
  if (ok()) {
    error_ = code;
    detail_ = why;
  }
  pos_ = bytes_.size();
  return false;
}

bool reader::u8(std::uint8_t& value) noexcept {
  if (!ok() || remaining() < 1) return fail(reason_code::malformed_packet, "packet truncated");
  value = bytes_[pos_++];
  return true;
}

bool reader::u16(std::uint16_t& value) noexcept {
  if (!ok() || remaining() < 2) return fail(reason_code::malformed_packet, "packet truncated");
  value = static_cast<std::uint16_t>((bytes_[pos_] << 8) | bytes_[pos_ + 1]);
  pos_ += 2;
  return true;
}

bool reader::u32(std::uint32_t& value) noexcept {
  if (!ok() || remaining() < 4) return fail(reason_code::malformed_packet, "packet truncated");
  value = (std::uint32_t{bytes_[pos_]} << 24) | (std::uint32_t{bytes_[pos_ + 1]} << 16) |
          (std::uint32_t{bytes_[pos_ + 2]} << 8) | std::uint32_t{bytes_[pos_ + 3]};
  pos_ += 4;
  return true;
}

bool reader::varint(std::uint32_t& value) noexcept {
  if (!ok()) return false;
  std::size_t consumed = 0;
  switch (read_varint(bytes_.subspan(pos_), value, consumed)) {
    case varint_status::ok:
      pos_ += consumed;
      return true;
    case varint_status::need_more:
      return fail(reason_code::malformed_packet, "packet truncated");
    case varint_status::malformed:
      break;
  }
  return fail(reason_code::malformed_packet, "malformed variable byte integer");
}

bool reader::binary(std::string& value) {
  std::uint16_t length = 0;
  if (!u16(length)) return false;
  if (remaining() < length) return fail(reason_code::malformed_packet, "length exceeds packet");
  value.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
  pos_ += length;
  return true;
}

bool reader::utf8(std::string& value) {
  if (!binary(value)) return false;
  if (!is_valid_utf8(value)) return fail(reason_code::malformed_packet, "invalid UTF-8 string");
  return true;
}

void reader::rest(std::string& value) {
  value.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), remaining());
  pos_ = bytes_.size();
}

bool reader::split(std::size_t length, reader& sub) noexcept {
  if (!ok() || remaining() < length) {
    return fail(reason_code::malformed_packet, "length exceeds packet");
  }
  sub = reader(bytes_.subspan(pos_, length));
  pos_ += length;
  return true;
}

void writer::u8(std::uint8_t value) {
  ++size_;
  if (out_ != nullptr) out_->push_back(value);
}

void writer::u16(std::uint16_t value) {
  u8(static_cast<std::uint8_t>(value >> 8));
  u8(static_cast<std::uint8_t>(value));
}

void writer::u32(std::uint32_t value) {
  u16(static_cast<std::uint16_t>(value >> 16));
  u16(static_cast<std::uint16_t>(value));
}

void writer::varint(std::uint32_t value) {
  WHARF_MQTT_ASSERT(value <= varint_max);
  do {
    std::uint8_t byte = value & 0x7F;
    value >>= 7;
    if (value != 0) byte |= 0x80;
    u8(byte);
  } while (value != 0);
}

void writer::raw(std::string_view bytes) {
  size_ += bytes.size();
  if (out_ != nullptr) out_->insert(out_->end(), bytes.begin(), bytes.end());
}

void writer::binary(std::string_view bytes) {
  WHARF_MQTT_ASSERT(bytes.size() <= string_max_bytes);
  u16(static_cast<std::uint16_t>(bytes.size()));
  raw(bytes);
}

}  // namespace wire
}  // namespace wharf::mqtt
