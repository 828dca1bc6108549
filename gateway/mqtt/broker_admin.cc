// The broker's side of the admin API: listing and inspecting sessions, ending connections,
// deleting sessions. A session's registry entry says where it lives; what only its live
// connection knows (peer, window) is read on that connection's shard, by a post there, so
// nothing here touches another thread's state.
#include <algorithm>
#include <chrono>
#include <iterator>
#include <tuple>
#include <memory>
#include <mutex>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "core/queue/tenant.h"
#include "gateway/mqtt/broker.h"
#include "gateway/mqtt/connection.h"
#include "gateway/mqtt/shard.h"

namespace wharf::gateway {
namespace {

// What the registry entry says (the offline view; an online session's live fields are
// filled by its connection).
session_view view_of_entry(const session::session_entry& entry, bool with_subscriptions, int& owner_shard) {
  session_view v;
  v.client_id = entry.client_id;
  std::lock_guard lock(entry.mu);
  owner_shard = entry.owner_shard;
  v.online = entry.owner_shard >= 0;
  v.persistent = entry.persistent;
  v.protocol_version = entry.protocol_version;
  v.expiry_interval_s = entry.expiry_interval_s;
  v.expires_at_ms = v.online ? 0 : entry.expires_at_ms;
  v.subscription_count = entry.subscriptions.size();
  v.queued = entry.queued_count;
  v.username = entry.username;
  if (with_subscriptions) v.subscriptions = entry.subscriptions;
  return v;
}

}  // namespace

void connection::describe(session_view& view, bool with_subscriptions) const {
  view.online = true;
  view.protocol_version = static_cast<std::uint8_t>(machine_.version());
  view.persistent = machine_.session_expiry_s() > 0;
  view.expiry_interval_s = machine_.session_expiry_s();
  view.username = username_;
  const auto& peer = stream_->peer();
  view.peer = peer.remote_address.find(':') == std::string::npos
                  ? fmt::format("{}:{}", peer.remote_address, peer.remote_port)
                  : fmt::format("[{}]:{}", peer.remote_address, peer.remote_port);
  view.connected_at_ms = machine_.started_ms();
  view.keep_alive_s = machine_.keep_alive_s();
  view.inflight = window_.inflight();
  view.queued = window_.waiting();
  view.subscription_count = subscriptions_.size();
  if (with_subscriptions) view.subscriptions = subscriptions_;
}

void broker::list_sessions(std::optional<bool> online, const std::optional<std::string>& tenant, std::size_t offset,
                           std::size_t limit, std::function<void(std::vector<session_view>, std::size_t)> done) {
  std::vector<std::shared_ptr<session::session_entry>> all;
  all.reserve(sessions_.size());
  sessions_.for_each([&](const std::shared_ptr<session::session_entry>& e) {
    if (tenant && core::queue::mqtt_tenant_of(e->client_id) != *tenant) return;
    if (online) {
      std::lock_guard lock(e->mu);
      if ((e->owner_shard >= 0) != *online) return;
    }
    all.push_back(e);
  });
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a->client_id < b->client_id; });
  const auto total = all.size();
  const auto first = std::min(offset, total);
  const auto last = first + std::min(limit, total - first);

  struct gathering {
    std::mutex mu;
    std::vector<session_view> page;
    std::size_t shards_pending = 0;
    std::size_t total = 0;
    std::function<void(std::vector<session_view>, std::size_t)> done;
  };
  auto g = std::make_shared<gathering>();
  g->total = total;
  g->done = std::move(done);
  // Online sessions of the page, by the shard that holds their connection.
  std::vector<std::vector<std::pair<std::size_t, std::shared_ptr<session::session_entry>>>> by_shard(shards_.size());
  for (auto i = first; i < last; ++i) {
    int owner = -1;
    g->page.push_back(view_of_entry(*all[i], false, owner));
    if (owner >= 0) by_shard[static_cast<std::size_t>(owner)].emplace_back(g->page.size() - 1, all[i]);
  }
  for (const auto& online : by_shard) g->shards_pending += online.empty() ? 0 : 1;
  if (g->shards_pending == 0) {
    g->done(std::move(g->page), total);
    return;
  }
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    if (by_shard[s].empty()) continue;
    boost::asio::post(shards_[s]->io(), [g, sh = shards_[s].get(), online = std::move(by_shard[s])] {
      std::unique_lock lock(g->mu);
      // A session that went offline (or moved) since keeps the entry's view.
      for (const auto& [slot, entry] : online)
        if (auto* c = sh->live(entry.get())) c->describe(g->page[slot], false);
      if (--g->shards_pending != 0) return;
      lock.unlock();
      g->done(std::move(g->page), g->total);
    });
  }
}

void broker::list_subscriptions(std::optional<std::string> client_id, const std::optional<std::string>& tenant,
                                std::size_t offset, std::size_t limit,
                                std::function<void(std::vector<subscription_view>, std::size_t)> done) {
  std::vector<subscription_view> all;
  auto take = [&all, &tenant](const session::session_entry& e) {
    if (tenant && core::queue::mqtt_tenant_of(e.client_id) != *tenant) return;
    std::lock_guard lock(e.mu);
    for (const auto& sub : e.subscriptions) all.push_back({e.client_id, sub});
  };
  if (client_id) {
    if (const auto entry = sessions_.find(*client_id)) take(*entry);
  } else {
    sessions_.for_each([&](const std::shared_ptr<session::session_entry>& e) { take(*e); });
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return std::tie(a.client_id, a.subscription.filter) < std::tie(b.client_id, b.subscription.filter);
  });
  const auto total = all.size();
  const auto first = std::min(offset, total);
  const auto last = first + std::min(limit, total - first);
  done(std::vector<subscription_view>(std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(first)),
                                      std::make_move_iterator(all.begin() + static_cast<std::ptrdiff_t>(last))),
       total);
}

void broker::list_retained(const std::string& filter, std::size_t offset, std::size_t limit,
                           std::function<void(std::vector<core::message>, std::size_t)> done) {
  // Topics only while sorting (a message is valid only under the store's lock, inside
  // match()); then the page's messages, each looked up again (one gone since is left out).
  const auto now = unix_now_ms();
  std::vector<std::string> topics;
  retained_.match(filter, now, [&topics](const core::message& m) { topics.push_back(m.topic); });
  std::sort(topics.begin(), topics.end());
  const auto total = topics.size();
  const auto first = std::min(offset, total);
  const auto last = first + std::min(limit, total - first);
  std::vector<core::message> page;
  for (auto i = first; i < last; ++i)
    retained_.match(topics[i], now, [&page](const core::message& m) { page.push_back(m); });
  done(std::move(page), total);
}

std::int64_t broker::uptime_s() const {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_).count();
}

void broker::inspect_session(std::string client_id, std::function<void(std::optional<session_view>)> done) {
  auto entry = sessions_.find(client_id);
  if (!entry) {
    done(std::nullopt);
    return;
  }
  int owner = -1;
  auto view = view_of_entry(*entry, true, owner);
  if (owner < 0) {
    done(std::move(view));
    return;
  }
  boost::asio::post(shards_[static_cast<std::size_t>(owner)]->io(),
                    [sh = shards_[static_cast<std::size_t>(owner)].get(), entry, view = std::move(view),
                     done = std::move(done)]() mutable {
                      if (auto* c = sh->live(entry.get())) c->describe(view, true);
                      done(std::move(view));
                    });
}

void broker::disconnect_client(std::string client_id, std::function<void(admin_outcome)> done) {
  auto entry = sessions_.find(client_id);
  int owner = -1;
  if (entry) {
    std::lock_guard lock(entry->mu);
    owner = entry->owner_shard;
  }
  if (owner < 0) {
    done(admin_outcome::not_found);
    return;
  }
  boost::asio::post(shards_[static_cast<std::size_t>(owner)]->io(),
                    [sh = shards_[static_cast<std::size_t>(owner)].get(), entry, done = std::move(done)] {
                      auto* c = sh->live(entry.get());
                      if (c == nullptr) {
                        done(admin_outcome::not_found);  // gone (or moved) meanwhile
                        return;
                      }
                      c->kick(mqtt::reason_code::administrative_action);
                      done(admin_outcome::done);
                    });
}

void broker::delete_session(std::string client_id, std::function<void(admin_outcome)> done) {
  auto entry = sessions_.find(client_id);
  if (!entry) {
    done(admin_outcome::not_found);
    return;
  }
  int owner = -1;
  {
    std::lock_guard lock(entry->mu);
    owner = entry->owner_shard;
  }
  // On the connection's shard (if any) the connection ends first, which leaves the session
  // offline (or ended, when it was not persistent); shard 0 otherwise.
  auto* on = shards_[static_cast<std::size_t>(std::max(owner, 0))].get();
  boost::asio::post(on->io(), [this, on, entry, done = std::move(done)]() mutable {
    if (auto* c = on->live(entry.get())) c->kick(mqtt::reason_code::administrative_action);
    discard_offline_session(*on, entry, std::move(done));
  });
}

void broker::discard_offline_session(shard& on, const std::shared_ptr<session::session_entry>& entry,
                                     std::function<void(admin_outcome)> done) {
  std::vector<session::stored_subscription> unroute;
  {
    std::lock_guard lock(entry->mu);
    if (entry->ended) {
      done(admin_outcome::done);  // it ended with its connection
      return;
    }
    if (entry->owner_shard >= 0) {
      done(admin_outcome::reconnected);
      return;
    }
    entry->ended = true;
    entry->persistent = false;
    entry->pending_will.reset();  // a deleted session's delayed will is discarded with it
    unroute = std::move(entry->subscriptions);
    entry->subscriptions.clear();
    session::erase_session(on.batch(), entry->client_id);
  }
  sessions_.erase(entry);
  for (auto& sub : unroute) on.remove_route(entry.get(), sub.filter);
  auto shared_done = std::make_shared<std::function<void(admin_outcome)>>(std::move(done));
  on.run_after_commit([shared_done] { (*shared_done)(admin_outcome::done); },
                      [shared_done] { (*shared_done)(admin_outcome::storage_failed); });
}

}  // namespace wharf::gateway
