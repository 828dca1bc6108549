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
//     std::size_t size() const;   // number of entries
//   };
// Filters are plain (not "$share/..."): the router strips the share prefix and keys shared
// entries by group.
//
// Layout (chosen for ~1,000,000 entries with mostly distinct filters):
//  - one node per filter level; a node owns its level text, its literal children, its '+'
//    and '#' children (kept apart from the literal ones so match never hashes them) and
//    its entries;
//  - literal children live in a compact table of node pointers: a single child inline, up
//    to 8 in a small array searched linearly, more in an open-addressing hash table
//    (linear probing, load <= 3/4) keyed by the child's level text;
//  - entries of one node are a vector, with a hash index on Key added only when a node
//    holds many entries (a popular filter), so one-subscriber nodes pay no index;
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
  std::array<T, N> inline_{};
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
        if (root_->hash != nullptr) visit_entries(root_->hash, "#", visit);
        if (root_->plus != nullptr) stack.push(frame{root_->plus, pos, 0, last, true});
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
        if (f.n->hash != nullptr) {
          // "a/#" matches "a" [MQTT-4.7.1-1].
          filter.append("/#");
          visit_entries(f.n->hash, filter.view(), visit);
        }
        continue;
      }
      std::size_t pos = f.pos;
      bool last = false;
      const std::string_view level = detail::next_level(topic, pos, last);
      if (f.n->hash != nullptr) {
        filter.append("/#");
        visit_entries(f.n->hash, filter.view(), visit);
        filter.truncate(len);
      }
      if (f.n->plus != nullptr) stack.push(frame{f.n->plus, pos, len, last, false});
      if (node* c = f.n->children.find(level)) stack.push(frame{c, pos, len, last, false});
    }
  }

  // Number of entries.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  // Number of trie nodes, the root included (for memory accounting and prune tests).
  [[nodiscard]] std::size_t node_count() const noexcept { return nodes_; }

 private:
  struct entry {
    Key key;
    Value value;
  };

  // Entries of one node: a vector, plus a hash index once it holds more than
  // index_threshold entries.
  class entry_set {
   public:
    [[nodiscard]] bool empty() const noexcept { return list_.empty(); }
    std::vector<entry>& list() noexcept { return list_; }

    Value* find(const Key& key) {
      const std::size_t i = index_of(key);
      return i == npos ? nullptr : &list_[i].value;
    }

    bool insert_or_assign(const Key& key, Value value) {
      const std::size_t i = index_of(key);
      if (i != npos) {
        list_[i].value = std::move(value);
        return false;
      }
      list_.push_back(entry{key, std::move(value)});
      if (index_) {
        index_->emplace(key, static_cast<std::uint32_t>(list_.size() - 1));
      } else if (list_.size() > index_threshold) {
        build_index();
      }
      return true;
    }

    bool erase(const Key& key) {
      const std::size_t i = index_of(key);
      if (i == npos) return false;
      if (index_) index_->erase(key);
      if (i + 1 != list_.size()) {
        list_[i] = std::move(list_.back());
        if (index_) (*index_)[list_[i].key] = static_cast<std::uint32_t>(i);
      }
      list_.pop_back();
      if (index_ && list_.size() < index_threshold / 2) index_.reset();
      // Give memory back after mass unsubscribes from a popular filter.
      if (list_.capacity() > 4 && list_.size() * 4 < list_.capacity()) list_.shrink_to_fit();
      if (list_.empty()) list_.shrink_to_fit();
      return true;
    }

   private:
    static constexpr std::size_t index_threshold = 8;
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    std::size_t index_of(const Key& key) const {
      if (index_) {
        const auto it = index_->find(key);
        return it == index_->end() ? npos : it->second;
      }
      for (std::size_t i = 0; i < list_.size(); ++i) {
        if (list_[i].key == key) return i;
      }
      return npos;
    }

    void build_index() {
      auto index = std::make_unique<std::unordered_map<Key, std::uint32_t, KeyHash>>();
      index->reserve(list_.size() * 2);
      for (std::size_t i = 0; i < list_.size(); ++i) {
        index->emplace(list_[i].key, static_cast<std::uint32_t>(i));
      }
      index_ = std::move(index);
    }

    std::vector<entry> list_;
    std::unique_ptr<std::unordered_map<Key, std::uint32_t, KeyHash>> index_;
  };

  struct node {
    explicit node(std::string_view l) : level(l) {}
    [[nodiscard]] bool empty() const noexcept {
      return entries.empty() && children.empty() && plus == nullptr && hash == nullptr;
    }

    std::string level;  // "+" for a plus child, "#" for a hash child, "" for the root
    detail::child_table<node> children;
    node* plus = nullptr;  // owned
    node* hash = nullptr;  // owned
    entry_set entries;
  };

  struct frame {
    node* n;               // node whose level matched
    std::size_t pos;       // start of the next topic level (meaningless when done)
    std::size_t parent_len;  // filter buffer length before n's level
    bool done;             // every topic level has been consumed
    bool first;            // n is a child of the root (no '/' before its level)
  };

  static node* child(node* n, std::string_view level) noexcept {
    if (level == "+") return n->plus;
    if (level == "#") return n->hash;
    return n->children.find(level);
  }

  node* child_or_create(node* n, std::string_view level) {
    node** slot = nullptr;
    if (level == "+") {
      slot = &n->plus;
    } else if (level == "#") {
      slot = &n->hash;
    } else if (node* c = n->children.find(level)) {
      return c;
    }
    if (slot != nullptr && *slot != nullptr) return *slot;
    auto fresh = std::make_unique<node>(level);
    if (slot != nullptr) {
      *slot = fresh.get();
    } else {
      n->children.insert(fresh.get());
    }
    ++nodes_;
    return fresh.release();
  }

  static void detach(node* parent, node* c) noexcept {
    if (parent->plus == c) {
      parent->plus = nullptr;
    } else if (parent->hash == c) {
      parent->hash = nullptr;
    } else {
      parent->children.erase(c->level);
    }
  }

  template <class F>
  static void visit_entries(node* n, std::string_view filter, F& visit) {
    for (auto& e : n->entries.list()) visit(filter, static_cast<const Key&>(e.key), e.value);
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
      if (n->plus != nullptr) pending.push_back(n->plus);
      if (n->hash != nullptr) pending.push_back(n->hash);
      delete n;
    }
  }

  node* root_;
  std::size_t size_ = 0;
  std::size_t nodes_ = 1;
};

}  // namespace wharf::core
