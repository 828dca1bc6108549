// Tenants in the queue core (tenant.h): names scoped per tenant, every action kept inside
// its tenant (scope() for what a tenant sends, the engine for what it holds), quotas, and the
// MQTT mount helpers. Engine tests run on real RocksDB with the injected clock.
#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

#include "core/queue/tenant.h"
#include "harness.h"

namespace wharf::core::queue {
namespace {

using testing::bodies_of;
using testing::harness;

// Runs `body` as `tenant` sends it: scoped, applied, and the answer as the tenant sees it.
result as(harness& h, std::string_view tenant, command_body body) {
  if (status refused = scope(tenant, body); !refused.ok()) {
    result r;
    r.outcome = std::move(refused);
    return r;
  }
  result r = h.run(std::move(body));
  unscope(tenant, r);
  return r;
}

// The engine's state without its first line (the applied index, which every command moves,
// refused or not).
std::string state_of(harness& h) {
  const std::string dump = h.eng().dump();
  return dump.substr(dump.find('\n') + 1);
}

queue_attribute_changes with_dead_letter_queue(const std::string& name) {
  queue_attribute_changes a;
  a.dead_letter_queue = name;
  a.policy = dead_letter_policy::max_receive_count;
  a.max_receive_count = 1;
  return a;
}

subscription_attributes into_queue(const std::string& queue) {
  subscription_attributes a;
  a.protocol = sub_protocol::queue;
  a.format = notify_format::simplified;
  a.endpoint = queue;
  return a;
}

// Two tenants and the default one, each with a queue "orders", a dead-letter queue "dlq",
// a topic "events" whose subscription "copy" fills its "orders", and one message each in
// "orders" received (in flight), the handle kept.
struct three_tenants {
  harness h;
  std::map<std::string, std::string> handle;  // tenant -> receipt handle of its message

  three_tenants() {
    for (const std::string tenant : {"", "acme", "globex"}) {
      EXPECT_CODE(as(h, tenant, create_queue{"dlq", {}}), code::ok);
      EXPECT_CODE(as(h, tenant, create_queue{"orders", with_dead_letter_queue("dlq")}), code::ok);
      EXPECT_CODE(as(h, tenant, create_topic{"events", {}}), code::ok);
      EXPECT_CODE(as(h, tenant, subscribe{"events", "copy", into_queue("orders")}), code::ok);
      EXPECT_CODE(as(h, tenant, send_messages{"orders", {send_item{"order of " + tenant, 0, {}, {}}}}), code::ok);
      const result got = as(h, tenant, receive_messages{"orders", 1});
      EXPECT_EQ(bodies_of(got), std::vector<std::string>{"order of " + tenant});
      handle[tenant] = got.messages.at(0).receipt_handle;
    }
  }
};

TEST(tenant_names, engine_names_and_their_parts) {
  EXPECT_EQ(engine_name("", "orders"), "orders");
  EXPECT_EQ(engine_name("acme", "orders"), "acme:orders");
  EXPECT_EQ(tenant_of("acme:orders"), "acme");
  EXPECT_EQ(tenant_of("orders"), "");
  EXPECT_EQ(local_name("acme:orders"), "orders");
  EXPECT_EQ(unscoped("acme", "acme:orders"), "orders");
  EXPECT_TRUE(is_valid_engine_name("orders"));
  EXPECT_TRUE(is_valid_engine_name("acme:orders"));
  for (const char* bad : {":orders", "acme:", "acme:or:ders", "1acme:orders", "default:orders", "a:b-c:d", ""})
    EXPECT_FALSE(is_valid_engine_name(bad)) << bad;
  EXPECT_TRUE(is_valid_tenant_name("acme-2"));
  EXPECT_FALSE(is_valid_tenant_name("default"));
  EXPECT_FALSE(is_valid_tenant_name(std::string(33, 'a')));
  EXPECT_FALSE(is_valid_tenant_name("ac:me"));
}

TEST(tenant_scope, every_name_a_tenant_sends_becomes_its_own) {
  command_body body = create_queue{"orders", with_dead_letter_queue("dlq")};
  ASSERT_TRUE(scope("acme", body).ok());
  EXPECT_EQ(std::get<create_queue>(body).name, "acme:orders");
  EXPECT_EQ(std::get<create_queue>(body).attributes.dead_letter_queue, "acme:dlq");

  body = subscribe{"events", "copy", into_queue("orders")};
  ASSERT_TRUE(scope("acme", body).ok());
  EXPECT_EQ(std::get<subscribe>(body).topic, "acme:events");
  EXPECT_EQ(std::get<subscribe>(body).subscription, "copy");  // scoped by its topic already
  EXPECT_EQ(std::get<subscribe>(body).attributes.endpoint, "acme:orders");

  // Only a queue is a name of the tenant; a URL stays, an MQTT topic goes under the mount.
  const auto endpoint_in_acme = [](sub_protocol protocol, std::string endpoint) {
    subscription_attributes a;
    a.protocol = protocol;
    a.endpoint = std::move(endpoint);
    command_body scoped = subscribe{"events", "s", a};
    EXPECT_TRUE(scope("acme", scoped).ok());
    return std::get<subscribe>(scoped).attributes.endpoint;
  };
  EXPECT_EQ(endpoint_in_acme(sub_protocol::http, "http://127.0.0.1:1/x"), "http://127.0.0.1:1/x");
  EXPECT_EQ(endpoint_in_acme(sub_protocol::mqtt, "devices/{routingKey}"), "$tenant/acme/devices/{routingKey}");

  body = redrive_dead_letters{"dlq", "", 10};
  ASSERT_TRUE(scope("acme", body).ok());
  EXPECT_EQ(std::get<redrive_dead_letters>(body).dead_letter_queue, "acme:dlq");
  EXPECT_EQ(std::get<redrive_dead_letters>(body).source_queue, "");  // every source, of this tenant

  body = send_messages{"orders", {}};
  ASSERT_TRUE(scope("", body).ok());
  EXPECT_EQ(std::get<send_messages>(body).queue, "orders");  // the default tenant's names are bare
}

TEST(tenant_scope, a_name_reaching_for_another_tenant_is_refused_unchanged) {
  const std::vector<command_body> reaching = {
      create_queue{"globex:orders", {}},
      create_queue{"orders", with_dead_letter_queue("globex:dlq")},
      set_queue_attributes{"globex:orders", {}},
      set_queue_attributes{"orders", with_dead_letter_queue("globex:dlq")},
      delete_queue{"globex:orders"},
      rewind_queue{"globex:orders", 0},
      purge_queue{"globex:orders"},
      send_messages{"globex:orders", {send_item{"x", 0, {}, {}}}},
      receive_messages{"globex:orders", 1},
      delete_messages{"globex:orders", {"00"}},
      redrive_dead_letters{"globex:dlq", "", 1},
      redrive_dead_letters{"dlq", "globex:orders", 1},
      create_topic{"globex:events", {}},
      set_topic_attributes{"globex:events", 2048},
      delete_topic{"globex:events"},
      publish_messages{"globex:events", {publish_item{"x", {}, ""}}},
      subscribe{"globex:events", "s", into_queue("orders")},
      subscribe{"events", "s", into_queue("globex:orders")},
      set_subscription_attributes{"globex:events", "copy", {}, {}, {}, {}},
      clear_subscription_filter_tags{"globex:events", "copy"},
      unsubscribe{"globex:events", "copy"},
  };
  for (const std::string tenant : {"acme", ""}) {
    for (const auto& original : reaching) {
      command_body body = original;
      const status s = scope(tenant, body);
      EXPECT_EQ(s.value, code::invalid_parameter) << "tenant '" << tenant << "', command " << original.index();
      EXPECT_NE(s.message.find("must be 1..64 characters"), std::string::npos) << s.message;
      EXPECT_EQ(encode_command(command{0, body}), encode_command(command{0, original})) << original.index();
    }
  }
  // The operator's and the core's own commands are no tenant's.
  for (command_body body : std::vector<command_body>{tick{}, push_result{}, put_mqtt_user{"u", {}},
                                                     delete_mqtt_user{"u"}, put_mqtt_role{"r", {}},
                                                     delete_mqtt_role{"r"}}) {
    EXPECT_EQ(scope("acme", body).value, code::invalid_parameter) << body.index();
  }
}

TEST(tenant_engine, same_names_in_three_tenants_are_three_things) {
  three_tenants t;
  auto& h = t.h;
  std::size_t total = 0;
  const auto names = [&](std::optional<std::string_view> tenant) {
    std::vector<std::string> out;
    for (const auto& q : h.eng().list_queues(tenant, "", 0, 100, total, h.now)) out.push_back(q.name);
    return out;
  };
  EXPECT_EQ(names("acme"), (std::vector<std::string>{"acme:dlq", "acme:orders"}));
  EXPECT_EQ(total, 2u);
  EXPECT_EQ(names(""), (std::vector<std::string>{"dlq", "orders"}));
  EXPECT_EQ(names(std::nullopt).size(), 6u);
  // The search word looks at the name within the tenant only.
  EXPECT_TRUE(h.eng().list_queues("acme", "acme", 0, 100, total, h.now).empty());
  EXPECT_EQ(h.eng().list_topics("globex", "", 0, 100, total).at(0).name, "globex:events");
  EXPECT_EQ(h.eng().tenants(), (std::vector<std::string>{"", "acme", "globex"}));

  // A publish to acme's topic reaches acme's queue only.
  ASSERT_OK(as(h, "acme", publish_messages{"events", {publish_item{"event of acme", {}, ""}}}));
  EXPECT_EQ(h.counts("acme:orders").active, 1u);
  EXPECT_EQ(h.counts("globex:orders").active, 0u);
  EXPECT_EQ(h.counts("orders").active, 0u);
  // Each tenant's message is where it sent it; the answers name the tenant's own names.
  const result missing = as(h, "acme", delete_queue{"nothing"});
  EXPECT_EQ(missing.outcome.message, "queue nothing does not exist");
}

TEST(tenant_engine, no_action_of_one_tenant_changes_another) {
  three_tenants t;
  auto& h = t.h;
  const std::string before = state_of(h);
  // The other tenant's receipt handle on the tenant's own queue of the same name: refused.
  EXPECT_CODE(as(h, "acme", delete_messages{"orders", {t.handle["globex"]}}), code::receipt_handle_invalid);
  EXPECT_CODE(as(h, "", delete_messages{"orders", {t.handle["acme"]}}), code::receipt_handle_invalid);
  // Names holding the separator, in every field that names a queue or topic.
  EXPECT_CODE(as(h, "acme", send_messages{"globex:orders", {send_item{"x", 0, {}, {}}}}), code::invalid_parameter);
  EXPECT_CODE(as(h, "", receive_messages{"acme:orders", 1}), code::invalid_parameter);
  EXPECT_CODE(as(h, "", delete_queue{"acme:orders"}), code::invalid_parameter);
  EXPECT_CODE(as(h, "acme", set_queue_attributes{"orders", with_dead_letter_queue("globex:dlq")}),
              code::invalid_parameter);
  EXPECT_CODE(as(h, "acme", subscribe{"events", "steal", into_queue("globex:orders")}), code::invalid_parameter);
  EXPECT_CODE(as(h, "acme", redrive_dead_letters{"dlq", "globex:orders", 10}), code::invalid_parameter);
  EXPECT_EQ(state_of(h), before);

  // The engine itself keeps references inside a tenant, whoever builds the command.
  EXPECT_CODE(h.run(set_queue_attributes{"acme:orders", with_dead_letter_queue("globex:dlq")}),
              code::invalid_parameter);
  EXPECT_CODE(h.run(subscribe{"acme:events", "steal", into_queue("globex:orders")}), code::not_found);
  EXPECT_CODE(h.run(redrive_dead_letters{"acme:dlq", "globex:orders", 10}), code::not_found);
  EXPECT_CODE(h.run(create_queue{"default:orders", {}}), code::invalid_parameter);
  EXPECT_EQ(state_of(h), before);

  // Each tenant still has its own message, in flight under its own handle.
  for (const std::string tenant : {"", "acme", "globex"}) {
    EXPECT_CODE(as(h, tenant, delete_messages{"orders", {t.handle[tenant]}}), code::ok);
  }
}

TEST(tenant_engine, dead_letters_and_redrive_stay_in_the_tenant) {
  three_tenants t;
  auto& h = t.h;
  h.advance_s(31);  // past the visibility timeout: the next receive dead-letters (maxReceiveCount 1)
  EXPECT_CODE(as(h, "acme", receive_messages{"orders", 1}), code::no_message);
  EXPECT_EQ(h.counts("acme:dlq").active, 1u);
  EXPECT_EQ(h.counts("globex:dlq").active, 0u);
  const result moved = as(h, "acme", redrive_dead_letters{"dlq", "orders", 10});
  EXPECT_EQ(moved.count, 1u);
  EXPECT_EQ(h.counts("acme:orders").active, 1u);
  // globex's message is where it was (visible again: nobody received it a second time).
  EXPECT_EQ(h.counts("globex:orders").active, 1u);
  EXPECT_EQ(h.counts("globex:dlq").active, 0u);
}

engine_limits quotas(tenant_quota acme) {
  engine_limits limits = harness::test_limits();
  limits.tenant_quotas.emplace("acme", acme);
  return limits;
}

TEST(tenant_quota, queues_and_topics_beyond_the_quota_are_4450_and_counted) {
  harness h(quotas({.max_queues = 2, .max_topics = 1, .max_stored_bytes = 0}));
  ASSERT_OK(as(h, "acme", create_queue{"a", {}}));
  ASSERT_OK(as(h, "acme", create_queue{"b", {}}));
  const result refused = as(h, "acme", create_queue{"c", {}});
  EXPECT_EQ(refused.outcome.value, code::too_many);
  EXPECT_NE(refused.outcome.message.find("tenant acme has its quota of 2 queues"), std::string::npos)
      << refused.outcome.message;
  ASSERT_OK(as(h, "acme", create_topic{"t", {}}));
  EXPECT_CODE(as(h, "acme", create_topic{"u", {}}), code::too_many);
  // Other tenants and the default one are not bound by acme's quota.
  ASSERT_OK(as(h, "globex", create_queue{"c", {}}));
  ASSERT_OK(as(h, "", create_queue{"c", {}}));
  ASSERT_OK(as(h, "", create_topic{"u", {}}));
  EXPECT_EQ(h.eng().stats().tenant_quota_refusals, 2u);
  // A deleted queue frees its place.
  ASSERT_OK(as(h, "acme", delete_queue{"a"}));
  ASSERT_OK(as(h, "acme", create_queue{"c", {}}));
  EXPECT_EQ(h.eng().usage("acme").queues, 2u);
  EXPECT_EQ(h.eng().usage("acme").topics, 1u);
  h.reopen();
  EXPECT_EQ(h.eng().stats().tenant_quota_refusals, 2u);
}

TEST(tenant_quota, stored_bytes_follow_the_bodies_and_bound_sends) {
  harness h(quotas({.max_queues = 0, .max_topics = 0, .max_stored_bytes = 100}));
  queue_attribute_changes rewindable;
  rewindable.rewind_seconds = 600;
  ASSERT_OK(as(h, "acme", create_queue{"q", rewindable}));
  ASSERT_OK(as(h, "acme", create_queue{"r", {}}));
  ASSERT_OK(as(h, "acme", send_messages{"q", {send_item{std::string(60, 'a'), 0, {}, {}}}}));
  EXPECT_EQ(h.eng().usage("acme").stored_bytes, 60u);
  // 60 + 50 > 100: refused whole (a batch too), nothing stored.
  const result full = as(h, "acme", send_messages{"r", {send_item{std::string(30, 'b'), 0, {}, {}},
                                                        send_item{std::string(20, 'c'), 0, {}, {}}}});
  EXPECT_EQ(full.outcome.value, code::queue_full);
  EXPECT_NE(full.outcome.message.find("quota of 100"), std::string::npos) << full.outcome.message;
  EXPECT_EQ(h.counts("acme:r").active, 0u);
  ASSERT_OK(as(h, "acme", send_messages{"r", {send_item{std::string(40, 'd'), 0, {}, {}}}}));
  EXPECT_EQ(h.eng().usage("acme").stored_bytes, 100u);
  // Another tenant's sends are its own business.
  ASSERT_OK(as(h, "globex", create_queue{"q", {}}));
  ASSERT_OK(as(h, "globex", send_messages{"q", {send_item{std::string(500, 'g'), 0, {}, {}}}}));
  EXPECT_EQ(h.eng().usage("globex").stored_bytes, 500u);

  // A topic's copy into a queue over the quota is not taken, and counted.
  ASSERT_OK(as(h, "acme", create_topic{"t", {}}));
  ASSERT_OK(as(h, "acme", subscribe{"t", "s", into_queue("r")}));
  ASSERT_OK(as(h, "acme", publish_messages{"t", {publish_item{"e", {}, ""}}}));
  EXPECT_EQ(h.counts("acme:r").active, 1u);
  EXPECT_EQ(h.eng().stats().publish_queue_full, 1u);

  // A deleted message kept for rewind still takes its place; it frees it when it goes.
  const result got = as(h, "acme", receive_messages{"q", 1});
  ASSERT_OK(as(h, "acme", delete_messages{"q", {got.messages.at(0).receipt_handle}}));
  EXPECT_EQ(h.eng().usage("acme").stored_bytes, 100u);
  h.reopen();  // counted again from the store
  EXPECT_EQ(h.eng().usage("acme").stored_bytes, 100u);
  EXPECT_EQ(h.eng().usage("globex").stored_bytes, 500u);
  ASSERT_OK(as(h, "acme", purge_queue{"q"}));
  EXPECT_EQ(h.eng().usage("acme").stored_bytes, 40u);
  ASSERT_OK(as(h, "acme", delete_queue{"r"}));
  EXPECT_EQ(h.eng().usage("acme").stored_bytes, 0u);
  EXPECT_EQ(h.eng().stats().tenant_quota_refusals, 2u);  // the batch, the topic's copy
}

TEST(tenant_mqtt, mounts_filters_and_the_tenants_tree) {
  EXPECT_EQ(mqtt_mount("acme"), "$tenant/acme/");
  EXPECT_EQ(mqtt_mount(""), "");
  EXPECT_EQ(mqtt_mount_of("$tenant/acme/dev-1"), "$tenant/acme/");
  EXPECT_EQ(mqtt_tenant_of("$tenant/acme/a/b"), "acme");
  EXPECT_EQ(mqtt_tenant_of("devices/a"), "");
  EXPECT_EQ(mount_filter("$tenant/acme/", "devices/#"), "$tenant/acme/devices/#");
  EXPECT_EQ(mount_filter("$tenant/acme/", "$share/g/devices/+"), "$share/g/$tenant/acme/devices/+");
  EXPECT_EQ(mount_filter("", "$share/g/devices/+"), "$share/g/devices/+");
  EXPECT_EQ(unmount_filter("$tenant/acme/", "$share/g/$tenant/acme/devices/+"), "$share/g/devices/+");
  EXPECT_EQ(unmount_filter("$tenant/acme/", "$tenant/acme/#"), "#");
  EXPECT_TRUE(names_tenant_tree("$tenant/acme/x"));
  EXPECT_TRUE(names_tenant_tree("$share/g/$tenant/#"));
  EXPECT_FALSE(names_tenant_tree("#"));
  EXPECT_FALSE(names_tenant_tree("tenant/acme"));
}

}  // namespace
}  // namespace wharf::core::queue
