// Topics and subscriptions: validation, publish fan-out to queues (tag and routing-key
// filters), HTTP pushes and their results.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "harness.h"

namespace wharf::core::queue {
namespace {

using testing::bodies_of;
using testing::harness;

void expect_invalid(const result& r, const std::string& parameter) {
  EXPECT_EQ(r.outcome.value, code::invalid_parameter) << r.outcome.message;
  EXPECT_NE(r.outcome.message.find(parameter), std::string::npos) << r.outcome.message;
}

subscription_attributes to_queue(const std::string& queue, std::vector<std::string> filter_tags = {},
                                 std::vector<std::string> binding_keys = {}) {
  subscription_attributes a;
  a.protocol = sub_protocol::queue;
  a.endpoint = queue;
  a.format = notify_format::simplified;
  a.filter_tags = std::move(filter_tags);
  a.binding_keys = std::move(binding_keys);
  return a;
}

subscription_attributes to_http(const std::string& url) {
  subscription_attributes a;
  a.protocol = sub_protocol::http;
  a.endpoint = url;
  return a;
}

publish_messages one(const std::string& topic, std::string body, std::vector<std::string> tags = {},
                     std::string routing_key = {}) {
  return publish_messages{topic, {publish_item{std::move(body), std::move(tags), std::move(routing_key)}}};
}

TEST(topic_create, validation_limits_and_ids) {
  engine_limits limits = harness::test_limits();
  limits.max_topics = 2;
  harness h(limits);
  expect_invalid(h.run(create_topic{"9bad", {}}), "topicName");
  expect_invalid(h.run(create_topic{"t", topic_attributes{1023, filter_type::tag}}), "maxMsgSize");
  expect_invalid(h.run(create_topic{"t", topic_attributes{1048577, filter_type::tag}}), "maxMsgSize");
  expect_invalid(h.run(create_topic{"t", topic_attributes{1024, static_cast<filter_type>(3)}}), "filterType");
  EXPECT_EQ(h.run(create_topic{"t", {}}).id, "topic-1");
  EXPECT_CODE(h.run(create_topic{"t", {}}), code::already_exists);
  ASSERT_OK(h.run(create_topic{"u", topic_attributes{1048576, filter_type::routing_key}}));
  EXPECT_CODE(h.run(create_topic{"v", {}}), code::too_many);
  const auto info = h.eng().topic("u").value();
  EXPECT_EQ(info.attributes.filter, filter_type::routing_key);
  EXPECT_EQ(info.attributes.max_msg_size, 1048576u);
  std::size_t total = 0;
  EXPECT_EQ(h.eng().list_topics(std::nullopt, "", 0, 10, total).size(), 2u);
  EXPECT_EQ(total, 2u);
}

TEST(topic_set_and_delete, attributes_and_not_found) {
  harness h;
  ASSERT_OK(h.run(create_topic{"t", {}}));
  expect_invalid(h.run(set_topic_attributes{"t", 100}), "maxMsgSize");
  h.advance_s(3);
  ASSERT_OK(h.run(set_topic_attributes{"t", 2048}));
  EXPECT_EQ(h.eng().topic("t")->attributes.max_msg_size, 2048u);
  EXPECT_EQ(h.eng().topic("t")->last_modify_time_s, h.now / 1000);
  EXPECT_CODE(h.run(set_topic_attributes{"x", 2048}), code::not_found);
  EXPECT_CODE(h.run(delete_topic{"x"}), code::not_found);
  EXPECT_CODE(h.run(one("x", "m")), code::not_found);
  EXPECT_CODE(h.run(subscribe{"x", "s", to_http("http://h")}), code::not_found);
  ASSERT_OK(h.run(delete_topic{"t"}));
  EXPECT_FALSE(h.eng().topic("t"));
}

TEST(topic_publish, validation) {
  harness h;
  ASSERT_OK(h.run(create_topic{"t", topic_attributes{1024, filter_type::tag}}));
  expect_invalid(h.run(publish_messages{"t", {}}), "msgBody");
  expect_invalid(h.run(publish_messages{"t", std::vector<publish_item>(17, publish_item{"x", {}, ""})}),
                 "msgBody");
  expect_invalid(h.run(one("t", "")), "msgBody");
  expect_invalid(h.run(one("t", "m", {"1", "2", "3", "4", "5", "6"})), "msgTag");
  expect_invalid(h.run(one("t", "m", {""})), "msgTag");
  expect_invalid(h.run(one("t", "m", {std::string(17, 'x')})), "msgTag");
  // Tags go into an HTTP header of pushes: no CR/LF/NUL or other control characters.
  expect_invalid(h.run(one("t", "m", {"a\r\nX-Evil: 1"})), "msgTag");
  expect_invalid(h.run(one("t", "m", {std::string("a\0b", 3)})), "msgTag");
  expect_invalid(h.run(one("t", "m", {}, std::string(65, 'k'))), "routingKey");
  expect_invalid(h.run(one("t", "m", {}, std::string(16, '.'))), "routingKey");
  EXPECT_CODE(h.run(one("t", std::string(1025, 'x'))), code::message_too_large);
  // Limits themselves are fine; tags count characters, not bytes.
  EXPECT_CODE(h.run(one("t", std::string(1024, 'x'), {"1", "2", "3", "4", std::string(16, 'x')},
                        std::string(15, '.') + std::string(49, 'k'))),
              code::ok);
  std::string sixteen_e_acute;
  for (int i = 0; i < 16; ++i) sixteen_e_acute += "\xc3\xa9";  // 32 bytes, 16 characters
  EXPECT_CODE(h.run(one("t", "m", {sixteen_e_acute})), code::ok);
  EXPECT_EQ(h.eng().topic("t")->msg_count, 2u);
}

TEST(topic_subscribe, validation) {
  engine_limits limits = harness::test_limits();
  limits.max_subscriptions_per_topic = 2;
  harness h(limits);
  ASSERT_OK(h.run(create_topic{"t", {}}));
  ASSERT_OK(h.create("q"));
  expect_invalid(h.run(subscribe{"t", "1s", to_queue("q")}), "subscriptionName");
  EXPECT_CODE(h.run(subscribe{"t", "s", to_queue("missing")}), code::not_found);
  subscription_attributes json = to_queue("q");
  json.format = notify_format::json;
  expect_invalid(h.run(subscribe{"t", "s", json}), "SIMPLIFIED");
  expect_invalid(h.run(subscribe{"t", "s", to_http("ftp://x")}), "endpoint");
  expect_invalid(h.run(subscribe{"t", "s", to_queue("q", {"1", "2", "3", "4", "5", "6"})}), "filterTag");
  expect_invalid(h.run(subscribe{"t", "s", to_queue("q", {std::string(17, 't')})}), "filterTag");
  expect_invalid(h.run(subscribe{"t", "s", to_queue("q", {}, {"a", "b", "c", "d", "e", "f"})}), "bindingKey");
  expect_invalid(h.run(subscribe{"t", "s", to_queue("q", {}, {std::string(65, 'k')})}), "bindingKey");
  expect_invalid(h.run(subscribe{"t", "s", to_queue("q", {}, {std::string(16, '.')})}), "bindingKey");
  expect_invalid(h.run(subscribe{"t", "s", to_queue("q", {}, {""})}), "bindingKey");
  EXPECT_EQ(h.run(subscribe{"t", "s", to_queue("q")}).id, "subscription-1");
  EXPECT_CODE(h.run(subscribe{"t", "s", to_queue("q")}), code::already_exists);
  ASSERT_OK(h.run(subscribe{"t", "h", to_http("https://example.com/x")}));
  EXPECT_CODE(h.run(subscribe{"t", "third", to_http("http://example.com")}), code::too_many);
  std::size_t total = 0;
  const auto subs = h.eng().list_subscriptions("t", "", 0, 10, total);
  EXPECT_EQ(total, 2u);
  ASSERT_EQ(subs.size(), 2u);
  EXPECT_EQ(subs[0].name, "h");
  EXPECT_EQ(subs[1].topic, "t");
  EXPECT_EQ(h.eng().list_subscriptions("none", "", 0, 10, total).size(), 0u);
  EXPECT_EQ(total, 0u);
}

TEST(topic_fan_out, queue_subscriptions_get_the_raw_body_and_msg_id) {
  harness h;
  ASSERT_OK(h.run(create_topic{"t", {}}));
  ASSERT_OK(h.create("q1"));
  ASSERT_OK(h.create("q2"));
  ASSERT_OK(h.run(subscribe{"t", "s1", to_queue("q1")}));
  ASSERT_OK(h.run(subscribe{"t", "s2", to_queue("q2")}));
  const result published =
      h.run(publish_messages{"t", {publish_item{"one", {}, ""}, publish_item{"two", {}, ""}}});
  ASSERT_OK(published);
  ASSERT_EQ(published.msg_ids.size(), 2u);
  for (const std::string q : {"q1", "q2"}) {
    const result r = h.receive(q, 16);
    EXPECT_EQ(bodies_of(r), (std::vector<std::string>{"one", "two"}));
    EXPECT_EQ(r.messages.at(0).msg_id, published.msg_ids[0]);
  }
  EXPECT_EQ(h.eng().topic("t")->msg_count, 2u);
}

TEST(topic_fan_out, tag_filter) {
  harness h;
  ASSERT_OK(h.run(create_topic{"t", topic_attributes{65536, filter_type::tag}}));
  ASSERT_OK(h.create("all"));
  ASSERT_OK(h.create("red"));
  ASSERT_OK(h.create("red_or_blue"));
  ASSERT_OK(h.run(subscribe{"t", "all", to_queue("all")}));
  ASSERT_OK(h.run(subscribe{"t", "red", to_queue("red", {"red"})}));
  ASSERT_OK(h.run(subscribe{"t", "red_or_blue", to_queue("red_or_blue", {"red", "blue"})}));
  ASSERT_OK(h.run(one("t", "untagged")));
  ASSERT_OK(h.run(one("t", "red", {"red"})));
  ASSERT_OK(h.run(one("t", "blue-green", {"green", "blue"})));
  EXPECT_EQ(bodies_of(h.receive("all", 16)), (std::vector<std::string>{"untagged", "red", "blue-green"}));
  EXPECT_EQ(bodies_of(h.receive("red", 16)), (std::vector<std::string>{"red"}));
  EXPECT_EQ(bodies_of(h.receive("red_or_blue", 16)), (std::vector<std::string>{"red", "blue-green"}));

  // Clearing the filter tags makes "red" a catch-all; setting them narrows it again.
  ASSERT_OK(h.run(clear_subscription_filter_tags{"t", "red"}));
  ASSERT_OK(h.run(one("t", "after-clear")));
  EXPECT_EQ(bodies_of(h.receive("red", 16)), (std::vector<std::string>{"after-clear"}));
  set_subscription_attributes set{"t", "red", {}, {}, std::vector<std::string>{"x"}, {}};
  ASSERT_OK(h.run(set));
  ASSERT_OK(h.run(one("t", "not-x", {"y"})));
  EXPECT_CODE(h.receive("red"), code::no_message);
  EXPECT_EQ(h.eng().subscription("t", "red")->attributes.filter_tags, (std::vector<std::string>{"x"}));
}

TEST(topic_fan_out, routing_key_filter) {
  harness h;
  ASSERT_OK(h.run(create_topic{"t", topic_attributes{65536, filter_type::routing_key}}));
  struct sub_case {
    const char* queue;
    std::vector<std::string> binding_keys;
  };
  const sub_case subs[] = {
      {"everything", {}},
      {"hash", {"#"}},
      {"usd_any", {"stock.usd.*"}},
      {"stock_tree", {"stock.#"}},
      {"nyse_or_eur", {"*.*.nyse", "*.eur.#"}},
  };
  for (const auto& s : subs) {
    ASSERT_OK(h.create(s.queue));
    ASSERT_OK(h.run(subscribe{"t", s.queue, to_queue(s.queue, {"ignored-tag"}, s.binding_keys)}));
  }
  for (const std::string key : {"stock.usd.nyse", "stock.usd", "stock.eur.lse.x", "bond.usd.nyse", ""}) {
    ASSERT_OK(h.run(one("t", key.empty() ? "(empty)" : key, {}, key)));
  }
  const auto received = [&](const std::string& q) { return bodies_of(h.receive(q, 16)); };
  using list = std::vector<std::string>;
  EXPECT_EQ(received("everything"),
            (list{"stock.usd.nyse", "stock.usd", "stock.eur.lse.x", "bond.usd.nyse", "(empty)"}));
  EXPECT_EQ(received("hash"),
            (list{"stock.usd.nyse", "stock.usd", "stock.eur.lse.x", "bond.usd.nyse", "(empty)"}));
  EXPECT_EQ(received("usd_any"), (list{"stock.usd.nyse"}));
  EXPECT_EQ(received("stock_tree"), (list{"stock.usd.nyse", "stock.usd", "stock.eur.lse.x"}));
  EXPECT_EQ(received("nyse_or_eur"), (list{"stock.usd.nyse", "stock.eur.lse.x", "bond.usd.nyse"}));
}

TEST(topic_fan_out, a_missing_queue_is_counted_and_the_publish_succeeds) {
  harness h;
  ASSERT_OK(h.run(create_topic{"t", {}}));
  ASSERT_OK(h.create("q"));
  ASSERT_OK(h.run(subscribe{"t", "s", to_queue("q")}));
  ASSERT_OK(h.run(delete_queue{"q"}));
  ASSERT_OK(h.run(one("t", "m")));
  EXPECT_EQ(h.eng().stats().publish_queue_full, 1u);
}

TEST(topic_http, pending_pushes_and_their_results) {
  harness h;
  ASSERT_OK(h.run(create_topic{"t", {}}));
  subscription_attributes http = to_http("https://example.com/hook");
  http.strategy = notify_strategy::backoff_retry;
  ASSERT_OK(h.run(subscribe{"t", "web", http}));
  const time_ms published_at = h.now;
  const result published =
      h.run(publish_messages{"t", {publish_item{"b1", {"x"}, ""}, publish_item{"b2", {}, ""}}});
  ASSERT_OK(published);
  EXPECT_EQ(h.eng().subscription("t", "web")->pending_pushes, 2u);
  EXPECT_EQ(h.eng().next_push_time(), published_at);

  auto due = h.eng().due_pushes(h.now, 10, {});
  ASSERT_EQ(due.size(), 2u);
  const push_delivery& d = due[0];
  EXPECT_EQ(d.topic, "t");
  EXPECT_EQ(d.subscription, "web");
  EXPECT_EQ(d.endpoint, "https://example.com/hook");
  EXPECT_EQ(d.strategy, notify_strategy::backoff_retry);
  EXPECT_EQ(d.format, notify_format::json);
  EXPECT_EQ(d.msg_id, published.msg_ids[0]);
  EXPECT_EQ(d.body, "b1");
  EXPECT_EQ(d.tags, (std::vector<std::string>{"x"}));
  EXPECT_EQ(d.publish_time_s, published_at / 1000);
  EXPECT_EQ(d.attempts, 0u);
  EXPECT_EQ(h.eng().due_pushes(h.now, 1, {}).size(), 1u);
  const std::vector<std::uint64_t> in_flight = {d.delivery_id};
  ASSERT_EQ(h.eng().due_pushes(h.now, 10, in_flight).size(), 1u);
  EXPECT_EQ(h.eng().due_pushes(h.now, 10, in_flight)[0].body, "b2");

  // A failure reschedules; a success removes; give_up removes and counts.
  h.advance_s(1);
  ASSERT_OK(h.run(push_result{d.delivery_id, false, false, 15000}));
  due = h.eng().due_pushes(h.now, 10, {});
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].body, "b2");
  EXPECT_EQ(h.eng().next_push_time(), published_at);
  h.advance_s(15);
  due = h.eng().due_pushes(h.now, 10, {});
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[1].attempts, 1u);
  EXPECT_EQ(due[1].due, published_at + 16000);
  ASSERT_OK(h.run(push_result{due[0].delivery_id, true, false, 0}));
  ASSERT_OK(h.run(push_result{due[1].delivery_id, false, true, 0}));
  EXPECT_EQ(h.eng().stats().pushes_given_up, 1u);
  EXPECT_TRUE(h.eng().due_pushes(h.now, 10, {}).empty());
  EXPECT_FALSE(h.eng().next_push_time());
  EXPECT_TRUE(h.scan("cp/").empty());
  EXPECT_TRUE(h.scan("cpb/").empty());
  EXPECT_CODE(h.run(push_result{999, true, false, 0}), code::ok);  // unknown: no change
}

TEST(topic_http, pending_pushes_survive_reopen) {
  harness h;
  ASSERT_OK(h.run(create_topic{"t", {}}));
  ASSERT_OK(h.run(subscribe{"t", "web", to_http("http://h/p")}));
  ASSERT_OK(h.run(one("t", "payload", {"tag"})));
  const std::string before = h.eng().dump();
  h.reopen();
  EXPECT_EQ(h.eng().dump(), before);
  const auto due = h.eng().due_pushes(h.now, 10, {});
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].body, "payload");
}

TEST(topic_http, unsubscribe_and_delete_topic_remove_pending_pushes) {
  harness h;
  ASSERT_OK(h.run(create_topic{"t", {}}));
  ASSERT_OK(h.run(create_topic{"u", {}}));
  ASSERT_OK(h.run(subscribe{"t", "a", to_http("http://h/a")}));
  ASSERT_OK(h.run(subscribe{"t", "b", to_http("http://h/b")}));
  ASSERT_OK(h.run(subscribe{"u", "c", to_http("http://h/c")}));
  ASSERT_OK(h.run(one("t", "m1")));
  ASSERT_OK(h.run(one("u", "m2")));
  EXPECT_EQ(h.eng().due_pushes(h.now, 10, {}).size(), 3u);
  ASSERT_OK(h.run(unsubscribe{"t", "a"}));
  EXPECT_EQ(h.eng().due_pushes(h.now, 10, {}).size(), 2u);
  EXPECT_CODE(h.run(unsubscribe{"t", "a"}), code::not_found);
  ASSERT_OK(h.run(delete_topic{"t"}));
  const auto due = h.eng().due_pushes(h.now, 10, {});
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].subscription, "c");
  EXPECT_EQ(h.scan("cp/").size(), 1u);
  EXPECT_EQ(h.scan("cpb/").size(), 1u);
  EXPECT_EQ(h.scan("cu/").size(), 1u);
  EXPECT_FALSE(h.eng().subscription("t", "b"));
}

TEST(topic_subscription, set_attributes_validates) {
  harness h;
  ASSERT_OK(h.run(create_topic{"t", {}}));
  ASSERT_OK(h.create("q"));
  ASSERT_OK(h.run(subscribe{"t", "s", to_queue("q")}));
  EXPECT_CODE(h.run(set_subscription_attributes{"t", "nope", {}, {}, {}, {}}), code::not_found);
  EXPECT_CODE(h.run(clear_subscription_filter_tags{"t", "nope"}), code::not_found);
  expect_invalid(h.run(set_subscription_attributes{"t", "s", {}, notify_format::json, {}, {}}), "SIMPLIFIED");
  expect_invalid(h.run(set_subscription_attributes{"t", "s", {}, {}, {}, std::vector<std::string>(6, "k")}),
                 "bindingKey");
  h.advance_s(2);
  ASSERT_OK(h.run(set_subscription_attributes{
      "t", "s", notify_strategy::backoff_retry, {}, {}, std::vector<std::string>{"a.#"}}));
  const auto info = h.eng().subscription("t", "s").value();
  EXPECT_EQ(info.attributes.strategy, notify_strategy::backoff_retry);
  EXPECT_EQ(info.attributes.binding_keys, (std::vector<std::string>{"a.#"}));
  EXPECT_EQ(info.last_modify_time_s, h.now / 1000);
  EXPECT_EQ(info.id, "subscription-1");
}

}  // namespace
}  // namespace wharf::core::queue
