#include "net/acceptor.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fmt/format.h>

#include <atomic>
#include <charconv>
#include <string>
#include <sys/socket.h>
#include <system_error>
#include <vector>

#include "core/log.h"

namespace wharf::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace detail {

// What the acceptors of one group share. Lives as long as the longest-living acceptor.
struct acceptor_group_state {
  std::string bind;
  acceptor_options options;
  socket_callback on_socket;
  std::atomic<bool> stopped{false};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> accept_pauses{0};
  std::atomic<std::uint64_t> accept_errors{0};
  // Per acceptor (index = pool thread): closes it. Filled by start_acceptors, then constant.
  std::vector<std::function<void()>> stoppers;
};

}  // namespace detail

namespace {

// SO_REUSEPORT as an Asio socket option (Asio has none of its own).
class reuse_port {
 public:
  explicit reuse_port(bool on) : value_(on ? 1 : 0) {}
  template <class Protocol>
  int level(const Protocol&) const { return SOL_SOCKET; }
  template <class Protocol>
  int name(const Protocol&) const { return SO_REUSEPORT; }
  template <class Protocol>
  const void* data(const Protocol&) const { return &value_; }
  template <class Protocol>
  std::size_t size(const Protocol&) const { return sizeof(value_); }

 private:
  int value_;
};

[[noreturn]] void throw_bind_error(std::string_view bind, std::string_view what, boost::system::error_code ec = {}) {
  if (!ec) ec = asio::error::invalid_argument;
  throw std::system_error(ec, fmt::format("listener bind \"{}\": {}", bind, what));
}

bool is_resource_exhaustion(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors ||                                     // EMFILE
         ec == boost::system::errc::too_many_files_open_in_system ||             // ENFILE
         ec == asio::error::no_buffer_space || ec == asio::error::no_memory;     // ENOBUFS, ENOMEM
}

// One acceptor on one pool thread. Owned by its pending accept / pause timer.
class acceptor_slot : public std::enable_shared_from_this<acceptor_slot> {
 public:
  acceptor_slot(asio::io_context& ctx, std::shared_ptr<detail::acceptor_group_state> state)
      : acceptor_(ctx), pause_timer_(ctx), state_(std::move(state)) {}

  tcp::acceptor& acceptor() noexcept { return acceptor_; }

  void accept_next() {
    if (!acceptor_.is_open()) return;
    acceptor_.async_accept(
        [self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
          self->on_accept(ec, std::move(socket));
        });
  }

  void close() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    pause_timer_.cancel();
  }

 private:
  void on_accept(const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      if (is_resource_exhaustion(ec)) {
        state_->accept_pauses.fetch_add(1, std::memory_order_relaxed);
        if (!paused_) log::mqtt().warn("listener {}: accept: {}; pausing accepts", state_->bind, ec.message());
        paused_ = true;
        pause(state_->options.accept_pause);
        return;
      }
      state_->accept_errors.fetch_add(1, std::memory_order_relaxed);
      if (ec == asio::error::connection_aborted) {
        accept_next();  // the peer gave up while queued: harmless
      } else {
        // Unknown trouble: do not spin on it.
        log::mqtt().warn("listener {}: accept: {}", state_->bind, ec.message());
        pause(state_->options.accept_pause);
      }
      return;
    }
    paused_ = false;
    state_->accepted.fetch_add(1, std::memory_order_relaxed);
    accept_next();
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // writers coalesce their output themselves
    state_->on_socket(std::move(socket));
  }

  void pause(std::chrono::milliseconds duration) {
    pause_timer_.expires_after(duration);
    pause_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->accept_next();
    });
  }

  tcp::acceptor acceptor_;
  asio::steady_timer pause_timer_;
  std::shared_ptr<detail::acceptor_group_state> state_;
  bool paused_ = false;
};

// A socket bound without SO_REUSEPORT conflicts with any socket listening on the address,
// whatever that one's options: its bind fails with EADDRINUSE exactly when the address is
// taken. SO_REUSEADDR keeps the connections a previous run left in TIME_WAIT from counting.
boost::system::error_code check_nobody_listens(asio::io_context& io, const tcp::endpoint& endpoint) {
  tcp::acceptor probe(io);
  boost::system::error_code ec;
  probe.open(endpoint.protocol(), ec);
  if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) probe.bind(endpoint, ec);
  return ec;
}

[[noreturn]] void throw_listen_error(std::string_view bind, boost::system::error_code ec) {
  if (ec == asio::error::address_in_use) {
    throw_bind_error(bind, "cannot listen there, another program holds the address (`ss -ltnp` names it)", ec);
  } else if (ec == asio::error::access_denied) {
    throw_bind_error(bind, "cannot listen there, ports below 1024 need root or CAP_NET_BIND_SERVICE", ec);
  }
  throw_bind_error(bind, "cannot listen there", ec);
}

}  // namespace

tcp::endpoint parse_bind(std::string_view bind) {
  std::string_view host;
  std::string_view port_text;
  if (!bind.empty() && bind.front() == '[') {
    auto close = bind.find(']');
    if (close == std::string_view::npos || close + 1 >= bind.size() || bind[close + 1] != ':') {
      throw_bind_error(bind, "expected \"[v6-address]:port\"");
    }
    host = bind.substr(1, close - 1);
    port_text = bind.substr(close + 2);
  } else {
    auto colon = bind.rfind(':');
    if (colon == std::string_view::npos) throw_bind_error(bind, "expected \"host:port\"");
    host = bind.substr(0, colon);
    port_text = bind.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) throw_bind_error(bind, "IPv6 addresses go in brackets: \"[::1]:1883\"");
  }
  unsigned port = 0;
  auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || err != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
    throw_bind_error(bind, "port must be a number 0..65535");
  }
  if (host.empty() || host == "*") return {asio::ip::address_v4::any(), static_cast<std::uint16_t>(port)};

  boost::system::error_code ec;
  auto address = asio::ip::make_address(std::string(host), ec);
  if (!ec) return {address, static_cast<std::uint16_t>(port)};
  // A host name: resolve once, at startup.
  asio::io_context ctx;
  tcp::resolver resolver(ctx);
  auto results = resolver.resolve(std::string(host), std::string(port_text), tcp::resolver::passive, ec);
  if (ec || results.empty()) throw_bind_error(bind, "cannot resolve host", ec);
  return results.begin()->endpoint();
}

std::string address_text(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
  }
  return address.to_string();
}

acceptor_stats acceptor_group::stats() const noexcept {
  acceptor_stats s;
  if (!state_) return s;
  s.accepted = state_->accepted.load(std::memory_order_relaxed);
  s.accept_pauses = state_->accept_pauses.load(std::memory_order_relaxed);
  s.accept_errors = state_->accept_errors.load(std::memory_order_relaxed);
  return s;
}

void acceptor_group::stop() {
  if (!state_ || state_->stopped.exchange(true)) return;
  for (auto& stop_one : state_->stoppers) stop_one();
}

acceptor_group start_acceptors(io_pool& pool, std::string_view bind, acceptor_options options,
                               socket_callback on_socket) {
  auto endpoint = parse_bind(bind);
  if (endpoint.port() != 0 && !options.takes_over_own_listener) {
    if (auto ec = check_nobody_listens(pool.context(0), endpoint)) throw_listen_error(bind, ec);
  }
  auto state = std::make_shared<detail::acceptor_group_state>();
  state->bind = std::string(bind);
  state->options = options;
  state->on_socket = std::move(on_socket);

  std::vector<std::shared_ptr<acceptor_slot>> slots;
  for (std::size_t i = 0; i < pool.size(); ++i) {
    auto slot = std::make_shared<acceptor_slot>(pool.context(i), state);
    auto& acceptor = slot->acceptor();
    boost::system::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.set_option(reuse_port(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(options.backlog, ec);
    if (ec) throw_listen_error(bind, ec);
    // Port 0: the first acceptor gets a port from the kernel; the others share it.
    if (i == 0 && endpoint.port() == 0) endpoint.port(acceptor.local_endpoint().port());
    slots.push_back(std::move(slot));
  }

  for (std::size_t i = 0; i < slots.size(); ++i) {
    auto executor = pool.context(i).get_executor();
    state->stoppers.push_back([executor, weak = std::weak_ptr<acceptor_slot>(slots[i])] {
      asio::post(executor, [weak] {
        if (auto slot = weak.lock()) slot->close();
      });
    });
    // The first accept is started on the slot's own thread: an acceptor is only ever
    // touched by the thread that owns it.
    asio::post(executor, [slot = slots[i]] { slot->accept_next(); });
  }

  acceptor_group group;
  group.state_ = std::move(state);
  group.port_ = endpoint.port();
  return group;
}

}  // namespace wharf::net
