#include "config/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"
#include "core/log.h"

namespace wharf::config {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using test::errors_of;

// A fresh directory under /tmp, removed with its contents at the end of the test.
class temp_dir_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = "/tmp/wharf-config-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string touch(const std::string& name, const std::string& text = "x") {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST(config_defaults, embedded_default_parses) {
  // Its TLS listeners use the development certificate, which wharf makes on start: the
  // parser names the files without needing them.
  const config cfg = parse_config(embedded_default_yaml(), "<embedded>");

  EXPECT_EQ(cfg.source_file, "<embedded>");
  EXPECT_EQ(cfg.data_dir, "./wharf-data");
  ASSERT_EQ(cfg.listeners.size(), 5u);
  EXPECT_EQ(cfg.listeners[0].type, listener_type::mqtt);
  EXPECT_EQ(cfg.listeners[0].bind, "127.0.0.1:1883");
  EXPECT_EQ(cfg.listeners[0].host, "127.0.0.1");
  EXPECT_EQ(cfg.listeners[0].port, 1883);
  EXPECT_FALSE(cfg.listeners[0].tls.has_value());
  EXPECT_EQ(cfg.listeners[0].source_location, "<embedded>:8:5");
  ASSERT_TRUE(cfg.listeners[1].tls.has_value());
  EXPECT_EQ(cfg.listeners[1].port, 8883);
  EXPECT_TRUE(cfg.listeners[1].tls->development_certificate);
  EXPECT_EQ(cfg.listeners[1].tls->cert_file, "./wharf-data/tls/dev-server.pem");
  EXPECT_EQ(cfg.listeners[1].tls->key_file, "./wharf-data/tls/dev-server.key");
  EXPECT_TRUE(uses_development_certificate(cfg));
  EXPECT_EQ(cfg.listeners[2].type, listener_type::mqtt_ws);
  EXPECT_EQ(cfg.listeners[2].path, "/mqtt");
  EXPECT_EQ(cfg.listeners[3].type, listener_type::queue_api);
  EXPECT_EQ(cfg.listeners[3].bind, "127.0.0.1:8080");
  EXPECT_FALSE(cfg.listeners[3].tls.has_value());
  EXPECT_EQ(cfg.listeners[4].type, listener_type::queue_api);
  EXPECT_EQ(cfg.listeners[4].port, 8443);
  ASSERT_TRUE(cfg.listeners[4].tls.has_value());
  EXPECT_EQ(cfg.listeners[4].tls->cert_file, "./wharf-data/tls/dev-server.pem");
  ASSERT_EQ(cfg.queue_api.credentials.size(), 1u);
  EXPECT_EQ(cfg.queue_api.credentials[0].secret_id, "wharf-dev");
  EXPECT_EQ(cfg.queue_api.credentials[0].secret_key, "wharf-dev-secret");
  EXPECT_EQ(cfg.io_threads, 0u);
  EXPECT_EQ(cfg.min_free_disk_bytes, 64u << 20);
  EXPECT_EQ(cfg.log_level, "info");
  EXPECT_EQ(cfg.mqtt.max_packet_size, 1048576u);
}

TEST(config_defaults, empty_document_gives_defaults_and_the_default_listener) {
  const config cfg = parse_config("", "empty.yaml");
  EXPECT_EQ(cfg.data_dir, "./wharf-data");
  ASSERT_EQ(cfg.listeners.size(), 1u);
  EXPECT_EQ(cfg.listeners[0].bind, "0.0.0.0:1883");
  EXPECT_EQ(cfg.listeners[0].port, 1883);
}

TEST_F(temp_dir_test, example_from_the_docs_parses_and_resolves_tls_paths) {
  touch("server.pem");
  touch("server.key");
  touch("ca.pem");
  const std::string yaml = R"(data_dir: ./wharf-data
listeners:
  - {type: mqtt, bind: "127.0.0.1:1883"}
  - {type: mqtt, bind: "0.0.0.0:8883", tls: {cert_file: server.pem, key_file: server.key, ca_file: ca.pem, require_client_cert: false}}
  - {type: mqtt-ws, bind: "0.0.0.0:8083", path: /mqtt}
)";
  const config cfg = parse_config(yaml, path("wharf.yaml"));
  EXPECT_EQ(cfg.data_dir, "./wharf-data");
  ASSERT_EQ(cfg.listeners.size(), 3u);
  EXPECT_EQ(cfg.listeners[0].type, listener_type::mqtt);
  EXPECT_EQ(cfg.listeners[0].host, "127.0.0.1");
  EXPECT_EQ(cfg.listeners[0].port, 1883);
  EXPECT_EQ(cfg.listeners[0].source_location, path("wharf.yaml") + ":3:5");
  ASSERT_TRUE(cfg.listeners[1].tls.has_value());
  EXPECT_EQ(cfg.listeners[1].tls->cert_file, path("server.pem"));
  EXPECT_EQ(cfg.listeners[1].tls->key_file, path("server.key"));
  EXPECT_EQ(cfg.listeners[1].tls->ca_file, path("ca.pem"));
  EXPECT_FALSE(cfg.listeners[1].tls->require_client_cert);
  EXPECT_EQ(cfg.listeners[2].type, listener_type::mqtt_ws);
  EXPECT_EQ(cfg.listeners[2].path, "/mqtt");
  EXPECT_EQ(cfg.listeners[2].port, 8083);
}

TEST_F(temp_dir_test, relative_tls_paths_resolve_against_the_config_file_directory) {
  touch("certs/server.pem");
  touch("certs/server.key");
  const std::string abs_key = touch("elsewhere/abs.key");
  const std::string yaml =
      "listeners:\n"
      "  - bind: \"[::1]:8883\"\n"
      "    tls:\n"
      "      cert_file: certs/../certs/server.pem\n"
      "      key_file: " +
      abs_key + "\n";
  const config cfg = parse_config(yaml, path("wharf.yaml"));
  ASSERT_EQ(cfg.listeners.size(), 1u);
  EXPECT_EQ(cfg.listeners[0].host, "::1");
  EXPECT_EQ(cfg.listeners[0].port, 8883);
  EXPECT_EQ(cfg.listeners[0].tls->cert_file, path("certs/server.pem"));
  EXPECT_EQ(cfg.listeners[0].tls->key_file, abs_key);
}

TEST_F(temp_dir_test, load_config_file_reads_and_resolves_relative_to_the_file) {
  touch("tls/server.pem");
  touch("tls/server.key");
  const std::string file = touch("wharf.yaml",
                                 "log_level: debug\n"
                                 "listeners:\n"
                                 "  - {bind: \"127.0.0.1:8883\", tls: {cert_file: tls/server.pem, "
                                 "key_file: tls/server.key}}\n");
  const config cfg = load_config_file(file);
  EXPECT_EQ(cfg.source_file, file);
  EXPECT_EQ(cfg.log_level, "debug");
  EXPECT_EQ(cfg.listeners.at(0).tls->cert_file, path("tls/server.pem"));
}

TEST_F(temp_dir_test, load_config_file_reports_a_missing_file_at_line_zero) {
  const std::string file = path("missing.yaml");
  try {
    (void)load_config_file(file);
    FAIL() << "expected config_errors";
  } catch (const config_errors& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(e.errors()[0].to_string(),
              file + ":0:0: cannot read file: No such file or directory");
    EXPECT_EQ(std::string(e.what()), e.errors()[0].to_string());
  }
}

TEST(config_mqtt, every_field_is_read) {
  const config cfg = parse_config(R"(mqtt:
  max_packet_size: 2048
  receive_maximum: 10
  max_inflight: 20
  topic_alias_maximum: 0
  max_keep_alive_s: 300
  max_session_expiry_s: 3600
  connect_timeout_ms: 5000
  max_client_id_length: 64
  max_queued_messages: 100
  max_queued_bytes: 65536
  max_retained_messages: 0
  max_subscriptions_per_client: 50
  sys_interval_s: 0
io_threads: 4
min_free_disk_bytes: 0
log_level: warn
data_dir: /var/lib/wharf
)",
                                  "test.yaml");
  EXPECT_EQ(cfg.mqtt.max_packet_size, 2048u);
  EXPECT_EQ(cfg.mqtt.receive_maximum, 10u);
  EXPECT_EQ(cfg.mqtt.max_inflight, 20u);
  EXPECT_EQ(cfg.mqtt.topic_alias_maximum, 0u);
  EXPECT_EQ(cfg.mqtt.max_keep_alive_s, 300u);
  EXPECT_EQ(cfg.mqtt.max_session_expiry_s, 3600u);
  EXPECT_EQ(cfg.mqtt.connect_timeout_ms, 5000u);
  EXPECT_EQ(cfg.mqtt.max_client_id_length, 64u);
  EXPECT_EQ(cfg.mqtt.max_queued_messages, 100u);
  EXPECT_EQ(cfg.mqtt.max_queued_bytes, 65536u);
  EXPECT_EQ(cfg.mqtt.max_retained_messages, 0u);
  EXPECT_EQ(cfg.mqtt.max_subscriptions_per_client, 50u);
  EXPECT_EQ(cfg.mqtt.sys_interval_s, 0u);
  EXPECT_EQ(cfg.io_threads, 4u);
  EXPECT_EQ(cfg.min_free_disk_bytes, 0u);
  EXPECT_EQ(cfg.log_level, "warn");
  EXPECT_EQ(cfg.data_dir, "/var/lib/wharf");
}

TEST(config_errors_report, yaml_syntax_error) {
  EXPECT_THAT(errors_of("listeners: [\n"),
              ElementsAre("test.yaml:2:1: YAML syntax error: end of sequence flow not found"));
}

TEST(config_errors_report, a_second_document_is_an_error_not_ignored) {
  // YAML::Load reads the first document only: these settings used to vanish silently.
  EXPECT_THAT(errors_of("io_threads: 2\n---\nlog_level: debug\n"),
              ElementsAre("test.yaml:3:1: a second YAML document (after '---'): a config file is one "
                          "document, move these settings into the first"));
  EXPECT_THAT(errors_of("io_threads: 2\n---\nmqtt: [\n"),
              ElementsAre("test.yaml:4:1: YAML syntax error: end of sequence flow not found"));
  // A leading '---', or a trailing one with nothing after it, is one document.
  EXPECT_THAT(errors_of("---\nio_threads: 2\n"), ElementsAre());
  EXPECT_THAT(errors_of("io_threads: 2\n---\n# nothing here\n"), ElementsAre());
}

TEST(config_errors_report, top_level_must_be_a_map) {
  EXPECT_THAT(
      errors_of("- a\n"),
      ElementsAre("test.yaml:1:1: expected a map of settings at the top level, got a list"));
}

TEST(config_errors_report, unknown_key_suggests_the_closest) {
  EXPECT_THAT(errors_of("listner:\n  - {type: mqtt, bind: \"127.0.0.1:1883\"}\n"),
              ElementsAre("test.yaml:1:1: unknown key 'listner', did you mean 'listeners'?"));
  EXPECT_THAT(errors_of("mqtt:\n  max_inflght: 5\n"),
              ElementsAre("test.yaml:2:3: unknown key 'max_inflght' in mqtt, did you mean "
                          "'max_inflight'?"));
  EXPECT_THAT(errors_of("listeners:\n  - {type: mqtt, bnd: \"127.0.0.1:1883\"}\n"),
              ElementsAre("test.yaml:2:5: listeners[0]: missing required field 'bind', expected "
                          "\"host:port\" (e.g. \"0.0.0.0:1883\")",
                          "test.yaml:2:18: unknown key 'bnd' in listeners[0], did you mean "
                          "'bind'?"));
}

TEST(config_errors_report, unknown_key_without_a_close_match_lists_the_known_ones) {
  EXPECT_THAT(errors_of("colour: red\n"),
              ElementsAre("test.yaml:1:1: unknown key 'colour', expected one of: data_dir, "
                          "min_free_disk_bytes, listeners, io_threads, log_level, log_levels, log_format, mqtt, "
                          "queue_api, queue, auth, cluster, bridge, encryption, tenants"));
}

TEST(config_errors_report, duplicate_key) {
  EXPECT_THAT(errors_of("io_threads: 1\nio_threads: 2\n"),
              ElementsAre("test.yaml:2:1: duplicate key 'io_threads', first at line 1"));
}

TEST(config_errors_report, wrong_type) {
  EXPECT_THAT(errors_of("io_threads: abc\n"),
              ElementsAre("test.yaml:1:13: io_threads: expected an integer, got 'abc'"));
  EXPECT_THAT(errors_of("mqtt:\n  max_inflight: 1.5\n"),
              ElementsAre("test.yaml:2:17: mqtt.max_inflight: expected an integer, got '1.5'"));
  EXPECT_THAT(errors_of("mqtt:\n  max_inflight: {a: 1}\n"),
              ElementsAre("test.yaml:2:17: mqtt.max_inflight: expected an integer, got a map"));
  EXPECT_THAT(errors_of("data_dir: [a, b]\n"),
              ElementsAre("test.yaml:1:11: data_dir: expected a string, got a list"));
  EXPECT_THAT(errors_of("data_dir:\nio_threads: 1\n"),
              ElementsAre("test.yaml:1:1: data_dir: expected a string, got an empty value"));
  EXPECT_THAT(errors_of("listeners: {type: mqtt}\n"),
              ElementsAre("test.yaml:1:12: listeners: expected a list of listeners, got a map"));
}

TEST(config_errors_report, out_of_range) {
  EXPECT_THAT(errors_of("io_threads: 300\n"),
              ElementsAre("test.yaml:1:13: io_threads: 300 is out of range, expected 0..256"));
  EXPECT_THAT(errors_of("io_threads: -1\n"),
              ElementsAre("test.yaml:1:13: io_threads: -1 is out of range, expected 0..256"));
  EXPECT_THAT(errors_of("mqtt:\n  receive_maximum: 0\n"),
              ElementsAre("test.yaml:2:20: mqtt.receive_maximum: 0 is out of range, expected "
                          "1..65535"));
  EXPECT_THAT(errors_of("mqtt:\n  max_session_expiry_s: 99999999999999999999999\n"),
              ElementsAre("test.yaml:2:25: mqtt.max_session_expiry_s: 99999999999999999999999 "
                          "is out of range, expected 0..4294967295"));
}

TEST(config_errors_report, missing_bind) {
  EXPECT_THAT(errors_of("listeners:\n  - type: mqtt\n"),
              ElementsAre("test.yaml:2:5: listeners[0]: missing required field 'bind', expected "
                          "\"host:port\" (e.g. \"0.0.0.0:1883\")"));
}

TEST(config_errors_report, invalid_enum) {
  EXPECT_THAT(errors_of("listeners:\n  - {type: mqtts, bind: \"127.0.0.1:1883\"}\n"),
              ElementsAre("test.yaml:2:12: listeners[0].type: invalid value 'mqtts', expected "
                          "one of: mqtt, mqtt-ws, queue-api, admin"));
  EXPECT_THAT(errors_of("log_level: verbose\n"),
              ElementsAre("test.yaml:1:12: log_level: invalid value 'verbose', expected one of: "
                          "trace, debug, info, warn, error, off"));
}

TEST(config_errors_report, invalid_bind) {
  struct bad_bind {
    std::string bind;
    std::string message;
  };
  const std::vector<bad_bind> cases = {
      {"localhost", "invalid bind 'localhost', expected \"host:port\" (IPv6 as \"[addr]:port\")"},
      {"127.0.0.1:0", "invalid bind '127.0.0.1:0': port '0' is out of range, expected 1..65535"},
      {"127.0.0.1:65536",
       "invalid bind '127.0.0.1:65536': port '65536' is out of range, expected 1..65535"},
      {"127.0.0.1:http",
       "invalid bind '127.0.0.1:http': port 'http' is not a number, expected 1..65535"},
      {"127.0.0.1:", "invalid bind '127.0.0.1:': port '' is not a number, expected 1..65535"},
      {"::1:1883",
       "invalid bind '::1:1883': IPv6 addresses must be in brackets, e.g. \"[::1]:1883\""},
      {"[zz]:1883", "invalid bind '[zz]:1883': 'zz' is not an IPv6 address"},
      {"[::1]1883", "invalid bind '[::1]1883', expected a port after ']' (e.g. \"[::1]:1883\")"},
      {"[::1:1883", "invalid bind '[::1:1883': missing ']' after the IPv6 address"},
      {":1883",
       "invalid bind ':1883': missing host, expected \"host:port\" (e.g. \"0.0.0.0:1883\")"},
      {"300.1.1.1:1883", "invalid bind '300.1.1.1:1883': '300.1.1.1' is not an IPv4 address"},
      {"my host:1883",
       "invalid bind 'my host:1883': 'my host' is not a valid host name or address"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(errors_of("listeners:\n  - bind: \"" + c.bind + "\"\n"),
                ElementsAre("test.yaml:2:11: listeners[0].bind: " + c.message))
        << c.bind;
  }
}

TEST(config_errors_report, valid_binds) {
  const config cfg = parse_config(
      "listeners:\n  - bind: \"[::]:1883\"\n  - bind: broker.example:1884\n  - bind: "
      "\"0.0.0.0:65535\"\n",
      "test.yaml");
  ASSERT_EQ(cfg.listeners.size(), 3u);
  EXPECT_EQ(cfg.listeners[0].host, "::");
  EXPECT_EQ(cfg.listeners[1].host, "broker.example");
  EXPECT_EQ(cfg.listeners[1].port, 1884);
  EXPECT_EQ(cfg.listeners[2].port, 65535);
}

TEST(config_errors_report, duplicate_bind) {
  EXPECT_THAT(errors_of("listeners:\n"
                        "  - {type: mqtt, bind: \"127.0.0.1:1883\"}\n"
                        "  - {type: mqtt-ws, bind: \"127.0.0.1:1883\"}\n"),
              ElementsAre("test.yaml:3:27: listeners[1].bind: '127.0.0.1:1883' already used at "
                          "line 2"));
  // Same address spelled differently is still the same socket.
  EXPECT_THAT(errors_of("listeners:\n  - bind: \"[::1]:1883\"\n  - bind: \"[::1]:01883\"\n"),
              ElementsAre("test.yaml:3:11: listeners[1].bind: '[::1]:01883' already used at "
                          "line 2"));
}

TEST(config_listener, proxy_protocol) {
  auto cfg = parse_config("listeners:\n"
                          "  - type: mqtt\n"
                          "    bind: \"0.0.0.0:1883\"\n"
                          "    proxy_protocol: {trusted: [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.10\"]}\n",
                          "t.yaml");
  ASSERT_TRUE(cfg.listeners[0].proxy_protocol);
  EXPECT_EQ(cfg.listeners[0].proxy_protocol->trusted,
            (std::vector<std::string>{"10.0.0.0/8", "2001:db8::/32", "192.0.2.10"}));
  EXPECT_EQ(cfg.listeners[0].proxy_protocol->header_timeout_ms, 3000u);
  EXPECT_THAT(errors_of("listeners:\n"
                        "  - type: queue-api\n"
                        "    bind: \"0.0.0.0:8080\"\n"
                        "    proxy_protocol:\n"
                        "      trusted: [\"10.0.0.0/33\", \"balancer\"]\n"
                        "      header_timeout_ms: 10\n"
                        "queue_api: {credentials: [{secret_id: a, secret_key: b}]}\n"),
              ElementsAre("test.yaml:5:17: listeners[0].proxy_protocol.trusted[0]: '10.0.0.0/33' is neither an IP "
                          "address nor address/prefix-length",
                          "test.yaml:5:32: listeners[0].proxy_protocol.trusted[1]: 'balancer' is neither an IP "
                          "address nor address/prefix-length",
                          "test.yaml:6:26: listeners[0].proxy_protocol.header_timeout_ms: 10 is out of range, "
                          "expected 100..60000"));
  EXPECT_THAT(errors_of("listeners:\n  - {type: mqtt, bind: \"0.0.0.0:1883\", proxy_protocol: {trusted: []}}\n"),
              ElementsAre("test.yaml:2:66: listeners[0].proxy_protocol.trusted: expected a list of at least one "
                          "address or network (\"10.0.0.0/8\") of the load balancers"));
}

TEST(config_errors_report, empty_listener_list) {
  EXPECT_THAT(errors_of("listeners: []\n"),
              ElementsAre("test.yaml:1:12: listeners: expected at least one listener"));
}

TEST(config_errors_report, ws_path) {
  EXPECT_THAT(errors_of("listeners:\n  - {type: mqtt-ws, bind: \"0.0.0.0:8083\", path: mqtt}\n"),
              ElementsAre("test.yaml:2:49: listeners[0].path: invalid path 'mqtt', expected a "
                          "path starting with '/'"));
  EXPECT_THAT(errors_of("listeners:\n  - {type: mqtt, bind: \"0.0.0.0:1883\", path: /mqtt}\n"),
              ElementsAre("test.yaml:2:46: listeners[0].path: only valid for type mqtt-ws, "
                          "remove it"));
}

TEST_F(temp_dir_test, tls_file_missing_or_not_a_file_is_reported_at_the_key) {
  touch("server.key");
  fs::create_directories(dir_ / "adir");
  const std::string file = path("wharf.yaml");
  EXPECT_THAT(errors_of("listeners:\n"
                        "  - bind: \"0.0.0.0:8883\"\n"
                        "    tls:\n"
                        "      cert_file: missing.pem\n"
                        "      key_file: server.key\n"
                        "      ca_file: adir\n",
                        file),
              ElementsAre(file + ":4:7: listeners[0].tls.cert_file: cannot read file '" +
                              path("missing.pem") + "': No such file or directory",
                          file + ":6:7: listeners[0].tls.ca_file: cannot read file '" +
                              path("adir") + "': Is a directory"));
}

TEST_F(temp_dir_test, tls_file_without_read_permission) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files regardless of permissions";
  const std::string cert = touch("server.pem");
  touch("server.key");
  ::chmod(cert.c_str(), 0);
  const std::string file = path("wharf.yaml");
  EXPECT_THAT(errors_of("listeners:\n  - bind: \"0.0.0.0:8883\"\n    tls: {cert_file: "
                        "server.pem, key_file: server.key}\n",
                        file),
              ElementsAre(file + ":3:11: listeners[0].tls.cert_file: cannot read file '" + cert +
                          "': Permission denied"));
}

TEST_F(temp_dir_test, tls_required_fields_and_client_cert_without_ca) {
  touch("server.pem");
  touch("server.key");
  const std::string file = path("wharf.yaml");
  EXPECT_THAT(
      errors_of("listeners:\n  - bind: \"0.0.0.0:8883\"\n    tls: {cert_file: server.pem}\n", file),
      ElementsAre(file + ":3:10: listeners[0].tls: missing required field 'key_file', "
                         "expected a file path"));
  EXPECT_THAT(errors_of("listeners:\n"
                        "  - bind: \"0.0.0.0:8883\"\n"
                        "    tls:\n"
                        "      cert_file: server.pem\n"
                        "      key_file: server.key\n"
                        "      require_client_cert: true\n",
                        file),
              ElementsAre(file + ":6:28: listeners[0].tls.require_client_cert: true requires "
                                 "'ca_file' (the CA bundle that signs client certificates)"));
  EXPECT_THAT(errors_of("listeners:\n"
                        "  - bind: \"0.0.0.0:8883\"\n"
                        "    tls: {cert_file: server.pem, key_file: server.key, "
                        "require_client_cert: maybe}\n",
                        file),
              ElementsAre(file + ":3:77: listeners[0].tls.require_client_cert: expected true or "
                                 "false, got 'maybe'"));
}

TEST(config_tls, development_certificate_lives_in_the_data_dir_whichever_key_comes_first) {
  const config cfg = parse_config("listeners:\n"
                                  "  - {bind: \"127.0.0.1:8883\", tls: {development_certificate: true}}\n"
                                  "data_dir: /srv/wharf\n",
                                  "test.yaml");
  ASSERT_TRUE(cfg.listeners[0].tls.has_value());
  EXPECT_EQ(cfg.listeners[0].tls->cert_file, "/srv/wharf/tls/dev-server.pem");
  EXPECT_EQ(cfg.listeners[0].tls->key_file, "/srv/wharf/tls/dev-server.key");
  EXPECT_EQ(development_certificate_dir(cfg.data_dir), "/srv/wharf/tls");
  EXPECT_FALSE(uses_development_certificate(parse_config("", "test.yaml")));
}

TEST(config_tls, development_certificate_excludes_certificate_files) {
  EXPECT_THAT(errors_of("listeners:\n"
                        "  - bind: \"127.0.0.1:8883\"\n"
                        "    tls: {development_certificate: true, cert_file: a.pem, key_file: a.key}\n"),
              ElementsAre("test.yaml:3:42: listeners[0].tls.cert_file: not allowed with development_certificate: "
                          "true, which serves the generated certificate; give one or the other",
                          "test.yaml:3:60: listeners[0].tls.key_file: not allowed with development_certificate: "
                          "true, which serves the generated certificate; give one or the other"));
  EXPECT_THAT(errors_of("listeners:\n  - {bind: \"127.0.0.1:8883\", tls: {development_certificate: yes please}}\n"),
              ElementsAre("test.yaml:2:61: listeners[0].tls.development_certificate: expected true or false, "
                          "got 'yes please'"));
}

TEST(config_env, substitutes_in_string_values) {
  ::setenv("WHARF_CT_DATA", "/srv/wharf", 1);
  ::setenv("WHARF_CT_PORT", "1999", 1);
  const config cfg = parse_config(
      "data_dir: ${ENV:WHARF_CT_DATA}/data\n"
      "listeners:\n  - bind: \"127.0.0.1:${ENV:WHARF_CT_PORT}\"\n",
      "test.yaml");
  EXPECT_EQ(cfg.data_dir, "/srv/wharf/data");
  EXPECT_EQ(cfg.listeners.at(0).bind, "127.0.0.1:1999");
  EXPECT_EQ(cfg.listeners.at(0).port, 1999);
}

TEST(config_env, unset_variable_is_an_error_at_the_value) {
  ::unsetenv("WHARF_CT_UNSET");
  EXPECT_THAT(errors_of("data_dir: \"${ENV:WHARF_CT_UNSET}\"\n"),
              ElementsAre("test.yaml:1:11: data_dir: environment variable 'WHARF_CT_UNSET' is "
                          "not set"));
}

TEST(config_errors_report, collects_every_error_in_file_order) {
  ::unsetenv("WHARF_CT_UNSET");
  const std::string yaml = R"(io_threads: many
listeners:
  - {type: mqtt, bind: "127.0.0.1:1883"}
  - {type: websocket, bind: "127.0.0.1:1883"}
  - {type: mqtt}
log_lvl: debug
data_dir: ${ENV:WHARF_CT_UNSET}
mqtt:
  max_packet_size: 1
)";
  const std::vector<std::string> expected = {
      "test.yaml:1:13: io_threads: expected an integer, got 'many'",
      "test.yaml:4:12: listeners[1].type: invalid value 'websocket', expected one of: mqtt, "
      "mqtt-ws, queue-api, admin",
      "test.yaml:4:29: listeners[1].bind: '127.0.0.1:1883' already used at line 3",
      "test.yaml:5:5: listeners[2]: missing required field 'bind', expected \"host:port\" (e.g. "
      "\"0.0.0.0:1883\")",
      "test.yaml:6:1: unknown key 'log_lvl', did you mean 'log_level'?",
      "test.yaml:7:11: data_dir: environment variable 'WHARF_CT_UNSET' is not set",
      "test.yaml:9:20: mqtt.max_packet_size: 1 is out of range, expected 64..268435455",
  };
  EXPECT_EQ(errors_of(yaml), expected);
  try {
    (void)parse_config(yaml, "test.yaml");
    FAIL() << "expected config_errors";
  } catch (const config_errors& e) {
    std::string joined;
    for (const auto& line : expected) joined += (joined.empty() ? "" : "\n") + line;
    EXPECT_EQ(std::string(e.what()), joined);
  }
}

TEST(config_errors_report, binds_that_overlap_a_wildcard_on_one_port) {
  const auto errors = errors_of(
      "listeners:\n"
      "  - {type: mqtt, bind: \"0.0.0.0:1883\"}\n"
      "  - {type: mqtt, bind: \"127.0.0.1:1883\"}\n"
      "  - {type: mqtt, bind: \"[::1]:1883\"}\n"
      "  - {type: mqtt, bind: \"[::]:9100\"}\n"
      "  - {type: mqtt, bind: \"10.0.0.1:9100\"}\n");
  EXPECT_THAT(errors, ElementsAre("test.yaml:3:24: listeners[1].bind: '127.0.0.1:1883' overlaps the bind at line 2 "
                                  "(0.0.0.0 takes every address of its family on port 1883); use one listener or "
                                  "another port",
                                  "test.yaml:6:24: listeners[4].bind: '10.0.0.1:9100' overlaps the bind at line 5 (:: "
                                  "takes every address of its family on port 9100); use one listener or another "
                                  "port"));
}

TEST(config_log_levels, per_module_levels_and_their_errors) {
  const config cfg = parse_config("log_level: warn\nlog_levels: {mqtt: debug, queue: error}\n", "t.yaml");
  EXPECT_EQ(cfg.log_level, "warn");
  EXPECT_EQ(cfg.module_log_levels, (std::map<std::string, std::string>{{"mqtt", "debug"}, {"queue", "error"}}));

  const auto errors = errors_of("log_levels:\n  mqt: debug\n  bridge: loud\n", "t.yaml");
  ASSERT_EQ(errors.size(), 2u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "t.yaml:2:3: unknown key 'mqt' in log_levels, did you mean 'mqtt'?");
  EXPECT_EQ(errors[1],
            "t.yaml:3:11: log_levels.bridge: invalid value 'loud', expected one of: trace, debug, info, warn, error, off");
  EXPECT_EQ(errors_of("log_levels: debug\n", "t.yaml"),
            std::vector<std::string>{"t.yaml:1:13: log_levels: expected a map of module: level (modules: app, mqtt, "
                                     "bridge, http, queue)"});
}

// The config's module names are the loggers' (core/log.h): a name config accepts that no
// logger has would be silently ignored.
TEST(config_log_levels, module_names_are_the_loggers) {
  const auto cfg = parse_config("log_levels: {app: info, mqtt: info, bridge: info, http: info, queue: info}\n", "t");
  std::vector<std::string> configured;
  for (const auto& [module, level] : cfg.module_log_levels) configured.push_back(module);
  std::vector<std::string> loggers(wharf::log::module_names.begin(), wharf::log::module_names.end());
  std::sort(loggers.begin(), loggers.end());
  EXPECT_EQ(configured, loggers);
}

}  // namespace
}  // namespace wharf::config
