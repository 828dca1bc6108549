// The CMQ string to sign, signatures (fixed vectors computed with Python's hmac, and
// signatures computed here the way the SDKs do), and the authenticator's checks.
#include "gateway/http/cmq_signature.h"

#include <map>
#include <string>

#include <gtest/gtest.h>

#include "tls/crypto.h"

namespace wharf::gateway::http {
namespace {

constexpr std::int64_t now_s = 1700000000;
constexpr const char* secret_id = "AKIDwharftest";
constexpr const char* secret_key = "wharf-test-secret";

cmq_params make_params(const std::map<std::string, std::string>& values) {
  std::vector<form_param> list;
  for (const auto& [name, value] : values) list.push_back({name, value});
  auto params = cmq_params::make(std::move(list), 256);
  EXPECT_TRUE(params.has_value());
  return std::move(*params);
}

// The Python SDK's parameters of the fixed vectors below.
std::map<std::string, std::string> sdk_example() {
  return {{"Action", "SendMessage"},     {"Nonce", "2889712707386595659"}, {"RequestClient", "SDK_Python_1.3"},
          {"SecretId", secret_id},       {"SignatureMethod", "HmacSHA256"}, {"Timestamp", "1534154812"},
          {"clientRequestId", "123"},    {"delaySeconds", "0"},             {"msgBody", "hello world & more"},
          {"queueName", "test1"},        {"msg_Tag", "x"},                  {"msgZ", "y"}};
}

// What a client does (the C++ SDK's algorithm, written independently of the code under
// test): names in std::map order, '_' written as '.', then base64(HMAC). `leave_out_at`:
// as the SDK that leaves out of a POST's string every value beginning with '@'.
std::string client_signature(const std::string& method, const std::string& host, const std::string& path,
                             const std::map<std::string, std::string>& params, const std::string& key,
                             bool leave_out_at = false) {
  std::string src = method + host + path + "?";
  bool first = true;
  for (const auto& [name, value] : params) {
    if (name == "Signature") continue;
    if (leave_out_at && value.starts_with('@')) continue;
    std::string written = name;
    for (char& c : written) c = c == '_' ? '.' : c;
    src += (first ? "" : "&") + written + "=" + value;
    first = false;
  }
  const auto method_it = params.find("SignatureMethod");
  if (method_it != params.end() && method_it->second == "HmacSHA256") {
    return tls::base64_encode(tls::hmac_sha256(key, src));
  }
  return tls::base64_encode(tls::hmac_sha1(key, src));
}

// A freshly signed request: common parameters at `now_s` with a new nonce, plus `extra`.
std::map<std::string, std::string> signed_params(const std::string& method, std::map<std::string, std::string> extra = {},
                                                 const std::string& key = secret_key, bool leave_out_at = false) {
  static std::uint64_t next_nonce = 1000;
  std::map<std::string, std::string> p = {{"Action", "SendMessage"},
                                          {"SecretId", secret_id},
                                          {"Timestamp", std::to_string(now_s)},
                                          {"Nonce", std::to_string(++next_nonce)},
                                          {"queueName", "q1"}};
  for (auto& [name, value] : extra) p[name] = value;
  p["Signature"] = client_signature(method, "localhost:8080", "/v2/index.php", p, key, leave_out_at);
  return p;
}

TEST(string_to_sign, sdk_order_and_underscore_replacement) {
  const request_line request{"POST", "cmq-queue-gz.api.qcloud.com:8080", "/v2/index.php"};
  auto values = sdk_example();
  values["Signature"] = "left out";
  // Names sort as sent ("msgZ" < "msg_Tag"), then '_' is written as '.'.
  EXPECT_EQ(string_to_sign(request, make_params(values)),
            "POSTcmq-queue-gz.api.qcloud.com:8080/v2/index.php?Action=SendMessage&Nonce=2889712707386595659&"
            "RequestClient=SDK_Python_1.3&SecretId=AKIDwharftest&SignatureMethod=HmacSHA256&Timestamp=1534154812&"
            "clientRequestId=123&delaySeconds=0&msgBody=hello world & more&msgZ=y&msg.Tag=x&queueName=test1");
}

TEST(string_to_sign, at_values_can_be_left_out) {
  const request_line request{"POST", "h", "/"};
  const auto params = make_params({{"a", "@file"}, {"b", "x@"}, {"c", "@"}});
  EXPECT_EQ(string_to_sign(request, params), "POSTh/?a=@file&b=x@&c=@");
  EXPECT_EQ(string_to_sign(request, params, at_values::leave_out), "POSTh/?b=x@");
}

TEST(compute_signature, fixed_vectors_from_python) {
  // python3 -c 'import hmac,hashlib,base64; p={...sdk_example()...};
  //   src="POST"+"cmq-queue-gz.api.qcloud.com:8080"+"/v2/index.php"+"?"+"&".join(
  //       k.replace("_",".")+"="+p[k] for k in sorted(p));
  //   print(base64.b64encode(hmac.new(b"wharf-test-secret",src.encode(),hashlib.sha256).digest()).decode())'
  auto values = sdk_example();
  const auto post = make_params(values);
  EXPECT_EQ(signature_method_of(post), signature_method::hmac_sha256);
  EXPECT_EQ(compute_signature(secret_key,
                              string_to_sign({"POST", "cmq-queue-gz.api.qcloud.com:8080", "/v2/index.php"}, post),
                              signature_method::hmac_sha256),
            "vodAdsDJ7qHL3IxQ58Vd76wfAc28L+cqwSNv+S+zF2U=");
  // The same with SignatureMethod=HmacSHA1, as a GET to Host "localhost".
  values["SignatureMethod"] = "HmacSHA1";
  const auto get = make_params(values);
  EXPECT_EQ(signature_method_of(get), signature_method::hmac_sha1);
  EXPECT_EQ(compute_signature(secret_key, string_to_sign({"GET", "localhost", "/v2/index.php"}, get),
                              signature_method::hmac_sha1),
            "l6N6BWiBYXnwwfdypmzCfKOOkzg=");
}

TEST(signature_method_of, sha256_only_when_named_exactly) {
  EXPECT_EQ(signature_method_of(make_params({})), signature_method::hmac_sha1);
  EXPECT_EQ(signature_method_of(make_params({{"SignatureMethod", "HmacSHA1"}})), signature_method::hmac_sha1);
  EXPECT_EQ(signature_method_of(make_params({{"SignatureMethod", "hmacsha256"}})), signature_method::hmac_sha1);
  EXPECT_EQ(signature_method_of(make_params({{"SignatureMethod", "HmacSHA256"}})), signature_method::hmac_sha256);
}

class authenticator_test : public ::testing::Test {
 protected:
  authenticator make(std::size_t nonce_cache_entries = 1000) {
    authenticator_options options;
    options.window_s = 300;
    options.nonce_cache_entries = nonce_cache_entries;
    options.clock = [this] { return now_; };
    return authenticator({{secret_id, secret_key}, {"AKIDother", "other-secret"}}, options);
  }

  // The accepted request's SecretId.
  static cmq_result<std::string> check(authenticator& auth, const std::string& method,
                                       const std::map<std::string, std::string>& p) {
    auto r = auth.authenticate({method, "localhost:8080", "/v2/index.php"}, make_params(p));
    if (!r) return r.error();
    return (*r)->secret_id;
  }

  static std::string auth_failure(const cmq_result<std::string>& r) {
    if (r.has_value()) return "<accepted>";
    EXPECT_EQ(r.error().code, cmq_error_code::auth_failed);
    return r.error().message;
  }

  std::int64_t now_ = now_s;
};

TEST_F(authenticator_test, accepts_sha1_and_sha256_get_and_post) {
  auto auth = make();
  for (const char* method : {"GET", "POST"}) {
    for (const char* sig : {"HmacSHA1", "HmacSHA256"}) {
      auto r = check(auth, method, signed_params(method, {{"SignatureMethod", sig}}));
      ASSERT_TRUE(r.has_value()) << method << " " << sig << ": " << auth_failure(r);
      EXPECT_EQ(*r, secret_id);
    }
  }
  EXPECT_EQ(auth.stats().accepted, 4u);
}

TEST_F(authenticator_test, post_signature_without_at_values_is_accepted) {
  auto auth = make();
  // Signed as the SDK that leaves '@' values out of the string to sign; and in full.
  EXPECT_TRUE(check(auth, "POST", signed_params("POST", {{"msgBody", "@hello"}}, secret_key, true)).has_value());
  EXPECT_TRUE(check(auth, "POST", signed_params("POST", {{"msgBody", "@hello"}})).has_value());
  // A GET has no such form.
  EXPECT_FALSE(check(auth, "GET", signed_params("GET", {{"msgBody", "@hello"}}, secret_key, true)).has_value());
  EXPECT_TRUE(check(auth, "GET", signed_params("GET", {{"msgBody", "@hello"}})).has_value());
}

TEST_F(authenticator_test, unsigned_requests) {
  auto auth = make();
  auto p = signed_params("GET");
  p.erase("Signature");
  EXPECT_EQ(auth_failure(check(auth, "GET", p)), "request is not signed: parameter 'Signature' is missing");
  p = signed_params("GET");
  p.erase("SecretId");
  EXPECT_EQ(auth_failure(check(auth, "GET", p)), "request is not signed: parameter 'SecretId' is missing");
  EXPECT_EQ(auth.stats().unsigned_requests, 2u);
}

TEST_F(authenticator_test, unknown_secret_id) {
  auto auth = make();
  auto p = signed_params("GET", {{"SecretId", "AKIDnobody"}});
  EXPECT_EQ(auth_failure(check(auth, "GET", p)), "unknown SecretId 'AKIDnobody'");
  EXPECT_EQ(auth.stats().unknown_secret_id, 1u);
}

TEST_F(authenticator_test, bad_signatures) {
  auto auth = make();
  EXPECT_EQ(auth_failure(check(auth, "GET", signed_params("GET", {}, "wrong-secret"))),
            "signature does not match: checked HmacSHA1 of GET + Host 'localhost:8080' + path '/v2/index.php' + "
            "'?' + the 5 other parameters sorted by name, under the key of SecretId 'AKIDwharftest'");
  // Signed for another key of the list.
  EXPECT_FALSE(check(auth, "GET", signed_params("GET", {}, "other-secret")).has_value());
  // Signed as POST, sent as GET; a changed parameter; a SHA-256 signature without saying so.
  EXPECT_FALSE(check(auth, "GET", signed_params("POST")).has_value());
  auto p = signed_params("GET");
  p["queueName"] = "q2";
  EXPECT_FALSE(check(auth, "GET", p).has_value());
  p = signed_params("GET", {{"SignatureMethod", "HmacSHA256"}});
  p.erase("SignatureMethod");
  EXPECT_FALSE(check(auth, "GET", p).has_value());
  // Not base64, and base64 of the wrong length.
  p = signed_params("GET");
  p["Signature"] = "not base64!";
  EXPECT_FALSE(check(auth, "GET", p).has_value());
  p["Signature"] = "AAAA";
  EXPECT_FALSE(check(auth, "GET", p).has_value());
  EXPECT_EQ(auth.stats().bad_signature, 7u);
}

TEST_F(authenticator_test, timestamp_window) {
  auto auth = make();
  now_ = now_s + 300;  // exactly at the edge: accepted
  EXPECT_TRUE(check(auth, "GET", signed_params("GET")).has_value());
  now_ = now_s - 300;
  EXPECT_TRUE(check(auth, "GET", signed_params("GET")).has_value());
  now_ = now_s + 301;
  EXPECT_EQ(auth_failure(check(auth, "GET", signed_params("GET"))),
            "Timestamp 1700000000 is more than 300 s away from the server's time 1700000301");
  now_ = now_s - 301;
  EXPECT_FALSE(check(auth, "GET", signed_params("GET")).has_value());
  EXPECT_EQ(auth.stats().outside_window, 2u);
}

TEST_F(authenticator_test, malformed_timestamp_and_nonce) {
  auto auth = make();
  EXPECT_EQ(auth_failure(check(auth, "GET", signed_params("GET", {{"Timestamp", "17e8"}}))),
            "Timestamp '17e8' is not a unix time in seconds");
  for (const char* bad : {"0", "-5", "+5", "abc", "", "9223372036854775808", "1.5"}) {
    EXPECT_EQ(auth_failure(check(auth, "GET", signed_params("GET", {{"Nonce", bad}}))),
              "Nonce '" + std::string(bad) + "' is not a positive integer up to 9223372036854775807");
  }
  auto p = signed_params("GET");
  p.erase("Nonce");
  EXPECT_EQ(auth_failure(check(auth, "GET", p)), "signed request without parameter 'Nonce'");
  EXPECT_TRUE(check(auth, "GET", signed_params("GET", {{"Nonce", "9223372036854775807"}})).has_value());
  EXPECT_EQ(auth.stats().malformed, 9u);
}

TEST_F(authenticator_test, replayed_nonce_is_refused_within_the_window) {
  auto auth = make();
  const auto p = signed_params("GET", {{"Nonce", "42"}});
  EXPECT_TRUE(check(auth, "GET", p).has_value());
  EXPECT_EQ(auth_failure(check(auth, "GET", p)),
            "Nonce 42 was already used by SecretId 'AKIDwharftest' within the last 300 s");
  // Another request with the same nonce, too.
  EXPECT_FALSE(check(auth, "GET", signed_params("GET", {{"Nonce", "42"}, {"queueName", "other"}})).has_value());
  // Nonces are per SecretId.
  auto other = signed_params("GET", {{"Nonce", "42"}, {"SecretId", "AKIDother"}}, "other-secret");
  EXPECT_TRUE(check(auth, "GET", other).has_value());
  EXPECT_EQ(auth.stats().replayed, 2u);
}

TEST_F(authenticator_test, nonce_may_be_reused_after_the_window) {
  auto auth = make();
  EXPECT_TRUE(check(auth, "GET", signed_params("GET", {{"Nonce", "7"}})).has_value());
  now_ = now_s + 301;
  auto later = signed_params("GET", {{"Nonce", "7"}, {"Timestamp", std::to_string(now_)}});
  EXPECT_TRUE(check(auth, "GET", later).has_value());
  EXPECT_FALSE(check(auth, "GET", later).has_value());
}

TEST_F(authenticator_test, a_request_from_the_future_is_remembered_until_its_timestamp_leaves_the_window) {
  auto auth = make();
  const auto ahead = signed_params("GET", {{"Nonce", "9"}, {"Timestamp", std::to_string(now_s + 200)}});
  EXPECT_TRUE(check(auth, "GET", ahead).has_value());
  now_ = now_s + 450;  // now + window has passed, Timestamp + window has not
  EXPECT_FALSE(check(auth, "GET", ahead).has_value());
}

TEST_F(authenticator_test, full_nonce_cache_forgets_the_oldest_and_counts_it) {
  auto auth = make(2);
  const auto first = signed_params("GET", {{"Nonce", "1"}});
  EXPECT_TRUE(check(auth, "GET", first).has_value());
  EXPECT_TRUE(check(auth, "GET", signed_params("GET", {{"Nonce", "2"}})).has_value());
  EXPECT_TRUE(check(auth, "GET", signed_params("GET", {{"Nonce", "3"}})).has_value());
  EXPECT_EQ(auth.stats().nonces_evicted, 1u);
  EXPECT_FALSE(check(auth, "GET", signed_params("GET", {{"Nonce", "3"}})).has_value());
  EXPECT_TRUE(check(auth, "GET", first).has_value());  // forgotten early: the documented cost
}

TEST_F(authenticator_test, expired_nonces_are_dropped_without_counting_as_evicted) {
  auto auth = make(2);
  EXPECT_TRUE(check(auth, "GET", signed_params("GET", {{"Nonce", "1"}})).has_value());
  EXPECT_TRUE(check(auth, "GET", signed_params("GET", {{"Nonce", "2"}})).has_value());
  now_ = now_s + 301;
  for (const char* nonce : {"3", "4", "1"}) {
    EXPECT_TRUE(check(auth, "GET", signed_params("GET", {{"Nonce", nonce}, {"Timestamp", std::to_string(now_)}})).has_value());
  }
  EXPECT_EQ(auth.stats().nonces_evicted, 1u);  // only "3", to make room for "1"
}

TEST_F(authenticator_test, replaced_credentials_apply_to_the_next_request_and_keep_their_nonces) {
  auto auth = make();
  const auto used = signed_params("GET", {{"Nonce", "5"}});
  EXPECT_TRUE(check(auth, "GET", used).has_value());
  const auto before = auth.authenticate({"GET", "localhost:8080", "/v2/index.php"},
                                        make_params(signed_params("GET", {{"Nonce", "6"}})));
  ASSERT_TRUE(before.has_value());

  // AKIDother dropped, AKIDnew added, AKIDwharftest kept (listed second now, new key).
  auth.replace_credentials({{"AKIDnew", "new-secret"}, {secret_id, "rotated-secret"}});
  EXPECT_EQ(auth_failure(check(auth, "GET", signed_params("GET", {{"SecretId", "AKIDother"}}, "other-secret"))),
            "unknown SecretId 'AKIDother'");
  EXPECT_EQ(*check(auth, "GET", signed_params("GET", {{"SecretId", "AKIDnew"}}, "new-secret")), "AKIDnew");
  EXPECT_FALSE(check(auth, "GET", signed_params("GET")).has_value());  // the old key
  EXPECT_TRUE(check(auth, "GET", signed_params("GET", {}, "rotated-secret")).has_value());
  // Nonce 5 was used by this SecretId before the reload: still refused, under the new key too.
  EXPECT_EQ(auth_failure(check(auth, "GET", signed_params("GET", {{"Nonce", "5"}}, "rotated-secret"))),
            "Nonce 5 was already used by SecretId 'AKIDwharftest' within the last 300 s");
  // AKIDnew has used no nonce; a request admitted before the reload still has its credential.
  EXPECT_TRUE(check(auth, "GET", signed_params("GET", {{"SecretId", "AKIDnew"}, {"Nonce", "5"}}, "new-secret"))
                  .has_value());
  EXPECT_EQ((*before)->secret_key, secret_key);
  // A list the constructor would refuse leaves the current one in place.
  EXPECT_THROW(auth.replace_credentials({{"AKIDnew", "a"}, {"AKIDnew", "b"}}), std::invalid_argument);
  EXPECT_TRUE(check(auth, "GET", signed_params("GET", {{"SecretId", "AKIDnew"}}, "new-secret")).has_value());
}

TEST(authenticator, options_from_the_config) {
  config::queue_api_config cfg;
  cfg.signature_window_s = 60;
  cfg.nonce_cache_entries = 5000;
  const auto o = authenticator_options_from(cfg, [] { return std::int64_t{5}; });
  EXPECT_EQ(o.window_s, 60);
  EXPECT_EQ(o.nonce_cache_entries, 5000u);
  EXPECT_EQ(o.clock(), 5);
}

TEST(authenticator, refuses_duplicate_or_empty_secret_ids) {
  EXPECT_THROW(authenticator(std::vector<credential>{{"a", "x"}, {"a", "y"}}), std::invalid_argument);
  EXPECT_THROW(authenticator(std::vector<credential>{{"", "x"}}), std::invalid_argument);
}

}  // namespace
}  // namespace wharf::gateway::http
