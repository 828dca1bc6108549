// The storage writer: group commit over RocksDB. See storage.h for the contract.
#include "core/storage.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

namespace wharf::core {
namespace {

// Adds one to the bucket of `buckets` that `value` falls in (see storage_stats).
template <std::size_t N>
void count_in_bucket(std::array<std::atomic<std::uint64_t>, N + 1>& buckets, const std::array<std::uint64_t, N>& bounds,
                     std::uint64_t value) {
  const auto bucket = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin());
  buckets[bucket].fetch_add(1, std::memory_order_relaxed);
}

class storage_category_impl final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "wharf.storage"; }
  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<storage_errc>(ev)) {
      case storage_errc::closed: return "storage is closed";
      case storage_errc::io_error: return "storage I/O error";
      case storage_errc::no_space: return "storage device is full";
      case storage_errc::corruption: return "storage corruption detected";
      case storage_errc::failed: return "storage operation failed";
    }
    return "unknown storage error";
  }
};

std::error_code to_error_code(const rocksdb::Status& s) {
  if (s.ok()) return {};
  if (s.IsNoSpace()) return make_error_code(storage_errc::no_space);
  if (s.IsIOError()) return make_error_code(storage_errc::io_error);
  if (s.IsCorruption()) return make_error_code(storage_errc::corruption);
  return make_error_code(storage_errc::failed);
}

rocksdb::Slice to_slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view to_view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// The smallest key greater than every key starting with `prefix`; empty when none exists
// (the prefix is all 0xff bytes).
std::string prefix_successor(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last != 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return end;
}

// The memtable insert hint's key prefix: the first 3 bytes ("cs/", "cb/", "q/…"). With a
// group's operations in key order (commit()), most inserts land next to the previous one
// of the same prefix and fix the skip-list splice locally instead of descending from the top.
//
// RocksDB 7.8 (bookworm) keeps one hint map per memtable for point keys and range
// tombstones alike (MemTable::Add; later releases hint only the point table), and a range
// tombstone inserted with a point key's hint corrupts the skip list (an assertion in
// FindSpliceForLevel). So no key gets a hint unless the writer thread is inserting a group
// (hint_scope) and the key is not the begin key of one of that group's range erases —
// which also keeps WAL recovery at open, on another thread, hint-free.
class group_insert_hint final : public rocksdb::SliceTransform {
 public:
  static constexpr std::size_t prefix_size = 3;

  // While alive, the calling thread's memtable inserts may use hints, except for the
  // begin keys in `range_begins`.
  class hint_scope {
   public:
    explicit hint_scope(const std::vector<std::string_view>& range_begins) { active_ranges_ = &range_begins; }
    ~hint_scope() { active_ranges_ = nullptr; }
    hint_scope(const hint_scope&) = delete;
    hint_scope& operator=(const hint_scope&) = delete;
  };

  [[nodiscard]] const char* Name() const override { return "wharf.group_insert_hint"; }
  [[nodiscard]] rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), prefix_size};
  }
  [[nodiscard]] bool InDomain(const rocksdb::Slice& key) const override {
    if (active_ranges_ == nullptr || key.size() < prefix_size) return false;
    const auto k = to_view(key);
    return std::find(active_ranges_->begin(), active_ranges_->end(), k) == active_ranges_->end();
  }

 private:
  static thread_local const std::vector<std::string_view>* active_ranges_;
};

thread_local const std::vector<std::string_view>* group_insert_hint::active_ranges_ = nullptr;

// Options for many small keys (queue entries, sessions, retained messages) written in
// small synced batches and mostly deleted soon after.
rocksdb::Options make_options() {
  rocksdb::Options o;
  o.create_if_missing = true;
  // A crash (kill -9 or power loss) loses nothing that was synced: recovery replays the
  // WAL up to the first torn or corrupt record and stops there.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  o.max_background_jobs = 2;  // the target machines are small; compaction must not starve I/O
  o.write_buffer_size = 32 << 20;
  o.max_write_buffer_number = 3;
  o.level_compaction_dynamic_level_bytes = true;
  o.compaction_style = rocksdb::kCompactionStyleLevel;
  // Sockets need the file descriptors (a process may open at most 20,000 files).
  o.max_open_files = 512;
  o.keep_log_file_num = 4;
  o.max_manifest_file_size = 64 << 20;
  // WAL size bound: forces flushes of memtables that pin old WAL files.
  o.max_total_wal_size = 256 << 20;
  o.memtable_insert_with_hint_prefix_extractor = std::make_shared<group_insert_hint>();

  const auto supported = rocksdb::GetSupportedCompressions();
  const auto has = [&](rocksdb::CompressionType t) {
    return std::find(supported.begin(), supported.end(), t) != supported.end();
  };
  o.compression = has(rocksdb::kLZ4Compression) ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  o.bottommost_compression =
      has(rocksdb::kZSTD) ? rocksdb::kZSTD : o.compression;

  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(64 << 20);
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  t.optimize_filters_for_memory = true;
  t.format_version = 5;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

// Where an import keeps its files, under the database's directory, and the key that says a
// swap has begun: its value names the range and the files (in that directory), so that
// open() can finish it.
// The key sorts before every key wharf writes (theirs start with a letter).
constexpr std::string_view import_dir_name = "import";
constexpr std::string_view import_marker_key = std::string_view("\0import", 7);
// An import file holds up to this much before the next one starts.
constexpr std::uint64_t import_file_bytes = 64u << 20;

std::string encode_import_marker(std::string_view begin, std::string_view end, const std::vector<std::string>& names) {
  std::string out;
  auto put = [&out](std::string_view s) {
    append_be32(out, static_cast<std::uint32_t>(s.size()));
    out.append(s);
  };
  put(begin);
  put(end);
  for (const auto& name : names) put(name);
  return out;
}

// begin, end, then the files' names; nullopt when `bytes` is not a marker.
std::optional<std::vector<std::string>> decode_import_marker(std::string_view bytes) {
  std::vector<std::string> parts;
  while (!bytes.empty()) {
    if (bytes.size() < 4) return std::nullopt;
    std::size_t n = 0;
    for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
    bytes.remove_prefix(4);
    if (bytes.size() < n) return std::nullopt;
    parts.emplace_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  if (parts.size() < 2) return std::nullopt;
  return parts;
}

class rocks_view final : public storage_view {
 public:
  explicit rocks_view(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~rocks_view() override { db_->ReleaseSnapshot(snapshot_); }
  rocks_view(const rocks_view&) = delete;
  rocks_view& operator=(const rocks_view&) = delete;

  std::optional<std::string> get(std::string_view key) override {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot_;
    std::string value;
    if (!db_->Get(ro, to_slice(key), &value).ok()) return std::nullopt;
    return value;
  }

  void scan_range(std::string_view begin, std::string_view end,
                  const std::function<bool(std::string_view, std::string_view)>& visit) override {
    if (end.empty() || end <= begin) return;
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot_;
    const rocksdb::Slice upper = to_slice(end);
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(to_slice(begin)); it->Valid(); it->Next()) {
      if (!visit(to_view(it->key()), to_view(it->value()))) break;
    }
  }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

// Ingests the import's files (names in `dir`) into `db`, a swap begun (the range already
// erased), and clears the marker. Ingesting again what a crash had already ingested is
// harmless: the same keys with the same values.
std::error_code finish_import_swap(rocksdb::DB* db, const std::string& dir, const std::vector<std::string>& names) {
  std::vector<std::string> files;
  for (const auto& name : names) files.push_back(dir + "/" + name);
  if (!files.empty()) {
    rocksdb::IngestExternalFileOptions io;
    io.move_files = false;  // kept until the marker is gone, for a swap a crash interrupts
    if (const auto s = db->IngestExternalFile(files, io); !s.ok()) return to_error_code(s);
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (const auto s = db->Delete(wo, to_slice(import_marker_key)); !s.ok()) return to_error_code(s);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return {};
}

class rocks_import final : public range_import {
 public:
  rocks_import(rocksdb::DB* db, std::string dir, std::string begin, std::string end, bool interrupt)
      : db_(db), dir_(std::move(dir)), begin_(std::move(begin)), end_(std::move(end)), interrupt_(interrupt) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);  // what an import before a restart left
  }
  ~rocks_import() override {
    writer_.reset();
    if (!committed_) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }
  rocks_import(const rocks_import&) = delete;
  rocks_import& operator=(const rocks_import&) = delete;

  std::error_code add(std::string_view key, std::string_view value) override {
    if (key < begin_ || key >= end_) return std::make_error_code(std::errc::invalid_argument);
    if (writer_ && writer_->FileSize() >= import_file_bytes) {
      if (auto ec = finish_file()) return ec;
    }
    if (!writer_) {
      std::error_code ec;
      std::filesystem::create_directories(dir_, ec);
      if (ec) return ec;
      writer_ = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(), make_options());
      files_.push_back(std::to_string(files_.size()) + ".sst");
      if (const auto s = writer_->Open(dir_ + "/" + files_.back()); !s.ok()) return to_error_code(s);
    }
    return to_error_code(writer_->Put(to_slice(key), to_slice(value)));
  }

  std::error_code commit() override {
    if (writer_) {
      if (auto ec = finish_file()) return ec;
    }
    // The marker and the erase in one synced write: from here on the swap is finished by
    // finish_import_swap, now or at the next open().
    rocksdb::WriteBatch wb;
    wb.Put(to_slice(import_marker_key), encode_import_marker(begin_, end_, files_));
    wb.DeleteRange(to_slice(begin_), to_slice(end_));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (const auto s = db_->Write(wo, &wb); !s.ok()) return to_error_code(s);
    committed_ = true;
    if (interrupt_) return std::make_error_code(std::errc::interrupted);
    return finish_import_swap(db_, dir_, files_);
  }

 private:
  std::error_code finish_file() {
    const auto s = writer_->Finish();
    writer_.reset();
    return to_error_code(s);
  }

  rocksdb::DB* db_;
  std::string dir_;
  std::string begin_;
  std::string end_;
  std::unique_ptr<rocksdb::SstFileWriter> writer_;
  std::vector<std::string> files_;  // names in dir_
  bool interrupt_;
  bool committed_ = false;
};

class rocks_storage final : public storage {
 public:
  rocks_storage(const storage_options& options, rocksdb::DB* db)
      : options_(options), db_(db), writer_([this] { run_writer(); }) {}

  ~rocks_storage() override { close(); }

  rocks_storage(const rocks_storage&) = delete;
  rocks_storage& operator=(const rocks_storage&) = delete;

  void write(write_batch batch, completion done, durability how = durability::synced) override {
    {
      std::lock_guard lock(mu_);
      if (!closing_) {
        queue_.push_back(pending{std::move(batch), std::move(done), how == durability::synced});
        // Waking an idle writer costs a cross-thread wake-up; a busy one picks the batch
        // up when its current sync returns, without a wake-up.
        if (writer_idle_) cv_.notify_one();
        return;
      }
    }
    if (done) done(make_error_code(storage_errc::closed));
  }

  std::error_code write_sync(write_batch batch) override {
    if (std::this_thread::get_id() == writer_id_.load(std::memory_order_relaxed)) {
      return std::make_error_code(std::errc::resource_deadlock_would_occur);
    }
    std::promise<std::error_code> result;
    auto future = result.get_future();
    write(std::move(batch), [&result](std::error_code ec) { result.set_value(ec); });
    return future.get();
  }

  std::optional<std::string> get(std::string_view key) override {
    std::string value;
    const auto s = db_->Get(rocksdb::ReadOptions(), to_slice(key), &value);
    if (!s.ok()) return std::nullopt;
    return value;
  }

  void scan_prefix(std::string_view prefix,
                   const std::function<bool(std::string_view, std::string_view)>& visit) override {
    const std::string end = prefix_successor(prefix);
    scan(prefix, end, visit);
  }

  void scan_range(std::string_view begin, std::string_view end,
                  const std::function<bool(std::string_view, std::string_view)>& visit) override {
    if (end.empty() || end <= begin) return;  // [begin, end) is empty
    scan(begin, end, visit);
  }

  std::unique_ptr<storage_view> view() override { return std::make_unique<rocks_view>(db_.get()); }

  std::unique_ptr<range_import> import_range(std::string begin, std::string end) override {
    return std::make_unique<rocks_import>(db_.get(), options_.path + "/" + std::string(import_dir_name),
                                          std::move(begin), std::move(end), options_.interrupt_imports_for_tests);
  }

  storage_stats stats() const override {
    storage_stats s;
    s.syncs = syncs_.load(std::memory_order_relaxed);
    s.batches_committed = batches_committed_.load(std::memory_order_relaxed);
    s.sync_time_us_total = sync_time_us_total_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < s.sync_latency_buckets.size(); ++i)
      s.sync_latency_buckets[i] = sync_latency_buckets_[i].load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < s.group_size_buckets.size(); ++i)
      s.group_size_buckets[i] = group_size_buckets_[i].load(std::memory_order_relaxed);
    s.refused_low_disk = refused_low_disk_.load(std::memory_order_relaxed);
    return s;
  }

  void close() override {
    std::call_once(close_once_, [this] {
      {
        std::lock_guard lock(mu_);
        closing_ = true;
      }
      cv_.notify_one();
      writer_.join();
    });
  }

 private:
  struct pending {
    write_batch batch;
    completion done;
    bool synced = true;
  };

  // Scans [begin, end), or [begin, ∞) when end is empty.
  void scan(std::string_view begin, std::string_view end,
            const std::function<bool(std::string_view, std::string_view)>& visit) {
    rocksdb::ReadOptions ro;
    rocksdb::Slice upper = to_slice(end);
    if (!end.empty()) ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(to_slice(begin)); it->Valid(); it->Next()) {
      if (!visit(to_view(it->key()), to_view(it->value()))) break;
    }
  }

  void run_writer() {
    writer_id_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    std::vector<pending> group;
    rocksdb::WriteBatch wb;
    rocksdb::WriteOptions wo;
    for (;;) {
      group.clear();
      {
        std::unique_lock lock(mu_);
        writer_idle_ = true;
        cv_.wait(lock, [this] { return !queue_.empty() || closing_; });
        writer_idle_ = false;
        if (queue_.empty()) return;  // closing and drained
        // Everything queued while the previous sync was in flight, up to max_group_ops;
        // always at least one batch, however large.
        std::size_t ops = 0;
        while (!queue_.empty()) {
          const std::size_t n = queue_.front().batch.size();
          if (!group.empty() && ops + n > options_.max_group_ops) break;
          ops += n;
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      // One batch that must be synced syncs the group (and everything written before it).
      const bool wants_sync = std::any_of(group.begin(), group.end(), [](const pending& p) { return p.synced; });
      wo.sync = options_.sync && wants_sync;
      std::error_code ec = commit(group, wb, wo, wants_sync);
      batches_committed_.fetch_add(group.size(), std::memory_order_relaxed);
      count_in_bucket(group_size_buckets_, group_size_bounds, group.size());
      for (auto& p : group) {
        if (p.done) p.done(ec);
      }
    }
  }

  // `counted`: a group that asked for a sync (stats count those, even where tests turn the
  // sync itself off).
  std::error_code commit(const std::vector<pending>& group, rocksdb::WriteBatch& wb,
                         const rocksdb::WriteOptions& wo, bool counted) {
    wb.Clear();
    // The group's operations go into the WriteBatch in key order (same-key operations keep
    // their order, and an erase_range stays a barrier that nothing moves across): RocksDB
    // inserts them into the memtable in that order, each from its prefix's hint (see
    // group_insert_hint). Descending the skip list from the top for every insert was ~60 %
    // of the writer thread's time under queue traffic, whose keys arrive interleaved.
    ordered_.clear();
    range_begins_.clear();
    auto add_segment = [&]() -> std::error_code {
      std::stable_sort(ordered_.begin(), ordered_.end(),
                       [](const write_batch::op& a, const write_batch::op& b) { return a.key < b.key; });
      for (const auto& op : ordered_) {
        const auto s = op.what == write_batch::op::kind::put ? wb.Put(to_slice(op.key), to_slice(op.value))
                                                             : wb.Delete(to_slice(op.key));
        if (!s.ok()) return to_error_code(s);
      }
      ordered_.clear();
      return {};
    };
    for (const auto& p : group) {
      for (const auto& op : p.batch.ops()) {
        if (op.what != write_batch::op::kind::erase_range) {
          ordered_.push_back(op);
          continue;
        }
        if (auto ec = add_segment()) return ec;
        // An empty or inverted range erases nothing; RocksDB must not see it.
        if (op.key < op.value) {
          if (const auto s = wb.DeleteRange(to_slice(op.key), to_slice(op.value)); !s.ok()) return to_error_code(s);
          range_begins_.push_back(op.key);
        }
      }
    }
    if (auto ec = add_segment()) return ec;
    if (wb.Count() == 0) return {};  // nothing to make durable; earlier groups already are
    // After a failed write (a full disk, an I/O error) every later one fails the same way
    // without reaching RocksDB: the WAL's file writer may not be written again after an
    // error (RocksDB 7.8 aborts on an assertion), and a later group made durable after an
    // earlier one failed would leave a state that no order of the acknowledged writes gives.
    if (failed_) return failed_;
    if (low_on_disk()) {
      refused_low_disk_.fetch_add(1, std::memory_order_relaxed);
      return std::make_error_code(std::errc::no_space_on_device);  // not sticky: space may come back
    }
    const auto start = std::chrono::steady_clock::now();
    const group_insert_hint::hint_scope hints(range_begins_);
    const auto s = db_->Write(wo, &wb);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    if (counted) {
      syncs_.fetch_add(1, std::memory_order_relaxed);
      sync_time_us_total_.fetch_add(static_cast<std::uint64_t>(us.count()), std::memory_order_relaxed);
      count_in_bucket(sync_latency_buckets_, sync_latency_bounds_us, static_cast<std::uint64_t>(us.count()));
    }
    failed_ = to_error_code(s);
    return failed_;
  }

  // One statvfs per group commit (~1 µs next to a ~200 µs sync). A failing statvfs
  // refuses nothing: the check is a guard, not a new way to fail.
  [[nodiscard]] bool low_on_disk() const {
    if (options_.min_free_bytes == 0) return false;
    struct statvfs fs {};
    if (::statvfs(options_.path.c_str(), &fs) != 0) return false;
    return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize < options_.min_free_bytes;
  }

  const storage_options options_;
  const std::unique_ptr<rocksdb::DB> db_;

  std::error_code failed_;  // the first failed write's error; touched by the writer thread only
  std::vector<write_batch::op> ordered_;  // commit()'s sort buffer; writer thread only
  std::vector<std::string_view> range_begins_;   // commit(): the group's range-erase begin keys

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pending> queue_;       // GUARDED_BY(mu_)
  bool closing_ = false;            // GUARDED_BY(mu_)
  bool writer_idle_ = false;        // GUARDED_BY(mu_)
  std::once_flag close_once_;

  std::atomic<std::uint64_t> syncs_{0};
  std::atomic<std::uint64_t> batches_committed_{0};
  std::atomic<std::uint64_t> sync_time_us_total_{0};
  std::array<std::atomic<std::uint64_t>, sync_latency_bounds_us.size() + 1> sync_latency_buckets_{};
  std::array<std::atomic<std::uint64_t>, group_size_bounds.size() + 1> group_size_buckets_{};
  std::atomic<std::uint64_t> refused_low_disk_{0};
  std::atomic<std::thread::id> writer_id_{};

  std::thread writer_;  // last: starts after every other member is constructed
};

}  // namespace

const std::error_category& storage_category() noexcept {
  static const storage_category_impl category;
  return category;
}

std::error_code make_error_code(storage_errc e) noexcept {
  return {static_cast<int>(e), storage_category()};
}

void write_batch::add(op::kind what, std::string_view key, std::string_view value) {
  entries_.push_back({what, static_cast<std::uint32_t>(key.size()), static_cast<std::uint32_t>(value.size()),
                      bytes_.size()});
  bytes_.append(key);
  bytes_.append(value);
}

void write_batch::reserve(std::size_t ops, std::size_t bytes) {
  entries_.reserve(ops);
  bytes_.reserve(bytes);
}

void write_batch::put(std::string_view key, std::string_view value) { add(op::kind::put, key, value); }

void write_batch::erase(std::string_view key) { add(op::kind::erase, key, {}); }

void write_batch::erase_range(std::string_view begin_key, std::string_view end_key) {
  add(op::kind::erase_range, begin_key, end_key);
}

std::vector<write_batch::op> write_batch::ops() const {
  std::vector<op> out;
  out.reserve(entries_.size());
  const std::string_view all(bytes_);
  for (const auto& e : entries_)
    out.push_back({e.what, all.substr(e.offset, e.key_size), all.substr(e.offset + e.key_size, e.value_size)});
  return out;
}

std::unique_ptr<storage> storage::open(const storage_options& options) {
  rocksdb::DB* raw = nullptr;
  const auto s = rocksdb::DB::Open(make_options(), options.path, &raw);
  if (!s.ok()) {
    throw std::system_error(to_error_code(s),
                            "cannot open storage at '" + options.path + "': " + s.ToString());
  }
  auto opened = std::make_unique<rocks_storage>(options, raw);
  if (auto marker = opened->get(import_marker_key)) {
    // A crash came while an import was being swapped in: the range is erased; finish it.
    auto parts = decode_import_marker(*marker);
    if (!parts) throw std::system_error(std::make_error_code(std::errc::io_error),
                                        "storage at '" + options.path + "': an unreadable import marker");
    const std::vector<std::string> names(parts->begin() + 2, parts->end());
    if (auto ec = finish_import_swap(raw, options.path + "/" + std::string(import_dir_name), names))
      throw std::system_error(ec, "storage at '" + options.path + "': cannot finish an interrupted import");
  }
  return opened;
}

void append_be64(std::string& out, std::uint64_t v) {
  // One append, not eight push_backs: every queue and session key ends in one or two of these.
  char bytes[8];
  for (int i = 7; i >= 0; --i, v >>= 8) bytes[i] = static_cast<char>(v);
  out.append(bytes, sizeof bytes);
}

void append_be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

std::uint64_t read_be64(std::string_view bytes) {
  std::uint64_t v = 0;
  const std::size_t n = std::min<std::size_t>(bytes.size(), 8);
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

}  // namespace wharf::core
