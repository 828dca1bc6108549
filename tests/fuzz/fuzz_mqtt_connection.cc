// libFuzzer target over the broker's connection state machine: arbitrary bytes from a client
// go through the framer, the codec and every protocol rule of gateway/mqtt/connection (the
// CONNECT handshake, QoS flows, topic aliases, subscriptions, wills, session takeover and
// persistence) in a real broker with real RocksDB storage, in process. Whatever the input,
// the broker must not crash, trip a sanitizer or leak.
//
// Each input is split into two client byte streams (the first byte chooses where), fed in
// chunks; a well-behaved subscriber to '#' is connected throughout so routing and delivery
// run too. The I/O pool's threads are not started: the fuzzer thread runs shard 0's
// io_context with poll(), so everything is deterministic except storage completions.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/storage.h"
#include "gateway/mqtt/broker.h"
#include "gateway/mqtt/protocol/codec.h"
#include "net/io_pool.h"
#include "net/stream.h"
#include "tests/support/fake_stream.h"

namespace {

using namespace wharf;

using test::fake_stream;

struct fixture {
  fixture() {
    // The fake streams' peer is listener 0, open to clients without credentials.
    config::listener_config open_listener;
    open_listener.anonymous = true;
    cfg.listeners.push_back(open_listener);
    cfg.mqtt.max_packet_size = 65536;
    cfg.mqtt.receive_maximum = 8;
    cfg.mqtt.topic_alias_maximum = 4;
    cfg.mqtt.max_queued_messages = 64;
    cfg.mqtt.max_subscriptions_per_client = 16;
    dir = std::filesystem::temp_directory_path() / ("wharf-fuzz-conn-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    // No fsync: the fuzzer looks for logic faults, not durability (the crash test does that).
    db = core::storage::open({.path = dir.string(), .sync = false});
    pool = std::make_unique<net::io_pool>(1);
    broker = std::make_unique<gateway::broker>(cfg, *db, *pool);
    (void)broker->load();
    subscriber = connect_subscriber();
  }

  std::shared_ptr<fake_stream> connect_subscriber() {
    auto s = std::make_shared<fake_stream>();
    broker->accept(s);
    std::vector<std::uint8_t> bytes;
    mqtt::connect_packet c;
    c.client_id = "fuzz-observer";
    c.version = mqtt::protocol_version::v5;
    mqtt::encode(c, mqtt::protocol_version::v5, bytes);
    mqtt::subscribe_packet sub;
    sub.packet_id = 1;
    sub.subscriptions.push_back({"#", {mqtt::qos::exactly_once, false, false, 0}});
    mqtt::encode(sub, mqtt::protocol_version::v5, bytes);
    s->feed(bytes);
    run();
    return s;
  }

  void run() {
    auto& io = pool->context(0);
    io.restart();
    io.poll();
  }

  config::config cfg;
  std::filesystem::path dir;
  std::unique_ptr<core::storage> db;
  std::unique_ptr<net::io_pool> pool;
  std::unique_ptr<gateway::broker> broker;
  std::shared_ptr<fake_stream> subscriber;
};

fixture& the_fixture() {
  static fixture* f = new fixture();  // lives for the process: the fuzzer never returns
  return *f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& f = the_fixture();
  if (size < 2) return 0;
  // Byte 0: where the input splits between the two clients; byte 1: chunk size.
  const std::size_t split = 2 + (size - 2) * data[0] / 255;
  const std::size_t chunk = 1 + data[1] % 64;
  const std::span<const std::uint8_t> first(data + 2, split - 2);
  const std::span<const std::uint8_t> second(data + split, size - split);

  auto a = std::make_shared<fake_stream>();
  auto b = std::make_shared<fake_stream>();
  f.broker->accept(a);
  f.broker->accept(b);
  for (std::size_t i = 0; i < std::max(first.size(), second.size()); i += chunk) {
    if (i < first.size()) a->feed(first.subspan(i, std::min(chunk, first.size() - i)));
    f.run();
    if (i < second.size()) b->feed(second.subspan(i, std::min(chunk, second.size() - i)));
    f.run();
  }
  a->finish();
  b->finish();
  f.run();
  f.subscriber->output().clear();
  if (f.subscriber->closed()) {
    // The observer was taken over by a fuzz client using its id: connect a fresh one.
    f.subscriber->finish();
    f.subscriber = f.connect_subscriber();
  }
  return 0;
}
