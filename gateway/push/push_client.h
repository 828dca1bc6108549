// HTTP push of topic messages to the endpoints of `http` subscriptions (CMQ's "HTTP endpoint
// subscription", docs/API.md "HTTP push"): one POST per attempt, success on any 2xx. Retrying
// is not done here; the queue service decides when to try again (core/queue/push_retry.h).
#pragma once

#include <atomic>
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
#include "net/http_client.h"

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
// Threading: send() may be called from any thread.
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
  boost::asio::io_context& io_;
  push_client_options options_;
  net::http_client http_;
  // Request ids only need to differ between attempts; a random start keeps them apart
  // across restarts too.
  std::atomic<std::uint64_t> next_request_id_;
};

}  // namespace wharf::gateway::push
