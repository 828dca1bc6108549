// Overload protection's decisions, with time given by the test.
#include "gateway/mqtt/admission.h"

#include <gtest/gtest.h>

namespace wharf::gateway {
namespace {

using verdict = admission::verdict;

config::listener_config listener(std::size_t max_connections = 0, std::uint32_t max_rate = 0) {
  config::listener_config l;
  l.max_connections = max_connections;
  l.max_connection_rate = max_rate;
  return l;
}

TEST(admission, counts_connections_over_all_listeners_and_per_listener) {
  config::mqtt_config mqtt;
  mqtt.max_connections = 3;
  mqtt.flapping.max_connects = 0;
  const std::vector<config::listener_config> listeners = {listener(2), listener()};
  admission a(mqtt, listeners);
  EXPECT_EQ(a.admit(0, "a", 0), verdict::admitted);
  EXPECT_EQ(a.admit(0, "b", 0), verdict::admitted);
  EXPECT_EQ(a.admit(0, "c", 0), verdict::too_many_connections);  // listener 0 is full
  EXPECT_EQ(a.admit(1, "c", 0), verdict::admitted);
  EXPECT_EQ(a.admit(1, "d", 0), verdict::too_many_connections);  // all listeners are
  a.released(0);
  EXPECT_EQ(a.admit(1, "d", 0), verdict::admitted);
  EXPECT_EQ(a.admit(0, "e", 0), verdict::too_many_connections);
  a.released(1);
  EXPECT_EQ(a.admit(0, "e", 0), verdict::admitted);
}

TEST(admission, a_listener_rate_allows_a_burst_then_refills) {
  config::mqtt_config mqtt;
  mqtt.flapping.max_connects = 0;
  const std::vector<config::listener_config> listeners = {listener(0, 2)};
  admission a(mqtt, listeners);
  EXPECT_EQ(a.admit(0, "a", 1000), verdict::admitted);
  EXPECT_EQ(a.admit(0, "b", 1000), verdict::admitted);
  EXPECT_EQ(a.admit(0, "c", 1000), verdict::rate_exceeded);
  EXPECT_EQ(a.admit(0, "c", 1400), verdict::rate_exceeded);  // 0.8 of a token
  EXPECT_EQ(a.admit(0, "c", 1500), verdict::admitted);
  EXPECT_EQ(a.admit(0, "d", 1500), verdict::rate_exceeded);
}

TEST(admission, a_flapping_client_id_is_banned_then_let_in_again) {
  config::mqtt_config mqtt;
  mqtt.flapping = {.max_connects = 2, .window_s = 10, .ban_s = 60};
  const std::vector<config::listener_config> listeners = {listener()};
  admission a(mqtt, listeners);
  EXPECT_EQ(a.admit(0, "x", 0), verdict::admitted);
  EXPECT_EQ(a.admit(0, "x", 1000), verdict::admitted);
  EXPECT_EQ(a.admit(0, "x", 2000), verdict::banned);
  EXPECT_EQ(a.admit(0, "y", 2000), verdict::admitted);     // another id
  EXPECT_EQ(a.admit(0, "x", 61000), verdict::banned);      // still within the ban
  EXPECT_EQ(a.admit(0, "x", 62001), verdict::admitted);    // after it
  // Connects spread wider than the window never add up.
  EXPECT_EQ(a.admit(0, "z", 100000), verdict::admitted);
  EXPECT_EQ(a.admit(0, "z", 111000), verdict::admitted);
  EXPECT_EQ(a.admit(0, "z", 122000), verdict::admitted);
}

TEST(admission, a_reload_changes_bounds_and_adds_listeners_and_the_counts_go_on) {
  config::mqtt_config mqtt;
  mqtt.max_connections = 10;
  mqtt.flapping.max_connects = 0;
  admission a(mqtt, {listener(3)});
  EXPECT_EQ(a.admit(0, "a", 0), verdict::admitted);
  EXPECT_EQ(a.admit(0, "b", 0), verdict::admitted);
  a.set_listener(0, listener(2));  // two are open: a third no longer fits
  EXPECT_EQ(a.admit(0, "c", 0), verdict::too_many_connections);
  a.set_listener(1, listener(1));  // a listener the reload started
  EXPECT_EQ(a.admit(1, "c", 0), verdict::admitted);
  EXPECT_EQ(a.admit(1, "d", 0), verdict::too_many_connections);
  mqtt.max_connections = 3;
  a.update(mqtt);
  a.released(0);
  EXPECT_EQ(a.admit(0, "e", 0), verdict::admitted);  // 3 open: the global bound
  a.released(1);
  mqtt.flapping = {.max_connects = 1, .window_s = 10, .ban_s = 60};
  a.update(mqtt);
  EXPECT_EQ(a.admit(1, "f", 0), verdict::admitted);
  a.released(1);
  EXPECT_EQ(a.admit(1, "f", 0), verdict::banned);
}

}  // namespace
}  // namespace wharf::gateway
