#include "tls/tls_context.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wharf::tls {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
using asio::ip::tcp;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

// A fresh directory with a development PKI, removed at the end of the test.
class tls_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = "/tmp/wharf-tls-test-XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    dev_ = generate_self_signed((dir_ / "pki").string());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A client certificate for "alice" signed by the dev CA.
  cert_key_files issue_alice() {
    cert_key_files out{path("alice.pem"), path("alice.key")};
    certificate_request req;
    req.common_name = "alice";
    req.subject_alt_names = {"DNS:alice.example", "email:alice@example.com",
                             "URI:spiffe://wharf/alice", "IP:10.0.0.1"};
    req.usage = cert_usage::client;
    issue_certificate(dev_.ca, req, out);
    return out;
  }

  config::tls_config server_config(bool with_ca, bool require_client_cert) {
    config::tls_config cfg;
    cfg.cert_file = dev_.server.cert_file;
    cfg.key_file = dev_.server.key_file;
    if (with_ca) cfg.ca_file = dev_.ca.cert_file;
    cfg.require_client_cert = require_client_cert;
    return cfg;
  }

  fs::path dir_;
  dev_certificates dev_;
};

struct handshake_result {
  boost::system::error_code server_error;
  boost::system::error_code client_error;  // handshake, or reading the server's first byte
  peer_identity client_identity;           // as the server sees it
  peer_identity server_identity;           // as the client sees it
  bool finished = false;
};

// A TLS handshake over loopback between the two contexts. On success the server sends one
// byte, so a client refused after its side of a TLS 1.3 handshake sees the error too.
handshake_result handshake(asio::ssl::context& server_ctx, asio::ssl::context& client_ctx) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  asio::ssl::stream<tcp::socket> server(io, server_ctx);
  asio::ssl::stream<tcp::socket> client(io, client_ctx);
  client.set_verify_callback(asio::ssl::host_name_verification("localhost"));
  handshake_result r;
  int done = 0;
  char byte = 0;

  acceptor.async_accept(server.next_layer(), [&](boost::system::error_code ec) {
    if (ec) {
      r.server_error = ec;
      ++done;
      return;
    }
    server.async_handshake(asio::ssl::stream_base::server, [&](boost::system::error_code ec) {
      r.server_error = ec;
      if (ec) {
        ++done;
        return;
      }
      r.client_identity = identity_of(server.native_handle());
      asio::async_write(server, asio::buffer("x", 1),
                        [&](boost::system::error_code ec, std::size_t) {
                          r.server_error = ec;
                          ++done;
                        });
    });
  });
  client.next_layer().async_connect(acceptor.local_endpoint(), [&](boost::system::error_code ec) {
    if (ec) {
      r.client_error = ec;
      ++done;
      return;
    }
    client.async_handshake(asio::ssl::stream_base::client, [&](boost::system::error_code ec) {
      if (ec) {
        r.client_error = ec;
        ++done;
        return;
      }
      r.server_identity = identity_of(client.native_handle());
      asio::async_read(client, asio::buffer(&byte, 1),
                       [&](boost::system::error_code ec, std::size_t) {
                         r.client_error = ec;
                         ++done;
                       });
    });
  });
  io.run_for(std::chrono::seconds(10));
  r.finished = done == 2;
  return r;
}

TEST_F(tls_test, generate_self_signed_writes_a_usable_pki) {
  EXPECT_EQ(dev_.ca.cert_file, path("pki/dev-ca.pem"));
  EXPECT_EQ(dev_.ca.key_file, path("pki/dev-ca.key"));
  EXPECT_EQ(dev_.server.cert_file, path("pki/dev-server.pem"));
  EXPECT_EQ(dev_.server.key_file, path("pki/dev-server.key"));
  EXPECT_EQ(mode_of(dev_.ca.key_file), 0600u);
  EXPECT_EQ(mode_of(dev_.server.key_file), 0600u);
  EXPECT_EQ(mode_of(dev_.server.cert_file), 0644u);
  EXPECT_THAT(read_all(dev_.server.cert_file), HasSubstr("-----BEGIN CERTIFICATE-----"));
  EXPECT_THAT(read_all(dev_.server.key_file), HasSubstr("-----BEGIN PRIVATE KEY-----"));
  EXPECT_NE(make_server_context(server_config(true, true)), nullptr);
  // No temporary files left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(path("pki")), fs::directory_iterator()), 4);
}

TEST_F(tls_test, generate_self_signed_keeps_existing_files) {
  const std::string ca = read_all(dev_.ca.cert_file);
  const std::string server = read_all(dev_.server.cert_file);
  (void)generate_self_signed(path("pki"));
  EXPECT_EQ(read_all(dev_.ca.cert_file), ca);
  EXPECT_EQ(read_all(dev_.server.cert_file), server);

  // A missing server key: new server certificate, same CA.
  fs::remove(dev_.server.key_file);
  (void)generate_self_signed(path("pki"));
  EXPECT_EQ(read_all(dev_.ca.cert_file), ca);
  EXPECT_NE(read_all(dev_.server.cert_file), server);

  // A missing CA key: new CA and a server certificate it signed.
  const std::string server2 = read_all(dev_.server.cert_file);
  fs::remove(dev_.ca.key_file);
  (void)generate_self_signed(path("pki"));
  EXPECT_NE(read_all(dev_.ca.cert_file), ca);
  EXPECT_NE(read_all(dev_.server.cert_file), server2);
  auto server_ctx = make_server_context(server_config(false, false));
  auto client_ctx = make_client_context(dev_.ca.cert_file);
  const auto r = handshake(*server_ctx, *client_ctx);
  EXPECT_TRUE(r.finished);
  EXPECT_FALSE(r.server_error) << r.server_error.message();
  EXPECT_FALSE(r.client_error) << r.client_error.message();
}

TEST_F(tls_test, server_context_settings) {
  auto ctx = make_server_context(server_config(true, true));
  SSL_CTX* c = ctx->native_handle();
  EXPECT_NE(SSL_CTX_get_mode(c) & SSL_MODE_RELEASE_BUFFERS, 0);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(c), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(c), TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_verify_mode(c) & (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT),
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
  EXPECT_EQ(SSL_CTX_get_session_cache_mode(c), SSL_SESS_CACHE_SERVER);
  EXPECT_EQ(
      SSL_CTX_get_verify_mode(make_server_context(server_config(false, false))->native_handle()),
      SSL_VERIFY_NONE);
}

TEST_F(tls_test, handshake_without_client_certificate) {
  auto server_ctx = make_server_context(server_config(false, false));
  auto client_ctx = make_client_context(dev_.ca.cert_file);
  const auto r = handshake(*server_ctx, *client_ctx);
  ASSERT_TRUE(r.finished);
  EXPECT_FALSE(r.server_error) << r.server_error.message();
  EXPECT_FALSE(r.client_error) << r.client_error.message();
  EXPECT_EQ(r.client_identity.common_name, std::nullopt);
  EXPECT_TRUE(r.client_identity.subject_alt_names.empty());
  // The client sees the dev server certificate.
  EXPECT_EQ(r.server_identity.common_name, "localhost");
  EXPECT_THAT(r.server_identity.subject_alt_names, ElementsAre("localhost"));
}

TEST_F(tls_test, optional_client_certificate_may_be_absent) {
  auto server_ctx = make_server_context(server_config(true, false));
  auto client_ctx = make_client_context(dev_.ca.cert_file);
  const auto r = handshake(*server_ctx, *client_ctx);
  ASSERT_TRUE(r.finished);
  EXPECT_FALSE(r.server_error) << r.server_error.message();
  EXPECT_FALSE(r.client_error) << r.client_error.message();
  EXPECT_EQ(r.client_identity.common_name, std::nullopt);
}

TEST_F(tls_test, client_certificate_identity) {
  const cert_key_files alice = issue_alice();
  EXPECT_EQ(mode_of(alice.key_file), 0600u);
  auto server_ctx = make_server_context(server_config(true, true));
  auto client_ctx = make_client_context(dev_.ca.cert_file, alice);
  const auto r = handshake(*server_ctx, *client_ctx);
  ASSERT_TRUE(r.finished);
  EXPECT_FALSE(r.server_error) << r.server_error.message();
  EXPECT_FALSE(r.client_error) << r.client_error.message();
  EXPECT_EQ(r.client_identity.common_name, "alice");
  // IP entries are not identities; DNS, email and URI are, in certificate order.
  EXPECT_THAT(r.client_identity.subject_alt_names,
              ElementsAre("alice.example", "alice@example.com", "spiffe://wharf/alice"));
}

TEST_F(tls_test, required_client_certificate_refuses_a_client_without_one) {
  auto server_ctx = make_server_context(server_config(true, true));
  auto client_ctx = make_client_context(dev_.ca.cert_file);
  const auto r = handshake(*server_ctx, *client_ctx);
  ASSERT_TRUE(r.finished);
  EXPECT_THAT(r.server_error.message(), HasSubstr("peer did not return a certificate"));
  EXPECT_TRUE(r.client_error);
  EXPECT_EQ(r.client_identity.common_name, std::nullopt);
}

TEST_F(tls_test, client_certificate_from_another_ca_is_refused) {
  const dev_certificates other = generate_self_signed(path("other-pki"));
  certificate_request req;
  req.common_name = "mallory";
  issue_certificate(other.ca, req, {path("mallory.pem"), path("mallory.key")});
  auto server_ctx = make_server_context(server_config(true, false));
  auto client_ctx = make_client_context(dev_.ca.cert_file,
                                        cert_key_files{path("mallory.pem"), path("mallory.key")});
  const auto r = handshake(*server_ctx, *client_ctx);
  ASSERT_TRUE(r.finished);
  EXPECT_THAT(r.server_error.message(), HasSubstr("certificate verify failed"));
  EXPECT_TRUE(r.client_error);
}

TEST_F(tls_test, client_refuses_a_server_from_an_unknown_ca) {
  const dev_certificates other = generate_self_signed(path("other-pki"));
  auto server_ctx = make_server_context(server_config(false, false));
  auto client_ctx = make_client_context(other.ca.cert_file);
  const auto r = handshake(*server_ctx, *client_ctx);
  ASSERT_TRUE(r.finished);
  EXPECT_THAT(r.client_error.message(), HasSubstr("certificate verify failed"));
  EXPECT_TRUE(r.server_error);
}

TEST_F(tls_test, tls_1_1_is_refused) {
  auto server_ctx = make_server_context(server_config(false, false));
  asio::ssl::context old_client(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(old_client.native_handle(), 0);
  SSL_CTX_set_max_proto_version(old_client.native_handle(), TLS1_1_VERSION);
  SSL_CTX_set_security_level(old_client.native_handle(), 0);
  old_client.set_verify_mode(asio::ssl::verify_none);
  const auto r = handshake(*server_ctx, old_client);
  ASSERT_TRUE(r.finished);
  EXPECT_THAT(r.server_error.message(), HasSubstr("unsupported protocol"));
  EXPECT_TRUE(r.client_error);
}

TEST_F(tls_test, mismatched_key_names_both_files) {
  config::tls_config cfg = server_config(false, false);
  cfg.key_file = dev_.ca.key_file;
  try {
    (void)make_server_context(cfg);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("private key '" + dev_.ca.key_file + "' does not match certificate '" +
                          dev_.server.cert_file + "'"));
  }
}

TEST_F(tls_test, missing_and_malformed_files_are_named) {
  config::tls_config cfg = server_config(false, false);
  cfg.cert_file = path("nope.pem");
  EXPECT_THROW(
      {
        try {
          (void)make_server_context(cfg);
        } catch (const std::runtime_error& e) {
          EXPECT_EQ(std::string(e.what()), "cannot read certificate file '" + path("nope.pem") +
                                               "': No such file or directory");
          throw;
        }
      },
      std::runtime_error);

  std::ofstream(path("garbage.pem")) << "not a certificate\n";
  cfg.cert_file = path("garbage.pem");
  try {
    (void)make_server_context(cfg);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot load certificate chain '" + path("garbage.pem") +
                                    "': PEM routines: no start line"));
  }

  cfg = server_config(false, false);
  cfg.key_file = path("garbage.pem");
  try {
    (void)make_server_context(cfg);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot load private key '" + path("garbage.pem") + "'"));
  }

  cfg = server_config(true, true);
  cfg.ca_file = path("no-ca.pem");
  EXPECT_THROW((void)make_server_context(cfg), std::runtime_error);
}

TEST_F(tls_test, issue_certificate_validates_alt_names) {
  certificate_request req;
  req.common_name = "x";
  req.subject_alt_names = {"DNS:a,DNS:b"};
  EXPECT_THROW(issue_certificate(dev_.ca, req, {path("x.pem"), path("x.key")}),
               std::invalid_argument);
}

}  // namespace
}  // namespace wharf::tls
