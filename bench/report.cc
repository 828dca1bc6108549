#include "bench/report.h"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <fmt/format.h>

namespace wharf::bench {
namespace {

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }
double per_s(std::uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; }
const char* version_name(mqtt::protocol_version v) { return v == mqtt::protocol_version::v5 ? "5" : "3.1.1"; }

std::string latency_json(const histogram& h) {
  return fmt::format("{{\"count\":{},\"p50\":{:.1f},\"p90\":{:.1f},\"p99\":{:.1f},\"p99_9\":{:.1f},\"max\":{:.1f}}}",
                     h.count(), us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)),
                     us(h.percentile(99.9)), us(h.max()));
}

std::string latency_text(const histogram& h) {
  return fmt::format("p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}  (n={})", us(h.percentile(50)),
                     us(h.percentile(90)), us(h.percentile(99)), us(h.percentile(99.9)), us(h.max()), h.count());
}

}  // namespace

const char* scenario_name(scenario s) noexcept {
  switch (s) {
    case scenario::p2p: return "p2p";
    case scenario::fanin: return "fanin";
    case scenario::fanout: return "fanout";
    case scenario::shared: return "shared";
  }
  return "?";
}

std::string format_pubsub(const pubsub_result& r, const options& o) {
  const auto& h = r.latency;
  const double sent_per_s = per_s(r.sent, r.publish_s);
  if (o.json) {
    return fmt::format(
        "{{\"mode\":\"pubsub\",\"scenario\":\"{}\",\"mqtt_version\":\"{}\",\"qos\":{},\"publishers\":{},"
        "\"subscribers\":{},\"size_bytes\":{},\"rate\":{},\"threads\":{},\"duration_s\":{:.3f},"
        "\"sent\":{},\"acked\":{},\"received\":{},\"expected\":{},\"lost\":{},\"duplicates\":{},\"errors\":{},\"stale\":{},"
        "\"sent_per_s\":{:.1f},\"acked_per_s\":{:.1f},\"received_per_s\":{:.1f},"
        "\"latency_us\":{{\"count\":{},\"min\":{:.1f},\"mean\":{:.1f},\"p50\":{:.1f},\"p90\":{:.1f},"
        "\"p99\":{:.1f},\"p99_9\":{:.1f},\"max\":{:.1f}}}}}\n",
        scenario_name(o.scenario), version_name(o.version), static_cast<int>(o.qos), o.publishers, o.subscribers,
        o.size_bytes, o.rate, o.threads, r.publish_s, r.sent, r.acked, r.received, r.expected, r.lost,
        r.duplicates, r.errors, r.stale, sent_per_s, per_s(r.acked, r.publish_s), r.received_per_s, h.count(), us(h.min()), h.mean() / 1000.0,
        us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)), us(h.percentile(99.9)), us(h.max()));
  }
  return fmt::format(
      "scenario {} (MQTT {}, QoS {}), {} publishers, {} subscribers, {} B payload, rate {}\n"
      "published for {:.2f} s\n"
      "  sent        {:>12}  ({:.0f} msg/s)\n"
      "  acked       {:>12}\n"
      "  received    {:>12}  ({:.0f} msg/s)\n"
      "  expected    {:>12}\n"
      "  lost        {:>12}\n"
      "  duplicates  {:>12}\n"
      "  errors      {:>12}\n"
      "  stale       {:>12}\n"
      "latency (us): p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}  (mean {:.1f}, n={})\n",
      scenario_name(o.scenario), version_name(o.version), static_cast<int>(o.qos), o.publishers, o.subscribers,
      o.size_bytes, o.rate > 0 ? fmt::format("{}/s", o.rate) : std::string("unpaced"), r.publish_s, r.sent,
      sent_per_s, r.acked, r.received, r.received_per_s, r.expected, r.lost, r.duplicates, r.errors, r.stale,
      us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)), us(h.percentile(99.9)), us(h.max()),
      h.mean() / 1000.0, h.count());
}

std::string format_conn(const conn_result& r, const options& o) {
  const auto& h = r.connect_latency;
  const double rate = per_s(r.connected, r.connect_s);
  if (o.json) {
    return fmt::format(
        "{{\"mode\":\"conn\",\"mqtt_version\":\"{}\",\"requested\":{},\"connected\":{},\"failed\":{},"
        "\"dropped\":{},\"connect_s\":{:.3f},\"connects_per_s\":{:.1f},\"hold_s\":{},"
        "\"connect_latency_us\":{{\"p50\":{:.1f},\"p90\":{:.1f},\"p99\":{:.1f},\"p99_9\":{:.1f},\"max\":{:.1f}}}}}\n",
        version_name(o.version), r.requested, r.connected, r.failed, r.dropped, r.connect_s, rate, o.hold_s,
        us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)), us(h.percentile(99.9)), us(h.max()));
  }
  return fmt::format(
      "conn (MQTT {}): {} requested, {} connected, {} failed, {} dropped during the {} s hold\n"
      "connect rate {:.0f}/s over {:.2f} s\n"
      "connect latency (us): p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  p99.9 {:.1f}  max {:.1f}\n",
      version_name(o.version), r.requested, r.connected, r.failed, r.dropped, o.hold_s, rate, r.connect_s,
      us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)), us(h.percentile(99.9)), us(h.max()));
}

std::string format_queue(const queue_result& r, const options& o) {
  std::uint64_t errors = 0;
  std::string by_code_json, by_code_text;
  for (const auto& [code, n] : r.errors) {
    errors += n;
    // Codes are digits or "transport": nothing to escape.
    by_code_json += fmt::format("{}\"{}\":{}", by_code_json.empty() ? "" : ",", code, n);
    by_code_text += fmt::format("{}{}: {}", by_code_text.empty() ? "" : ", ", code, n);
  }
  if (o.json) {
    return fmt::format(
        "{{\"mode\":\"queue\",\"endpoint\":{},\"queue\":\"{}\",\"producers\":{},\"consumers\":{},\"batch\":{},"
        "\"size_bytes\":{},\"rate\":{},\"threads\":{},\"polling_wait_s\":{},\"duration_s\":{:.3f},"
        "\"sent\":{},\"received\":{},\"deleted\":{},\"empty_receives\":{},\"stale\":{},\"errors\":{},"
        "\"errors_by_code\":{{{}}},\"sent_per_s\":{:.1f},\"received_per_s\":{:.1f},\"deleted_per_s\":{:.1f},"
        "\"send_latency_us\":{},\"consume_latency_us\":{},\"end_to_end_latency_us\":{}}}\n",
        boost::json::serialize(boost::json::string(o.endpoint)), r.queue, o.producers, o.consumers, o.batch,
        o.size_bytes, o.rate, o.threads, o.polling_wait_s, r.send_s, r.sent, r.received, r.deleted,
        r.empty_receives, r.stale, errors, by_code_json, per_s(r.sent, r.send_s), per_s(r.received, r.send_s),
        per_s(r.deleted, r.send_s), latency_json(r.send_latency), latency_json(r.consume_latency),
        latency_json(r.end_to_end));
  }
  return fmt::format(
      "queue {} at {}: {} producers, {} consumers, batch {}, {} B bodies, rate {}\n"
      "sent for {:.2f} s\n"
      "  sent            {:>12}  ({:.0f} msg/s)\n"
      "  received        {:>12}  ({:.0f} msg/s)\n"
      "  deleted         {:>12}  ({:.0f} msg/s)\n"
      "  empty receives  {:>12}\n"
      "  stale           {:>12}\n"
      "  errors          {:>12}{}\n"
      "latency (us)\n"
      "  send request    {}\n"
      "  receive+delete  {}\n"
      "  end to end      {}\n",
      r.queue, o.endpoint, o.producers, o.consumers, o.batch, o.size_bytes,
      o.rate > 0 ? fmt::format("{}/s", o.rate) : std::string("unpaced"), r.send_s, r.sent, per_s(r.sent, r.send_s),
      r.received, per_s(r.received, r.send_s), r.deleted, per_s(r.deleted, r.send_s), r.empty_receives, r.stale,
      errors, by_code_text.empty() ? "" : "  (" + by_code_text + ")", latency_text(r.send_latency),
      latency_text(r.consume_latency), latency_text(r.end_to_end));
}

std::string format_sessions(const sessions_result& r, const options& o) {
  const double rate = per_s(r.done, r.elapsed_s);
  if (o.json) {
    return fmt::format(
        "{{\"mode\":\"sessions\",\"phase\":\"{}\",\"mqtt_version\":\"{}\",\"sessions\":{},\"visited\":{},"
        "\"done\":{},\"failed\":{},\"absent\":{},\"delivered\":{},\"elapsed_s\":{:.3f},\"per_s\":{:.1f},"
        "\"latency_us\":{}}}\n",
        r.phase, version_name(o.version), r.sessions, r.visited, r.done, r.failed, r.absent, r.delivered, r.elapsed_s,
        rate, latency_json(r.latency));
  }
  return fmt::format(
      "sessions {} (MQTT {}): {} of {} sessions visited, {} done ({:.0f}/s over {:.2f} s), {} failed{}\n"
      "visit latency (us): {}\n",
      r.phase, version_name(o.version), r.visited, r.sessions, r.done, rate, r.elapsed_s, r.failed,
      r.phase == "resume" ? fmt::format(", {} without their session, {} got their message back", r.absent, r.delivered)
                          : std::string(),
      latency_text(r.latency));
}

}  // namespace wharf::bench
