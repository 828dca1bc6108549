// Waiting in tests for something another thread does: poll with a deadline, never spin
// without one, so that a regression fails the test instead of hanging it.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace wharf::test {

// Polls `done` every 2 ms until it holds or `timeout` has passed; returns done().
inline bool wait_for(const std::function<bool()>& done,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace wharf::test
