// Form decoding, the parameter set (duplicates, bounds, arrays, Action) and where a
// request's parameters come from.
#include "gateway/http/cmq_request.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wharf::gateway::http {
namespace {

std::vector<form_param> pairs(std::initializer_list<std::pair<std::string, std::string>> list) {
  std::vector<form_param> out;
  for (const auto& [name, value] : list) out.push_back({name, value});
  return out;
}

// The error message of a result that must have failed with CMQ code 4000.
template <class T>
std::string invalid_message(const cmq_result<T>& r) {
  if (r.has_value()) return "<no error>";
  EXPECT_EQ(r.error().code, cmq_error_code::invalid_parameter);
  return r.error().message;
}

cmq_params params_of(std::string_view form, std::size_t max_params = 256) {
  auto parsed = parse_form(form, max_params);
  EXPECT_TRUE(parsed.has_value()) << invalid_message(parsed);
  auto params = cmq_params::make(std::move(*parsed), max_params);
  EXPECT_TRUE(params.has_value()) << invalid_message(params);
  return std::move(*params);
}

TEST(parse_form, pairs_in_order_with_plus_and_percent_decoding) {
  auto r = parse_form("b=2&a=hello+world&c=%41%62%2b%2B%00x&d=%e4%B8%ad", 10);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, pairs({{"b", "2"}, {"a", "hello world"}, {"c", std::string("Ab++\0x", 6)}, {"d", "\xe4\xb8\xad"}}));
}

TEST(parse_form, names_are_decoded_too) {
  EXPECT_EQ(*parse_form("msg%42ody=x&a+b=1", 10), pairs({{"msgBody", "x"}, {"a b", "1"}}));
}

TEST(parse_form, empty_pairs_are_skipped_and_missing_values_are_empty) {
  EXPECT_EQ(*parse_form("&&a=1&&b&c=&", 10), pairs({{"a", "1"}, {"b", ""}, {"c", ""}}));
  EXPECT_EQ(*parse_form("", 10), pairs({}));
  EXPECT_EQ(*parse_form("a=b=c", 10), pairs({{"a", "b=c"}}));
}

TEST(parse_form, malformed_escapes_are_errors) {
  EXPECT_EQ(invalid_message(parse_form("a=%", 10)),
            "malformed form data: '%' at byte 2 is not followed by two hex digits");
  EXPECT_EQ(invalid_message(parse_form("a=1&b=%4", 10)),
            "malformed form data: '%' at byte 6 is not followed by two hex digits");
  EXPECT_EQ(invalid_message(parse_form("a=%zz", 10)),
            "malformed form data: '%' at byte 2 is not followed by two hex digits");
  EXPECT_EQ(invalid_message(parse_form("x%g1=1", 10)),
            "malformed form data: '%' at byte 1 is not followed by two hex digits");
}

TEST(parse_form, empty_name_is_an_error) {
  EXPECT_EQ(invalid_message(parse_form("a=1&=2", 10)), "malformed form data: empty parameter name at byte 4");
}

TEST(parse_form, count_is_bounded) {
  EXPECT_TRUE(parse_form("a=1&b=2&c=3", 3).has_value());
  EXPECT_EQ(invalid_message(parse_form("a=1&b=2&c=3&d=4", 3)), "too many parameters, at most 3 are allowed");
}

TEST(cmq_params, lookup_by_exact_name) {
  const auto p = params_of("queueName=q1&Action=SendMessage&msgBody=");
  EXPECT_EQ(p.get("queueName"), "q1");
  EXPECT_EQ(p.get("msgBody"), "");
  EXPECT_FALSE(p.get("queuename").has_value());
  EXPECT_FALSE(p.get("missing").has_value());
  EXPECT_TRUE(p.contains("Action"));
  EXPECT_EQ(p.size(), 3u);
}

TEST(cmq_params, held_sorted_byte_wise) {
  const auto p = params_of("b=1&a_b=2&aB=3&%FF=4&A=5&a.b=6");
  std::vector<std::string> names;
  for (const auto& param : p.sorted()) names.push_back(param.name);
  // '.' (0x2E) < 'B' (0x42) < '_' (0x5F); 0xFF sorts last (unsigned bytes).
  EXPECT_EQ(names, (std::vector<std::string>{"A", "a.b", "aB", "a_b", "b", "\xff"}));
}

TEST(cmq_params, duplicate_names_are_an_error) {
  auto r = cmq_params::make(pairs({{"Action", "A"}, {"queueName", "q"}, {"Action", "A"}}), 10);
  EXPECT_EQ(invalid_message(r), "parameter 'Action' is given more than once");
  // Spelled differently on the wire, the same name once decoded.
  auto parsed = parse_form("a=1&%61=2", 10);
  EXPECT_EQ(invalid_message(cmq_params::make(std::move(*parsed), 10)), "parameter 'a' is given more than once");
}

TEST(cmq_params, count_is_bounded) {
  EXPECT_EQ(invalid_message(cmq_params::make(pairs({{"a", ""}, {"b", ""}, {"c", ""}}), 2)),
            "too many parameters, at most 2 are allowed");
}

TEST(cmq_params, action_is_matched_ignoring_case) {
  const auto p = params_of("Action=sendMESSAGE");
  EXPECT_EQ(p.action(), "sendMESSAGE");
  EXPECT_TRUE(p.action_is("SendMessage"));
  EXPECT_TRUE(p.action_is("sendmessage"));
  EXPECT_FALSE(p.action_is("SendMessages"));
  EXPECT_EQ(p.action_lower(), "sendmessage");
  const auto none = params_of("action=SendMessage");  // the parameter name itself is exact
  EXPECT_FALSE(none.action().has_value());
  EXPECT_FALSE(none.action_is("SendMessage"));
  EXPECT_FALSE(none.action_lower().has_value());
}

TEST(cmq_params_array, one_based_in_numeric_order) {
  std::string form = "msgBody=single&queueName=q";
  for (int i = 12; i >= 1; --i) form += "&msgBody." + std::to_string(i) + "=m" + std::to_string(i);
  const auto p = params_of(form);
  auto values = p.array("msgBody", 16);
  ASSERT_TRUE(values.has_value()) << invalid_message(values);
  ASSERT_EQ(values->size(), 12u);
  for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ((*values)[i], "m" + std::to_string(i + 1));
}

TEST(cmq_params_array, zero_based) {
  const auto p = params_of("receiptHandle.0=h0&receiptHandle.1=h1");
  const auto values = p.array("receiptHandle", 16);
  ASSERT_TRUE(values.has_value());
  EXPECT_EQ(*values, (std::vector<std::string_view>{"h0", "h1"}));
}

TEST(cmq_params_array, absent_is_empty) {
  const auto p = params_of("msgBody=x&msgTag=t");
  const auto values = p.array("msgTag", 5);
  ASSERT_TRUE(values.has_value());
  EXPECT_TRUE(values->empty());
}

TEST(cmq_params_array, indexes_must_start_at_0_or_1_and_be_consecutive) {
  EXPECT_EQ(invalid_message(params_of("msgBody.1=a&msgBody.2=b&msgBody.4=d").array("msgBody", 16)),
            "msgBody.n indexes must start at 0 or 1 and be consecutive: msgBody.3 is missing");
  EXPECT_EQ(invalid_message(params_of("msgTag.2=a&msgTag.3=b").array("msgTag", 5)),
            "msgTag.n indexes must start at 0 or 1 and be consecutive: msgTag.1 is missing");
  EXPECT_EQ(invalid_message(params_of("filterTag.0=a&filterTag.2=b").array("filterTag", 5)),
            "filterTag.n indexes must start at 0 or 1 and be consecutive: filterTag.1 is missing");
}

TEST(cmq_params_array, malformed_indexes_are_errors) {
  for (const char* name : {"bindingKey.01", "bindingKey.x", "bindingKey.", "bindingKey.1.2", "bindingKey.-1",
                           "bindingKey.1234567890"}) {
    EXPECT_EQ(invalid_message(params_of(std::string(name) + "=k").array("bindingKey", 5)),
              "invalid array parameter '" + std::string(name) +
                  "', expected bindingKey.n with n a decimal index without leading zeros");
  }
}

TEST(cmq_params_array, count_is_bounded) {
  std::string form;
  for (int i = 1; i <= 17; ++i) form += "msgBody." + std::to_string(i) + "=m&";
  EXPECT_EQ(invalid_message(params_of(form).array("msgBody", 16)),
            "too many msgBody.n values: 17, at most 16 are allowed");
}

TEST(split_target, path_and_query) {
  EXPECT_EQ(split_target("/v2/index.php?Action=X&a=%20").path, "/v2/index.php");
  EXPECT_EQ(split_target("/v2/index.php?Action=X&a=%20").query, "Action=X&a=%20");
  EXPECT_EQ(split_target("/a%2Fb").path, "/a%2Fb");
  EXPECT_EQ(split_target("/a%2Fb").query, "");
  EXPECT_EQ(split_target("/?").query, "");
}

TEST(params_of_request, get_reads_the_query_string_only) {
  auto r = params_of_request("GET", "/v2/index.php?Action=ListQueue&limit=5", std::nullopt, "ignored=1", 256);
  ASSERT_TRUE(r.has_value()) << invalid_message(r);
  EXPECT_EQ(r->get("Action"), "ListQueue");
  EXPECT_EQ(r->get("limit"), "5");
  EXPECT_FALSE(r->contains("ignored"));
}

TEST(params_of_request, post_body_without_content_type_is_a_form) {
  auto r = params_of_request("POST", "/v2/index.php", std::nullopt, "Action=SendMessage&msgBody=a+b", 256);
  ASSERT_TRUE(r.has_value()) << invalid_message(r);
  EXPECT_EQ(r->get("msgBody"), "a b");
}

TEST(params_of_request, post_form_content_type_with_parameters) {
  for (const char* type : {"application/x-www-form-urlencoded", "Application/X-WWW-Form-URLEncoded",
                           "application/x-www-form-urlencoded; charset=UTF-8", " application/x-www-form-urlencoded ;x=y"}) {
    auto r = params_of_request("POST", "/", std::string(type), "Action=A", 256);
    ASSERT_TRUE(r.has_value()) << type << ": " << invalid_message(r);
    EXPECT_EQ(r->get("Action"), "A");
  }
}

TEST(params_of_request, post_merges_query_and_body) {
  auto r = params_of_request("POST", "/v2/index.php?Action=SendMessage", std::nullopt, "queueName=q&msgBody=m", 256);
  ASSERT_TRUE(r.has_value()) << invalid_message(r);
  EXPECT_EQ(r->size(), 3u);
  EXPECT_EQ(r->get("Action"), "SendMessage");
  EXPECT_EQ(r->get("queueName"), "q");
}

TEST(params_of_request, a_name_in_query_and_body_is_a_duplicate) {
  EXPECT_EQ(invalid_message(params_of_request("POST", "/?queueName=a", std::nullopt, "queueName=b", 256)),
            "parameter 'queueName' is given more than once");
}

TEST(params_of_request, bound_counts_query_and_body_together) {
  EXPECT_TRUE(params_of_request("POST", "/?a=1&b=2", std::nullopt, "c=3&d=4", 4).has_value());
  EXPECT_EQ(invalid_message(params_of_request("POST", "/?a=1&b=2", std::nullopt, "c=3&d=4&e=5", 4)),
            "too many parameters, at most 4 are allowed");
}

TEST(params_of_request, other_methods_and_content_types_are_refused) {
  EXPECT_EQ(invalid_message(params_of_request("PUT", "/?Action=A", std::nullopt, "", 256)),
            "unsupported HTTP method 'PUT', expected GET or POST");
  EXPECT_EQ(invalid_message(params_of_request("POST", "/", std::string("application/json"), "{}", 256)),
            "unsupported Content-Type 'application/json', expected application/x-www-form-urlencoded (or none)");
}

TEST(params_of_request, malformed_query_or_body) {
  EXPECT_EQ(invalid_message(params_of_request("GET", "/?a=%x1", std::nullopt, "", 256)),
            "malformed form data: '%' at byte 2 is not followed by two hex digits");
  EXPECT_EQ(invalid_message(params_of_request("POST", "/", std::nullopt, "a=1&b=%", 256)),
            "malformed form data: '%' at byte 6 is not followed by two hex digits");
}

}  // namespace
}  // namespace wharf::gateway::http
