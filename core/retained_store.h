// Retained messages: one per topic, persisted under the "r/" key prefix.
// Thread-safe: readers (SUBSCRIBE on any shard) share a lock; writers (a retained PUBLISH)
// take it exclusively. Retained writes are rare next to routing, so a shared_mutex costs
// nothing measurable on the publish path (which never touches this store unless retain=1).
//
// Interface contract:
//   class retained_store {
//    public:
//     explicit retained_store(std::size_t max_messages);  // bound; Default from config
//     // Loads every retained message from storage (startup).
//     void load(storage&);
//     // Sets m as the retained message of m.topic, or clears it when m.payload is empty.
//     // Appends the persistence ops to `batch` (the caller commits them with the publish's
//     // group commit). Returns false (and changes nothing) when the store is full and the
//     // topic is new; rejected_full() counts those.
//     bool set(const message& m, write_batch& batch);
//     // Calls visit(const message&) for each retained message matching `filter`, skipping
//     // (and erasing lazily) the ones whose expiry_unix_ms <= now_unix_ms.
//     void match(std::string_view filter, std::int64_t now_unix_ms, F&& visit) const;
//     std::size_t size() const;              // clients' retained topics, not the broker's `$SYS`
//     std::uint64_t rejected_full() const;
//   };
//
// Writers are not starved: glibc's shared_mutex prefers readers, so a steady stream of
// SUBSCRIBE readers could hold a retained PUBLISH off forever. A writer therefore holds
// gate_ while it waits for and holds the exclusive lock, and readers pass through gate_
// before taking the shared lock.
//
// Expired messages: match() runs under the shared lock, so it only skips them; they are
// erased (from memory and, through the caller's batch, from storage) by erase_expired(),
// which the owner calls periodically, or when their topic is set again. Until then they
// count towards max_messages.
//
// The broker's own topics (`$SYS/...`, any topic starting with '$': [MQTT-4.7.2-1], clients
// cannot publish there) are retained here too, for late subscribers, but they are neither
// counted by size() nor bounded by max_messages: they are a fixed set the broker rewrites
// every `sys_interval_s`, and a gauge of stored messages that jumped by the size of that set
// at the first tick would say nothing about what clients stored.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "core/message.h"
#include "core/storage.h"

namespace wharf::core {

class retained_store {
 public:
  // Storage key prefix of retained messages: "r/" + topic → encode_message(m).
  static constexpr std::string_view key_prefix = "r/";

  // At most max_messages retained topics (a bound from config).
  explicit retained_store(std::size_t max_messages);
  ~retained_store();
  retained_store(const retained_store&) = delete;
  retained_store& operator=(const retained_store&) = delete;

  // Loads every retained message from storage (startup). Records that fail to decode are
  // skipped and counted (corrupt_records()). Loading ignores max_messages: a lowered bound
  // refuses new topics until the store shrinks below it.
  void load(storage& store);

  // Sets m as the retained message of m.topic, or clears it when m.payload is empty
  // ([MQTT-3.3.1-6], [MQTT-3.3.1-7]). Appends the persistence ops to `batch` (the caller
  // commits them with the publish's group commit). Returns false (and changes nothing)
  // when the store is full and the topic is a new client topic; rejected_full() counts those.
  // REQUIRES: is_valid_topic_name(m.topic).
  bool set(const message& m, write_batch& batch);

  // Calls visit(const message&) for each retained message matching `filter` (a plain
  // filter, not "$share/..."), skipping those whose expiry_unix_ms <= now_unix_ms.
  // visit runs under the shared lock: it must not call set() or erase_expired().
  template <class F>
  void match(std::string_view filter, std::int64_t now_unix_ms, F&& visit) const {
    using fn = std::remove_reference_t<F>;
    match_impl(filter, now_unix_ms, const_cast<void*>(static_cast<const void*>(std::addressof(visit))),
               [](void* ctx, const message& m) { (*static_cast<fn*>(ctx))(m); });
  }

  // Erases every message whose expiry_unix_ms <= now_unix_ms, appending the storage ops to
  // `batch`. Returns how many were erased. O(size()): call it periodically.
  std::size_t erase_expired(std::int64_t now_unix_ms, write_batch& batch);

  // Retained client topics (the broker's own '$' topics left out; see above).
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] std::uint64_t rejected_full() const noexcept {
    return rejected_full_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t corrupt_records() const noexcept {
    return corrupt_records_.load(std::memory_order_relaxed);
  }

 private:
  struct level_node;
  using visit_fn = void (*)(void* ctx, const message& m);

  void match_impl(std::string_view filter, std::int64_t now_unix_ms, void* ctx,
                  visit_fn visit) const;
  // Locks for readers and writers, in the gate_ protocol.
  [[nodiscard]] std::shared_lock<std::shared_mutex> lock_shared() const;
  struct exclusive_lock {
    std::unique_lock<std::mutex> gate;
    std::unique_lock<std::shared_mutex> lock;
  };
  [[nodiscard]] exclusive_lock lock_exclusive() const;

  // REQUIRES: mu_ held exclusively.
  void insert_locked(std::unique_ptr<message> m);
  void erase_locked(std::string_view topic);

  const std::size_t max_messages_;
  mutable std::mutex gate_;  // see "Writers are not starved" above
  mutable std::shared_mutex mu_;
  // topic → message; the key views the message's own topic.
  std::unordered_map<std::string_view, std::unique_ptr<message>> by_topic_;  // GUARDED_BY(mu_)
  std::unique_ptr<level_node> root_;   // GUARDED_BY(mu_): retained topics by level
  std::size_t broker_topics_ = 0;      // GUARDED_BY(mu_): entries of by_topic_ starting with '$'
  std::atomic<std::uint64_t> rejected_full_{0};
  std::atomic<std::uint64_t> corrupt_records_{0};
};

}  // namespace wharf::core
