#include "tls/tls_context.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <system_error>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace wharf::tls {
namespace {

namespace fs = std::filesystem;
namespace ssl = boost::asio::ssl;

// TLS 1.2: forward secrecy (ECDHE) and AEAD only. TLS 1.3 suites are all AEAD already.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* tls13_suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* key_exchange_groups = "X25519:P-256:P-384";

// Server session cache: enough for a burst of reconnecting clients, bounded in memory
// (a cached session is well under 1 KiB).
constexpr long session_cache_size = 10000;
constexpr long session_timeout_s = 3600;
constexpr int verify_depth = 8;
constexpr unsigned char session_id_context[] = "wharf";

constexpr int dev_ca_valid_days = 3650;
constexpr int dev_server_valid_days = 825;

template <auto Free>
struct openssl_deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<BIO_free_all>>;
using x509_ptr = std::unique_ptr<X509, openssl_deleter<X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<EVP_PKEY_free>>;
using bignum_ptr = std::unique_ptr<BIGNUM, openssl_deleter<BN_free>>;
using extension_ptr = std::unique_ptr<X509_EXTENSION, openssl_deleter<X509_EXTENSION_free>>;
using general_names_ptr = std::unique_ptr<GENERAL_NAMES, openssl_deleter<GENERAL_NAMES_free>>;

// Drains OpenSSL's thread-local error queue into one line ("lib: reason; ...").
std::string openssl_reason() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    const char* lib = ERR_lib_error_string(code);
    const char* reason = ERR_reason_error_string(code);
    if (!out.empty()) out += "; ";
    out += fmt::format("{}: {}", lib != nullptr ? lib : "OpenSSL",
                       reason != nullptr ? reason : fmt::format("error {:#x}", code));
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", what, openssl_reason()));
}

// OpenSSL's reasons for a missing file are vague ("BIO routines: no such file"), so check
// the file ourselves first for a precise message.
void check_readable(const std::string& path, std::string_view what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw std::runtime_error(
        fmt::format("cannot read {} '{}': {}", what, path, std::generic_category().message(errno)));
  }
  ::close(fd);
}

// Never prompt on a terminal for a key password: encrypted keys fail to load instead.
int no_password(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

pkey_ptr load_private_key(const std::string& path) {
  check_readable(path, "private key file");
  ERR_clear_error();
  bio_ptr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) fail(fmt::format("cannot open private key file '{}'", path));
  pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
  if (!key) fail(fmt::format("cannot load private key '{}' (PEM, unencrypted)", path));
  return key;
}

x509_ptr load_certificate(const std::string& path) {
  check_readable(path, "certificate file");
  ERR_clear_error();
  bio_ptr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) fail(fmt::format("cannot open certificate file '{}'", path));
  x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr));
  if (!cert) fail(fmt::format("cannot load certificate '{}' (PEM)", path));
  return cert;
}

// Settings shared by server and client contexts.
void apply_common(SSL_CTX* ctx) {
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
    fail("cannot restrict TLS versions to 1.2 and 1.3");
  }
  if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) fail("cannot set TLS 1.2 ciphers");
  if (SSL_CTX_set_ciphersuites(ctx, tls13_suites) != 1) fail("cannot set TLS 1.3 suites");
  if (SSL_CTX_set1_groups_list(ctx, key_exchange_groups) != 1) fail("cannot set groups");
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // Free the ~34 KB of read/write buffers while a connection is idle; most MQTT
  // connections are idle most of the time.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(ctx, no_password);
}

// Certificate chain and matching private key. A mismatch names both files.
void use_cert_and_key(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file) {
  check_readable(cert_file, "certificate file");
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    fail(fmt::format("cannot load certificate chain '{}'", cert_file));
  }
  pkey_ptr key = load_private_key(key_file);
  if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key.get()) != 1) {
    fail(fmt::format("private key '{}' does not match certificate '{}'", key_file, cert_file));
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    fail(fmt::format("cannot use private key '{}'", key_file));
  }
}

void load_ca(SSL_CTX* ctx, const std::string& ca_file) {
  check_readable(ca_file, "CA file");
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    fail(fmt::format("cannot load CA file '{}'", ca_file));
  }
}

std::optional<std::string> asn1_text(const ASN1_STRING* s) {
  const auto* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(s));
  std::string text(data, static_cast<std::size_t>(ASN1_STRING_length(s)));
  // An embedded NUL is a classic way to smuggle "admin\0.evil.example" past checks.
  if (text.find('\0') != std::string::npos) return std::nullopt;
  return text;
}

std::optional<std::string> common_name_of(X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return std::nullopt;
  // Several CNs make the identity ambiguous; refuse to pick one.
  if (X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0) return std::nullopt;
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return std::nullopt;
  std::string text(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  if (text.find('\0') != std::string::npos) return std::nullopt;
  return text;
}

std::string pem_of(const std::function<int(BIO*)>& write) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) fail("cannot encode PEM");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// Writes via a temporary file and rename, so a crash never leaves a half-written key, and
// the key is never readable by others (mkstemp creates it 0600).
void write_file(const fs::path& path, const std::string& data, mode_t mode) {
  std::string tmp = path.string() + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  auto sys_fail = [&](std::string_view what) {
    const int err = errno;
    throw std::runtime_error(fmt::format("cannot {} '{}': {}", what, path.string(),
                                         std::generic_category().message(err)));
  };
  if (fd < 0) sys_fail("create");
  bool ok = ::fchmod(fd, mode) == 0;
  std::size_t done = 0;
  while (ok && done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  int err = ok ? 0 : errno;
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), path.c_str()) == 0) return;
  if (ok) err = errno;
  ::unlink(tmp.c_str());
  errno = err;
  sys_fail(ok ? "rename to" : "write");
}

void write_pair(const x509_ptr& cert, const pkey_ptr& key, const cert_key_files& out) {
  const std::string key_pem = pem_of([&](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  const std::string cert_pem =
      pem_of([&](BIO* bio) { return PEM_write_bio_X509(bio, cert.get()); });
  write_file(out.key_file, key_pem, 0600);
  write_file(out.cert_file, cert_pem, 0644);
}

pkey_ptr generate_p256_key() {
  ERR_clear_error();
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) fail("cannot generate an ECDSA P-256 key");
  return key;
}

// A v3 certificate for `subject_key`, named CN=`common_name`, O=wharf, signed by `issuer`
// (self-signed when issuer is null). `extensions` are (NID, OpenSSL config value) pairs,
// applied in order (subjectKeyIdentifier before authorityKeyIdentifier).
x509_ptr build_certificate(const std::string& common_name, EVP_PKEY* subject_key, X509* issuer,
                           EVP_PKEY* issuer_key, int valid_days,
                           const std::vector<std::pair<int, std::string>>& extensions) {
  ERR_clear_error();
  x509_ptr cert(X509_new());
  if (!cert) fail("cannot allocate a certificate");
  bignum_ptr serial(BN_new());
  // 159 random bits: positive, within the 20-octet limit, unpredictable.
  if (!serial || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      BN_rand(serial.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    fail("cannot set certificate serial");
  }
  // Backdate an hour to tolerate clock skew between the machines involved.
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), valid_days, 0, nullptr) == nullptr ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    fail("cannot set certificate validity or key");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  const auto* cn = reinterpret_cast<const unsigned char*>(common_name.c_str());
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("wharf"), -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, cn, -1, -1, 0) != 1) {
    fail(fmt::format("cannot set certificate subject CN={}", common_name));
  }
  X509* issuer_cert = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) != 1) {
    fail("cannot set certificate issuer");
  }
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer_cert, cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    extension_ptr ext(X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str()));
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1) {
      fail(fmt::format("cannot add certificate extension {}={}", OBJ_nid2sn(nid), value));
    }
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) fail("cannot sign certificate");
  return cert;
}

}  // namespace

std::shared_ptr<ssl::context> make_server_context(const config::tls_config& cfg) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  apply_common(c);
  SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(c, session_cache_size);
  SSL_CTX_set_timeout(c, session_timeout_s);
  // Required for resumption when client certificates are verified; harmless otherwise.
  SSL_CTX_set_session_id_context(c, session_id_context, sizeof(session_id_context) - 1);
  // One TLS 1.3 ticket per handshake (default 2): clients reconnect one at a time.
  SSL_CTX_set_num_tickets(c, 1);

  use_cert_and_key(c, cfg.cert_file, cfg.key_file);

  if (cfg.require_client_cert && cfg.ca_file.empty()) {
    throw std::runtime_error(fmt::format(
        "require_client_cert needs a ca_file to verify client certificates (certificate '{}')",
        cfg.cert_file));
  }
  if (!cfg.ca_file.empty()) {
    load_ca(c, cfg.ca_file);
    // Tell clients which CAs we accept, so they pick the right certificate.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.ca_file.c_str());
    if (names == nullptr) fail(fmt::format("cannot read CA names from '{}'", cfg.ca_file));
    SSL_CTX_set_client_CA_list(c, names);
    int mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    if (cfg.require_client_cert) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(c, mode, nullptr);
    SSL_CTX_set_verify_depth(c, verify_depth);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  }
  return ctx;
}

std::shared_ptr<ssl::context> make_client_context(
    const std::string& ca_file, const std::optional<cert_key_files>& client_cert) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* c = ctx->native_handle();
  apply_common(c);
  if (ca_file.empty()) {
    ERR_clear_error();
    if (SSL_CTX_set_default_verify_paths(c) != 1) fail("cannot load the system's default CA certificates");
  } else {
    load_ca(c, ca_file);
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_verify_depth(c, verify_depth);
  if (client_cert) use_cert_and_key(c, client_cert->cert_file, client_cert->key_file);
  return ctx;
}

void set_server_name(SSL* ssl, const std::string& host) {
  boost::system::error_code not_an_address;
  boost::asio::ip::make_address(host, not_an_address);
  if (!not_an_address) return;
  ERR_clear_error();
  if (SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) fail(fmt::format("cannot set server name '{}'", host));
}

peer_identity identity_of(SSL* ssl) {
  peer_identity id;
  if (ssl == nullptr) return id;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return id;
  id.common_name = common_name_of(cert);
  general_names_ptr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return id;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    const ASN1_IA5STRING* value = nullptr;
    switch (gn->type) {
      case GEN_DNS:
        value = gn->d.dNSName;
        break;
      case GEN_EMAIL:
        value = gn->d.rfc822Name;
        break;
      case GEN_URI:
        value = gn->d.uniformResourceIdentifier;
        break;
      default:
        break;
    }
    if (value == nullptr) continue;
    if (auto text = asn1_text(value)) id.subject_alt_names.push_back(std::move(*text));
  }
  return id;
}

void issue_certificate(const cert_key_files& ca, const certificate_request& request,
                       const cert_key_files& out) {
  for (const auto& san : request.subject_alt_names) {
    if (san.find(',') != std::string::npos || san.find(':') == std::string::npos) {
      throw std::invalid_argument(
          fmt::format("subject alt name '{}': expected TYPE:value without commas", san));
    }
  }
  x509_ptr ca_cert = load_certificate(ca.cert_file);
  pkey_ptr ca_key = load_private_key(ca.key_file);
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    fail(fmt::format("CA key '{}' does not match CA certificate '{}'", ca.key_file, ca.cert_file));
  }
  pkey_ptr key = generate_p256_key();
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, request.usage == cert_usage::server ? "serverAuth" : "clientAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"},
  };
  if (!request.subject_alt_names.empty()) {
    extensions.emplace_back(NID_subject_alt_name,
                            fmt::format("{}", fmt::join(request.subject_alt_names, ",")));
  }
  x509_ptr cert = build_certificate(request.common_name, key.get(), ca_cert.get(), ca_key.get(),
                                    request.valid_days, extensions);
  write_pair(cert, key, out);
}

dev_certificates generate_self_signed(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw std::runtime_error(fmt::format("cannot create directory '{}': {}", dir, ec.message()));
  }
  const fs::path base(dir);
  dev_certificates out{
      {(base / "dev-ca.pem").string(), (base / "dev-ca.key").string()},
      {(base / "dev-server.pem").string(), (base / "dev-server.key").string()},
  };
  const bool have_ca = fs::exists(out.ca.cert_file) && fs::exists(out.ca.key_file);
  if (!have_ca) {
    pkey_ptr key = generate_p256_key();
    x509_ptr cert =
        build_certificate("wharf development CA", key.get(), nullptr, key.get(), dev_ca_valid_days,
                          {{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                           {NID_key_usage, "critical,keyCertSign,cRLSign"},
                           {NID_subject_key_identifier, "hash"}});
    write_pair(cert, key, out.ca);
  }
  // A new CA invalidates the old server certificate.
  if (!have_ca || !fs::exists(out.server.cert_file) || !fs::exists(out.server.key_file)) {
    certificate_request request;
    request.common_name = "localhost";
    request.subject_alt_names = {"DNS:localhost", "IP:127.0.0.1", "IP:::1"};
    request.usage = cert_usage::server;
    request.valid_days = dev_server_valid_days;
    issue_certificate(out.ca, request, out.server);
  }
  return out;
}

}  // namespace wharf::tls
