// A first-in first-out sequence on one vector and a head index.
//
// std::deque allocates a 512-byte block and a map the moment it is constructed, empty or
// not; an outbound window holds two queues per live connection and almost all of them stay
// empty, so that was a kilobyte per idle connection. This one allocates nothing until the
// first push, and gives its storage back when it drains after a burst.
#pragma once

#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

namespace wharf::session {

template <class T>
class fifo {
 public:
  [[nodiscard]] bool empty() const noexcept { return head_ == items_.size(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size() - head_; }

  [[nodiscard]] T& front() { return items_[head_]; }
  [[nodiscard]] const T& front() const { return items_[head_]; }

  void push_back(T item) { items_.push_back(std::move(item)); }

  // Puts `items` in front, in their order.
  void prepend(std::vector<T> items) {
    if (items.empty()) return;
    compact();
    items_.insert(items_.begin(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
  }

  void pop_front() {
    ++head_;
    if (head_ == items_.size())
      clear();
    else if (head_ >= kCompactAfter && head_ * 2 >= items_.size())
      compact();  // amortised: each element moves at most once per halving
  }

  void clear() {
    if (items_.capacity() > kKeptCapacity)
      std::vector<T>().swap(items_);
    else
      items_.clear();
    head_ = 0;
  }

  [[nodiscard]] auto begin() noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  [[nodiscard]] auto end() noexcept { return items_.end(); }

 private:
  // Popped slots are reclaimed once there are this many and they are half the vector.
  static constexpr std::size_t kCompactAfter = 32;
  // A drained queue keeps storage up to this many elements, so a steady trickle of one
  // message at a time does not allocate per message; beyond it a burst's storage is freed.
  static constexpr std::size_t kKeptCapacity = 16;

  void compact() {
    items_.erase(items_.begin(), begin());
    head_ = 0;
  }

  std::vector<T> items_;
  std::size_t head_ = 0;
};

}  // namespace wharf::session
