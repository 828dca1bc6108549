// The CMQ topic and subscription actions (docs/API.md, "Topic actions").
#include <fmt/format.h>

#include "gateway/http/cmq_action.h"

namespace wharf::gateway::http::action {

void create_topic(q::service& core, const call_ptr& c) {
  q::create_topic cmd{required(*c, "topicName"), {}};
  cmd.attributes.max_msg_size = optional_u32(*c, "maxMsgSize").value_or(cmd.attributes.max_msg_size);
  const auto filter = optional_uint(*c, "filterType").value_or(1);
  if (filter != 1 && filter != 2) throw bad_parameter{fmt::format("filterType must be 1 (tags) or 2 (routing keys), got {}", filter)};
  cmd.attributes.filter = static_cast<q::filter_type>(filter);
  run_command(core, c, std::move(cmd), [](const q::result& r, std::string& out) {
    json_text::append_member(out, ',', "topicId", r.id);
  });
}

void set_topic_attributes(q::service& core, const call_ptr& c) {
  run_command(core, c, q::set_topic_attributes{required(*c, "topicName"), optional_u32(*c, "maxMsgSize")});
}

void delete_topic(q::service& core, const call_ptr& c) {
  run_command(core, c, q::delete_topic{required(*c, "topicName")});
}

void get_topic_attributes(q::service& core, const call_ptr& c) {
  core.query([c, name = name_param(*c, "topicName")](const q::engine& e, q::time_ms) {
    auto info = e.topic(name);
    const auto shown = q::unscoped(c->tenant, name);
    if (!info) return answer(c, q::code::not_found, fmt::format("topic {} does not exist", shown));
    answer(c, q::code::ok, "",
           {{"topicId", info->id},
            {"topicName", shown},
            {"msgCount", info->msg_count},
            {"maxMsgSize", info->attributes.max_msg_size},
            // Topics keep no messages: a publish is delivered at once (HTTP retries are
            // kept by the subscription). CMQ answers its fixed one day here.
            {"msgRetentionSeconds", 86400},
            {"createTime", info->create_time_s},
            {"lastModifyTime", info->last_modify_time_s},
            {"filterType", static_cast<int>(info->attributes.filter)}});
  }, refused(c));
}

void list_topic(q::service& core, const call_ptr& c) {
  core.query([c, p = page_params(*c)](const q::engine& e, q::time_ms) {
    std::size_t total = 0;
    json::array list;
    for (const auto& info : e.list_topics(c->tenant, p.search_word, p.offset, p.limit, total))
      list.push_back(json::object{{"topicId", info.id}, {"topicName", q::unscoped(c->tenant, info.name)}});
    answer(c, q::code::ok, "", {{"totalCount", total}, {"topicList", std::move(list)}});
  }, refused(c));
}

void publish_message(q::service& core, const call_ptr& c) {
  q::publish_item item{required(*c, "msgBody"), array(*c, "msgTag", max_tags),
                       optional_string(*c, "routingKey").value_or("")};
  q::publish_messages cmd{required(*c, "topicName"), {}};
  cmd.items.push_back(std::move(item));
  run_command(core, c, std::move(cmd), [](const q::result& r, std::string& out) {
    json_text::append_member(out, ',', "msgId", r.msg_ids.at(0));
  });
}

void batch_publish_message(q::service& core, const call_ptr& c) {
  const auto bodies = array_views(*c, "msgBody", max_batch);
  if (bodies.empty()) throw bad_parameter{"missing parameter msgBody.n"};
  const auto tags = array(*c, "msgTag", max_tags);
  const auto routing_key = optional_string(*c, "routingKey").value_or("");
  q::publish_messages cmd{required(*c, "topicName"), {}};
  cmd.items.reserve(bodies.size());
  for (const auto body : bodies) cmd.items.push_back({std::string(body), tags, routing_key});
  run_command(core, c, std::move(cmd), write_msg_list);
}

namespace {

std::optional<q::notify_strategy> strategy_param(const call& c) {
  auto v = optional_string(c, "notifyStrategy");
  if (!v) return std::nullopt;
  if (*v == "BACKOFF_RETRY") return q::notify_strategy::backoff_retry;
  if (*v == "EXPONENTIAL_DECAY_RETRY") return q::notify_strategy::exponential_decay_retry;
  throw bad_parameter{fmt::format("notifyStrategy must be BACKOFF_RETRY or EXPONENTIAL_DECAY_RETRY, got '{}'", *v)};
}

std::optional<q::notify_format> format_param(const call& c) {
  auto v = optional_string(c, "notifyContentFormat");
  if (!v) return std::nullopt;
  if (*v == "JSON") return q::notify_format::json;
  if (*v == "SIMPLIFIED") return q::notify_format::simplified;
  throw bad_parameter{fmt::format("notifyContentFormat must be JSON or SIMPLIFIED, got '{}'", *v)};
}

}  // namespace

void subscribe(q::service& core, const call_ptr& c) {
  q::subscribe cmd{required(*c, "topicName"), required(*c, "subscriptionName"), {}};
  auto& a = cmd.attributes;
  const auto protocol = required(*c, "protocol");
  if (protocol == "http" || protocol == "HTTP") a.protocol = q::sub_protocol::http;
  else if (protocol == "queue") a.protocol = q::sub_protocol::queue;
  else throw bad_parameter{fmt::format("protocol must be http or queue, got '{}'", protocol)};
  a.endpoint = required(*c, "endpoint");
  a.strategy = strategy_param(*c).value_or(a.strategy);
  a.format = format_param(*c).value_or(a.format);
  a.filter_tags = array(*c, "filterTag", max_tags);
  a.binding_keys = array(*c, "bindingKey", max_tags);
  run_command(core, c, std::move(cmd), [](const q::result& r, std::string& out) {
    json_text::append_member(out, ',', "subscriptionId", r.id);
  });
}

void set_subscription_attributes(q::service& core, const call_ptr& c) {
  q::set_subscription_attributes cmd{required(*c, "topicName"), required(*c, "subscriptionName"),
                                     strategy_param(*c), format_param(*c), std::nullopt, std::nullopt};
  if (auto tags = array(*c, "filterTag", max_tags); !tags.empty()) cmd.filter_tags = std::move(tags);
  if (auto keys = array(*c, "bindingKey", max_tags); !keys.empty()) cmd.binding_keys = std::move(keys);
  run_command(core, c, std::move(cmd));
}

void clear_subscription_filter_tags(q::service& core, const call_ptr& c) {
  run_command(core, c, q::clear_subscription_filter_tags{required(*c, "topicName"), required(*c, "subscriptionName")});
}

void unsubscribe(q::service& core, const call_ptr& c) {
  run_command(core, c, q::unsubscribe{required(*c, "topicName"), required(*c, "subscriptionName")});
}

namespace {

// A subscription's endpoint as its tenant gave it: a queue's name within the tenant.
std::string_view shown_endpoint(const q::subscription_attributes& a, std::string_view tenant) {
  return a.protocol == q::sub_protocol::queue ? q::unscoped(tenant, a.endpoint) : std::string_view(a.endpoint);
}

std::string_view protocol_name(q::sub_protocol p) {
  switch (p) {
    case q::sub_protocol::http: return "http";
    case q::sub_protocol::queue: return "queue";
    case q::sub_protocol::mqtt: return "mqtt";
  }
  return "?";
}

}  // namespace

void get_subscription_attributes(q::service& core, const call_ptr& c) {
  core.query([c, topic = name_param(*c, "topicName"), name = required(*c, "subscriptionName")](const q::engine& e,
                                                                                               q::time_ms) {
    auto info = e.subscription(topic, name);
    if (!info) {
      return answer(c, q::code::not_found, fmt::format("subscription {} of topic {} does not exist", name,
                                                       q::unscoped(c->tenant, topic)));
    }
    const auto& a = info->attributes;
    answer(c, q::code::ok, "",
           {{"subscriptionId", info->id},
            {"topicOwner", "wharf"},
            {"msgCount", info->pending_pushes},
            {"protocol", protocol_name(a.protocol)},
            {"endpoint", shown_endpoint(a, c->tenant)},
            {"notifyStrategy", a.strategy == q::notify_strategy::backoff_retry ? "BACKOFF_RETRY" : "EXPONENTIAL_DECAY_RETRY"},
            {"notifyContentFormat", a.format == q::notify_format::json ? "JSON" : "SIMPLIFIED"},
            {"createTime", info->create_time_s},
            {"lastModifyTime", info->last_modify_time_s},
            // CMQ's Java SDK reads filterTag, its Python SDK filterTags.
            {"filterTag", strings(a.filter_tags)},
            {"filterTags", strings(a.filter_tags)},
            {"bindingKey", strings(a.binding_keys)}});
  }, refused(c));
}

void list_subscription_by_topic(q::service& core, const call_ptr& c) {
  core.query([c, topic = name_param(*c, "topicName"), p = page_params(*c)](const q::engine& e, q::time_ms) {
    if (!e.topic(topic)) {
      return answer(c, q::code::not_found, fmt::format("topic {} does not exist", q::unscoped(c->tenant, topic)));
    }
    std::size_t total = 0;
    json::array list;
    for (const auto& info : e.list_subscriptions(topic, p.search_word, p.offset, p.limit, total))
      list.push_back(json::object{{"subscriptionId", info.id},
                                  {"subscriptionName", info.name},
                                  {"protocol", protocol_name(info.attributes.protocol)},
                                  {"endpoint", shown_endpoint(info.attributes, c->tenant)}});
    answer(c, q::code::ok, "", {{"totalCount", total}, {"subscriptionList", std::move(list)}});
  }, refused(c));
}

}  // namespace wharf::gateway::http::action
