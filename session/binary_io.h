// Little helpers to serialise records: fixed-width little-endian integers and
// length-prefixed strings, with a reader that fails (rather than reads past the end)
// on truncated or corrupt input.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace wharf::session {

class byte_writer {
 public:
  explicit byte_writer(std::string& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v) { raw(&v, sizeof v); }
  void u32(std::uint32_t v) { raw(&v, sizeof v); }
  void u64(std::uint64_t v) { raw(&v, sizeof v); }
  void i64(std::int64_t v) { raw(&v, sizeof v); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }

 private:
  void raw(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string& out_;
};

class byte_reader {
 public:
  explicit byte_reader(std::string_view in) : in_(in) {}
  [[nodiscard]] bool u8(std::uint8_t& v) { return raw(&v, sizeof v); }
  [[nodiscard]] bool u16(std::uint16_t& v) { return raw(&v, sizeof v); }
  [[nodiscard]] bool u32(std::uint32_t& v) { return raw(&v, sizeof v); }
  [[nodiscard]] bool u64(std::uint64_t& v) { return raw(&v, sizeof v); }
  [[nodiscard]] bool i64(std::int64_t& v) { return raw(&v, sizeof v); }
  [[nodiscard]] bool str(std::string& s) {
    std::uint32_t n = 0;
    if (!u32(n) || n > in_.size()) return false;
    s.assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  [[nodiscard]] bool empty() const noexcept { return in_.empty(); }

 private:
  bool raw(void* p, std::size_t n) {
    if (in_.size() < n) return false;
    std::memcpy(p, in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  std::string_view in_;
};

}  // namespace wharf::session
