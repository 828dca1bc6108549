#include "net/io_pool.h"
#include "net/listener.h"
#include "tests/support/wait_for.h"

#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace wharf::net {
namespace {

using wharf::test::wait_for;

TEST(io_pool, zero_means_hardware_concurrency) {
  io_pool pool(0);
  EXPECT_EQ(pool.size(), std::max(1u, std::thread::hardware_concurrency()));
}

TEST(io_pool, each_context_runs_on_its_own_thread_and_knows_its_index) {
  io_pool pool(3);
  pool.run();
  std::atomic<int> done{0};
  std::vector<std::size_t> seen(3, io_pool::npos);
  std::vector<std::thread::id> ids(3);
  for (std::size_t i = 0; i < 3; ++i) {
    boost::asio::post(pool.context(i), [&, i] {
      seen[i] = io_pool::index_of_current_thread();
      ids[i] = std::this_thread::get_id();
      EXPECT_EQ(io_pool::current_pool(), &pool);
      done.fetch_add(1);
    });
  }
  ASSERT_TRUE(wait_for([&] { return done.load() == 3; }));
  EXPECT_EQ(seen, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(std::set<std::thread::id>(ids.begin(), ids.end()).size(), 3u);
  EXPECT_EQ(io_pool::index_of_current_thread(), io_pool::npos);
  pool.stop();
  pool.join();
}

TEST(io_pool, idle_contexts_keep_running_until_stop) {
  io_pool pool(2);
  pool.run();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // idle: must not exit
  std::atomic<bool> ran{false};
  boost::asio::post(pool.context(1), [&] { ran = true; });
  ASSERT_TRUE(wait_for([&] { return ran.load(); }));
  pool.stop();
  pool.join();
}

TEST(io_pool, a_throwing_handler_does_not_kill_the_thread) {
  io_pool pool(1);
  pool.run();
  boost::asio::post(pool.context(0), [] { throw std::runtime_error("bug"); });
  std::atomic<bool> ran{false};
  boost::asio::post(pool.context(0), [&] { ran = true; });
  ASSERT_TRUE(wait_for([&] { return ran.load(); }));
}

TEST(parse_bind, forms) {
  auto a = parse_bind("127.0.0.1:1883");
  EXPECT_EQ(a.address().to_string(), "127.0.0.1");
  EXPECT_EQ(a.port(), 1883);
  auto b = parse_bind("[::1]:8883");
  EXPECT_TRUE(b.address().is_v6());
  EXPECT_EQ(b.port(), 8883);
  auto c = parse_bind(":1884");
  EXPECT_TRUE(c.address().is_unspecified());
  EXPECT_EQ(c.port(), 1884);
  EXPECT_EQ(parse_bind("localhost:0").port(), 0);
}

TEST(parse_bind, errors) {
  EXPECT_THROW((void)parse_bind("1883"), std::system_error);
  EXPECT_THROW((void)parse_bind("127.0.0.1:99999"), std::system_error);
  EXPECT_THROW((void)parse_bind("127.0.0.1:x"), std::system_error);
  EXPECT_THROW((void)parse_bind("::1:1883"), std::system_error);
  EXPECT_THROW((void)parse_bind("[::1]1883"), std::system_error);
  EXPECT_THROW((void)parse_bind("[::1"), std::system_error);
}

}  // namespace
}  // namespace wharf::net
