// The outbound HTTP client's URL parsing (its requests are exercised through HTTP push,
// tests/unit/gateway/push, and the authentication hook's integration tests).
#include "net/http_client.h"

#include <gtest/gtest.h>

namespace wharf::net {
namespace {

TEST(parse_endpoint, http_with_port_path_and_query) {
  auto e = parse_endpoint("http://example.com:8080/cmq/push?key=v%20w#fragment");
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->tls);
  EXPECT_EQ(e->host, "example.com");
  EXPECT_EQ(e->port, 8080);
  EXPECT_EQ(e->host_header, "example.com:8080");
  EXPECT_EQ(e->target, "/cmq/push?key=v%20w");
}

TEST(parse_endpoint, default_ports_and_root_path) {
  auto plain = parse_endpoint("http://example.com");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->port, 80);
  EXPECT_EQ(plain->target, "/");
  EXPECT_EQ(plain->host_header, "example.com");
  auto secure = parse_endpoint("HTTPS://example.com?only=query");
  ASSERT_TRUE(secure);
  EXPECT_TRUE(secure->tls);
  EXPECT_EQ(secure->port, 443);
  EXPECT_EQ(secure->target, "/?only=query");
  auto empty_port = parse_endpoint("http://example.com:/x");
  ASSERT_TRUE(empty_port);
  EXPECT_EQ(empty_port->port, 80);
}

TEST(parse_endpoint, ip_addresses) {
  auto v4 = parse_endpoint("http://127.0.0.1:9/");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  auto v6 = parse_endpoint("https://[::1]:8443/p");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->host_header, "[::1]:8443");
  EXPECT_EQ(v6->port, 8443);
}

TEST(parse_endpoint, refuses_what_cannot_be_pushed_to) {
  for (const char* url : {"", "example.com/push", "/push", "ftp://example.com/", "mailto:a@example.com",
                          "http://user:secret@example.com/", "http:///path", "http://example.com:0/",
                          "http://example.com:70000/", "http://[v7.x]/", "not a url"}) {
    EXPECT_FALSE(parse_endpoint(url)) << url;
  }
}

}  // namespace
}  // namespace wharf::net
