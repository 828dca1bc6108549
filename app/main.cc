// wharf: start-up and shut-down order.
//   config -> storage -> I/O pool -> broker (load sessions, retained) -> listeners -> run
//   signal -> listeners stop -> broker shutdown (DISCONNECT 0x8B, wills, persist) -> pool -> storage
#include <signal.h>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/storage.h"
#include "gateway/mqtt/broker.h"
#include "gateway/mqtt/transport/io_pool.h"
#include "gateway/mqtt/transport/listener.h"
#include "tls/tls_context.h"

namespace {

constexpr const char* usage_text =
    "usage: wharf [--config FILE] [--print-default-config] [--help]\n"
    "  --config FILE            run with the YAML configuration FILE (default: the embedded default)\n"
    "  --print-default-config   print the embedded default configuration and exit\n";

struct options {
  std::string config_file;
  bool print_default = false;
};

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      o.config_file = argv[++i];
    } else if (arg == "--print-default-config") {
      o.print_default = true;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    } else {
      std::fprintf(stderr, "wharf: unknown argument '%s'\n%s", arg.c_str(), usage_text);
      std::exit(2);
    }
  }
  return o;
}

int run(const options& opts) {
  using namespace wharf;
  config::config cfg;
  try {
    if (opts.config_file.empty()) {
      // The embedded default's TLS listener uses a development certificate made on first start.
      const auto dev = tls::generate_self_signed("./wharf-data/tls");
      spdlog::info("embedded default configuration; TLS clients can trust {}", dev.ca.cert_file);
    }
    cfg = opts.config_file.empty() ? config::parse_config(config::embedded_default_yaml(), "<embedded>")
                                   : config::load_config_file(opts.config_file);
  } catch (const config::config_errors& e) {
    for (const auto& err : e.errors()) std::fprintf(stderr, "%s\n", err.to_string().c_str());
    return 1;
  }
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));

  // Signals are taken by sigwait on this thread; block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::filesystem::create_directories(cfg.data_dir);
  auto db = core::storage::open({.path = (std::filesystem::path(cfg.data_dir) / "db").string()});

  gateway::io_pool pool(cfg.io_threads);
  gateway::broker broker(cfg, *db, pool);
  broker.load();

  std::vector<gateway::listener_handle> listeners;
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
    const auto& l = cfg.listeners[i];
    std::shared_ptr<boost::asio::ssl::context> tls_context;
    if (l.tls) tls_context = tls::make_server_context(*l.tls);
    gateway::listener_options lo;
    lo.max_ws_message_bytes = std::size_t{cfg.mqtt.max_packet_size} + 4096;
    listeners.push_back(gateway::start_listener(
        pool, i, l, tls_context, [&broker](std::shared_ptr<gateway::stream> s) { broker.accept(std::move(s)); }, lo));
    spdlog::info("listening on {} ({}{}), port {}", l.bind, l.type == config::listener_type::mqtt ? "mqtt" : "mqtt-ws",
                 l.tls ? ", tls" : "", listeners.back().port());
  }
  pool.run();
  broker.start();
  spdlog::info("wharf {} ready: {} I/O threads, data in {}", WHARF_VERSION, pool.size(), cfg.data_dir);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("signal {} received: shutting down", sig);
  for (auto& l : listeners) l.stop();
  broker.shutdown();
  pool.stop();
  pool.join();
  db->close();
  spdlog::info("stopped cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto opts = parse_args(argc, argv);
  if (opts.print_default) {
    std::fputs(wharf::config::embedded_default_yaml().c_str(), stdout);
    return 0;
  }
  try {
    return run(opts);
  } catch (const std::exception& e) {
    spdlog::critical("wharf: {}", e.what());
    return 1;
  }
}
