// The cluster section: what it reads, its defaults, and the errors each field can produce
// (with exact file:line:col).
#include "config/config.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"

namespace wharf::config {
namespace {

using ::testing::ElementsAre;
using test::errors_of;

constexpr const char* three_peers = R"(  peers:
    - {id: 1, address: "10.0.0.1:7101"}
    - {id: 2, address: "10.0.0.2:7101"}
    - {id: 3, address: "10.0.0.3:7101"}
)";

TEST(config_cluster, absent_is_a_node_alone) { EXPECT_FALSE(parse_config("", "test.yaml").cluster); }

TEST(config_cluster, every_field_is_read_and_the_rest_default) {
  auto cfg = parse_config(std::string("cluster:\n  node_id: 2\n  bind: \"0.0.0.0:7101\"\n") + three_peers, "t.yaml");
  ASSERT_TRUE(cfg.cluster);
  EXPECT_EQ(cfg.cluster->node_id, 2u);
  EXPECT_EQ(cfg.cluster->bind, "0.0.0.0:7101");
  ASSERT_EQ(cfg.cluster->peers.size(), 3u);
  EXPECT_EQ(cfg.cluster->peers[2].address, "10.0.0.3:7101");
  EXPECT_EQ(cfg.cluster->name, "wharf");
  EXPECT_FALSE(cfg.cluster->join);
  EXPECT_EQ(cfg.cluster->election_timeout_ms, 1000u);
  EXPECT_EQ(cfg.cluster->heartbeat_timeout_ms, 100u);
  EXPECT_EQ(cfg.cluster->leader_wait_ms, 5000u);
  EXPECT_EQ(cfg.cluster->forward_timeout_ms, 10000u);
  EXPECT_EQ(cfg.cluster->source_location, "t.yaml:1:1");
  cfg = parse_config(std::string("cluster:\n  node_id: 4\n  bind: \"10.0.0.4:7101\"\n  join: true\n  name: prod\n"
                                 "  election_timeout_ms: 2000\n  heartbeat_timeout_ms: 200\n  leader_wait_ms: 0\n"
                                 "  forward_timeout_ms: 1000\n") + three_peers, "t.yaml");
  EXPECT_TRUE(cfg.cluster->join);
  EXPECT_EQ(cfg.cluster->name, "prod");
  EXPECT_EQ(cfg.cluster->election_timeout_ms, 2000u);
  EXPECT_EQ(cfg.cluster->heartbeat_timeout_ms, 200u);
  EXPECT_EQ(cfg.cluster->leader_wait_ms, 0u);
  EXPECT_EQ(cfg.cluster->forward_timeout_ms, 1000u);
}

TEST(config_cluster, errors_name_their_place) {
  EXPECT_THAT(errors_of("cluster: 3\n"), ElementsAre("test.yaml:1:10: cluster: expected a map with node_id, bind and peers"));
  EXPECT_THAT(errors_of("cluster:\n  name: x\n"),
              ElementsAre("test.yaml:2:3: cluster: missing required field 'node_id'",
                          "test.yaml:2:3: cluster: missing required field 'bind'",
                          "test.yaml:2:3: cluster: missing required field 'peers' (the initial voters, this node "
                          "among them)"));
  EXPECT_THAT(errors_of(std::string("cluster:\n  node_id: 1\n  bind: nowhere\n") + three_peers),
              ElementsAre("test.yaml:3:9: cluster.bind: 'nowhere' is not host:port"));
  EXPECT_THAT(errors_of("cluster:\n  node_id: 1\n  bind: \"h:1\"\n  peers:\n    - {id: 1, address: \"h:1\"}\n"
                        "    - {id: 1, address: \"h:2\"}\n    - {id: 2, address: \"h\"}\n"),
              ElementsAre("test.yaml:6:12: cluster.peers[1].id: 1 is given twice",
                          "test.yaml:7:24: cluster.peers[2].address: 'h' is not host:port"));
  EXPECT_THAT(errors_of(std::string("cluster:\n  node_id: 4\n  bind: \"h:1\"\n") + three_peers),
              ElementsAre("test.yaml:5:5: cluster.peers: node_id 4 is not one of the peers (a node added later says "
                          "join: true)"));
  EXPECT_THAT(errors_of(std::string("cluster:\n  node_id: 3\n  bind: \"h:1\"\n  join: true\n") + three_peers),
              ElementsAre("test.yaml:4:9: cluster.join: node 3 is one of the peers, the initial voters; a joining "
                          "node is not"));
  EXPECT_THAT(errors_of(std::string("cluster:\n  node_id: 1\n  bind: \"h:1\"\n  election_timeout_ms: 500\n"
                                    "  heartbeat_timeout_ms: 500\n") + three_peers),
              ElementsAre("test.yaml:5:25: cluster.heartbeat_timeout_ms: 500 must be below election_timeout_ms (500)"));
}

TEST(config_cluster, tls_needs_all_three_files) {
  // Any readable file will do for the parser (it does not load certificates).
  auto cfg = parse_config(std::string("cluster:\n  node_id: 1\n  bind: \"h:1\"\n"
                                      "  tls: {cert_file: /etc/hostname, key_file: /etc/hostname, ca_file: /etc/hosts}\n") +
                              three_peers,
                          "t.yaml");
  ASSERT_TRUE(cfg.cluster && cfg.cluster->tls);
  EXPECT_EQ(cfg.cluster->tls->cert_file, "/etc/hostname");
  EXPECT_EQ(cfg.cluster->tls->ca_file, "/etc/hosts");
  EXPECT_TRUE(cfg.cluster->tls->require_client_cert);
  EXPECT_FALSE(parse_config(std::string("cluster:\n  node_id: 1\n  bind: \"h:1\"\n") + three_peers, "t.yaml")
                   .cluster->tls);
  EXPECT_THAT(errors_of(std::string("cluster:\n  node_id: 1\n  bind: \"h:1\"\n"
                                    "  tls:\n    cert_file: /etc/hostname\n    key_file: /nonexistent/node.key\n") +
                        three_peers),
              ElementsAre("test.yaml:5:5: cluster.tls: missing required field 'ca_file', expected a file path",
                          "test.yaml:6:5: cluster.tls.key_file: cannot read file '/nonexistent/node.key': No such "
                          "file or directory"));
  EXPECT_THAT(errors_of(std::string("cluster:\n  node_id: 1\n  bind: \"h:1\"\n  tls: yes\n") + three_peers),
              ElementsAre("test.yaml:4:8: cluster.tls: expected a map with cert_file, key_file and ca_file"));
}

}  // namespace
}  // namespace wharf::config
