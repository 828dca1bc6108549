// CMQ request parameters: application/x-www-form-urlencoded decoding, the parameter set of
// one request (lookup, duplicates, bounds, `name.n` arrays), and where a request's
// parameters come from (query string, body). Sans-I/O: strings in, values or a CMQ 4000
// error out.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/http/cmq_error.h"

namespace wharf::gateway::http {

// One decoded `name=value` pair.
struct form_param {
  std::string name;
  std::string value;
  friend bool operator==(const form_param&, const form_param&) = default;
};

// Decodes a form string (a query string without its '?', or a POST body), pairs in the
// order they appear. '&' separates pairs and empty pairs are skipped ("a=1&&b=2&");
// a pair without '=' is a name with an empty value; '+' decodes to a space and %XX (either
// case of hex digit) to that byte. Errors (invalid_parameter): a '%' not followed by two hex
// digits, an empty name ("=x"), more than `max_params` pairs. Names and values are bytes:
// no character set is checked here.
[[nodiscard]] cmq_result<std::vector<form_param>> parse_form(std::string_view text,
                                                             std::size_t max_params);

// The parameters of one request, each name at most once. Held sorted by name, byte-wise
// (unsigned), which is also the order the CMQ signature is computed in. The string_views
// the accessors return point into this object: valid while it lives, unmoved.
class cmq_params {
 public:
  cmq_params() = default;

  // Takes the decoded pairs of a request. Errors (invalid_parameter): more than
  // `max_params` pairs, or a name given twice (even with the same value: which one counts
  // would be a guess, and the signature covers both).
  [[nodiscard]] static cmq_result<cmq_params> make(std::vector<form_param> params,
                                                   std::size_t max_params);

  // The value of parameter `name` (exact, case-sensitive match), or nullopt when absent.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const;
  [[nodiscard]] bool contains(std::string_view name) const { return get(name).has_value(); }

  // The Action parameter as sent, or nullopt when absent.
  [[nodiscard]] std::optional<std::string_view> action() const { return get("Action"); }
  // Whether Action equals `name` ignoring ASCII case: CMQ matches actions
  // case-insensitively ("sendmessage" is SendMessage).
  [[nodiscard]] bool action_is(std::string_view name) const;
  // Action in ASCII lower case (a key for a dispatch table), or nullopt when absent.
  [[nodiscard]] std::optional<std::string> action_lower() const;

  // The values of the array parameter `base` (msgBody, receiptHandle, msgTag, filterTag,
  // bindingKey), sent as `base.0`/`base.1`, `base.2`, ...; in index order. Empty when no
  // `base.n` is present (`base` alone is a different parameter). Errors
  // (invalid_parameter): a `base.` name whose suffix is not a decimal index without leading
  // zeros; indexes that do not start at 0 or 1 or leave a gap; more than `max_count` values.
  [[nodiscard]] cmq_result<std::vector<std::string_view>> array(std::string_view base,
                                                                std::size_t max_count) const;

  // Every parameter, sorted by name (byte-wise).
  [[nodiscard]] std::span<const form_param> sorted() const noexcept { return params_; }
  [[nodiscard]] std::size_t size() const noexcept { return params_.size(); }

 private:
  explicit cmq_params(std::vector<form_param> sorted_params) : params_(std::move(sorted_params)) {}

  std::vector<form_param> params_;
};

// The parts of a request target ("/v2/index.php?Action=..."): the path as sent (not
// percent-decoded: the signature covers the raw path) and the query string without '?'.
struct request_target {
  std::string_view path;
  std::string_view query;
};
[[nodiscard]] request_target split_target(std::string_view target);

// Where a CMQ request's parameters come from:
// - GET: the query string. A body is ignored.
// - POST: the body, when Content-Type is application/x-www-form-urlencoded (parameters such
//   as "; charset=utf-8" allowed) or when there is no Content-Type header at all (the
//   official SDKs send none); plus the query string. A name present in both is a duplicate
//   (invalid_parameter), like a name repeated in one of them: the signature covers every
//   pair, so silently preferring one would check a different request than the one signed.
// - any other method, or POST with another Content-Type: invalid_parameter.
// `max_params` bounds query and body together.
[[nodiscard]] cmq_result<cmq_params> params_of_request(std::string_view method,
                                                       std::string_view target,
                                                       const std::optional<std::string>& content_type,
                                                       std::string_view body,
                                                       std::size_t max_params);

}  // namespace wharf::gateway::http
