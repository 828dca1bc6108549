#include "broker_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <mqtt/properties.h>

namespace wharf::itest {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

std::string wharf_binary() {
#ifdef WHARF_DEFAULT_BIN
  const std::string fallback = WHARF_DEFAULT_BIN;
#else
  const std::string fallback;
#endif
  std::string bin = env_or("WHARF_BIN", fallback);
  if (bin.empty()) {
    throw std::runtime_error(
        "no wharf binary: set WHARF_BIN, build through the wharf CMake project, "
        "or set WHARF_TEST_BROKER=mosquitto");
  }
  return bin;
}

std::int64_t ms_since(steady::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
}

// True once a TCP connect to 127.0.0.1:port succeeds.
bool port_accepts(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string describe_wait_status(int status) {
  std::ostringstream out;
  if (WIFEXITED(status)) {
    out << "exited with status " << WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out << "killed by signal " << WTERMSIG(status) << " (" << ::strsignal(WTERMSIG(status)) << ")";
  } else {
    out << "wait status " << status;
  }
  return out.str();
}

}  // namespace

broker_kind broker_kind_from_env() {
  const std::string v = env_or("WHARF_TEST_BROKER", "wharf");
  if (v == "wharf") return broker_kind::wharf;
  if (v == "mosquitto") return broker_kind::mosquitto;
  throw std::runtime_error("WHARF_TEST_BROKER must be 'wharf' or 'mosquitto', not '" + v + "'");
}

const char* to_string(broker_kind kind) {
  return kind == broker_kind::wharf ? "wharf" : "mosquitto";
}

temp_dir::temp_dir(const std::string& prefix) {
  std::string pattern = env_or("TMPDIR", "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error("mkdtemp(" + pattern + "): " + std::strerror(errno));
  }
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  if (std::getenv("WHARF_TEST_KEEP_TMP") != nullptr) {
    std::cerr << "[itest] keeping " << path_ << "\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// The first port of the kernel's ephemeral range (the source ports of outgoing connections).
std::uint16_t first_ephemeral_port() {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned low = 0;
  if (!(range >> low) || low <= 20001 || low > 65535) return 32768;  // Linux's default
  return static_cast<std::uint16_t>(low);
}

// Reserves `port` against the other test processes for as long as this one lives: ctest runs
// test processes side by side, and a port is free while its broker is down for a restart, so
// another process could otherwise choose it then. The reservation is an flock on a lock file
// per port, shared with tests/integration/free_port.py; the kernel drops the lock of a
// process that dies, so none is left stale. False when another process holds it.
bool reserve_port(unsigned port) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "wharf-test-ports";
  std::error_code ec;
  std::filesystem::create_directory(dir, ec);
  // Like /tmp: tests run by several users share it.
  using std::filesystem::perms;
  std::filesystem::permissions(dir, perms::all | perms::sticky_bit, ec);
  const std::string lock_path = (dir / (std::to_string(port) + ".lock")).string();
  const int fd = ::open(lock_path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open " + lock_path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd);
    if (error == EWOULDBLOCK) return false;
    throw std::runtime_error("flock " + lock_path + ": " + std::strerror(error));
  }
  return true;  // the descriptor stays open, and the lock held, until the process exits
}

// A loopback port no one listens on and no other test process has reserved, chosen below the
// ephemeral range: a port the kernel picked (bind to port 0) is one a client's connection can
// take as its source port while the broker is being restarted on it, and the restart then
// fails to bind. Never the same port twice in one process: a port is only taken when its
// broker starts, and a test that builds two brokers before starting them must not have them
// share one.
std::uint16_t pick_free_port() {
  static std::mt19937 rng{std::random_device{}()};
  static std::set<unsigned> handed_out;
  std::uniform_int_distribution<unsigned> pick(20000, first_ephemeral_port() - 1u);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const unsigned port = pick(rng);
    if (!handed_out.insert(port).second || !reserve_port(port)) continue;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (bound) return ntohs(addr.sin_port);
  }
  throw std::runtime_error("no free loopback port below the ephemeral range after 100 tries");
}

bool broker_process::stop_result::exited_cleanly() const {
  return !needed_sigkill && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

broker_process::broker_process(std::filesystem::path work_dir, options opts)
    : work_dir_(std::move(work_dir)),
      data_dir_(work_dir_ / "data"),
      log_path_(work_dir_ / "broker.log"),
      opts_(opts),
      kind_(broker_kind_from_env()) {
  std::filesystem::create_directories(data_dir_);
  if (kind_ == broker_kind::wharf) {
    binary_ = wharf_binary();
    config_path_ = work_dir_ / "wharf.yaml";
  } else {
    binary_ = env_or("MOSQUITTO_BIN", "/usr/sbin/mosquitto");
    config_path_ = work_dir_ / "mosquitto.conf";
  }
  port_ = pick_free_port();
  write_config();
}

broker_process::~broker_process() {
  if (pid_ > 0) kill9();
}

std::string broker_process::uri() const {
  return "tcp://127.0.0.1:" + std::to_string(port_);
}

void broker_process::write_config() {
  std::ofstream out(config_path_, std::ios::trunc);
  if (kind_ == broker_kind::wharf) {
    out << "data_dir: " << data_dir_.string() << "\n"
        << "listeners:\n"
        << "  - {type: mqtt, bind: \"127.0.0.1:" << port_ << "\", anonymous: true}\n"
        << "io_threads: " << opts_.io_threads << "\n"
        << "mqtt: {max_queued_messages: " << opts_.max_queued_messages << "}\n";
  } else {
    // persistence_location needs the trailing slash. As root, Mosquitto would
    // otherwise drop privileges to user "mosquitto", who cannot write our dir.
    out << "listener " << port_ << " 127.0.0.1\n"
        << "allow_anonymous true\n"
        << "persistence true\n"
        << "persistence_location " << data_dir_.string() << "/\n"
        << "autosave_interval 1\n"
        << "max_queued_messages " << opts_.max_queued_messages << "\n"
        << "set_tcp_nodelay true\n"
        << "log_dest stderr\n"
        << "log_type error\nlog_type warning\nlog_type notice\n";
    if (::geteuid() == 0) out << "user root\n";
  }
  if (!out) throw std::runtime_error("cannot write " + config_path_.string());
}

void broker_process::start() {
  if (pid_ > 0) throw std::logic_error("broker_process::start: already running");
  ++start_count_;

  // Everything the child needs is built before fork(): after fork in a
  // multithreaded process the child may only make async-signal-safe calls.
  std::vector<std::string> args{binary_};
  if (kind_ == broker_kind::wharf) {
    args.insert(args.end(), {"--config", config_path_.string()});
  } else {
    args.insert(args.end(), {"-c", config_path_.string()});
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  {
    std::ofstream log(log_path_, std::ios::app);
    log << "=== [itest] start #" << start_count_ << ":";
    for (const auto& a : args) log << " " << a;
    log << "\n";
  }
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) throw std::runtime_error("cannot open broker log or /dev/null");
  const pid_t parent = ::getpid();

  const auto t0 = steady::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    ::close(null_fd);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Child. Die with the test process, so a crashed test leaves no broker.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    // Client sockets of the test (Paho's are not close-on-exec) must not leak
    // into the broker: a leaked fd keeps a TCP connection half alive.
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    static const char msg[] = "[itest] execv failed\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  pid_ = pid;

  const auto deadline = t0 + opts_.ready_timeout_ms;
  while (true) {
    if (auto status = try_reap()) {
      throw std::runtime_error(std::string(to_string(kind_)) + " " + describe_wait_status(*status) +
                               " before accepting on port " + std::to_string(port_) +
                               "; log:\n" + log_tail());
    }
    if (port_accepts(port_)) break;
    if (steady::now() > deadline) {
      kill9();
      throw std::runtime_error(std::string(to_string(kind_)) + " did not accept on port " +
                               std::to_string(port_) + " within " +
                               std::to_string(opts_.ready_timeout_ms.count()) + " ms; log:\n" +
                               log_tail());
    }
    std::this_thread::sleep_for(10ms);
  }
  last_start_ms_ = std::chrono::milliseconds(ms_since(t0));
}

std::optional<int> broker_process::try_reap() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return status;
  }
  return std::nullopt;
}

bool broker_process::running() {
  (void)try_reap();
  return pid_ > 0;
}

broker_process::stop_result broker_process::stop() {
  stop_result result;
  if (pid_ <= 0) return result;
  const pid_t pid = pid_;
  const auto t0 = steady::now();
  ::kill(pid, SIGTERM);
  while (true) {
    if (auto status = try_reap()) {
      result.wait_status = *status;
      break;
    }
    if (steady::now() - t0 > opts_.stop_grace_ms) {
      std::cerr << "[itest] " << to_string(kind_) << " did not exit within "
                << opts_.stop_grace_ms.count() << " ms of SIGTERM; sending SIGKILL\n";
      result.needed_sigkill = true;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &result.wait_status, 0);
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  result.duration_ms = std::chrono::milliseconds(ms_since(t0));
  std::ofstream(log_path_, std::ios::app)
      << "=== [itest] stopped: " << describe_wait_status(result.wait_status) << "\n";
  return result;
}

void broker_process::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  std::ofstream(log_path_, std::ios::app) << "=== [itest] kill -9\n";
}

std::string broker_process::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string broker_process::log_tail(std::size_t max_bytes) const {
  std::string all = log();
  if (all.size() <= max_bytes) return all;
  return "[...]\n" + all.substr(all.size() - max_bytes);
}

void broker_test::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  tmp_.emplace(std::string("wharf-itest-") + info->name());
  broker_.emplace(tmp_->path(), broker_options());
  broker_->start();
}

void broker_test::TearDown() {
  if (!broker_) return;
  if (HasFailure()) {
    std::cerr << "----- " << to_string(broker_->kind()) << " log (" << broker_->log_path()
              << ") -----\n"
              << broker_->log_tail(64 * 1024) << "----- end of broker log -----\n";
  }
  broker_->stop();
  broker_.reset();
  tmp_.reset();
}

mqtt::connect_options v311_connect_options(bool clean_session) {
  return mqtt::connect_options_builder()
      .mqtt_version(MQTTVERSION_3_1_1)
      .clean_session(clean_session)
      .keep_alive_interval(std::chrono::seconds(120))
      .connect_timeout(std::chrono::seconds(30))
      .finalize();
}

mqtt::connect_options v5_connect_options(bool clean_start, int session_expiry_s) {
  // Built with setters, not connect_options_builder: in Paho C++ 1.2 the
  // builder's result loses its properties when moved (the C struct keeps
  // pointing at the moved-from list), so the Session Expiry Interval would
  // silently not be sent.
  mqtt::connect_options opts;
  opts.set_mqtt_version(MQTTVERSION_5);
  opts.set_clean_start(clean_start);
  opts.set_keep_alive_interval(std::chrono::seconds(120));
  opts.set_connect_timeout(std::chrono::seconds(30));
  if (session_expiry_s > 0) {
    opts.set_properties({{mqtt::property::SESSION_EXPIRY_INTERVAL, session_expiry_s}});
  }
  return opts;
}

std::uint64_t test_seed() {
  if (const char* s = std::getenv("WHARF_TEST_SEED"); s != nullptr && *s != '\0') {
    return std::strtoull(s, nullptr, 10);
  }
  return std::random_device{}() * 0x100000000ULL + std::random_device{}();
}

}  // namespace wharf::itest
