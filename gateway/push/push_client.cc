#include "gateway/push/push_client.h"

#include <random>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

namespace wharf::gateway::push {
namespace {

using core::queue::push_delivery;

// CMQ sends text/plain for both formats, JSON included; receivers written for CMQ may
// rely on it.
constexpr std::string_view content_type = "text/plain";

std::string joined_tags(const std::vector<std::string>& tags) {
  std::string out;
  for (std::size_t i = 0; i < tags.size(); ++i) {
    if (i > 0) out += ", ";
    out += tags[i];
  }
  return out;
}

// CMQ's JSON notification. Field names and types follow CMQ's documentation: every field a
// string but publishTime, an integer.
std::string json_notification(const push_delivery& delivery, const std::string& topic_owner) {
  boost::json::object body;
  body["TopicOwner"] = topic_owner;
  body["topicName"] = delivery.topic;
  body["subscriptionName"] = delivery.subscription;
  body["msgId"] = delivery.msg_id;
  body["msgBody"] = delivery.body;
  body["publishTime"] = delivery.publish_time_s;
  return boost::json::serialize(body);
}

net::http_client_options client_options(const push_client_options& options) {
  return {.timeout = options.timeout,
          .ca_file = options.ca_file,
          .max_idle_connections = options.max_idle_connections,
          .user_agent = "wharf-push",
          // The answer's body is not used; it is read only so that the connection can
          // carry the next push.
          .max_response_body_bytes = 64 * 1024};
}

}  // namespace

push_client::push_client(boost::asio::io_context& io, push_client_options options)
    : io_(io), options_(std::move(options)), http_(io.get_executor(), client_options(options_)), next_request_id_(std::random_device{}()) {}

push_client::~push_client() = default;

void push_client::send(push_delivery delivery, completion done) {
  // Refused before sending, but answered on the io_context all the same.
  auto refuse = [&](std::string why) {
    boost::asio::post(io_, [done = std::move(done), why = std::move(why)] { done(false, why); });
  };
  auto url = net::parse_endpoint(delivery.endpoint);
  if (!url) {
    refuse(fmt::format("invalid endpoint URL '{}'", delivery.endpoint));
    return;
  }
  for (const auto& tag : delivery.tags) {
    if (!net::fits_in_header(tag)) {
      refuse("a message tag holds CR, LF or NUL");
      return;
    }
  }
  net::http_post request{
      .content_type = std::string(content_type),
      .headers = {{"x-cmq-request-id", std::to_string(next_request_id_.fetch_add(1, std::memory_order_relaxed))},
                  {"x-cmq-message-id", delivery.msg_id},
                  {"x-cmq-message-tag", joined_tags(delivery.tags)}},
      .body = delivery.format == core::queue::notify_format::json ? json_notification(delivery, options_.topic_owner)
                                                                  : std::move(delivery.body)};
  http_.post(std::move(*url), std::move(request), [done = std::move(done)](net::http_response answer) {
    // A status decides, even when the body that followed it was too long or cut short.
    if (!answer.status) {
      done(false, std::move(answer.error));
    } else if (*answer.status / 100 == 2) {
      done(true, {});
    } else {
      done(false, fmt::format("HTTP {}", *answer.status));
    }
  });
}

}  // namespace wharf::gateway::push
