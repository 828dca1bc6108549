// The HTTP hook's pure parts: what each response means, the request body it sends, and a bad
// URL reported at its position. Its requests, cache, bounds and failures are exercised against
// a real service in tests/integration/test_auth_http.py.
#include "auth/http_hook.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "auth/access_policy.h"
#include "auth/jwt.h"

namespace wharf::auth {
namespace {

using outcome = hook_answer::outcome;

hook_answer answer_200(std::string_view body) { return answer_of(200, body, true, ""); }

TEST(hook_answer, results_the_service_may_give) {
  EXPECT_EQ(answer_200(R"({"result":"allow"})").result, outcome::allow);
  EXPECT_EQ(answer_200(R"({"result":"deny"})").result, outcome::deny);
  EXPECT_EQ(answer_200(R"({"result":"ignore","extra":"fields are ignored"})").result, outcome::ignore);
  EXPECT_EQ(answer_of(204, "", true, "").result, outcome::allow);
  EXPECT_EQ(answer_of(401, "", true, "").result, outcome::deny);
  EXPECT_EQ(answer_of(403, "<html>", true, "").result, outcome::deny);
}

TEST(hook_answer, a_superuser_is_allowed_every_topic_and_sys) {
  const auto a = answer_200(R"({"result":"allow","superuser":true,"acl":[{"permission":"deny","topic":"#"}]})");
  ASSERT_EQ(a.result, outcome::allow);
  ASSERT_EQ(a.rules.size(), 2u);
  EXPECT_EQ(a.rules[0].topic, "#");
  EXPECT_EQ(a.rules[1].topic, "$SYS/#");
  for (const auto& rule : a.rules) EXPECT_EQ(rule.permission, config::acl_permission::allow);
  const auto plain = answer_200(R"({"result":"allow","superuser":false})");
  EXPECT_TRUE(plain.rules.empty());
}

TEST(hook_answer, acl_rules_become_the_clients_own) {
  const auto a = answer_200(
      R"({"result":"allow","acl":[{"permission":"allow","action":"publish","topic":"meters/%c/#"},)"
      R"({"permission":"deny","topic":"#"}]})");
  ASSERT_EQ(a.result, outcome::allow);
  ASSERT_EQ(a.rules.size(), 2u);
  EXPECT_EQ(a.rules[0].action, config::acl_action::publish);
  EXPECT_EQ(a.rules[0].topic, "meters/%c/#");
  EXPECT_EQ(a.rules[0].source_location, "http hook");
  EXPECT_EQ(a.rules[1].permission, config::acl_permission::deny);
  EXPECT_EQ(a.rules[1].action, config::acl_action::all);
}

TEST(hook_answer, what_makes_no_sense_is_a_failure_with_a_reason) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"not json", "the answer is not JSON"},
      {"[1,2]", "the answer is not a JSON object"},
      {R"({"allow":true})", "the answer has no result string"},
      {R"({"result":"maybe"})", "result 'maybe' is none of allow, deny, ignore"},
      {R"({"result":"allow","superuser":"yes"})", "superuser is not a boolean"},
      {R"({"result":"allow","acl":{}})", "acl: expected an array of rules"},
      {R"({"result":"allow","acl":[{"permission":"allow","topic":"a/#/b"}]})", "acl: rule 0: topic must be a topic filter"},
  };
  for (const auto& [body, why] : cases) {
    const auto a = answer_200(body);
    EXPECT_EQ(a.result, outcome::failed) << body;
    EXPECT_TRUE(a.why.starts_with(why)) << body << " -> " << a.why;
  }
  EXPECT_EQ(answer_of(500, "{}", true, "").why, "HTTP 500");
  EXPECT_EQ(answer_of(302, "", true, "").result, outcome::failed);
  EXPECT_EQ(answer_of(200, R"({"result":"allow"})", false, "").result, outcome::failed);  // cut short
  const auto none = answer_of(std::nullopt, "", false, "timed out after 2000 ms");
  EXPECT_EQ(none.result, outcome::failed);
  EXPECT_EQ(none.why, "timed out after 2000 ms");
}

TEST(hook_request, the_body_names_everything_the_service_may_decide_by) {
  hook_request r{.action = hook_request::kind::connect,
                 .topic = {},
                 .client_id = "meter-7",
                 .username = "alice",
                 .password = "s3cret",
                 .password_is_text = true,
                 .peer_address = "203.0.113.9",
                 .peer_port = 51234,
                 .protocol_version = 5,
                 .cert_common_name = "meter-7.example",
                 .cert_subject_alt_names = {"meter-7.example", "urn:meter:7"},
                 .listener = 2};
  auto body = boost::json::parse(request_body(r)).as_object();
  EXPECT_EQ(body["action"], "connect");
  EXPECT_FALSE(body.contains("topic"));
  EXPECT_EQ(body["clientid"], "meter-7");
  EXPECT_EQ(body["username"], "alice");
  EXPECT_EQ(body["password"], "s3cret");
  EXPECT_FALSE(body.contains("password_base64"));
  EXPECT_EQ(body["peer"], "203.0.113.9");
  EXPECT_EQ(body["peer_port"], 51234);
  EXPECT_EQ(body["protocol_version"], 5);
  EXPECT_EQ(body["cert_common_name"], "meter-7.example");
  EXPECT_EQ(body["cert_subject_alt_names"].as_array().size(), 2u);
  EXPECT_EQ(body["listener"], 2);
}

TEST(hook_request, a_publish_or_subscription_names_its_topic) {
  hook_request r;
  r.action = hook_request::kind::subscribe;
  r.topic = "fleet/+/status";
  r.client_id = "c";
  auto body = boost::json::parse(request_body(r)).as_object();
  EXPECT_EQ(body["action"], "subscribe");
  EXPECT_EQ(body["topic"], "fleet/+/status");
  r.action = hook_request::kind::publish;
  EXPECT_EQ(boost::json::parse(request_body(r)).as_object()["action"], "publish");
}

TEST(hook_request, absent_credentials_are_null_and_a_binary_password_is_base64) {
  hook_request anonymous;
  anonymous.client_id = "c";
  auto body = boost::json::parse(request_body(anonymous)).as_object();
  EXPECT_TRUE(body["username"].is_null());
  EXPECT_TRUE(body["password"].is_null());
  EXPECT_TRUE(body["cert_common_name"].is_null());
  hook_request binary;
  binary.client_id = "c";
  binary.password = std::string("\xff\x00\x01", 3);
  binary.password_is_text = false;
  body = boost::json::parse(request_body(binary)).as_object();
  EXPECT_TRUE(body["password"].is_null());
  EXPECT_EQ(body["password_base64"], "/wAB");
}

TEST(hook_config, a_url_that_is_not_http_is_reported_at_its_position) {
  config::auth_config cfg;
  cfg.http.emplace();
  cfg.http->url = "ftp://auth.example/";
  cfg.http->url_location = "wharf.yaml:7:10";
  try {
    access_policy policy(cfg);
    FAIL() << "accepted";
  } catch (const config::config_errors& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    EXPECT_EQ(e.errors()[0].to_string(),
              "wharf.yaml:7:10: auth.http.url: 'ftp://auth.example/' is not an http:// or https:// URL with a host");
  }
  cfg.http->url = "https://auth.example:8443/mqtt";
  EXPECT_NO_THROW(access_policy{cfg});
}

TEST(jwt_shape, only_a_credential_shaped_as_a_token_is_judged_as_one) {
  EXPECT_TRUE(jwt_verifier::looks_like_token("aGVhZA.Y2xhaW1z.c2ln"));
  EXPECT_TRUE(jwt_verifier::looks_like_token("aGVhZA.Y2xhaW1z."));  // alg none: judged, and refused
  for (const char* other : {"", "hunter2", "a.b", ".b.c", "a..c", "a.b.c.d", "..."}) {
    EXPECT_FALSE(jwt_verifier::looks_like_token(other)) << other;
  }
}

}  // namespace
}  // namespace wharf::auth
