#include "core/storage.h"

#include <gtest/gtest.h>

#include <future>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test_util.h"

namespace wharf::core {
namespace {

using testing::temp_dir;

std::unique_ptr<storage> open_at(const std::string& path, bool sync = true,
                                 std::size_t max_group_ops = 65536) {
  storage_options o;
  o.path = path;
  o.sync = sync;
  o.max_group_ops = max_group_ops;
  return storage::open(o);
}

std::vector<std::pair<std::string, std::string>> scan_all(storage& s, std::string_view prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  s.scan_prefix(prefix, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  return out;
}

// Waits until `n` completions have run.
class completion_counter {
 public:
  void done() {
    std::lock_guard lock(mu_);
    ++count_;
    cv_.notify_all();
  }
  void wait_for(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return count_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t count_ = 0;
};

std::map<std::string, std::string> contents(storage& s) {
  std::map<std::string, std::string> out;
  s.scan_range("a", "\xff", [&](std::string_view k, std::string_view v) {
    out.emplace(k, v);
    return true;
  });
  return out;
}

TEST(storage, a_view_sees_the_store_as_it_was) {
  temp_dir dir;
  auto s = open_at(dir.path());
  write_batch b;
  b.put("c/1", "one");
  b.put("c/2", "two");
  ASSERT_FALSE(s->write_sync(std::move(b)));
  auto view = s->view();
  write_batch later;
  later.put("c/1", "changed");
  later.erase("c/2");
  later.put("c/3", "three");
  ASSERT_FALSE(s->write_sync(std::move(later)));
  std::map<std::string, std::string> seen;
  view->scan_range("c", "d", [&](std::string_view k, std::string_view v) {
    seen.emplace(k, v);
    return true;
  });
  EXPECT_EQ(seen, (std::map<std::string, std::string>{{"c/1", "one"}, {"c/2", "two"}}));
  EXPECT_EQ(s->get("c/1"), "changed");
}

// Values that do not compress (the import's files rotate by their size on disk).
std::string imported_value(int i, std::size_t bytes) {
  std::string v(bytes, '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(i + 1);
  for (std::size_t at = 0; at + 8 <= bytes; at += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(v.data() + at, &x, 8);
  }
  return v;
}

std::string imported_key(int i) {
  char key[16];
  std::snprintf(key, sizeof key, "c/%06d", i);
  return key;
}

void add_imported_state(range_import& import, int keys, std::size_t value_bytes) {
  for (int i = 0; i < keys; ++i) ASSERT_FALSE(import.add(imported_key(i), imported_value(i, value_bytes)));
}

TEST(storage, an_import_replaces_its_range_and_nothing_else) {
  temp_dir dir;
  auto s = open_at(dir.path());
  write_batch b;
  b.put("a/outside", "kept");
  b.put("c/old", "gone");
  b.put("c/000001", "overwritten");
  b.put("d/outside", "kept too");
  ASSERT_FALSE(s->write_sync(std::move(b)));
  auto import = s->import_range("c", "d");
  EXPECT_TRUE(import->add("d/x", "v")) << "a key outside the range";
  add_imported_state(*import, 80, 1 << 20);  // 80 MiB: two files
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/import/1.sst"));
  ASSERT_FALSE(import->commit());
  const auto after = contents(*s);
  EXPECT_EQ(after.size(), 82u);
  EXPECT_EQ(after.at("a/outside"), "kept");
  EXPECT_EQ(after.at("d/outside"), "kept too");
  EXPECT_FALSE(after.contains("c/old"));
  EXPECT_EQ(after.at(imported_key(1)), imported_value(1, 1 << 20));
  EXPECT_EQ(after.at(imported_key(79)), imported_value(79, 1 << 20));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/import/0.sst")) << "the import's files stay behind";
  // And it survives a restart.
  s.reset();
  s = open_at(dir.path());
  EXPECT_EQ(contents(*s).size(), 82u);
}

TEST(storage, an_import_dropped_before_commit_changes_nothing) {
  temp_dir dir;
  auto s = open_at(dir.path());
  write_batch b;
  b.put("c/old", "stays");
  ASSERT_FALSE(s->write_sync(std::move(b)));
  {
    auto import = s->import_range("c", "d");
    add_imported_state(*import, 3, 10);
  }
  EXPECT_EQ(contents(*s), (std::map<std::string, std::string>{{"c/old", "stays"}}));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/import"));
}

TEST(storage, a_swap_a_crash_interrupted_is_finished_at_the_next_open) {
  temp_dir dir;
  storage_options o;
  o.path = dir.path();
  o.interrupt_imports_for_tests = true;
  auto s = storage::open(o);
  write_batch b;
  b.put("a/outside", "kept");
  b.put("c/old", "gone");
  ASSERT_FALSE(s->write_sync(std::move(b)));
  auto import = s->import_range("c", "d");
  add_imported_state(*import, 80, 1 << 20);  // two files
  EXPECT_EQ(import->commit(), std::errc::interrupted);
  // What a crash right there leaves: the range erased, the new state not in yet.
  EXPECT_EQ(contents(*s), (std::map<std::string, std::string>{{"a/outside", "kept"}}));
  import.reset();
  s.reset();
  s = open_at(dir.path());
  const auto after = contents(*s);
  EXPECT_EQ(after.size(), 81u);
  EXPECT_EQ(after.at("a/outside"), "kept");
  EXPECT_EQ(after.at(imported_key(79)), imported_value(79, 1 << 20));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/import/0.sst"));
}

TEST(storage, put_get_erase) {
  temp_dir dir;
  auto s = open_at(dir.path());
  write_batch b;
  b.put("a", "1");
  b.put("b", std::string("\0two", 4));
  ASSERT_FALSE(s->write_sync(std::move(b)));
  EXPECT_EQ(s->get("a"), "1");
  EXPECT_EQ(s->get("b"), std::string("\0two", 4));
  EXPECT_EQ(s->get("c"), std::nullopt);

  write_batch e;
  e.erase("a");
  e.put("b", "2");  // later ops in a batch win
  ASSERT_FALSE(s->write_sync(std::move(e)));
  EXPECT_EQ(s->get("a"), std::nullopt);
  EXPECT_EQ(s->get("b"), "2");
}

TEST(storage, writes_are_refused_below_the_free_space_reserve) {
  temp_dir dir;
  storage_options o;
  o.path = dir.path();
  o.min_free_bytes = std::uint64_t{1} << 60;  // more than any disk has
  auto s = storage::open(o);
  write_batch b;
  b.put("k", "v");
  EXPECT_EQ(s->write_sync(std::move(b)), std::make_error_code(std::errc::no_space_on_device));
  EXPECT_EQ(s->get("k"), std::nullopt);
  EXPECT_EQ(s->stats().refused_low_disk, 1u);
  EXPECT_EQ(s->stats().syncs, 0u);  // RocksDB never saw it
  s.reset();

  o.min_free_bytes = 1;  // a reserve this machine's disk has
  s = storage::open(o);
  write_batch ok;
  ok.put("k", "v");
  EXPECT_FALSE(s->write_sync(std::move(ok)));
  EXPECT_EQ(s->get("k"), "v");
  EXPECT_EQ(s->stats().refused_low_disk, 0u);
}

// A buffered batch is written without a sync of its own; the next synced write syncs it.
TEST(storage, buffered_writes_cost_no_sync_and_keep_their_order) {
  temp_dir dir;
  auto s = open_at(dir.path());
  std::promise<std::error_code> done;
  write_batch b;
  b.put("state", "1");
  s->write(std::move(b), [&done](std::error_code ec) { done.set_value(ec); }, durability::buffered);
  EXPECT_FALSE(done.get_future().get());
  EXPECT_EQ(s->get("state"), "1");
  EXPECT_EQ(s->stats().syncs, 0u);
  write_batch later;
  later.put("state", "2");
  ASSERT_FALSE(s->write_sync(std::move(later)));
  EXPECT_EQ(s->get("state"), "2");
  EXPECT_EQ(s->stats().syncs, 1u);
}

TEST(storage, erase_range_is_half_open) {
  temp_dir dir;
  auto s = open_at(dir.path());
  write_batch b;
  for (char c = '0'; c <= '9'; ++c) b.put(std::string("k") + c, "v");
  ASSERT_FALSE(s->write_sync(std::move(b)));

  write_batch r;
  r.erase_range("k3", "k7");
  r.erase_range("k9", "k8");  // inverted: erases nothing
  r.erase_range("k1", "k1");  // empty: erases nothing
  ASSERT_FALSE(s->write_sync(std::move(r)));
  std::vector<std::string> keys;
  for (const auto& [k, v] : scan_all(*s, "k")) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"k0", "k1", "k2", "k7", "k8", "k9"}));
}

TEST(storage, scan_prefix_in_key_order_and_stops) {
  temp_dir dir;
  auto s = open_at(dir.path());
  write_batch b;
  for (const char* k : {"p/2", "q/1", "p/10", "p", "p/1", "o/9", "p0"}) b.put(k, k);
  b.put(std::string("\xff\xff", 2), "ff");
  b.put(std::string("\xff\xff\x01", 3), "ff1");
  ASSERT_FALSE(s->write_sync(std::move(b)));

  std::vector<std::string> keys;
  for (const auto& [k, v] : scan_all(*s, "p/")) {
    EXPECT_EQ(k, v);
    keys.push_back(k);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"p/1", "p/10", "p/2"}));

  int visited = 0;
  s->scan_prefix("p", [&](std::string_view, std::string_view) { return ++visited < 2; });
  EXPECT_EQ(visited, 2);

  // A prefix of 0xff bytes has no successor key: the scan runs to the end.
  EXPECT_EQ(scan_all(*s, std::string("\xff\xff", 2)).size(), 2U);
  EXPECT_EQ(scan_all(*s, "").size(), 9U);
  EXPECT_TRUE(scan_all(*s, "zz").empty());
}

TEST(storage, scan_range_is_half_open) {
  temp_dir dir;
  auto s = open_at(dir.path());
  write_batch b;
  for (const char* k : {"a", "b", "bb", "c", "d"}) b.put(k, "v");
  ASSERT_FALSE(s->write_sync(std::move(b)));
  std::vector<std::string> keys;
  s->scan_range("b", "d", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  });
  EXPECT_EQ(keys, (std::vector<std::string>{"b", "bb", "c"}));

  int visited = 0;
  s->scan_range("d", "b", [&](std::string_view, std::string_view) { return ++visited > 0; });
  EXPECT_EQ(visited, 0);
}

TEST(storage, completions_run_in_submission_order_on_the_writer_thread) {
  temp_dir dir;
  auto s = open_at(dir.path());
  constexpr int n = 1000;
  std::vector<int> order;
  std::mutex mu;
  completion_counter counter;
  std::atomic<bool> on_caller_thread{false};
  const auto caller = std::this_thread::get_id();
  for (int i = 0; i < n; ++i) {
    write_batch b;
    b.put("k" + std::to_string(i), "v");
    s->write(std::move(b), [&, i](std::error_code ec) {
      EXPECT_FALSE(ec);
      if (std::this_thread::get_id() == caller) on_caller_thread = true;
      {
        std::lock_guard lock(mu);
        order.push_back(i);
      }
      counter.done();
    });
  }
  counter.wait_for(n);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(order[i], i);
  EXPECT_FALSE(on_caller_thread);
  EXPECT_EQ(s->stats().batches_committed, static_cast<std::uint64_t>(n));
}

TEST(storage, later_batches_overwrite_earlier_ones) {
  temp_dir dir;
  auto s = open_at(dir.path());
  completion_counter counter;
  for (int i = 0; i < 200; ++i) {
    write_batch b;
    b.put("same", std::to_string(i));
    s->write(std::move(b), [&](std::error_code) { counter.done(); });
  }
  counter.wait_for(200);
  EXPECT_EQ(s->get("same"), "199");
}

// The writer reorders a group's operations by key (for the memtable insert hints) and
// RocksDB 7.8 must never insert a range tombstone with a point key's hint. A seeded mix of
// puts, erases and range erases over a few shared prefixes, written in batches that the
// writer merges into groups, must leave exactly what applying them in order to a map does.
TEST(storage, interleaved_puts_erases_and_range_erases_match_a_model) {
  temp_dir dir;
  auto s = open_at(dir.path(), /*sync=*/false);
  std::map<std::string, std::string> model;
  std::mt19937 rng(20261203);
  const std::vector<std::string> prefixes = {"cl/", "cs/", "cb/", "q/a", "q/b"};
  auto key = [](const std::string& prefix, int n) {
    std::string k = prefix;
    append_be64(k, static_cast<std::uint64_t>(n));
    return k;
  };
  completion_counter counter;
  std::atomic<int> errors{0};
  constexpr int batches = 3000;
  for (int b = 0; b < batches; ++b) {
    write_batch batch;
    const int ops = 1 + static_cast<int>(rng() % 24);
    for (int i = 0; i < ops; ++i) {
      const auto& prefix = prefixes[rng() % prefixes.size()];
      const int n = static_cast<int>(rng() % 400);
      switch (rng() % 10) {
        case 0: {  // a range over the prefix, sometimes from its very first key
          const int begin = rng() % 3 == 0 ? 0 : n;
          const int end = begin + static_cast<int>(rng() % 120);
          batch.erase_range(key(prefix, begin), key(prefix, end));
          model.erase(model.lower_bound(key(prefix, begin)), model.lower_bound(key(prefix, end)));
          break;
        }
        case 1:
        case 2:
          batch.erase(key(prefix, n));
          model.erase(key(prefix, n));
          break;
        default: {
          const auto value = std::to_string(b) + "." + std::to_string(i);
          batch.put(key(prefix, n), value);
          model[key(prefix, n)] = value;
        }
      }
    }
    s->write(std::move(batch), [&](std::error_code ec) {
      if (ec) ++errors;
      counter.done();
    });
  }
  counter.wait_for(batches);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_LT(s->stats().syncs, static_cast<std::uint64_t>(batches));  // groups did form
  std::map<std::string, std::string> stored;
  for (const auto& prefix : prefixes)
    for (auto& [k, v] : scan_all(*s, prefix)) stored.emplace(k, v);
  EXPECT_EQ(stored, model);
}

TEST(storage, group_commit_merges_concurrent_batches) {
  temp_dir dir;
  auto s = open_at(dir.path());
  constexpr int threads = 8;
  constexpr int per_thread = 125;
  completion_counter counter;
  std::atomic<int> errors{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        write_batch b;
        b.put("t" + std::to_string(t) + "/" + std::to_string(i), std::string(64, 'x'));
        s->write(std::move(b), [&](std::error_code ec) {
          if (ec) ++errors;
          counter.done();
        });
      }
    });
  }
  for (auto& w : writers) w.join();
  counter.wait_for(threads * per_thread);
  const auto st = s->stats();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(st.batches_committed, static_cast<std::uint64_t>(threads * per_thread));
  EXPECT_GE(st.syncs, 1U);
  EXPECT_LT(st.syncs, static_cast<std::uint64_t>(threads * per_thread));
  std::cout << "[          ] 1000 batches from 8 threads: " << st.syncs << " syncs, "
            << st.sync_time_us_total << " us syncing\n";
  EXPECT_EQ(scan_all(*s, "t").size(), static_cast<std::size_t>(threads * per_thread));
}

TEST(storage, write_sync_from_many_threads) {
  temp_dir dir;
  auto s = open_at(dir.path());
  std::vector<std::thread> writers;
  std::atomic<int> errors{0};
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        write_batch b;
        b.put("w" + std::to_string(t) + "/" + std::to_string(i), "v");
        if (s->write_sync(std::move(b))) ++errors;
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(scan_all(*s, "w").size(), 200U);
  EXPECT_LE(s->stats().syncs, 200U);
}

TEST(storage, max_group_ops_bounds_a_group) {
  temp_dir dir;
  auto s = open_at(dir.path(), /*sync=*/false, /*max_group_ops=*/10);
  completion_counter counter;
  for (int i = 0; i < 100; ++i) {
    write_batch b;
    b.put("k" + std::to_string(i), "v");
    s->write(std::move(b), [&](std::error_code) { counter.done(); });
  }
  // A batch larger than the bound still goes through, alone.
  write_batch big;
  for (int i = 0; i < 50; ++i) big.put("big" + std::to_string(i), "v");
  s->write(std::move(big), [&](std::error_code) { counter.done(); });
  counter.wait_for(101);
  EXPECT_GE(s->stats().syncs, 11U);
  EXPECT_EQ(scan_all(*s, "big").size(), 50U);
}

TEST(storage, empty_batches_complete) {
  temp_dir dir;
  auto s = open_at(dir.path());
  EXPECT_FALSE(s->write_sync(write_batch{}));
  completion_counter counter;
  s->write(write_batch{}, [&](std::error_code ec) {
    EXPECT_FALSE(ec);
    counter.done();
  });
  counter.wait_for(1);
  s->write(write_batch{}, nullptr);  // an empty completion is allowed
}

TEST(storage, data_survives_close_and_reopen) {
  temp_dir dir;
  {
    auto s = open_at(dir.path());
    write_batch b;
    for (int i = 0; i < 100; ++i) b.put("k" + std::to_string(i), std::to_string(i * i));
    ASSERT_FALSE(s->write_sync(std::move(b)));
    write_batch e;
    e.erase("k5");
    ASSERT_FALSE(s->write_sync(std::move(e)));
    s->close();
    s->close();  // idempotent
    EXPECT_EQ(s->get("k7"), "49");  // reads work until destruction
  }
  auto s = open_at(dir.path());
  EXPECT_EQ(scan_all(*s, "k").size(), 99U);
  EXPECT_EQ(s->get("k9"), "81");
  EXPECT_EQ(s->get("k5"), std::nullopt);
}

TEST(storage, close_drains_queued_batches) {
  temp_dir dir;
  completion_counter counter;
  {
    auto s = open_at(dir.path());
    for (int i = 0; i < 500; ++i) {
      write_batch b;
      b.put("d" + std::to_string(i), "v");
      s->write(std::move(b), [&](std::error_code ec) {
        EXPECT_FALSE(ec);
        counter.done();
      });
    }
    s->close();
  }
  counter.wait_for(500);
  auto s = open_at(dir.path());
  EXPECT_EQ(scan_all(*s, "d").size(), 500U);
}

TEST(storage, write_after_close_fails_with_closed) {
  temp_dir dir;
  auto s = open_at(dir.path());
  s->close();
  std::error_code seen;
  bool called = false;
  write_batch b;
  b.put("x", "y");
  s->write(std::move(b), [&](std::error_code ec) {
    called = true;
    seen = ec;
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(seen, storage_errc::closed);
  EXPECT_EQ(s->write_sync(write_batch{}), storage_errc::closed);
  EXPECT_EQ(std::string(seen.category().name()), "wharf.storage");
  EXPECT_FALSE(seen.message().empty());
}

TEST(storage, write_sync_from_a_completion_does_not_deadlock) {
  temp_dir dir;
  auto s = open_at(dir.path());
  std::error_code inner;
  completion_counter counter;
  s->write(write_batch{}, [&](std::error_code) {
    inner = s->write_sync(write_batch{});
    counter.done();
  });
  counter.wait_for(1);
  EXPECT_EQ(inner, std::errc::resource_deadlock_would_occur);
}

TEST(storage, write_from_a_completion_is_allowed) {
  temp_dir dir;
  auto s = open_at(dir.path());
  completion_counter counter;
  write_batch first;
  first.put("first", "1");
  s->write(std::move(first), [&](std::error_code) {
    write_batch second;
    second.put("second", "2");
    s->write(std::move(second), [&](std::error_code) { counter.done(); });
  });
  counter.wait_for(1);
  EXPECT_EQ(s->get("second"), "2");
}

TEST(storage, open_failure_throws_naming_the_path) {
  temp_dir dir;
  const std::string file = dir.sub("not-a-dir");
  std::ofstream(file) << "x";
  try {
    (void)open_at(file + "/db");
    FAIL() << "open succeeded";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
}

TEST(storage, second_open_of_the_same_path_fails) {
  temp_dir dir;
  auto s = open_at(dir.path());
  EXPECT_THROW((void)open_at(dir.path()), std::system_error);
}

TEST(storage_keys, big_endian_helpers_sort_numerically) {
  std::string a;
  std::string b;
  append_be64(a, 255);
  append_be64(b, 256);
  EXPECT_EQ(a.size(), 8U);
  EXPECT_LT(a, b);
  EXPECT_EQ(read_be64(a), 255U);
  EXPECT_EQ(read_be64(b), 256U);

  std::string c;
  append_be64(c, 0x0102030405060708ULL);
  EXPECT_EQ(c, std::string("\x01\x02\x03\x04\x05\x06\x07\x08"));
  EXPECT_EQ(read_be64(c), 0x0102030405060708ULL);
  append_be64(c, ~0ULL);
  EXPECT_EQ(read_be64(std::string_view(c).substr(8)), ~0ULL);

  std::string d;
  append_be32(d, 0x0a0b0c0dU);
  EXPECT_EQ(d, std::string("\x0a\x0b\x0c\x0d"));
}

// ---- Crash durability: kill -9 while writing --------------------------------------------

std::string crash_key(std::uint32_t thread, std::uint64_t i) {
  std::string key = "c/";
  append_be32(key, thread);
  append_be64(key, i);
  return key;
}

std::string crash_value(std::uint32_t thread, std::uint64_t i) {
  return std::to_string(thread) + ":" + std::to_string(i) + std::string(100, 'v');
}

// Every acknowledged write (write_sync returned success, then the id went into the pipe)
// must be in the database after the parent kills this process with SIGKILL.
TEST(storage_crash, acknowledged_writes_survive_kill_9) {
  temp_dir dir;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);

  // Fresh process image: the child must not inherit this process's threads or locks.
  std::string exe = "/proc/self/exe";
  std::string role = "--storage-crash-child";
  std::string path = dir.path();
  std::string fd = std::to_string(fds[1]);
  char* argv[] = {exe.data(), role.data(), path.data(), fd.data(), nullptr};
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::execv("/proc/self/exe", argv);
    ::_exit(127);
  }
  ::close(fds[1]);

  std::mt19937_64 rng(std::random_device{}());
  const auto run_for = std::chrono::milliseconds(rng() % 400);

  std::set<std::uint64_t> acked;
  std::uint64_t buf[512];
  std::size_t partial = 0;  // bytes of an id split across reads
  auto* bytes = reinterpret_cast<char*>(buf);
  // 1: read ids, 0: nothing within the timeout, -1: end of file (the child is gone).
  const auto read_some = [&](int timeout_ms) {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return 0;
    const ssize_t n = ::read(fds[0], bytes + partial, sizeof(buf) - partial);
    if (n <= 0) return -1;
    const std::size_t total = partial + static_cast<std::size_t>(n);
    const std::size_t ids = total / sizeof(std::uint64_t);
    for (std::size_t i = 0; i < ids; ++i) acked.insert(buf[i]);
    partial = total % sizeof(std::uint64_t);
    std::memmove(bytes, bytes + ids * sizeof(std::uint64_t), partial);
    return 1;
  };
  // The random moment is counted from the first acknowledgement (opening RocksDB in a
  // fresh process takes a while on a loaded machine).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (acked.empty() && std::chrono::steady_clock::now() < give_up) {
    if (read_some(100) < 0) break;
  }
  const auto deadline = std::chrono::steady_clock::now() + run_for;
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_some(10) < 0) break;
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  // Ids still in the pipe were acknowledged before the kill: read them up to end of file.
  while (read_some(1000) > 0) {
  }
  ::close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with status " << status;
  ASSERT_EQ(WTERMSIG(status), SIGKILL);
  ASSERT_FALSE(acked.empty()) << "child acknowledged nothing";

  auto s = open_at(dir.path());
  std::size_t missing = 0;
  for (const std::uint64_t id : acked) {
    const auto thread = static_cast<std::uint32_t>(id >> 40);
    const std::uint64_t i = id & ((1ULL << 40) - 1);
    const auto value = s->get(crash_key(thread, i));
    if (value != crash_value(thread, i)) ++missing;
  }
  EXPECT_EQ(missing, 0U) << "of " << acked.size() << " acknowledged writes";
  std::cout << "[          ] killed after " << run_for.count() << " ms; " << acked.size()
            << " acknowledged writes all present\n";
}

}  // namespace

int testing::storage_crash_child(int argc, char** argv) {
  if (argc < 4) return 2;
  const std::string path = argv[2];
  const int fd = std::atoi(argv[3]);
  auto s = open_at(path);
  std::mutex pipe_mu;
  std::vector<std::thread> writers;
  for (std::uint32_t t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (std::uint64_t i = 0;; ++i) {
        write_batch b;
        b.put(crash_key(t, i), crash_value(t, i));
        if (s->write_sync(std::move(b))) ::_exit(3);
        const std::uint64_t id = (static_cast<std::uint64_t>(t) << 40) | i;
        std::lock_guard lock(pipe_mu);
        if (::write(fd, &id, sizeof id) != static_cast<ssize_t>(sizeof id)) ::_exit(4);
      }
    });
  }
  for (auto& w : writers) w.join();
  return 0;
}

}  // namespace wharf::core
