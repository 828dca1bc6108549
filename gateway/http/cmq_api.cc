// CMQ actions → queue core. Parameter names, answer fields and their JSON types follow the
// Tencent CMQ v2 API (docs/API.md); where CMQ's own clients disagree on a field name, both
// spellings are answered (noted where it happens).
#include "gateway/http/cmq_api.h"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <limits>
#include <optional>
#include <random>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/queue/tenant.h"
#include "gateway/http/json_text.h"

namespace wharf::gateway::http {

namespace json = boost::json;
namespace q = core::queue;

// One request on its way through the API: parameters, where to answer, and the answer.
struct cmq_call {
  cmq_params params;
  std::string request_id;
  respond_fn respond;
  boost::asio::io_context* home = nullptr;  // the connection's I/O context
  std::shared_ptr<const std::atomic<bool>> abandoned;  // the client went away (server.h)
  std::string origin;  // who asks, for the message trace: "SecretId X from address:port"
  std::shared_ptr<const credential> caller;            // who signed it
  std::string tenant;  // the caller's tenant ("" the default tenant): every name is in it
};

namespace {

using call = cmq_call;
using call_ptr = std::shared_ptr<cmq_call>;

constexpr std::size_t max_batch = 16;
constexpr std::size_t max_tags = 5;
constexpr std::uint32_t max_polling_wait_s = 30;
constexpr std::size_t default_list_limit = 20;

// A parameter problem found while building a command: answered 4000 with `message`.
// Thrown and caught only inside this file, between dispatch() and the action functions.
struct bad_parameter {
  std::string message;
};

// The text of an answer: {"code":..,"message":..,"requestId":.. then the fields that
// `write_fields(out)` appends (each as `,"name":value`), then the closing brace.
template <class WriteFields>
std::string answer_text(int code, std::string_view message, std::string_view request_id, WriteFields&& write_fields) {
  std::string out;
  out.reserve(128);
  json_text::append_member(out, '{', "code", code);
  json_text::append_member(out, ',', "message", message);
  json_text::append_member(out, ',', "requestId", request_id);
  write_fields(out);
  out.push_back('}');
  return out;
}

std::string answer_text(int code, std::string_view message, std::string_view request_id) {
  return answer_text(code, message, request_id, [](std::string&) {});
}

// Answers on the connection's thread (the JSON is written there, not on the core's
// thread). For the actions answered rarely, whose fields are easiest built as a tree.
void answer(const call_ptr& c, q::code code, std::string message, json::object fields = {}) {
  boost::asio::post(*c->home, [c, code, message = std::move(message), fields = std::move(fields)] {
    c->respond(answer_text(static_cast<int>(code), message, c->request_id, [&](std::string& out) {
      for (const auto& [name, value] : fields) {
        json_text::append_key(out, ',', name);
        out += json::serialize(value);
      }
    }));
  });
}

// Answers the core's result `r` on the connection's thread: `write_fields(r, out)` appends
// the action's fields.
template <class WriteFields>
void answer(const call_ptr& c, q::result r, WriteFields write_fields) {
  boost::asio::post(*c->home, [c, r = std::move(r), write_fields = std::move(write_fields)] {
    c->respond(answer_text(static_cast<int>(r.outcome.value), r.outcome.message, c->request_id,
                           [&](std::string& out) { write_fields(r, out); }));
  });
}

// ---- parameters --------------------------------------------------------------------------

std::string required(const call& c, std::string_view name) {
  auto v = c.params.get(name);
  if (!v || v->empty()) throw bad_parameter{fmt::format("missing parameter {}", name)};
  return std::string(*v);
}

// A queue or topic name a query reads, as the engine names it in the caller's tenant. A
// name holding the tenant separator is no valid name (and would reach out of the tenant).
std::string name_param(const call& c, std::string_view name) {
  std::string value = required(c, name);
  if (value.find(q::tenant_separator) != std::string::npos)
    throw bad_parameter{fmt::format("{} must be 1..64 characters: a letter, then letters, digits, '_' or '-'", name)};
  return q::engine_name(c.tenant, value);
}

std::optional<std::string> optional_string(const call& c, std::string_view name) {
  auto v = c.params.get(name);
  if (!v) return std::nullopt;
  return std::string(*v);
}

std::optional<std::uint64_t> optional_uint(const call& c, std::string_view name,
                                           std::uint64_t max = std::numeric_limits<std::uint32_t>::max()) {
  auto v = c.params.get(name);
  if (!v) return std::nullopt;
  std::uint64_t n = 0;
  const auto* end = v->data() + v->size();
  auto [ptr, ec] = std::from_chars(v->data(), end, n);
  if (v->empty() || ec == std::errc::invalid_argument || ptr != end)
    throw bad_parameter{fmt::format("{} must be a non-negative integer, got '{}'", name, *v)};
  if (ec == std::errc::result_out_of_range || n > max)
    throw bad_parameter{fmt::format("{} is out of range (at most {}), got {}", name, max, *v)};
  return n;
}

std::optional<std::uint32_t> optional_u32(const call& c, std::string_view name) {
  auto v = optional_uint(c, name);
  if (!v) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

// Views into the request's parameters: valid while the call lives.
std::vector<std::string_view> array_views(const call& c, std::string_view base, std::size_t max_count) {
  auto values = c.params.array(base, max_count);
  if (!values) throw bad_parameter{values.error().message};
  return std::move(*values);
}

std::vector<std::string> array(const call& c, std::string_view base, std::size_t max_count) {
  const auto values = array_views(c, base, max_count);
  return {values.begin(), values.end()};
}

// ---- answers -----------------------------------------------------------------------------

json::array strings(const std::vector<std::string>& values) {
  json::array out;
  for (const auto& v : values) out.emplace_back(v);
  return out;
}

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

// `,"msgList":[{"msgId":..},..]`
void write_msg_list(const q::result& r, std::string& out) {
  json_text::append_array(out, ',', "msgList", r.msg_ids, [](std::string& o, const std::string& id) {
    json_text::append_member(o, '{', "msgId", id);
    o.push_back('}');
  });
}

// Submits `body`, whose names are as the caller gave them, in the caller's tenant;
// `done` gets the result as the caller sees it (tenant.h).
template <class Done>
void submit_scoped(q::service& core, const call_ptr& c, q::command_body body, Done done) {
  if (q::status refused = q::scope(c->tenant, body); !refused.ok()) throw bad_parameter{std::move(refused.message)};
  core.submit(
      std::move(body),
      [c, done = std::move(done)](q::result r) {
        q::unscope(c->tenant, r);
        done(std::move(r));
      },
      c->origin);
}

// Runs `body` as a core command; on success `fill(r, out)` writes the action's answer fields.
template <class Fill>
void run_command(q::service& core, const call_ptr& c, q::command_body body, Fill fill) {
  submit_scoped(core, c, std::move(body), [c, fill = std::move(fill)](q::result r) {
    answer(c, std::move(r), [fill](const q::result& done, std::string& out) {
      if (done.outcome.ok()) fill(done, out);
    });
  });
}

void run_command(q::service& core, const call_ptr& c, q::command_body body) {
  run_command(core, c, std::move(body), [](const q::result&, std::string&) {});
}

// ---- queue actions -----------------------------------------------------------------------

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

// The answer to a read the queue core could not confirm (a cluster without a leader).
std::function<void(q::status)> refused(const call_ptr& c) {
  return [c](q::status why) { answer(c, why.value, why.message); };
}

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

struct page {
  std::string search_word;
  std::size_t offset = 0;
  std::size_t limit = default_list_limit;
};

page page_params(const call& c) {
  page p;
  p.search_word = optional_string(c, "searchWord").value_or("");
  p.offset = optional_uint(c, "offset").value_or(0);
  p.limit = optional_uint(c, "limit").value_or(default_list_limit);
  return p;
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

std::optional<std::chrono::milliseconds> polling_wait_param(const call& c) {
  auto wait = optional_uint(c, "pollingWaitSeconds");
  if (!wait) return std::nullopt;
  if (*wait > max_polling_wait_s)
    throw bad_parameter{fmt::format("pollingWaitSeconds must be 0..{}, got {}", max_polling_wait_s, *wait)};
  return std::chrono::seconds(*wait);
}

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

// ---- topic and subscription actions ------------------------------------------------------

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

using action_fn = void (*)(q::service&, const call_ptr&);

// What an action is about, for a scoped credential: the queue or topic its queueName or
// topicName names, or the list of all of them.
enum class scope_target { queue, topic, all_queues, all_topics };

struct action_entry {
  action_fn run;
  scope_target target;
  config::queue_api_access needs;
};

// Keyed by the action in lower case: CMQ matches actions case-insensitively.
const std::unordered_map<std::string, action_entry>& actions() {
  using enum scope_target;
  using config::access_manage, config::access_read, config::access_write;
  static const std::unordered_map<std::string, action_entry> table = {
      {"createqueue", {create_queue, queue, access_manage}},
      {"listqueue", {list_queue, all_queues, access_read}},
      {"getqueueattributes", {get_queue_attributes, queue, access_read}},
      {"setqueueattributes", {set_queue_attributes, queue, access_manage}},
      {"deletequeue", {delete_queue, queue, access_manage}},
      {"rewindqueue", {rewind_queue, queue, access_manage}},
      {"sendmessage", {send_message, queue, access_write}},
      {"batchsendmessage", {batch_send_message, queue, access_write}},
      {"receivemessage", {receive_message, queue, access_read}},
      {"batchreceivemessage", {batch_receive_message, queue, access_read}},
      {"deletemessage", {delete_message, queue, access_read}},
      {"batchdeletemessage", {batch_delete_message, queue, access_read}},
      {"redrivedeadletters", {redrive_dead_letters, queue, access_manage}},
      {"createtopic", {create_topic, topic, access_manage}},
      {"listtopic", {list_topic, all_topics, access_read}},
      {"gettopicattributes", {get_topic_attributes, topic, access_read}},
      {"settopicattributes", {set_topic_attributes, topic, access_manage}},
      {"deletetopic", {delete_topic, topic, access_manage}},
      {"publishmessage", {publish_message, topic, access_write}},
      {"batchpublishmessage", {batch_publish_message, topic, access_write}},
      {"subscribe", {subscribe, topic, access_manage}},
      {"listsubscriptionbytopic", {list_subscription_by_topic, topic, access_read}},
      {"getsubscriptionattributes", {get_subscription_attributes, topic, access_read}},
      {"setsubscriptionattributes", {set_subscription_attributes, topic, access_manage}},
      {"clearsubscriptionfiltertags", {clear_subscription_filter_tags, topic, access_manage}},
      {"unsubscribe", {unsubscribe, topic, access_manage}},
  };
  return table;
}

bool pattern_matches(std::string_view pattern, std::string_view name) {
  if (!pattern.empty() && pattern.back() == '*') return name.starts_with(pattern.substr(0, pattern.size() - 1));
  return pattern == name;
}

// Why `caller` may not run `action` with these parameters, or nullopt when it may. A
// request without the name parameter goes on: the action refuses it (4000), changing nothing.
std::optional<std::string> scope_refusal(const credential& caller, const action_entry& action, const cmq_params& params) {
  if (!caller.scopes) return std::nullopt;
  const bool topics = action.target == scope_target::topic || action.target == scope_target::all_topics;
  const bool listing = action.target == scope_target::all_queues || action.target == scope_target::all_topics;
  std::string_view name = "*";
  if (!listing) {
    const auto given = params.get(topics ? "topicName" : "queueName");
    if (!given) return std::nullopt;
    name = *given;
  }
  for (const auto& grant : *caller.scopes) {
    if (grant.topics != topics || (grant.access & action.needs) == 0) continue;
    if (listing ? grant.pattern == "*" : pattern_matches(grant.pattern, name)) return std::nullopt;
  }
  const char* access = action.needs == config::access_read    ? "read"
                       : action.needs == config::access_write ? "write"
                                                              : "manage";
  if (listing)
    return fmt::format("SecretId '{}' may not list every {}: its scopes have no '*' grant", caller.secret_id,
                       topics ? "topic" : "queue");
  return fmt::format("SecretId '{}' may not {} {} '{}' (queue_api.credentials scopes)", caller.secret_id, access,
                     topics ? "topic" : "queue", name);
}

std::string random_request_id_prefix() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

}  // namespace

cmq_api::cmq_api(core::queue::service& queue_core, authenticator& auth, net::io_pool& pool, cmq_api_options options)
    : core_(queue_core), auth_(auth), pool_(pool), options_(options),
      rate_limiter_(options.max_requests_per_second),
      request_id_prefix_(random_request_id_prefix()) {
  tenants_[""] = std::make_unique<tenant_entry>();
  for (const auto& [name, rate] : options_.tenant_requests_per_second) {
    auto& entry = tenants_[name] = std::make_unique<tenant_entry>();
    entry->rate_per_s = rate;
  }
}

void cmq_api::handle(http_request request, respond_fn respond) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  auto c = std::make_shared<cmq_call>();
  c->request_id = next_request_id();
  c->respond = std::move(respond);
  c->home = &pool_.context(net::io_pool::index_of_current_thread());
  c->abandoned = request.abandoned;

  auto params = params_of_request(request.method, request.target, request.content_type, request.body, options_.max_params);
  if (!params) {
    bad_requests_.fetch_add(1, std::memory_order_relaxed);
    return c->respond(answer_text(static_cast<int>(params.error().code), params.error().message, c->request_id));
  }
  c->params = std::move(*params);
  const request_line line{request.method, request.host, split_target(request.target).path};
  auto who = auth_.authenticate(line, c->params);
  if (!who) {
    auth_failures_.fetch_add(1, std::memory_order_relaxed);
    return c->respond(answer_text(static_cast<int>(who.error().code), who.error().message, c->request_id));
  }
  c->caller = std::move(*who);
  c->tenant = c->caller->tenant;
  c->origin = c->tenant.empty() ? fmt::format("SecretId {} from {}", c->caller->secret_id, request.remote)
                                : fmt::format("SecretId {} (tenant {}) from {}", c->caller->secret_id, c->tenant,
                                              request.remote);
  if (!rate_limiter_.admit(c->caller->secret_id, request_rate_limiter::clock::now())) {
    return c->respond(answer_text(static_cast<int>(cmq_error_code::rate_limited),
                                  fmt::format("SecretId '{}' is over {} requests a second "
                                              "(queue_api.max_requests_per_second); nothing was changed",
                                              c->caller->secret_id, rate_limiter_.rate_per_s()),
                                  c->request_id));
  }
  if (std::uint32_t rate = 0; !admit_tenant(c->tenant, rate)) {
    return c->respond(answer_text(static_cast<int>(cmq_error_code::rate_limited),
                                  fmt::format("tenant '{}' is over {} requests a second (its "
                                              "quotas.requests_per_second); nothing was changed",
                                              c->tenant, rate),
                                  c->request_id));
  }
  dispatch(c);
}

bool cmq_api::admit_tenant(const std::string& tenant, std::uint32_t& rate) {
  tenant_entry* entry = nullptr;
  {
    std::shared_lock lock(tenants_mu_);
    if (const auto it = tenants_.find(tenant); it != tenants_.end()) entry = it->second.get();
  }
  if (entry == nullptr) {
    std::unique_lock lock(tenants_mu_);
    auto& slot = tenants_[tenant];
    if (!slot) slot = std::make_unique<tenant_entry>();
    entry = slot.get();
  }
  entry->requests.fetch_add(1, std::memory_order_relaxed);
  rate = entry->rate_per_s.load(std::memory_order_relaxed);
  if (tenant_rate_limiter_.admit(tenant, rate, request_rate_limiter::clock::now())) return true;
  entry->rate_limited.fetch_add(1, std::memory_order_relaxed);
  return false;
}

std::map<std::string, std::uint32_t, std::less<>> cmq_api::tenant_rates(const std::vector<config::tenant_config>& tenants) {
  std::map<std::string, std::uint32_t, std::less<>> rates;
  for (const auto& t : tenants) rates.emplace(t.name, t.max_requests_per_second);
  return rates;
}

void cmq_api::dispatch(const std::shared_ptr<cmq_call>& c) {
  const auto action = c->params.action_lower();
  const auto found = action ? actions().find(*action) : actions().end();
  std::string problem;
  if (!action) {
    problem = "missing parameter Action";
  } else if (found == actions().end()) {
    problem = fmt::format("unknown Action '{}'", *c->params.action());
  } else if (auto refusal = c->caller ? scope_refusal(*c->caller, found->second, c->params) : std::nullopt) {
    scope_refusals_.fetch_add(1, std::memory_order_relaxed);
    c->respond(answer_text(static_cast<int>(cmq_error_code::auth_failed), *refusal, c->request_id));
    return;
  } else {
    try {
      found->second.run(core_, c);
      return;
    } catch (const bad_parameter& e) {
      problem = e.message;
    }
  }
  bad_requests_.fetch_add(1, std::memory_order_relaxed);
  c->respond(answer_text(static_cast<int>(q::code::invalid_parameter), problem, c->request_id));
}

std::string cmq_api::next_request_id() {
  return fmt::format("{}-{}", request_id_prefix_, next_request_number_.fetch_add(1, std::memory_order_relaxed));
}

std::string cmq_api::refusal(int code, const std::string& message) {
  bad_requests_.fetch_add(1, std::memory_order_relaxed);
  return answer_text(code, message, next_request_id());
}

void cmq_api::reload(const config::queue_api_config& cfg) {
  auth_.replace_credentials(cfg.credentials);
  rate_limiter_.set_rate_per_s(cfg.max_requests_per_second);
}

cmq_api_stats cmq_api::stats() const {
  cmq_api_stats s{requests_.load(std::memory_order_relaxed), auth_failures_.load(std::memory_order_relaxed),
                  bad_requests_.load(std::memory_order_relaxed), rate_limiter_.refused(),
                  scope_refusals_.load(std::memory_order_relaxed), {}};
  std::shared_lock lock(tenants_mu_);
  for (const auto& [name, entry] : tenants_) {
    s.tenants.push_back({name, entry->requests.load(std::memory_order_relaxed),
                         entry->rate_limited.load(std::memory_order_relaxed)});
  }
  return s;
}

}  // namespace wharf::gateway::http
