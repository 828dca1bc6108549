// Command line of wharf-bench: modes and options, parsed into a plain struct.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/mqtt/protocol/types.h"

namespace wharf::bench {

enum class mode { conn, pubsub, queue, sessions };
enum class session_phase { create, resume };
enum class scenario { p2p, fanin, fanout, shared };

struct options {
  bench::mode mode = mode::pubsub;
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  unsigned threads = 1;                       // one io_context per thread. Default: 1
  mqtt::protocol_version version = mqtt::protocol_version::v3_1_1;
  std::uint16_t keep_alive_s = 60;            // Default: 60
  double rate = 0;                            // conn: connects/s; pub, queue: msg/s total; 0 = unpaced
  bool json = false;
  // conn
  std::uint32_t connections = 1000;           // Default: 1000
  double hold_s = 10;                         // Default: 10
  std::optional<std::string> username;        // conn: CONNECT's username. Default: none
  std::optional<std::string> password;        // conn: CONNECT's password (a token, say). Default: none
  std::vector<std::string> passwords;         // conn: connection n sends passwords[n % size] (--passwords FILE)
  std::vector<std::string> sources;           // local addresses to bind before connect
  std::uint32_t first_id = 0;                 // conn: client ids bench-conn-<first_id + n>
  bool tls = false;                           // conn, sessions: MQTT over TLS (--ca verifies)
  double connect_timeout_s = 10;              // conn: until CONNACK; sessions: a whole visit. Default: 10
  // sessions (and --connections, --source, --connect-timeout from conn)
  bench::session_phase session_phase = session_phase::create;
  std::uint32_t sample = 1000;                // resume: sessions visited. Default: 1000
  // pub/sub
  bench::scenario scenario = scenario::p2p;
  std::uint32_t publishers = 1;
  std::uint32_t subscribers = 1;
  mqtt::qos qos = mqtt::qos::at_most_once;
  std::uint32_t size_bytes = 64;              // pub, queue: payload size, at least 24 (timestamp, ids)
  double duration_s = 10;                     // pub, queue: sending time. Default: 10
  double drain_s = 5;                         // wait for outstanding messages. Default: 5
  std::string topic_prefix = "bench";
  std::string subscribe_filter;  // fanin/fanout: what subscribers subscribe to; "": the topic
  std::uint32_t inflight_max = 64;            // QoS 1/2 window per publisher. Default: 64
  bool persistent = false;                    // subscribers use clean session 0
  bool offline = false;                       // subscribers leave before publishing, return after (implies persistent)
  // queue (the CMQ queue API over HTTP or HTTPS)
  std::string endpoint = "http://127.0.0.1:8080";  // URL of the API; path default /v2/index.php
  std::string ca_file;                        // TLS and https: CA bundle (empty: the system's trust store)
  std::string secret_id = "wharf-dev";        // Default: the embedded default's development credential
  std::string secret_key = "wharf-dev-secret";
  std::string queue_name;                     // empty: bench-<random hex>
  bool keep_queue = false;                    // do not delete at the end a queue this run created
  std::uint32_t batch = 1;                    // messages per request, 1..16; 1 uses the single-message actions
  std::uint32_t producers = 1;                // each on its own keep-alive connection. Default: 1
  std::uint32_t consumers = 1;                // each on its own keep-alive connection. Default: 1
  std::uint32_t polling_wait_s = 1;           // consumers' pollingWaitSeconds, 0..30. Default: 1
  // An ordered queue whose messages spread over this many groups (msgGroupId), in turn;
  // 0: a plain queue. Default: 0.
  std::uint32_t groups = 0;
};

// The largest batch of the CMQ batch actions (msgBody.n, numOfMsg, receiptHandle.n).
inline constexpr std::uint32_t cmq_batch_max = 16;
// CMQ's largest maxMsgSize: the largest --size of the queue mode.
inline constexpr std::uint32_t cmq_body_bytes_max = 1024 * 1024;

// Parses argv. Returns nullopt and fills `error` on a bad command line; sets `help` for
// --help (the caller prints usage()).
[[nodiscard]] std::optional<options> parse_options(int argc, char** argv, std::string& error, bool& help);
[[nodiscard]] std::string usage();

}  // namespace wharf::bench
