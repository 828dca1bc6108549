// The parts the CMQ actions are made of (internal to gateway/http): a request on its way
// (cmq_call), reading its parameters, answering it on its connection's thread, and running a
// command in the caller's tenant. The actions themselves: cmq_queue_actions.cc and
// cmq_topic_actions.cc; the table that dispatches to them: cmq_api.cc.
#pragma once

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/queue/service.h"
#include "core/queue/tenant.h"
#include "gateway/http/cmq_request.h"
#include "gateway/http/cmq_signature.h"
#include "gateway/http/json_text.h"
#include "gateway/http/server.h"

namespace wharf::gateway::http {

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

namespace action {

namespace json = boost::json;
namespace q = core::queue;

using call = cmq_call;
using call_ptr = std::shared_ptr<cmq_call>;
// The handler of one Action.
using action_fn = void (*)(q::service&, const call_ptr&);

inline constexpr std::size_t max_batch = 16;
inline constexpr std::size_t max_tags = 5;
inline constexpr std::uint32_t max_polling_wait_s = 30;
inline constexpr std::size_t default_list_limit = 20;

// A parameter problem found while building a command: answered 4000 with `message`.
// Thrown by the actions and caught by the dispatch (cmq_api.cc).
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

std::string answer_text(int code, std::string_view message, std::string_view request_id);

// Answers on the connection's thread (the JSON is written there, not on the core's
// thread). For the actions answered rarely, whose fields are easiest built as a tree.
void answer(const call_ptr& c, q::code code, std::string message, json::object fields = {});

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

std::string required(const call& c, std::string_view name);
// A queue or topic name a query reads, as the engine names it in the caller's tenant. A
// name holding the tenant separator is no valid name (and would reach out of the tenant).
std::string name_param(const call& c, std::string_view name);
std::optional<std::string> optional_string(const call& c, std::string_view name);
std::optional<std::uint64_t> optional_uint(const call& c, std::string_view name,
                                           std::uint64_t max = std::numeric_limits<std::uint32_t>::max());
std::optional<std::uint32_t> optional_u32(const call& c, std::string_view name);
// Views into the request's parameters: valid while the call lives.
std::vector<std::string_view> array_views(const call& c, std::string_view base, std::size_t max_count);
std::vector<std::string> array(const call& c, std::string_view base, std::size_t max_count);

struct page {
  std::string search_word;
  std::size_t offset = 0;
  std::size_t limit = default_list_limit;
};
page page_params(const call& c);

// ---- answers -----------------------------------------------------------------------------

json::array strings(const std::vector<std::string>& values);
// `,"msgList":[{"msgId":..},..]`
void write_msg_list(const q::result& r, std::string& out);
// The answer to a read the queue core could not confirm (a cluster without a leader).
std::function<void(q::status)> refused(const call_ptr& c);

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

inline void run_command(q::service& core, const call_ptr& c, q::command_body body) {
  run_command(core, c, std::move(body), [](const q::result&, std::string&) {});
}

// ---- the actions -------------------------------------------------------------------------

// cmq_queue_actions.cc
void create_queue(q::service& core, const call_ptr& c);
void list_queue(q::service& core, const call_ptr& c);
void get_queue_attributes(q::service& core, const call_ptr& c);
void set_queue_attributes(q::service& core, const call_ptr& c);
void delete_queue(q::service& core, const call_ptr& c);
void rewind_queue(q::service& core, const call_ptr& c);
void send_message(q::service& core, const call_ptr& c);
void batch_send_message(q::service& core, const call_ptr& c);
void receive_message(q::service& core, const call_ptr& c);
void batch_receive_message(q::service& core, const call_ptr& c);
void delete_message(q::service& core, const call_ptr& c);
void batch_delete_message(q::service& core, const call_ptr& c);
void redrive_dead_letters(q::service& core, const call_ptr& c);
// cmq_topic_actions.cc
void create_topic(q::service& core, const call_ptr& c);
void list_topic(q::service& core, const call_ptr& c);
void get_topic_attributes(q::service& core, const call_ptr& c);
void set_topic_attributes(q::service& core, const call_ptr& c);
void delete_topic(q::service& core, const call_ptr& c);
void publish_message(q::service& core, const call_ptr& c);
void batch_publish_message(q::service& core, const call_ptr& c);
void subscribe(q::service& core, const call_ptr& c);
void list_subscription_by_topic(q::service& core, const call_ptr& c);
void get_subscription_attributes(q::service& core, const call_ptr& c);
void set_subscription_attributes(q::service& core, const call_ptr& c);
void clear_subscription_filter_tags(q::service& core, const call_ptr& c);
void unsubscribe(q::service& core, const call_ptr& c);

}  // namespace action
}  // namespace wharf::gateway::http
