// wharf: start-up and shut-down order.
//   config -> storage -> queue core (load) -> I/O pool -> broker (load sessions, retained)
//     -> push client, CMQ API -> listeners -> run
//   SIGHUP (or the admin API) -> users, ACL, queue API credentials and rate limit, log
//     levels, MQTT limits, listeners (their TLS certificates, admin users) and the bridge's
//     bindings are reloaded from the file (app/listeners.h); open connections go on
//   signal -> listeners stop -> broker shutdown (DISCONNECT 0x8B, wills, persist) -> pool
//     -> queue core (waiting receives answered, commits drained) -> storage
#include <signal.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <iostream>
#include <mutex>
#include <string_view>
#include <optional>
#include <string>
#include <vector>

#include "app/commands.h"
#include "app/ctl/ctl.h"
#include "app/listeners.h"
#include "config/config.h"
#include "core/log.h"
#include "core/encryption.h"
#include "core/queue/service.h"
#include "core/storage.h"
#include "gateway/admin/admin_api.h"
#include "gateway/bridge/runner.h"
#include "gateway/http/cmq_api.h"
#include "gateway/http/server.h"
#include "gateway/mqtt/broker.h"
#include "gateway/mqtt/runtime_mirror.h"
#include "net/io_pool.h"
#include "net/listener.h"
#include "gateway/push/push_client.h"
#include "tls/tls_context.h"

namespace {

constexpr const char* usage_text =
    "usage: wharf [--config FILE] [--print-default-config] [--help]\n"
    "       wharf check-config FILE\n"
    "       wharf passwd [--iterations N] USERNAME\n"
    "       wharf ctl [OPTIONS] COMMAND ...\n"
    "       wharf cluster status|transfer [NODE_ID]|add NODE_ID HOST:PORT|remove NODE_ID [OPTIONS]\n"
    "  --config FILE            run with the YAML configuration FILE (default: the embedded default)\n"
    "  --print-default-config   print the embedded default configuration and exit\n"
    "  check-config FILE        check FILE; print every error as FILE:LINE:COL and exit 1, or exit 0\n"
    "  passwd USERNAME          print an auth.users entry with a PBKDF2 hash of a password read from stdin\n"
    "  ctl COMMAND              operate a running wharf through its admin listener (wharf ctl --help)\n"
    "  cluster ...              the queue core's cluster: the same as wharf ctl cluster ...\n"
    "Each subcommand takes --help.\n";

constexpr const char* check_config_usage =
    "usage: wharf check-config FILE\n"
    "  Loads FILE as wharf would (every section, the bridge's bindings, the auth section's\n"
    "  hashes and patterns) without starting. Prints 'FILE: ok' and exits 0, or prints every\n"
    "  error as FILE:LINE:COLUMN: what is wrong, and exits 1.\n";

struct options {
  std::string config_file;
  bool print_default = false;
};

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      o.config_file = argv[++i];
    } else if (arg == "--print-default-config") {
      o.print_default = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "wharf: unknown argument '%s'\n%s", arg.c_str(), usage_text);
      std::exit(2);
    }
  }
  return o;
}

wharf::core::queue::service_options queue_core_options(const wharf::config::config& cfg) {
  wharf::core::queue::service_options o;
  o.limits.max_queues = cfg.queue.max_queues;
  o.limits.max_mqtt_users = cfg.auth.runtime.max_users;
  o.limits.max_mqtt_roles = cfg.auth.runtime.max_roles;
  o.limits.max_topics = cfg.queue.max_topics;
  o.limits.max_subscriptions_per_topic = cfg.queue.max_subscriptions_per_topic;
  o.limits.log_retain_entries = cfg.queue.log_retain_entries;
  for (const auto& t : cfg.tenants)
    o.limits.tenant_quotas.emplace(t.name, wharf::core::queue::tenant_quota{t.max_queues, t.max_topics, t.max_stored_bytes});
  o.tick_interval = std::chrono::milliseconds(cfg.queue.tick_interval_ms);
  o.max_long_polls = cfg.queue_api.max_long_polls;
  o.max_pushes_in_flight = cfg.queue.push.max_in_flight;
  o.trace_retention = std::chrono::seconds(cfg.queue.trace_retention_s);
  o.trace_max_messages = cfg.queue.trace_max_messages;
  if (const auto& c = cfg.cluster) {
    auto& r = o.replication;
    r.node_id = c->node_id;
    r.bind = c->bind;
    r.cluster = c->name;
    r.address = c->bind;  // a joining node's own address is the leader's to learn (cluster add)
    for (const auto& p : c->peers) {
      r.voters.push_back({p.id, p.address});
      if (p.id == c->node_id) r.address = p.address;
    }
    r.election_timeout_ms = c->election_timeout_ms;
    r.heartbeat_timeout_ms = c->heartbeat_timeout_ms;
    r.leader_wait = std::chrono::milliseconds(c->leader_wait_ms);
    r.forward_timeout = std::chrono::milliseconds(c->forward_timeout_ms);
    if (c->tls) {
      r.tls_server = wharf::tls::make_server_context(*c->tls);
      r.tls_client = wharf::tls::make_client_context(c->tls->ca_file,
                                                     wharf::tls::cert_key_files{c->tls->cert_file, c->tls->key_file});
    }
  }
  return o;
}

// Due pushes of the queue core: those of the bridge's mqtt subscriptions are published to
// the broker, the others go out through the HTTP push client. Failures are logged at debug
// level (the retry policy decides what happens next, and counts what it gives up).
void connect_push_senders(wharf::core::queue::service& queue_core, wharf::gateway::push::push_client& pusher,
                          wharf::gateway::bridge::runner& bridge) {
  queue_core.set_push_sender([&pusher, &bridge](wharf::core::queue::push_delivery delivery,
                                                std::function<void(bool)> done) {
    if (delivery.protocol == wharf::core::queue::sub_protocol::mqtt) {
      bridge.deliver(delivery, std::move(done));
      return;
    }
    const auto endpoint = delivery.endpoint;
    pusher.send(std::move(delivery), [endpoint, done = std::move(done)](bool success, std::string error) {
      if (!success) wharf::log::app().debug("push to {} failed: {}", endpoint, error);
      done(success);
    });
  });
}

// One reload at a time (SIGHUP, the admin API), and none while the listeners start.
std::mutex reload_mu;

// Makes the development certificate of listeners with tls.development_certificate (files
// that exist are kept). Returns why it could not, or nothing.
std::optional<std::string> make_development_certificate(const wharf::config::config& cfg) {
  if (!wharf::config::uses_development_certificate(cfg)) return std::nullopt;
  try {
    const auto dev = wharf::tls::generate_self_signed(wharf::config::development_certificate_dir(cfg.data_dir));
    wharf::log::app().info("development certificate in use; TLS clients can trust {}", dev.ca.cert_file);
  } catch (const std::exception& e) {
    return fmt::format("cannot make the development certificate: {}", e.what());
  }
  return std::nullopt;
}

// What a reload changes, besides the log levels.
struct reload_targets {
  wharf::gateway::broker& broker;
  wharf::gateway::bridge::runner& bridge;
  wharf::app::listener_set& listeners;
  wharf::gateway::http::cmq_api& queue_api;
};

// The store through encryption at rest when the config names keys. Refuses (throws) a store
// that was encrypted when the config names none, and whatever open_encrypted refuses: a
// missing or wrong key, values written in the clear. Nothing is written before the checks.
std::unique_ptr<wharf::core::storage> with_encryption(const wharf::config::config& cfg,
                                                      std::unique_ptr<wharf::core::storage> db) {
  using namespace wharf;
  if (!cfg.encryption) {
    if (core::holds_encrypted_values(*db)) {
      throw core::encryption_error(fmt::format("data_dir {} is encrypted: the config's encryption section must name "
                                               "its keys", cfg.data_dir));
    }
    return db;
  }
  std::vector<core::encryption_key> keys;
  for (const auto& k : cfg.encryption->keys) keys.push_back({k.id, k.key});
  auto cipher = std::make_shared<core::value_cipher>(keys, cfg.encryption->active);
  std::map<std::string, std::uint64_t> values_by_key;
  auto encrypted = core::open_encrypted(std::move(db), cipher, &values_by_key);
  std::string counts;
  for (const auto& [id, n] : values_by_key) counts += fmt::format("{}{} with '{}'", counts.empty() ? "" : ", ", n, id);
  log::app().info("encryption at rest: new values sealed with key '{}'; stored values: {}", cfg.encryption->active,
                  counts.empty() ? "none yet" : counts);
  return encrypted;
}

// SIGHUP: reads the config file again and applies what can change while running: users
// and ACL, queue API credentials and rate limit, log levels, the mqtt section's limits,
// the listeners (added, dropped, their settings, TLS certificates and admin users), the
// bridge's bindings (and uplink). An invalid file (or a certificate that cannot be loaded,
// an address that cannot be bound) is refused with its errors logged, and everything keeps
// running as it was. Other sections take effect at the next start. Returns the errors that
// refused the file (none: applied).
std::vector<std::string> reload_config(const options& opts, const reload_targets& to) {
  using namespace wharf;
  std::lock_guard lock(reload_mu);
  if (opts.config_file.empty()) {
    log::app().info("SIGHUP: running on the embedded default; there is no file to reload");
    return {"running on the embedded default: there is no file to reload"};
  }
  app::checked_config next;
  try {
    next = app::load_checked_config(opts.config_file);
  } catch (const config::config_errors& e) {
    std::vector<std::string> errors;
    for (const auto& err : e.errors()) errors.push_back(err.to_string());
    for (const auto& err : errors) log::app().error("config reload refused: {}", err);
    return errors;
  }
  if (auto failure = make_development_certificate(next.cfg)) {
    log::app().error("config reload refused: {}", *failure);
    return {*failure};
  }
  std::vector<std::string> errors;
  auto listener_plan = to.listeners.prepare(next.cfg, errors);
  if (!listener_plan) {
    for (const auto& err : errors) log::app().error("config reload refused: {}", err);
    return errors;
  }
  // The bridge last of what can refuse (a queue it cannot create); then everything applies.
  if (!to.bridge.reload(std::move(next.bridge_rules))) {
    to.listeners.abort(listener_plan);
    return {"the bridge refused the new bindings (the log says why); nothing was changed"};
  }
  to.listeners.commit(listener_plan);
  log::set_levels(next.cfg.log_level, next.cfg.module_log_levels);
  log::set_format(next.cfg.log_format);
  to.broker.replace_access_policy(std::move(next.access));
  to.broker.replace_limits(next.cfg);
  to.queue_api.reload(next.cfg.queue_api);
  log::app().info("config reload: users, ACL, queue API credentials and rate limit, log levels, MQTT limits, "
                  "listeners, bridge bindings and TLS certificates replaced from {} (other settings apply at the "
                  "next start)",
                  opts.config_file);
  return {};
}

int run(const options& opts) {
  using namespace wharf;
  app::checked_config checked;
  try {
    checked = app::load_checked_config(opts.config_file);
  } catch (const config::config_errors& e) {
    for (const auto& err : e.errors()) std::fprintf(stderr, "%s\n", err.to_string().c_str());
    return 1;
  }
  if (opts.config_file.empty()) wharf::log::app().info("embedded default configuration");
  if (auto failure = make_development_certificate(checked.cfg)) {
    std::fprintf(stderr, "%s\n", failure->c_str());
    return 1;
  }
  const config::config& cfg = checked.cfg;
  auto bridge_rules = std::move(checked.bridge_rules);
  wharf::log::set_levels(cfg.log_level, cfg.module_log_levels);
  wharf::log::set_format(cfg.log_format);

  // Signals are taken by sigwait on this thread; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (std::error_code ec; !std::filesystem::create_directories(cfg.data_dir, ec) && ec) {
    throw std::runtime_error(fmt::format("data_dir {}: cannot create it: {} (wharf runs as uid {}; the directory's "
                                         "parent must be writable for it)",
                                         cfg.data_dir, ec.message(), ::getuid()));
  }
  auto db = with_encryption(cfg, core::storage::open({.path = (std::filesystem::path(cfg.data_dir) / "db").string(),
                                                     .min_free_bytes = cfg.min_free_disk_bytes}));
  // The runtime MQTT users and roles live in the queue core; the MQTT side reads this copy.
  auth::runtime_users runtime_users;
  auto core_options = queue_core_options(cfg);
  core_options.mqtt_auth_changed = [&runtime_users](const core::queue::engine& engine,
                                                    const core::queue::mqtt_auth_changes& changes) {
    gateway::mirror_runtime_users(engine, changes, runtime_users);
  };
  core::queue::service queue_core(*db, std::move(core_options));

  net::io_pool pool(cfg.io_threads);
  gateway::broker broker(cfg, *db, pool);
  broker.attach_runtime_users(runtime_users);
  broker.load();
  gateway::bridge::runner bridge(queue_core, broker);
  bridge.attach(std::move(bridge_rules));

  gateway::push::push_client_options push_options;
  push_options.timeout = std::chrono::milliseconds(cfg.queue.push.timeout_ms);
  push_options.ca_file = cfg.queue.push.ca_file;
  gateway::push::push_client pusher(pool.context(0), push_options);
  connect_push_senders(queue_core, pusher, bridge);

  gateway::http::authenticator queue_api_auth(cfg.queue_api.credentials,
                                              gateway::http::authenticator_options_from(cfg.queue_api));
  gateway::http::cmq_api queue_api(
      queue_core, queue_api_auth, pool,
      {.max_params = cfg.queue_api.max_params,
       .max_requests_per_second = cfg.queue_api.max_requests_per_second,
       .tenant_requests_per_second = gateway::http::cmq_api::tenant_rates(cfg.tenants)});

  auto queue_api_server_options = gateway::http::http_server_options_from(cfg.queue_api);
  queue_api_server_options.error_body = [&queue_api](int code, const std::string& message) {
    return queue_api.refusal(code, message);
  };
  // Made after the listener set (it reads it), used by the set's admin listeners.
  std::optional<gateway::admin::admin_api> admin;
  app::listener_set listeners(
      pool, {.broker = broker,
             .queue_api =
                 [&queue_api](gateway::http::http_request r, gateway::http::respond_fn respond) {
                   queue_api.handle(std::move(r), std::move(respond));
                 },
             .queue_api_options = queue_api_server_options,
             .admin = [&admin](gateway::http::http_request r, gateway::http::respond_fn respond,
                               const gateway::admin::listener_users& allowed) {
               admin->handle(std::move(r), std::move(respond), allowed);
             }});
  // Reloads the admin API asks for run here, off the I/O threads (a reload may wait for the
  // queue core). Destroyed before what it reloads.
  const reload_targets reloaded{broker, bridge, listeners, queue_api};
  boost::asio::thread_pool admin_reloads{1};
  admin.emplace(
      gateway::admin::admin_sources{
          .broker = broker,
          .queue_core = queue_core,
          .storage = *db,
          .queue_api = [&queue_api] { return queue_api.stats(); },
          .listeners = [&listeners] { return listeners.counters(); },
          .bridge = &bridge,
          .reload = opts.config_file.empty()
                        ? std::function<void(std::function<void(std::vector<std::string>)>)>{}
                        : [&](std::function<void(std::vector<std::string>)> done) {
                            boost::asio::post(admin_reloads, [&opts, &reloaded, done = std::move(done)] {
                              done(reload_config(opts, reloaded));
                            });
                          }});
  {
    std::lock_guard lock(reload_mu);
    listeners.start_all(cfg);
  }
  pool.run();
  broker.start();
  bridge.start();
  admin->set_ready(true);
  wharf::log::app().info("wharf {} ready: {} I/O threads, data in {}", WHARF_VERSION, pool.size(), cfg.data_dir);

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) (void)reload_config(opts, reloaded);
  wharf::log::app().info("signal {} received: shutting down", sig);
  admin->set_ready(false);
  listeners.stop_all();
  admin_reloads.join();  // a reload the admin API started finishes before the bridge stops
  // Before the broker and the core: it publishes into the one and reads the other.
  bridge.stop();
  broker.shutdown();
  pool.stop();
  pool.join();
  // After the pool: no request can reach the core any more. Before the push client goes:
  // the core's thread must not hand it another push.
  queue_core.stop();
  db->close();
  wharf::log::app().info("stopped cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "check-config") {
    if (argc == 3 && (std::string_view(argv[2]) == "--help" || std::string_view(argv[2]) == "-h")) {
      std::fputs(check_config_usage, stdout);
      return 0;
    }
    if (argc != 3) {
      std::fputs(check_config_usage, stderr);
      return 2;
    }
    return wharf::app::check_config_command(argv[2]);
  }
  if (command == "passwd") return wharf::app::passwd_command(std::vector<std::string>(argv + 2, argv + argc));
  if (command == "ctl") return wharf::app::ctl_command(std::vector<std::string>(argv + 2, argv + argc));
  if (command == "cluster") return wharf::app::ctl_command(std::vector<std::string>(argv + 1, argv + argc));
  const auto opts = parse_args(argc, argv);
  if (opts.print_default) {
    std::fputs(wharf::config::embedded_default_yaml().c_str(), stdout);
    return 0;
  }
  try {
    return run(opts);
  } catch (const std::exception& e) {
    wharf::log::app().critical("wharf: {}", e.what());
    return 1;
  }
}
