// Durable key-value storage on RocksDB with group commit. The only place RocksDB appears.
//
// Durability: write() completes only after its batch is in the WAL and the WAL is synced
// (fdatasync). Batches submitted while a sync is in flight are merged into the next
// WriteBatch, so many writers share one sync (group commit). A batch written with
// durability::buffered is in the WAL when it completes but not yet synced: the next synced
// write syncs it too (the WAL is one file, in order); a group of buffered batches alone
// costs no sync. For what a log replays after a crash (the replicated queue core's state).
// Threading: all methods are thread-safe. Completions run on the storage writer thread:
// they must be short (typically a post to the caller's executor).
#pragma once

#include <cstddef>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace wharf::core {

// Errors reported to write completions. Category name: "wharf.storage".
enum class storage_errc {
  closed = 1,     // write() after close()
  io_error,       // RocksDB reported an I/O error (the batch may not be durable)
  no_space,       // the disk is full
  corruption,     // RocksDB detected corruption
  failed,         // any other RocksDB failure
};
[[nodiscard]] const std::error_category& storage_category() noexcept;
[[nodiscard]] std::error_code make_error_code(storage_errc e) noexcept;

class write_batch {
 public:
  void put(std::string_view key, std::string_view value);
  void erase(std::string_view key);
  void erase_range(std::string_view begin_key, std::string_view end_key);  // [begin, end)
  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_.size(); }  // of keys and values
  // Room for `ops` operations holding `bytes` of keys and values: a batch whose size is known
  // ahead allocates once instead of growing step by step (and glibc consolidates its free
  // lists on every growth past 1 KiB).
  void reserve(std::size_t ops, std::size_t bytes);

  struct op {
    enum class kind : std::uint8_t { put, erase, erase_range } what;
    std::string_view key;
    std::string_view value;  // put: the value; erase_range: the end key
  };
  // The operations in order, viewing the batch's buffer: valid until it changes or goes.
  [[nodiscard]] std::vector<op> ops() const;

 private:
  // Keys and values live back to back in one buffer: a turn's hundreds of operations cost
  // a few buffer growths rather than two allocations each (freed on the writer thread).
  struct entry {
    op::kind what;
    std::uint32_t key_size;
    std::uint32_t value_size;
    std::size_t offset;
  };
  void add(op::kind what, std::string_view key, std::string_view value);
  std::string bytes_;
  std::vector<entry> entries_;
};

struct storage_options {
  std::string path;
  // false only for tests/benchmarks that measure without fsync; never in production.
  bool sync = true;
  // Upper bound of one group-commit batch in operations. Default: 65536.
  std::size_t max_group_ops = 65536;
  // A write is refused (std::errc::no_space_on_device, before RocksDB sees it) while the file
  // system of `path` has less free space than this; 0: no check. RocksDB must never meet a
  // full disk in its WAL: its file writer aborts on the error path (7.8). Default: 0.
  std::uint64_t min_free_bytes = 0;
  // Tests only: an import's commit() stops right after its swap has begun (the range erased,
  // nothing ingested yet) and returns std::errc::interrupted, as a crash there leaves it;
  // the next open() must finish the swap.
  bool interrupt_imports_for_tests = false;
};

// Upper bounds of the histogram buckets in storage_stats; each histogram has one more
// bucket, for everything above the last bound.
inline constexpr std::array<std::uint64_t, 10> sync_latency_bounds_us = {100,  250,   500,   1000,   2500,
                                                                          5000, 10000, 25000, 100000, 1000000};
inline constexpr std::array<std::uint64_t, 8> group_size_bounds = {1, 2, 4, 8, 16, 32, 64, 128};

struct storage_stats {
  // Group writes to RocksDB: one WriteBatch, synced when storage_options.sync (so with
  // sync=true this is the number of fdatasyncs the writer asked for).
  std::uint64_t syncs = 0;
  std::uint64_t batches_committed = 0; // caller batches committed
  std::uint64_t sync_time_us_total = 0;
  std::uint64_t refused_low_disk = 0;  // group writes refused for min_free_bytes
  // Group writes by their time in RocksDB's Write (the fsync, with sync=true): bucket i
  // counts those up to sync_latency_bounds_us[i] (and above the previous bound).
  std::array<std::uint64_t, sync_latency_bounds_us.size() + 1> sync_latency_buckets{};
  // Group commits by the caller batches they held (group_size_bounds, the same way).
  std::array<std::uint64_t, group_size_bounds.size() + 1> group_size_buckets{};
};

enum class durability : std::uint8_t { synced, buffered };

// The store as it was at one moment (a RocksDB snapshot): reads see no later write for as
// long as the view lives, so a large state can be read bit by bit (a Raft snapshot sent to
// another member) while writes go on. REQUIRES: the storage outlives the view.
class storage_view {
 public:
  virtual ~storage_view() = default;
  [[nodiscard]] virtual std::optional<std::string> get(std::string_view key) = 0;
  // Visits keys in [begin, end) in key order until `visit` returns false.
  virtual void scan_range(std::string_view begin, std::string_view end,
                          const std::function<bool(std::string_view key, std::string_view value)>& visit) = 0;
};

// Replaces everything in one key range with a state received from elsewhere (a Raft
// snapshot). What is added goes to files as it arrives, never whole into memory; commit()
// swaps it in. One import at a time per storage. Destroyed uncommitted, it leaves nothing.
class range_import {
 public:
  virtual ~range_import() = default;
  // REQUIRES: keys inside the range, each above the one before.
  [[nodiscard]] virtual std::error_code add(std::string_view key, std::string_view value) = 0;
  // Afterwards the range holds exactly what was added, durably. A crash inside leaves the
  // old range or, once the swap has begun, a swap the next open() finishes: never a mix.
  // REQUIRES: no write into the range queued or in flight.
  [[nodiscard]] virtual std::error_code commit() = 0;
};

class storage {
 public:
  using completion = std::function<void(std::error_code)>;

  // Opens (creating if missing) the database at options.path, and finishes an import whose
  // swap a crash interrupted. Throws std::system_error with a message naming the path on
  // failure (startup only).
  static std::unique_ptr<storage> open(const storage_options& options);
  virtual ~storage() = default;

  // Queues `batch`; `done` runs on the writer thread once it is durable (or failed).
  // Batches are applied in submission order and completions run in that order. A batch
  // shares its RocksDB write (and its error) with the batches merged into its group.
  // `done` may be empty; it must not throw and must not call write_sync(). After close(),
  // `done` runs at once on the calling thread with storage_errc::closed.
  virtual void write(write_batch batch, completion done, durability how = durability::synced) = 0;
  // Synchronous durable write from the calling thread's point of view (waits for the
  // group commit). For startup, shutdown and tests. Called from a completion (the writer
  // thread) it returns std::errc::resource_deadlock_would_occur instead of hanging.
  [[nodiscard]] virtual std::error_code write_sync(write_batch batch) = 0;

  [[nodiscard]] virtual std::optional<std::string> get(std::string_view key) = 0;
  // Visits keys starting with `prefix` in key order until `visit` returns false.
  virtual void scan_prefix(std::string_view prefix,
                           const std::function<bool(std::string_view key, std::string_view value)>& visit) = 0;
  // Visits keys in [begin, end).
  virtual void scan_range(std::string_view begin, std::string_view end,
                          const std::function<bool(std::string_view key, std::string_view value)>& visit) = 0;

  // The store as it is now, frozen (storage_view).
  [[nodiscard]] virtual std::unique_ptr<storage_view> view() = 0;
  // An import that will replace every key in [begin, end) (range_import).
  [[nodiscard]] virtual std::unique_ptr<range_import> import_range(std::string begin, std::string end) = 0;

  [[nodiscard]] virtual storage_stats stats() const = 0;
  // Stops the writer thread after draining queued batches (their completions run). Idempotent.
  // Reads keep working until the object is destroyed (the destructor releases RocksDB).
  // REQUIRES: not called from a completion (it joins the writer thread).
  virtual void close() = 0;
};

// Big-endian fixed-width integers for keys that sort numerically.
void append_be64(std::string& out, std::uint64_t v);
void append_be32(std::string& out, std::uint32_t v);
[[nodiscard]] std::uint64_t read_be64(std::string_view bytes);

}  // namespace wharf::core

template <>
struct std::is_error_code_enum<wharf::core::storage_errc> : std::true_type {};
