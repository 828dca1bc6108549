// `wharf ctl`'s command line (which request each command makes, where credentials come
// from, what is refused) and its tables, without a broker.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "app/ctl/ctl_args.h"
#include "app/ctl/ctl_render.h"

namespace wharf::app::ctl {
namespace {

using env_map = std::map<std::string, std::string>;

ctl_invocation parsed(std::vector<std::string> args, const env_map& env = {}) {
  auto r = parse_ctl_args(args, env);
  EXPECT_TRUE(r.invocation) << r.message;
  return r.invocation.value_or(ctl_invocation{});
}

std::string refused(std::vector<std::string> args) {
  auto r = parse_ctl_args(args, {});
  EXPECT_FALSE(r.invocation);
  EXPECT_EQ(r.exit_code, 2);
  return r.message;
}

TEST(ctl_args, each_command_makes_its_request) {
  struct expectation {
    std::vector<std::string> args;
    std::string method, target;
    view shown;
  };
  const expectation cases[] = {
      {{"status"}, "GET", "/api/v1/status", view::status},
      {{"clients"}, "GET", "/api/v1/clients", view::table},
      {{"clients", "show", "dev-1"}, "GET", "/api/v1/clients/dev-1", view::fields},
      {{"clients", "kick", "dev-1"}, "POST", "/api/v1/clients/dev-1/disconnect", view::done},
      {{"sessions", "--state", "offline"}, "GET", "/api/v1/sessions?state=offline", view::table},
      {{"sessions", "delete", "dev-1"}, "DELETE", "/api/v1/sessions/dev-1", view::done},
      {{"subscriptions", "--client", "dev-1"}, "GET", "/api/v1/subscriptions?client=dev-1", view::table},
      {{"retained", "--topic", "home/#"}, "GET", "/api/v1/retained?topic=home%2F%23", view::table},
      {{"queues", "--search", "ord", "--limit", "5"}, "GET", "/api/v1/queues?search=ord&limit=5", view::table},
      {{"queues", "show", "orders"}, "GET", "/api/v1/queues/orders", view::fields},
      {{"queues", "purge", "orders"}, "POST", "/api/v1/queues/orders/purge", view::done},
      {{"queues", "redrive", "dlq", "--source", "orders", "--max", "10"}, "POST",
       "/api/v1/queues/dlq/redrive?source=orders&max=10", view::done},
      {{"topics", "--offset", "100"}, "GET", "/api/v1/topics?offset=100", view::table},
      {{"trace", "msg-1"}, "GET", "/api/v1/messages/msg-1/trace", view::trace},
      {{"reload"}, "POST", "/api/v1/reload", view::done},
      {{"cluster"}, "GET", "/api/v1/cluster", view::fields},
      {{"cluster", "status"}, "GET", "/api/v1/cluster", view::fields},
      {{"cluster", "transfer"}, "POST", "/api/v1/cluster/transfer", view::done},
      {{"cluster", "transfer", "3"}, "POST", "/api/v1/cluster/transfer?to=3", view::done},
      {{"cluster", "add", "4", "10.0.0.4:7101"}, "POST", "/api/v1/cluster/members?id=4&address=10.0.0.4%3A7101",
       view::done},
      {{"cluster", "remove", "2"}, "DELETE", "/api/v1/cluster/members/2", view::done},
      {{"users"}, "GET", "/api/v1/users", view::table},
      {{"users", "show", "meter-1"}, "GET", "/api/v1/users/meter-1", view::fields},
      {{"users", "set", "meter-1", "--roles", "meters"}, "PUT", "/api/v1/users/meter-1", view::done},
      {{"users", "delete", "meter-1"}, "DELETE", "/api/v1/users/meter-1", view::done},
      {{"roles", "--limit", "5"}, "GET", "/api/v1/roles?limit=5", view::table},
      {{"roles", "show", "meters"}, "GET", "/api/v1/roles/meters", view::fields},
      {{"roles", "set", "meters", "--acl-file", "r.json"}, "PUT", "/api/v1/roles/meters", view::done},
      {{"roles", "delete", "meters"}, "DELETE", "/api/v1/roles/meters", view::done},
  };
  for (const auto& c : cases) {
    const auto inv = parsed(c.args);
    EXPECT_EQ(inv.request.method, c.method) << c.args[0];
    EXPECT_EQ(inv.request.target, c.target) << c.args[0];
    EXPECT_EQ(inv.request.shown, c.shown) << c.args[0];
  }
  EXPECT_TRUE(parsed({"health"}).request.health);
}

TEST(ctl_args, a_user_or_role_set_says_what_its_body_holds) {
  const auto user = parsed({"users", "set", "m-1", "--password-file", "-", "--roles", "meters,ops", "--acl-file", "a.json"});
  ASSERT_TRUE(user.request.body);
  EXPECT_EQ(user.request.body->password_file, "-");
  EXPECT_EQ(user.request.body->roles, (std::vector<std::string>{"meters", "ops"}));
  EXPECT_EQ(user.request.body->acl_file, "a.json");
  EXPECT_FALSE(parsed({"users", "show", "m-1"}).request.body);
  EXPECT_NE(refused({"users", "set", "m-1", "--roles", "a,,b"}).find("--roles takes role names"), std::string::npos);
  EXPECT_NE(refused({"roles", "set", "r", "--roles", "a"}).find("--roles does not apply to 'roles'"), std::string::npos);
  EXPECT_NE(refused({"users", "--password-file", "-"}).find("does not apply"), std::string::npos);
}

TEST(ctl_args, names_are_percent_encoded) {
  EXPECT_EQ(parsed({"sessions", "show", "a/b c"}).request.target, "/api/v1/sessions/a%2Fb%20c");
}

TEST(ctl_args, flags_win_over_the_environment) {
  const env_map env{{"WHARF_ADMIN_URL", "https://ops.example:9443"},
                    {"WHARF_ADMIN_USER", "env-user"},
                    {"WHARF_ADMIN_PASSWORD", "env-pass"},
                    {"WHARF_ADMIN_CREDENTIALS", "/etc/wharf/ctl"}};
  auto inv = parsed({"status"}, env);
  EXPECT_EQ(inv.connection.url, "https://ops.example:9443");
  EXPECT_EQ(inv.connection.user, "env-user");
  EXPECT_EQ(inv.connection.password, "env-pass");
  EXPECT_EQ(inv.connection.credentials_file, "/etc/wharf/ctl");
  inv = parsed({"--user", "flag-user", "status", "--password", "flag-pass", "--url", "http://h:1"}, env);
  EXPECT_EQ(inv.connection.user, "flag-user");
  EXPECT_EQ(inv.connection.password, "flag-pass");
  EXPECT_EQ(inv.connection.url, "http://h:1");
  EXPECT_EQ(parsed({"status"}).connection.url, "http://127.0.0.1:9100");
}

TEST(ctl_args, mistakes_are_refused_with_a_reason) {
  EXPECT_NE(refused({}).find("no command"), std::string::npos);
  EXPECT_NE(refused({"bogus"}).find("not a command: 'bogus'"), std::string::npos);
  EXPECT_NE(refused({"clients", "show"}).find("not a command"), std::string::npos);
  EXPECT_NE(refused({"--frobnicate", "status"}).find("unknown option '--frobnicate'"), std::string::npos);
  EXPECT_NE(refused({"status", "--url"}).find("--url needs a value"), std::string::npos);
  EXPECT_NE(refused({"status", "--url", "ftp://x"}).find("http:// or https://"), std::string::npos);
  EXPECT_NE(refused({"queues", "--limit", "ten"}).find("--limit takes a whole number"), std::string::npos);
  EXPECT_NE(refused({"status", "--state", "online"}).find("--state does not apply to 'status'"), std::string::npos);
  EXPECT_NE(refused({"queues", "purge", "q", "--search", "x"}).find("does not apply"), std::string::npos);
  EXPECT_NE(refused({"status", "--timeout", "0"}).find("--timeout"), std::string::npos);
  EXPECT_NE(refused({"cluster", "transfer", "two"}).find("takes a node id, got 'two'"), std::string::npos);
  EXPECT_NE(refused({"cluster", "add", "4"}).find("not a command"), std::string::npos);
  EXPECT_NE(refused({"cluster", "add", "four", "h:1"}).find("takes a node id, got 'four'"), std::string::npos);
  EXPECT_NE(refused({"cluster", "remove", "x"}).find("takes a node id, got 'x'"), std::string::npos);
  auto help = parse_ctl_args({"--help"}, {});
  EXPECT_FALSE(help.invocation);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.message, ctl_usage());
}

TEST(ctl_args, credentials_line) {
  EXPECT_EQ(parse_credentials_line("ops:s3:cret\n"), std::make_pair(std::string("ops"), std::string("s3:cret")));
  EXPECT_EQ(parse_credentials_line("ops:\r\n"), std::make_pair(std::string("ops"), std::string()));
  EXPECT_FALSE(parse_credentials_line("no colon"));
  EXPECT_FALSE(parse_credentials_line(":nouser"));
}

TEST(ctl_render, a_list_is_a_table_in_aligned_columns_with_the_page_it_shows) {
  ctl_request r;
  r.list_key = "queues";
  const auto answer = boost::json::parse(R"({"total": 3, "queues": [
      {"queueName": "orders", "visible": 12, "inflight": 1, "delayed": 0, "maxMsgHeapNum": 1000000},
      {"queueName": "dlq", "visible": 0, "inflight": 0, "delayed": 0, "maxMsgHeapNum": 1000000,
       "deadLetterQueue": "x"}]})");
  EXPECT_EQ(render(r, answer),
            "QUEUE   VISIBLE  INFLIGHT  DELAYED  MAX      DEAD LETTER QUEUE\n"
            "orders  12       1         0        1000000  -\n"
            "dlq     0        0         0        1000000  x\n"
            "(2 of 3: --offset and --limit page through them)\n");
}

TEST(ctl_render, one_object_is_name_value_lines_and_its_lists_follow) {
  ctl_request r;
  r.shown = view::fields;
  const auto answer = boost::json::parse(R"({"clientId": "dev-1", "online": true, "username": null,
      "subscriptions": [{"filter": "cmd/#", "qos": 1, "noLocal": false, "retainAsPublished": false,
                         "retainHandling": 0}]})");
  EXPECT_EQ(render(r, answer),
            "clientId  dev-1\n"
            "online    yes\n"
            "username  -\n"
            "\n"
            "subscriptions:\n"
            "FILTER  QOS  NO LOCAL  RETAIN AS PUBLISHED  RETAIN HANDLING  SUB ID\n"
            "cmd/#   1    no        no                   0                -\n");
}

TEST(ctl_render, the_cluster_is_its_fields_then_its_members) {
  ctl_request r;
  r.shown = view::fields;
  const auto answer = boost::json::parse(R"({"nodeId": 1, "role": "leader", "leader": 1, "term": 3,
      "members": [{"id": 1, "address": "10.0.0.1:7101", "voter": true, "self": true, "leader": true},
                  {"id": 2, "address": "10.0.0.2:7101", "voter": true, "matchIndex": 40, "lag": 2}]})");
  EXPECT_EQ(render(r, answer),
            "nodeId  1\n"
            "role    leader\n"
            "leader  1\n"
            "term    3\n"
            "\n"
            "members:\n"
            "ID  ADDRESS        VOTER  NOTE               MATCH INDEX  LAG\n"
            "1   10.0.0.1:7101  yes    leader, this node  -            -\n"
            "2   10.0.0.2:7101  yes                       40           2\n");
}

TEST(ctl_render, actions_say_what_they_did_and_traces_give_utc_times) {
  ctl_request done;
  done.shown = view::done;
  EXPECT_EQ(render(done, boost::json::parse(R"({"purged": 12})")), "purged 12\n");
  ctl_request trace;
  trace.shown = view::trace;
  const auto answer = boost::json::parse(R"({"msgId": "m1", "queueName": "orders", "truncated": false,
      "events": [{"time": 1764921600350, "event": "received", "queue": "orders", "by": "SecretId A",
                  "dequeueCount": 1}]})");
  EXPECT_EQ(render(trace, answer),
            "message m1 (queue orders)\n"
            "TIME                      EVENT     QUEUE   BY          DEQUEUES  DETAIL\n"
            "2025-12-05T08:00:00.350Z  received  orders  SecretId A  1         -\n");
}

TEST(ctl_render, runtime_users_and_their_rules) {
  ctl_request list;
  list.list_key = "users";
  EXPECT_EQ(render(list, boost::json::parse(R"({"total": 1, "users": [{"username": "m-1", "hasPassword": true,
      "roles": ["meters", "ops"], "ruleCount": 2}]})")),
            "USERNAME  PASSWORD  ROLES        RULES\n"
            "m-1       yes       meters, ops  2\n");
  ctl_request show;
  show.shown = view::fields;
  EXPECT_EQ(render(show, boost::json::parse(R"({"username": "m-1", "hasPassword": false, "roles": ["meters"],
      "acl": [{"permission": "deny", "action": "all", "topic": "a/#"}]})")),
            "username     m-1\n"
            "hasPassword  no\n"
            "\nroles:\n  meters\n"
            "\nacl:\n"
            "PERMISSION  ACTION  TOPIC\n"
            "deny        all     a/#\n");
}

TEST(ctl_render, a_retained_payload_is_previewed_on_one_line) {
  ctl_request r;
  r.list_key = "retained";
  const auto answer = boost::json::parse(R"({"total": 2, "retained": [
      {"topic": "a", "qos": 0, "payload": "line one\nline two", "payloadEncoding": "utf8"},
      {"topic": "b", "qos": 1, "payload": "AAEC", "payloadEncoding": "base64", "expiresAt": 0}]})");
  EXPECT_EQ(render(r, answer),
            "TOPIC  QOS  PAYLOAD            EXPIRES\n"
            "a      0    line one line two  never\n"
            "b      1    base64:AAEC        1970-01-01T00:00:00.000Z\n");
}

}  // namespace
}  // namespace wharf::app::ctl
