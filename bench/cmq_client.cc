#include "bench/cmq_client.h"

#include <algorithm>
#include <charconv>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include "tls/crypto.h"
#include "tls/tls_context.h"

namespace wharf::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using std::chrono::steady_clock;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view default_path = "/v2/index.php";
// A batch receive answers up to 16 bodies of up to 1 MiB each, JSON-escaped.
constexpr std::uint64_t max_answer_bytes = 64 * 1024 * 1024;

bool is_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  std::uint16_t port = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, port);
  if (ec != std::errc{} || ptr != end || port == 0) return std::nullopt;
  return port;
}

std::int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct exchange_result {
  boost::system::error_code error;
  http::response<http::string_body> response;
};

template <class Stream>
asio::awaitable<exchange_result> exchange(Stream& stream, beast::flat_buffer& buffer,
                                          const http::request<http::string_body>& request,
                                          steady_clock::time_point deadline) {
  auto& transport = beast::get_lowest_layer(stream);
  transport.expires_at(deadline);
  exchange_result result;
  auto [write_error, written] = co_await http::async_write(stream, request, use_tuple);
  if (write_error) {
    result.error = write_error;
    co_return result;
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_answer_bytes);
  auto [read_error, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
  // The connection waits idle between calls (a paced producer); that must not time out.
  transport.expires_never();
  result.error = read_error;
  if (!read_error) result.response = parser.release();
  co_return result;
}

}  // namespace

std::optional<cmq_endpoint> parse_cmq_endpoint(std::string_view url) {
  cmq_endpoint e;
  if (url.starts_with("https://")) {
    e.tls = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  if (url.find_first_of("?#@") != std::string_view::npos) return std::nullopt;
  const auto slash = url.find('/');
  const std::string_view authority = url.substr(0, slash);
  e.path = slash == std::string_view::npos ? std::string(default_path) : std::string(url.substr(slash));
  if (authority.empty()) return std::nullopt;
  e.host_header = authority;

  std::string_view after_host;  // "" or ":PORT"
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    e.host = authority.substr(1, close - 1);
    after_host = authority.substr(close + 1);
  } else {
    const auto colon = authority.find(':');
    e.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) after_host = authority.substr(colon);
  }
  if (e.host.empty()) return std::nullopt;
  e.port = e.tls ? 443 : 80;
  if (!after_host.empty()) {
    if (after_host.front() != ':') return std::nullopt;
    const auto port = parse_port(after_host.substr(1));
    if (!port) return std::nullopt;
    e.port = *port;
  }
  return e;
}

std::string url_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (is_unreserved(c)) {
      out += c;
      continue;
    }
    const auto byte = static_cast<unsigned char>(c);
    out += '%';
    out += hex[byte >> 4];
    out += hex[byte & 0x0F];
  }
  return out;
}

std::string cmq_string_to_sign(std::string_view method, std::string_view host_header, std::string_view path,
                               const cmq_params& params) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(params.size());
  for (const auto& p : params)
    if (p.first != "Signature") sorted.push_back(&p);
  // By the names as sent; '_' becomes '.' only when written (see gateway/http/cmq_signature.h).
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  std::string out;
  out.append(method).append(host_header).append(path).append("?");
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0) out += '&';
    std::string name = sorted[i]->first;
    std::replace(name.begin(), name.end(), '_', '.');
    out.append(name).append("=").append(sorted[i]->second);
  }
  return out;
}

std::string cmq_signature_sha256(std::string_view secret_key, std::string_view string_to_sign) {
  return tls::base64_encode(tls::hmac_sha256(secret_key, string_to_sign));
}

std::string signed_form_body(const cmq_params& action_params, const cmq_credentials& credentials,
                             const cmq_endpoint& to, std::int64_t timestamp_s, std::uint64_t nonce) {
  cmq_params params = action_params;
  params.emplace_back("SecretId", credentials.secret_id);
  params.emplace_back("Timestamp", std::to_string(timestamp_s));
  params.emplace_back("Nonce", std::to_string(nonce));
  params.emplace_back("SignatureMethod", "HmacSHA256");
  params.emplace_back("Signature", cmq_signature_sha256(credentials.secret_key,
                                                        cmq_string_to_sign("POST", to.host_header, to.path, params)));
  std::string body;
  for (const auto& [name, value] : params) {
    if (!body.empty()) body += '&';
    body.append(url_encode(name)).append("=").append(url_encode(value));
  }
  return body;
}

std::uint64_t nonce_source::random_start() {
  std::random_device seed;
  std::mt19937_64 rng((static_cast<std::uint64_t>(seed()) << 32) | seed());
  return std::uniform_int_distribution<std::uint64_t>(1, 1ULL << 62)(rng);
}

std::vector<cmq_message> received_messages(const json::object& answer) {
  std::vector<cmq_message> out;
  auto take = [&out](const json::object& m) {
    const auto* body = m.if_contains("msgBody");
    const auto* handle = m.if_contains("receiptHandle");
    if (body && handle && body->is_string() && handle->is_string())
      out.push_back({std::string(body->get_string()), std::string(handle->get_string())});
  };
  if (const auto* list = answer.if_contains("msgInfoList")) {
    if (list->is_array())
      for (const auto& m : list->get_array())
        if (m.is_object()) take(m.get_object());
  } else {
    take(answer);
  }
  return out;
}

cmq_connection::cmq_connection(asio::any_io_executor executor, const cmq_server& server)
    : executor_(std::move(executor)), server_(server) {}

asio::awaitable<std::optional<std::string>> cmq_connection::connect(steady_clock::duration timeout) {
  co_return co_await connect_before(steady_clock::now() + timeout);
}

asio::awaitable<std::optional<std::string>> cmq_connection::connect_before(steady_clock::time_point deadline) {
  if (stream_) co_return std::nullopt;
  const cmq_endpoint& to = server_.endpoint;
  auto fresh = to.tls ? std::make_unique<stream>(std::in_place_type<tls_stream>, executor_, *server_.tls_context)
                      : std::make_unique<stream>(std::in_place_type<plain_stream>, executor_);
  auto& transport = std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); }, *fresh);
  transport.expires_at(deadline);
  auto [connect_error, peer] = co_await transport.async_connect(server_.addresses, use_tuple);
  if (connect_error) co_return fmt::format("connect to {}: {}", to.host_header, connect_error.message());
  boost::system::error_code no_delay_refused;  // only costs latency
  transport.socket().set_option(asio::ip::tcp::no_delay(true), no_delay_refused);
  if (auto* secure = std::get_if<tls_stream>(fresh.get())) {
    tls::set_server_name(secure->native_handle(), to.host);
    secure->set_verify_callback(asio::ssl::host_name_verification(to.host));
    auto [handshake_error] = co_await secure->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (handshake_error) co_return fmt::format("TLS handshake with {}: {}", to.host_header, handshake_error.message());
  }
  transport.expires_never();
  buffer_.clear();
  stream_ = std::move(fresh);
  co_return std::nullopt;
}

asio::awaitable<cmq_answer> cmq_connection::call(const cmq_params& action_params, steady_clock::duration timeout) {
  const auto deadline = steady_clock::now() + timeout;
  cmq_answer answer;
  if (auto failed = co_await connect_before(deadline)) {
    answer.failure = std::move(failed);
    co_return answer;
  }
  const cmq_endpoint& to = server_.endpoint;
  http::request<http::string_body> request{http::verb::post, to.path, 11};
  request.set(http::field::host, to.host_header);
  request.set(http::field::content_type, "application/x-www-form-urlencoded");
  request.keep_alive(true);
  request.body() = signed_form_body(action_params, server_.credentials, to, unix_now_s(), server_.nonces->next());
  request.prepare_payload();

  auto result = co_await std::visit([&](auto& s) { return exchange(s, buffer_, request, deadline); }, *stream_);
  if (result.error) {
    stream_.reset();
    answer.failure = fmt::format("{}: {}", to.host_header, result.error.message());
    co_return answer;
  }
  if (!result.response.keep_alive()) stream_.reset();
  if (result.response.result() != http::status::ok) {
    answer.failure = fmt::format("HTTP {} from {}", result.response.result_int(), to.host_header);
    co_return answer;
  }
  boost::system::error_code parse_error;
  auto value = json::parse(result.response.body(), parse_error);
  const auto* code = !parse_error && value.is_object() ? value.get_object().if_contains("code") : nullptr;
  if (code == nullptr || !code->is_int64()) {
    answer.failure = fmt::format("answer is not a CMQ JSON object: {:.200}", result.response.body());
    co_return answer;
  }
  answer.code = code->get_int64();
  answer.body = std::move(value.get_object());
  co_return answer;
}

}  // namespace wharf::bench
