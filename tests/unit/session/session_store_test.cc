#include "session/session_store.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace wharf::session {
namespace {

core::message sample_message() {
  core::message m;
  m.topic = "a/b";
  m.payload = std::string("\0bin\xff", 5);
  m.qos = 1;
  m.content_type = "text/plain";
  m.user_properties = {{"k", "v"}, {"k", "v2"}};
  m.expiry_unix_ms = 123456;
  m.publisher_client_id = "pub";
  return m;
}

TEST(session_store, record_round_trip_with_and_without_will) {
  session_record r;
  r.protocol_version = 5;
  r.expiry_interval_s = 300;
  r.disconnected_unix_ms = 1700000000000;
  session_record out;
  ASSERT_TRUE(decode_record(encode_record(r), out));
  EXPECT_EQ(out, r);
  r.pending_will = sample_message();
  r.will_due_unix_ms = 99;
  ASSERT_TRUE(decode_record(encode_record(r), out));
  EXPECT_EQ(out, r);
  r.username = "meter-7";
  ASSERT_TRUE(decode_record(encode_record(r), out));
  EXPECT_EQ(out, r);
  config::acl_rule rule;
  rule.permission = config::acl_permission::deny;
  rule.action = config::acl_action::subscribe;
  rule.topic = "meters/%c/secret";
  rule.source_location = "token";
  r.rules = {rule, rule};
  r.rules[1].permission = config::acl_permission::allow;
  r.rules[1].action = config::acl_action::all;
  ASSERT_TRUE(decode_record(encode_record(r), out));
  EXPECT_EQ(out, r);
}

TEST(session_store, a_record_of_format_1_loads_with_no_username) {
  session_record r;
  r.protocol_version = 4;
  r.expiry_interval_s = 60;
  r.disconnected_unix_ms = 5;
  // Format 1 is format 2 without the trailing username flag (0: none) and rule count (0).
  std::string bytes = encode_record(r);
  ASSERT_EQ(bytes.front(), 2);
  ASSERT_EQ(bytes.substr(bytes.size() - 5), std::string(5, '\0'));
  bytes.front() = 1;
  bytes.resize(bytes.size() - 5);
  session_record out;
  out.username = "left over";
  ASSERT_TRUE(decode_record(bytes, out));
  EXPECT_EQ(out, r);
}

// The bytes of each record, as stores written by earlier builds hold them: fixed-width
// little-endian integers, 32-bit string lengths, the message in its own varint encoding.
TEST(session_store, the_record_layouts_are_pinned) {
  using namespace std::string_literals;
  EXPECT_EQ(encode_subscription({"a/b", 1, true, false, 2, 0x01020304}),
            "\x01"
            "\x03\x00\x00\x00"
            "a/b"
            "\x01\x01\x02"
            "\x04\x03\x02\x01"s);
  core::message m;
  m.topic = "t";
  m.payload = "p";
  m.qos = 1;
  m.retain = true;
  m.publish_unix_ms = 1;
  m.publisher_client_id = "c";
  const std::string message_bytes = "\x01\x05\x01t\x01p\x00\x00\x02\x01"
                                    "c"s;
  stored_delivery d{m, {7}, 0x0102, true};
  const std::string delivery_bytes = "\x01\x0b\x00\x00\x00"s + message_bytes +
                                     "\x01\x00\x00\x00\x07\x00\x00\x00\x02\x01\x01"s;
  EXPECT_EQ(encode_delivery(d), delivery_bytes);
  stored_delivery back;
  ASSERT_TRUE(decode_delivery(delivery_bytes, back));
  EXPECT_EQ(back, d);
  session_record r;
  r.protocol_version = 5;
  r.expiry_interval_s = 60;
  r.disconnected_unix_ms = 5;
  r.username = "u";
  EXPECT_EQ(encode_record(r), "\x02\x05\x3c\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00"
                              "\x00\x01\x01\x00\x00\x00u\x00\x00\x00\x00"s);
}

TEST(session_store, subscription_and_delivery_round_trip) {
  stored_subscription s{"$share/g/a/+", 2, false, true, 1, 77};
  stored_subscription s2;
  ASSERT_TRUE(decode_subscription(encode_subscription(s), s2));
  EXPECT_EQ(s2, s);
  stored_delivery d{sample_message(), {1, 2, 3}, 9, true};
  stored_delivery d2;
  ASSERT_TRUE(decode_delivery(encode_delivery(d), d2));
  EXPECT_EQ(d2, d);
}

TEST(session_store, truncated_records_are_rejected_not_read_past_the_end) {
  const auto bytes = encode_delivery(stored_delivery{sample_message(), {1}, 1, false});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    stored_delivery out;
    EXPECT_FALSE(decode_delivery(std::string_view(bytes).substr(0, n), out)) << n;
  }
  const auto rec = encode_record(session_record{5, 10, 1, sample_message(), 2, "user", {}});
  for (std::size_t n = 0; n < rec.size(); ++n) {
    session_record out;
    EXPECT_FALSE(decode_record(std::string_view(rec).substr(0, n), out)) << n;
  }
}

TEST(session_store, keys_sort_queue_numerically_and_separate_clients) {
  EXPECT_LT(keys::delivery("c", 2), keys::delivery("c", 10));
  EXPECT_LT(keys::delivery("c", 255), keys::delivery("c", 256));
  // "c" and "c2" must not interleave: '\0' ends the client id.
  EXPECT_LT(keys::delivery("c", 0xFFFFFFFFFFFFull), keys::delivery("c2", 0));
}

class session_store_db : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("wharf-session-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    db_ = core::storage::open({.path = dir_.string()});
  }
  void TearDown() override {
    db_->close();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<core::storage> db_;
};

TEST_F(session_store_db, load_sessions_reports_subscriptions_and_queue_extent) {
  core::write_batch b;
  put_session(b, "dev-1", session_record{4, 60, 5, {}, 0, "alice", {}});
  put_subscription(b, "dev-1", stored_subscription{"x/#", 1, false, false, 0, 0});
  put_subscription(b, "dev-1", stored_subscription{"y", 2, false, false, 0, 5});
  put_delivery(b, "dev-1", 1, stored_delivery{sample_message(), {}, 0, false});
  put_delivery(b, "dev-1", 7, stored_delivery{sample_message(), {}, 0, false});
  put_session(b, "dev-10", session_record{5, 0xFFFFFFFF, 0, {}, 0, std::nullopt, {}});
  put_inbound_qos2(b, "dev-1", 513);
  ASSERT_FALSE(db_->write_sync(std::move(b)));

  std::vector<loaded_session> all;
  load_sessions(*db_, [&](loaded_session&& s) { all.push_back(std::move(s)); }, [](std::string_view) { FAIL(); });
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].client_id, "dev-1");
  EXPECT_EQ(all[0].subscriptions.size(), 2u);
  EXPECT_EQ(all[0].queued_count, 2u);
  EXPECT_EQ(all[0].next_seq, 8u);
  EXPECT_EQ(all[1].client_id, "dev-10");
  EXPECT_TRUE(all[1].subscriptions.empty());

  auto queue = load_queue(*db_, "dev-1");
  ASSERT_EQ(queue.size(), 2u);
  EXPECT_EQ(queue[0].first, 1u);
  EXPECT_EQ(queue[1].first, 7u);
  EXPECT_EQ(load_inbound_qos2(*db_, "dev-1"), std::vector<std::uint16_t>{513});

  core::write_batch erase;
  erase_session(erase, "dev-1");
  ASSERT_FALSE(db_->write_sync(std::move(erase)));
  EXPECT_TRUE(load_queue(*db_, "dev-1").empty());
  EXPECT_TRUE(load_inbound_qos2(*db_, "dev-1").empty());
  all.clear();
  load_sessions(*db_, [&](loaded_session&& s) { all.push_back(std::move(s)); }, [](std::string_view) {});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].client_id, "dev-10") << "erasing dev-1 must not touch dev-10";
}

}  // namespace
}  // namespace wharf::session
