#include "net/proxy_accept.h"

#include <boost/asio/steady_timer.hpp>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "core/log.h"
#include "net/acceptor.h"

namespace wharf::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using verdict = proxy_parse::verdict;

// Peeked bytes stay readable, so waiting for readiness again would return at once: a header
// that came in pieces is looked at again after a pause that doubles up to this.
constexpr auto longest_pause = std::chrono::milliseconds(64);

class proxy_read : public std::enable_shared_from_this<proxy_read> {
 public:
  proxy_read(tcp::socket socket, std::shared_ptr<const proxy_options> options, std::shared_ptr<proxy_counters> counters,
             std::function<void(tcp::socket, std::optional<proxy_source>)> then)
      : socket_(std::move(socket)),
        deadline_(socket_.get_executor()),
        pause_(socket_.get_executor()),
        options_(std::move(options)),
        counters_(std::move(counters)),
        then_(std::move(then)) {}

  void start() {
    boost::system::error_code ec;
    const auto remote = socket_.remote_endpoint(ec);
    if (ec) return;  // gone already
    remote_ = remote.address();
    trusted_ = options_->trusted.contains(remote_);
    deadline_.expires_after(options_->header_timeout);
    deadline_.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
      if (!wait_ec && !self->done_) self->refuse("nothing came in time");
    });
    wait();
  }

 private:
  void wait() {
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
      if (self->done_) return;
      if (ec) return self->close();
      self->look();
    });
  }

  void look() {
    const ssize_t n = ::recv(socket_.native_handle(), bytes_.data(), bytes_.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return close();  // the peer closed
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? wait() : close();
    const auto p = parse_proxy_header(std::string_view(bytes_.data(), static_cast<std::size_t>(n)));
    switch (p.result) {
      case verdict::absent:
        if (trusted_) return refuse("a trusted source sent no PROXY header");
        return deliver(std::nullopt);
      case verdict::invalid:
        return refuse(p.error);
      case verdict::incomplete:
        if (static_cast<std::size_t>(n) == bytes_.size()) return refuse("a PROXY header too long");
        return pause_and_look();
      case verdict::complete:
        if (!trusted_) return refuse("a PROXY header from a source not trusted to send one");
        // Exactly the header's bytes, which are there: the peek saw them.
        if (::recv(socket_.native_handle(), bytes_.data(), p.length, MSG_DONTWAIT) != static_cast<ssize_t>(p.length))
          return close();
        counters_->headers.fetch_add(1, std::memory_order_relaxed);
        return deliver(p.source);
    }
  }

  void pause_and_look() {
    pause_length_ = std::min(pause_length_ * 2, longest_pause);
    pause_.expires_after(pause_length_);
    pause_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->done_) self->look();
    });
  }

  void deliver(std::optional<proxy_source> source) {
    finish();
    then_(std::move(socket_), std::move(source));
  }

  void refuse(std::string_view why) {
    counters_->refused.fetch_add(1, std::memory_order_relaxed);
    log::app().debug("connection from {} closed: {}", address_text(remote_), why);
    close();
  }

  void close() {
    finish();
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  void finish() {
    done_ = true;
    deadline_.cancel();
    pause_.cancel();
  }

  tcp::socket socket_;
  asio::steady_timer deadline_;
  asio::steady_timer pause_;
  std::shared_ptr<const proxy_options> options_;
  std::shared_ptr<proxy_counters> counters_;
  std::function<void(tcp::socket, std::optional<proxy_source>)> then_;
  asio::ip::address remote_;
  bool trusted_ = false;
  bool done_ = false;
  std::chrono::milliseconds pause_length_{1};
  std::array<char, max_proxy_header_bytes> bytes_{};
};

}  // namespace

std::shared_ptr<const proxy_options> proxy_options_from(const std::optional<config::proxy_protocol_config>& cfg) {
  if (!cfg) return nullptr;
  auto o = std::make_shared<proxy_options>();
  for (const auto& network : cfg->trusted) {
    // The config parser accepted each one already.
    if (!o->trusted.add(network)) throw std::invalid_argument("proxy_protocol.trusted: '" + network + "' is not a network");
  }
  o->header_timeout = std::chrono::milliseconds(cfg->header_timeout_ms);
  return o;
}

void accept_proxied(tcp::socket socket, std::shared_ptr<const proxy_options> options,
                    std::shared_ptr<proxy_counters> counters,
                    std::function<void(tcp::socket, std::optional<proxy_source>)> then) {
  std::make_shared<proxy_read>(std::move(socket), std::move(options), std::move(counters), std::move(then))->start();
}

}  // namespace wharf::net
