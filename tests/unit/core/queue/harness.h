// A queue engine on a real RocksDB in a temporary directory, driven with explicit command
// times: each command's batch is committed (write_sync) before the next one.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../test_util.h"
#include "core/queue/engine.h"

// Checks the outcome code of a result (evaluated once), printing its message when it differs.
#define EXPECT_CODE(expr, expected)                                                    \
  do {                                                                                 \
    const ::wharf::core::queue::result& wharf_result = (expr);                         \
    EXPECT_EQ(wharf_result.outcome.value, (expected)) << wharf_result.outcome.message; \
  } while (0)
#define ASSERT_OK(expr)                                                                                    \
  do {                                                                                                     \
    const ::wharf::core::queue::result& wharf_result = (expr);                                             \
    ASSERT_EQ(wharf_result.outcome.value, ::wharf::core::queue::code::ok) << wharf_result.outcome.message; \
  } while (0)

namespace wharf::core::queue::testing {

inline constexpr time_ms start_time_ms = 1'700'000'000'000;  // 2023-11-14

class harness {
 public:
  explicit harness(engine_limits limits = test_limits()) : limits_(limits) {
    storage_options options;
    options.path = dir_.sub("db");
    options.sync = false;  // tests measure behaviour, not durability
    store_ = storage::open(options);
    eng_ = engine::open(*store_, limits_);
  }

  static engine_limits test_limits() {
    engine_limits limits;
    limits.log_retain_entries = 0;
    return limits;
  }

  // Applies `body` at the current time and commits it.
  result run(command_body body) {
    write_batch batch;
    result r = eng_->apply(command{now, std::move(body)}, batch);
    commit(std::move(batch));
    return r;
  }

  void commit(write_batch batch) {
    eng_->finish_batch(batch);
    EXPECT_FALSE(store_->write_sync(std::move(batch)));
    eng_->committed(eng_->applied_index());
  }

  // Throws the engine away and loads it again from storage.
  void reopen() { eng_ = engine::open(*store_, limits_); }

  void advance_ms(time_ms ms) { now += ms; }
  void advance_s(std::int64_t s) { now += s * 1000; }

  engine& eng() { return *eng_; }
  storage& store() { return *store_; }

  // ---- shortcuts for the common commands ----
  result create(const std::string& name, queue_attribute_changes attributes = {}) {
    return run(create_queue{name, std::move(attributes)});
  }
  result send(const std::string& queue, std::string body, std::uint32_t delay_seconds = 0,
              std::optional<std::string> dedup_key = std::nullopt) {
    return run(send_messages{queue, {send_item{std::move(body), delay_seconds, std::move(dedup_key), {}}}});
  }
  result receive(const std::string& queue, std::uint32_t max_messages = 1) {
    return run(receive_messages{queue, max_messages});
  }
  result remove(const std::string& queue, std::vector<std::string> handles) {
    return run(delete_messages{queue, std::move(handles)});
  }
  result tick_now() { return run(tick{}); }
  queue_counts counts(const std::string& queue) { return eng_->queue(queue, now).value().counts; }

  // Every key under `prefix` with its value, in key order.
  std::vector<std::pair<std::string, std::string>> scan(std::string_view prefix) {
    std::vector<std::pair<std::string, std::string>> out;
    store_->scan_prefix(prefix, [&](std::string_view k, std::string_view v) {
      out.emplace_back(k, v);
      return true;
    });
    return out;
  }

  time_ms now = start_time_ms;

 private:
  core::testing::temp_dir dir_;
  engine_limits limits_;
  std::unique_ptr<storage> store_;
  std::unique_ptr<engine> eng_;
};

inline std::vector<std::string> bodies_of(const result& r) {
  std::vector<std::string> out;
  for (const auto& m : r.messages) out.push_back(m.body);
  return out;
}

}  // namespace wharf::core::queue::testing
