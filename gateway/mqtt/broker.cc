#include "gateway/mqtt/broker.h"

#include <unistd.h>

#include <boost/asio/post.hpp>

#include <cstdio>
#include <future>
#include <unordered_set>

#include "core/log.h"
#include "gateway/mqtt/connection.h"
#include "gateway/mqtt/shard.h"
#include "session/session_store.h"

namespace wharf::gateway {
namespace {

// mqtt.memory_watermark_bytes, its 0 resolved to three quarters of physical memory.
std::uint64_t memory_watermark(const config::mqtt_config& mqtt) {
  if (mqtt.memory_watermark_bytes != 0) return mqtt.memory_watermark_bytes;
  return static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)) / 4 *
         3;
}

// The process's resident set (the second field of /proc/self/statm, in pages); 0 if unreadable.
std::uint64_t resident_memory_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size_pages = 0, resident_pages = 0;
  const int read = std::fscanf(f, "%llu %llu", &size_pages, &resident_pages);
  std::fclose(f);
  return read == 2 ? resident_pages * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

broker::broker(const config::config& cfg, core::storage& db, net::io_pool& pool)
    : cfg_(cfg),
      db_(db),
      pool_(pool),
      retained_(cfg.mqtt.max_retained_messages),
      admission_(cfg.mqtt, cfg.listeners),
      started_at_(std::chrono::steady_clock::now()),
      memory_watermark_bytes_(memory_watermark(cfg.mqtt)) {
  shards_.reserve(pool.size());
  // The caller has checked cfg.auth (this throws config::config_errors otherwise).
  access_ = std::make_shared<const auth::access_policy>(cfg.auth);
  hook_ = make_hook(*access_, nullptr);
  auto limits = std::make_shared<const config::mqtt_config>(cfg.mqtt);
  for (std::size_t i = 0; i < pool.size(); ++i) {
    shards_.push_back(std::make_unique<shard>(parts_for_shards(), pool.context(i), static_cast<int>(i), pool.size()));
    shards_.back()->set_access_policy(access_, false);
    shards_.back()->set_limits(limits);
  }
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) set_listener(i, cfg.listeners[i]);
}

shared_parts broker::parts_for_shards() {
  return shared_parts{.owner = *this,
                      .db = db_,
                      .sessions = sessions_,
                      .retained = retained_,
                      .counters = counters_,
                      .admission_control = admission_,
                      .shards = shards_};
}

void broker::run_housekeeping(shard& on, std::int64_t now_unix_ms) {
  run_session_timers(on, now_unix_ms);
  erase_expired_retained(on, now_unix_ms);
  publish_sys(on, now_unix_ms);
  check_memory(now_unix_ms);
}

void broker::set_listener(std::size_t index, const config::listener_config& listener) {
  admission_.set_listener(index, listener);
  std::lock_guard lock(listeners_mu_);
  if (index >= listeners_.size()) listeners_.resize(index + 1);
  listeners_[index] = std::make_shared<const config::listener_config>(listener);
}

std::shared_ptr<const config::listener_config> broker::listener_settings(std::size_t index) const {
  std::lock_guard lock(listeners_mu_);
  return index < listeners_.size() ? listeners_[index] : nullptr;
}

void broker::replace_limits(const config::config& next) {
  admission_.update(next.mqtt);
  memory_watermark_bytes_.store(memory_watermark(next.mqtt), std::memory_order_relaxed);
  auto limits = std::make_shared<const config::mqtt_config>(next.mqtt);
  for (auto& sh : shards_) boost::asio::post(sh->io(), [s = sh.get(), limits] { s->set_limits(limits); });
}

broker::~broker() = default;

std::shared_ptr<auth::http_hook> broker::make_hook(const auth::access_policy& policy,
                                                  std::shared_ptr<auth::http_hook> current) {
  const auto& settings = policy.hook();
  if (!settings) return nullptr;
  // The same service keeps its hook, with its connections and the answers it remembers.
  if (current && current->config() == *settings) return current;
  try {
    return std::make_shared<auth::http_hook>(hook_requests_.get_executor(), *settings, counters_.hook);
  } catch (const std::exception& e) {
    // The CA file went bad since it was checked: the hook fails closed until it is mended.
    log::mqtt().error("auth.http: {}; CONNECTs that reach the HTTP hook are refused", e.what());
    return nullptr;
  }
}

void broker::replace_access_policy(std::shared_ptr<const auth::access_policy> policy) {
  bool acl_changed = false;
  {
    std::lock_guard lock(access_mu_);
    acl_changed = !access_->same_acl(*policy);
    hook_ = make_hook(*policy, hook_);
    access_ = policy;
  }
  for (auto& sh : shards_) {
    boost::asio::post(sh->io(), [s = sh.get(), policy, acl_changed] { s->set_access_policy(policy, acl_changed); });
  }
}

std::shared_ptr<const auth::access_policy> broker::access_policy() const {
  std::lock_guard lock(access_mu_);
  return access_;
}

void broker::check_token(std::shared_ptr<const auth::access_policy> policy, std::string token,
                         std::function<void(std::variant<auth::jwt_verifier::verified, std::string>)> done) {
  boost::asio::post(password_checks_, [policy = std::move(policy), token = std::move(token), done = std::move(done)] {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    done(policy->tokens()->verify(token, now.count()));
  });
}

void broker::ask_hook(auth::hook_request request, std::function<void(auth::hook_answer)> done) {
  std::shared_ptr<auth::http_hook> hook;
  {
    std::lock_guard lock(access_mu_);
    hook = hook_;
  }
  if (!hook) {
    boost::asio::post(hook_requests_, [done = std::move(done)] {
      done(auth::hook_answer{.result = auth::hook_answer::outcome::failed, .rules = {}, .why = "no HTTP hook is running"});
    });
    return;
  }
  hook->ask(std::move(request), std::move(done));
}

void broker::check_password(std::shared_ptr<const auth::access_policy> policy, std::string account,
                            auth::stored_password stored, std::string password, std::function<void(bool matched)> done) {
  boost::asio::post(password_checks_, [policy = std::move(policy), account = std::move(account),
                                       stored = std::move(stored), password = std::move(password),
                                       done = std::move(done)] {
    // A burst of CONNECTs with the same credentials queues here before the first is checked:
    // the rest find it in the cache.
    if (policy->was_verified(account, password)) {
      done(true);
      return;
    }
    const bool matched = auth::password_matches(stored, password);
    if (matched) policy->remember(account, password);
    done(matched);
  });
}

void broker::attach_runtime_users(auth::runtime_users& users) {
  runtime_users_ = &users;
  users.set_listener([this](const std::vector<std::string>& usernames, bool everyone) {
    // Two steps: each shard gives its clients of these users their new rules (in their
    // sessions too), and once all have, each compiles again what its routes withhold: a
    // shard's routes reach sessions of every shard.
    auto changed = std::make_shared<const std::unordered_set<std::string>>(usernames.begin(), usernames.end());
    auto refreshing = std::make_shared<std::atomic<std::size_t>>(shards_.size());
    for (auto& sh : shards_) {
      boost::asio::post(sh->io(), [this, s = sh.get(), changed, everyone, refreshing] {
        s->for_each_connection([&](connection& c) { c.refresh_runtime_user(*changed, everyone); });
        if (refreshing->fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        for (auto& each : shards_) boost::asio::post(each->io(), [t = each.get()] { t->recheck_routes(); });
      });
    }
  });
}

std::size_t broker::load() {
  retained_.load(db_);
  const auto now = unix_now_ms();
  std::size_t loaded = 0, corrupt = 0;
  session::load_sessions(
      db_,
      [&](session::loaded_session&& s) {
        auto entry = sessions_.get_or_create(s.client_id);
        // A session that was online when the broker stopped counts as disconnected now.
        const auto offline_since = s.record.disconnected_unix_ms != 0 ? s.record.disconnected_unix_ms : now;
        {
          std::lock_guard lock(entry->mu);
          entry->persistent = true;
          entry->protocol_version = s.record.protocol_version;
          entry->username = s.record.username;
          if (!s.record.rules.empty())
            entry->rules = std::make_unique<const std::vector<config::acl_rule>>(std::move(s.record.rules));
          entry->expiry_interval_s = s.record.expiry_interval_s;
          entry->expires_at_ms = s.record.expiry_interval_s == 0xFFFFFFFF
                                     ? 0
                                     : offline_since + std::int64_t{s.record.expiry_interval_s} * 1000;
          entry->next_seq = s.next_seq;
          entry->queued_count = s.queued_count;
          entry->queued_bytes = s.queued_bytes;
          entry->subscriptions = s.subscriptions;
          if (s.record.pending_will) entry->pending_will = std::make_unique<core::message>(std::move(*s.record.pending_will));
          entry->will_due_ms = s.record.will_due_unix_ms;
        }
        for (const auto& sub : s.subscriptions) {
          const auto withheld = withheld_from(*access_, *entry, sub.filter);
          for (auto& sh : shards_) sh->apply_route(make_route_change(entry, sub, withheld));
        }
        const auto due = entry->pending_will ? entry->will_due_ms : entry->expires_at_ms;
        if (due != 0) schedule_session_timer(due, entry);
        ++loaded;
      },
      [&](std::string_view key) {
        ++corrupt;
        log::mqtt().error("storage: undecodable session record at key '{}'; skipped", key);
      });
  log::mqtt().info("loaded {} persistent sessions ({} corrupt records skipped), {} retained messages", loaded, corrupt,
               retained_.size());
  return loaded;
}

void broker::attach_queue_core(core::queue::service& queue_core, std::shared_ptr<const queue_tap> tap) {
  for (auto& sh : shards_) {
    sh->attach_queue_core(queue_core);
    sh->set_queue_tap(tap);
  }
}

void broker::replace_queue_tap(std::shared_ptr<const queue_tap> tap) {
  for (auto& sh : shards_) boost::asio::post(sh->io(), [s = sh.get(), tap] { s->set_queue_tap(tap); });
}

void broker::publish_from_core(core::message m, std::function<void(bool durable)> done) {
  auto& target = *shards_[next_core_publish_shard_.fetch_add(1, std::memory_order_relaxed) % shards_.size()];
  // Not passed to the bridge bindings: a message from the core going back into it could loop
  // (topic_to_mqtt feeding an mqtt_to_topic binding of the same topic).
  boost::asio::post(target.io(), [this, &target, m = std::move(m), done = std::move(done)]() mutable {
    m.publish_unix_ms = unix_now_ms();
    auto message = std::make_shared<const core::message>(std::move(m));
    counters_.messages_received[static_cast<std::size_t>(message_protocol::queue_core)][message->qos].fetch_add(
        1, std::memory_order_relaxed);
    durable_ops ops;
    if (message->retain) {
      if (retained_.set(*message, target.batch()))
        ops.added = true;
      else
        counters_.retained_rejected.fetch_add(1, std::memory_order_relaxed);
    }
    target.route(message, ops);
    if (!ops.added) {
      done(true);
      return;
    }
    // Failed: the core retries the delivery later (its retry policy).
    auto shared_done = std::make_shared<std::function<void(bool)>>(std::move(done));
    target.run_after_commit([shared_done] { (*shared_done)(true); }, [shared_done] { (*shared_done)(false); });
  });
}

void broker::start() {
  for (auto& sh : shards_) boost::asio::post(sh->io(), [s = sh.get()] { s->start_timer(); });
}

void broker::accept(std::shared_ptr<net::stream> s) {
  const auto index = net::io_pool::index_of_current_thread();
  auto& home = *shards_[index == net::io_pool::npos ? 0 : index];
  s->set_handler(std::make_unique<connection>(home, s));
}

void broker::shutdown() {
  // Logins still being checked are refused by the close below; none may finish after it.
  password_checks_.stop();
  password_checks_.join();
  hook_requests_.stop();
  hook_requests_.join();
  std::vector<std::future<void>> done;
  for (auto& sh : shards_) {
    auto promise = std::make_shared<std::promise<void>>();
    done.push_back(promise->get_future());
    boost::asio::post(sh->io(), [s = sh.get(), promise] {
      // [MQTT-3.14] v5 clients learn why: 0x8B server shutting down. Wills are published.
      s->for_each_connection([](connection& c) { c.kick(mqtt::reason_code::server_shutting_down); });
      promise->set_value();
    });
  }
  for (auto& f : done) f.wait();
  // Each shard flushes its batch at the end of the turn that kicked; wait for the commits
  // with one more round that runs after them.
  std::vector<std::future<void>> flushed;
  for (auto& sh : shards_) {
    auto promise = std::make_shared<std::promise<void>>();
    flushed.push_back(promise->get_future());
    boost::asio::post(sh->io(), [s = sh.get(), promise] { s->run_after_commit([promise] { promise->set_value(); }); });
  }
  for (auto& f : flushed) f.wait();
}

void broker::schedule_session_timer(std::int64_t due_unix_ms, const std::shared_ptr<session::session_entry>& entry) {
  std::lock_guard lock(timers_mu_);
  session_timers_.emplace(due_unix_ms, entry);
}

void broker::run_session_timers(shard& on, std::int64_t now) {
  std::vector<std::shared_ptr<session::session_entry>> due;
  {
    std::lock_guard lock(timers_mu_);
    while (!session_timers_.empty() && session_timers_.begin()->first <= now) {
      if (auto e = session_timers_.begin()->second.lock()) due.push_back(std::move(e));
      session_timers_.erase(session_timers_.begin());
    }
  }
  for (auto& entry : due) {
    std::unique_ptr<core::message> will;
    bool expired = false;
    std::vector<session::stored_subscription> unroute;
    std::int64_t next_due = 0;
    {
      std::lock_guard lock(entry->mu);
      if (entry->owner_shard >= 0 || entry->ended) continue;  // came back, or already gone
      if (entry->pending_will && entry->will_due_ms <= now) {
        will = std::move(entry->pending_will);
      }
      if (entry->expires_at_ms != 0 && entry->expires_at_ms <= now) {
        expired = true;
        entry->ended = true;
        entry->persistent = false;
        unroute = std::move(entry->subscriptions);
        entry->subscriptions.clear();
        session::erase_session(on.batch(), entry->client_id);
      } else {
        next_due = entry->expires_at_ms;
        if (will) {
          // Keep the stored record in step: the will is gone.
          session::session_record record;
          record.protocol_version = entry->protocol_version;
          record.username = entry->username;
          if (entry->rules) record.rules = *entry->rules;
          record.expiry_interval_s = entry->expiry_interval_s;
          record.disconnected_unix_ms = entry->expires_at_ms == 0
                                            ? now
                                            : entry->expires_at_ms - std::int64_t{entry->expiry_interval_s} * 1000;
          session::put_session(on.batch(), entry->client_id, record);
        }
      }
    }
    if (expired) {
      counters_.sessions_expired.fetch_add(1, std::memory_order_relaxed);
      sessions_.erase(entry);
      for (auto& sub : unroute) on.remove_route(entry.get(), sub.filter);
      device_event e;
      e.what = device_event::kind::session_expired;
      e.client_id = entry->client_id;
      e.time_unix_ms = now;
      on.record_event(e);
    } else if (next_due != 0 && will) {
      schedule_session_timer(next_due, entry);
    }
    // [MQTT-3.1.3-9] Published at the earlier of the will delay and the session's end.
    if (will) on.publish_will(std::move(*will), entry->client_id, now);
  }
}

void broker::check_memory(std::int64_t now) {
  if (now - last_memory_check_unix_ms_ < 1000) return;
  last_memory_check_unix_ms_ = now;
  const auto resident = resident_memory_bytes();
  const auto watermark = memory_watermark_bytes_.load(std::memory_order_relaxed);
  const bool over = resident > watermark;
  if (over == over_memory_watermark_.load(std::memory_order_relaxed)) return;
  over_memory_watermark_.store(over, std::memory_order_relaxed);
  if (over)
    log::mqtt().warn("resident memory {} bytes is above mqtt.memory_watermark_bytes ({}): QoS 0 messages to clients "
                     "with output waiting are dropped (counted)",
                     resident, watermark);
  else
    log::mqtt().info("resident memory {} bytes is below mqtt.memory_watermark_bytes again", resident);
}

void broker::erase_expired_retained(shard& on, std::int64_t now) {
  // O(retained count): once a minute keeps expired messages from holding their slots long.
  constexpr std::int64_t period_ms = 60'000;
  if (now - last_retained_sweep_unix_ms_ < period_ms) return;
  last_retained_sweep_unix_ms_ = now;
  if (const auto erased = retained_.erase_expired(now, on.batch()); erased != 0)
    log::mqtt().debug("erased {} expired retained messages", erased);
}

void broker::publish_sys(shard& on, std::int64_t now) {
  const auto interval_s = on.limits().sys_interval_s;
  if (interval_s == 0) return;
  if (last_sys_unix_ms_ != 0 && now - last_sys_unix_ms_ < std::int64_t{interval_s} * 1000) return;
  last_sys_unix_ms_ = now;
  const auto uptime_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_).count();
  auto load = [](const std::atomic<std::uint64_t>& c) { return std::to_string(c.load(std::memory_order_relaxed)); };
  auto sum = [](const std::array<broker_counters::by_qos, 4>& by_protocol) {
    std::uint64_t total = 0;
    for (const auto& by_qos : by_protocol)
      for (const auto& c : by_qos) total += c.load(std::memory_order_relaxed);
    return std::to_string(total);
  };
  const std::pair<const char*, std::string> values[] = {
      {"$SYS/broker/version", "wharf " WHARF_VERSION},
      {"$SYS/broker/uptime", std::to_string(uptime_s) + " seconds"},
      {"$SYS/broker/clients/connected", load(counters_.clients_connected)},
      {"$SYS/broker/clients/total", std::to_string(sessions_.size())},
      {"$SYS/broker/messages/received", sum(counters_.messages_received)},
      {"$SYS/broker/messages/sent", sum(counters_.messages_sent)},
      {"$SYS/broker/bytes/received", load(counters_.bytes_received)},
      {"$SYS/broker/bytes/sent", load(counters_.bytes_sent)},
      {"$SYS/broker/retained messages/count", std::to_string(retained_.size())},
      {"$SYS/broker/messages/dropped", std::to_string(counters_.dropped_queue_full.load() + counters_.dropped_expired.load() +
                                                      counters_.dropped_too_large.load() +
                                                      counters_.dropped_slow_client.load() +
                                                      counters_.dropped_memory_watermark.load())},
      {"$SYS/broker/bridge/refused", load(counters_.bridge_refused)},
      {"$SYS/broker/bridge/events failed", load(counters_.bridge_events_failed)},
      {"$SYS/broker/clients/auth failures", load(counters_.auth_failures)},
      {"$SYS/broker/acl/denied publishes", load(counters_.acl_denied_publishes)},
      {"$SYS/broker/acl/denied subscriptions", load(counters_.acl_denied_subscriptions)},
      {"$SYS/broker/acl/withheld deliveries", load(counters_.acl_withheld)},
      {"$SYS/broker/clients/refused", load(counters_.connections_refused)},
      {"$SYS/broker/clients/banned", load(counters_.clients_banned)},
      {"$SYS/broker/clients/rate limited", load(counters_.rate_limited)},
  };
  // $SYS values are retained for late subscribers but not persisted: they describe this run.
  core::write_batch not_persisted;
  for (const auto& [topic, value] : values) {
    auto m = std::make_shared<core::message>();
    m->topic = topic;
    m->payload = value;
    m->retain = true;
    m->publish_unix_ms = now;
    retained_.set(*m, not_persisted);
    durable_ops ops;
    on.route(m, ops);
  }
}

}  // namespace wharf::gateway
