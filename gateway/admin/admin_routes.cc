// The admin API (docs/ADMIN.md): JSON over the admin listener, behind its Basic
// credentials. Every route answers JSON; errors are {"error": "..."} with the HTTP status
// that says what kind (400 bad parameter, 404 nothing by that name, 405 wrong method, 409
// conflict, 422 refused config, 500 storage).
//
//   GET    /api/v1/status                                           version, uptime, readiness, counts
//   GET    /api/v1/sessions[?state=online|offline&offset=&limit=]   sessions, by client id
//   GET    /api/v1/sessions/{clientId}                              one, with subscriptions
//   DELETE /api/v1/sessions/{clientId}                              end it and discard it
//   GET    /api/v1/clients[?offset=&limit=]                         connected clients
//   GET    /api/v1/clients/{clientId}                               one connected client
//   POST   /api/v1/clients/{clientId}/disconnect                    DISCONNECT 0x98, close
//   GET    /api/v1/subscriptions[?client=&offset=&limit=]           every session's subscriptions
//   GET    /api/v1/retained[?topic=FILTER&offset=&limit=]           retained messages (default #)
//   GET    /api/v1/queues[?search=&offset=&limit=]                  queues with depths
//   GET    /api/v1/queues/{name}                                    one queue
//   POST   /api/v1/queues/{name}/purge                              remove every message
//   POST   /api/v1/queues/{deadLetterQueue}/redrive[?source=&max=]  dead letters back home
//   GET    /api/v1/topics[?search=&offset=&limit=]                  topics
//   GET    /api/v1/messages/{msgId}/trace                           the message's history
//   POST   /api/v1/reload                                           as SIGHUP
#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <variant>
#include <charconv>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "auth/password.h"
#include "auth/rules_json.h"
#include "core/queue/message_trace.h"
#include "core/queue/tenant.h"
#include "core/topic.h"
#include "gateway/bridge/bridge.h"
#include "gateway/admin/admin_api.h"

namespace wharf::gateway::admin {
namespace {

namespace json = boost::json;
namespace q = core::queue;

constexpr std::size_t default_page = 100;
constexpr std::size_t max_page = 10000;

http::http_response json_answer(unsigned status, const json::value& v) {
  return {status, "application/json", json::serialize(v) + "\n"};
}

http::http_response error_answer(unsigned status, std::string_view message) {
  return json_answer(status, json::object{{"error", message}});
}

// The request's path segments (percent-decoded) after /api/v1, and its query parameters.
struct api_request {
  std::vector<std::string> segments;
  std::vector<std::pair<std::string, std::string>> params;

  [[nodiscard]] std::optional<std::string> param(std::string_view name) const {
    for (const auto& [k, v] : params)
      if (k == name) return v;
    return std::nullopt;
  }
};

std::optional<api_request> parse_target(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  api_request r;
  for (auto segment : url->segments()) r.segments.push_back(segment);
  // "/api/v1/x/" gives a last empty segment; it names the same thing as "/api/v1/x".
  if (!r.segments.empty() && r.segments.back().empty()) r.segments.pop_back();
  if (r.segments.size() < 2 || r.segments[0] != "api" || r.segments[1] != "v1") return std::nullopt;
  r.segments.erase(r.segments.begin(), r.segments.begin() + 2);
  for (auto p : url->params()) r.params.emplace_back(p.key, p.has_value ? p.value : std::string());
  return r;
}

// A paging or count parameter: absent → `fallback`; not a number in [0, max] → error text.
std::optional<std::size_t> size_param(const api_request& r, std::string_view name, std::size_t fallback,
                                      std::size_t max, std::string& error) {
  const auto text = r.param(name);
  if (!text) return fallback;
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value > max) {
    error = fmt::format("parameter '{}' must be a whole number from 0 to {}, got '{}'", name, max, *text);
    return std::nullopt;
  }
  return value;
}

// The tenant an engine name or an MQTT client id belongs to, as the admin API names it.
std::string_view tenant_name(std::string_view tenant) {
  return tenant.empty() ? q::default_tenant_name : tenant;
}

json::object session_json(const session_view& v) {
  json::object o;
  o["clientId"] = v.client_id;
  o["tenant"] = tenant_name(q::mqtt_tenant_of(v.client_id));
  o["online"] = v.online;
  o["persistent"] = v.persistent;
  o["protocolVersion"] = v.protocol_version;
  o["sessionExpiryInterval"] = v.expiry_interval_s;
  if (v.expires_at_ms != 0) o["expiresAt"] = v.expires_at_ms;
  o["subscriptionCount"] = v.subscription_count;
  o["inflight"] = v.inflight;
  o["queued"] = v.queued;
  o["username"] = v.username ? json::value(*v.username) : json::value(nullptr);
  if (v.online) {
    o["peer"] = v.peer;
    o["connectedAt"] = v.connected_at_ms;
    o["keepAlive"] = v.keep_alive_s;
  }
  return o;
}

json::object subscription_json(const session::stored_subscription& s) {
  json::object sub{{"filter", s.filter},
                   {"qos", s.max_qos},
                   {"noLocal", s.no_local},
                   {"retainAsPublished", s.retain_as_published},
                   {"retainHandling", s.retain_handling}};
  if (s.subscription_id != 0) sub["subscriptionId"] = s.subscription_id;
  return sub;
}

json::object session_detail_json(const session_view& v) {
  auto o = session_json(v);
  json::array subs;
  for (const auto& s : v.subscriptions) subs.push_back(subscription_json(s));
  o["subscriptions"] = std::move(subs);
  return o;
}

json::object queue_json(const q::queue_info& info) {
  json::object o{{"queueName", info.name},
                 {"tenant", tenant_name(q::tenant_of(info.name))},
                 {"queueId", info.id},
                 {"visible", info.counts.active},
                 {"inflight", info.counts.inactive},
                 {"delayed", info.counts.delayed},
                 {"rewindable", info.counts.rewindable},
                 {"maxMsgHeapNum", info.attributes.max_msg_heap_num},
                 {"createTime", info.create_time_s}};
  if (info.counts.min_msg_time_s != 0) o["oldestMsgTime"] = info.counts.min_msg_time_s;
  if (!info.attributes.dead_letter_queue.empty()) o["deadLetterQueue"] = info.attributes.dead_letter_queue;
  return o;
}

json::object history_json(const q::message_history& h) {
  json::array events;
  for (const auto& e : h.events) {
    json::object event{{"time", e.at}, {"event", q::to_string(e.what)}, {"queue", e.queue}};
    if (!e.actor.empty()) event["by"] = e.actor;
    if (e.dequeue_count != 0) event["dequeueCount"] = e.dequeue_count;
    if (!e.detail.empty()) event["detail"] = e.detail;
    events.push_back(std::move(event));
  }
  return json::object{{"msgId", h.msg_id},
                      {h.is_topic ? "topicName" : "queueName", h.queue_or_topic},
                      {"events", std::move(events)},
                      {"truncated", h.truncated}};
}

json::object cluster_json(const core::replication::replica_status& s) {
  json::array members;
  for (const auto& m : s.configuration) {
    json::object member{{"id", m.id},
                        {"voter", std::find(s.voters.begin(), s.voters.end(), m.id) != s.voters.end()}};
    if (!m.address.empty()) member["address"] = m.address;  // a node without a cluster section has none
    if (m.id == s.id) member["self"] = true;
    if (m.id == s.leader_id) member["leader"] = true;
    for (const auto& p : s.progress) {
      if (p.id != m.id) continue;
      member["matchIndex"] = p.match_index;
      member["lag"] = s.last_index > p.match_index ? s.last_index - p.match_index : 0;
    }
    members.push_back(std::move(member));
  }
  json::object o{{"nodeId", s.id},
                 {"role", core::replication::to_string(s.current)},
                 {"leader", s.leader_id},
                 {"term", s.term},
                 {"commitIndex", s.commit_index},
                 {"appliedIndex", s.applied_index},
                 {"lastIndex", s.last_index},
                 {"members", std::move(members)}};
  if (s.transferee != 0) o["transferringTo"] = s.transferee;
  if (s.joining != 0) o["joining"] = s.joining;
  return o;
}

std::string_view outcome_error(admin_outcome o) {
  switch (o) {
    case admin_outcome::done: return {};
    case admin_outcome::not_found: return "not found";
    case admin_outcome::reconnected: return "the client connected again while its session was being deleted";
    case admin_outcome::storage_failed: return "the session's stored state could not be erased (see the log)";
  }
  return "?";
}

unsigned outcome_status(admin_outcome o) {
  switch (o) {
    case admin_outcome::done: return 200;
    case admin_outcome::not_found: return 404;
    case admin_outcome::reconnected: return 409;
    case admin_outcome::storage_failed: return 500;
  }
  return 500;
}

// A queue-core command's answer: 200 with `count_name`: result.count, or the core's code
// and message (404 for not_found, 400 for a bad parameter, 500 otherwise).
void answer_core_result(const http::respond_fn& respond, const q::result& r, std::string_view count_name) {
  if (r.outcome.ok()) {
    respond(json_answer(200, json::object{{count_name, r.count}}));
    return;
  }
  const unsigned status = r.outcome.value == q::code::not_found           ? 404
                          : r.outcome.value == q::code::invalid_parameter ? 400
                                                                          : 500;
  respond(json_answer(status, json::object{{"error", r.outcome.message}, {"code", static_cast<int>(r.outcome.value)}}));
}


// ---- runtime MQTT users and roles --------------------------------------------------------

json::array rules_json(const std::vector<q::access_rule>& rules) {
  json::array out;
  for (const auto& r : rules) {
    out.push_back(json::object{{"permission", r.allow ? "allow" : "deny"},
                               {"action", r.action == q::rule_action::publish     ? "publish"
                                          : r.action == q::rule_action::subscribe ? "subscribe"
                                                                                  : "all"},
                               {"topic", r.topic}});
  }
  return out;
}

json::object user_json(const std::string& name, const q::mqtt_user& u, bool with_rules) {
  json::array roles;
  for (const auto& role : u.roles) roles.emplace_back(role);
  json::object o{{"username", name}, {"hasPassword", !u.password_hash.empty()}, {"roles", std::move(roles)}};
  if (with_rules) {
    o["acl"] = rules_json(u.rules);
  } else {
    o["ruleCount"] = u.rules.size();
  }
  return o;
}

// The "acl" member of a user or role body: rules as auth.acl writes them (auth/rules_json.h),
// their topics checked; or why not.
std::variant<std::vector<q::access_rule>, std::string> rules_of_body(const json::object& body) {
  const auto* acl = body.if_contains("acl");
  if (acl == nullptr) return std::vector<q::access_rule>{};
  auto parsed = auth::rules_from_json(*acl, "admin API");
  if (auto* why = std::get_if<std::string>(&parsed)) return "acl: " + *why;
  std::vector<q::access_rule> rules;
  for (const auto& rule : std::get<std::vector<config::acl_rule>>(parsed)) {
    rules.push_back({.allow = rule.permission == config::acl_permission::allow,
                     .action = rule.action == config::acl_action::publish     ? q::rule_action::publish
                               : rule.action == config::acl_action::subscribe ? q::rule_action::subscribe
                                                                              : q::rule_action::all,
                     .topic = rule.topic});
  }
  return rules;
}

// A PUT body: a JSON object with only `allowed` keys; or why not.
std::variant<json::object, std::string> body_object(const http::http_request& request,
                                                    std::initializer_list<std::string_view> allowed) {
  boost::system::error_code ec;
  auto value = json::parse(request.body, ec);
  if (ec || !value.is_object()) return std::string("the body must be a JSON object");
  for (const auto& member : value.as_object()) {
    if (std::find(allowed.begin(), allowed.end(), std::string_view(member.key())) == allowed.end())
      return fmt::format("unknown key '{}'", std::string_view(member.key()));
  }
  return std::move(value.as_object());
}

// A user body: {"passwordHash": "$pbkdf2-sha256$...", "roles": [...], "acl": [...]}, each
// optional; or why not.
std::variant<q::mqtt_user, std::string> user_of_body(const http::http_request& request) {
  auto body = body_object(request, {"passwordHash", "roles", "acl"});
  if (auto* why = std::get_if<std::string>(&body)) return std::move(*why);
  const auto& o = std::get<json::object>(body);
  q::mqtt_user user;
  if (const auto* hash = o.if_contains("passwordHash")) {
    if (!hash->is_string()) return std::string("passwordHash must be a string, as `wharf passwd` prints it");
    auto parsed = auth::parse_password_hash(hash->as_string());
    if (auto* why = std::get_if<std::string>(&parsed)) return "passwordHash: " + *why;
    user.password_hash = std::string(hash->as_string());
  }
  if (const auto* roles = o.if_contains("roles")) {
    if (!roles->is_array()) return std::string("roles must be an array of role names");
    for (const auto& role : roles->as_array()) {
      if (!role.is_string()) return std::string("roles must be an array of role names");
      user.roles.emplace_back(role.as_string());
    }
  }
  auto rules = rules_of_body(o);
  if (auto* why = std::get_if<std::string>(&rules)) return std::move(*why);
  user.rules = std::move(std::get<std::vector<q::access_rule>>(rules));
  return user;
}

std::variant<q::mqtt_role, std::string> role_of_body(const http::http_request& request) {
  auto body = body_object(request, {"acl"});
  if (auto* why = std::get_if<std::string>(&body)) return std::move(*why);
  auto rules = rules_of_body(std::get<json::object>(body));
  if (auto* why = std::get_if<std::string>(&rules)) return std::move(*why);
  return q::mqtt_role{.rules = std::move(std::get<std::vector<q::access_rule>>(rules))};
}

// A runtime-store command's answer: 200 with {key: name}, or the core's code and message
// (404 not found, 400 a bad parameter, 409 at a bound, 500 otherwise).
void answer_store_result(const http::respond_fn& respond, const q::result& r, std::string_view key,
                         const std::string& name) {
  if (r.outcome.ok()) return respond(json_answer(200, json::object{{key, name}}));
  const unsigned status = r.outcome.value == q::code::not_found           ? 404
                          : r.outcome.value == q::code::invalid_parameter ? 400
                          : r.outcome.value == q::code::too_many          ? 409
                                                                          : 500;
  respond(json_answer(status, json::object{{"error", r.outcome.message}, {"code", static_cast<int>(r.outcome.value)}}));
}

}  // namespace

void admin_api::serve_api(const http::http_request& request, http::respond_fn respond) {
  const auto parsed = parse_target(request.target);
  if (!parsed) {
    respond(error_answer(404, "not a route of the admin API (docs/ADMIN.md)"));
    return;
  }
  const auto& r = *parsed;
  const auto& seg = r.segments;
  const std::string& method = request.method;
  const bool get = method == "GET" || method == "HEAD";
  auto wrong_method = [&](std::string_view allowed) {
    respond(error_answer(405, fmt::format("{} takes {}", request.target, allowed)));
  };
  std::string param_error;
  auto paging = [&](std::size_t& offset, std::size_t& limit) {
    const auto o = size_param(r, "offset", 0, std::numeric_limits<std::uint32_t>::max(), param_error);
    const auto l = o ? size_param(r, "limit", default_page, max_page, param_error) : std::nullopt;
    if (!l) {
      respond(error_answer(400, param_error));
      return false;
    }
    offset = *o;
    limit = *l;
    return true;
  };
  auto& broker = sources_.broker;
  // ?tenant=NAME: only that tenant's ("default": the default tenant's); absent: everyone's.
  std::optional<std::string> tenant = r.param("tenant");
  if (tenant) {
    if (*tenant == q::default_tenant_name) {
      tenant->clear();
    } else if (!q::is_valid_tenant_name(*tenant)) {
      return respond(error_answer(400, fmt::format("parameter 'tenant' must be a tenant's name or 'default', got '{}'", *tenant)));
    }
  }

  if (seg.empty()) {
    respond(error_answer(404, "the admin API's routes are listed in docs/ADMIN.md"));
  } else if (seg[0] == "status" && seg.size() == 1) {
    if (!get) return wrong_method("GET");
    const auto online = broker.counters().clients_connected.load(std::memory_order_relaxed);
    const auto sessions = broker.session_count();
    json::object status{{"version", WHARF_VERSION},
                        {"uptimeSeconds", broker.uptime_s()},
                        {"ready", ready_.load(std::memory_order_relaxed)},
                        {"clientsConnected", online},
                        {"sessions", sessions},
                        {"retainedMessages", broker.retained_count()}};
    sources_.queue_core.query([respond, status = std::move(status)](const q::engine& engine, q::time_ms now) mutable {
      std::size_t queues = 0, topics = 0;
      (void)engine.list_queues(std::nullopt, {}, 0, 0, queues, now);
      (void)engine.list_topics(std::nullopt, {}, 0, 0, topics);
      status["queues"] = queues;
      status["topics"] = topics;
      respond(json_answer(200, status));
    });
  } else if ((seg[0] == "subscriptions" || seg[0] == "retained") && seg.size() == 1) {
    if (!get) return wrong_method("GET");
    std::size_t offset = 0, limit = 0;
    if (!paging(offset, limit)) return;
    if (seg[0] == "subscriptions") {
      // Every session's subscriptions, sorted: on the admin's own thread, not an I/O thread.
      boost::asio::post(listing_, [&broker, respond, offset, limit, client = r.param("client"), tenant] {
        broker.list_subscriptions(client, tenant, offset, limit, [respond](std::vector<subscription_view> page, std::size_t total) {
          json::array items;
          for (const auto& v : page) {
            auto sub = subscription_json(v.subscription);
            sub["clientId"] = v.client_id;
            items.push_back(std::move(sub));
          }
          respond(json_answer(200, json::object{{"total", total}, {"subscriptions", std::move(items)}}));
        });
      });
      return;
    }
    auto filter = r.param("topic").value_or("#");
    if (!core::is_valid_topic_filter(filter) || filter.starts_with("$share/"))
      return respond(error_answer(400, fmt::format("parameter 'topic' must be an MQTT topic filter, got '{}'", filter)));
    if (tenant) {
      // A tenant's retained messages are under its mount (its devices' topics as they send them).
      if (tenant->empty() && q::names_tenant_tree(filter))
        return respond(error_answer(400, fmt::format("parameter 'topic' names the tenants' tree, not the default tenant's")));
      filter = q::mount_filter(q::mqtt_mount(*tenant), filter);
    }
    boost::asio::post(listing_, [&broker, respond, offset, limit, filter = std::move(filter)] {
      broker.list_retained(filter, offset, limit, [respond](std::vector<core::message> page, std::size_t total) {
        json::array items;
        for (const auto& m : page) {
          auto item = bridge::message_json(m);
          if (m.expiry_unix_ms != 0) item["expiresAt"] = m.expiry_unix_ms;
          items.push_back(std::move(item));
        }
        respond(json_answer(200, json::object{{"total", total}, {"retained", std::move(items)}}));
      });
    });
  } else if (seg[0] == "sessions" || seg[0] == "clients") {
    const bool clients = seg[0] == "clients";
    if (seg.size() == 1) {
      if (!get) return wrong_method("GET");
      std::optional<bool> online;
      if (clients) online = true;
      if (const auto state = r.param("state"); state && !clients) {
        if (*state != "online" && *state != "offline")
          return respond(error_answer(400, fmt::format("parameter 'state' is online or offline, got '{}'", *state)));
        online = *state == "online";
      }
      std::size_t offset = 0, limit = 0;
      if (!paging(offset, limit)) return;
      // Sorting every session id is O(n log n): on the admin's own thread, not an I/O thread.
      boost::asio::post(listing_, [&broker, respond, online, offset, limit, clients, tenant] {
        broker.list_sessions(online, tenant, offset, limit,
                             [respond, key = clients ? "clients" : "sessions"](std::vector<session_view> page,
                                                                                std::size_t total) {
                               json::array items;
                               for (const auto& v : page) items.push_back(session_json(v));
                               respond(json_answer(200, json::object{{"total", total}, {key, std::move(items)}}));
                             });
      });
    } else if (seg.size() == 2 && get) {
      broker.inspect_session(seg[1], [respond, clients, id = seg[1]](std::optional<session_view> v) {
        if (!v || (clients && !v->online))
          return respond(error_answer(404, fmt::format("no {} '{}'", clients ? "connected client" : "session", id)));
        respond(json_answer(200, session_detail_json(*v)));
      });
    } else if (seg.size() == 2 && !clients && method == "DELETE") {
      broker.delete_session(seg[1], [respond, id = seg[1]](admin_outcome o) {
        if (o == admin_outcome::done) return respond(json_answer(200, json::object{{"deleted", id}}));
        respond(error_answer(outcome_status(o), fmt::format("session '{}': {}", id, outcome_error(o))));
      });
    } else if (seg.size() == 3 && clients && seg[2] == "disconnect") {
      if (method != "POST") return wrong_method("POST");
      broker.disconnect_client(seg[1], [respond, id = seg[1]](admin_outcome o) {
        if (o == admin_outcome::done) return respond(json_answer(200, json::object{{"disconnected", id}}));
        respond(error_answer(outcome_status(o), fmt::format("no connected client '{}'", id)));
      });
    } else if (seg.size() == 2) {
      wrong_method(clients ? "GET" : "GET or DELETE");
    } else {
      respond(error_answer(404, "not a route of the admin API (docs/ADMIN.md)"));
    }
  } else if (seg[0] == "queues" || seg[0] == "topics") {
    const bool queues = seg[0] == "queues";
    if (seg.size() == 1) {
      if (!get) return wrong_method("GET");
      std::size_t offset = 0, limit = 0;
      if (!paging(offset, limit)) return;
      sources_.queue_core.query([respond, queues, offset, limit, search = r.param("search").value_or(""), tenant](
                                    const q::engine& engine, q::time_ms now) {
        std::size_t total = 0;
        json::array items;
        const auto in_tenant = tenant ? std::optional<std::string_view>(*tenant) : std::nullopt;
        if (queues) {
          for (const auto& info : engine.list_queues(in_tenant, search, offset, limit, total, now))
            items.push_back(queue_json(info));
        } else {
          for (const auto& info : engine.list_topics(in_tenant, search, offset, limit, total)) {
            std::size_t subscriptions = 0;
            (void)engine.list_subscriptions(info.name, {}, 0, 0, subscriptions);
            items.push_back(json::object{{"topicName", info.name},
                                         {"tenant", tenant_name(q::tenant_of(info.name))},
                                         {"topicId", info.id},
                                         {"msgCount", info.msg_count},
                                         {"subscriptionCount", subscriptions},
                                         {"createTime", info.create_time_s}});
          }
        }
        respond(json_answer(200, json::object{{"total", total}, {queues ? "queues" : "topics", std::move(items)}}));
      });
    } else if (queues && seg.size() == 2) {
      if (!get) return wrong_method("GET");
      sources_.queue_core.query([respond, name = seg[1]](const q::engine& engine, q::time_ms now) {
        if (auto info = engine.queue(name, now)) return respond(json_answer(200, queue_json(*info)));
        respond(error_answer(404, fmt::format("no queue '{}'", name)));
      });
    } else if (queues && seg.size() == 3 && seg[2] == "purge") {
      if (method != "POST") return wrong_method("POST");
      sources_.queue_core.submit(
          q::purge_queue{seg[1]}, [respond](q::result res) { answer_core_result(respond, res, "purged"); },
          "admin API");
    } else if (queues && seg.size() == 3 && seg[2] == "redrive") {
      if (method != "POST") return wrong_method("POST");
      const auto max = size_param(r, "max", 1000, 100000, param_error);
      if (!max) return respond(error_answer(400, param_error));
      q::redrive_dead_letters cmd{seg[1], r.param("source").value_or(""), static_cast<std::uint32_t>(*max)};
      sources_.queue_core.submit(
          std::move(cmd), [respond](q::result res) { answer_core_result(respond, res, "redriven"); }, "admin API");
    } else {
      respond(error_answer(404, "not a route of the admin API (docs/ADMIN.md)"));
    }
  } else if ((seg[0] == "users" || seg[0] == "roles") && seg.size() <= 2) {
    const bool users = seg[0] == "users";
    if (seg.size() == 1) {
      if (!get) return wrong_method("GET");
      std::size_t offset = 0, limit = 0;
      if (!paging(offset, limit)) return;
      sources_.queue_core.query([respond, users, offset, limit](const q::engine& engine, q::time_ms) {
        json::array items;
        std::size_t total = 0;
        auto page = [&](const auto& records, auto to_json) {
          total = records.size();
          auto it = records.begin();
          std::advance(it, std::min(offset, records.size()));
          for (std::size_t n = 0; it != records.end() && n < limit; ++it, ++n) items.push_back(to_json(it->first, it->second));
        };
        if (users) {
          page(engine.mqtt_users(), [](const std::string& name, const q::mqtt_user& u) { return user_json(name, u, false); });
        } else {
          page(engine.mqtt_roles(), [](const std::string& name, const q::mqtt_role& role) {
            return json::object{{"name", name}, {"ruleCount", role.rules.size()}};
          });
        }
        respond(json_answer(200, json::object{{"total", total}, {users ? "users" : "roles", std::move(items)}}));
      });
    } else if (get) {
      sources_.queue_core.query([respond, users, name = seg[1]](const q::engine& engine, q::time_ms) {
        if (users) {
          const auto found = engine.mqtt_users().find(name);
          if (found != engine.mqtt_users().end()) return respond(json_answer(200, user_json(name, found->second, true)));
        } else {
          const auto found = engine.mqtt_roles().find(name);
          if (found != engine.mqtt_roles().end())
            return respond(json_answer(200, json::object{{"name", name}, {"acl", rules_json(found->second.rules)}}));
        }
        respond(error_answer(404, fmt::format("no {} '{}'", users ? "user" : "role", name)));
      });
    } else if (method == "PUT") {
      auto done = [respond, users, name = seg[1]](q::result res) {
        answer_store_result(respond, res, users ? "user" : "role", name);
      };
      if (users) {
        auto user = user_of_body(request);
        if (auto* why = std::get_if<std::string>(&user)) return respond(error_answer(400, *why));
        sources_.queue_core.submit(q::put_mqtt_user{seg[1], std::move(std::get<q::mqtt_user>(user))}, std::move(done),
                                   "admin API");
      } else {
        auto role = role_of_body(request);
        if (auto* why = std::get_if<std::string>(&role)) return respond(error_answer(400, *why));
        sources_.queue_core.submit(q::put_mqtt_role{seg[1], std::move(std::get<q::mqtt_role>(role))}, std::move(done),
                                   "admin API");
      }
    } else if (method == "DELETE") {
      auto done = [respond, name = seg[1]](q::result res) {
        answer_store_result(respond, res, "deleted", name);
      };
      if (users) {
        sources_.queue_core.submit(q::delete_mqtt_user{seg[1]}, std::move(done), "admin API");
      } else {
        sources_.queue_core.submit(q::delete_mqtt_role{seg[1]}, std::move(done), "admin API");
      }
    } else {
      wrong_method("GET, PUT or DELETE");
    }
  } else if (seg[0] == "messages" && seg.size() == 3 && seg[2] == "trace") {
    if (!get) return wrong_method("GET");
    sources_.queue_core.trace(seg[1], [respond, id = seg[1]](std::optional<q::message_history> h) {
      if (!h)
        return respond(error_answer(
            404, fmt::format("no trace of message '{}' (unknown, or older than the trace keeps)", id)));
      respond(json_answer(200, history_json(*h)));
    });
  } else if (seg[0] == "cluster" && seg.size() == 1) {
    if (!get) return wrong_method("GET");
    sources_.queue_core.cluster_status([respond](core::replication::replica_status s) {
      respond(json_answer(200, cluster_json(s)));
    });
  } else if (seg[0] == "cluster" && seg.size() == 2 && seg[1] == "transfer") {
    if (method != "POST") return wrong_method("POST");
    const auto to = size_param(r, "to", 0, std::numeric_limits<std::uint32_t>::max(), param_error);
    if (!to) return respond(error_answer(400, param_error));
    sources_.queue_core.transfer_leadership(*to, [respond, to = *to](std::optional<std::string> refused) {
      if (refused) return respond(error_answer(409, *refused));
      json::object o{{"transferring", true}};
      if (to != 0) o["to"] = to;
      respond(json_answer(202, o));
    });
  } else if (seg[0] == "cluster" && seg.size() == 2 && seg[1] == "members") {
    if (method != "POST") return wrong_method("POST");
    const auto id = size_param(r, "id", 0, std::numeric_limits<std::uint32_t>::max(), param_error);
    if (!id) return respond(error_answer(400, param_error));
    const auto address = r.param("address").value_or("");
    if (*id == 0 || address.empty())
      return respond(error_answer(400, "a member needs parameters 'id' (above 0) and 'address' (its peer listener)"));
    sources_.queue_core.add_member({*id, address}, [respond, id = *id](std::optional<std::string> refused) {
      if (refused) return respond(error_answer(409, *refused));
      respond(json_answer(202, json::object{{"adding", id}}));
    });
  } else if (seg[0] == "cluster" && seg.size() == 3 && seg[1] == "members") {
    if (method != "DELETE") return wrong_method("DELETE");
    std::uint64_t id = 0;
    const auto [end, ec] = std::from_chars(seg[2].data(), seg[2].data() + seg[2].size(), id);
    if (ec != std::errc() || end != seg[2].data() + seg[2].size() || id == 0)
      return respond(error_answer(400, fmt::format("'{}' is not a member id", seg[2])));
    sources_.queue_core.remove_member(id, [respond, id](std::optional<std::string> refused) {
      if (refused) return respond(error_answer(409, *refused));
      respond(json_answer(202, json::object{{"removing", id}}));
    });
  } else if (seg[0] == "reload" && seg.size() == 1) {
    if (method != "POST") return wrong_method("POST");
    if (!sources_.reload) return respond(error_answer(409, "running on the embedded default: no file to reload"));
    sources_.reload([respond](std::vector<std::string> errors) {
      if (errors.empty()) return respond(json_answer(200, json::object{{"reloaded", true}}));
      json::array list;
      for (auto& e : errors) list.emplace_back(std::move(e));
      respond(json_answer(422, json::object{{"error", "the config file was refused; the running config is kept"},
                                            {"errors", std::move(list)}}));
    });
  } else {
    respond(error_answer(404, "not a route of the admin API (docs/ADMIN.md)"));
  }
}

}  // namespace wharf::gateway::admin
