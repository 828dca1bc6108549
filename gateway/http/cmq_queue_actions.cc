// The CMQ queue actions (docs/API.md, "Queue actions"): queues and their messages.
#include <fmt/format.h>

#include <chrono>
#include <limits>

#include "gateway/http/cmq_action.h"

namespace wharf::gateway::http::action {
namespace {

// A received message's fields, `separator` before the first (',' to continue an object,
// '{' to open one).
void write_message(std::string& out, char separator, const q::received_message& m) {
  json_text::append_member(out, separator, "msgBody", m.body);
  json_text::append_member(out, ',', "msgId", m.msg_id);
  json_text::append_member(out, ',', "receiptHandle", m.receipt_handle);
  json_text::append_member(out, ',', "enqueueTime", m.enqueue_time_s);
  json_text::append_member(out, ',', "firstDequeueTime", m.first_dequeue_time_s);
  json_text::append_member(out, ',', "nextVisibleTime", m.next_visible_time_s);
  json_text::append_member(out, ',', "dequeueCount", m.dequeue_count);
  if (!m.group.empty()) json_text::append_member(out, ',', "msgGroupId", m.group);
}

std::optional<q::dead_letter_policy> policy_param(const call& c) {
  auto v = optional_uint(c, "policy");
  if (!v) return std::nullopt;
  if (*v > 1) throw bad_parameter{fmt::format("policy must be 0 (maxReceiveCount) or 1 (maxTimeToLive), got {}", *v)};
  return static_cast<q::dead_letter_policy>(*v);
}

// CMQ's newer form: deadLetterPolicy={"deadLetterQueue":..., "policy":..., "maxReceiveCount":...,
// "maxTimeToLive":...} as one JSON string. Fills the same fields as the flat parameters.
void read_dead_letter_policy_json(std::string_view text, q::queue_attribute_changes& a) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) throw bad_parameter{"deadLetterPolicy must be a JSON object"};
  const auto& o = v.as_object();
  auto uint_field = [&](std::string_view key) -> std::optional<std::uint32_t> {
    const auto* f = o.if_contains(key);
    if (!f) return std::nullopt;
    if (!f->is_int64() || f->as_int64() < 0 || f->as_int64() > std::numeric_limits<std::uint32_t>::max())
      throw bad_parameter{fmt::format("deadLetterPolicy.{} must be a non-negative integer", key)};
    return static_cast<std::uint32_t>(f->as_int64());
  };
  if (const auto* name = o.if_contains("deadLetterQueue")) {
    if (!name->is_string()) throw bad_parameter{"deadLetterPolicy.deadLetterQueue must be a queue name"};
    a.dead_letter_queue = std::string(name->as_string());
  }
  if (auto p = uint_field("policy")) {
    if (*p > 1) throw bad_parameter{"deadLetterPolicy.policy must be 0 or 1"};
    a.policy = static_cast<q::dead_letter_policy>(*p);
  }
  if (auto n = uint_field("maxReceiveCount")) a.max_receive_count = n;
  if (auto n = uint_field("maxTimeToLive")) a.max_time_to_live = n;
}

q::queue_attribute_changes queue_attribute_params(const call& c) {
  q::queue_attribute_changes a;
  a.max_msg_heap_num = optional_uint(c, "maxMsgHeapNum", std::numeric_limits<std::uint64_t>::max());
  a.polling_wait_seconds = optional_u32(c, "pollingWaitSeconds");
  a.visibility_timeout = optional_u32(c, "visibilityTimeout");
  a.max_msg_size = optional_u32(c, "maxMsgSize");
  a.msg_retention_seconds = optional_u32(c, "msgRetentionSeconds");
  a.rewind_seconds = optional_u32(c, "rewindSeconds");
  a.dead_letter_queue = optional_string(c, "deadLetterQueueName");
  a.policy = policy_param(c);
  a.max_receive_count = optional_u32(c, "maxReceiveCount");
  a.max_time_to_live = optional_u32(c, "maxTimeToLive");
  a.dedup_window_seconds = optional_u32(c, "dedupWindowSeconds");
  if (auto ordered = optional_uint(c, "orderedQueue")) {
    if (*ordered > 1) throw bad_parameter{fmt::format("orderedQueue must be 0 or 1, got {}", *ordered)};
    a.ordered = *ordered == 1;
  }
  if (auto text = c.params.get("deadLetterPolicy")) read_dead_letter_policy_json(*text, a);
  return a;
}

}  // namespace

void create_queue(q::service& core, const call_ptr& c) {
  q::create_queue cmd{required(*c, "queueName"), queue_attribute_params(*c)};
  run_command(core, c, std::move(cmd), [](const q::result& r, std::string& out) {
    json_text::append_member(out, ',', "queueId", r.id);
  });
}

void set_queue_attributes(q::service& core, const call_ptr& c) {
  q::set_queue_attributes cmd{required(*c, "queueName"), queue_attribute_params(*c)};
  run_command(core, c, std::move(cmd));
}

void delete_queue(q::service& core, const call_ptr& c) {
  run_command(core, c, q::delete_queue{required(*c, "queueName")});
}

void rewind_queue(q::service& core, const call_ptr& c) {
  const auto start = optional_uint(*c, "startConsumeTime", std::numeric_limits<std::int64_t>::max());
  if (!start) throw bad_parameter{"missing parameter startConsumeTime"};
  run_command(core, c, q::rewind_queue{required(*c, "queueName"), static_cast<std::int64_t>(*start)});
}

namespace {

json::object dead_letter_fields(const q::queue_attributes& a, std::string_view tenant) {
  if (a.dead_letter_queue.empty()) return {};
  const std::string_view dead_letter_queue = q::unscoped(tenant, a.dead_letter_queue);
  json::object policy{{"deadLetterQueue", dead_letter_queue},
                      {"policy", static_cast<int>(a.policy)},
                      {"maxReceiveCount", a.max_receive_count},
                      {"maxTimeToLive", a.max_time_to_live}};
  // Flat fields (the names CreateQueue takes) and CMQ's deadLetterPolicy object.
  json::object out{{"deadLetterQueueName", dead_letter_queue},
                   {"policy", static_cast<int>(a.policy)},
                   {"maxReceiveCount", a.max_receive_count},
                   {"maxTimeToLive", a.max_time_to_live}};
  out["deadLetterPolicy"] = std::move(policy);
  return out;
}

}  // namespace

void get_queue_attributes(q::service& core, const call_ptr& c) {
  core.query([c, name = name_param(*c, "queueName")](const q::engine& e, q::time_ms now) {
    auto info = e.queue(name, now);
    const auto shown = q::unscoped(c->tenant, name);
    if (!info) return answer(c, q::code::not_found, fmt::format("queue {} does not exist", shown));
    const auto& a = info->attributes;
    json::object out{{"queueId", info->id},
                     {"queueName", shown},
                     {"maxMsgHeapNum", a.max_msg_heap_num},
                     {"pollingWaitSeconds", a.polling_wait_seconds},
                     {"visibilityTimeout", a.visibility_timeout},
                     {"maxMsgSize", a.max_msg_size},
                     {"msgRetentionSeconds", a.msg_retention_seconds},
                     {"rewindSeconds", a.rewind_seconds},
                     {"dedupWindowSeconds", a.dedup_window_seconds},
                     {"orderedQueue", a.ordered ? 1 : 0},
                     {"createTime", info->create_time_s},
                     {"lastModifyTime", info->last_modify_time_s},
                     {"activeMsgNum", info->counts.active},
                     {"inactiveMsgNum", info->counts.inactive},
                     {"delayMsgNum", info->counts.delayed},
                     // CMQ's documents and Python SDK read rewindmsgNum, its Java SDK rewindMsgNum.
                     {"rewindMsgNum", info->counts.rewindable},
                     {"rewindmsgNum", info->counts.rewindable},
                     {"minMsgTime", info->counts.min_msg_time_s}};
    for (auto& [key, value] : dead_letter_fields(a, c->tenant)) out[key] = std::move(value);
    answer(c, q::code::ok, "", std::move(out));
  }, refused(c));
}

void list_queue(q::service& core, const call_ptr& c) {
  core.query([c, p = page_params(*c)](const q::engine& e, q::time_ms now) {
    std::size_t total = 0;
    json::array list;
    for (const auto& info : e.list_queues(c->tenant, p.search_word, p.offset, p.limit, total, now))
      list.push_back(json::object{{"queueId", info.id}, {"queueName", q::unscoped(c->tenant, info.name)}});
    answer(c, q::code::ok, "", {{"totalCount", total}, {"queueList", std::move(list)}});
  }, refused(c));
}

void send_message(q::service& core, const call_ptr& c) {
  q::send_item item{required(*c, "msgBody"), optional_u32(*c, "delaySeconds").value_or(0),
                    optional_string(*c, "dedupKey"), optional_string(*c, "msgGroupId")};
  q::send_messages cmd{required(*c, "queueName"), {}};
  cmd.items.push_back(std::move(item));
  run_command(core, c, std::move(cmd), [](const q::result& r, std::string& out) {
    json_text::append_member(out, ',', "msgId", r.msg_ids.at(0));
  });
}

void batch_send_message(q::service& core, const call_ptr& c) {
  // Views, so that each body is copied once, into the command.
  const auto bodies = array_views(*c, "msgBody", max_batch);
  if (bodies.empty()) throw bad_parameter{"missing parameter msgBody.n"};
  const auto dedup_keys = array_views(*c, "dedupKey", max_batch);
  if (!dedup_keys.empty() && dedup_keys.size() != bodies.size())
    throw bad_parameter{"dedupKey.n must give one key per msgBody.n"};
  // msgGroupId.n: one group per body; msgGroupId: one group for the whole batch.
  const auto groups = array_views(*c, "msgGroupId", max_batch);
  if (!groups.empty() && groups.size() != bodies.size())
    throw bad_parameter{"msgGroupId.n must give one group per msgBody.n"};
  const auto batch_group = optional_string(*c, "msgGroupId");
  const auto delay = optional_u32(*c, "delaySeconds").value_or(0);
  q::send_messages cmd{required(*c, "queueName"), {}};
  cmd.items.reserve(bodies.size());
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    cmd.items.push_back({std::string(bodies[i]), delay,
                         dedup_keys.empty() ? std::nullopt : std::optional<std::string>(dedup_keys[i]),
                         groups.empty() ? batch_group : std::optional<std::string>(groups[i])});
  }
  run_command(core, c, std::move(cmd), write_msg_list);
}

namespace {

std::optional<std::chrono::milliseconds> polling_wait_param(const call& c) {
  auto wait = optional_uint(c, "pollingWaitSeconds");
  if (!wait) return std::nullopt;
  if (*wait > max_polling_wait_s)
    throw bad_parameter{fmt::format("pollingWaitSeconds must be 0..{}, got {}", max_polling_wait_s, *wait)};
  return std::chrono::seconds(*wait);
}

}  // namespace

void receive_message(q::service& core, const call_ptr& c) {
  q::receive_messages request{name_param(*c, "queueName"), 1};
  core.receive(std::move(request), polling_wait_param(*c), [c](q::result r) {
    q::unscope(c->tenant, r);
    answer(c, std::move(r), [](const q::result& done, std::string& out) {
      if (done.outcome.ok()) write_message(out, ',', done.messages.at(0));
    });
  }, c->abandoned, c->origin);
}

void batch_receive_message(q::service& core, const call_ptr& c) {
  const auto count = optional_uint(*c, "numOfMsg");
  if (!count) throw bad_parameter{"missing parameter numOfMsg"};
  if (*count < 1 || *count > max_batch) throw bad_parameter{fmt::format("numOfMsg must be 1..{}, got {}", max_batch, *count)};
  q::receive_messages request{name_param(*c, "queueName"), static_cast<std::uint32_t>(*count)};
  core.receive(std::move(request), polling_wait_param(*c), [c](q::result r) {
    q::unscope(c->tenant, r);
    answer(c, std::move(r), [](const q::result& done, std::string& out) {
      if (!done.outcome.ok()) return;
      // A message's fields other than its body take under 200 bytes.
      std::size_t size = out.size() + 32;
      for (const auto& m : done.messages) size += m.body.size() + 200;
      out.reserve(size);
      json_text::append_array(out, ',', "msgInfoList", done.messages,
                              [](std::string& o, const q::received_message& m) {
                                write_message(o, '{', m);
                                o.push_back('}');
                              });
    });
  }, c->abandoned, c->origin);
}

void delete_message(q::service& core, const call_ptr& c) {
  q::delete_messages cmd{required(*c, "queueName"), {required(*c, "receiptHandle")}};
  run_command(core, c, std::move(cmd));
}

void batch_delete_message(q::service& core, const call_ptr& c) {
  q::delete_messages cmd{required(*c, "queueName"), array(*c, "receiptHandle", max_batch)};
  if (cmd.receipt_handles.empty()) throw bad_parameter{"missing parameter receiptHandle.n"};
  submit_scoped(core, c, std::move(cmd), [c](q::result r) {
    answer(c, std::move(r), [](const q::result& done, std::string& out) {
      if (done.errors.empty()) return;
      json_text::append_array(out, ',', "errorList", done.errors, [](std::string& o, const q::item_error& e) {
        json_text::append_member(o, '{', "code", static_cast<int>(e.value));
        json_text::append_member(o, ',', "message", e.message);
        json_text::append_member(o, ',', "receiptHandle", e.receipt_handle);
        o.push_back('}');
      });
    });
  });
}

// wharf extension: RedriveDeadLetters(deadLetterQueueName, [queueName], [limit]).
void redrive_dead_letters(q::service& core, const call_ptr& c) {
  q::redrive_dead_letters cmd{required(*c, "deadLetterQueueName"), optional_string(*c, "queueName").value_or(""),
                              optional_u32(*c, "limit").value_or(1000)};
  run_command(core, c, std::move(cmd), [](const q::result& r, std::string& out) {
    json_text::append_member(out, ',', "count", r.count);
  });
}

}  // namespace wharf::gateway::http::action
