// A trie over topic levels mapping topic filters to entries, for subscription routing.
// Not thread-safe: each owner (an I/O shard) keeps its own copy (see docs/ARCHITECTURE.md).
//
// Interface contract (implemented in this header):
//   template <class Key, class Value, class KeyHash = std::hash<Key>> class topic_trie {
//     // Inserts or replaces the entry `key` under `filter`. Returns true when it is new.
//     bool insert(std::string_view filter, const Key& key, Value value);
//     // Removes the entry `key` under `filter`. Returns true when it existed.
//     bool erase(std::string_view filter, const Key& key);
//     // Pointer to the entry's value, or nullptr.
//     Value* find(std::string_view filter, const Key& key);
//     // Calls visit(std::string_view filter, const Key&, Value&) for every entry whose filter
//     // matches `topic`, honouring '+', '#' and the '$' rule of [MQTT-4.7.2-1].
//     template <class F> void match(std::string_view topic, F&& visit);
//     // The same on a const trie (concurrent readers, no writer): visit gets const Value&.
//     template <class F> void match(std::string_view topic, F&& visit) const;
//     // Calls visit(const Key&, Value&) for every entry.
//     template <class F> void for_each(F&& visit);
//     std::size_t size() const;   // number of entries
//   };
// Filters are plain (not "$share/..."): the router strips the share prefix and keys shared
// entries by group.
//
// Layout (chosen for ~1,000,000 entries with mostly distinct filters):
//  - one node per filter level, 56 bytes (a 64-byte malloc chunk): its level text (inline
//    up to 15 bytes), its literal children, its '+' and '#' children (kept apart from the
//    literal ones so match never hashes them; allocated only when present) and its entries;
//  - literal children live in a compact table of node pointers: a single child inline, up
//    to 8 in a small array searched linearly, more in an open-addressing hash table
//    (linear probing, load <= 3/4) keyed by the child's level text;
//  - entries of one node are a small array (one allocation of exactly one entry in the
//    common case), becoming a vector with a hash index on Key (KeyHash) only when the node
//    holds more than 8 entries (a popular filter), so one-subscriber nodes pay no index;
//  - empty nodes are pruned on erase, so the trie's size follows its entries.
// match walks the topic's levels in place (string_views into `topic`) with an explicit
// stack and rebuilds each matching filter in a stack buffer: it does not allocate unless a
// filter is longer than 256 bytes or the matching paths are more than 32 levels deep.
// Nothing recurses, so very deep filters cannot overflow the thread stack.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wharf::core {
namespace detail {

// A stack holding its first N elements inline; deeper elements spill to the heap.
template <class T, std::size_t N>
class inline_stack {
 public:
  void push(const T& v) {
    if (size_ < N) {
      inline_[size_] = v;
    } else {
      overflow_.push_back(v);
    }
    ++size_;
  }
  T pop() {
    --size_;
    if (size_ < N) return inline_[size_];
    T v = overflow_.back();
    overflow_.pop_back();
    return v;
  }
  T& operator[](std::size_t i) { return i < N ? inline_[i] : overflow_[i - N]; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  std::array<T, N> inline_;  // not value-initialised: match() creates one per call
  std::vector<T> overflow_;
  std::size_t size_ = 0;
};

// Text built up and cut back while walking the trie; inline up to 256 bytes.
class filter_buffer {
 public:
  void truncate(std::size_t n) noexcept { size_ = n; }
  void append(std::string_view s) {
    if (!on_heap_ && size_ + s.size() <= inline_.size()) {
      s.copy(inline_.data() + size_, s.size());
    } else {
      if (!on_heap_) {
        heap_.assign(inline_.data(), size_);
        on_heap_ = true;
      }
      heap_.resize(size_);
      heap_.append(s);
    }
    size_ += s.size();
  }
  [[nodiscard]] std::string_view view() const noexcept {
    return {on_heap_ ? heap_.data() : inline_.data(), size_};
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  std::array<char, 256> inline_;
  std::string heap_;
  std::size_t size_ = 0;
  bool on_heap_ = false;
};

// Next level of a topic or filter starting at `pos`; sets `last` when it is the final one
// and advances `pos` past the separator otherwise.
inline std::string_view next_level(std::string_view s, std::size_t& pos, bool& last) noexcept {
  const std::size_t end = s.find('/', pos);
  const std::size_t stop = end == std::string_view::npos ? s.size() : end;
  const std::string_view level = s.substr(pos, stop - pos);
  last = end == std::string_view::npos;
  pos = stop + 1;
  return level;
}

// A level's text in 16 bytes: inline up to 15 bytes (most levels), else on the heap.
class level_text {
 public:
  explicit level_text(std::string_view s) {
    if (s.size() < sizeof(bytes_)) {
      s.copy(bytes_, s.size());
      bytes_[inline_len_at] = static_cast<char>(s.size());
    } else {
      char* heap = new char[s.size()];
      s.copy(heap, s.size());
      const auto len = static_cast<std::uint32_t>(s.size());
      std::memcpy(bytes_, &heap, sizeof heap);
      std::memcpy(bytes_ + sizeof heap, &len, sizeof len);
      bytes_[inline_len_at] = heap_marker;
    }
  }
  ~level_text() {
    if (on_heap()) delete[] heap_ptr();
  }
  level_text(const level_text&) = delete;
  level_text& operator=(const level_text&) = delete;

  [[nodiscard]] std::string_view view() const noexcept {
    if (!on_heap()) return {bytes_, static_cast<std::size_t>(bytes_[inline_len_at])};
    std::uint32_t len = 0;
    std::memcpy(&len, bytes_ + sizeof(char*), sizeof len);
    return {heap_ptr(), len};
  }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: a text view
  friend bool operator==(const level_text& a, std::string_view b) noexcept {
    return a.view() == b;
  }

 private:
  static constexpr std::size_t inline_len_at = 15;
  static constexpr char heap_marker = static_cast<char>(0x7f);

  [[nodiscard]] bool on_heap() const noexcept { return bytes_[inline_len_at] == heap_marker; }
  [[nodiscard]] char* heap_ptr() const noexcept {
    char* p = nullptr;
    std::memcpy(&p, bytes_, sizeof p);
    return p;
  }

  alignas(8) char bytes_[16];
};

// Entries of one trie node in 16 bytes. Up to small_max entries live in a small array
// searched linearly (one subscriber per filter is the common case); beyond that in a
// vector with a hash index on Key, so a popular filter stays O(1) per insert and erase.
template <class Key, class Value, class KeyHash>
class entry_set {
 public:
  struct entry {
    Key key;
    Value value;
  };

  entry_set() = default;
  ~entry_set() { clear(); }
  entry_set(const entry_set&) = delete;
  entry_set& operator=(const entry_set&) = delete;

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  [[nodiscard]] entry* begin() noexcept { return is_big() ? big_->list.data() : small_; }
  [[nodiscard]] entry* end() noexcept { return begin() + size_; }

  Value* find(const Key& key) {
    entry* e = locate(key);
    return e == nullptr ? nullptr : &e->value;
  }

  // Returns true when `key` is new.
  bool insert_or_assign(const Key& key, Value value) {
    if (entry* e = locate(key)) {
      e->value = std::move(value);
      return false;
    }
    if (!is_big() && size_ == cap_ && cap_ == small_max) to_big();
    if (is_big()) {
      big_->list.push_back(entry{key, std::move(value)});
      try {
        big_->index.emplace(key, size_);
      } catch (...) {
        big_->list.pop_back();
        throw;
      }
    } else {
      if (size_ == cap_) grow_small(cap_ == 0 ? 1 : cap_ * 2);
      std::construct_at(small_ + size_, entry{key, std::move(value)});
    }
    ++size_;
    return true;
  }

  // Returns true when `key` was present.
  bool erase(const Key& key) {
    entry* e = locate(key);
    if (e == nullptr) return false;
    entry* last = end() - 1;
    if (is_big()) {
      big_->index.erase(key);
      if (e != last) {
        *e = std::move(*last);
        big_->index[e->key] = static_cast<std::uint32_t>(e - begin());
      }
      big_->list.pop_back();
      --size_;
      if (size_ <= small_max / 2) shrink_quietly([this] { to_small(); });
      return true;
    }
    if (e != last) *e = std::move(*last);
    std::destroy_at(last);
    --size_;
    if (size_ == 0) {
      release_small();
    } else if (size_ * 4 <= cap_) {
      // Give memory back after mass unsubscribes.
      shrink_quietly([this] { grow_small(cap_ / 2); });
    }
    return true;
  }

 private:
  static constexpr std::uint32_t small_max = 8;
  static constexpr std::uint32_t big_marker = static_cast<std::uint32_t>(-1);

  struct big {
    std::vector<entry> list;
    std::unordered_map<Key, std::uint32_t, KeyHash> index;
  };

  [[nodiscard]] bool is_big() const noexcept { return cap_ == big_marker; }

  entry* locate(const Key& key) {
    if (is_big()) {
      const auto it = big_->index.find(key);
      return it == big_->index.end() ? nullptr : &big_->list[it->second];
    }
    for (std::uint32_t i = 0; i < size_; ++i) {
      if (small_[i].key == key) return &small_[i];
    }
    return nullptr;
  }

  // Moves the small entries into a fresh array of `cap` slots (cap >= size_).
  void grow_small(std::uint32_t cap) {
    std::allocator<entry> alloc;
    entry* fresh = alloc.allocate(cap);
    for (std::uint32_t i = 0; i < size_; ++i) {
      std::construct_at(fresh + i, std::move(small_[i]));
      std::destroy_at(small_ + i);
    }
    if (small_ != nullptr) alloc.deallocate(small_, cap_);
    small_ = fresh;
    cap_ = cap;
  }

  void release_small() noexcept {
    if (small_ != nullptr) std::allocator<entry>{}.deallocate(small_, cap_);
    small_ = nullptr;
    cap_ = 0;
  }

  void to_big() {
    auto b = std::make_unique<big>();
    b->list.reserve(size_ * 2);
    b->index.reserve(size_ * 2);
    for (std::uint32_t i = 0; i < size_; ++i) {
      b->index.emplace(small_[i].key, i);
      b->list.push_back(std::move(small_[i]));
    }
    std::destroy_n(small_, size_);
    release_small();
    big_ = b.release();
    cap_ = big_marker;
  }

  void to_small() {
    std::allocator<entry> alloc;
    entry* fresh = alloc.allocate(small_max);  // may throw: the set stays big
    big* b = big_;
    for (std::uint32_t i = 0; i < size_; ++i) std::construct_at(fresh + i, std::move(b->list[i]));
    delete b;
    small_ = fresh;
    cap_ = small_max;
  }

  // Shrinking only saves memory: when it cannot allocate, keep the larger storage.
  template <class F>
  static void shrink_quietly(F&& shrink) noexcept {
    try {
      shrink();
    } catch (const std::bad_alloc&) {
    }
  }

  void clear() noexcept {
    if (is_big()) {
      delete big_;
    } else {
      std::destroy_n(small_, size_);
      release_small();
    }
    size_ = 0;
  }

  union {
    entry* small_ = nullptr;
    big* big_;
  };
  std::uint32_t size_ = 0;
  std::uint32_t cap_ = 0;  // big_marker: big_ is live
};

// Literal children of a trie node, keyed by each child's `level` member. Does not own the
// children (the trie deletes them); owns only its slot storage.
template <class Node>
class child_table {
 public:
  child_table() noexcept { one_ = nullptr; }
  ~child_table() { free_slots(); }
  child_table(const child_table&) = delete;
  child_table& operator=(const child_table&) = delete;

  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }

  [[nodiscard]] Node* find(std::string_view level) const noexcept {
    if (cap_ == 1) return one_->level == level ? one_ : nullptr;
    if (cap_ <= linear_cap) {
      for (std::uint32_t i = 0; i < count_; ++i) {
        if (slots_[i]->level == level) return slots_[i];
      }
      return nullptr;
    }
    const std::size_t mask = cap_ - 1;
    for (std::size_t i = hash(level) & mask;; i = (i + 1) & mask) {
      Node* n = slots_[i];
      if (n == nullptr) return nullptr;
      if (n->level == level) return n;
    }
  }

  // REQUIRES: no child with n->level is present.
  void insert(Node* n) {
    if (cap_ == 0) {
      one_ = n;
      cap_ = 1;
    } else if (cap_ == 1) {
      Node** slots = new Node*[4];
      slots[0] = one_;
      slots[1] = n;
      slots_ = slots;
      cap_ = 4;
    } else if (cap_ <= linear_cap) {
      if (count_ < cap_) {
        slots_[count_] = n;
      } else if (cap_ < linear_cap) {
        Node** slots = new Node*[linear_cap];
        std::copy(slots_, slots_ + count_, slots);
        slots[count_] = n;
        delete[] slots_;
        slots_ = slots;
        cap_ = linear_cap;
      } else {
        rehash(linear_cap * 2);
        place(n);
      }
    } else {
      if ((count_ + 1) * 4 > cap_ * 3) rehash(cap_ * 2);
      place(n);
    }
    ++count_;
  }

  // Removes the child with this level; returns it, or nullptr when absent.
  Node* erase(std::string_view level) noexcept {
    if (cap_ == 0) return nullptr;
    if (cap_ == 1) {
      if (one_->level != level) return nullptr;
      Node* n = one_;
      one_ = nullptr;
      cap_ = 0;
      count_ = 0;
      return n;
    }
    if (cap_ <= linear_cap) {
      for (std::uint32_t i = 0; i < count_; ++i) {
        if (slots_[i]->level != level) continue;
        Node* n = slots_[i];
        slots_[i] = slots_[count_ - 1];
        --count_;
        if (count_ == 1) {
          Node* only = slots_[0];
          delete[] slots_;
          one_ = only;
          cap_ = 1;
        }
        return n;
      }
      return nullptr;
    }
    const std::size_t mask = cap_ - 1;
    std::size_t i = hash(level) & mask;
    for (;; i = (i + 1) & mask) {
      if (slots_[i] == nullptr) return nullptr;
      if (slots_[i]->level == level) break;
    }
    Node* n = slots_[i];
    slots_[i] = nullptr;
    // Backward-shift deletion keeps every probe chain unbroken without tombstones.
    for (std::size_t j = (i + 1) & mask; slots_[j] != nullptr; j = (j + 1) & mask) {
      const std::size_t home = hash(slots_[j]->level) & mask;
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      slots_[j] = nullptr;
      i = j;
    }
    --count_;
    if (count_ <= linear_cap / 2) {
      shrink_to_linear();
    } else if (cap_ > 2 * linear_cap && count_ * 8 < cap_) {
      rehash(cap_ / 2);
    }
    return n;
  }

  template <class F>
  void for_each(F&& f) const {
    if (cap_ == 1) {
      f(one_);
    } else if (cap_ <= linear_cap) {
      for (std::uint32_t i = 0; i < count_; ++i) f(slots_[i]);
    } else {
      for (std::uint32_t i = 0; i < cap_; ++i) {
        if (slots_[i] != nullptr) f(slots_[i]);
      }
    }
  }

  // Heap bytes held by the slot storage (for memory accounting).
  [[nodiscard]] std::size_t slot_bytes() const noexcept {
    return cap_ > 1 ? cap_ * sizeof(Node*) : 0;
  }

 private:
  static constexpr std::uint32_t linear_cap = 8;

  static std::size_t hash(std::string_view level) noexcept {
    return std::hash<std::string_view>{}(level);
  }

  void free_slots() noexcept {
    if (cap_ > 1) delete[] slots_;
  }

  // Hashed mode only: puts n in the first free slot of its probe chain.
  void place(Node* n) noexcept {
    const std::size_t mask = cap_ - 1;
    std::size_t i = hash(n->level) & mask;
    while (slots_[i] != nullptr) i = (i + 1) & mask;
    slots_[i] = n;
  }

  void rehash(std::uint32_t new_cap) {
    Node** fresh = new Node*[new_cap]();
    Node** old = slots_;
    const std::uint32_t old_cap = cap_;
    const bool old_linear = old_cap <= linear_cap;
    slots_ = fresh;
    cap_ = new_cap;
    if (old_linear) {
      for (std::uint32_t i = 0; i < count_; ++i) place(old[i]);
    } else {
      for (std::uint32_t i = 0; i < old_cap; ++i) {
        if (old[i] != nullptr) place(old[i]);
      }
    }
    delete[] old;
  }

  void shrink_to_linear() noexcept {
    // Allocation failure here would only cost memory, but new[] may throw: keep the
    // hashed table in that case.
    Node** slots = new (std::nothrow) Node*[linear_cap];
    if (slots == nullptr) return;
    std::uint32_t k = 0;
    for (std::uint32_t i = 0; i < cap_; ++i) {
      if (slots_[i] != nullptr) slots[k++] = slots_[i];
    }
    delete[] slots_;
    slots_ = slots;
    cap_ = linear_cap;
  }

  // cap_ == 0: empty; 1: one_ is the only child; 2..linear_cap: slots_[0, count_) dense;
  // above: slots_ is an open-addressing table of cap_ (a power of two) slots.
  union {
    Node* one_;
    Node** slots_;
  };
  std::uint32_t count_ = 0;
  std::uint32_t cap_ = 0;
};

}  // namespace detail

template <class Key, class Value, class KeyHash = std::hash<Key>>
class topic_trie {
 public:
  topic_trie() : root_(new node(std::string_view{})) {}
  ~topic_trie() { destroy(root_); }

  topic_trie(const topic_trie&) = delete;
  topic_trie& operator=(const topic_trie&) = delete;
  // The moved-from trie is empty and usable.
  topic_trie(topic_trie&& other)
      : root_(std::exchange(other.root_, new node(std::string_view{}))),
        size_(std::exchange(other.size_, 0)),
        nodes_(std::exchange(other.nodes_, 1)) {}
  topic_trie& operator=(topic_trie&& other) = delete;

  // Inserts or replaces the entry `key` under `filter`. Returns true when it is new.
  // REQUIRES: is_valid_topic_filter(filter) and not a "$share/" filter.
  bool insert(std::string_view filter, const Key& key, Value value) {
    node* n = root_;
    std::size_t pos = 0;
    bool last = false;
    while (!last) n = child_or_create(n, detail::next_level(filter, pos, last));
    const bool added = n->entries.insert_or_assign(key, std::move(value));
    if (added) ++size_;
    return added;
  }

  // Removes the entry `key` under `filter` and prunes nodes left empty. Returns true when
  // the entry existed.
  bool erase(std::string_view filter, const Key& key) {
    detail::inline_stack<node*, 32> path;
    node* n = root_;
    path.push(n);
    std::size_t pos = 0;
    bool last = false;
    while (!last) {
      n = child(n, detail::next_level(filter, pos, last));
      if (n == nullptr) return false;
      path.push(n);
    }
    if (!n->entries.erase(key)) return false;
    --size_;
    for (std::size_t i = path.size() - 1; i > 0 && path[i]->empty(); --i) {
      detach(path[i - 1], path[i]);
      delete path[i];
      --nodes_;
    }
    return true;
  }

  // Pointer to the value of entry `key` under `filter`, or nullptr.
  Value* find(std::string_view filter, const Key& key) {
    node* n = root_;
    std::size_t pos = 0;
    bool last = false;
    while (!last) {
      n = child(n, detail::next_level(filter, pos, last));
      if (n == nullptr) return nullptr;
    }
    return n->entries.find(key);
  }

  // Calls visit(std::string_view filter, const Key&, Value&) for every entry whose filter
  // matches `topic`. An entry is visited once per matching filter; a key subscribed through
  // two matching filters is visited twice. The filter view is valid during the call only.
  // REQUIRES: visit does not modify the trie.
  template <class F>
  void match(std::string_view topic, F&& visit) {
    detail::filter_buffer filter;
    detail::inline_stack<frame, 32> stack;

    // [MQTT-4.7.2-1] a topic starting with '$' is not matched by a filter whose first level
    // is a wildcard.
    const bool dollar = !topic.empty() && topic.front() == '$';
    {
      std::size_t pos = 0;
      bool last = false;
      const std::string_view level = detail::next_level(topic, pos, last);
      if (!dollar) {
        if (root_->hash() != nullptr) visit_entries(root_->hash(), "#", visit);
        if (root_->plus() != nullptr) stack.push(frame{root_->plus(), pos, 0, last, true});
      }
      if (node* c = root_->children.find(level)) stack.push(frame{c, pos, 0, last, true});
    }

    while (!stack.empty()) {
      const frame f = stack.pop();
      filter.truncate(f.parent_len);
      if (!f.first) filter.append("/");
      filter.append(f.n->level);
      const std::size_t len = filter.size();

      if (f.done) {
        // Every topic level is matched by the filter of f.n.
        visit_entries(f.n, filter.view(), visit);
        if (f.n->hash() != nullptr) {
          // "a/#" matches "a" [MQTT-4.7.1-1].
          filter.append("/#");
          visit_entries(f.n->hash(), filter.view(), visit);
        }
        continue;
      }
      std::size_t pos = f.pos;
      bool last = false;
      const std::string_view level = detail::next_level(topic, pos, last);
      if (f.n->hash() != nullptr) {
        filter.append("/#");
        visit_entries(f.n->hash(), filter.view(), visit);
        filter.truncate(len);
      }
      if (f.n->plus() != nullptr) stack.push(frame{f.n->plus(), pos, len, last, false});
      if (node* c = f.n->children.find(level)) stack.push(frame{c, pos, len, last, false});
    }
  }

  // match() for a trie that several threads read and none changes: visit gets
  // (std::string_view filter, const Key&, const Value&). match() writes nothing of the
  // trie (its stack and filter buffer are its own), so such calls may run concurrently.
  template <class F>
  void match(std::string_view topic, F&& visit) const {
    const_cast<topic_trie*>(this)->match(
        topic, [&](std::string_view filter, const Key& key, Value& value) { visit(filter, key, std::as_const(value)); });
  }

  // Calls visit(const Key&, Value&) for every entry, in no particular order.
  // REQUIRES: visit does not modify the trie.
  template <class F>
  void for_each(F&& visit) {
    std::vector<node*> pending{root_};
    while (!pending.empty()) {
      node* n = pending.back();
      pending.pop_back();
      for (auto& e : n->entries) visit(static_cast<const Key&>(e.key), e.value);
      n->children.for_each([&](node* c) { pending.push_back(c); });
      if (n->plus() != nullptr) pending.push_back(n->plus());
      if (n->hash() != nullptr) pending.push_back(n->hash());
    }
  }

  // Number of entries.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  // Number of trie nodes, the root included (for memory accounting and prune tests).
  [[nodiscard]] std::size_t node_count() const noexcept { return nodes_; }

 private:
  // 56 bytes: a 64-byte allocation with glibc malloc.
  struct node {
    explicit node(std::string_view l) : level(l) {}
    [[nodiscard]] bool empty() const noexcept {
      return entries.empty() && children.empty() && wild == nullptr;
    }
    [[nodiscard]] node* plus() const noexcept { return wild ? wild->plus : nullptr; }
    [[nodiscard]] node* hash() const noexcept { return wild ? wild->hash : nullptr; }

    detail::level_text level;  // "+" for a plus child, "#" for a hash child, "" for the root
    detail::child_table<node> children;
    // The '+' and '#' children (owned), allocated only for nodes that have one.
    struct wildcards {
      node* plus = nullptr;
      node* hash = nullptr;
    };
    std::unique_ptr<wildcards> wild;
    detail::entry_set<Key, Value, KeyHash> entries;
  };
  static_assert(sizeof(void*) != 8 || sizeof(node) == 56, "node outgrew its 64-byte chunk");

  struct frame {
    node* n;               // node whose level matched
    std::size_t pos;       // start of the next topic level (meaningless when done)
    std::size_t parent_len;  // filter buffer length before n's level
    bool done;             // every topic level has been consumed
    bool first;            // n is a child of the root (no '/' before its level)
  };

  static node* child(node* n, std::string_view level) noexcept {
    if (level == "+") return n->plus();
    if (level == "#") return n->hash();
    return n->children.find(level);
  }

  node* child_or_create(node* n, std::string_view level) {
    const bool is_plus = level == "+";
    if (is_plus || level == "#") {
      if (!n->wild) n->wild = std::make_unique<typename node::wildcards>();
      node*& slot = is_plus ? n->wild->plus : n->wild->hash;
      if (slot == nullptr) {
        slot = new node(level);
        ++nodes_;
      }
      return slot;
    }
    if (node* c = n->children.find(level)) return c;
    auto fresh = std::make_unique<node>(level);
    n->children.insert(fresh.get());
    ++nodes_;
    return fresh.release();
  }

  static void detach(node* parent, node* c) noexcept {
    if (parent->plus() == c) {
      parent->wild->plus = nullptr;
    } else if (parent->hash() == c) {
      parent->wild->hash = nullptr;
    } else {
      parent->children.erase(c->level);
      return;
    }
    if (parent->wild->plus == nullptr && parent->wild->hash == nullptr) parent->wild.reset();
  }

  template <class F>
  static void visit_entries(node* n, std::string_view filter, F& visit) {
    for (auto& e : n->entries) visit(filter, static_cast<const Key&>(e.key), e.value);
  }

  // Deletes a subtree without recursion (a filter may have thousands of levels).
  static void destroy(node* root) noexcept {
    if (root == nullptr) return;
    std::vector<node*> pending;
    pending.push_back(root);
    while (!pending.empty()) {
      node* n = pending.back();
      pending.pop_back();
      n->children.for_each([&](node* c) { pending.push_back(c); });
      if (n->plus() != nullptr) pending.push_back(n->plus());
      if (n->hash() != nullptr) pending.push_back(n->hash());
      delete n;
    }
  }

  node* root_;
  std::size_t size_ = 0;
  std::size_t nodes_ = 1;
};

}  // namespace wharf::core
