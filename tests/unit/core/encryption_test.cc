// Encryption at rest: sealing and opening values, and the encrypted store's decorator and
// startup checks over a real RocksDB.
#include "core/encryption.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"

namespace wharf::core {
namespace {

using testing::temp_dir;

encryption_key key(std::string id, char fill) { return {std::move(id), std::string(encryption_key_bytes, fill)}; }

std::shared_ptr<value_cipher> cipher(std::vector<encryption_key> keys, std::string active) {
  return std::make_shared<value_cipher>(keys, std::move(active));
}

std::unique_ptr<storage> open_at(const std::string& path) {
  storage_options o;
  o.path = path;
  o.sync = false;
  return storage::open(o);
}

std::map<std::string, std::string> scan_all(storage& s) {
  std::map<std::string, std::string> out;
  s.scan_prefix("", [&](std::string_view k, std::string_view v) {
    out.emplace(k, v);
    return true;
  });
  return out;
}

TEST(value_cipher, seals_and_opens_bound_to_the_storage_key) {
  auto c = cipher({key("k1", 'a')}, "k1");
  const std::string sealed = c->seal("q/1", "hello");
  EXPECT_EQ(value_cipher::key_id_of(sealed), "k1");
  EXPECT_EQ(sealed.find("hello"), std::string::npos);
  EXPECT_EQ(c->open("q/1", sealed), "hello");
  EXPECT_EQ(c->open("q/2", sealed), std::nullopt);  // moved to another key
  std::string flipped = sealed;
  flipped[flipped.size() / 2] ^= 1;
  EXPECT_EQ(c->open("q/1", flipped), std::nullopt);
  EXPECT_EQ(c->open("q/1", sealed.substr(0, sealed.size() - 1)), std::nullopt);
  EXPECT_EQ(c->open("q/1", "plain"), std::nullopt);
  // The same plaintext twice: other nonces, other bytes.
  EXPECT_NE(c->seal("q/1", "hello"), sealed);
  EXPECT_EQ(c->open("q/1", c->seal("q/1", "")), "");
}

TEST(value_cipher, a_key_of_the_same_id_with_other_bytes_opens_nothing) {
  const std::string sealed = cipher({key("k1", 'a')}, "k1")->seal("x", "secret");
  EXPECT_EQ(cipher({key("k1", 'b')}, "k1")->open("x", sealed), std::nullopt);
  EXPECT_EQ(cipher({key("k2", 'a')}, "k2")->open("x", sealed), std::nullopt);  // no key k1
  // After a rotation the old key still opens what it sealed.
  auto rotated = cipher({key("k1", 'a'), key("k2", 'b')}, "k2");
  EXPECT_EQ(rotated->open("x", sealed), "secret");
  EXPECT_EQ(value_cipher::key_id_of(rotated->seal("x", "new")), "k2");
}

TEST(value_cipher, nonces_of_different_starts_differ) {
  auto a = cipher({key("k1", 'a')}, "k1");
  auto b = cipher({key("k1", 'a')}, "k1");
  a->set_start(1);
  b->set_start(2);
  // The first value of each start: the counter is the same, the start number is not.
  EXPECT_NE(a->seal("x", "same"), b->seal("x", "same"));
}

TEST(encrypted_storage, every_value_on_disk_is_sealed_and_reads_back) {
  temp_dir dir;
  {
    auto s = open_encrypted(open_at(dir.sub("db")), cipher({key("k1", 'a')}, "k1"));
    write_batch b;
    b.put("a/1", "first plaintext");
    b.put("a/2", "second plaintext");
    b.put("b/1", "third");
    ASSERT_FALSE(s->write_sync(std::move(b)));
    write_batch e;
    e.erase("a/2");
    ASSERT_FALSE(s->write_sync(std::move(e)));
    EXPECT_EQ(s->get("a/1"), "first plaintext");
    EXPECT_EQ(s->get("a/2"), std::nullopt);
    std::vector<std::string> seen;
    s->scan_prefix("", [&](std::string_view k, std::string_view v) {
      seen.push_back(std::string(k) + "=" + std::string(v));
      return true;
    });
    EXPECT_EQ(seen, (std::vector<std::string>{"a/1=first plaintext", "b/1=third"}));  // own records hidden
    auto view = s->view();
    EXPECT_EQ(view->get("b/1"), "third");
  }
  auto raw = open_at(dir.sub("db"));
  for (const auto& [k, v] : scan_all(*raw)) {
    EXPECT_EQ(v.find("plaintext"), std::string::npos) << k;
    if (!k.starts_with("!enc/")) {
      EXPECT_EQ(value_cipher::key_id_of(v), "k1") << k;
    }
  }
  EXPECT_TRUE(holds_encrypted_values(*raw));
}

TEST(encrypted_storage, an_import_seals_what_it_adds) {
  temp_dir dir;
  auto s = open_encrypted(open_at(dir.sub("db")), cipher({key("k1", 'a')}, "k1"));
  auto import = s->import_range("r/", "r0");
  ASSERT_FALSE(import->add("r/1", "imported plaintext"));
  ASSERT_FALSE(import->commit());
  EXPECT_EQ(s->get("r/1"), "imported plaintext");
  s.reset();
  auto raw = open_at(dir.sub("db"));
  EXPECT_EQ(raw->get("r/1")->find("imported"), std::string::npos);
}

TEST(encrypted_storage, startup_refuses_a_wrong_or_missing_key_and_writes_nothing) {
  temp_dir dir;
  {
    auto s = open_encrypted(open_at(dir.sub("db")), cipher({key("k1", 'a')}, "k1"));
    write_batch b;
    b.put("a/1", "v");
    ASSERT_FALSE(s->write_sync(std::move(b)));
  }
  const auto before = scan_all(*open_at(dir.sub("db")));
  EXPECT_THROW((void)open_encrypted(open_at(dir.sub("db")), cipher({key("k1", 'b')}, "k1")), encryption_error);
  EXPECT_THROW((void)open_encrypted(open_at(dir.sub("db")), cipher({key("k2", 'a')}, "k2")), encryption_error);
  EXPECT_EQ(scan_all(*open_at(dir.sub("db"))), before);

  // Rotated: both keys; then k1 may not go while a value uses it.
  std::map<std::string, std::uint64_t> counts;
  {
    auto s = open_encrypted(open_at(dir.sub("db")), cipher({key("k1", 'a'), key("k2", 'b')}, "k2"), &counts);
    EXPECT_EQ(counts, (std::map<std::string, std::uint64_t>{{"k1", 1}}));
    write_batch b;
    b.put("a/2", "w");
    ASSERT_FALSE(s->write_sync(std::move(b)));
  }
  EXPECT_THROW((void)open_encrypted(open_at(dir.sub("db")), cipher({key("k2", 'b')}, "k2")), encryption_error);
  {
    // Once a/1 is rewritten under k2, k1 can be retired.
    auto s = open_encrypted(open_at(dir.sub("db")), cipher({key("k1", 'a'), key("k2", 'b')}, "k2"));
    write_batch b;
    b.put("a/1", "v again");
    ASSERT_FALSE(s->write_sync(std::move(b)));
  }
  counts.clear();
  auto s = open_encrypted(open_at(dir.sub("db")), cipher({key("k2", 'b')}, "k2"), &counts);
  EXPECT_EQ(counts, (std::map<std::string, std::uint64_t>{{"k2", 2}}));
  EXPECT_EQ(s->get("a/1"), "v again");
  EXPECT_EQ(s->get("a/2"), "w");
}

TEST(encrypted_storage, a_store_written_in_the_clear_is_refused) {
  temp_dir dir;
  {
    auto s = open_at(dir.sub("db"));
    write_batch b;
    b.put("a/1", "clear");
    ASSERT_FALSE(s->write_sync(std::move(b)));
    EXPECT_FALSE(holds_encrypted_values(*s));
  }
  EXPECT_THROW((void)open_encrypted(open_at(dir.sub("db")), cipher({key("k1", 'a')}, "k1")), encryption_error);
  EXPECT_EQ(open_at(dir.sub("db"))->get("a/1"), "clear");
}

}  // namespace
}  // namespace wharf::core
