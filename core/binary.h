// Byte writer and reader for every binary format of wharf: the queue core's commands
// (queue/command_codec.cc) and storage records (queue/engine_store.cc), the replication log
// and the peer links' frames (replication/), MQTT messages as stored (core/message.cc) and
// the session store's records (session/session_store.cc). Integers are LEB128 varints
// (signed ones zigzag), strings are length-prefixed by a varint; the session records, older
// than the rest, use fixed-width little-endian integers and a 32-bit length (le16..le64,
// le32_bytes), kept so that stores written before still load.
//
// The reader never reads past its input and never allocates more than its input could
// hold: the first failure sticks, later reads return zero values, and a decoder checks
// done() once at the end. Decoders face fuzzed and corrupt input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wharf::core::binary {

class writer {
 public:
  writer() = default;
  // Appends to `out` (take() gives it back, with what was written after it).
  explicit writer(std::string out) noexcept : out_(std::move(out)) {}

  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void le16(std::uint16_t v) { little_endian(v, 2); }
  void le32(std::uint32_t v) { little_endian(v, 4); }
  void le64(std::uint64_t v) { little_endian(v, 8); }
  // A 32-bit little-endian length, then the bytes. REQUIRES: s.size() < 2^32.
  void le32_bytes(std::string_view s) {
    le32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void svarint(std::int64_t v) {
    varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void bytes(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }
  void strings(const std::vector<std::string>& v) {
    varint(v.size());
    for (const auto& s : v) bytes(s);
  }

  [[nodiscard]] std::string take() { return std::move(out_); }

 private:
  void little_endian(std::uint64_t v, int width) {
    for (int i = 0; i < width; ++i, v >>= 8) out_.push_back(static_cast<char>(v & 0xff));
  }

  std::string out_;
};

class reader {
 public:
  explicit reader(std::string_view in) noexcept : in_(in) {}

  std::uint8_t u8() noexcept {
    if (!ok_ || pos_ >= in_.size()) {
      fail();
      return 0;
    }
    return static_cast<std::uint8_t>(in_[pos_++]);
  }
  std::uint16_t le16() noexcept { return static_cast<std::uint16_t>(little_endian(2)); }
  std::uint32_t le32() noexcept { return static_cast<std::uint32_t>(little_endian(4)); }
  std::uint64_t le64() noexcept { return little_endian(8); }
  std::string le32_bytes() { return std::string(next_bytes(le32())); }
  bool boolean() noexcept {
    const std::uint8_t v = u8();
    if (v > 1) fail();
    return v == 1;
  }
  std::uint64_t varint() noexcept {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const std::uint8_t b = u8();
      if (!ok_) return 0;
      // The tenth byte holds bit 63 only.
      if (shift == 63 && b > 1) break;
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    fail();
    return 0;
  }
  std::uint32_t u32() noexcept {
    const std::uint64_t v = varint();
    if (v > std::numeric_limits<std::uint32_t>::max()) {
      fail();
      return 0;
    }
    return static_cast<std::uint32_t>(v);
  }
  std::int64_t svarint() noexcept {
    const std::uint64_t v = varint();
    return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
  }
  std::string bytes() { return std::string(next_bytes(varint())); }
  // bytes() without the copy: a view into the input, valid while the input is.
  std::string_view bytes_view() noexcept { return next_bytes(varint()); }

  std::vector<std::string> strings() {
    const std::uint64_t n = varint();
    // Each string takes at least its length byte: a count beyond the rest is corrupt.
    if (!ok_ || n > in_.size() - pos_) {
      fail();
      return {};
    }
    std::vector<std::string> v;
    v.reserve(n);
    for (std::uint64_t i = 0; i < n && ok_; ++i) v.push_back(bytes());
    return v;
  }

  void fail() noexcept { ok_ = false; }
  // Everything read so far was well formed (a decoder checks before using a count or a flag).
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  // Bytes not read yet: a count of items beyond it is corrupt.
  [[nodiscard]] std::size_t remaining() const noexcept { return in_.size() - pos_; }
  // Everything read without error and nothing left over.
  [[nodiscard]] bool done() const noexcept { return ok_ && pos_ == in_.size(); }

 private:
  // The next `n` bytes (a length just read: nothing when the read failed), or nothing and
  // failed when fewer are left.
  std::string_view next_bytes(std::uint64_t n) noexcept {
    if (!ok_ || n > in_.size() - pos_) {
      fail();
      return {};
    }
    const std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }

  std::uint64_t little_endian(int width) noexcept {
    if (!ok_ || in_.size() - pos_ < static_cast<std::size_t>(width)) {
      fail();
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < width; ++i) v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(in_[pos_ + i])) << (8 * i);
    pos_ += static_cast<std::size_t>(width);
    return v;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace wharf::core::binary
