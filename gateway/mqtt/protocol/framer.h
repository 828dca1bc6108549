// Splits a byte stream into MQTT packets without holding a buffer while idle: bytes of a
// packet that has not fully arrived are copied into `partial_`; everything else is parsed
// in place from the caller's (per-thread) buffer. Sans-I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "gateway/mqtt/protocol/codec.h"

namespace wharf::mqtt {

class framer {
 public:
  explicit framer(std::uint32_t max_packet_size) : max_packet_size_(max_packet_size) {}

  enum class status { ok, malformed, too_large };

  // Calls on_packet(const fixed_header&, std::span<const std::uint8_t> body) for each
  // complete packet in order; on_packet returns false to stop (the connection is closing).
  // Returns malformed / too_large on a bad fixed header or a packet above the limit
  // (remaining bytes are then ignored).
  template <class F>
  status feed(std::span<const std::uint8_t> bytes, F&& on_packet) {
    if (!partial_.empty()) {
      partial_.insert(partial_.end(), bytes.begin(), bytes.end());
      std::vector<std::uint8_t> buffered;
      buffered.swap(partial_);
      const status s = parse(std::span<const std::uint8_t>(buffered), on_packet);
      return s;
    }
    return parse(bytes, on_packet);
  }

  void set_max_packet_size(std::uint32_t n) noexcept { max_packet_size_ = n; }
  [[nodiscard]] std::size_t buffered_bytes() const noexcept { return partial_.size(); }

 private:
  template <class F>
  status parse(std::span<const std::uint8_t> bytes, F& on_packet) {
    while (!bytes.empty()) {
      fixed_header header;
      switch (parse_fixed_header(bytes, header)) {
        case header_status::malformed:
          return status::malformed;
        case header_status::need_more:
          partial_.assign(bytes.begin(), bytes.end());
          return status::ok;
        case header_status::complete:
          break;
      }
      const std::size_t total = std::size_t{header.size} + header.remaining_length;
      if (total > max_packet_size_) return status::too_large;
      if (bytes.size() < total) {
        partial_.reserve(total);
        partial_.assign(bytes.begin(), bytes.end());
        return status::ok;
      }
      if (!on_packet(header, bytes.subspan(header.size, header.remaining_length))) return status::ok;
      bytes = bytes.subspan(total);
    }
    return status::ok;
  }

  std::uint32_t max_packet_size_;
  std::vector<std::uint8_t> partial_;
};

}  // namespace wharf::mqtt
