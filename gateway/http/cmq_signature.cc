#include "gateway/http/cmq_signature.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "tls/crypto.h"

namespace wharf::gateway::http {
namespace {

constexpr std::string_view signature_param = "Signature";

std::int64_t system_unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A decimal integer with digits only (no sign, no spaces) that fits in int64.
std::optional<std::int64_t> parse_decimal(std::string_view text) noexcept {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string_view method_name(signature_method m) noexcept {
  return m == signature_method::hmac_sha256 ? "HmacSHA256" : "HmacSHA1";
}

bool any_at_value(const cmq_params& params) {
  return std::any_of(params.sorted().begin(), params.sorted().end(), [](const form_param& p) {
    return p.name != signature_param && p.value.starts_with('@');
  });
}

}  // namespace

signature_method signature_method_of(const cmq_params& params) {
  return params.get("SignatureMethod") == "HmacSHA256" ? signature_method::hmac_sha256
                                                       : signature_method::hmac_sha1;
}

std::string string_to_sign(const request_line& request, const cmq_params& params, at_values at) {
  std::string out;
  out.append(request.method).append(request.host).append(request.path).push_back('?');
  bool first = true;
  for (const form_param& p : params.sorted()) {
    if (p.name == signature_param) continue;
    if (at == at_values::leave_out && p.value.starts_with('@')) continue;
    if (!first) out.push_back('&');
    first = false;
    const std::size_t name_start = out.size();
    out.append(p.name);
    std::replace(out.begin() + static_cast<std::ptrdiff_t>(name_start), out.end(), '_', '.');
    out.push_back('=');
    out.append(p.value);
  }
  return out;
}

std::string compute_signature(std::string_view secret_key, std::string_view string_to_sign,
                              signature_method method) {
  if (method == signature_method::hmac_sha256) return tls::base64_encode(tls::hmac_sha256(secret_key, string_to_sign));
  return tls::base64_encode(tls::hmac_sha1(secret_key, string_to_sign));
}

authenticator_options authenticator_options_from(const config::queue_api_config& cfg,
                                                 std::function<std::int64_t()> clock) {
  authenticator_options o;
  o.window_s = cfg.signature_window_s;
  o.nonce_cache_entries = cfg.nonce_cache_entries;
  o.clock = std::move(clock);
  return o;
}

std::size_t authenticator::nonce_cache::key_hash::operator()(const key& k) const noexcept {
  // Nonces are client-chosen: mix the bits so that sequential or patterned nonces spread.
  std::uint64_t h = k.nonce ^ (std::uint64_t{k.nonce_owner} * 0x9e3779b97f4a7c15ULL);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return static_cast<std::size_t>(h);
}

bool authenticator::nonce_cache::insert(std::uint32_t nonce_owner, std::uint64_t nonce, std::int64_t now,
                                        std::int64_t expires_at, std::uint64_t& evicted) {
  const key k{nonce, nonce_owner};
  std::lock_guard lock(mutex_);
  // Forget, from the oldest, what has expired or was superseded.
  while (!order_.empty()) {
    const recorded& front = order_.front();
    const auto it = expiry_.find(front.k);
    const bool superseded = it == expiry_.end() || it->second != front.expires_at;
    if (!superseded && front.expires_at >= now) break;
    if (!superseded) expiry_.erase(it);
    order_.pop_front();
  }
  const auto it = expiry_.find(k);
  if (it != expiry_.end()) {
    if (it->second >= now) return false;
    expiry_.erase(it);  // expired but not yet at the front: its order_ entry is now superseded
  }
  // Make room, oldest first. order_ bounds the memory (it holds every live pair and any
  // superseded entries not yet reached), so it is what is kept under the capacity.
  while (order_.size() >= capacity_) {
    const recorded& front = order_.front();
    const auto old = expiry_.find(front.k);
    if (old != expiry_.end() && old->second == front.expires_at) {
      expiry_.erase(old);
      ++evicted;
    }
    order_.pop_front();
  }
  expiry_.emplace(k, expires_at);
  order_.push_back({k, expires_at});
  return true;
}

authenticator::authenticator(std::vector<credential> credentials, authenticator_options options)
    : window_s_(options.window_s),
      clock_(options.clock ? std::move(options.clock) : system_unix_seconds),
      nonces_(std::max<std::size_t>(1, options.nonce_cache_entries)) {
  credentials_.store(make_set(std::move(credentials)));
}

std::shared_ptr<const authenticator::credential_set> authenticator::make_set(std::vector<credential> credentials) {
  auto set = std::make_shared<credential_set>();
  set->list = std::move(credentials);
  std::lock_guard lock(nonce_owners_mutex_);
  for (std::size_t i = 0; i < set->list.size(); ++i) {
    const std::string& id = set->list[i].secret_id;
    if (id.empty()) throw std::invalid_argument("authenticator: empty secret_id");
    if (!set->index_by_id.emplace(id, static_cast<std::uint32_t>(i)).second) {
      throw std::invalid_argument(fmt::format("authenticator: secret_id '{}' given twice", id));
    }
    const auto owner = nonce_owners_.emplace(id, static_cast<std::uint32_t>(nonce_owners_.size())).first->second;
    set->nonce_owner.push_back(owner);
  }
  return set;
}

void authenticator::replace_credentials(std::vector<credential> credentials) {
  credentials_.store(make_set(std::move(credentials)));
}

cmq_error authenticator::reject(std::atomic<std::uint64_t>& counter, std::string message) {
  counter.fetch_add(1, std::memory_order_relaxed);
  return {cmq_error_code::auth_failed, std::move(message)};
}

cmq_result<std::shared_ptr<const credential>> authenticator::authenticate(const request_line& request, const cmq_params& params) {
  const auto secret_id = params.get("SecretId");
  const auto signature = params.get(signature_param);
  if (!secret_id || !signature) {
    return reject(unsigned_, fmt::format("request is not signed: parameter '{}' is missing",
                                         secret_id ? signature_param : "SecretId"));
  }
  const auto timestamp_text = params.get("Timestamp");
  const auto nonce_text = params.get("Nonce");
  if (!timestamp_text || !nonce_text) {
    return reject(malformed_, fmt::format("signed request without parameter '{}'", timestamp_text ? "Nonce" : "Timestamp"));
  }
  const auto timestamp = parse_decimal(*timestamp_text);
  if (!timestamp) {
    return reject(malformed_, fmt::format("Timestamp '{}' is not a unix time in seconds", *timestamp_text));
  }
  const auto nonce = parse_decimal(*nonce_text);
  if (!nonce || *nonce == 0) {
    return reject(malformed_, fmt::format("Nonce '{}' is not a positive integer up to {}", *nonce_text,
                                          std::numeric_limits<std::int64_t>::max()));
  }
  const auto credentials = credentials_.load();
  const auto found = credentials->index_by_id.find(*secret_id);
  if (found == credentials->index_by_id.end()) {
    return reject(unknown_secret_id_, fmt::format("unknown SecretId '{}'", *secret_id));
  }
  const std::uint32_t credential_index = found->second;

  // Decode the client's signature and compare digests: constant time over the bytes, and
  // no dependence on how the client spelled the base64.
  const auto given = tls::base64_decode(*signature);
  const signature_method method = signature_method_of(params);
  const std::string& key = credentials->list[credential_index].secret_key;
  auto matches = [&](at_values at) {
    const std::string src = string_to_sign(request, params, at);
    if (method == signature_method::hmac_sha256) return tls::constant_time_equal(*given, tls::hmac_sha256(key, src));
    return tls::constant_time_equal(*given, tls::hmac_sha1(key, src));
  };
  const bool valid = given && (matches(at_values::keep) || (request.method == "POST" && any_at_value(params) &&
                                                             matches(at_values::leave_out)));
  if (!valid) {
    // Signature is among the parameters (checked above) and not signed itself.
    return reject(bad_signature_,
                  fmt::format("signature does not match: checked {} of {} + Host '{}' + path '{}' + '?' + the "
                              "{} other parameters sorted by name, under the key of SecretId '{}'",
                              method_name(method), request.method, request.host, request.path,
                              params.size() - 1, *secret_id));
  }

  const std::int64_t now = clock_();
  if (*timestamp < now - window_s_ || *timestamp > now + window_s_) {
    return reject(outside_window_, fmt::format("Timestamp {} is more than {} s away from the server's time {}",
                                               *timestamp, window_s_, now));
  }
  // A replay of this request could be accepted until its Timestamp leaves the window, and a
  // new request reusing the nonce until now leaves it: remember the pair until the later.
  std::uint64_t evicted = 0;
  const bool fresh = nonces_.insert(credentials->nonce_owner[credential_index], static_cast<std::uint64_t>(*nonce),
                                    now, std::max(now, *timestamp) + window_s_, evicted);
  if (evicted != 0) nonces_evicted_.fetch_add(evicted, std::memory_order_relaxed);
  if (!fresh) {
    return reject(replayed_, fmt::format("Nonce {} was already used by SecretId '{}' within the last {} s",
                                         *nonce, *secret_id, window_s_));
  }
  accepted_.fetch_add(1, std::memory_order_relaxed);
  // Shares the set's ownership: the credential outlives a reload while the request runs.
  return std::shared_ptr<const credential>(credentials, &credentials->list[credential_index]);
}

authenticator_stats authenticator::stats() const noexcept {
  authenticator_stats s;
  s.accepted = accepted_.load(std::memory_order_relaxed);
  s.unsigned_requests = unsigned_.load(std::memory_order_relaxed);
  s.malformed = malformed_.load(std::memory_order_relaxed);
  s.unknown_secret_id = unknown_secret_id_.load(std::memory_order_relaxed);
  s.bad_signature = bad_signature_.load(std::memory_order_relaxed);
  s.outside_window = outside_window_.load(std::memory_order_relaxed);
  s.replayed = replayed_.load(std::memory_order_relaxed);
  s.nonces_evicted = nonces_evicted_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace wharf::gateway::http
