// Determinism: the log written by apply() replayed into a fresh engine gives the same
// state in memory (dump) and on disk (every key), and open() rebuilds the same state.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "harness.h"

namespace wharf::core::queue {
namespace {

using testing::harness;

// Random commands over a small set of names, so that they hit each other: queues with
// every kind of setting, dead-letter queues, topics with queue and HTTP subscriptions,
// invalid input, and time jumps that make retention and time to live fire.
class workload {
 public:
  workload(harness& h, std::uint64_t seed) : h_(h), rng_(seed) {}

  // Picks the next command and advances the clock.
  command_body next() {
    h_.advance_ms(pick(10) == 0 ? 1000 * (60 + pick(400)) : pick(3000));
    switch (pick(20)) {
      case 0: return create_queue_command();
      case 1: return set_queue_attributes{queue_name(), random_attributes()};
      case 2:
        switch (pick(8)) {
          case 0: return delete_queue{queue_name()};
          case 1: return purge_queue{queue_name()};
          default: return tick{};
        }
      case 3: return rewind_queue{queue_name(), h_.now / 1000 - static_cast<std::int64_t>(pick(400))};
      case 4:
      case 5:
      case 6: return send();
      case 7:
      case 8: {
        receive_messages r{queue_name(), 1 + pick(pick(4) == 0 ? 20 : 4)};
        last_received_from_ = r.queue;
        return r;
      }
      case 9:
      case 10: return delete_some();
      case 11: return redrive_dead_letters{"dlq", pick(2) ? "" : queue_name(), 1 + pick(5)};
      case 12:
        return pick(3) ? command_body{create_topic{topic_name(), random_topic()}}
                       : command_body{set_topic_attributes{topic_name(), 1024 + pick(2000)}};
      case 13:
        return pick(8) ? command_body{subscribe{topic_name(), sub_name(), random_subscription()}}
                       : command_body{delete_topic{topic_name()}};
      case 14:
      case 15: return publish();
      case 16: return push_outcome();
      case 17:
        switch (pick(3)) {
          case 0:
            return set_subscription_attributes{topic_name(), sub_name(),    {},
                                               {},           random_tags(), random_keys()};
          case 1: return clear_subscription_filter_tags{topic_name(), sub_name()};
          default: return unsubscribe{topic_name(), sub_name()};
        }
      case 18: return mqtt_auth_command();
      default: return tick{};
    }
  }

  // Remembers receipt handles (with their queue) for later deletes.
  void observe(const result& r) {
    for (const auto& m : r.messages) handles_.emplace_back(last_received_from_, m.receipt_handle);
    if (handles_.size() > 64) handles_.erase(handles_.begin(), handles_.begin() + 32);
  }

 private:
  std::uint32_t pick(std::uint32_t n) { return static_cast<std::uint32_t>(rng_() % n); }

  std::string queue_name() {
    static const char* names[] = {"q0", "q1", "q2", "q3", "dlq", "9bad"};
    return in_tenant(names[pick(pick(10) == 0 ? 6 : 5)]);
  }
  std::string topic_name() { return in_tenant(pick(2) ? "t0" : "t1"); }
  // q1 and t1 are tenant acme's half the time (a stream of their own, so the other draws stay
  // as they were): references across tenants are refused, and acme's quotas (tenant_limits)
  // refuse some of its creates and sends.
  std::string in_tenant(std::string name) {
    if ((name == "q1" || name == "t1") && tenant_rng_() % 2 == 0) return "acme:" + name;
    return name;
  }

  // MQTT users and roles: puts, deletes, a role missing or still held, and so refusals.
  // Drawn from a stream of their own, so the queue and topic commands stay as they were.
  command_body mqtt_auth_command() {
    auto pick = [this](std::uint32_t n) { return static_cast<std::uint32_t>(auth_rng_() % n); };
    auto role_name = [&] { return pick(2) ? std::string("r0") : std::string("r1"); };
    std::vector<access_rule> rules;
    for (std::uint32_t i = pick(3); i > 0; --i)
      rules.push_back({pick(2) == 0, static_cast<rule_action>(pick(3)), pick(2) ? "a/#" : "b/+/c"});
    switch (pick(4)) {
      case 0: {
        mqtt_user user{pick(2) ? "$pbkdf2-sha256$i=1000$c2FsdA==$aGFzaA==" : "", {}, std::move(rules)};
        if (pick(2)) user.roles.push_back(role_name());
        return put_mqtt_user{"u" + std::to_string(pick(3)), std::move(user)};
      }
      case 1: return delete_mqtt_user{"u" + std::to_string(pick(3))};
      case 2: return put_mqtt_role{role_name(), mqtt_role{std::move(rules)}};
      default: return delete_mqtt_role{role_name()};
    }
  }
  std::string sub_name() { return "s" + std::to_string(pick(4)); }

  // q2 and q3 are created ordered, mostly (drawn from a stream of their own).
  command_body create_queue_command() {
    create_queue c{queue_name(), random_attributes()};
    if ((c.name == "q2" || c.name == "q3") && group_rng_() % 5 != 0) {
      c.attributes.ordered = true;
      ordered_queues_.insert(c.name);
    }
    return c;
  }

  queue_attribute_changes random_attributes() {
    queue_attribute_changes a;
    a.visibility_timeout = 1 + pick(20);
    switch (pick(6)) {
      case 0: a.rewind_seconds = 30 + pick(300); break;
      case 1:
        a.dead_letter_queue = "dlq";
        a.policy = dead_letter_policy::max_receive_count;
        a.max_receive_count = 1 + pick(3);
        break;
      case 2:
        a.dead_letter_queue = "dlq";
        a.policy = dead_letter_policy::max_time_to_live;
        a.max_time_to_live = 300 + pick(100);
        a.msg_retention_seconds = 600;
        break;
      case 3:
        a.msg_retention_seconds = 60 + pick(60);
        a.dedup_window_seconds = pick(60);
        break;
      case 4: a.visibility_timeout = 0; break;  // invalid
      default: a.dedup_window_seconds = 5 + pick(30); break;
    }
    return a;
  }

  command_body send() {
    send_messages s{queue_name(), {}};
    for (std::uint32_t n = 1 + pick(4); n > 0; --n) {
      send_item item{"body-" + std::to_string(rng_() % 100000), pick(4) == 0 ? pick(5) : 0, std::nullopt, {}};
      if (pick(3) == 0) item.dedup_key = "key" + std::to_string(pick(6));
      // Groups (a stream of their own): mostly to the queues created ordered, now and then
      // to another (refused) or empty (invalid); else the default group.
      const auto g = group_rng_() % 6;
      if (g < 3 && (ordered_queues_.contains(s.queue) || group_rng_() % 8 == 0)) {
        item.group = "g" + std::to_string(g);
      } else if (g == 3 && group_rng_() % 10 == 0) {
        item.group = "";
      }
      if (pick(50) == 0) item.body.clear();  // invalid
      s.items.push_back(std::move(item));
    }
    return s;
  }

  // Mostly handles of the queue named, some of another.
  command_body delete_some() {
    delete_messages d{queue_name(), {}};
    if (!handles_.empty() && pick(4) != 0) d.queue = handles_[pick(static_cast<std::uint32_t>(handles_.size()))].first;
    for (std::uint32_t n = 1 + pick(3); n > 0 && !handles_.empty(); --n) {
      const auto& [queue, handle] = handles_[pick(static_cast<std::uint32_t>(handles_.size()))];
      if (queue == d.queue || pick(4) == 0) d.receipt_handles.push_back(handle);
    }
    if (d.receipt_handles.empty() || pick(10) == 0) d.receipt_handles.push_back("bogus");
    return d;
  }

  topic_attributes random_topic() {
    return topic_attributes{1024 + pick(2000), pick(2) ? filter_type::tag : filter_type::routing_key};
  }

  std::vector<std::string> random_tags() {
    static const char* tags[] = {"a", "b", "c"};
    std::vector<std::string> out;
    for (std::uint32_t n = pick(3); n > 0; --n) out.push_back(tags[pick(3)]);
    return out;
  }

  std::vector<std::string> random_keys() {
    static const char* keys[] = {"x.*", "#", "x.#", "*.z.*", "y"};
    std::vector<std::string> out;
    for (std::uint32_t n = pick(3); n > 0; --n) out.push_back(keys[pick(5)]);
    return out;
  }

  subscription_attributes random_subscription() {
    subscription_attributes a;
    if (pick(2)) {
      a.protocol = sub_protocol::http;
      a.endpoint = "http://example.com/" + std::to_string(pick(3));
      a.strategy = pick(2) ? notify_strategy::backoff_retry : notify_strategy::exponential_decay_retry;
    } else {
      a.protocol = sub_protocol::queue;
      a.endpoint = queue_name();
      a.format = notify_format::simplified;
    }
    a.filter_tags = random_tags();
    a.binding_keys = random_keys();
    return a;
  }

  command_body publish() {
    static const char* routing_keys[] = {"x.y", "x", "y", "a.z.b", ""};
    publish_messages p{topic_name(), {}};
    for (std::uint32_t n = 1 + pick(3); n > 0; --n) {
      p.items.push_back(
          publish_item{"pub-" + std::to_string(rng_() % 1000), random_tags(), routing_keys[pick(5)]});
    }
    return p;
  }

  command_body push_outcome() {
    const auto due = h_.eng().due_pushes(h_.now, 4, {});
    if (due.empty()) return push_result{rng_() % 50, true, false, 0};
    const push_delivery& d = due[pick(static_cast<std::uint32_t>(due.size()))];
    switch (pick(3)) {
      case 0: return push_result{d.delivery_id, true, false, 0};
      case 1: return push_result{d.delivery_id, false, true, 0};
      default: return push_result{d.delivery_id, false, false, 1000 * (1 + pick(20))};
    }
  }

  harness& h_;
  std::mt19937_64 rng_;
  std::mt19937_64 auth_rng_{1};
  std::mt19937_64 group_rng_{2};
  std::mt19937_64 tenant_rng_{3};
  std::set<std::string> ordered_queues_;  // created ordered at least once (a guess: creates may fail)
  std::vector<std::pair<std::string, std::string>> handles_;  // (queue, receipt handle)
  std::string last_received_from_;
};

std::vector<std::pair<std::string, std::string>> every_key(harness& h) { return h.scan("c"); }

// The workload's tenant acme: one queue and one topic, and little room for bodies.
engine_limits tenant_limits() {
  engine_limits limits = harness::test_limits();
  limits.tenant_quotas.emplace("acme", tenant_quota{.max_queues = 1, .max_topics = 1, .max_stored_bytes = 64});
  return limits;
}

TEST(replay, the_log_rebuilds_the_same_state_in_memory_and_on_disk) {
  harness original(tenant_limits());
  workload w(original, 7);
  std::vector<result> results;
  std::vector<std::size_t> succeeded(std::variant_size_v<command_body>, 0);
  for (int i = 0; i < 4000; ++i) {
    command_body body = w.next();
    const std::size_t type = body.index();
    const result r = original.run(std::move(body));
    w.observe(r);
    succeeded[type] += r.outcome.ok();
    results.push_back(r);
    // open() must rebuild a state that behaves the same from there on.
    if (i % 700 == 699) original.reopen();
  }
  // The workload reaches every command type with effect.
  for (std::size_t type = 0; type < succeeded.size(); ++type) {
    EXPECT_GT(succeeded[type], 0u) << "command type index " << type;
  }
  const engine_stats stats = original.eng().stats();
  EXPECT_GT(stats.messages_dead_lettered, 0u);
  EXPECT_GT(stats.messages_expired, 0u);
  EXPECT_GT(stats.dedup_hits, 0u);
  EXPECT_GT(stats.group_heads_dead_lettered, 0u);
  EXPECT_GT(stats.tenant_quota_refusals, 0u);
  EXPECT_GT(original.eng().usage("acme").queues, 0u);

  harness replica(tenant_limits());
  const auto log = original.scan(log_key_prefix);
  ASSERT_EQ(log.size(), 4000u);
  std::size_t index = 0;
  for (const auto& [key, value] : log) {
    const auto cmd = decode_command(value);
    ASSERT_TRUE(cmd) << "log entry " << index;
    write_batch batch;
    const result r = replica.eng().apply(*cmd, batch);
    replica.commit(std::move(batch));
    ASSERT_EQ(r.outcome.value, results[index].outcome.value) << "log entry " << index;
    ASSERT_EQ(r.msg_ids, results[index].msg_ids) << "log entry " << index;
    ASSERT_EQ(r.messages.size(), results[index].messages.size()) << "log entry " << index;
    ++index;
  }
  const std::string dump = original.eng().dump();
  EXPECT_EQ(replica.eng().dump(), dump);
  EXPECT_TRUE(every_key(replica) == every_key(original));

  original.reopen();
  EXPECT_EQ(original.eng().dump(), dump);
  replica.reopen();
  EXPECT_EQ(replica.eng().dump(), dump);
}

TEST(replay, reopen_gives_the_same_dump_at_every_point) {
  harness h(tenant_limits());
  workload w(h, 99);
  for (int i = 0; i < 600; ++i) {
    w.observe(h.run(w.next()));
    if (i % 50 == 0) {
      const std::string before = h.eng().dump();
      const engine_stats stats = h.eng().stats();
      const auto tick_time = h.eng().next_tick_time();
      // Memory only, counted again at load: each tenant's stored bytes.
      const auto stored = [&h] {
        return std::pair(h.eng().usage("").stored_bytes, h.eng().usage("acme").stored_bytes);
      };
      const auto stored_before = stored();
      h.reopen();
      ASSERT_EQ(h.eng().dump(), before) << "after command " << i;
      EXPECT_EQ(h.eng().stats().applied_index, stats.applied_index);
      EXPECT_EQ(h.eng().next_tick_time(), tick_time);
      EXPECT_EQ(stored(), stored_before) << "after command " << i;
    }
  }
}

TEST(replay, a_purge_replays_and_reloads_to_the_same_state) {
  harness original;
  queue_attribute_changes a;
  a.rewind_seconds = 600;
  a.visibility_timeout = 10;
  ASSERT_OK(original.create("q", a));
  ASSERT_OK(original.create("other"));
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK(original.send("q", "m" + std::to_string(i), i == 5 ? 60 : 0, "key" + std::to_string(i)));
    ASSERT_OK(original.send("other", "o" + std::to_string(i)));
  }
  const result taken = original.receive("q", 2);
  ASSERT_OK(taken);
  ASSERT_OK(original.remove("q", {taken.messages.at(0).receipt_handle}));
  original.advance_s(1);
  const result purged = original.run(purge_queue{"q"});
  ASSERT_OK(purged);
  EXPECT_EQ(purged.count, 5u);
  original.advance_s(1);
  ASSERT_OK(original.send("q", "after", 0, "key1"));

  harness replica;
  for (const auto& [key, value] : original.scan(log_key_prefix)) {
    const auto cmd = decode_command(value);
    ASSERT_TRUE(cmd);
    write_batch batch;
    (void)replica.eng().apply(*cmd, batch);
    replica.commit(std::move(batch));
  }
  const std::string dump = original.eng().dump();
  EXPECT_EQ(replica.eng().dump(), dump);
  EXPECT_TRUE(every_key(replica) == every_key(original));
  original.reopen();
  EXPECT_EQ(original.eng().dump(), dump);
  EXPECT_EQ(original.counts("q").active, 1u);
  EXPECT_EQ(original.counts("other").active, 6u);
}

TEST(replay, the_log_is_trimmed_in_chunks) {
  engine_limits limits = harness::test_limits();
  limits.log_retain_entries = 100;
  harness h(limits);
  for (int i = 0; i < 3000; ++i) ASSERT_OK(h.tick_now());
  const auto log = h.scan(log_key_prefix);
  // Trimmed at index 2048 (a multiple of 1024) to the 100 entries before it; not since.
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(read_be64(std::string_view(log.front().first).substr(log_key_prefix.size())), 2048u - 100 + 1);
  EXPECT_EQ(read_be64(std::string_view(log.back().first).substr(log_key_prefix.size())), 3000u);
  EXPECT_EQ(h.eng().applied_index(), 3000u);
  h.reopen();
  EXPECT_EQ(h.eng().applied_index(), 3000u);
}

}  // namespace
}  // namespace wharf::core::queue
