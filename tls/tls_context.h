// TLS contexts for listeners and clients, peer identities for mTLS, and development
// certificates. This module is the only place raw OpenSSL calls appear; other modules use
// boost::asio::ssl types and the functions below.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "config/config.h"

namespace wharf::tls {

// A server context for one listener: TLS 1.2 and 1.3 only, ECDHE + AEAD ciphers, the
// certificate chain and key from `cfg` (checked to match), small idle buffers
// (SSL_MODE_RELEASE_BUFFERS), a bounded server-side session cache. With cfg.ca_file, client
// certificates are requested and verified against it; with require_client_cert, a client
// without one is refused.
// Throws std::runtime_error naming the file and OpenSSL's reason.
[[nodiscard]] std::shared_ptr<boost::asio::ssl::context> make_server_context(
    const config::tls_config& cfg);

// A listener's TLS context, replaceable while it runs (a reload rotating the certificate).
// New connections take the one in force; a connection's SSL object holds its own reference
// to the SSL_CTX it started with (no callbacks or app data live in the context object).
// Thread-safe.
class context_slot {
 public:
  [[nodiscard]] std::shared_ptr<boost::asio::ssl::context> get() const {
    std::lock_guard lock(mu_);
    return context_;
  }
  void replace(std::shared_ptr<boost::asio::ssl::context> context) {
    std::lock_guard lock(mu_);
    context_ = std::move(context);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> context_;
};

struct cert_key_files {
  std::string cert_file;  // PEM certificate (chain)
  std::string key_file;   // PEM private key
};

// A client context that verifies the server against `ca_file` (empty: the system's default
// trust store, as for HTTP push to public endpoints) and optionally presents a client
// certificate. The caller sets the expected host name per stream
// (boost::asio::ssl::host_name_verification, and set_server_name). Throws std::runtime_error.
[[nodiscard]] std::shared_ptr<boost::asio::ssl::context> make_client_context(
    const std::string& ca_file, const std::optional<cert_key_files>& client_cert = std::nullopt);

// Names `host` in the ClientHello of a client stream (`ssl` is stream.native_handle()), so
// that a server with several names presents the right certificate. IP addresses are not
// sent: SNI carries host names only (RFC 6066 §3). Throws std::runtime_error.
void set_server_name(SSL* ssl, const std::string& host);

// Who the peer proved to be. Empty unless the peer sent a certificate that passed
// verification.
struct peer_identity {
  std::optional<std::string> common_name;      // subject CN (UTF-8)
  std::vector<std::string> subject_alt_names;  // SAN DNS, email and URI entries, raw values
};

// The verified peer certificate's identity on an established connection (`ssl` is
// stream.native_handle()). Entries with embedded NUL bytes are dropped, never truncated.
[[nodiscard]] peer_identity identity_of(SSL* ssl);

// Files of the development PKI that generate_self_signed maintains.
struct dev_certificates {
  cert_key_files ca;      // dir/dev-ca.pem, dir/dev-ca.key
  cert_key_files server;  // dir/dev-server.pem, dir/dev-server.key
};

// Development certificates for first start without configured TLS files: an ECDSA P-256
// CA and a server certificate it signs (CN localhost, SAN DNS:localhost and IP:127.0.0.1,
// valid 825 days). Files that exist are kept; the CA is regenerated only when one of its
// files is missing, and then the server certificate too. Keys are written with mode 0600.
// Creates `dir` if needed. Throws std::runtime_error.
dev_certificates generate_self_signed(const std::string& dir);

enum class cert_usage { server, client };

// A leaf certificate to issue with issue_certificate.
struct certificate_request {
  std::string common_name;
  // OpenSSL's "TYPE:value" form: "DNS:localhost", "IP:127.0.0.1", "email:a@b.example",
  // "URI:spiffe://wharf/x". No commas.
  std::vector<std::string> subject_alt_names;
  cert_usage usage = cert_usage::client;  // extended key usage serverAuth or clientAuth
  int valid_days = 825;
};

// Issues a certificate for a new ECDSA P-256 key, signed by the CA in `ca`, and writes it
// to `out` (the key with mode 0600), replacing existing files. For the development PKI
// and for tests of mTLS. Throws std::runtime_error.
void issue_certificate(const cert_key_files& ca, const certificate_request& request,
                       const cert_key_files& out);

}  // namespace wharf::tls
