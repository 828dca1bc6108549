// The admin listener's HTTP endpoints (docs/CONFIG.md, listeners of type admin):
//   GET /healthz  200 while the process serves requests (no credentials: for probes)
//   GET /readyz   200 once listeners, storage and sessions are up, 503 before and while
//                 shutting down (no credentials)
//   GET /metrics  Prometheus text format 0.0.4 (HTTP Basic credentials of auth.users
//                 named by the listener's `users`)
//   /api/v1/...   the admin API, JSON, the same credentials (admin_routes.cc, docs/ADMIN.md)
// Everything it reports is read from counters the parts keep anyway; a scrape costs one
// query on the queue core's thread (queue depths) and nothing on the I/O threads' paths.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "core/queue/service.h"
#include "core/storage.h"
#include "gateway/bridge/runner.h"
#include "gateway/http/cmq_api.h"
#include "gateway/http/server.h"
#include "gateway/mqtt/broker.h"

namespace wharf::gateway::admin {

// One listener's connection counters, for /metrics.
struct listener_counters {
  std::string bind;  // as configured
  std::string type;  // mqtt, mqtt-ws, queue-api, admin
  std::uint64_t accepted = 0;
  std::uint64_t handshake_failures = 0;  // TLS (and WebSocket upgrade) handshakes failed
  std::uint64_t connections_open = 0;    // HTTP listeners (queue-api, admin) only: open now
  std::uint64_t proxy_headers = 0;       // PROXY protocol headers taken
  std::uint64_t proxy_refused = 0;       // connections closed for their PROXY header, or its lack
};

// Where the figures come from. Everything must outlive the admin_api's requests.
struct admin_sources {
  gateway::broker& broker;
  core::queue::service& queue_core;
  core::storage& storage;
  std::function<http::cmq_api_stats()> queue_api;           // empty: no queue-api listener
  std::function<std::vector<listener_counters>()> listeners;
  const bridge::runner* bridge = nullptr;  // its uplink's counters; null: no bridge
  // Reads the config file again and applies it as SIGHUP does; `done` gets the errors that
  // refused it (none: applied). Called on an I/O thread: it must hand the work elsewhere.
  std::function<void(std::function<void(std::vector<std::string> errors)> done)> reload;
};

// The users one admin listener lets in (its `users`): read by every I/O thread, replaced
// whole when a reload keeps the listener with other users.
class listener_users {
 public:
  explicit listener_users(std::vector<std::string> names);
  void replace(std::vector<std::string> names);
  [[nodiscard]] bool names(std::string_view user) const;

 private:
  std::atomic<std::shared_ptr<const std::vector<std::string>>> names_;
};

class admin_api {
 public:
  explicit admin_api(admin_sources sources);

  // The request handler of an admin listener that lets `allowed` in.
  void handle(http::http_request request, http::respond_fn respond, const listener_users& allowed);
  // /readyz's answer: true once serving, false from the start of shutdown.
  void set_ready(bool ready) noexcept { ready_.store(ready, std::memory_order_relaxed); }

  // The /metrics text now (also for tests); `done` gets it on the queue core's thread.
  // `tenant`: only that tenant's series ("" the default tenant's); nullopt: everything.
  void render_metrics(std::optional<std::string> tenant, std::function<void(std::string)> done);

 private:
  // The admin API's routes (admin_routes.cc), after authentication.
  void serve_api(const http::http_request& request, http::respond_fn respond);
  // Checks the request's Basic credentials (a user `allowed` names, with its password), then
  // runs `then` (on any thread) or answers 401.
  void authenticated(const http::http_request& request, const listener_users& allowed, http::respond_fn respond,
                     std::function<void(http::respond_fn)> then);

  admin_sources sources_;
  std::atomic<bool> ready_{false};
  // Session listings (a sort of every client id) run here, off the I/O threads. Last: joined
  // first, while what its work uses still exists.
  boost::asio::thread_pool listing_{1};
};

}  // namespace wharf::gateway::admin
