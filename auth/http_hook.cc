#include "auth/http_hook.h"

#include <chrono>
#include <deque>
#include <random>
#include <unordered_map>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include "auth/rules_json.h"
#include "config/config.h"
#include "net/http_client.h"
#include "tls/crypto.h"

namespace wharf::auth {
namespace {

namespace asio = boost::asio;
using steady_clock = std::chrono::steady_clock;
using outcome = hook_answer::outcome;

hook_answer failure(std::string why) { return hook_answer{.result = outcome::failed, .rules = {}, .why = std::move(why)}; }

// A superuser may do everything: rules ahead of all others that allow every topic ('#'
// does not reach the '$' topics [MQTT-4.7.2-1], so $SYS has its own).
std::vector<config::acl_rule> superuser_rules() {
  std::vector<config::acl_rule> rules;
  for (const char* topic : {"#", "$SYS/#"}) {
    config::acl_rule everything;
    everything.permission = config::acl_permission::allow;
    everything.action = config::acl_action::all;
    everything.topic = topic;
    everything.source_location = "http hook (superuser)";
    rules.push_back(std::move(everything));
  }
  return rules;
}

hook_answer answer_of_json(std::string_view body) {
  boost::system::error_code ec;
  auto value = boost::json::parse(body, ec);
  if (ec) return failure(fmt::format("the answer is not JSON: {}", ec.message()));
  const auto* o = value.if_object();
  if (o == nullptr) return failure("the answer is not a JSON object");
  const auto* result = string_member(*o, "result");
  if (result == nullptr) return failure("the answer has no result string");
  hook_answer answer;
  if (*result == "allow") {
    answer.result = outcome::allow;
  } else if (*result == "deny") {
    answer.result = outcome::deny;
    answer.why = "the HTTP hook denies";
    return answer;
  } else if (*result == "ignore") {
    answer.result = outcome::ignore;
    return answer;
  } else {
    return failure(fmt::format("result '{}' is none of allow, deny, ignore", std::string_view(*result)));
  }
  if (const auto* superuser = o->if_contains("superuser")) {
    if (!superuser->is_bool()) return failure("superuser is not a boolean");
    if (superuser->as_bool()) {
      answer.rules = superuser_rules();
      return answer;
    }
  }
  if (const auto* acl = o->if_contains("acl")) {
    auto rules = rules_from_json(*acl, "http hook");
    if (auto* why = std::get_if<std::string>(&rules)) return failure(fmt::format("acl: {}", *why));
    answer.rules = std::move(std::get<std::vector<config::acl_rule>>(rules));
  }
  return answer;
}

}  // namespace

hook_answer answer_of(std::optional<unsigned> status, std::string_view body, bool body_complete,
                      std::string_view why_none) {
  if (!status) return failure(std::string(why_none));
  switch (*status) {
    case 200:
      if (!body_complete) return failure("the answer's body is cut short or too long");
      return answer_of_json(body);
    case 204: return hook_answer{.result = outcome::allow, .rules = {}, .why = {}};
    case 401:
    case 403: return hook_answer{.result = outcome::deny, .rules = {}, .why = fmt::format("the HTTP hook answers {}", *status)};
    default: return failure(fmt::format("HTTP {}", *status));
  }
}

std::string request_body(const hook_request& request) {
  boost::json::object body;
  using kind = hook_request::kind;
  body["action"] = request.action == kind::connect ? "connect" : request.action == kind::publish ? "publish" : "subscribe";
  if (request.action != kind::connect) body["topic"] = request.topic;
  body["clientid"] = request.client_id;
  body["username"] = request.username ? boost::json::value(*request.username) : boost::json::value(nullptr);
  if (request.password && !request.password_is_text) {
    body["password"] = nullptr;
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(request.password->data());
    body["password_base64"] = tls::base64_encode({bytes, request.password->size()});
  } else {
    body["password"] = request.password ? boost::json::value(*request.password) : boost::json::value(nullptr);
  }
  body["peer"] = request.peer_address;
  body["peer_port"] = request.peer_port;
  body["protocol_version"] = request.protocol_version;
  body["cert_common_name"] =
      request.cert_common_name ? boost::json::value(*request.cert_common_name) : boost::json::value(nullptr);
  boost::json::array names;
  for (const auto& name : request.cert_subject_alt_names) names.emplace_back(name);
  body["cert_subject_alt_names"] = std::move(names);
  body["listener"] = request.listener;
  return boost::json::serialize(body);
}

// Everything the hook holds, on one strand; requests in flight keep it alive.
class http_hook::state : public std::enable_shared_from_this<state> {
 public:
  state(asio::any_io_executor executor, const config::http_auth_config& cfg, net::endpoint service, counters& stats)
      : stats_(stats),
        cfg_(cfg),
        strand_(asio::make_strand(executor)),
        service_(std::move(service)),
        http_(executor, net::http_client_options{.timeout = std::chrono::milliseconds(cfg.timeout_ms),
                                                 .ca_file = cfg.ca_file,
                                                 .max_idle_connections = cfg.max_in_flight,
                                                 .user_agent = "wharf-auth",
                                                 .max_response_body_bytes = 64 * 1024}),
        cache_salt_(std::to_string(std::random_device{}()) + std::to_string(std::random_device{}())) {}

  void ask(hook_request request, std::function<void(hook_answer)> done) {
    asio::post(strand_, [self = shared_from_this(), request = std::move(request), done = std::move(done)]() mutable {
      self->on_strand(std::move(request), std::move(done));
    });
  }

  counters& stats_;
  const config::http_auth_config cfg_;

 private:
  struct waiting {
    std::string key;
    hook_request request;
    std::function<void(hook_answer)> done;
  };
  struct remembered {
    hook_answer answer;
    steady_clock::time_point until;
  };

  void on_strand(hook_request request, std::function<void(hook_answer)> done) {
    auto key = cache_key(request);
    if (auto found = cache_.find(key); found != cache_.end()) {
      if (found->second.until > steady_clock::now()) {
        stats_.cache_hits.fetch_add(1, std::memory_order_relaxed);
        done(found->second.answer);
        return;
      }
      cache_.erase(found);
    }
    if (in_flight_ < cfg_.max_in_flight) {
      send(std::move(key), std::move(request), std::move(done));
    } else if (waiting_.size() < cfg_.max_queued) {
      waiting_.push_back({std::move(key), std::move(request), std::move(done)});
    } else {
      stats_.busy.fetch_add(1, std::memory_order_relaxed);
      done(hook_answer{.result = outcome::busy,
                       .rules = {},
                       .why = fmt::format("{} CONNECTs already wait for the HTTP hook (auth.http.max_queued)",
                                          cfg_.max_queued)});
    }
  }

  void send(std::string key, hook_request request, std::function<void(hook_answer)> done) {
    ++in_flight_;
    stats_.requests.fetch_add(1, std::memory_order_relaxed);
    net::http_post post{.content_type = "application/json", .headers = {}, .body = request_body(request)};
    http_.post(service_, std::move(post),
               [self = shared_from_this(), key = std::move(key), done = std::move(done)](net::http_response r) mutable {
                 asio::post(self->strand_, [self, key = std::move(key), done = std::move(done), r = std::move(r)]() mutable {
                   self->answered(std::move(key), std::move(r), std::move(done));
                 });
               });
  }

  void answered(std::string key, net::http_response response, std::function<void(hook_answer)> done) {
    --in_flight_;
    auto answer = answer_of(response.status, response.body, response.body_complete, response.error);
    if (answer.result == outcome::failed) {
      stats_.failures.fetch_add(1, std::memory_order_relaxed);
      if (cfg_.fail_open) answer = hook_answer{.result = outcome::allow, .rules = {}, .why = std::move(answer.why)};
    } else {
      remember(std::move(key), answer);
    }
    done(std::move(answer));
    if (!waiting_.empty() && in_flight_ < cfg_.max_in_flight) {
      auto next = std::move(waiting_.front());
      waiting_.pop_front();
      // It may have been answered meanwhile (the same credentials were waiting twice).
      on_strand_waited(std::move(next));
    }
  }

  void on_strand_waited(waiting next) {
    if (auto found = cache_.find(next.key); found != cache_.end() && found->second.until > steady_clock::now()) {
      stats_.cache_hits.fetch_add(1, std::memory_order_relaxed);
      next.done(found->second.answer);
      // The slot is still free: the next one waiting takes it.
      if (!waiting_.empty()) {
        auto after = std::move(waiting_.front());
        waiting_.pop_front();
        on_strand_waited(std::move(after));
      }
      return;
    }
    send(std::move(next.key), std::move(next.request), std::move(next.done));
  }

  void remember(std::string key, const hook_answer& answer) {
    const auto ttl = answer.result == outcome::allow  ? cfg_.cache_ttl_ms
                     : answer.result == outcome::deny ? cfg_.deny_cache_ttl_ms
                                                      : 0;
    if (ttl == 0 || cfg_.cache_entries == 0) return;
    if (cache_.size() >= cfg_.cache_entries) cache_.clear();  // bounded, as the password cache
    cache_[std::move(key)] = remembered{answer, steady_clock::now() + std::chrono::milliseconds(ttl)};
  }

  // Everything the service is told but the client's port, which is new on every connection:
  // an answer is reused only for the same question. A salted digest: the cache holds no
  // password.
  std::string cache_key(hook_request r) const {
    r.peer_port = 0;
    const auto digest = tls::sha256(cache_salt_ + request_body(r));
    return std::string(digest.begin(), digest.end());
  }

  asio::strand<asio::any_io_executor> strand_;
  net::endpoint service_;
  net::http_client http_;
  std::string cache_salt_;
  std::uint32_t in_flight_ = 0;
  std::deque<waiting> waiting_;
  std::unordered_map<std::string, remembered> cache_;
};

net::endpoint hook_endpoint(const config::http_auth_config& cfg) {
  auto url = net::parse_endpoint(cfg.url);
  if (!url) {
    throw config::config_errors({config::error_at(
        cfg.url_location, fmt::format("auth.http.url: '{}' is not an http:// or https:// URL with a host", cfg.url))});
  }
  return *url;
}

http_hook::http_hook(asio::any_io_executor executor, const config::http_auth_config& cfg, counters& stats)
    : state_(std::make_shared<state>(std::move(executor), cfg, hook_endpoint(cfg), stats)) {}

http_hook::~http_hook() = default;

void http_hook::ask(hook_request request, std::function<void(hook_answer)> done) {
  state_->ask(std::move(request), std::move(done));
}

const config::http_auth_config& http_hook::config() const noexcept { return state_->cfg_; }

}  // namespace wharf::auth
