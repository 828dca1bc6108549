#include "bench/options.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <string_view>

namespace wharf::bench {
namespace {

template <class T>
bool parse_number(std::string_view text, T& out) {
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && ptr == end;
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> parts;
  while (!text.empty()) {
    const auto comma = text.find(',');
    if (comma != 0) parts.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return parts;
}

// CMQ queue names: a letter, then up to 63 letters, digits, '_' or '-'.
bool is_queue_name(std::string_view name) {
  auto is_letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  auto is_name_char = [&](char c) { return is_letter(c) || (c >= '0' && c <= '9') || c == '_' || c == '-'; };
  return !name.empty() && name.size() <= 64 && is_letter(name.front()) &&
         std::all_of(name.begin() + 1, name.end(), is_name_char);
}

}  // namespace

std::string usage() {
  return R"(usage: wharf-bench MODE [options]

modes:
  conn        open --connections MQTT connections at --rate per second, keep them alive
              (PINGREQ) for --hold seconds; report connect rate, failures, total
  sessions    --phase create: store --connections persistent sessions, each subscribed
              (QoS 1) to its own topic, then disconnect; --phase resume: reconnect
              --sample of them and check each has its session and subscription (its
              own QoS 1 message comes back); report rate, failures, sessions absent
  pub | sub   publishers and subscribers in one process (both names run the same thing);
              report throughput, latency percentiles, lost and duplicate messages
  queue       producers and consumers of one queue over the CMQ queue API (HTTP or HTTPS):
              send, receive with long polling, delete (or their batch forms); report
              throughput, request and end-to-end latency, errors by CMQ code

common options:
  --host H              broker address (default 127.0.0.1)
  --port P              broker port (default 1883)
  --threads N           threads, one io_context each (default 1)
  --mqtt-version V      3.1.1 | 5 (default 3.1.1)
  --keepalive S         keep alive seconds (default 60)
  --rate R              conn: connects/s; pub, queue: messages/s over all publishers or
                        producers; 0 = unpaced
  --json                final report as one JSON object on stdout
  --help                this text

conn options:
  --connections N       connections to open (default 1000)
  --hold S              seconds to hold them once opened (default 10)
  --source A,B,...      local source addresses, round robin (bind before connect)
  --connect-timeout S   per-connection CONNACK deadline (default 10)
  --first-id N          client ids are bench-conn-N, N+1, ... (default 0): several
                        processes together (bench/conn_spread.py) use distinct ids
  --username U          CONNECT's username (default: none)
  --password P          CONNECT's password, a JSON Web Token say (default: none)
  --passwords FILE      one password a line; the connection of client id bench-conn-N
                        sends line N (mod their number): tokens each verified once
  --tls                 MQTT over TLS (also in sessions mode); the broker's certificate
                        must chain to --ca FILE (default: the system's trust store) and
                        name --host

sessions options (and --connections, --rate, --source from conn):
  --phase create|resume (default create)
  --sample K            resume: sessions visited, evenly over the range (default 1000)
  --connect-timeout S   deadline of one whole visit (default 10)

pub/sub options:
  --scenario NAME       p2p    : publisher i -> subscriber i, own topic each (P = S)
                        fanin  : P publishers -> one topic -> S subscribers (many -> 1)
                        fanout : P publishers -> one topic -> S subscribers (1 -> many)
                        shared : P publishers -> S subscribers of $share/bench/<topic>
                        (default p2p)
  --publishers P        (default 1)
  --subscribers S       (default 1)
  --qos 0|1|2           publish and subscribe QoS (default 0)
  --size BYTES          payload size, >= 24 (default 64)
  --duration S          publishing time (default 10)
  --drain S             wait at most S seconds for outstanding messages (default 5)
  --inflight N          unacknowledged QoS 1/2 messages per publisher (default 64)
  --persistent          subscribers connect with clean session 0 (v5: session expiry 1 h)
  --offline             persistent subscribers subscribe, leave, and come back once the
                        publishers are done: measures publishing into stored sessions
  --topic-prefix T      (default bench)
  --filter F            fanin/fanout: subscribers subscribe to F, a filter that must match
                        the topic (default: the topic itself), e.g. 'bench/#'

queue options (and --rate, --size, --duration from pub/sub; --size at most 1048576):
  --endpoint URL        http://HOST[:PORT][/PATH] or https://... (default
                        http://127.0.0.1:8080; path default /v2/index.php)
  --ca FILE             https: CA bundle that the server's certificate must chain to
                        (default: the system's; wharf's embedded default generates
                        ./wharf-data/tls/dev-ca.pem)
  --secret-id ID        (default wharf-dev, the embedded default's development credential)
  --secret-key KEY      (default wharf-dev-secret)
  --queue NAME          the queue, created when missing (default bench-<random>)
  --keep                keep the queue at the end; otherwise a queue this run created is
                        deleted (a queue that existed before is never deleted)
  --batch N             messages per request, 1..16: 1 uses SendMessage, ReceiveMessage,
                        DeleteMessage; more, BatchSendMessage etc. with N (default 1)
  --producers P         senders, each on its own keep-alive connection (default 1)
  --consumers C         receivers, each on its own keep-alive connection (default 1)
  --polling-wait S      consumers' pollingWaitSeconds, 0..30 (default 1)
  --groups G            an ordered queue (orderedQueue=1, created so) whose messages go to
                        G message groups in turn (msgGroupId); default: a plain queue

Latency is receive time minus the steady_clock send timestamp in the first 8 payload
bytes. lost = messages that should have arrived (QoS > 0: acknowledged to the publisher;
QoS 0: written to the socket) but did not, after the drain. Unpaced runs (--rate 0)
measure saturation throughput; their latency includes queueing in the broker and the
kernel. For latency, pace below capacity. Live progress goes to stderr.

queue latencies: send = request written until its answer (code 0 means durable, so this
includes the broker's fsync); consume = receive request until the delete's answer, for
receives that got messages; end to end = the send timestamp in the body until the receive
answer. Each producer and consumer has one request outstanding at a time, so unpaced
throughput is bounded by (producers or consumers) x batch / request latency.
)";
}

std::optional<options> parse_options(int argc, char** argv, std::string& error, bool& help) {
  options o;
  help = false;
  if (argc < 2) {
    error = "missing mode";
    return std::nullopt;
  }
  const std::string_view m = argv[1];
  if (m == "--help" || m == "-h") {
    help = true;
    return std::nullopt;
  }
  if (m == "conn") o.mode = mode::conn;
  else if (m == "pub" || m == "sub") o.mode = mode::pubsub;
  else if (m == "queue") o.mode = mode::queue;
  else if (m == "sessions") o.mode = mode::sessions;
  else {
    error = "unknown mode '" + std::string(m) + "'";
    return std::nullopt;
  }
  for (int i = 2; i < argc; ++i) {
    const std::string_view key = argv[i];
    if (key == "--help" || key == "-h") {
      help = true;
      return std::nullopt;
    }
    if (key == "--json") { o.json = true; continue; }
    if (key == "--persistent") { o.persistent = true; continue; }
    if (key == "--offline") { o.offline = o.persistent = true; continue; }
    if (key == "--keep") { o.keep_queue = true; continue; }
    if (key == "--tls") { o.tls = true; continue; }
    if (i + 1 >= argc) {
      error = "option " + std::string(key) + " needs a value (or is unknown)";
      return std::nullopt;
    }
    const std::string_view v = argv[++i];
    bool ok = true;
    unsigned qos = 0;
    if (key == "--host") o.host = v;
    else if (key == "--port") ok = parse_number(v, o.port);
    else if (key == "--threads") ok = parse_number(v, o.threads) && o.threads > 0;
    else if (key == "--mqtt-version") {
      if (v == "3.1.1" || v == "4") o.version = mqtt::protocol_version::v3_1_1;
      else if (v == "5" || v == "5.0") o.version = mqtt::protocol_version::v5;
      else ok = false;
    } else if (key == "--keepalive") ok = parse_number(v, o.keep_alive_s);
    else if (key == "--rate") ok = parse_number(v, o.rate) && o.rate >= 0;
    else if (key == "--connections") ok = parse_number(v, o.connections);
    else if (key == "--hold") ok = parse_number(v, o.hold_s) && o.hold_s >= 0;
    else if (key == "--username") o.username = v;
    else if (key == "--password") o.password = v;
    else if (key == "--passwords") {
      std::ifstream in{std::string(v)};
      for (std::string line; std::getline(in, line);)
        if (!line.empty()) o.passwords.push_back(line);
      if (o.passwords.empty()) {
        error = "--passwords " + std::string(v) + ": no password read (a missing or empty file)";
        return std::nullopt;
      }
    }
    else if (key == "--source") o.sources = split_commas(v);
    else if (key == "--first-id") ok = parse_number(v, o.first_id);
    else if (key == "--connect-timeout") ok = parse_number(v, o.connect_timeout_s) && o.connect_timeout_s > 0;
    else if (key == "--phase") {
      if (v == "create") o.session_phase = session_phase::create;
      else if (v == "resume") o.session_phase = session_phase::resume;
      else ok = false;
    } else if (key == "--sample") ok = parse_number(v, o.sample) && o.sample > 0;
    else if (key == "--scenario") {
      if (v == "p2p") o.scenario = scenario::p2p;
      else if (v == "fanin") o.scenario = scenario::fanin;
      else if (v == "fanout") o.scenario = scenario::fanout;
      else if (v == "shared") o.scenario = scenario::shared;
      else ok = false;
    } else if (key == "--publishers") ok = parse_number(v, o.publishers) && o.publishers > 0;
    else if (key == "--subscribers") ok = parse_number(v, o.subscribers) && o.subscribers > 0;
    else if (key == "--qos") {
      ok = parse_number(v, qos) && qos <= 2;
      o.qos = static_cast<mqtt::qos>(qos);
    } else if (key == "--size") ok = parse_number(v, o.size_bytes) && o.size_bytes >= 24 && o.size_bytes < (1U << 28);
    else if (key == "--duration") ok = parse_number(v, o.duration_s) && o.duration_s > 0;
    else if (key == "--drain") ok = parse_number(v, o.drain_s) && o.drain_s >= 0;
    else if (key == "--inflight") ok = parse_number(v, o.inflight_max) && o.inflight_max > 0 && o.inflight_max < 65535;
    else if (key == "--topic-prefix") o.topic_prefix = v;
    else if (key == "--filter") o.subscribe_filter = v;
    else if (key == "--endpoint") o.endpoint = v;
    else if (key == "--ca") o.ca_file = v;
    else if (key == "--secret-id") o.secret_id = v;
    else if (key == "--secret-key") o.secret_key = v;
    else if (key == "--queue") {
      ok = is_queue_name(v);
      o.queue_name = v;
    }
    else if (key == "--batch") ok = parse_number(v, o.batch) && o.batch >= 1 && o.batch <= cmq_batch_max;
    else if (key == "--producers") ok = parse_number(v, o.producers) && o.producers > 0;
    else if (key == "--consumers") ok = parse_number(v, o.consumers) && o.consumers > 0;
    else if (key == "--polling-wait") ok = parse_number(v, o.polling_wait_s) && o.polling_wait_s <= 30;
    else if (key == "--groups") ok = parse_number(v, o.groups) && o.groups > 0;
    else {
      error = "unknown option " + std::string(key);
      return std::nullopt;
    }
    if (!ok) {
      error = "bad value '" + std::string(v) + "' for " + std::string(key);
      return std::nullopt;
    }
  }
  if (o.mode == mode::queue && o.size_bytes > cmq_body_bytes_max) {
    error = "--size must be at most " + std::to_string(cmq_body_bytes_max) + " in queue mode (CMQ's largest maxMsgSize)";
    return std::nullopt;
  }
  if (!o.subscribe_filter.empty() && (o.mode != mode::pubsub || (o.scenario != scenario::fanin && o.scenario != scenario::fanout))) {
    error = "--filter is for the pub/sub fanin and fanout scenarios";
    return std::nullopt;
  }
  if (o.mode == mode::pubsub && o.scenario == scenario::p2p && o.publishers != o.subscribers) {
    // p2p pairs publisher i with subscriber i.
    o.subscribers = o.publishers = std::max(o.publishers, o.subscribers);
  }
  return o;
}

}  // namespace wharf::bench
