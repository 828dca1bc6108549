// CMQ actions → queue core. Parameter names, answer fields and their JSON types follow the
// Tencent CMQ v2 API (docs/API.md); where CMQ's own clients disagree on a field name, both
// spellings are answered (noted where it happens). This file: authentication, rate limits,
// the table of actions and the credentials' scopes; the actions are in cmq_*_actions.cc.
#include "gateway/http/cmq_api.h"

#include <fmt/format.h>

#include <random>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "gateway/http/cmq_action.h"

namespace wharf::gateway::http {
namespace {

using action::action_fn;
using action::answer_text;
using action::bad_parameter;
namespace q = core::queue;

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
  using namespace action;
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
