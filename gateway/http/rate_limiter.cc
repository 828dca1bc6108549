#include "gateway/http/rate_limiter.h"

#include <algorithm>

namespace wharf::gateway::http {

bool request_rate_limiter::admit(std::string_view caller, std::uint32_t rate, clock::time_point now) {
  if (rate == 0) return true;
  const double capacity = rate;
  std::lock_guard lock(mu_);
  auto it = buckets_.find(caller);
  if (it == buckets_.end()) {
    it = buckets_.emplace(std::string(caller), bucket{capacity, now}).first;
  }
  bucket& b = it->second;
  if (now > b.refilled) {  // time going backwards adds nothing
    const double elapsed_s = std::chrono::duration<double>(now - b.refilled).count();
    b.tokens += elapsed_s * capacity;
    b.refilled = now;
  }
  b.tokens = std::min(capacity, b.tokens);  // the burst, also after a reload lowered the rate
  if (b.tokens < 1) {
    ++refused_;
    return false;
  }
  b.tokens -= 1;
  return true;
}

std::uint64_t request_rate_limiter::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

}  // namespace wharf::gateway::http
