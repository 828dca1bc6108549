// The `encryption:` section: keys from a file or a value, the active key, and the errors
// (with file:line:col) of keys that are not 32 bytes of hex, ids given twice, a missing
// active key. A key's value is never repeated in a message.
#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "config_test_util.h"

namespace wharf::config {
namespace {

using ::testing::ElementsAre;
using test::errors_of;

const std::string hex_a(64, 'a');  // 32 bytes of 0xaa

TEST(config_encryption, absent_means_none) { EXPECT_FALSE(parse_config("", "test.yaml").encryption); }

TEST(config_encryption, keys_from_a_file_and_from_a_value) {
  const auto dir = ::testing::TempDir();
  std::FILE* f = std::fopen((dir + "k1.key").c_str(), "w");
  std::fputs((std::string(64, 'B') + "\n").c_str(), f);
  std::fclose(f);
  const config cfg = parse_config("encryption:\n"
                                  "  active: k2\n"
                                  "  keys:\n"
                                  "    - {id: k1, key_file: k1.key}\n"
                                  "    - {id: k2, key: \"" + hex_a + "\"}\n",
                                  dir + "wharf.yaml");
  ASSERT_TRUE(cfg.encryption);
  EXPECT_EQ(cfg.encryption->active, "k2");
  ASSERT_EQ(cfg.encryption->keys.size(), 2u);
  EXPECT_EQ(cfg.encryption->keys[0].id, "k1");
  EXPECT_EQ(cfg.encryption->keys[0].key, std::string(32, '\xbb'));
  EXPECT_EQ(cfg.encryption->keys[1].key, std::string(32, '\xaa'));
}

TEST(config_encryption, errors_at_their_position_without_the_secret) {
  EXPECT_THAT(errors_of("encryption:\n"
                        "  active: k9\n"
                        "  keys:\n"
                        "    - {id: k1, key: \"not-hex-secret\"}\n"
                        "    - {id: k1, key: \"" + hex_a + "\"}\n"
                        "    - {id: k3}\n"
                        "    - {id: k4, key: \"" + hex_a + "\", key_file: x}\n"),
              ElementsAre("test.yaml:2:11: encryption.active: 'k9' is not the id of one of encryption.keys",
                          "test.yaml:4:21: encryption.keys[0].key: expected 64 hex digits (32 bytes), as `openssl "
                          "rand -hex 32` prints",
                          "test.yaml:5:12: encryption.keys[1].id: key 'k1' is given twice",
                          "test.yaml:6:7: encryption.keys[2]: missing required field 'key_file' (or 'key')",
                          "test.yaml:7:7: encryption.keys[3]: give key_file or key, not both"));
  EXPECT_THAT(errors_of("encryption: {keys: []}\n"),
              ElementsAre("test.yaml:1:13: encryption: missing required field 'active', the id of the key that seals "
                          "new values"));
}

}  // namespace
}  // namespace wharf::config
