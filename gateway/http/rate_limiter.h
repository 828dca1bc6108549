// Requests per second per caller (the CMQ SecretId), as a token bucket: a caller may send
// `rate` requests a second on average and `rate` in one burst. Beyond, the API answers CMQ
// code 4420 and changes nothing. Sans-I/O: the caller passes the time, so tests need no clock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "core/string_map.h"

namespace wharf::gateway::http {

class request_rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  // rate_per_s 0: no limit (admit() is always true).
  explicit request_rate_limiter(std::uint32_t rate_per_s) : rate_per_s_(rate_per_s) {}

  // A reload's new rate, for the next admit(): buckets keep their tokens, at most the new
  // burst.
  void set_rate_per_s(std::uint32_t rate_per_s) noexcept { rate_per_s_.store(rate_per_s, std::memory_order_relaxed); }

  // Takes one request's token of `caller`; false when its bucket is empty (counted).
  // Thread-safe. Callers are authenticated SecretIds, so the map holds at most one bucket
  // per credential ever configured.
  [[nodiscard]] bool admit(std::string_view caller, clock::time_point now) {
    return admit(caller, rate_per_s(), now);
  }
  // The same with the caller's own rate (a tenant's quota); 0: no limit.
  [[nodiscard]] bool admit(std::string_view caller, std::uint32_t rate_per_s, clock::time_point now);

  [[nodiscard]] std::uint32_t rate_per_s() const noexcept { return rate_per_s_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t refused() const;

 private:
  struct bucket {
    double tokens = 0;
    clock::time_point refilled;
  };

  std::atomic<std::uint32_t> rate_per_s_;
  mutable std::mutex mu_;
  core::string_map<bucket> buckets_;  // GUARDED_BY(mu_); find() takes the caller's string_view
  std::uint64_t refused_ = 0;                        // GUARDED_BY(mu_)
};

}  // namespace wharf::gateway::http
