// wharf's configuration as plain structs with defaults. The YAML loader (config.cc) is the
// only place yaml-cpp appears. Every field says its meaning and `Default:`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace wharf::config {

struct tls_config {
  // Paths are resolved against the config file's directory by the parser.
  std::string cert_file;             // PEM certificate chain. Required.
  std::string key_file;              // PEM private key. Required.
  std::string ca_file;               // PEM CA bundle to verify client certificates. Default: none.
  bool require_client_cert = false;  // Refuse clients without a valid certificate. Default: false.
};

// mqtt: MQTT over TCP (or TLS); mqtt_ws: MQTT over WebSocket (or WSS); queue_api: the
// CMQ-compatible HTTP (or HTTPS) queue API (YAML type "queue-api").
enum class listener_type { mqtt, mqtt_ws, queue_api };

struct listener_config {
  listener_type type = listener_type::mqtt;
  std::string bind;                // "host:port"; "[v6]:port" for IPv6. Required.
  std::string host;                // bind's host, without IPv6 brackets (filled by the parser).
  std::uint16_t port = 0;          // bind's port, 1..65535 (filled by the parser).
  std::string path = "/mqtt";      // mqtt-ws only: the HTTP path to upgrade. Default: /mqtt.
  std::optional<tls_config> tls;   // TLS (or WSS) when present. Default: plain.
  // For diagnostics: where the entry is in the file.
  std::string source_location;     // "file:line:col"
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
  std::size_t max_retained_messages = 1000000;// Default: 1,000,000.
  std::size_t max_subscriptions_per_client = 1000; // Default: 1000.
  std::uint32_t sys_interval_s = 10;          // $SYS publish period; 0 disables. Default: 10.
};

// A key pair of the queue API: clients sign requests with secret_key and name it by
// secret_id (CMQ's SecretId / SecretKey).
struct queue_api_credential {
  std::string secret_id;   // Required, non-empty, unique among the credentials.
  std::string secret_key;  // Required, non-empty. Use ${ENV:NAME} to keep it out of the file.
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
};

struct config {
  std::string data_dir = "./wharf-data";      // RocksDB and generated files. Default: ./wharf-data.
  // Storage writes are refused while data_dir's file system has less free space (QoS 1/2
  // acks withheld, CMQ code 6000), counted; 0: no check. 0..2^50. Default: 67108864 (64 MiB).
  std::uint64_t min_free_disk_bytes = 64u << 20;
  // Default (key absent): one plain MQTT listener on 0.0.0.0:1883 (see embedded default).
  std::vector<listener_config> listeners;
  unsigned io_threads = 0;                    // 0 = one per core. Default: 0.
  std::string log_level = "info";             // trace|debug|info|warn|error|off. Default: info.
  mqtt_config mqtt;
  queue_api_config queue_api;
  queue_config queue;
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

class config_errors : public std::runtime_error {
 public:
  explicit config_errors(std::vector<config_error> errors);
  [[nodiscard]] const std::vector<config_error>& errors() const noexcept { return errors_; }

 private:
  std::vector<config_error> errors_;
};

// Parses YAML text. Collects every error it finds (unknown keys with a suggestion, wrong
// types, out-of-range values, duplicate binds, missing TLS files, queue API credentials that
// are empty or duplicate or missing while a queue-api listener exists) and throws config_errors
// with all of them. `file_name` is used in messages and to resolve relative paths.
[[nodiscard]] config parse_config(const std::string& yaml_text, const std::string& file_name);
// Reads and parses a file; a missing file is one config_error at line 0.
[[nodiscard]] config load_config_file(const std::string& path);
// The embedded default configuration as YAML text (what `wharf` runs with no --config).
// Its TLS listeners (MQTT and queue API) name ./wharf-data/tls/dev-server.{pem,key}: the
// caller creates them (tls::generate_self_signed) before parsing it. Its queue API
// credential (wharf-dev / wharf-dev-secret) is for local development on loopback only.
[[nodiscard]] const std::string& embedded_default_yaml();

}  // namespace wharf::config
