// Internal to the codec: the MQTT data representations of section 1.5 (two- and
// four-byte integers, Variable Byte Integers, UTF-8 strings, binary data) read from and
// written to byte buffers. Not part of the public API; include codec.h instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/mqtt/protocol/types.h"

// Always-on check for programmer errors (e.g. encoding a string longer than 65535 bytes).
#define WHARF_MQTT_ASSERT(cond)                                                            \
  do {                                                                                     \
    if (!(cond)) ::wharf::mqtt::wire::assertion_failed(#cond, __FILE__, __LINE__);         \
  } while (false)

namespace wharf::mqtt::wire {

[[noreturn]] void assertion_failed(const char* expr, const char* file, int line) noexcept;

// Largest value a Variable Byte Integer can hold (4 bytes, [MQTT-1.5.5]).
inline constexpr std::uint32_t varint_max = 268'435'455;
inline constexpr std::size_t string_max_bytes = 65'535;

[[nodiscard]] constexpr std::size_t varint_size(std::uint32_t value) noexcept {
  return value < 128 ? 1 : value < 16'384 ? 2 : value < 2'097'152 ? 3 : 4;
}

// Decodes a Variable Byte Integer from the start of `bytes`.
enum class varint_status { ok, need_more, malformed };
[[nodiscard]] varint_status read_varint(std::span<const std::uint8_t> bytes, std::uint32_t& value,
                                        std::size_t& consumed) noexcept;

// Sequential reader over one packet body. The first failure sticks: later reads fail too,
// and error()/detail() report the first one, so parsers can bail out with a bare `return`.
class reader {
 public:
  explicit reader(std::span<const std::uint8_t> bytes) noexcept : bytes_(bytes) {}

  [[nodiscard]] std::size_t remaining() const noexcept { return bytes_.size() - pos_; }
  [[nodiscard]] bool ok() const noexcept { return error_ == reason_code::success; }
  [[nodiscard]] reason_code error() const noexcept { return error_; }
  [[nodiscard]] std::string_view detail() const noexcept { return detail_; }

  // Records the failure (only the first one counts) and returns false.
  bool fail(reason_code code, std::string_view why) noexcept;

  bool u8(std::uint8_t& value) noexcept;
  bool u16(std::uint16_t& value) noexcept;
  bool u32(std::uint32_t& value) noexcept;
  bool varint(std::uint32_t& value) noexcept;
  // Two-byte length then that many bytes, not interpreted.
  bool binary(std::string& value);
  // Like binary, then checks [MQTT-1.5.4-1..2]; ill-formed text is a Malformed Packet.
  bool utf8(std::string& value);
  // Takes the rest of the body (PUBLISH payload).
  void rest(std::string& value);
  // Narrows the reader to the next `length` bytes; `sub` reads them, this one skips them.
  bool split(std::size_t length, reader& sub) noexcept;

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
  reason_code error_ = reason_code::success;
  std::string_view detail_;  // always a string literal
};

// Appends to a vector, or with no vector only counts, so that encoded_size() and encode()
// share one code path and cannot disagree.
class writer {
 public:
  explicit writer(std::vector<std::uint8_t>* out) noexcept : out_(out) {}

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  void u8(std::uint8_t value);
  void u16(std::uint16_t value);
  void u32(std::uint32_t value);
  void varint(std::uint32_t value);
  void raw(std::string_view bytes);
  // Two-byte length prefix, then the bytes. REQUIRES: bytes.size() <= 65535.
  void binary(std::string_view bytes);

 private:
  std::vector<std::uint8_t>* out_;
  std::size_t size_ = 0;
};

}  // namespace wharf::mqtt::wire
