#include "gateway/admin/admin_api.h"

#include <algorithm>
#include <limits>
#include <memory>

#include <boost/url/parse_query.hpp>
#include <fmt/format.h>

#include "core/queue/tenant.h"
#include "net/listener.h"
#include "tls/crypto.h"

namespace wharf::gateway::admin {
namespace {

constexpr const char* prometheus_type = "text/plain; version=0.0.4; charset=utf-8";

// /readyz: a member this many log entries or fewer behind its leader's commit index counts
// as caught up (entries are turns of commands; a follower under load trails by a few).
constexpr std::uint64_t catch_up_slack = 1000;

http::http_response text(unsigned status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body)};
}

http::http_response unauthorized() {
  auto r = text(401, "credentials required: HTTP Basic, a user named by this admin listener's users\n");
  r.www_authenticate = "Basic realm=\"wharf admin\", charset=\"UTF-8\"";
  return r;
}

// A label value in the exposition format: backslash, quote and newline escaped.
std::string label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Writes metric families in the Prometheus text format: HELP and TYPE once per family,
// then its samples.
class exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  // `labels` is the inside of the braces ("qos=\"1\""), or empty.
  void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    if (labels.empty())
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    else
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
  }
  void one(std::string_view name, std::string_view type, std::string_view help, std::uint64_t value) {
    family(name, type, help);
    sample(name, {}, value);
  }
  // A histogram from per-bucket counts (bucket i up to bounds[i], the last one above them
  // all); `scale` turns a bound into the unit of the metric's name.
  template <std::size_t N>
  void histogram(std::string_view name, std::string_view help, const std::array<std::uint64_t, N>& bounds,
                 const std::array<std::uint64_t, N + 1>& buckets, double sum, double scale) {
    family(name, "histogram", help);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < N; ++i) {
      cumulative += buckets[i];
      fmt::format_to(std::back_inserter(out_), "{}_bucket{{le=\"{}\"}} {}\n", name, static_cast<double>(bounds[i]) * scale,
                     cumulative);
    }
    cumulative += buckets[N];
    fmt::format_to(std::back_inserter(out_), "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cumulative,
                   name, sum, name, cumulative);
  }
  [[nodiscard]] std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::uint64_t load(const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); }

void write_mqtt(exposition& x, const broker& b) {
  const auto& c = b.counters();
  const auto online = load(c.clients_connected);
  x.one("wharf_mqtt_connections", "gauge", "MQTT clients connected now.", online);
  x.one("wharf_mqtt_connections_total", "counter", "MQTT connections accepted (CONNACK 0) since start.",
        load(c.clients_total));
  x.family("wharf_mqtt_sessions", "gauge", "MQTT sessions by state: online (connected) or offline (persistent, kept).");
  const auto sessions = b.session_count();
  x.sample("wharf_mqtt_sessions", "state=\"online\"", online);
  x.sample("wharf_mqtt_sessions", "state=\"offline\"", sessions > online ? sessions - online : 0);
  const auto by_protocol_and_qos = [&x](std::string_view name, const std::array<broker_counters::by_qos, 4>& counts,
                                        std::size_t first_protocol) {
    for (std::size_t p = first_protocol; p < counts.size(); ++p)
      for (std::size_t q = 0; q < 3; ++q)
        x.sample(name, fmt::format("protocol=\"{}\",qos=\"{}\"", message_protocol_names[p], q), load(counts[p][q]));
  };
  x.family("wharf_mqtt_messages_received_total", "counter",
           "PUBLISH packets received, by protocol (the client's MQTT version, or queue: from the queue core) and QoS.");
  by_protocol_and_qos("wharf_mqtt_messages_received_total", c.messages_received, 0);
  x.family("wharf_mqtt_messages_sent_total", "counter",
           "PUBLISH packets sent to subscribers, by protocol (the subscriber's MQTT version) and QoS.");
  by_protocol_and_qos("wharf_mqtt_messages_sent_total", c.messages_sent, 1);
  x.one("wharf_mqtt_received_bytes_total", "counter", "Bytes read from MQTT clients.", load(c.bytes_received));
  x.one("wharf_mqtt_sent_bytes_total", "counter", "Bytes written to MQTT clients.", load(c.bytes_sent));
  x.family("wharf_mqtt_messages_dropped_total", "counter", "Messages not delivered, by reason.");
  const std::pair<const char*, const std::atomic<std::uint64_t>*> drops[] = {
      {"queue_full", &c.dropped_queue_full},       {"offline_qos0", &c.dropped_offline_qos0},
      {"expired", &c.dropped_expired},             {"too_large", &c.dropped_too_large},
      {"slow_client", &c.dropped_slow_client},     {"memory_watermark", &c.dropped_memory_watermark},
      {"acl_denied", &c.acl_denied_publishes},
      {"retained_store_full", &c.retained_rejected}};
  for (const auto& [reason, counter] : drops)
    x.sample("wharf_mqtt_messages_dropped_total", fmt::format("reason=\"{}\"", reason), load(*counter));
  x.one("wharf_mqtt_retained_messages", "gauge", "Retained messages stored.", b.retained_count());
  x.one("wharf_mqtt_auth_failures_total", "counter",
        "CONNECTs refused for their credentials, for anonymity, or for a will the ACL denies.", load(c.auth_failures));
  x.family("wharf_mqtt_connects_refused_total", "counter",
           "CONNECTs refused by overload protection (connection limits and rates, a flapping client id's ban) or "
           "because the HTTP authentication hook failed or was busy.");
  x.sample("wharf_mqtt_connects_refused_total", "reason=\"limits\"", load(c.connections_refused));
  x.sample("wharf_mqtt_connects_refused_total", "reason=\"banned\"", load(c.clients_banned));
  x.sample("wharf_mqtt_connects_refused_total", "reason=\"auth_unavailable\"", load(c.auth_unavailable));
  x.one("wharf_mqtt_auth_hook_requests_total", "counter", "Requests sent to the HTTP authentication hook.",
        load(c.hook.requests));
  x.one("wharf_mqtt_auth_hook_cache_hits_total", "counter", "CONNECTs the HTTP hook answered from its cache.",
        load(c.hook.cache_hits));
  x.one("wharf_mqtt_auth_hook_failures_total", "counter",
        "HTTP hook requests with no usable answer (down, timed out, malformed).", load(c.hook.failures));
  x.one("wharf_mqtt_auth_hook_busy_total", "counter",
        "CONNECTs refused because auth.http.max_queued were already waiting for the HTTP hook.", load(c.hook.busy));
  x.one("wharf_mqtt_rate_limited_total", "counter", "Times a client's reading paused for its publish or byte rate.",
        load(c.rate_limited));
  x.one("wharf_mqtt_subscriptions_denied_total", "counter", "Subscriptions the ACL refused.",
        load(c.acl_denied_subscriptions));
  x.one("wharf_mqtt_acl_withheld_total", "counter",
        "Messages not sent to a granted wildcard subscription because the ACL denies their topic to its client.",
        load(c.acl_withheld));
  x.one("wharf_mqtt_closes_cut_total", "counter",
        "Connections the broker closed whose peer did not read what was sent, or did not close after the "
        "broker's FIN, in time.",
        load(c.closes_cut) + net::tcp_drains_cut());
  x.one("wharf_mqtt_protocol_errors_total", "counter", "Connections closed for protocol violations.",
        load(c.protocol_errors));
  x.one("wharf_mqtt_wills_published_total", "counter", "Will messages published.", load(c.wills_published));
  x.one("wharf_mqtt_sessions_expired_total", "counter", "Sessions ended by their expiry interval.",
        load(c.sessions_expired));
  x.one("wharf_mqtt_storage_errors_total", "counter", "Session or retained writes that failed.", load(c.storage_errors));
  x.one("wharf_bridge_refused_total", "counter", "Bridged publishes the queue core refused.", load(c.bridge_refused));
  x.one("wharf_bridge_events_failed_total", "counter", "Device events the events queue refused.",
        load(c.bridge_events_failed));
}

void write_uplink(exposition& x, const bridge::uplink_counters& c) {
  x.one("wharf_bridge_uplink_connected", "gauge", "1 while the uplink is connected to its remote broker.",
        c.connected.load(std::memory_order_relaxed) ? 1 : 0);
  x.one("wharf_bridge_uplink_connects_total", "counter", "Connections the uplink made.", load(c.connects));
  x.one("wharf_bridge_uplink_connect_failures_total", "counter", "Connection attempts of the uplink that failed.",
        load(c.connect_failures));
  x.family("wharf_bridge_uplink_messages_total", "counter",
           "Messages the uplink carried: sent up (acknowledged by the remote), received down, dropped (no out "
           "topic maps them any more).");
  x.sample("wharf_bridge_uplink_messages_total", "direction=\"up\"", load(c.sent));
  x.sample("wharf_bridge_uplink_messages_total", "direction=\"down\"", load(c.received));
  x.sample("wharf_bridge_uplink_messages_total", "direction=\"dropped\"", load(c.dropped));
}

void write_listeners(exposition& x, const std::vector<listener_counters>& listeners) {
  x.family("wharf_listener_accepted_total", "counter", "Connections accepted, by listener.");
  for (const auto& l : listeners)
    x.sample("wharf_listener_accepted_total",
             fmt::format("listener=\"{}\",type=\"{}\"", label_value(l.bind), l.type), l.accepted);
  x.family("wharf_listener_handshake_failures_total", "counter",
           "TLS handshakes (and WebSocket upgrades) that failed or timed out, by listener.");
  for (const auto& l : listeners)
    x.sample("wharf_listener_handshake_failures_total",
             fmt::format("listener=\"{}\",type=\"{}\"", label_value(l.bind), l.type), l.handshake_failures);
  x.family("wharf_listener_proxy_headers_total", "counter",
           "PROXY protocol headers taken from trusted load balancers, by listener (proxy_protocol).");
  for (const auto& l : listeners)
    x.sample("wharf_listener_proxy_headers_total",
             fmt::format("listener=\"{}\",type=\"{}\"", label_value(l.bind), l.type), l.proxy_headers);
  x.family("wharf_listener_proxy_refused_total", "counter",
           "Connections closed for a PROXY header from an untrusted source, a bad one, or none from a trusted "
           "source, by listener.");
  for (const auto& l : listeners)
    x.sample("wharf_listener_proxy_refused_total",
             fmt::format("listener=\"{}\",type=\"{}\"", label_value(l.bind), l.type), l.proxy_refused);
  // MQTT connections are wharf_mqtt_connections (counted once a CONNECT is admitted).
  std::uint64_t queue_api_open = 0;
  for (const auto& l : listeners)
    if (l.type == "queue-api") queue_api_open += l.connections_open;
  x.one("wharf_cmq_connections", "gauge", "Queue API connections open now, over every queue-api listener.",
        queue_api_open);
}

void write_queue_api(exposition& x, const http::cmq_api_stats& s) {
  x.one("wharf_cmq_requests_total", "counter", "Queue API requests.", s.requests);
  x.one("wharf_cmq_auth_failures_total", "counter", "Queue API requests refused for their signature.",
        s.auth_failures);
  x.one("wharf_cmq_scope_refusals_total", "counter", "Queue API requests outside their credential's scopes (code 4100).",
        s.scope_refusals);
  x.one("wharf_cmq_bad_requests_total", "counter", "Queue API requests refused before the core (code 4000).",
        s.bad_requests);
  x.one("wharf_cmq_rate_limited_total", "counter", "Queue API requests over max_requests_per_second (code 4420).",
        s.rate_limited);
}

void write_core(exposition& x, const core::queue::service_stats& s) {
  x.one("wharf_queue_commands_total", "counter", "Commands applied by the queue core.", s.commands);
  x.one("wharf_queue_long_polls_waiting", "gauge", "Receives waiting for a message now.", s.long_polls_waiting);
  x.one("wharf_queue_long_polls_refused_total", "counter", "Receives refused at queue_api.max_long_polls.",
        s.long_polls_refused);
  x.one("wharf_queue_pushes_in_flight", "gauge", "Topic pushes in flight now.", s.pushes_in_flight);
  x.one("wharf_queue_pushes_given_up_total", "counter", "Pushes dropped after their retry policy.",
        s.engine.pushes_given_up);
  x.one("wharf_queue_messages_expired_total", "counter", "Queue messages removed by retention.",
        s.engine.messages_expired);
  x.one("wharf_queue_messages_dead_lettered_total", "counter", "Queue messages moved to a dead-letter queue.",
        s.engine.messages_dead_lettered);
  x.one("wharf_queue_group_heads_dead_lettered_total", "counter",
        "Dead-lettered messages that headed their group in an ordered queue (each let its group go on).",
        s.engine.group_heads_dead_lettered);
  x.one("wharf_queue_tenant_quota_refusals_total", "counter",
        "Requests (and topic copies into queues) refused by a tenant's quota: queues, topics, stored bytes.",
        s.engine.tenant_quota_refusals);
  x.one("wharf_queue_storage_failures_total", "counter", "Queue core commits that failed.", s.storage_failures);
  x.one("wharf_queue_traced_messages", "gauge", "Messages whose history the message trace holds now.",
        s.traced_messages);
  x.one("wharf_queue_traces_evicted_total", "counter",
        "Message histories dropped before their retention for queue.message_trace.max_messages.", s.traces_evicted);
  // The Raft group the queue core runs in (a group of one without a cluster section).
  const auto& r = s.replication;
  x.family("wharf_cluster_role", "gauge", "This member's role in the queue core's group: 1 for the one it has.");
  for (const auto role : {core::replication::role::follower, core::replication::role::candidate,
                          core::replication::role::leader, core::replication::role::unavailable})
    x.sample("wharf_cluster_role", fmt::format("role=\"{}\"", core::replication::to_string(role)),
             r.current == role ? 1 : 0);
  x.one("wharf_cluster_leader", "gauge", "The node id of the leader this member knows (0: none).", r.leader_id);
  x.one("wharf_cluster_term", "gauge", "The Raft term this member is in.", r.term);
  x.one("wharf_cluster_commit_index", "gauge", "The last log index this member knows committed.", r.commit_index);
  x.one("wharf_cluster_applied_index", "gauge", "The last log index this member applied.", r.applied_index);
  x.one("wharf_cluster_voters", "gauge", "Voters in the group's configuration.", r.voters.size());
  x.family("wharf_cluster_member_lag", "gauge",
           "On the leader: log entries each other member lacks of the leader's log (its match index behind "
           "the last index).");
  for (const auto& p : r.progress)
    x.sample("wharf_cluster_member_lag", fmt::format("member=\"{}\"", p.id),
             r.last_index > p.match_index ? r.last_index - p.match_index : 0);
  x.one("wharf_cluster_elections_total", "counter", "Times this member stood for election (pre-vote rounds included).",
        s.elections_started);
  x.one("wharf_cluster_entries_proposed_total", "counter", "Log entries this member proposed as leader.",
        s.entries_proposed);
  x.one("wharf_cluster_commands_lost_total", "counter",
        "Commands this member proposed that another leader's entries replaced (their callers got 6000).",
        s.commands_lost);
  x.one("wharf_cluster_snapshots_sent_total", "counter",
        "States this member sent whole, as leader, to members behind its trimmed log.", s.snapshots.sent);
  x.one("wharf_cluster_snapshots_received_total", "counter", "States this member received from a leader and installed.",
        s.snapshots.received);
  x.one("wharf_cluster_snapshots_abandoned_total", "counter",
        "Snapshot transfers this member dropped as leader (stalled, refused, or leadership lost); each starts again.",
        s.snapshots.abandoned);
  x.one("wharf_cluster_snapshot_sent_bytes_total", "counter", "Bytes of state (keys and values) sent in snapshots.",
        s.snapshots.bytes_sent);
  x.one("wharf_cluster_snapshot_received_bytes_total", "counter", "Bytes of state received in snapshots.",
        s.snapshots.bytes_received);
  x.one("wharf_cluster_peer_tls_refused_total", "counter",
        "Peer links that failed the TLS handshake, accepted or opened (no certificate the cluster CA signed).",
        s.peer_tls_refused);
}

// The label of a tenant ("" is the default tenant).
std::string tenant_label(std::string_view tenant) {
  return label_value(tenant.empty() ? core::queue::default_tenant_name : tenant);
}

// Each tenant's queues, topics and stored bytes (from the core) and its queue API requests.
void write_tenants(exposition& x, const std::vector<std::string>& tenants, const core::queue::engine& engine,
                   const std::vector<http::cmq_tenant_stats>& requests) {
  std::vector<std::pair<std::string, core::queue::tenant_usage>> usage;
  for (const auto& t : tenants) usage.emplace_back(t, engine.usage(t));
  x.family("wharf_tenant_queues", "gauge", "Queues of each tenant.");
  for (const auto& [t, u] : usage) x.sample("wharf_tenant_queues", fmt::format("tenant=\"{}\"", tenant_label(t)), u.queues);
  x.family("wharf_tenant_topics", "gauge", "Topics of each tenant.");
  for (const auto& [t, u] : usage) x.sample("wharf_tenant_topics", fmt::format("tenant=\"{}\"", tenant_label(t)), u.topics);
  x.family("wharf_tenant_stored_bytes", "gauge", "Bodies of each tenant's messages kept (its quotas.stored_bytes).");
  for (const auto& [t, u] : usage)
    x.sample("wharf_tenant_stored_bytes", fmt::format("tenant=\"{}\"", tenant_label(t)), u.stored_bytes);
  x.family("wharf_tenant_cmq_requests_total", "counter", "Queue API requests of each tenant (authenticated).");
  for (const auto& r : requests)
    x.sample("wharf_tenant_cmq_requests_total", fmt::format("tenant=\"{}\"", tenant_label(r.tenant)), r.requests);
  x.family("wharf_tenant_cmq_rate_limited_total", "counter",
           "Queue API requests of each tenant over its quotas.requests_per_second (code 4420).");
  for (const auto& r : requests)
    x.sample("wharf_tenant_cmq_rate_limited_total", fmt::format("tenant=\"{}\"", tenant_label(r.tenant)),
             r.rate_limited);
}

void write_queues(exposition& x, const std::vector<core::queue::queue_info>& queues) {
  x.family("wharf_queue_messages", "gauge",
           "Messages in each queue: visible, inflight (received, invisible) and delayed.");
  for (const auto& q : queues) {
    // The queue's engine name ("tenant:name" for a tenant's) and its tenant.
    const auto labels = fmt::format("queue=\"{}\",tenant=\"{}\"", label_value(q.name),
                                    tenant_label(core::queue::tenant_of(q.name)));
    x.sample("wharf_queue_messages", fmt::format("{},state=\"visible\"", labels), q.counts.active);
    x.sample("wharf_queue_messages", fmt::format("{},state=\"inflight\"", labels), q.counts.inactive);
    x.sample("wharf_queue_messages", fmt::format("{},state=\"delayed\"", labels), q.counts.delayed);
  }
}

void write_storage(exposition& x, const core::storage_stats& s) {
  x.histogram("wharf_storage_sync_seconds", "Time of each group commit's durable write (its fsync).",
              core::sync_latency_bounds_us, s.sync_latency_buckets, static_cast<double>(s.sync_time_us_total) / 1e6,
              1e-6);
  x.histogram("wharf_storage_group_commit_batches", "Writers' batches that shared each group commit.",
              core::group_size_bounds, s.group_size_buckets, static_cast<double>(s.batches_committed), 1.0);
  x.one("wharf_storage_refused_low_disk_total", "counter", "Group commits refused for min_free_disk_bytes.",
        s.refused_low_disk);
}

// "user:password" from an "Authorization: Basic ..." header.
std::optional<std::pair<std::string, std::string>> basic_credentials(std::string_view header) {
  constexpr std::string_view scheme = "Basic ";
  if (header.size() < scheme.size() || !std::equal(scheme.begin(), scheme.end(), header.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      }))
    return std::nullopt;
  header.remove_prefix(scheme.size());
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  const auto decoded = tls::base64_decode(header);
  if (!decoded) return std::nullopt;
  const std::string text(decoded->begin(), decoded->end());
  const auto colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::pair(text.substr(0, colon), text.substr(colon + 1));
}

}  // namespace

listener_users::listener_users(std::vector<std::string> names)
    : names_(std::make_shared<const std::vector<std::string>>(std::move(names))) {}

void listener_users::replace(std::vector<std::string> names) {
  names_.store(std::make_shared<const std::vector<std::string>>(std::move(names)));
}

bool listener_users::names(std::string_view user) const {
  const auto list = names_.load();
  return std::find(list->begin(), list->end(), user) != list->end();
}

admin_api::admin_api(admin_sources sources) : sources_(std::move(sources)) {}

void admin_api::handle(http::http_request request, http::respond_fn respond, const listener_users& allowed) {
  const std::string_view target = request.target;
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.starts_with("/api/")) {
    auto shared = std::make_shared<http::http_request>(std::move(request));
    authenticated(*shared, allowed, std::move(respond),
                  [this, shared](http::respond_fn answer) { serve_api(*shared, std::move(answer)); });
    return;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    respond(text(405, "only GET is served here\n"));
    return;
  }
  if (path == "/healthz") {
    respond(text(200, "ok\n"));
    return;
  }
  if (path == "/readyz") {
    // Serving, and the queue core runs (its store never failed), knows its leader, is one of
    // its group's members, and has applied what it knows committed, within catch_up_slack
    // of the leader's commit index (a node catching up after a restart, or a new node waiting
    // for its snapshot, answers 503 until it has; a healthy follower under load trails by a
    // round trip).
    if (!ready_.load(std::memory_order_relaxed)) return respond(text(503, "not ready\n"));
    const auto core_stats = sources_.queue_core.stats();
    if (core_stats.storage_failures > 0)
      return respond(text(503, "not ready: the queue core stopped, its store failed (see the log)\n"));
    const auto& r = core_stats.replication;
    if (r.leader_id == 0) return respond(text(503, "not ready: the queue core has no leader\n"));
    if (std::none_of(r.configuration.begin(), r.configuration.end(), [&](const auto& m) { return m.id == r.id; }))
      return respond(text(503, "not ready: the queue core has not received its group's state yet\n"));
    if (r.applied_index < r.commit_index || r.applied_index + catch_up_slack < r.leader_commit)
      return respond(text(503, "not ready: the queue core is catching up\n"));
    respond(text(200, "ready\n"));
    return;
  }
  if (path != "/metrics") {
    respond(text(404, "not found; served here: /healthz, /readyz, /metrics, /api/v1/ (docs/ADMIN.md)\n"));
    return;
  }
  // /metrics?tenant=NAME: only that tenant's series ("default": the default tenant's).
  std::optional<std::string> tenant;
  if (const auto query = target.find('?'); query != std::string_view::npos) {
    auto params = boost::urls::parse_query(target.substr(query + 1));
    if (params) {
      for (auto p : *params) {
        if (p.key == "tenant") tenant = p.has_value ? std::string(p.value) : std::string();
      }
    }
  }
  if (tenant) {
    if (*tenant == core::queue::default_tenant_name) {
      tenant->clear();
    } else if (!core::queue::is_valid_tenant_name(*tenant)) {
      respond(text(400, fmt::format("parameter 'tenant' must be a tenant's name or 'default', got '{}'\n", *tenant)));
      return;
    }
  }
  authenticated(request, allowed, std::move(respond), [this, tenant](http::respond_fn answer) {
    render_metrics(tenant, [answer = std::move(answer)](std::string body) { answer({200, prometheus_type, std::move(body)}); });
  });
}

void admin_api::authenticated(const http::http_request& request, const listener_users& allowed,
                              http::respond_fn respond, std::function<void(http::respond_fn)> then) {
  auto credentials = basic_credentials(request.authorization);
  if (!credentials || !allowed.names(credentials->first)) {
    respond(unauthorized());
    return;
  }
  auto policy = sources_.broker.access_policy();
  const auto* stored = policy->password_of(credentials->first);
  if (stored == nullptr) {
    respond(unauthorized());
    return;
  }
  if (policy->was_verified(credentials->first, credentials->second)) {
    then(std::move(respond));
    return;
  }
  auto stored_copy = *stored;
  sources_.broker.check_password(std::move(policy), std::move(credentials->first), std::move(stored_copy),
                                 std::move(credentials->second),
                                 [respond = std::move(respond), then = std::move(then)](bool matched) mutable {
                                   if (matched)
                                     then(std::move(respond));
                                   else
                                     respond(unauthorized());
                                 });
}

void admin_api::render_metrics(std::optional<std::string> tenant, std::function<void(std::string)> done) {
  auto x = std::make_shared<exposition>();
  auto requests = sources_.queue_api ? sources_.queue_api().tenants : std::vector<http::cmq_tenant_stats>{};
  if (tenant) {
    // One tenant's series only: what the core and the queue API know of it.
    std::erase_if(requests, [&](const http::cmq_tenant_stats& r) { return r.tenant != *tenant; });
    sources_.queue_core.query([x, tenant = std::move(*tenant), requests = std::move(requests), done = std::move(done)](
                                  const core::queue::engine& engine, core::queue::time_ms now) {
      write_tenants(*x, {tenant}, engine, requests);
      std::size_t total = 0;
      write_queues(*x, engine.list_queues(tenant, {}, 0, std::numeric_limits<std::size_t>::max(), total, now));
      done(x->take());
    });
    return;
  }
  write_mqtt(*x, sources_.broker);
  if (sources_.listeners) write_listeners(*x, sources_.listeners());
  if (sources_.bridge != nullptr && sources_.bridge->has_uplink()) write_uplink(*x, sources_.bridge->uplink_stats());
  if (sources_.queue_api) write_queue_api(*x, sources_.queue_api());
  write_core(*x, sources_.queue_core.stats());
  write_storage(*x, sources_.storage.stats());
  sources_.queue_core.query([x, requests = std::move(requests), done = std::move(done)](
                                const core::queue::engine& engine, core::queue::time_ms now) {
    std::size_t total = 0;
    write_queues(*x, engine.list_queues(std::nullopt, {}, 0, std::numeric_limits<std::size_t>::max(), total, now));
    write_tenants(*x, engine.tenants(), engine, requests);
    done(x->take());
  });
}

}  // namespace wharf::gateway::admin
