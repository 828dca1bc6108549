// The operator's HTTP(S) service as an authentication source (auth.http): a CONNECT's
// credentials go to it as a JSON POST, and its answer admits the client (optionally as a
// superuser, or with ACL rules of its own), refuses it, or passes it on to the next source.
// Requests are bounded (max_in_flight at once, max_queued waiting, beyond that "busy"),
// each has a deadline, and answers are remembered for a while, so that a reconnecting
// device does not ask again. An answer that does not come, or makes no sense, is a failure:
// the client is refused (fail closed) unless on_failure is allow.
//
// The request (Content-Type application/json):
//   {"action": "connect" | "publish" | "subscribe", "topic": "..." (publish, subscribe),
//    "clientid": "...", "username": "..." | null, "password": "..." | null,
//    "password_base64": "..." (instead of password when it is not UTF-8),
//    "peer": "203.0.113.9", "peer_port": 51234, "protocol_version": 4 | 5,
//    "cert_common_name": "..." | null, "cert_subject_alt_names": ["..."], "listener": 0}
// The answer: status 200 with {"result": "allow" | "deny" | "ignore", "superuser": bool
// (optional), "acl": [rules] (optional, as auth/rules_json.h)}; 204 is allow; 401 and
// 403 are deny; anything else is a failure.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "config/config.h"
#include "net/http_client.h"

namespace wharf::auth {

struct hook_request {
  enum class kind { connect, publish, subscribe };
  kind action = kind::connect;
  std::string topic;  // publish: the topic; subscribe: the filter
  std::string client_id;
  std::optional<std::string> username;
  std::optional<std::string> password;
  bool password_is_text = true;  // valid UTF-8: sent as it is; otherwise base64
  std::string peer_address;
  std::uint16_t peer_port = 0;
  std::uint8_t protocol_version = 4;
  std::optional<std::string> cert_common_name;
  std::vector<std::string> cert_subject_alt_names;
  std::size_t listener = 0;
};

struct hook_answer {
  enum class outcome {
    allow,
    deny,
    ignore,  // the service leaves the client to the next source
    failed,  // no usable answer (and on_failure is deny)
    busy,    // max_queued CONNECTs already wait
  };
  outcome result = outcome::failed;
  // For allow: the client's own ACL rules, tried before auth.acl. A superuser's allow
  // everything.
  std::vector<config::acl_rule> rules;
  std::string why;  // for the log: what the service said, or what went wrong
};

// What a response means (pure: for tests and the fuzz target). `status` is absent when none
// came (then `failure` says why).
[[nodiscard]] hook_answer answer_of(std::optional<unsigned> status, std::string_view body, bool body_complete,
                                    std::string_view failure);
// The request body for `request` (pure).
[[nodiscard]] std::string request_body(const hook_request& request);

// The service's URL taken apart. Throws config::config_errors at cfg.url_location when it is
// not an http(s) URL with a host.
[[nodiscard]] net::endpoint hook_endpoint(const config::http_auth_config& cfg);

class http_hook {
 public:
  struct counters {
    std::atomic<std::uint64_t> requests{0};    // sent to the service
    std::atomic<std::uint64_t> cache_hits{0};  // answered from what was remembered
    std::atomic<std::uint64_t> failures{0};    // no usable answer
    std::atomic<std::uint64_t> busy{0};        // refused: max_queued reached
  };

  // Counts in `stats`, which must outlive the requests (the io_context's handlers). Throws
  // config::config_errors at cfg.url_location when the URL is not http(s), and
  // std::runtime_error when the CA file cannot be loaded.
  http_hook(boost::asio::any_io_executor executor, const config::http_auth_config& cfg, counters& stats);
  ~http_hook();
  http_hook(const http_hook&) = delete;
  http_hook& operator=(const http_hook&) = delete;

  // Asks about `request` and calls `done` exactly once, on the executor, within the
  // timeout (plus the time it waited for a free request slot). Thread-safe.
  void ask(hook_request request, std::function<void(hook_answer)> done);

  [[nodiscard]] const config::http_auth_config& config() const noexcept;

 private:
  class state;
  std::shared_ptr<state> state_;
};

}  // namespace wharf::auth
