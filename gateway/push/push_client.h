// HTTP push of topic messages to the endpoints of `http` subscriptions (CMQ's "HTTP endpoint
// subscription", docs/API.md "HTTP push"): one POST per attempt, success on any 2xx. Retrying
// is not done here; the queue service decides when to try again (core/queue/push_retry.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "core/queue/engine.h"

namespace wharf::gateway::push {

struct push_client_options {
  // Limit on one attempt: resolving, connecting, the TLS handshake, sending the request and
  // reading the response, together. Default: 5 s.
  std::chrono::milliseconds timeout{5000};
  // PEM CA bundle that https endpoints' certificates must chain to. Empty: the system's
  // default trust store. Default: empty.
  std::string ca_file;
  // The TopicOwner field of JSON bodies (CMQ sends the topic owner's account id). Default: "wharf".
  std::string topic_owner = "wharf";
  // Keep-alive connections kept open between pushes, all endpoints together; when full, the
  // one idle longest is closed. 0: one connection per push. Default: 64.
  std::size_t max_idle_connections = 64;
};

// A subscription endpoint URL taken apart.
struct endpoint {
  bool tls = false;          // https
  std::string host;          // to resolve and to verify: a name, or an IP address without brackets
  std::uint16_t port = 0;    // the URL's, else 80 or 443
  std::string host_header;   // host and port as the URL writes them (IPv6 in brackets)
  std::string target;        // path and query; "/" when the URL has no path
};

// std::nullopt unless `url` is an absolute http or https URL with a host and no user info.
// A fragment is dropped (it is never sent). Scheme is case-insensitive.
[[nodiscard]] std::optional<endpoint> parse_endpoint(std::string_view url);

// Sends HTTP pushes. Each push is one POST to the delivery's endpoint with the headers
// x-cmq-request-id (new per attempt), x-cmq-message-id and x-cmq-message-tag (the tags
// joined by ", ", as in CMQ's example), and, as CMQ does, Content-Type text/plain:
//   JSON format: {"TopicOwner","topicName","subscriptionName","msgId","msgBody"} as strings
//     and "publishTime" as an integer (unix seconds), the types of CMQ's documentation;
//   SIMPLIFIED format: the message body as published.
// https endpoints must present a certificate that chains to the configured CAs and names
// the URL's host. The response body is read (up to 64 KiB, to keep the connection usable)
// and ignored.
//
// Threading: all state lives on a strand of the io_context given; send() may be called
// from any thread.
class push_client {
 public:
  // `success`: the endpoint answered 2xx. Otherwise `error` says why, for the log:
  // "HTTP 503", "connect to example.com:80: Connection refused", "timed out after 5000 ms".
  using completion = std::function<void(bool success, std::string error)>;

  // Throws std::runtime_error when options.ca_file (or the system trust store) cannot be
  // loaded (startup only).
  push_client(boost::asio::io_context& io, push_client_options options);
  // Pushes in flight continue, and their completions still run; idle connections close
  // when the last of them ends.
  ~push_client();
  push_client(const push_client&) = delete;
  push_client& operator=(const push_client&) = delete;

  // Makes one attempt to deliver `delivery` and calls `done` exactly once, on the
  // io_context, within options.timeout (plus scheduling delay).
  void send(core::queue::push_delivery delivery, completion done);

 private:
  class state;
  std::shared_ptr<state> state_;
};

}  // namespace wharf::gateway::push
