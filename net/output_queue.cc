#include "net/detail.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace wharf::net::detail {

void output_queue::push(std::vector<std::uint8_t> bytes) {
  if (bytes.empty()) return;
  bytes_ += bytes.size();
  entries_.push_back(entry{std::move(bytes), nullptr});
}

void output_queue::push(std::shared_ptr<const std::vector<std::uint8_t>> bytes) {
  if (!bytes || bytes->empty()) return;
  bytes_ += bytes->size();
  entries_.push_back(entry{{}, std::move(bytes)});
}

std::size_t output_queue::gather(std::span<boost::asio::const_buffer> out) const noexcept {
  std::size_t n = 0;
  for (std::size_t i = head_; i < entries_.size() && n < out.size(); ++i) {
    auto b = entries_[i].bytes();
    std::size_t skip = (i == head_) ? head_offset_ : 0;
    out[n++] = boost::asio::const_buffer(b.data() + skip, b.size() - skip);
  }
  return n;
}

std::size_t output_queue::gather(std::span<::iovec> out) const noexcept {
  std::size_t n = 0;
  for (std::size_t i = head_; i < entries_.size() && n < out.size(); ++i) {
    auto b = entries_[i].bytes();
    std::size_t skip = (i == head_) ? head_offset_ : 0;
    out[n++] = ::iovec{const_cast<std::uint8_t*>(b.data() + skip), b.size() - skip};
  }
  return n;
}

void output_queue::copy_front(std::vector<std::uint8_t>& out, std::size_t max_bytes) const {
  out.clear();
  out.reserve(std::min(max_bytes, bytes_));
  for (std::size_t i = head_; i < entries_.size() && out.size() < max_bytes; ++i) {
    auto b = entries_[i].bytes();
    if (i == head_) b = b.subspan(head_offset_);
    std::size_t take = std::min(b.size(), max_bytes - out.size());
    out.insert(out.end(), b.begin(), b.begin() + static_cast<std::ptrdiff_t>(take));
  }
}

void output_queue::consume(std::size_t n) noexcept {
  assert(n <= bytes_);
  bytes_ -= n;
  while (n > 0) {
    std::size_t left = entries_[head_].bytes().size() - head_offset_;
    if (n < left) {
      head_offset_ += n;
      return;
    }
    n -= left;
    entries_[head_] = entry{};  // release this entry's storage now
    ++head_;
    head_offset_ = 0;
  }
  if (bytes_ == 0) {
    clear();
  } else if (head_ >= 32 && head_ * 2 >= entries_.size()) {
    // A connection that never drains completely: drop the sent shells now and then.
    // Moving entries keeps their heap storage in place, so gathered buffers stay valid.
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

void output_queue::clear() noexcept {
  std::vector<entry>().swap(entries_);
  head_ = 0;
  head_offset_ = 0;
  bytes_ = 0;
}

std::span<std::uint8_t> thread_read_buffer() {
  static constexpr std::size_t size = 64 * 1024;
  thread_local std::unique_ptr<std::uint8_t[]> buffer;
  if (!buffer) buffer = std::make_unique_for_overwrite<std::uint8_t[]>(size);
  return {buffer.get(), size};
}

}  // namespace wharf::net::detail
