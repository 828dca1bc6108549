// A core::storage in memory for deterministic simulations: a write becomes durable only
// when the simulation completes it (in submission order, as the real storage writer does),
// and a crash loses every write not completed yet, as a kill -9 loses what was not synced.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "core/storage.h"

namespace wharf::core::replication::sim {

class sim_storage final : public storage {
 public:
  // Buffered or synced alike: nothing is durable before its completion (a stricter disk).
  void write(write_batch batch, completion done, durability = durability::synced) override {
    pending_.emplace_back(std::move(batch), std::move(done));
  }
  std::error_code write_sync(write_batch batch) override {
    apply(batch);
    return {};
  }
  std::optional<std::string> get(std::string_view key) override {
    const auto it = durable_.find(std::string(key));
    if (it == durable_.end()) return std::nullopt;
    return it->second;
  }
  void scan_prefix(std::string_view prefix,
                   const std::function<bool(std::string_view, std::string_view)>& visit) override {
    for (auto it = durable_.lower_bound(std::string(prefix)); it != durable_.end() && it->first.starts_with(prefix); ++it)
      if (!visit(it->first, it->second)) return;
  }
  void scan_range(std::string_view begin, std::string_view end,
                  const std::function<bool(std::string_view, std::string_view)>& visit) override {
    for (auto it = durable_.lower_bound(std::string(begin)); it != durable_.end() && it->first < end; ++it)
      if (!visit(it->first, it->second)) return;
  }
  // The durable state, copied (simulations keep their states small).
  std::unique_ptr<storage_view> view() override { return std::make_unique<copy_view>(durable_); }
  std::unique_ptr<range_import> import_range(std::string begin, std::string end) override {
    return std::make_unique<map_import>(*this, std::move(begin), std::move(end));
  }
  storage_stats stats() const override { return {}; }
  void close() override {}

  [[nodiscard]] bool has_pending() const { return !pending_.empty(); }
  // Makes the oldest pending write durable and returns its completion (the caller runs it
  // when the simulation says the completion arrives).
  completion complete_oldest() {
    auto [batch, done] = std::move(pending_.front());
    pending_.pop_front();
    apply(batch);
    return done;
  }
  // kill -9: what was not synced is gone, and its completions never run.
  void crash() { pending_.clear(); }

  [[nodiscard]] const std::map<std::string, std::string, std::less<>>& durable() const { return durable_; }

 private:
  using map = std::map<std::string, std::string, std::less<>>;
  class copy_view final : public storage_view {
   public:
    explicit copy_view(map state) : state_(std::move(state)) {}
    std::optional<std::string> get(std::string_view key) override {
      const auto it = state_.find(key);
      if (it == state_.end()) return std::nullopt;
      return it->second;
    }
    void scan_range(std::string_view begin, std::string_view end,
                    const std::function<bool(std::string_view, std::string_view)>& visit) override {
      for (auto it = state_.lower_bound(begin); it != state_.end() && it->first < end; ++it)
        if (!visit(it->first, it->second)) return;
    }

   private:
    map state_;
  };
  // Swaps in at once and durably, as the real import's commit() returns only then.
  class map_import final : public range_import {
   public:
    map_import(sim_storage& s, std::string begin, std::string end)
        : s_(s), begin_(std::move(begin)), end_(std::move(end)) {}
    std::error_code add(std::string_view key, std::string_view value) override {
      added_.emplace(key, value);
      return {};
    }
    std::error_code commit() override {
      s_.durable_.erase(s_.durable_.lower_bound(begin_), s_.durable_.lower_bound(end_));
      s_.durable_.insert(added_.begin(), added_.end());
      return {};
    }

   private:
    sim_storage& s_;
    std::string begin_;
    std::string end_;
    map added_;
  };

  void apply(const write_batch& batch) {
    for (const auto& op : batch.ops()) {
      switch (op.what) {
        case write_batch::op::kind::put: durable_[std::string(op.key)] = std::string(op.value); break;
        case write_batch::op::kind::erase: durable_.erase(std::string(op.key)); break;
        case write_batch::op::kind::erase_range:
          durable_.erase(durable_.lower_bound(op.key), durable_.lower_bound(op.value));
          break;
      }
    }
  }

  map durable_;
  std::deque<std::pair<write_batch, completion>> pending_;
};

}  // namespace wharf::core::replication::sim
