// Command line of wharf-bench: modes and options, parsed into a plain struct.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/mqtt/protocol/types.h"

namespace wharf::bench {

enum class mode { conn, pubsub };
enum class scenario { p2p, fanin, fanout, shared };

struct options {
  bench::mode mode = mode::pubsub;
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  unsigned threads = 1;                       // one io_context per thread. Default: 1
  mqtt::protocol_version version = mqtt::protocol_version::v3_1_1;
  std::uint16_t keep_alive_s = 60;            // Default: 60
  double rate = 0;                            // conn: connects/s; pub: msg/s total; 0 = unpaced
  bool json = false;
  // conn
  std::uint32_t connections = 1000;           // Default: 1000
  double hold_s = 10;                         // Default: 10
  std::vector<std::string> sources;           // local addresses to bind before connect
  double connect_timeout_s = 10;              // Default: 10
  // pub/sub
  bench::scenario scenario = scenario::p2p;
  std::uint32_t publishers = 1;
  std::uint32_t subscribers = 1;
  mqtt::qos qos = mqtt::qos::at_most_once;
  std::uint32_t size_bytes = 64;              // payload size, at least 24 (timestamp, sequence, ids)
  double duration_s = 10;                     // Default: 10
  double drain_s = 5;                         // wait for outstanding messages. Default: 5
  std::string topic_prefix = "bench";
  std::uint32_t inflight_max = 64;            // QoS 1/2 window per publisher. Default: 64
  bool persistent = false;                    // subscribers use clean session 0
};

// Parses argv. Returns nullopt and fills `error` on a bad command line; sets `help` for
// --help (the caller prints usage()).
[[nodiscard]] std::optional<options> parse_options(int argc, char** argv, std::string& error, bool& help);
[[nodiscard]] std::string usage();

}  // namespace wharf::bench
