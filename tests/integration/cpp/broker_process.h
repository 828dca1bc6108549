// Runs a broker as a child process for integration tests: a temp directory, a
// config file, a free port, start / graceful stop / kill -9, and the broker's
// stderr kept in a file so a failing test can print it.
//
// The broker under test is wharf (env WHARF_BIN, else the path CMake compiled in
// as WHARF_DEFAULT_BIN). With WHARF_TEST_BROKER=mosquitto the same tests drive
// Mosquitto instead (env MOSQUITTO_BIN, default /usr/sbin/mosquitto), which lets
// the tests themselves be checked before wharf works. Mosquitto does not fsync
// before PUBACK, so durability tests may legitimately fail against it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <mqtt/connect_options.h>

namespace wharf::itest {

enum class broker_kind { wharf, mosquitto };

// Reads WHARF_TEST_BROKER: unset or "wharf" -> wharf, "mosquitto" -> mosquitto.
// Anything else is a usage error and throws.
broker_kind broker_kind_from_env();
const char* to_string(broker_kind kind);

// A fresh directory under $TMPDIR (default /tmp), removed on destruction unless
// WHARF_TEST_KEEP_TMP is set (then its path is printed).
class temp_dir {
 public:
  explicit temp_dir(const std::string& prefix);
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Binds 127.0.0.1:0, reads the port the kernel chose, closes the socket.
// Another process may take the port before the broker binds it; rare enough.
std::uint16_t pick_free_port();

// One broker process at a time, always on the same port and data directory, so
// a restart looks to clients like the same broker coming back.
class broker_process {
 public:
  struct options {
    int io_threads = 2;
    int max_queued_messages = 20000;
    // How long start() waits for the port to accept connections.
    std::chrono::milliseconds ready_timeout_ms{60'000};
    // How long stop() waits after SIGTERM before it sends SIGKILL.
    std::chrono::milliseconds stop_grace_ms{30'000};
  };

  // Result of stop(): how it went, for tests that care about clean shutdown.
  struct stop_result {
    std::chrono::milliseconds duration_ms{0};
    bool needed_sigkill = false;
    int wait_status = 0;  // as from waitpid()
    bool exited_cleanly() const;
  };

  // Everything lives under work_dir: data/, the config file, broker.log.
  broker_process(std::filesystem::path work_dir, options opts);
  explicit broker_process(std::filesystem::path work_dir)
      : broker_process(std::move(work_dir), options{}) {}
  ~broker_process();  // kill -9 if still running
  broker_process(const broker_process&) = delete;
  broker_process& operator=(const broker_process&) = delete;

  // Spawns the broker and waits until its port accepts a TCP connection.
  // Throws std::runtime_error (with the log tail) if it exits or times out.
  void start();
  // SIGTERM, wait up to stop_grace_ms, then SIGKILL. No-op if not running.
  stop_result stop();
  // SIGKILL and reap: the crash in crash tests.
  void kill9();
  bool running();

  broker_kind kind() const { return kind_; }
  std::uint16_t port() const { return port_; }
  std::string uri() const;  // "tcp://127.0.0.1:PORT"
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::filesystem::path& log_path() const { return log_path_; }
  // Time from spawn to the port accepting, for the last start().
  std::chrono::milliseconds last_start_duration_ms() const { return last_start_ms_; }
  // Whole stderr/stdout of every run so far, each run headed by a marker line.
  std::string log() const;
  std::string log_tail(std::size_t max_bytes = 8192) const;

 private:
  void write_config();
  // Reaps the child if it has exited; returns its wait status then.
  std::optional<int> try_reap();

  std::filesystem::path work_dir_;
  std::filesystem::path data_dir_;
  std::filesystem::path config_path_;
  std::filesystem::path log_path_;
  options opts_;
  broker_kind kind_;
  std::string binary_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  int start_count_ = 0;
  std::chrono::milliseconds last_start_ms_{0};
};

// Base fixture: a temp dir and a started broker per test; prints the broker's
// log when the test failed, then stops it.
class broker_test : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Override to tune the broker before it starts.
  virtual broker_process::options broker_options() const { return {}; }

  broker_process& broker() { return *broker_; }

  std::optional<temp_dir> tmp_;
  std::optional<broker_process> broker_;
};

// Connect options for the two protocol versions the tests use.
// keep_alive is long so a test stopped in a debugger does not lose its session.
mqtt::connect_options v311_connect_options(bool clean_session);
// session_expiry_s is sent as the Session Expiry Interval property when > 0.
mqtt::connect_options v5_connect_options(bool clean_start, int session_expiry_s);

// Seed for a test's randomness: env WHARF_TEST_SEED if set, else random.
std::uint64_t test_seed();

}  // namespace wharf::itest
