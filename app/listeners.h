// The running listeners: started from the config at start, added, dropped and updated by
// reloads (SIGHUP, the admin API) without touching connections already accepted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "config/config.h"
#include "gateway/admin/admin_api.h"
#include "gateway/http/server.h"
#include "gateway/mqtt/broker.h"
#include "net/io_pool.h"
#include "net/listener.h"

namespace wharf::app {

// What the listeners hand their connections to.
struct listener_targets {
  gateway::broker& broker;                          // MQTT and MQTT over WebSocket
  gateway::http::request_handler queue_api;         // queue-api listeners
  gateway::http::http_server_options queue_api_options;
  // admin listeners, each with the users it lets in
  std::function<void(gateway::http::http_request, gateway::http::respond_fn, const gateway::admin::listener_users&)>
      admin;
};

class listener_set {
 public:
  listener_set(net::io_pool& pool, listener_targets targets);

  // Starts the config's listeners, in order. Throws (std::system_error: cannot bind;
  // std::runtime_error: TLS files) like any start failure.
  void start_all(const config::config& cfg);

  // A reload of `next`, in two steps so that the rest of a reload can still refuse it:
  // prepare() makes the TLS contexts of the listeners the file keeps and starts the ones it
  // adds; an error (a certificate that does not load, an address that cannot be bound)
  // stops what it started and is returned, and nothing changed. Then commit() puts the
  // new contexts and settings in place and stops the listeners the file dropped (their
  // connections go on), or abort() stops the listeners prepare() started.
  struct plan;
  [[nodiscard]] std::shared_ptr<plan> prepare(const config::config& next, std::vector<std::string>& errors);
  void commit(const std::shared_ptr<plan>& p);
  void abort(const std::shared_ptr<plan>& p);

  [[nodiscard]] std::vector<gateway::admin::listener_counters> counters() const;
  // Stops accepting on every listener (shutdown). Idempotent.
  void stop_all();

 private:
  struct running {
    std::size_t index = 0;  // the broker's listener index (admission, settings)
    config::listener_config config;
    std::variant<net::listener_handle, gateway::http::http_listener> handle;
    std::shared_ptr<gateway::admin::listener_users> admin_users;  // admin listeners: its `users`
  };
  // `takes_over` when one of running_ listens on the same address (acceptor_options).
  [[nodiscard]] running start(std::size_t index, const config::listener_config& l,
                              std::shared_ptr<boost::asio::ssl::context> tls_context, std::uint32_t max_packet_size,
                              bool takes_over);
  // Whether a running listener is bound to the address `bind` names. REQUIRES: mu_ held.
  [[nodiscard]] bool listens_on(const std::string& bind) const;

  net::io_pool& pool_;
  listener_targets targets_;
  mutable std::mutex mu_;  // running_ and next_index_: a reload vs. /metrics
  std::vector<running> running_;
  std::size_t next_index_ = 0;
};

}  // namespace wharf::app
