// A core::storage in memory for deterministic simulations: a write becomes durable only
// when the simulation completes it (in submission order, as the real storage writer does),
// and a crash loses every write not completed yet, as a kill -9 loses what was not synced.
#pragma once

#include <deque>
#include <map>
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

  std::map<std::string, std::string, std::less<>> durable_;
  std::deque<std::pair<write_batch, completion>> pending_;
};

}  // namespace wharf::core::replication::sim
