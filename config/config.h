// wharf's configuration as plain structs with defaults. The YAML loader (config.cc) is the
// only place yaml-cpp appears. Every field says its meaning and `Default:`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace wharf::config {

struct tls_config {
  // Paths are resolved against the config file's directory by the parser.
  std::string cert_file;             // PEM certificate chain. Required unless development_certificate.
  std::string key_file;              // PEM private key. Required unless development_certificate.
  std::string ca_file;               // PEM CA bundle to verify client certificates. Default: none.
  bool require_client_cert = false;  // Refuse clients without a valid certificate. Default: false.
  // Serve the development certificate wharf generates in <data_dir>/tls on start (and on a
  // reload that asks for it) instead of cert_file and key_file: clients trust
  // <data_dir>/tls/dev-ca.pem. The parser fills cert_file and key_file with its paths.
  // For trying wharf out on loopback. Default: false.
  bool development_certificate = false;
};

// PROXY protocol on a listener (listener_config::proxy_protocol).
struct proxy_protocol_config {
  // Addresses or networks ("10.0.0.0/8", "2001:db8::/32", "192.0.2.10") of the balancers.
  // Required, at least one.
  std::vector<std::string> trusted;
  // A connection that has not sent its header in this long is closed. 100..60000. Default: 3000.
  std::uint32_t header_timeout_ms = 3000;
  bool operator==(const proxy_protocol_config&) const = default;
};

// mqtt: MQTT over TCP (or TLS); mqtt_ws: MQTT over WebSocket (or WSS); queue_api: the
// CMQ-compatible HTTP (or HTTPS) queue API (YAML type "queue-api"); admin: health,
// readiness and Prometheus metrics over HTTP (or HTTPS).
enum class listener_type { mqtt, mqtt_ws, queue_api, admin };

// Where a TLS listener with client certificates takes an MQTT client's username from: the
// verified certificate's subject CN, or its first subjectAltName (DNS, email or URI entry).
// A client that presents such a certificate is authenticated by it, without a password.
enum class cert_identity { none, common_name, subject_alt_name };

struct listener_config {
  listener_type type = listener_type::mqtt;
  std::string bind;                // "host:port"; "[v6]:port" for IPv6. Required.
  std::string host;                // bind's host, without IPv6 brackets (filled by the parser).
  std::uint16_t port = 0;          // bind's port, 1..65535 (filled by the parser).
  std::string path = "/mqtt";      // mqtt-ws only: the HTTP path to upgrade. Default: /mqtt.
  std::optional<tls_config> tls;   // TLS (or WSS) when present. Default: plain.
  // mqtt, mqtt-ws: clients that send no username (and no certificate identity) may connect.
  // Refused otherwise with CONNACK 0x87 Not authorized (3.1.1: 5). Default: false.
  bool anonymous = false;
  // mqtt, mqtt-ws with tls.ca_file: the username a verified client certificate gives
  // (YAML none|cn|san). Default: none.
  cert_identity username_from_cert = cert_identity::none;
  // mqtt, mqtt-ws: connections at once on this listener (admitted CONNECTs); beyond →
  // CONNACK 0x97 Quota exceeded (3.1.1: 3), counted. 0: only mqtt.max_connections. Default: 0.
  std::size_t max_connections = 0;
  // mqtt, mqtt-ws: CONNECTs a second on this listener (a burst of as many is allowed);
  // beyond → CONNACK 0x9F Connection rate exceeded (3.1.1: 3), counted. 0: no limit. Default: 0.
  std::uint32_t max_connection_rate = 0;
  // admin only: the auth.users (with a password_hash) who may read /metrics, with HTTP
  // Basic credentials. Required, at least one.
  std::vector<std::string> users;
  // mqtt, mqtt-ws, queue-api: connections from these sources (TCP load balancers) start
  // with a PROXY protocol header (v1 or v2) naming the client; from any other source a header
  // is refused. Default: none (no header taken).
  std::optional<proxy_protocol_config> proxy_protocol;
  // For diagnostics: where the entry is in the file.
  std::string source_location;     // "file:line:col"
};

// A client id that connects more than max_connects times within window_s seconds is
// refused (CONNACK 0x8A Banned; 3.1.1: 5) for ban_s seconds: a device stuck in a reconnect
// loop costs a refusal, not a session takeover each time.
struct flapping_config {
  std::uint32_t max_connects = 30;  // 0 disables. 0..1000000. Default: 30.
  std::uint32_t window_s = 60;      // 1..86400. Default: 60.
  std::uint32_t ban_s = 300;        // 1..604800. Default: 300.
};

struct mqtt_config {
  std::uint32_t max_packet_size = 1048576;    // bytes, inbound and advertised. Default: 1 MiB.
  std::uint16_t receive_maximum = 1024;       // inbound QoS>0 in flight per client. Default: 1024.
  std::uint16_t max_inflight = 64;            // outbound QoS>0 in flight per client (capped by the client's receive maximum). Default: 64.
  std::uint16_t topic_alias_maximum = 64;     // aliases a client may use towards us. Default: 64.
  std::uint16_t max_keep_alive_s = 65535;     // larger requests get server keep alive. Default: 65535.
  std::uint32_t max_session_expiry_s = 4294967295u; // cap on session expiry. Default: no cap.
  std::uint32_t connect_timeout_ms = 10000;   // time to the CONNECT packet. Default: 10 s.
  std::size_t max_client_id_length = 256;     // Default: 256.
  std::size_t max_queued_messages = 10000;    // per offline/slow session. Default: 10000.
  std::size_t max_queued_bytes = 64u << 20;   // per session. Default: 64 MiB.
  // Resident memory above which QoS 0 messages to clients with output waiting are dropped
  // (counted), before anything else. 0: three quarters of physical memory. Default: 0.
  std::uint64_t memory_watermark_bytes = 0;
  std::size_t max_retained_messages = 1000000;// Default: 1,000,000.
  std::size_t max_subscriptions_per_client = 1000; // Default: 1000.
  std::uint32_t sys_interval_s = 10;          // $SYS publish period; 0 disables. Default: 10.
  // Connections at once over all MQTT listeners; beyond → CONNACK 0x97 (3.1.1: 3), counted.
  // 1..100000000. Default: 1000000.
  std::size_t max_connections = 1000000;
  // Per client: PUBLISH packets and bytes read a second. A client that sends faster is not
  // refused anything: wharf stops reading its socket until it is back within the rate (TCP
  // slows it down), counted. 0: no limit. 0..100000000 each. Default: 0.
  std::uint32_t max_publish_rate = 0;
  std::uint32_t max_inbound_bytes_rate = 0;
  flapping_config flapping;
};

// A key pair of the queue API: clients sign requests with secret_key and name it by
// secret_id (CMQ's SecretId / SecretKey).
// What a scoped credential may do with the queues or topics a grant names (a bit set):
// read (receive, delete, get attributes; for topics get attributes and subscriptions), write
// (send; publish), manage (create, set attributes, delete, rewind, redrive; subscribe).
enum queue_api_access : std::uint8_t { access_read = 1, access_write = 2, access_manage = 4 };

// One grant of a scoped credential (YAML {queue: PATTERN, access: [read, write]}, or topic:).
struct queue_api_grant {
  bool topics = false;        // false: queues (YAML key queue), true: topics (key topic)
  // A name, a prefix ending in '*' ("orders-*"), or "*" for all (which also allows
  // ListQueue / ListTopic). Required.
  std::string pattern;
  std::uint8_t access = access_read | access_write;  // Default: [read, write].
};

struct queue_api_credential {
  std::string secret_id;   // Required, non-empty, unique among the credentials.
  std::string secret_key;  // Required, non-empty. Use ${ENV:NAME} to keep it out of the file.
  // Absent: every action on every queue and topic. Present: only what a grant allows;
  // anything else is answered 4100 (docs/CONFIG.md). Default: absent.
  std::optional<std::vector<queue_api_grant>> scopes{};
  // The tenant whose queues and topics its requests name (one of `tenants`). Default: ""
  // (the default tenant).
  std::string tenant{};
  std::string tenant_location{};  // "file:line:col" of `tenant`, when given
};

// The CMQ-compatible HTTP queue API: authentication and the bounds of its listeners.
struct queue_api_config {
  // Who may call the API. At least one is required when a queue-api listener is
  // configured. Default: none.
  std::vector<queue_api_credential> credentials;
  // A request's Timestamp may differ from the server's clock by at most this; a Nonce may
  // not be reused by one SecretId within it. 1..86400. Default: 300.
  std::uint32_t signature_window_s = 300;
  // (SecretId, Nonce) pairs remembered for replay protection, about 90 bytes each; when
  // full the oldest is forgotten early (counted). 1000..100000000. Default: 1000000.
  std::size_t nonce_cache_entries = 1000000;
  // Largest request body; larger → CMQ code 4000 and the connection is closed.
  // 1024..1073741824. Default: 4194304 (4 MiB).
  std::size_t max_body_bytes = 4194304;
  // Largest request line plus headers; larger → HTTP 431. 1024..1048576. Default: 8192.
  std::size_t max_header_bytes = 8192;
  // Parameters per request (query string and body together); more → CMQ code 4000.
  // 16..65536. Default: 256.
  std::size_t max_params = 256;
  // Time to receive a whole request once its first byte arrived, and to write an answer.
  // 100..3600000. Default: 30000.
  std::uint32_t request_timeout_ms = 30000;
  // A keep-alive connection without a request is closed after this. 100..86400000.
  // Default: 60000.
  std::uint32_t idle_timeout_ms = 60000;
  // Open connections per queue-api listener; beyond → accepted and closed at once.
  // 1..10000000. Default: 10000.
  std::size_t max_connections = 10000;
  // Receives waiting (long polling) at once, all listeners together; more → CMQ code 4420.
  // 1..10000000. Default: 100000.
  std::size_t max_long_polls = 100000;
  // Requests a second per SecretId (a burst of as many is allowed); beyond → CMQ code 4420,
  // nothing changed, counted. 0..10000000, 0 for no limit. Default: 0.
  std::uint32_t max_requests_per_second = 0;
};

// Delivery of topic messages to `http` subscriptions.
struct queue_push_config {
  // One push attempt (connect, TLS, request, response) in all. 100..600000. Default: 5000.
  std::uint32_t timeout_ms = 5000;
  // Pushes in flight at once, all subscriptions together. 1..100000. Default: 256.
  std::size_t max_in_flight = 256;
  // PEM CA bundle https endpoints must chain to (resolved against the config file's
  // directory); empty: the system's trust store. Default: "".
  std::string ca_file;
};

// The queue core (queues, topics, subscriptions).
struct queue_config {
  std::size_t max_queues = 10000;                 // CreateQueue beyond → 4450. 1..10000000. Default: 10000.
  std::size_t max_topics = 10000;                 // CreateTopic beyond → 4450. 1..10000000. Default: 10000.
  std::size_t max_subscriptions_per_topic = 100;  // Subscribe beyond → 4450. 1..100000. Default: 100.
  // Applied commands kept in the stored command log behind the snapshot (older ones are
  // trimmed). 0 keeps all. 0..1000000000. Default: 100000.
  std::uint64_t log_retain_entries = 100000;
  // Housekeeping period (retention, time to live) when nothing is due sooner.
  // 10..60000. Default: 1000.
  std::uint32_t tick_interval_ms = 1000;
  queue_push_config push;
  // message_trace: each message's history (docs/ADMIN.md), in memory, kept retention_s
  // after its last event (0: no trace; 0..604800, default 3600) for at most max_messages
  // messages, the oldest dropped first (1..10000000, default 100000).
  std::uint32_t trace_retention_s = 3600;
  std::size_t trace_max_messages = 100000;
};

// The bridge between MQTT and the queue core (docs/BRIDGE.md). Queues and topics it names
// are created at start when missing. Filters and names are checked by the bridge itself
// (gateway/bridge), which reports errors at `source_location`.
enum class bridge_body_format { raw, json };

// Every PUBLISH matching `filter` goes to `destination`: a queue (mqtt_to_queue, YAML key
// `queue`), or a core topic (mqtt_to_topic, YAML key `topic`) with the MQTT topic's levels
// joined by '.' as its routing key. A QoS 1/2 publish is acknowledged once the core holds
// it durably.
struct bridge_binding {
  std::string filter;                             // MQTT topic filter. Required.
  std::string destination;                        // Queue or core topic name. Required.
  // raw: the payload is the message body; json: topic, client id, QoS, retain, properties
  // and the payload (text, or base64) as a JSON object. Default: raw.
  bridge_body_format format = bridge_body_format::raw;
  // mqtt_to_queue only: the topic level (1 = the first) whose value is the message's group
  // (msgGroupId), so one device's messages are consumed in order; the queue is created
  // ordered. A topic without that level (or with it empty) goes to the queue's default
  // group. 1..1000. Default: none (no group).
  std::optional<std::uint32_t> group_level;
  std::string source_location;                    // "file:line:col"
  // The tenant whose MQTT topics `filter` names (under its mount) and whose queue or topic
  // `destination` is. Default: "" (the default tenant).
  std::string tenant{};
};

// Messages published to the core topic `topic` are published to MQTT on `mqtt_topic`,
// where "{routingKey}" stands for the message's routing key with '.' written as '/'.
struct bridge_mqtt_binding {
  std::string topic;                              // Core topic name. Required.
  std::string mqtt_topic;                         // MQTT topic template. Required.
  std::uint8_t qos = 1;                           // 0..2. Default: 1.
  bool retain = false;                            // Default: false.
  std::string source_location;
  std::string tenant{};                           // as bridge_binding::tenant. Default: "".
};

// One topic mapping of the uplink, as Mosquitto's bridge `topic` lines: a message on local
// topic local_prefix + T is sent up as remote_prefix + T (direction out), and a remote
// message on remote_prefix + T comes down as local_prefix + T (in), where T matches filter.
enum class uplink_direction { out, in, both };
struct uplink_topic {
  std::string filter;                  // MQTT topic filter for T. Required.
  uplink_direction direction = uplink_direction::out;  // out|in|both. Default: out.
  std::uint8_t qos = 1;                // 0..2, the most QoS used on the uplink. Default: 1.
  std::string local_prefix;            // Default: "".
  std::string remote_prefix;           // Default: "".
  std::string source_location;
};

// A connection to a remote MQTT broker (built on the Paho MQTT C++ client). Messages going
// up are kept in a core queue first (durable before the local publisher's ack, bounded by
// max_queued_messages), and sent in order while the uplink is connected.
struct uplink_config {
  std::string address;                 // "tcp://host:port" or "ssl://host:port". Required.
  std::string client_id;               // The client id at the remote broker. Required.
  int mqtt_version = 4;                // "3.1.1" (4) or "5". Default: 3.1.1.
  std::string username;                // Default: none.
  std::string password;                // Default: none. Use ${ENV:NAME}.
  std::string ca_file;                 // ssl://: CA bundle the remote must chain to. Default: system store.
  std::string cert_file;               // ssl://: client certificate. Default: none.
  std::string key_file;                // ssl://: its key. Default: none.
  std::uint16_t keep_alive_s = 60;     // 1..65535. Default: 60.
  // Keep the remote session (and what it queues for us) between connections. Default: false.
  bool clean_session = false;
  std::uint32_t reconnect_min_ms = 1000;   // first retry delay; doubles. 100..600000. Default: 1000.
  std::uint32_t reconnect_max_ms = 30000;  // longest retry delay. 100..3600000. Default: 30000.
  std::string queue = "uplink-outbox";     // the store-and-forward queue. Default: uplink-outbox.
  // The queue's bound (its maxMsgHeapNum); beyond it local publishes going up are refused
  // (v5: PUBACK 0x97), counted. 1000000..1000000000. Default: 1000000.
  std::uint64_t max_queued_messages = 1000000;
  std::vector<uplink_topic> topics;    // At least one. Required.
  std::string source_location;
};

struct bridge_config {
  std::vector<bridge_binding> mqtt_to_queue;
  std::vector<bridge_binding> mqtt_to_topic;
  std::vector<bridge_mqtt_binding> topic_to_mqtt;
  // Device events (connected, disconnected, session expired, will published) as JSON
  // messages into this queue. Default: "" (no events).
  std::string events_queue;
  std::string events_source_location;
  std::optional<uplink_config> uplink;  // Default: none.
};

// A user of the MQTT listeners.
struct user_config {
  std::string username;       // Required, unique.
  // "$pbkdf2-sha256$i=ITERATIONS$SALT$HASH" (base64 parts), as `wharf passwd` prints it;
  // not empty when given. Default: none: the user cannot log in with a password (a login by
  // client certificate, username_from_cert, needs no entry here).
  std::string password_hash;
  std::string source_location;  // of password_hash when given, else of the entry
};

enum class acl_permission { allow, deny };
enum class acl_action { publish, subscribe, all };

// One access rule. Rules are tried in order; the first that applies decides.
struct acl_rule {
  acl_permission permission = acl_permission::allow;  // Required.
  acl_action action = acl_action::all;                // publish|subscribe|all. Default: all.
  // A topic filter; "%c" stands for the client id and "%u" for the username (a rule whose
  // placeholder has no value, or a value containing '/', '+' or '#', does not apply).
  std::string topic;                                  // Required.
  // The username the rule is for; "" (key absent; an empty value is an error) applies to
  // every client. Default: "".
  std::string username;
  std::string source_location;  // of topic
  // The same rule (where it was written aside).
  [[nodiscard]] bool same_as(const acl_rule& other) const noexcept {
    return permission == other.permission && action == other.action && topic == other.topic && username == other.username;
  }
  friend bool operator==(const acl_rule&, const acl_rule&) = default;
};

// JSON Web Tokens as CONNECT credentials (docs/CONFIG.md, auth.jwt): a client that is not one
// of `users` logs in with a token signed by one of these keys; the username is a claim.
struct jwt_config {
  // A JWKS (RFC 7517: RSA, P-256 and symmetric keys) or one PEM public key, read when the
  // config is (re)loaded. Required.
  std::string keys_file;
  std::string keys_location;  // of keys_file, for errors about its contents
  bool from_username = false;  // where the token is: the password (default) or the username
  std::string username_claim = "sub";  // the claim that names the client. Default: sub.
  std::uint32_t clock_skew_s = 30;     // leeway for exp and nbf, 0..300. Default: 30.
  bool require_expiry = true;          // a token without exp is refused. Default: true.
  std::string issuer;    // the iss a token must carry; "": any. Default: "".
  std::string audience;  // a value the token's aud must hold; "": any. Default: "".
  // A claim holding the client's own ACL rules, tried before auth.acl; "": none. Default: "".
  std::string acl_claim;
  friend bool operator==(const jwt_config&, const jwt_config&) = default;
};

// The operator's HTTP(S) service asked at CONNECT (docs/CONFIG.md, auth.http): it answers
// allow, deny or ignore, and may make the client a superuser or give it ACL rules.
struct http_auth_config {
  std::string url;           // http:// or https://. Required.
  std::string url_location;  // of url, for errors about what it means
  std::uint32_t timeout_ms = 2000;  // one request, connecting included, 10..60000. Default: 2000.
  // Requests in flight at once, and connections kept open to the service, 1..1024. Default: 32.
  std::uint32_t max_in_flight = 32;
  // CONNECTs waiting for one of those requests, 0..1,000,000; beyond: refused with Server
  // busy and counted. Default: 10000.
  std::uint32_t max_queued = 10000;
  // How long an allow (deny) answer is remembered for the same client id, credentials and
  // address, 0..86,400,000 ms; 0: not at all. Default: 60000 (5000).
  std::uint32_t cache_ttl_ms = 60000;
  std::uint32_t deny_cache_ttl_ms = 5000;
  std::uint32_t cache_entries = 100000;  // answers remembered, 0..10,000,000. Default: 100000.
  // When the service cannot answer (down, slow, malformed): refuse the client (false,
  // "fail closed": Server unavailable) or admit it with the config's ACL (true). Default: false.
  bool fail_open = false;
  std::string ca_file;  // the CAs an https service must chain to; "": the system's. Default: "".
  // Whether the service is asked about each topic a client publishes to, and each filter it
  // subscribes to, besides the ACL: its deny refuses (both must allow). Default: false.
  bool authorize_publish = false;
  bool authorize_subscribe = false;
  friend bool operator==(const http_auth_config&, const http_auth_config&) = default;
};

// The places a CONNECT's credentials are checked, in auth.order: the file's users, the
// users changed at runtime (admin API), JSON Web Tokens, the HTTP hook.
enum class auth_source { file, runtime, jwt, http };

// Bounds of the runtime users and roles (auth.runtime), kept by the queue core.
struct runtime_auth_config {
  std::uint64_t max_users = 1000000;  // 0..100,000,000. Default: 1000000.
  std::uint64_t max_roles = 10000;    // 0..1,000,000. Default: 10000.
  friend bool operator==(const runtime_auth_config&, const runtime_auth_config&) = default;
};

// Who may connect to the MQTT listeners, and what they may publish and subscribe to.
struct auth_config {
  std::vector<user_config> users;  // Default: none.
  std::vector<acl_rule> acl;       // Default: none.
  // What happens when no rule applies. Default: allow.
  acl_permission acl_no_match = acl_permission::allow;
  // The SUBACK reason code for a denied subscription: 0x87 Not authorized, or 0x80
  // Unspecified error for clients that expect it (3.1.1 always gets 0x80). Default: 0x87.
  std::uint8_t subscribe_denied_reason = 0x87;
  std::optional<jwt_config> jwt;  // Default: none (no tokens accepted).
  std::optional<http_auth_config> http;  // Default: none (no service asked).
  runtime_auth_config runtime;
  // The sources tried, each once; every configured one must be named (the file's when it has
  // users); runtime may be left out (then runtime users cannot log in). Default: file,
  // runtime, jwt, http, those configured.
  std::vector<auth_source> order = {auth_source::file, auth_source::runtime};
};

// One member of the queue core's Raft group.
struct cluster_peer {
  std::uint64_t id = 0;    // 1..2^63, unique in the group
  std::string address;     // "host:port" where its peer listener is
};

// The queue core replicated over a Raft group (docs/CONFIG.md, cluster). Absent: this node
// alone, a group of one.
struct cluster_config {
  std::uint64_t node_id = 0;           // this node: one of `peers` (unless `join`). Required.
  // This node is not one of the initial voters: it waits, empty, to be added through the
  // leader (`wharf cluster add`); `peers` then names the group's members. Default: false.
  bool join = false;
  std::string bind;                    // this node's peer listener "host:port". Required.
  std::vector<cluster_peer> peers;     // the initial voters, the same list on every node. Required.
  std::string name = "wharf";          // nodes of another cluster name are refused. Default: wharf.
  std::uint32_t election_timeout_ms = 1000;   // 100..60000. Default: 1000.
  std::uint32_t heartbeat_timeout_ms = 100;   // 10..10000, below election_timeout_ms. Default: 100.
  std::uint32_t leader_wait_ms = 5000;        // a request without a leader waits this long. 0..60000. Default: 5000.
  std::uint32_t forward_timeout_ms = 10000;   // a relayed request's answer, beyond its polling wait. 1000..600000. Default: 10000.
  // Mutual TLS on the peer links: this node's certificate and key, presented both ways, and
  // the CA that must have signed every other node's (require_client_cert is set). Default:
  // none (plain TCP).
  std::optional<tls_config> tls;
  std::string source_location;         // "file:line:col" of the section
};

// Encryption at rest (docs/CONFIG.md, "encryption"): every value written to the store
// sealed with AES-256-GCM. Changes apply at the next start.
struct encryption_key_config {
  std::string id;   // 1..64 characters, unique. Required.
  std::string key;  // the 32 key bytes: key_file (a file of 64 hex digits) or key (64 hex digits). Required.
  std::string source_location;
};
struct encryption_config {
  std::vector<encryption_key_config> keys;  // at least one; older keys open what they sealed
  std::string active;                       // the id of the key that seals new values. Required.
  std::string source_location;
};

// A tenant (docs/CONFIG.md "tenants"): its own queue and topic names (CMQ API, through the
// credentials that name it), its own MQTT topic tree (under "$tenant/<name>/", which its
// devices never see), and its quotas.
struct tenant_config {
  std::string name;  // Required, unique: 1..32 characters, a letter, then letters, digits, '_' or '-'.
  // MQTT usernames whose clients belong to it (a client certificate's identity too, where
  // the listener makes it the username): exact names, or prefixes ending in '*'. No
  // username may match two tenants. Default: none.
  std::vector<std::string> mqtt_users;
  // quotas: 0 is no quota of its own (the `queue:` limits still hold).
  std::size_t max_queues = 1000;              // quotas.queues → CMQ 4450. 0..1000000. Default: 1000.
  std::size_t max_topics = 1000;              // quotas.topics → CMQ 4450. 0..1000000. Default: 1000.
  std::uint32_t max_requests_per_second = 0;  // quotas.requests_per_second, all its SecretIds → 4420. Default: 0.
  std::uint64_t max_stored_bytes = 0;         // quotas.stored_bytes, message bodies kept → 4410. Default: 0.
  std::string source_location;                // of the entry
};

// Whether `pattern` (a name, or a prefix ending in '*') matches `name`.
[[nodiscard]] bool name_pattern_matches(std::string_view pattern, std::string_view name) noexcept;

// The tenant whose mqtt_users match `username` ("" when none: the default tenant).
[[nodiscard]] std::string_view tenant_of_mqtt_user(const std::vector<tenant_config>& tenants,
                                                   std::string_view username) noexcept;

struct config {
  std::string data_dir = "./wharf-data";      // RocksDB and generated files. Default: ./wharf-data.
  // Storage writes are refused while data_dir's file system has less free space (QoS 1/2
  // acks withheld, CMQ code 6000), counted; 0: no check. 0..2^50. Default: 67108864 (64 MiB).
  std::uint64_t min_free_disk_bytes = 64u << 20;
  // Default (key absent): one plain MQTT listener on 0.0.0.0:1883 (see embedded default).
  std::vector<listener_config> listeners;
  unsigned io_threads = 0;                    // 0 = one per core. Default: 0.
  std::string log_level = "info";             // trace|debug|info|warn|error|off. Default: info.
  // log_levels: a level for some modules (app, mqtt, bridge, http, queue), the others at
  // log_level. Default: none.
  std::map<std::string, std::string> module_log_levels;
  std::string log_format = "text";            // text|json (one JSON object a line). Default: text.
  mqtt_config mqtt;
  queue_api_config queue_api;
  queue_config queue;
  bridge_config bridge;
  auth_config auth;
  std::optional<cluster_config> cluster;      // absent: this node alone
  std::optional<encryption_config> encryption;  // absent: values stored in the clear
  std::vector<tenant_config> tenants;         // Default: none (everything is the default tenant's)
  std::string source_file;                    // the file it was loaded from ("<embedded>")
};

// One problem in a config file, reported as "file:line:col: message".
struct config_error {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  std::string message;
  [[nodiscard]] std::string to_string() const;
};

// An error at a `source_location` ("file:line:col", as the parser records it) for checks
// made after parsing (the bridge's bindings, the auth section's hashes and patterns).
[[nodiscard]] config_error error_at(const std::string& source_location, std::string message);

class config_errors : public std::runtime_error {
 public:
  explicit config_errors(std::vector<config_error> errors);
  [[nodiscard]] const std::vector<config_error>& errors() const noexcept { return errors_; }

 private:
  std::vector<config_error> errors_;
};

// What a reading produced: every value that could be read (invalid entries left out or at
// their defaults), and every error found, in file order.
struct parse_result {
  config cfg;
  std::vector<config_error> errors;
};
[[nodiscard]] parse_result read_config_text(const std::string& yaml_text, const std::string& file_name);
// A file that cannot be read is one error at line 0.
[[nodiscard]] parse_result read_config_file(const std::string& path);

// Parses YAML text. Collects every error it finds (unknown keys with a suggestion, wrong
// types, out-of-range values, duplicate binds, missing TLS files, queue API credentials that
// are empty or duplicate or missing while a queue-api listener exists) and throws config_errors
// with all of them. `file_name` is used in messages and to resolve relative paths.
[[nodiscard]] config parse_config(const std::string& yaml_text, const std::string& file_name);
// Reads and parses a file; a missing file is one config_error at line 0.
[[nodiscard]] config load_config_file(const std::string& path);
// The embedded default configuration as YAML text (what `wharf` runs with no --config).
// Its TLS listeners (MQTT and queue API) use the development certificate. Its queue API
// credential (wharf-dev / wharf-dev-secret) is for local development on loopback only.
[[nodiscard]] const std::string& embedded_default_yaml();
// Where the development certificate's files are for a data directory (<data_dir>/tls).
[[nodiscard]] std::string development_certificate_dir(const std::string& data_dir);
// Whether some listener asks for the development certificate.
[[nodiscard]] bool uses_development_certificate(const config& cfg);

}  // namespace wharf::config
