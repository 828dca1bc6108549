// The log entry codec: every command type round-trips; anything else is refused.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/queue/engine.h"

namespace wharf::core::queue {
namespace {

// One command of every type, with every optional field set and non-default values.
std::vector<command> samples() {
  queue_attribute_changes all;
  all.max_msg_heap_num = 5000000;
  all.polling_wait_seconds = 7;
  all.visibility_timeout = 45;
  all.max_msg_size = 2048;
  all.msg_retention_seconds = 86400;
  all.rewind_seconds = 3600;
  all.dead_letter_queue = "dlq";
  all.policy = dead_letter_policy::max_time_to_live;
  all.max_receive_count = 3;
  all.max_time_to_live = 600;
  all.dedup_window_seconds = 120;
  all.ordered = true;

  subscription_attributes sub;
  sub.protocol = sub_protocol::http;
  sub.endpoint = "https://example.com/hook";
  sub.strategy = notify_strategy::backoff_retry;
  sub.format = notify_format::simplified;
  sub.filter_tags = {"a", "b"};
  sub.binding_keys = {"x.*", "#"};

  const time_ms t = 1'700'000'000'123;
  return {
      {t, create_queue{"orders", all}},
      {t, create_queue{"plain", {}}},
      {t, set_queue_attributes{"orders", all}},
      {t, delete_queue{"orders"}},
      {t, rewind_queue{"orders", 1'699'999'000}},
      {t,
       send_messages{"orders", {send_item{"hello", 5, "key-1", {}}, send_item{std::string("\0\xff", 2), 0, {}, {}}}}},
      {t, send_messages{"orders", {send_item{"a", 0, {}, "device-7"}, send_item{"b", 0, "k", std::string()}}}},
      {t, receive_messages{"orders", 16}},
      {t, delete_messages{"orders", {"h1", "h2"}}},
      {t, redrive_dead_letters{"dlq", "orders", 50}},
      {t, create_topic{"news", topic_attributes{4096, filter_type::routing_key}}},
      {t, set_topic_attributes{"news", 8192}},
      {t, set_topic_attributes{"news", std::nullopt}},
      {t, delete_topic{"news"}},
      {t,
       publish_messages{"news", {publish_item{"body", {"t1", "t2"}, "a.b.c"}, publish_item{"b2", {}, ""}}}},
      {t, subscribe{"news", "s1", sub}},
      {t, set_subscription_attributes{"news", "s1", notify_strategy::exponential_decay_retry,
                                      notify_format::json, std::vector<std::string>{"z"},
                                      std::vector<std::string>{}}},
      {t, set_subscription_attributes{"news", "s1", {}, {}, {}, {}}},
      {t, clear_subscription_filter_tags{"news", "s1"}},
      {t, unsubscribe{"news", "s1"}},
      {t, push_result{42, false, true, 12345}},
      {-5, push_result{7, true, false, -1}},
      {t, tick{}},
      {t, purge_queue{"orders"}},
      {t, put_mqtt_user{"meter-7", mqtt_user{"$pbkdf2-sha256$i=1000$c2FsdA==$aGFzaA==", {"meters", "ops"},
                                             {access_rule{true, rule_action::publish, "meters/%u/#"},
                                              access_rule{false, rule_action::all, "#"}}}}},
      {t, delete_mqtt_user{"meter-7"}},
      {t, put_mqtt_role{"meters", mqtt_role{{access_rule{true, rule_action::subscribe, "fleet/+"}}}}},
      {t, delete_mqtt_role{"meters"}},
  };
}

TEST(command_codec, every_command_type_round_trips) {
  std::vector<bool> seen(std::variant_size_v<command_body>, false);
  for (const command& c : samples()) {
    const std::string bytes = encode_command(c);
    const auto decoded = decode_command(bytes);
    ASSERT_TRUE(decoded.has_value()) << "type index " << c.body.index();
    EXPECT_EQ(decoded->now, c.now);
    EXPECT_EQ(decoded->body.index(), c.body.index());
    // Every field takes part in the encoding, so equal re-encodings mean equal commands.
    EXPECT_EQ(encode_command(*decoded), bytes) << "type index " << c.body.index();
    seen[c.body.index()] = true;
  }
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_TRUE(seen[i]) << "no sample of type index " << i;
}

TEST(command_codec, fields_survive_decoding) {
  const command c{1000, send_messages{"q", {send_item{"body", 9, "k", "group-1"}}}};
  const auto decoded = decode_command(encode_command(c));
  ASSERT_TRUE(decoded);
  const auto& send = std::get<send_messages>(decoded->body);
  EXPECT_EQ(send.queue, "q");
  ASSERT_EQ(send.items.size(), 1u);
  EXPECT_EQ(send.items[0].body, "body");
  EXPECT_EQ(send.items[0].delay_seconds, 9u);
  EXPECT_EQ(send.items[0].dedup_key, "k");
  EXPECT_EQ(send.items[0].group, "group-1");
}

// The format is stable: version byte, tag, zigzag time. A change here breaks stored logs.
TEST(command_codec, format_is_pinned) {
  EXPECT_EQ(encode_command(command{0, tick{}}), std::string("\x02\x12\x00", 3));
  EXPECT_EQ(encode_command(command{1, delete_queue{"q"}}), std::string("\x02\x03\x02\x01q", 5));
  EXPECT_EQ(encode_command(command{1, purge_queue{"q"}}), std::string("\x02\x13\x02\x01q", 5));
  // send_messages "q", one item: body "b", delay 0, no dedup key, group "g".
  EXPECT_EQ(encode_command(command{1, send_messages{"q", {send_item{"b", 0, {}, "g"}}}}),
            std::string("\x02\x05\x02\x01q\x01\x01" "b\x00\x00\x01\x01g", 13));
}

// Entries logged before version 2 (no group, no ordered attribute) still decode.
TEST(command_codec, version_1_entries_decode_without_the_later_fields) {
  const auto send = decode_command(std::string("\x01\x05\x02\x01q\x01\x01" "b\x00\x01\x01k", 12));
  ASSERT_TRUE(send);
  const auto& items = std::get<send_messages>(send->body).items;
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].body, "b");
  EXPECT_EQ(items[0].dedup_key, "k");
  EXPECT_FALSE(items[0].group);
  // create_queue "q" naming no attribute: eleven absent optionals.
  const auto create = decode_command(std::string("\x01\x01\x02\x01q") + std::string(11, '\0'));
  ASSERT_TRUE(create);
  EXPECT_FALSE(std::get<create_queue>(create->body).attributes.ordered);
  // The same bytes as version 2 lack the twelfth.
  EXPECT_FALSE(decode_command(std::string("\x02\x01\x02\x01q") + std::string(11, '\0')));
}

TEST(command_codec, every_truncation_is_refused) {
  for (const command& c : samples()) {
    const std::string bytes = encode_command(c);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_FALSE(decode_command(bytes.substr(0, n)))
          << "type index " << c.body.index() << ", " << n << " bytes";
    }
  }
}

TEST(command_codec, trailing_bytes_are_refused) {
  for (const command& c : samples()) EXPECT_FALSE(decode_command(encode_command(c) + '\0'));
}

TEST(command_codec, unknown_version_tag_and_enum_values_are_refused) {
  std::string bytes = encode_command(command{0, tick{}});
  bytes[0] = 3;
  EXPECT_FALSE(decode_command(bytes));
  bytes[0] = 0;
  EXPECT_FALSE(decode_command(bytes));
  bytes = encode_command(command{0, tick{}});
  bytes[1] = 0;
  EXPECT_FALSE(decode_command(bytes));
  bytes[1] = 24;  // the first tag not yet given
  EXPECT_FALSE(decode_command(bytes));
  // create_topic ends with its filter type byte: 3 is not a filter type.
  bytes = encode_command(command{0, create_topic{"t", topic_attributes{1024, filter_type::tag}}});
  bytes.back() = 3;
  EXPECT_FALSE(decode_command(bytes));
  // push_result's booleans are 0 or 1.
  bytes = encode_command(command{0, push_result{1, false, false, 0}});
  bytes[bytes.size() - 2] = 2;
  EXPECT_FALSE(decode_command(bytes));
}

TEST(command_codec, huge_counts_are_refused_without_allocating) {
  // send_messages "q" claiming 2^63 items; delete_messages claiming 2^40 handles.
  std::string send("\x01\x05\x00\x01q", 5);
  send += std::string("\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 9);
  EXPECT_FALSE(decode_command(send));
  std::string del("\x01\x07\x00\x01q", 5);
  del += std::string("\x80\x80\x80\x80\x80\x20", 6);
  EXPECT_FALSE(decode_command(del));
  // A varint longer than 64 bits.
  EXPECT_FALSE(decode_command(std::string("\x01\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13)));
}

TEST(command_codec, random_and_mutated_input_never_crashes) {
  std::mt19937_64 rng(20240601);
  const auto valid = samples();
  std::size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng() % 40);
      for (char& b : bytes) b = static_cast<char>(rng());
      if (!bytes.empty() && rng() % 2) bytes[0] = 1;
    } else {
      bytes = encode_command(valid[rng() % valid.size()]);
      for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips) {
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
      }
    }
    if (const auto decoded = decode_command(bytes)) {
      ++accepted;
      // Whatever decodes re-encodes to a decodable entry of the same command.
      const auto again = decode_command(encode_command(*decoded));
      ASSERT_TRUE(again);
      EXPECT_EQ(encode_command(*again), encode_command(*decoded));
    }
  }
  EXPECT_GT(accepted, 0u);
}

// A replicated entry: the turn's commands with their origins, and nothing else.
TEST(command_batch_codec, round_trips_and_refuses_anything_else) {
  std::vector<origin_command> batch;
  for (const auto& c : samples()) batch.push_back({"SecretId A from 10.0.0.1:5", c});
  batch.push_back({"", command{1, tick{}}});
  const std::string bytes = encode_command_batch(batch);
  const auto back = decode_command_batch(bytes);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ((*back)[i].origin, batch[i].origin);
    EXPECT_EQ(encode_command((*back)[i].cmd), encode_command(batch[i].cmd));
  }
  EXPECT_TRUE(decode_command_batch(encode_command_batch({})));
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_command_batch(bytes.substr(0, n))) << n;
  EXPECT_FALSE(decode_command_batch(bytes + "x"));
}

// A result relayed from the leader comes back whole.
TEST(result_codec, round_trips_and_refuses_anything_else) {
  result r;
  r.outcome = {code::batch_delete_partial, "1 of 2 failed"};
  r.id = "queue-1";
  r.msg_ids = {"m1", "m2"};
  r.messages = {received_message{"m1", "h1", std::string("b\0dy", 5), 1700000000, 1700000001, 1700000030, 2, "device-7"}};
  r.errors = {item_error{code::receipt_handle_invalid, "stale", "h9"}};
  r.count = 7;
  const std::string bytes = encode_result(r);
  const auto back = decode_result(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(encode_result(*back), bytes);
  EXPECT_EQ(back->messages.at(0).body, r.messages[0].body);
  EXPECT_EQ(back->messages.at(0).group, "device-7");
  EXPECT_EQ(back->errors.at(0).receipt_handle, "h9");
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_result(bytes.substr(0, n))) << n;
  EXPECT_FALSE(decode_result(bytes + "x"));
}

}  // namespace
}  // namespace wharf::core::queue
