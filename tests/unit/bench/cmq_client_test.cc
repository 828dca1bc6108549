// The CMQ client's pure parts: URL encoding, the string to sign, signatures and form bodies
// (expected values computed independently with Python's hmac, hashlib, base64 and
// urllib.parse.quote(value, safe='')), endpoint URLs, receive answers, nonces.
#include "bench/cmq_client.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace wharf::bench {
namespace {

using namespace std::string_literals;

const cmq_endpoint local_http{false, "127.0.0.1", 8080, "127.0.0.1:8080", "/v2/index.php"};
const cmq_endpoint local_https{true, "localhost", 8443, "localhost:8443", "/v2/index.php"};
const cmq_credentials dev{"wharf-dev", "wharf-dev-secret"};

TEST(url_encode, leaves_unreserved_characters_and_escapes_every_other_byte) {
  EXPECT_EQ(url_encode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(url_encode(" !\"#$%&'()*+,/:;=?@[\\]^`{|}\0\x7f"s),  // "s": the NUL byte included
            "%20%21%22%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5C%5D%5E%60%7B%7C%7D%00%7F");
  EXPECT_EQ(url_encode("h\xC3\xA9llo"), "h%C3%A9llo");  // UTF-8 bytes one by one, upper-case hex
  EXPECT_EQ(url_encode(""), "");
}

// docs/API.md, "Worked example".
TEST(cmq_signature, matches_the_worked_example_of_the_api_reference) {
  const cmq_params params{{"Action", "SendMessage"},   {"SecretId", "wharf-dev"},
                          {"Timestamp", "1700000000"}, {"Nonce", "2837461923"},
                          {"SignatureMethod", "HmacSHA256"}, {"queueName", "orders"},
                          {"msgBody", "hello world & more"}};
  const auto src = cmq_string_to_sign("POST", local_http.host_header, local_http.path, params);
  EXPECT_EQ(src,
            "POST127.0.0.1:8080/v2/index.php?Action=SendMessage&Nonce=2837461923&SecretId=wharf-dev"
            "&SignatureMethod=HmacSHA256&Timestamp=1700000000&msgBody=hello world & more&queueName=orders");
  EXPECT_EQ(cmq_signature_sha256("wharf-dev-secret", src), "a9ketwRuv27BeEkB5hhZgSWQCgVJWHA0FLR5Tp3mAi8=");
}

// Names sort as sent and only then have '_' written as '.': "a.c" < "aZ" < "a_b".
const cmq_params batch_send{{"Action", "BatchSendMessage"}, {"queueName", "bench-q1"},
                            {"msgBody.1", "a b&c=d+e"},      {"msgBody.2", "h\xC3\xA9llo/~%"},
                            {"a_b", "1"},                    {"a.c", "2"},
                            {"aZ", "3"}};

TEST(cmq_signature, sorts_names_as_sent_writes_underscores_as_dots_and_leaves_values_raw) {
  cmq_params params = batch_send;
  params.insert(params.end(), {{"SecretId", "wharf-dev"},
                               {"Timestamp", "1700000123"},
                               {"Nonce", "4611686018427387904"},
                               {"SignatureMethod", "HmacSHA256"},
                               {"Signature", "left out of the string to sign"}});
  const auto src = cmq_string_to_sign("POST", local_https.host_header, local_https.path, params);
  EXPECT_EQ(src,
            "POSTlocalhost:8443/v2/index.php?Action=BatchSendMessage&Nonce=4611686018427387904"
            "&SecretId=wharf-dev&SignatureMethod=HmacSHA256&Timestamp=1700000123&a.c=2&aZ=3&a.b=1"
            "&msgBody.1=a b&c=d+e&msgBody.2=h\xC3\xA9llo/~%&queueName=bench-q1");
  EXPECT_EQ(cmq_signature_sha256("wharf-dev-secret", src), "ZyNz/AwRDF5xwVItDM2znChnFkZPtjzatu0bnwUsBpo=");
}

TEST(signed_form_body, adds_the_common_parameters_and_the_signature_and_encodes_every_value) {
  EXPECT_EQ(signed_form_body(batch_send, dev, local_https, 1700000123, 4611686018427387904ULL),
            "Action=BatchSendMessage&queueName=bench-q1&msgBody.1=a%20b%26c%3Dd%2Be&msgBody.2=h%C3%A9llo%2F~%25"
            "&a_b=1&a.c=2&aZ=3&SecretId=wharf-dev&Timestamp=1700000123&Nonce=4611686018427387904"
            "&SignatureMethod=HmacSHA256&Signature=ZyNz%2FAwRDF5xwVItDM2znChnFkZPtjzatu0bnwUsBpo%3D");
}

TEST(signed_form_body, signs_the_host_header_and_path_of_the_endpoint) {
  cmq_endpoint other_path = local_https;
  other_path.path = "/queue";
  EXPECT_NE(signed_form_body(batch_send, dev, local_https, 1700000123, 1),
            signed_form_body(batch_send, dev, other_path, 1700000123, 1));
}

TEST(parse_cmq_endpoint, takes_scheme_host_port_and_path_apart) {
  const auto plain = parse_cmq_endpoint("http://127.0.0.1:8080");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, 8080);
  EXPECT_EQ(plain->host_header, "127.0.0.1:8080");
  EXPECT_EQ(plain->path, "/v2/index.php");

  const auto secure = parse_cmq_endpoint("https://cmq.example.com/custom/path");
  ASSERT_TRUE(secure);
  EXPECT_TRUE(secure->tls);
  EXPECT_EQ(secure->host, "cmq.example.com");
  EXPECT_EQ(secure->port, 443);
  EXPECT_EQ(secure->host_header, "cmq.example.com");  // signed as sent: no port added
  EXPECT_EQ(secure->path, "/custom/path");

  const auto v6 = parse_cmq_endpoint("http://[::1]:9000/");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9000);
  EXPECT_EQ(v6->host_header, "[::1]:9000");
  EXPECT_EQ(v6->path, "/");
  EXPECT_EQ(parse_cmq_endpoint("http://localhost")->port, 80);
}

TEST(parse_cmq_endpoint, refuses_what_it_cannot_send_to) {
  for (const char* url : {"", "127.0.0.1:8080", "ftp://h", "HTTP://h", "http://", "http:///path", "http://h:",
                          "http://h:0", "http://h:65536", "http://h:80x", "http://[::1", "http://[]:80",
                          "http://[::1]x", "http://user@h", "http://h/?a=b", "http://h/#top"})
    EXPECT_FALSE(parse_cmq_endpoint(url)) << url;
}

TEST(received_messages, reads_batch_and_single_answers) {
  const auto batch = boost::json::parse(
      R"({"code":0,"msgInfoList":[{"msgBody":"a","receiptHandle":"h1","msgId":"1"},
          {"msgBody":"b","receiptHandle":"h2"},{"msgBody":"no handle"},{"msgBody":1,"receiptHandle":"h3"}, 7]})");
  const auto messages = received_messages(batch.as_object());
  ASSERT_EQ(messages.size(), 2U);
  EXPECT_EQ(messages[0].body, "a");
  EXPECT_EQ(messages[0].receipt_handle, "h1");
  EXPECT_EQ(messages[1].body, "b");
  EXPECT_EQ(messages[1].receipt_handle, "h2");

  const auto single = boost::json::parse(R"({"code":0,"msgBody":"x","receiptHandle":"h","msgId":"9"})");
  const auto one = received_messages(single.as_object());
  ASSERT_EQ(one.size(), 1U);
  EXPECT_EQ(one[0].body, "x");
  EXPECT_EQ(one[0].receipt_handle, "h");

  EXPECT_TRUE(received_messages(boost::json::parse(R"({"code":7000})").as_object()).empty());
}

TEST(nonce_source, counts_up_from_its_start) {
  nonce_source nonces(41);
  EXPECT_EQ(nonces.next(), 41U);
  EXPECT_EQ(nonces.next(), 42U);
  for (int i = 0; i < 100; ++i) {
    const auto start = nonce_source::random_start();
    EXPECT_GE(start, 1U);
    EXPECT_LE(start, 1ULL << 62);
  }
}

}  // namespace
}  // namespace wharf::bench
