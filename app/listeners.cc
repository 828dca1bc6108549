#include "app/listeners.h"

#include <algorithm>
#include <exception>
#include <utility>

#include <fmt/format.h>

#include "core/log.h"
#include "tls/tls_context.h"

namespace wharf::app {
namespace {

const char* kind_name(config::listener_type type) {
  switch (type) {
    case config::listener_type::mqtt: return "mqtt";
    case config::listener_type::mqtt_ws: return "mqtt-ws";
    case config::listener_type::queue_api: return "queue-api";
    case config::listener_type::admin: return "admin";
  }
  return "?";
}

// The same listener in two files: a reload keeps it running (new settings, new TLS context)
// rather than starting another. Its PROXY protocol settings are taken at start: a change
// starts another listener in its place.
bool same_listener(const config::listener_config& a, const config::listener_config& b) {
  return a.bind == b.bind && a.type == b.type && a.tls.has_value() == b.tls.has_value() &&
         a.proxy_protocol == b.proxy_protocol;
}

void stop(auto& handle) {
  std::visit([](auto& h) { h.stop(); }, handle);
}

}  // namespace

struct listener_set::plan {
  config::config next;
  // Kept listeners (by position in running_) and their new TLS context (null: plain).
  std::vector<std::pair<std::size_t, std::shared_ptr<boost::asio::ssl::context>>> kept;
  std::vector<running> added;
};

listener_set::listener_set(net::io_pool& pool, listener_targets targets)
    : pool_(pool), targets_(std::move(targets)) {}

listener_set::running listener_set::start(std::size_t index, const config::listener_config& l,
                                          std::shared_ptr<boost::asio::ssl::context> tls_context,
                                          std::uint32_t max_packet_size, bool takes_over) {
  running r{index, l, {}, nullptr};
  if (l.type == config::listener_type::queue_api) {
    auto options = targets_.queue_api_options;
    options.acceptor.takes_over_own_listener = takes_over;
    r.handle = gateway::http::start_http_listener(pool_, l, std::move(tls_context), targets_.queue_api, options);
  } else if (l.type == config::listener_type::admin) {
    r.admin_users = std::make_shared<gateway::admin::listener_users>(l.users);
    gateway::http::http_server_options options;
    options.acceptor.takes_over_own_listener = takes_over;
    r.handle = gateway::http::start_http_listener(
        pool_, l, std::move(tls_context),
        [admin = targets_.admin, users = r.admin_users](gateway::http::http_request request,
                                                         gateway::http::respond_fn respond) {
          admin(std::move(request), std::move(respond), *users);
        },
        options);
  } else {
    targets_.broker.set_listener(index, l);
    net::listener_options options;
    options.max_ws_message_bytes = std::size_t{max_packet_size} + 4096;
    options.acceptor.takes_over_own_listener = takes_over;
    r.handle = net::start_listener(
        pool_, index, l, std::move(tls_context),
        [&broker = targets_.broker](std::shared_ptr<net::stream> s) { broker.accept(std::move(s)); }, options);
  }
  const auto port = std::visit([](const auto& h) { return h.port(); }, r.handle);
  log::app().info("listening on {} ({}{}), port {}", l.bind, kind_name(l.type), l.tls ? ", tls" : "", port);
  return r;
}

void listener_set::start_all(const config::config& cfg) {
  for (const auto& l : cfg.listeners) {
    auto context = l.tls ? tls::make_server_context(*l.tls) : nullptr;
    auto r = start(next_index_, l, std::move(context), cfg.mqtt.max_packet_size, /*takes_over=*/false);
    std::lock_guard lock(mu_);
    ++next_index_;
    running_.push_back(std::move(r));
  }
}

bool listener_set::listens_on(const std::string& bind) const {
  const auto endpoint = net::parse_bind(bind);
  return std::any_of(running_.begin(), running_.end(),
                     [&](const running& r) { return net::parse_bind(r.config.bind) == endpoint; });
}

std::shared_ptr<listener_set::plan> listener_set::prepare(const config::config& next, std::vector<std::string>& errors) {
  auto p = std::make_shared<plan>();
  p->next = next;
  std::lock_guard lock(mu_);  // one reload at a time anyway; this keeps running_ still meanwhile
  std::size_t index = next_index_;
  for (const auto& l : next.listeners) {
    const auto kept = std::find_if(running_.begin(), running_.end(),
                                   [&](const running& r) { return same_listener(r.config, l); });
    try {
      auto context = l.tls ? tls::make_server_context(*l.tls) : nullptr;
      if (kept != running_.end()) {
        p->kept.emplace_back(static_cast<std::size_t>(kept - running_.begin()), std::move(context));
      } else {
        p->added.push_back(start(index++, l, std::move(context), next.mqtt.max_packet_size, listens_on(l.bind)));
      }
    } catch (const std::exception& e) {
      errors.push_back(fmt::format("{}: listener {}: {}", next.source_file, l.bind, e.what()));
    }
  }
  if (!errors.empty()) {
    for (auto& r : p->added) stop(r.handle);
    return nullptr;
  }
  return p;
}

void listener_set::abort(const std::shared_ptr<plan>& p) {
  for (auto& r : p->added) stop(r.handle);
}

void listener_set::commit(const std::shared_ptr<plan>& p) {
  std::lock_guard lock(mu_);
  std::vector<bool> keep(running_.size(), false);
  for (auto& [position, context] : p->kept) {
    auto& r = running_[position];
    keep[position] = true;
    const auto& l = *std::find_if(p->next.listeners.begin(), p->next.listeners.end(),
                                  [&](const auto& c) { return same_listener(c, r.config); });
    r.config = l;
    if (l.type == config::listener_type::mqtt || l.type == config::listener_type::mqtt_ws)
      targets_.broker.set_listener(r.index, l);
    if (r.admin_users) r.admin_users->replace(l.users);
    // A named copy: clang 14 cannot capture a structured binding.
    if (auto tls = context) std::visit([&tls](const auto& h) { h.replace_tls_context(std::move(tls)); }, r.handle);
  }
  std::vector<running> still;
  for (std::size_t i = 0; i < running_.size(); ++i) {
    if (keep[i]) {
      still.push_back(std::move(running_[i]));
    } else {
      stop(running_[i].handle);
      log::app().info("config reload: listener {} ({}) stopped; its connections go on", running_[i].config.bind,
                      kind_name(running_[i].config.type));
    }
  }
  for (auto& r : p->added) {
    next_index_ = std::max(next_index_, r.index + 1);
    still.push_back(std::move(r));
  }
  running_ = std::move(still);
}

std::vector<gateway::admin::listener_counters> listener_set::counters() const {
  std::lock_guard lock(mu_);
  std::vector<gateway::admin::listener_counters> out;
  out.reserve(running_.size());
  for (const auto& r : running_) {
    gateway::admin::listener_counters c{r.config.bind, kind_name(r.config.type)};
    if (const auto* mqtt = std::get_if<net::listener_handle>(&r.handle)) {
      const auto s = mqtt->stats();
      c.accepted = s.accepted;
      c.handshake_failures = s.handshake_failures + s.upgrade_refused;
      c.proxy_headers = s.proxy_headers;
      c.proxy_refused = s.proxy_refused;
    } else {
      const auto s = std::get<gateway::http::http_listener>(r.handle).stats();
      c.accepted = s.accepted;
      c.handshake_failures = s.handshake_failures;
      c.connections_open = s.connections_open;
      c.proxy_headers = s.proxy_headers;
      c.proxy_refused = s.proxy_refused;
    }
    out.push_back(std::move(c));
  }
  return out;
}

void listener_set::stop_all() {
  std::lock_guard lock(mu_);
  for (auto& r : running_) stop(r.handle);
}

}  // namespace wharf::app
