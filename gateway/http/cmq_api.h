// The CMQ v2 queue API over the queue core: authenticates a request, maps its Action and
// parameters onto a core command or query, and answers CMQ's JSON. Every outcome is HTTP
// 200 with {"code", "message", "requestId", ...} (docs/API.md); the answer to a
// command is sent only after the core made it durable.
//
// Threading: handle() runs on the connection's I/O thread; the core answers on its own
// thread and the JSON is built back on the connection's thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/queue/service.h"
#include "gateway/http/cmq_signature.h"
#include "gateway/http/rate_limiter.h"
#include "gateway/http/server.h"
#include "net/io_pool.h"

namespace wharf::gateway::http {

struct cmq_call;  // one request on its way through the API (cmq_api.cc)

struct cmq_api_options {
  std::size_t max_params = 256;  // parameters per request (config queue_api.max_params)
  // Requests a second per SecretId, 0 for no limit (config queue_api.max_requests_per_second).
  std::uint32_t max_requests_per_second = 0;
  // Requests a second of each tenant, all its SecretIds together (config tenants[].quotas).
  std::map<std::string, std::uint32_t, std::less<>> tenant_requests_per_second;
};

// One tenant's requests ("" the default tenant).
struct cmq_tenant_stats {
  std::string tenant;
  std::uint64_t requests = 0;      // authenticated
  std::uint64_t rate_limited = 0;  // answered 4420: over its quotas.requests_per_second
};

struct cmq_api_stats {
  std::uint64_t requests = 0;
  std::uint64_t auth_failures = 0;
  std::uint64_t bad_requests = 0;  // answered 4000 before reaching the core
  std::uint64_t rate_limited = 0;  // answered 4420: over max_requests_per_second
  std::uint64_t scope_refusals = 0;  // answered 4100: outside the credential's scopes
  std::vector<cmq_tenant_stats> tenants;  // the default tenant first, then by name
};

class cmq_api {
 public:
  // REQUIRES: `queue_core`, `auth` and `pool` outlive every request in flight.
  cmq_api(core::queue::service& queue_core, authenticator& auth, net::io_pool& pool, cmq_api_options options);

  // The server's request handler.
  void handle(http_request request, respond_fn respond);
  // A CMQ answer with a fresh requestId, for what the server refuses before handle() could
  // run (http_server_options::error_body: a body over max_body_bytes).
  [[nodiscard]] std::string refusal(int code, const std::string& message);

  // What a reload changes (SIGHUP): the credentials and the request rate, for requests not
  // yet admitted. The rest of `cfg` applies at the next start, as do the tenants' quotas.
  void reload(const config::queue_api_config& cfg);

  [[nodiscard]] cmq_api_stats stats() const;

  // The options' tenant rates from the config's tenants.
  [[nodiscard]] static std::map<std::string, std::uint32_t, std::less<>> tenant_rates(
      const std::vector<config::tenant_config>& tenants);

 private:
  void dispatch(const std::shared_ptr<cmq_call>& c);
  [[nodiscard]] std::string next_request_id();
  // Counts a request of `tenant` and takes its token; false when over its rate.
  [[nodiscard]] bool admit_tenant(const std::string& tenant, std::uint32_t& rate);

  struct tenant_entry {
    std::atomic<std::uint32_t> rate_per_s{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> rate_limited{0};
  };

  core::queue::service& core_;
  authenticator& auth_;
  net::io_pool& pool_;
  cmq_api_options options_;
  request_rate_limiter rate_limiter_;
  request_rate_limiter tenant_rate_limiter_{0};  // keyed by tenant, at each tenant's rate
  // One per tenant a credential named so far; the rates are those of the start.
  mutable std::shared_mutex tenants_mu_;
  std::map<std::string, std::unique_ptr<tenant_entry>, std::less<>> tenants_;  // GUARDED_BY(tenants_mu_)
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> auth_failures_{0};
  std::atomic<std::uint64_t> bad_requests_{0};
  std::atomic<std::uint64_t> scope_refusals_{0};
  std::atomic<std::uint64_t> next_request_number_{0};
  std::string request_id_prefix_;
};

}  // namespace wharf::gateway::http
