#include "http_test_support.h"

#include <poll.h>
#include <unistd.h>

#include <boost/asio/read.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <fmt/format.h>

#include <random>
#include <thread>

namespace wharf::gateway::http::test {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

config::listener_config loopback_listener() {
  config::listener_config cfg;
  cfg.type = config::listener_type::queue_api;
  cfg.bind = "127.0.0.1:0";
  cfg.host = "127.0.0.1";
  return cfg;
}

temp_dir::temp_dir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() / fmt::format("wharf-http-test-{}-{:x}", ::getpid(), rd());
  std::filesystem::create_directories(path_);
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string describe(const http_request& r) {
  return fmt::format("{} {} host={} type={} tls={} body={}", r.method, r.target, r.host,
                     r.content_type.value_or("<none>"), r.tls, r.body);
}

test_server::test_server(http_server_options options, request_handler handler,
                         std::shared_ptr<asio::ssl::context> tls)
    : pool_(2) {
  request_handler record = [this, handler = std::move(handler)](http_request request, respond_fn respond) {
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    if (handler) {
      handler(std::move(request), std::move(respond));
    } else {
      respond(describe(request));
    }
  };
  listener_ = start_http_listener(pool_, loopback_listener(), std::move(tls), std::move(record), std::move(options));
  pool_.run();
}

test_server::test_server(hold_answers_t, http_server_options options, std::shared_ptr<asio::ssl::context> tls)
    : test_server(
          std::move(options),
          [this](http_request, respond_fn respond) {
            std::lock_guard lock(mutex_);
            held_.push_back(std::move(respond));
            answer_held_.notify_all();
          },
          std::move(tls)) {}

test_server::~test_server() {
  listener_.stop();
  pool_.stop();
  pool_.join();
}

std::vector<http_request> test_server::requests() {
  std::lock_guard lock(mutex_);
  return requests_;
}

respond_fn test_server::take_answer(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!answer_held_.wait_for(lock, timeout, [&] { return !held_.empty(); })) return nullptr;
  respond_fn respond = std::move(held_.front());
  held_.pop_front();
  return respond;
}

std::size_t test_server::held_answers() {
  std::lock_guard lock(mutex_);
  return held_.size();
}

client::client(std::uint16_t port, asio::ssl::context* tls) : socket_(io_) {
  socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  if (tls != nullptr) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *tls);
    tls_->set_verify_callback(asio::ssl::host_name_verification("localhost"));
    tls_->handshake(asio::ssl::stream_base::client);
  }
}

void client::send(std::string_view bytes) {
  tls_ ? asio::write(*tls_, asio::buffer(bytes)) : asio::write(socket_, asio::buffer(bytes));
}

response client::read() {
  response r;
  tls_ ? bhttp::read(*tls_, buffer_, r) : bhttp::read(socket_, buffer_, r);
  return r;
}

std::string client::read_exactly(std::size_t n) {
  std::string out(n, '\0');
  // Bytes a previous read() buffered come first.
  const std::size_t buffered = std::min(n, buffer_.size());
  asio::buffer_copy(asio::buffer(out.data(), buffered), buffer_.data());
  buffer_.consume(buffered);
  auto rest = asio::buffer(out.data() + buffered, n - buffered);
  tls_ ? asio::read(*tls_, rest) : asio::read(socket_, rest);
  return out;
}

bool client::closed_by_server(std::chrono::milliseconds timeout) {
  if (buffer_.size() > 0) return false;
  pollfd p{socket_.native_handle(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
  char byte = 0;
  boost::system::error_code ec;
  const std::size_t n = tls_ ? tls_->read_some(asio::buffer(&byte, 1), ec) : socket_.read_some(asio::buffer(&byte, 1), ec);
  return n == 0 && ec;
}

void client::close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

std::string post(std::string_view body, std::string_view extra_headers) {
  return fmt::format("POST /v2/index.php HTTP/1.1\r\nHost: localhost:8080\r\n{}Content-Length: {}\r\n\r\n{}",
                     extra_headers, body.size(), body);
}

}  // namespace wharf::gateway::http::test
