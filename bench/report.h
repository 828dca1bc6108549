// Final reports of wharf-bench: human text or one JSON object (stdout), and the one-line
// live progress (stderr).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "bench/histogram.h"
#include "bench/options.h"

namespace wharf::bench {

struct pubsub_result {
  double publish_s = 0;       // from the first scheduled send to the end of publishing
  double elapsed_s = 0;       // from the first send to the end of the drain
  std::uint64_t sent = 0;     // PUBLISH packets written
  std::uint64_t acked = 0;    // QoS 1/2: flows completed (PUBACK / PUBCOMP)
  std::uint64_t received = 0; // PUBLISH packets received by subscribers, duplicates included
  std::uint64_t expected = 0; // receptions that should have happened
  std::uint64_t lost = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t errors = 0;
  std::uint64_t stale = 0;    // messages of an earlier run (persistent sessions), not counted
  double received_per_s = 0;  // over publish_s plus the time until the last reception
  histogram latency;
};

struct conn_result {
  std::uint32_t requested = 0;
  std::uint32_t connected = 0;
  std::uint32_t failed = 0;
  std::uint32_t dropped = 0;  // closed by the broker or the network during the hold
  double connect_s = 0;       // from the first attempt to the last CONNACK / failure
  histogram connect_latency;  // TCP connect + CONNECT/CONNACK
};

struct sessions_result {
  std::string phase;           // "create" or "resume"
  std::uint32_t sessions = 0;  // --connections
  std::uint32_t visited = 0;   // create: all of them; resume: the sample
  std::uint32_t done = 0;      // create: stored and subscribed; resume: message came back
  std::uint32_t failed = 0;
  std::uint32_t absent = 0;    // resume: CONNACK without session present
  std::uint32_t delivered = 0; // resume: its own message came back through the subscription
  double elapsed_s = 0;
  histogram latency;           // one visit: connect until SUBACK (create) or the message (resume)
};

struct queue_result {
  std::string queue;                  // the queue's name
  double send_s = 0;                  // sending time (--duration); the rates are over it
  std::uint64_t sent = 0;             // messages whose send answered code 0
  std::uint64_t received = 0;         // messages received, duplicates and stale ones included
  std::uint64_t deleted = 0;          // messages whose delete succeeded
  std::uint64_t empty_receives = 0;   // receives answered 7000 (no message): not errors
  std::uint64_t stale = 0;            // received messages of an earlier run (a kept queue)
  std::map<std::string, std::uint64_t> errors;  // by CMQ code, or "transport" (no answer)
  histogram send_latency;             // send request until its answer
  histogram consume_latency;          // receive request until the delete's answer
  histogram end_to_end;               // send timestamp in the body until the receive's answer
};

[[nodiscard]] std::string format_pubsub(const pubsub_result& r, const options& o);
[[nodiscard]] std::string format_conn(const conn_result& r, const options& o);
[[nodiscard]] std::string format_queue(const queue_result& r, const options& o);
[[nodiscard]] std::string format_sessions(const sessions_result& r, const options& o);
[[nodiscard]] const char* scenario_name(scenario s) noexcept;

}  // namespace wharf::bench
