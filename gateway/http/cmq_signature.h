// CMQ request signatures (docs/API.md, "Signature") and the authenticator that checks them with
// the timestamp window and nonce replay protection. Sans-I/O: the clock is injected.
//
// The string to sign:
//   METHOD + Host header + path + "?" + join("&", name + "=" + value)
// over every parameter but Signature, in ascending byte-wise order of the parameter names
// as sent, with '_' replaced by '.' in the names written; values are the decoded form
// values, not re-encoded. The order is that of the Tencent SDKs: Python sorts the names
// (sorted(params.keys())), Java iterates a TreeMap<String,String> and C++ a
// std::map<string,string>, each replacing '_' only while writing the name. (Sorting the
// replaced names would differ for names where '_' meets a character between '.' and '_',
// such as a digit or an upper-case letter.)
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "core/string_map.h"
#include "gateway/http/cmq_error.h"
#include "gateway/http/cmq_request.h"

namespace wharf::gateway::http {

enum class signature_method { hmac_sha1, hmac_sha256 };

// HmacSHA256 when the SignatureMethod parameter is exactly "HmacSHA256"; HmacSHA1 for any
// other value and when it is absent (CMQ's rule).
[[nodiscard]] signature_method signature_method_of(const cmq_params& params);

// What a signature covers besides the parameters. From a server request `r`:
// {r.method, r.host, split_target(r.target).path}.
struct request_line {
  std::string_view method;  // "GET" or "POST"
  std::string_view host;    // the Host header exactly as sent, port included when sent
  std::string_view path;    // the request target's path as sent (split_target(target).path)
};

// Whether the string to sign keeps every parameter, or leaves out (POST only, as one
// official SDK does) every parameter whose value begins with '@'.
enum class at_values { keep, leave_out };

// The string to sign for `request` and `params` (see the top of this file).
[[nodiscard]] std::string string_to_sign(const request_line& request, const cmq_params& params,
                                         at_values at = at_values::keep);

// base64(HMAC(secret_key, string_to_sign)): the Signature parameter's value.
[[nodiscard]] std::string compute_signature(std::string_view secret_key, std::string_view string_to_sign,
                                            signature_method method);

// A SecretId and its SecretKey, as the config holds them.
using credential = config::queue_api_credential;

struct authenticator_options {
  // A request's Timestamp may differ from the server's clock by at most this many seconds;
  // a nonce is remembered as long as a request carrying it could still be accepted.
  // Default: 300.
  std::int64_t window_s = 300;
  // Remembered (SecretId, Nonce) pairs, all credentials together; when full, the oldest is
  // forgotten (counted in nonces_evicted: a replay of it would then pass). About 90 bytes
  // each. Default: 1,000,000.
  std::size_t nonce_cache_entries = 1000000;
  // The current unix time in seconds. Default (empty): the system clock.
  std::function<std::int64_t()> clock;
};

// The options of the config's queue_api section (window, cache size), with `clock`.
[[nodiscard]] authenticator_options authenticator_options_from(const config::queue_api_config& cfg,
                                                               std::function<std::int64_t()> clock = {});

// Counters, read from any thread. Every rejection is counted under exactly one reason.
struct authenticator_stats {
  std::uint64_t accepted = 0;
  std::uint64_t unsigned_requests = 0;   // SecretId or Signature missing
  std::uint64_t malformed = 0;           // Timestamp or Nonce missing or not a number
  std::uint64_t unknown_secret_id = 0;
  std::uint64_t bad_signature = 0;
  std::uint64_t outside_window = 0;      // |now - Timestamp| > window
  std::uint64_t replayed = 0;            // (SecretId, Nonce) seen within the window
  std::uint64_t nonces_evicted = 0;      // forgotten early because the cache was full
};

// Checks CMQ-signed requests against a list of credentials that a reload may replace.
// Thread-safe: the I/O threads share one. The HMACs are computed outside any lock; the
// nonce check takes one mutex for a hash-map lookup and insert.
class authenticator {
 public:
  // REQUIRES: secret ids unique and non-empty (the config loader checks this); throws
  // std::invalid_argument otherwise.
  explicit authenticator(std::vector<credential> credentials, authenticator_options options = {});
  authenticator(const authenticator&) = delete;
  authenticator& operator=(const authenticator&) = delete;

  // Accepts a request whose Signature matches, in either form (all parameters; or, for
  // POST, the form without '@' values), the HMAC named by SignatureMethod under the
  // SecretId's key, whose Timestamp is within the window of now, and whose Nonce (a
  // positive integer up to 2^63-1) this SecretId has not used within the window. Returns
  // the SecretId's credential (kept alive by the result across a reload), or auth_failed
  // (4100) with a message saying which check failed.
  [[nodiscard]] cmq_result<std::shared_ptr<const credential>> authenticate(const request_line& request,
                                                                           const cmq_params& params);

  // Requests from now on are checked against `credentials` (same REQUIREMENTS as the
  // constructor; on a throw the old list stays). A SecretId kept, or given again later,
  // keeps the nonces it used: a replay across a reload is still refused.
  void replace_credentials(std::vector<credential> credentials);

  [[nodiscard]] authenticator_stats stats() const noexcept;

 private:
  // One generation of credentials, replaced whole.
  struct credential_set {
    std::vector<credential> list;
    core::string_map<std::uint32_t> index_by_id;  // secret_id -> list index; found by string_view
    std::vector<std::uint32_t> nonce_owner;                      // list index -> nonce_owners_ value
  };
  std::shared_ptr<const credential_set> make_set(std::vector<credential> credentials);

  // Remembers (nonce owner, nonce) pairs until the end of the window in which a request
  // carrying them could be accepted; bounded, oldest forgotten first.
  class nonce_cache {
   public:
    explicit nonce_cache(std::size_t capacity) : capacity_(capacity) {}
    // Records the pair until `expires_at` (unix s). False when it is already recorded and
    // not expired at `now`. Adds to `evicted` the live pairs forgotten to make room.
    bool insert(std::uint32_t nonce_owner, std::uint64_t nonce, std::int64_t now, std::int64_t expires_at,
                std::uint64_t& evicted);

   private:
    struct key {
      std::uint64_t nonce;
      std::uint32_t nonce_owner;
      friend bool operator==(const key&, const key&) = default;
    };
    struct key_hash {
      std::size_t operator()(const key& k) const noexcept;
    };
    struct recorded {
      key k;
      std::int64_t expires_at;
    };

    std::mutex mutex_;
    std::size_t capacity_;
    std::unordered_map<key, std::int64_t, key_hash> expiry_;  // pair -> expires_at
    // Insertion order, oldest first. An entry whose expires_at no longer matches expiry_
    // was superseded (the pair expired and was recorded again) and is skipped.
    std::deque<recorded> order_;
  };

  cmq_error reject(std::atomic<std::uint64_t>& counter, std::string message);

  std::atomic<std::shared_ptr<const credential_set>> credentials_;
  // A number per SecretId ever configured, stable across reloads: the nonce cache's owner.
  std::mutex nonce_owners_mutex_;
  std::unordered_map<std::string, std::uint32_t> nonce_owners_;
  std::int64_t window_s_;
  std::function<std::int64_t()> clock_;
  nonce_cache nonces_;

  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> unsigned_{0};
  std::atomic<std::uint64_t> malformed_{0};
  std::atomic<std::uint64_t> unknown_secret_id_{0};
  std::atomic<std::uint64_t> bad_signature_{0};
  std::atomic<std::uint64_t> outside_window_{0};
  std::atomic<std::uint64_t> replayed_{0};
  std::atomic<std::uint64_t> nonces_evicted_{0};
};

}  // namespace wharf::gateway::http
