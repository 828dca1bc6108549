// The wharf configuration schema: which keys exist, their types and ranges, and the checks
// that need more than one value (duplicate binds, TLS files, client-certificate settings).
// Generic YAML reading and error collection live in yaml_reader.cc.
#include "config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <system_error>
#include <variant>

#include <fmt/format.h>

#include "config/auth_config.h"
#include "config/cluster_config.h"
#include "config/encryption_config.h"
#include "config/tenant_config.h"
#include "config/queue_config.h"
#include "config/bridge_config.h"
#include "config/queue_api_config.h"
#include "config/yaml_reader.h"

namespace wharf::config {
namespace {

namespace fs = std::filesystem;
using detail::diagnostics;
using detail::entry;
using detail::map_reader;

// What `wharf` runs with when no --config is given. Kept minimal: every other value comes
// from the struct defaults, so there is one source of truth for them.
constexpr std::string_view embedded_yaml =
    R"(# wharf built-in configuration (used without --config).
# Loopback only: nothing is exposed beyond this machine until a config file says so, and
# so MQTT clients may connect without a username here.
# The TLS listeners use the development certificate wharf generates in ./wharf-data/tls
# on first start (clients trust ./wharf-data/tls/dev-ca.pem).
data_dir: ./wharf-data
listeners:
  - {type: mqtt, bind: "127.0.0.1:1883", anonymous: true}
  - {type: mqtt, bind: "127.0.0.1:8883", anonymous: true, tls: {development_certificate: true}}
  - {type: mqtt-ws, bind: "127.0.0.1:8083", path: /mqtt, anonymous: true}
  - {type: queue-api, bind: "127.0.0.1:8080"}
  - {type: queue-api, bind: "127.0.0.1:8443", tls: {development_certificate: true}}
queue_api:
  # For local development only: the listeners above accept loopback connections alone.
  # A deployment sets its own credentials (secret_key: ${ENV:NAME} keeps it out of the file).
  credentials:
    - {secret_id: wharf-dev, secret_key: wharf-dev-secret}
)";

constexpr std::string_view default_bind = "0.0.0.0:1883";
constexpr std::array<std::string_view, 4> listener_types = {"mqtt", "mqtt-ws", "queue-api", "admin"};
constexpr std::array<std::string_view, 3> cert_identities = {"none", "cn", "san"};
constexpr std::array<std::string_view, 6> log_levels = {"trace", "debug", "info",
                                                        "warn",  "error", "off"};
constexpr std::array<std::string_view, 2> log_formats = {"text", "json"};
// The modules with their own logger (core/log.h's module_names; a unit test keeps them equal).
constexpr std::array<std::string_view, 5> log_modules = {"app", "mqtt", "bridge", "http", "queue"};
constexpr std::uint64_t max_io_threads = 256;

struct bind_parts {
  std::string host;
  std::uint16_t port = 0;
};

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// Splits and checks "host:port" / "[v6]:port". Returns the parts or an error message.
std::variant<bind_parts, std::string> parse_bind(const std::string& text) {
  bind_parts out;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string::npos) {
      return fmt::format("invalid bind '{}': missing ']' after the IPv6 address", text);
    }
    out.host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return fmt::format("invalid bind '{}', expected a port after ']' (e.g. \"[::1]:1883\")",
                         text);
    }
    port_text = text.substr(close + 2);
    in6_addr addr{};
    if (::inet_pton(AF_INET6, out.host.c_str(), &addr) != 1) {
      return fmt::format("invalid bind '{}': '{}' is not an IPv6 address", text, out.host);
    }
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      return fmt::format("invalid bind '{}', expected \"host:port\" (IPv6 as \"[addr]:port\")",
                         text);
    }
    out.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) {
      return fmt::format(
          "invalid bind '{}': IPv6 addresses must be in brackets, e.g. \"[::1]:1883\"", text);
    }
    if (out.host.empty()) {
      return fmt::format("invalid bind '{}': missing host, expected \"host:port\" (e.g. \"{}\")",
                         text, default_bind);
    }
    if (!std::all_of(out.host.begin(), out.host.end(), is_host_char)) {
      return fmt::format("invalid bind '{}': '{}' is not a valid host name or address", text,
                         out.host);
    }
    const bool looks_numeric = std::all_of(out.host.begin(), out.host.end(), [](char c) {
      return (c >= '0' && c <= '9') || c == '.';
    });
    in_addr addr{};
    if (looks_numeric && ::inet_pton(AF_INET, out.host.c_str(), &addr) != 1) {
      return fmt::format("invalid bind '{}': '{}' is not an IPv4 address", text, out.host);
    }
  }
  const bool digits =
      !port_text.empty() && port_text.size() <= 5 &&
      std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    return fmt::format("invalid bind '{}': port '{}' is not a number, expected 1..65535", text,
                       port_text);
  }
  const int port = std::stoi(port_text);
  if (port < 1 || port > 65535) {
    return fmt::format("invalid bind '{}': port '{}' is out of range, expected 1..65535", text,
                       port_text);
  }
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

// Why `path` cannot be read as a regular file, or nullopt when it can.
std::optional<std::string> unreadable_reason(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::generic_category().message(errno);
  struct stat st {};
  const int rc = ::fstat(fd, &st);
  const int saved_errno = errno;
  ::close(fd);
  if (rc != 0) return std::generic_category().message(saved_errno);
  if (S_ISDIR(st.st_mode)) return std::generic_category().message(EISDIR);
  return std::nullopt;
}

class schema_reader {
 public:
  explicit schema_reader(const std::string& file_name) : diag_(file_name) {
    // "<embedded>" and other pseudo-names have no directory: relative paths stay relative
    // to the working directory.
    if (!file_name.empty() && file_name.front() != '<') {
      base_dir_ = fs::path(file_name).parent_path();
    }
  }

  parse_result read(const std::string& yaml_text) {
    parse_result out;
    config& cfg = out.cfg;
    cfg.source_file = diag_.file();
    // Every document, not just the first (YAML::Load): settings after a '---' line would
    // otherwise be ignored without a word, and a syntax error there too.
    std::vector<YAML::Node> documents;
    try {
      documents = YAML::LoadAll(yaml_text);
    } catch (const YAML::Exception& e) {
      diag_.add(e.mark, fmt::format("YAML syntax error: {}", e.msg));
      out.errors = diag_.take_sorted();
      return out;
    }
    const YAML::Node root = documents.empty() ? YAML::Node() : documents.front();
    for (std::size_t i = 1; i < documents.size(); ++i) {
      // A trailing '---' with nothing after it is harmless.
      if (documents[i].IsNull()) continue;
      diag_.add(documents[i].Mark(),
                "a second YAML document (after '---'): a config file is one document, move "
                "these settings into the first");
    }
    if (root.IsMap()) {
      read_top(root, cfg);
    } else if (!root.IsNull()) {
      diag_.add(root.Mark(), fmt::format("expected a map of settings at the top level, got {}",
                                         root.IsSequence() ? "a list" : "a single value"));
    }
    if (cfg.listeners.empty() && !listeners_given_) cfg.listeners.push_back(default_listener());
    point_at_development_certificate(cfg);
    check_admin_users(cfg);
    detail::check_tenant_references(cfg, diag_);
    if (first_queue_api_listener_ && credentials_seen_.entries == 0) {
      diag_.add(credentials_seen_.mark.value_or(*first_queue_api_listener_),
                "queue_api.credentials: at least one credential is required when a queue-api "
                "listener is configured");
    }
    out.errors = diag_.take_sorted();
    return out;
  }

 private:
  static listener_config default_listener() {
    listener_config l;
    l.bind = std::string(default_bind);
    const auto parts = std::get<bind_parts>(parse_bind(l.bind));
    l.host = parts.host;
    l.port = parts.port;
    l.source_location = "<default>";
    return l;
  }

  void read_top(const YAML::Node& root, config& cfg) {
    map_reader m(root, "", diag_);
    if (auto e = m.find("data_dir")) {
      if (auto v = detail::read_non_empty_string(*e, diag_)) cfg.data_dir = std::move(*v);
    }
    if (auto e = m.find("min_free_disk_bytes")) {
      if (auto v = detail::read_uint(*e, 0, std::uint64_t{1} << 50, diag_)) cfg.min_free_disk_bytes = *v;
    }
    if (auto e = m.find("listeners")) read_listeners(*e, cfg);
    if (auto e = m.find("io_threads")) {
      if (auto v = detail::read_uint(*e, 0, max_io_threads, diag_)) {
        cfg.io_threads = static_cast<unsigned>(*v);
      }
    }
    if (auto e = m.find("log_level")) {
      if (auto v = detail::read_enum(*e, log_levels, diag_)) cfg.log_level = std::move(*v);
    }
    if (auto e = m.find("log_levels")) read_log_levels(*e, cfg.module_log_levels);
    if (auto e = m.find("log_format")) {
      if (auto v = detail::read_enum(*e, log_formats, diag_)) cfg.log_format = std::move(*v);
    }
    if (auto e = m.find("mqtt")) read_mqtt(*e, cfg.mqtt);
    if (auto e = m.find("queue_api")) detail::read_queue_api(*e, cfg.queue_api, credentials_seen_, diag_);
    const detail::file_reader read_file = [this](map_reader& r, std::string_view key, bool required) {
      return read_tls_file(r, key, required);
    };
    if (auto e = m.find("queue")) detail::read_queue(*e, cfg.queue, diag_, read_file);
    if (auto e = m.find("auth")) detail::read_auth(*e, cfg.auth, diag_, read_file);
    if (auto e = m.find("cluster")) {
      cfg.cluster.emplace();
      detail::read_cluster(*e, *cfg.cluster, diag_, read_file);
    }
    if (auto e = m.find("bridge")) detail::read_bridge(*e, cfg.bridge, diag_, read_file);
    if (auto e = m.find("encryption")) {
      cfg.encryption.emplace();
      detail::read_encryption(*e, *cfg.encryption, diag_, read_file);
    }
    if (auto e = m.find("tenants")) detail::read_tenants(*e, cfg.tenants, diag_);
    m.finish();
  }

  void read_listeners(const entry& e, config& cfg) {
    listeners_given_ = true;
    if (!e.value.IsSequence()) {
      diag_.add(detail::value_mark(e),
                fmt::format("listeners: expected a list of listeners, got {}",
                            e.value.IsMap() ? "a map" : "a single value"));
      return;
    }
    if (e.value.size() == 0) {
      diag_.add(detail::value_mark(e), "listeners: expected at least one listener");
      return;
    }
    for (std::size_t i = 0; i < e.value.size(); ++i) {
      if (auto l = read_listener(e.value[i], fmt::format("listeners[{}]", i))) {
        cfg.listeners.push_back(std::move(*l));
      }
    }
  }

  // Any error is recorded in diag_ (and parse_config throws); the listener is returned
  // anyway so the remaining checks (duplicate binds) still run.
  std::optional<listener_config> read_listener(const YAML::Node& node, const std::string& path) {
    if (!node.IsMap()) {
      diag_.add(node.Mark(), fmt::format("{}: expected a map with type and bind", path));
      return std::nullopt;
    }
    listener_config l;
    l.source_location = diag_.location(node.Mark());
    map_reader m(node, path, diag_);
    if (auto e = m.find("type")) {
      if (auto v = detail::read_enum(*e, listener_types, diag_)) {
        l.type = *v == "mqtt-ws"     ? listener_type::mqtt_ws
                 : *v == "queue-api" ? listener_type::queue_api
                 : *v == "admin"     ? listener_type::admin
                                     : listener_type::mqtt;
        if (l.type == listener_type::queue_api && !first_queue_api_listener_) {
          first_queue_api_listener_ = node.Mark();
        }
      }
    }
    if (auto e = m.find("bind")) {
      read_bind(*e, l);
    } else {
      diag_.add(node.Mark(), fmt::format("{}: missing required field 'bind', expected "
                                         "\"host:port\" (e.g. \"{}\")",
                                         path, default_bind));
    }
    if (auto e = m.find("path")) {
      if (auto v = detail::read_string(*e, diag_)) {
        if (l.type != listener_type::mqtt_ws) {
          diag_.add(detail::value_mark(*e),
                    fmt::format("{}: only valid for type mqtt-ws, remove it", e->path));
        } else if (v->empty() || v->front() != '/') {
          diag_.add(
              detail::value_mark(*e),
              fmt::format("{}: invalid path '{}', expected a path starting with '/'", e->path, *v));
        } else {
          l.path = std::move(*v);
        }
      }
    }
    if (auto e = m.find("tls")) l.tls = read_tls(*e);
    if (auto e = m.find("proxy_protocol")) l.proxy_protocol = read_proxy_protocol(*e, l);
    read_mqtt_listener_keys(m, l);
    read_admin_users(m, l);
    m.finish();
    return l;
  }

  std::optional<proxy_protocol_config> read_proxy_protocol(const entry& e, const listener_config& l) {
    if (l.type == listener_type::admin) {
      diag_.add(e.key.Mark(), fmt::format("{}: not for admin listeners, remove it", e.path));
      return std::nullopt;
    }
    if (!e.value.IsMap()) {
      diag_.add(detail::value_mark(e), fmt::format("{}: expected a map with trusted (a list of addresses or "
                                                   "networks) and header_timeout_ms",
                                                   e.path));
      return std::nullopt;
    }
    map_reader m(e.value, e.path, diag_);
    proxy_protocol_config p;
    const auto trusted = m.find("trusted");
    if (!trusted || !trusted->value.IsSequence() || trusted->value.size() == 0) {
      diag_.add(trusted ? detail::value_mark(*trusted) : e.value.Mark(),
                fmt::format("{}.trusted: expected a list of at least one address or network (\"10.0.0.0/8\") of "
                            "the load balancers",
                            e.path));
    } else {
      for (std::size_t i = 0; i < trusted->value.size(); ++i) {
        const detail::entry item{trusted->value[i], trusted->value[i], fmt::format("{}[{}]", trusted->path, i)};
        if (auto text = detail::read_non_empty_string(item, diag_)) {
          if (is_address_or_network(*text)) {
            p.trusted.push_back(std::move(*text));
          } else {
            diag_.add(item.value.Mark(), fmt::format("{}: '{}' is neither an IP address nor address/prefix-length",
                                                     item.path, *text));
          }
        }
      }
    }
    detail::read_uint_into(m, "header_timeout_ms", p.header_timeout_ms, 100, 60000, diag_);
    m.finish();
    return p;
  }

  // "192.0.2.10", "10.0.0.0/8", "2001:db8::/32": an address, and a prefix no longer than it.
  static bool is_address_or_network(std::string_view text) {
    const auto slash = text.find('/');
    const std::string address(text.substr(0, slash));
    unsigned char bytes[16];
    unsigned bits = 0;
    if (::inet_pton(AF_INET, address.c_str(), bytes) == 1) {
      bits = 32;
    } else if (::inet_pton(AF_INET6, address.c_str(), bytes) == 1) {
      bits = 128;
    } else {
      return false;
    }
    if (slash == std::string_view::npos) return true;
    const auto digits = text.substr(slash + 1);
    unsigned prefix = 0;
    const auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    return !digits.empty() && err == std::errc{} && end == digits.data() + digits.size() && prefix <= bits;
  }

  // users: admin listeners only, a non-empty list of names checked against auth.users
  // once the whole file is read (check_admin_users).
  void read_admin_users(map_reader& m, listener_config& l) {
    auto e = m.find("users");
    if (l.type != listener_type::admin) {
      if (e) diag_.add(e->key.Mark(), fmt::format("{}: only valid for admin listeners, remove it", e->path));
      return;
    }
    if (!e) {
      diag_.add(m.node().Mark(), fmt::format("{}: missing required field 'users', expected a list of auth.users "
                                             "names who may read /metrics",
                                             m.path()));
      return;
    }
    if (!e->value.IsSequence() || e->value.size() == 0) {
      diag_.add(detail::value_mark(*e), fmt::format("{}: expected a list of at least one auth.users name", e->path));
      return;
    }
    for (std::size_t i = 0; i < e->value.size(); ++i) {
      const detail::entry item{e->value[i], e->value[i], fmt::format("{}[{}]", e->path, i)};
      if (auto name = detail::read_non_empty_string(item, diag_)) {
        admin_user_refs_.emplace_back(*name, item.value.Mark());
        l.users.push_back(std::move(*name));
      }
    }
  }

  // Every admin listener's user is an auth.users entry with a password.
  void check_admin_users(const config& cfg) {
    for (const auto& ref : admin_user_refs_) {
      const std::string& name = ref.first;  // not a structured binding: clang 14 cannot capture one
      const YAML::Mark& mark = ref.second;
      const auto it = std::find_if(cfg.auth.users.begin(), cfg.auth.users.end(),
                                   [&](const user_config& u) { return u.username == name; });
      if (it == cfg.auth.users.end() || it->password_hash.empty()) {
        diag_.add(mark, fmt::format("admin listener user '{}' is not in auth.users with a password_hash", name));
      }
    }
  }

  // anonymous, username_from_cert and the connection bounds: MQTT listeners only (the
  // queue API has its own, in queue_api); a certificate identity needs
  // client certificates to be verified (tls.ca_file).
  void read_mqtt_listener_keys(map_reader& m, listener_config& l) {
    auto only_for_mqtt = [&](const entry& e) {
      if (l.type == listener_type::mqtt || l.type == listener_type::mqtt_ws) return true;
      diag_.add(e.key.Mark(), fmt::format("{}: only valid for MQTT listeners (mqtt, mqtt-ws), remove it", e.path));
      return false;
    };
    if (auto e = m.find("anonymous"); e && only_for_mqtt(*e)) {
      if (auto v = detail::read_bool(*e, diag_)) l.anonymous = *v;
    }
    if (auto e = m.find("max_connections"); e && only_for_mqtt(*e)) {
      if (auto v = detail::read_uint(*e, 0, 100000000, diag_)) l.max_connections = *v;
    }
    if (auto e = m.find("max_connection_rate"); e && only_for_mqtt(*e)) {
      if (auto v = detail::read_uint(*e, 0, 1000000, diag_)) l.max_connection_rate = static_cast<std::uint32_t>(*v);
    }
    if (auto e = m.find("username_from_cert"); e && only_for_mqtt(*e)) {
      if (auto v = detail::read_enum(*e, cert_identities, diag_)) {
        l.username_from_cert = *v == "cn"    ? cert_identity::common_name
                               : *v == "san" ? cert_identity::subject_alt_name
                                             : cert_identity::none;
        const YAML::Node tls = m.node()["tls"];  // const lookup: adds nothing to the node
        const bool names_ca_file = tls && tls.IsMap() && tls["ca_file"];
        if (l.username_from_cert != cert_identity::none && !names_ca_file) {
          diag_.add(detail::value_mark(*e),
                    fmt::format("{}: '{}' requires tls with ca_file (the CA bundle that signs client "
                                "certificates)",
                                e->path, *v));
        }
      }
    }
  }

  void read_bind(const entry& e, listener_config& l) {
    auto text = detail::read_string(e, diag_);
    if (!text) return;
    auto parsed = parse_bind(*text);
    if (auto* err = std::get_if<std::string>(&parsed)) {
      diag_.add(detail::value_mark(e), fmt::format("{}: {}", e.path, *err));
      return;
    }
    auto& parts = std::get<bind_parts>(parsed);
    std::string host_key = parts.host;
    std::transform(host_key.begin(), host_key.end(), host_key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const std::string key = fmt::format("[{}]:{}", host_key, parts.port);
    const int line = detail::value_mark(e).line + 1;
    auto [pos, inserted] = binds_.emplace(key, line);
    if (!inserted) {
      diag_.add(detail::value_mark(e),
                fmt::format("{}: '{}' already used at line {}", e.path, *text, pos->second));
      return;
    }
    for (const auto& [other_host, other_line] : hosts_by_port_[parts.port]) {
      if (!overlaps(host_key, other_host)) continue;
      diag_.add(detail::value_mark(e),
                fmt::format("{}: '{}' overlaps the bind at line {} ({} takes every address of its family on "
                            "port {}); use one listener or another port",
                            e.path, *text, other_line, is_wildcard(host_key) ? host_key : other_host, parts.port));
      return;
    }
    hosts_by_port_[parts.port].emplace_back(host_key, line);
    l.bind = std::move(*text);
    l.host = std::move(parts.host);
    l.port = parts.port;
  }

  std::optional<tls_config> read_tls(const entry& e) {
    if (!e.value.IsMap()) {
      diag_.add(detail::value_mark(e),
                fmt::format("{}: expected a map with cert_file and key_file", e.path));
      return std::nullopt;
    }
    tls_config t;
    map_reader m(e.value, e.path, diag_);
    bool files_expected = true;
    if (auto d = m.find("development_certificate")) {
      const auto v = detail::read_bool(*d, diag_);
      t.development_certificate = v.value_or(false);
      // Not a boolean: whether files belong here is unknown, so only that is reported.
      files_expected = v == false;
    }
    if (!files_expected && !t.development_certificate) {
      (void)m.find("cert_file");
      (void)m.find("key_file");
    } else if (t.development_certificate) {
      // Its files may not exist yet: wharf makes them on start, check-config only reads.
      for (const std::string_view key : {"cert_file", "key_file"}) {
        if (auto given = m.find(key)) {
          diag_.add(given->key.Mark(), fmt::format("{}: not allowed with development_certificate: true, which "
                                                   "serves the generated certificate; give one or the other",
                                                   given->path));
        }
      }
    } else {
      if (auto v = read_tls_file(m, "cert_file", true)) t.cert_file = std::move(*v);
      if (auto v = read_tls_file(m, "key_file", true)) t.key_file = std::move(*v);
    }
    const bool has_ca = m.find("ca_file").has_value();
    if (auto v = read_tls_file(m, "ca_file", false)) t.ca_file = std::move(*v);
    if (auto r = m.find("require_client_cert")) {
      if (auto v = detail::read_bool(*r, diag_)) {
        t.require_client_cert = *v;
        if (*v && !has_ca) {
          diag_.add(detail::value_mark(*r),
                    fmt::format("{}: true requires 'ca_file' (the CA bundle that signs client "
                                "certificates)",
                                r->path));
        }
      }
    }
    m.finish();
    return t;
  }

  // Once data_dir is known (keys come in any order): the development certificate's paths.
  static void point_at_development_certificate(config& cfg) {
    const fs::path dir = development_certificate_dir(cfg.data_dir);
    for (auto& l : cfg.listeners) {
      if (!l.tls || !l.tls->development_certificate) continue;
      l.tls->cert_file = (dir / "dev-server.pem").string();
      l.tls->key_file = (dir / "dev-server.key").string();
    }
  }

  // A file path (PEM certificates and keys, JWT keys): resolved against the config file's
  // directory and checked readable. Errors about the file are reported at the key, as asked
  // of a path setting.
  std::optional<std::string> read_tls_file(map_reader& m, std::string_view key, bool required) {
    auto e = m.find(key);
    if (!e) {
      if (required) {
        diag_.add(m.node().Mark(), fmt::format("{}: missing required field '{}', expected a file path", m.path(), key));
      }
      return std::nullopt;
    }
    auto text = detail::read_non_empty_string(*e, diag_);
    if (!text) return std::nullopt;
    std::string resolved = resolve(*text);
    if (auto reason = unreadable_reason(resolved)) {
      diag_.add(e->key.Mark(),
                fmt::format("{}: cannot read file '{}': {}", e->path, resolved, *reason));
      return std::nullopt;
    }
    return resolved;
  }

  void read_log_levels(const entry& e, std::map<std::string, std::string>& out) {
    if (!e.value.IsMap()) {
      diag_.add(detail::value_mark(e), "log_levels: expected a map of module: level (modules: app, mqtt, bridge, "
                                       "http, queue)");
      return;
    }
    map_reader m(e.value, e.path, diag_);
    for (const auto module : log_modules) {
      if (auto level = m.find(module)) {
        if (auto v = detail::read_enum(*level, log_levels, diag_)) out[std::string(module)] = std::move(*v);
      }
    }
    m.finish();
  }

  void read_mqtt(const entry& e, mqtt_config& q) {
    if (!e.value.IsMap()) {
      diag_.add(detail::value_mark(e), "mqtt: expected a map of MQTT settings");
      return;
    }
    constexpr std::uint64_t u16 = std::numeric_limits<std::uint16_t>::max();
    constexpr std::uint64_t u32 = std::numeric_limits<std::uint32_t>::max();
    // Ranges: MQTT's own limits where the spec sets one, otherwise a sanity bound that
    // catches unit mistakes (e.g. bytes given as a size with a suffix).
    map_reader m(e.value, "mqtt", diag_);
    detail::read_uint_into(m, "max_packet_size", q.max_packet_size, 64, 268435455, diag_);  // [MQTT-2.2.3]
    detail::read_uint_into(m, "receive_maximum", q.receive_maximum, 1, u16, diag_);  // 0 is a protocol error
    detail::read_uint_into(m, "max_inflight", q.max_inflight, 1, u16, diag_);
    detail::read_uint_into(m, "topic_alias_maximum", q.topic_alias_maximum, 0, u16, diag_);
    detail::read_uint_into(m, "max_keep_alive_s", q.max_keep_alive_s, 1, u16, diag_);
    detail::read_uint_into(m, "max_session_expiry_s", q.max_session_expiry_s, 0, u32, diag_);
    detail::read_uint_into(m, "connect_timeout_ms", q.connect_timeout_ms, 100, 3600000, diag_);
    // [MQTT-3.1.3-5] servers must accept client ids of 1..23 characters.
    detail::read_uint_into(m, "max_client_id_length", q.max_client_id_length, 23, u16, diag_);
    detail::read_uint_into(m, "max_queued_messages", q.max_queued_messages, 1, 1000000000, diag_);
    detail::read_uint_into(m, "max_queued_bytes", q.max_queued_bytes, 1024, std::uint64_t{1} << 40, diag_);
    detail::read_uint_into(m, "memory_watermark_bytes", q.memory_watermark_bytes, 0, std::uint64_t{1} << 50, diag_);
    detail::read_uint_into(m, "max_retained_messages", q.max_retained_messages, 0, 1000000000, diag_);
    detail::read_uint_into(m, "max_subscriptions_per_client", q.max_subscriptions_per_client, 1, 1000000, diag_);
    detail::read_uint_into(m, "sys_interval_s", q.sys_interval_s, 0, 86400, diag_);
    detail::read_uint_into(m, "max_connections", q.max_connections, 1, 100000000, diag_);
    detail::read_uint_into(m, "max_publish_rate", q.max_publish_rate, 0, 100000000, diag_);
    detail::read_uint_into(m, "max_inbound_bytes_rate", q.max_inbound_bytes_rate, 0, 100000000, diag_);
    if (auto f = m.find("flapping")) {
      if (!f->value.IsMap()) {
        diag_.add(detail::value_mark(*f), "mqtt.flapping: expected a map with max_connects, window_s and ban_s");
      } else {
        map_reader fm(f->value, "mqtt.flapping", diag_);
        detail::read_uint_into(fm, "max_connects", q.flapping.max_connects, 0, 1000000, diag_);
        detail::read_uint_into(fm, "window_s", q.flapping.window_s, 1, 86400, diag_);
        detail::read_uint_into(fm, "ban_s", q.flapping.ban_s, 1, 604800, diag_);
        fm.finish();
      }
    }
    m.finish();
  }

  [[nodiscard]] std::string resolve(const std::string& path) const {
    fs::path p(path);
    if (p.is_absolute() || base_dir_.empty()) return path;
    return (base_dir_ / p).lexically_normal().string();
  }

  diagnostics diag_;
  fs::path base_dir_;
  bool listeners_given_ = false;
  std::map<std::string, int> binds_;  // "[host]:port" -> line of first use
  std::map<std::uint16_t, std::vector<std::pair<std::string, int>>> hosts_by_port_;  // port -> (host, line)

  static bool is_wildcard(std::string_view host) { return host == "0.0.0.0" || host == "::"; }
  // Whether binds of `a` and `b` on one port would both take some connection: a wildcard
  // takes its family's addresses (IPv6 "::" takes IPv4 too, dual-stack); host names may be
  // either family.
  static bool overlaps(std::string_view a, std::string_view b) {
    const auto ipv6 = [](std::string_view h) { return h.find(':') != std::string_view::npos; };
    const auto covers = [&](std::string_view wildcard, std::string_view host) {
      return wildcard == "::" || (wildcard == "0.0.0.0" && !ipv6(host));
    };
    return (is_wildcard(a) && covers(a, b)) || (is_wildcard(b) && covers(b, a));
  }
  std::vector<std::pair<std::string, YAML::Mark>> admin_user_refs_;  // admin listeners' users
  // For "a queue-api listener needs credentials": where the first such listener is, where
  // queue_api.credentials is (when given), and how many entries it has (valid or not).
  std::optional<YAML::Mark> first_queue_api_listener_;
  detail::credentials_seen credentials_seen_;
};

std::string join_errors(const std::vector<config_error>& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out.push_back('\n');
    out += e.to_string();
  }
  return out;
}

}  // namespace

std::string config_error::to_string() const {
  return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

config_error error_at(const std::string& location, std::string message) {
  config_error e;
  e.message = std::move(message);
  // location is "file:line:col"; the file may itself contain ':'.
  const auto col_sep = location.rfind(':');
  const auto line_sep = col_sep == std::string::npos ? std::string::npos : location.rfind(':', col_sep - 1);
  if (line_sep == std::string::npos) {
    e.file = location;
    return e;
  }
  e.file = location.substr(0, line_sep);
  e.line = std::atoi(location.c_str() + line_sep + 1);
  e.column = std::atoi(location.c_str() + col_sep + 1);
  return e;
}

config_errors::config_errors(std::vector<config_error> errors)
    : std::runtime_error(join_errors(errors)), errors_(std::move(errors)) {}

parse_result read_config_text(const std::string& yaml_text, const std::string& file_name) {
  return schema_reader(file_name).read(yaml_text);
}

parse_result read_config_file(const std::string& path) {
  auto failed = [&](int err) {
    parse_result out;
    config_error e;
    e.file = path;
    e.message = fmt::format("cannot read file: {}", std::generic_category().message(err));
    out.errors.push_back(std::move(e));
    return out;
  };
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return failed(errno);
  std::string text;
  std::array<char, 8192> buf{};
  while (true) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f);
    text.append(buf.data(), n);
    if (n < buf.size()) break;
  }
  const bool read_failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (read_failed) return failed(err);
  return read_config_text(text, path);
}

namespace {

config valid_or_throw(parse_result result) {
  if (!result.errors.empty()) throw config_errors(std::move(result.errors));
  return std::move(result.cfg);
}

}  // namespace

config parse_config(const std::string& yaml_text, const std::string& file_name) {
  return valid_or_throw(read_config_text(yaml_text, file_name));
}

config load_config_file(const std::string& path) { return valid_or_throw(read_config_file(path)); }

const std::string& embedded_default_yaml() {
  static const std::string text(embedded_yaml);
  return text;
}

std::string development_certificate_dir(const std::string& data_dir) {
  return (fs::path(data_dir) / "tls").string();
}

bool uses_development_certificate(const config& cfg) {
  return std::any_of(cfg.listeners.begin(), cfg.listeners.end(),
                     [](const listener_config& l) { return l.tls && l.tls->development_certificate; });
}

}  // namespace wharf::config
