// Command line of the pub/sub, queue and sessions modes: defaults, every option, and the values refused.
#include "bench/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wharf::bench {
namespace {

struct parsed {
  std::optional<options> opts;
  std::string error;
  bool help = false;
};

parsed parse(std::vector<std::string> args) {
  args.insert(args.begin(), "wharf-bench");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  parsed p;
  p.opts = parse_options(static_cast<int>(argv.size()), argv.data(), p.error, p.help);
  return p;
}

TEST(pubsub_options, offline_subscribers_are_persistent) {
  const auto plain = parse({"pub"});
  ASSERT_TRUE(plain.opts) << plain.error;
  EXPECT_FALSE(plain.opts->offline);
  EXPECT_FALSE(plain.opts->persistent);
  const auto offline = parse({"pub", "--offline", "--qos", "1"});
  ASSERT_TRUE(offline.opts) << offline.error;
  EXPECT_TRUE(offline.opts->offline);
  EXPECT_TRUE(offline.opts->persistent);  // a clean session would lose its subscription on leaving
}

TEST(pubsub_options, a_subscribe_filter_for_fanin_and_fanout_only) {
  const auto fanout = parse({"pub", "--scenario", "fanout", "--filter", "bench/#"});
  ASSERT_TRUE(fanout.opts) << fanout.error;
  EXPECT_EQ(fanout.opts->subscribe_filter, "bench/#");
  const auto p2p = parse({"pub", "--filter", "bench/#"});
  EXPECT_FALSE(p2p.opts);
  EXPECT_EQ(p2p.error, "--filter is for the pub/sub fanin and fanout scenarios");
}

TEST(conn_options, credentials) {
  const auto none = parse({"conn"});
  ASSERT_TRUE(none.opts) << none.error;
  EXPECT_FALSE(none.opts->username);
  EXPECT_FALSE(none.opts->password);
  const auto p = parse({"conn", "--username", "meter-7", "--password", "eyJ.x.y"});
  ASSERT_TRUE(p.opts) << p.error;
  EXPECT_EQ(p.opts->username, "meter-7");
  EXPECT_EQ(p.opts->password, "eyJ.x.y");
  const auto missing = parse({"conn", "--passwords", "/nonexistent/tokens"});
  EXPECT_FALSE(missing.opts);
  EXPECT_EQ(missing.error, "--passwords /nonexistent/tokens: no password read (a missing or empty file)");
}

TEST(conn_options, tls_sources_and_first_id) {
  const auto p = parse({"conn", "--tls", "--ca", "ca.pem", "--source", "127.0.0.2,127.0.0.3", "--first-id", "9000"});
  ASSERT_TRUE(p.opts) << p.error;
  EXPECT_TRUE(p.opts->tls);
  EXPECT_EQ(p.opts->ca_file, "ca.pem");
  EXPECT_EQ(p.opts->sources, (std::vector<std::string>{"127.0.0.2", "127.0.0.3"}));
  EXPECT_EQ(p.opts->first_id, 9000u);
  EXPECT_FALSE(parse({"conn"}).opts->tls);
  EXPECT_EQ(parse({"conn", "--first-id", "-1"}).error, "bad value '-1' for --first-id");
}

TEST(sessions_options, phase_and_sample) {
  const auto create = parse({"sessions", "--connections", "1000000"});
  ASSERT_TRUE(create.opts) << create.error;
  EXPECT_EQ(create.opts->mode, mode::sessions);
  EXPECT_EQ(create.opts->session_phase, session_phase::create);
  EXPECT_EQ(create.opts->connections, 1000000u);
  EXPECT_EQ(create.opts->sample, 1000u);
  const auto resume = parse({"sessions", "--phase", "resume", "--sample", "50"});
  ASSERT_TRUE(resume.opts) << resume.error;
  EXPECT_EQ(resume.opts->session_phase, session_phase::resume);
  EXPECT_EQ(resume.opts->sample, 50u);
  EXPECT_EQ(parse({"sessions", "--phase", "later"}).error, "bad value 'later' for --phase");
  EXPECT_EQ(parse({"sessions", "--sample", "0"}).error, "bad value '0' for --sample");
}

TEST(queue_options, defaults_fit_the_embedded_default_server) {
  const auto p = parse({"queue"});
  ASSERT_TRUE(p.opts) << p.error;
  const options& o = *p.opts;
  EXPECT_EQ(o.mode, mode::queue);
  EXPECT_EQ(o.endpoint, "http://127.0.0.1:8080");
  EXPECT_EQ(o.ca_file, "");
  EXPECT_EQ(o.secret_id, "wharf-dev");
  EXPECT_EQ(o.secret_key, "wharf-dev-secret");
  EXPECT_EQ(o.queue_name, "");  // bench-<random> at run time
  EXPECT_FALSE(o.keep_queue);
  EXPECT_EQ(o.batch, 1U);
  EXPECT_EQ(o.producers, 1U);
  EXPECT_EQ(o.consumers, 1U);
  EXPECT_EQ(o.polling_wait_s, 1U);
  EXPECT_EQ(o.size_bytes, 64U);
  EXPECT_EQ(o.rate, 0);
  EXPECT_EQ(o.duration_s, 10);
  EXPECT_EQ(o.threads, 1U);
  EXPECT_FALSE(o.json);
}

TEST(queue_options, every_option_is_read) {
  const auto p = parse({"queue", "--endpoint", "https://localhost:8443/v2/index.php", "--ca", "ca.pem",
                        "--secret-id", "backend", "--secret-key", "k3y", "--queue", "orders_1-a", "--keep",
                        "--batch", "16", "--producers", "4", "--consumers", "3", "--polling-wait", "30",
                        "--size", "1048576", "--rate", "2500.5", "--duration", "2", "--threads", "2", "--json"});
  ASSERT_TRUE(p.opts) << p.error;
  const options& o = *p.opts;
  EXPECT_EQ(o.endpoint, "https://localhost:8443/v2/index.php");
  EXPECT_EQ(o.ca_file, "ca.pem");
  EXPECT_EQ(o.secret_id, "backend");
  EXPECT_EQ(o.secret_key, "k3y");
  EXPECT_EQ(o.queue_name, "orders_1-a");
  EXPECT_TRUE(o.keep_queue);
  EXPECT_EQ(o.batch, 16U);
  EXPECT_EQ(o.producers, 4U);
  EXPECT_EQ(o.consumers, 3U);
  EXPECT_EQ(o.polling_wait_s, 30U);
  EXPECT_EQ(o.size_bytes, 1048576U);
  EXPECT_EQ(o.rate, 2500.5);
  EXPECT_EQ(o.duration_s, 2);
  EXPECT_EQ(o.threads, 2U);
  EXPECT_TRUE(o.json);
}

TEST(queue_options, out_of_range_values_are_refused) {
  const std::vector<std::vector<std::string>> bad = {
      {"--batch", "0"},         {"--batch", "17"},         {"--batch", "x"},
      {"--producers", "0"},     {"--consumers", "0"},      {"--polling-wait", "31"},
      {"--polling-wait", "-1"}, {"--size", "23"},          {"--size", "1048577"},
      {"--queue", ""},          {"--queue", "1abc"},       {"--queue", "has space"},
      {"--queue", std::string(65, 'q')},                   {"--rate", "-1"},
      {"--duration", "0"},      {"--endpoint"},            {"--unknown", "1"}};
  for (const auto& args : bad) {
    std::vector<std::string> command{"queue"};
    command.insert(command.end(), args.begin(), args.end());
    const auto p = parse(command);
    EXPECT_FALSE(p.opts) << args.front();
    EXPECT_FALSE(p.error.empty()) << args.front();
  }
}

TEST(queue_options, a_64_character_queue_name_is_the_longest) {
  const auto p = parse({"queue", "--queue", "q" + std::string(63, '9')});
  ASSERT_TRUE(p.opts) << p.error;
  EXPECT_EQ(p.opts->queue_name.size(), 64U);
}

TEST(queue_options, bodies_over_cmq_max_msg_size_are_only_refused_in_queue_mode) {
  EXPECT_FALSE(parse({"queue", "--size", "2000000"}).opts);
  EXPECT_TRUE(parse({"pub", "--size", "2000000"}).opts);
}

}  // namespace
}  // namespace wharf::bench
