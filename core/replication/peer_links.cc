#include "core/replication/peer_links.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <system_error>

#include <fmt/format.h>

#include "core/log.h"

namespace wharf::core::replication {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr auto first_retry = std::chrono::milliseconds(100);
constexpr auto last_retry = std::chrono::milliseconds(1000);
constexpr std::size_t read_chunk = 64 * 1024;
// A connection that has not said who it is (TLS handshake and hello) by then is closed.
constexpr auto hello_deadline = std::chrono::seconds(10);

// "host:port" or "[v6]:port" into its parts; nullopt when it is neither.
std::optional<std::pair<std::string, std::string>> split_address(std::string_view address) {
  if (address.starts_with('[')) {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':') return std::nullopt;
    return std::make_pair(std::string(address.substr(1, close - 1)), std::string(address.substr(close + 2)));
  }
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) return std::nullopt;
  return std::make_pair(std::string(address.substr(0, colon)), std::string(address.substr(colon + 1)));
}

// A peer connection's bytes: on the TCP socket itself, or through TLS over it once
// start_tls() was called (mutual TLS: peer_links_options).
class link_stream {
 public:
  explicit link_stream(tcp::socket s) : socket_(std::move(s)) {}
  explicit link_stream(asio::io_context& io) : socket_(io) {}

  [[nodiscard]] tcp::socket& socket() { return tls_ ? tls_->next_layer() : socket_; }
  void start_tls(asio::ssl::context& context) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(socket_), context);
  }
  // After a close: a fresh socket for the next connection, without TLS until start_tls().
  void reset(asio::io_context& io) {
    tls_.reset();
    socket_ = tcp::socket(io);
  }
  void close() {
    boost::system::error_code ignored;
    socket().close(ignored);
  }

  template <class Handler>
  void async_handshake(asio::ssl::stream_base::handshake_type type, Handler&& handler) {
    tls_->async_handshake(type, std::forward<Handler>(handler));
  }
  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Handler>(handler));
    socket_.async_read_some(buffers, std::forward<Handler>(handler));
  }
  template <class Buffers, class Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    if (tls_) return asio::async_write(*tls_, buffers, std::forward<Handler>(handler));
    asio::async_write(socket_, buffers, std::forward<Handler>(handler));
  }

 private:
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
};

}  // namespace

// The connection this member opened to a peer: frames for that peer go out on it.
struct peer_links::outgoing : std::enable_shared_from_this<outgoing> {
  outgoing(asio::io_context& io, server peer) : stream(io), resolver(io), retry(io), who(std::move(peer)) {}
  link_stream stream;
  tcp::resolver resolver;
  asio::steady_timer retry;
  server who;
  std::deque<std::string> queue;  // whole frames; the front is being written while `writing`
  std::size_t queued_bytes = 0;
  bool connected = false;
  bool connecting = false;
  bool writing = false;
  bool closed = false;
  std::chrono::milliseconds backoff = first_retry;
  peer_link_stats stats;
};

// A connection a peer opened: its frames come in on it.
struct peer_links::incoming : std::enable_shared_from_this<incoming> {
  explicit incoming(tcp::socket s) : stream(std::move(s)), deadline(stream.socket().get_executor()) {}
  link_stream stream;
  asio::steady_timer deadline;  // for its hello
  std::string buffer;
  std::uint64_t from = 0;  // 0 until its hello
};

struct peer_links::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& io_in, peer_links_options options_in, frame_handler handler)
      : io(io_in), acceptor(io_in), options(std::move(options_in)), on_frame(std::move(handler)) {
    hello_frame.clear();
    append_frame(hello_frame, frame_kind::hello, 0, encode_hello({options.self_id, options.cluster}));
  }

  void listen() {
    const auto parts = split_address(options.bind);
    if (!parts) throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                        fmt::format("cluster.bind \"{}\": expected host:port", options.bind));
    tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(parts->first, parts->second, tcp::resolver::passive);
    const tcp::endpoint endpoint = *endpoints.begin();
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    boost::system::error_code ec;
    acceptor.bind(endpoint, ec);
    if (ec)
      throw std::system_error(ec, fmt::format("cluster.bind \"{}\": cannot listen there", options.bind));
    acceptor.listen();
    accept();
  }

  void accept() {
    acceptor.async_accept([self = shared_from_this()](boost::system::error_code ec, tcp::socket s) {
      if (self->stopped) return;
      if (!ec) {
        boost::system::error_code ignored;
        s.set_option(tcp::no_delay(true), ignored);
        auto in = std::make_shared<incoming>(std::move(s));
        self->inbound.push_back(in);
        in->deadline.expires_after(hello_deadline);
        in->deadline.async_wait([self, in](boost::system::error_code wait_ec) {
          if (wait_ec || self->stopped || in->from != 0) return;
          log::queue().warn("cluster: a peer link said nothing in {} s; closed", hello_deadline.count());
          self->drop(in);
        });
        if (self->options.tls_server) {
          in->stream.start_tls(*self->options.tls_server);
          in->stream.async_handshake(asio::ssl::stream_base::server, [self, in](boost::system::error_code hs) {
            if (self->stopped) return;
            if (hs) {
              ++self->tls_refused;
              log::queue().warn("cluster: a peer link failed the TLS handshake ({}); closed", hs.message());
              return self->drop(in);
            }
            self->read(in);
          });
        } else {
          self->read(in);
        }
      }
      self->accept();
    });
  }

  void read(const std::shared_ptr<incoming>& in) {
    const auto old = in->buffer.size();
    in->buffer.resize(old + read_chunk);
    in->stream.async_read_some(
        asio::buffer(in->buffer.data() + old, read_chunk),
        [self = shared_from_this(), in, old](boost::system::error_code ec, std::size_t n) {
          in->buffer.resize(old + n);
          if (ec || self->stopped) return self->drop(in);
          std::size_t used = 0;
          while (true) {
            const auto split = split_frame(std::string_view(in->buffer).substr(used));
            if (split.bad) {
              log::queue().warn("cluster: a peer link sent what is not a frame; closed");
              return self->drop(in);
            }
            if (!split.got) break;
            used += split.consumed;
            if (!self->take(in, *split.got)) return self->drop(in);
          }
          in->buffer.erase(0, used);
          self->read(in);
        });
  }

  // One frame of an incoming connection; false closes it.
  bool take(const std::shared_ptr<incoming>& in, const frame& f) {
    if (in->from == 0) {
      const auto h = f.kind == frame_kind::hello ? decode_hello(f.body) : std::nullopt;
      if (!h || h->cluster != options.cluster || h->node_id == options.self_id) {
        log::queue().warn("cluster: a peer link that does not start with this cluster's hello was refused");
        return false;
      }
      in->from = h->node_id;
      return true;
    }
    if (auto it = links.find(in->from); it != links.end()) ++it->second->stats.frames_received;
    on_frame(in->from, f);
    return !stopped;
  }

  void drop(const std::shared_ptr<incoming>& in) {
    in->stream.close();
    in->deadline.cancel();
    std::erase(inbound, in);
  }

  std::shared_ptr<outgoing> link_to(const server& peer) {
    auto& l = links[peer.id];
    if (!l) {
      l = std::make_shared<outgoing>(io, peer);
      l->stats.id = peer.id;
      l->stats.address = peer.address;
    }
    return l;
  }

  void send(std::uint64_t to, frame_kind kind, std::uint32_t group, std::string_view body) {
    const auto it = links.find(to);
    if (stopped || it == links.end()) return;
    auto& l = it->second;
    if (l->queued_bytes + frame_header_bytes + body.size() > options.max_queued_bytes) {
      ++l->stats.frames_dropped;
      return;
    }
    std::string f;
    append_frame(f, kind, group, body);
    l->queued_bytes += f.size();
    l->queue.push_back(std::move(f));
    if (l->connected) {
      write(l);
    } else if (!l->connecting) {
      connect(l);
    }
  }

  void connect(const std::shared_ptr<outgoing>& l) {
    const auto parts = split_address(l->who.address);
    if (!parts || l->closed) return;
    l->connecting = true;
    l->resolver.async_resolve(
        parts->first, parts->second,
        [self = shared_from_this(), l](boost::system::error_code ec, tcp::resolver::results_type results) {
          if (self->stopped || l->closed) return;
          if (ec) return self->broken(l);
          asio::async_connect(l->stream.socket(), results, [self, l](boost::system::error_code ec2, const tcp::endpoint&) {
            if (self->stopped || l->closed) return;
            if (ec2) return self->broken(l);
            boost::system::error_code ignored;
            l->stream.socket().set_option(tcp::no_delay(true), ignored);
            if (!self->options.tls_client) return self->linked(l);
            l->stream.start_tls(*self->options.tls_client);
            l->stream.async_handshake(asio::ssl::stream_base::client, [self, l](boost::system::error_code hs) {
              if (self->stopped || l->closed) return;
              if (hs) {
                ++self->tls_refused;
                log::queue().warn("cluster: the link to member {} at {} failed the TLS handshake ({})", l->who.id,
                                  l->who.address, hs.message());
                return self->broken(l);
              }
              self->linked(l);
            });
          });
        });
  }

  // Connected (and through the TLS handshake): the hello goes first, then what waits.
  void linked(const std::shared_ptr<outgoing>& l) {
    l->connected = true;
    l->connecting = false;
    l->backoff = first_retry;
    ++l->stats.connects;
    l->queue.push_front(hello_frame);
    l->queued_bytes += hello_frame.size();
    write(l);
  }

  void write(const std::shared_ptr<outgoing>& l) {
    if (l->writing || l->queue.empty()) return;
    l->writing = true;
    l->stream.async_write(asio::buffer(l->queue.front()),
                      [self = shared_from_this(), l](boost::system::error_code ec, std::size_t) {
                        l->writing = false;
                        if (self->stopped || l->closed) return;
                        if (ec) return self->broken(l);
                        l->queued_bytes -= l->queue.front().size();
                        l->queue.pop_front();
                        ++l->stats.frames_sent;
                        self->write(l);
                      });
  }

  // The connection broke (or never came): what was queued is lost; try again later.
  void broken(const std::shared_ptr<outgoing>& l) {
    l->stream.close();
    l->stream.reset(io);
    l->stats.frames_dropped += l->queue.size();
    l->queue.clear();
    l->queued_bytes = 0;
    l->connected = false;
    l->connecting = true;  // until the retry: sends queue up meanwhile
    l->retry.expires_after(l->backoff);
    l->backoff = std::min(l->backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(last_retry));
    l->retry.async_wait([self = shared_from_this(), l](boost::system::error_code ec) {
      if (ec || self->stopped || l->closed) return;
      l->connecting = false;
      if (!l->queue.empty()) self->connect(l);
    });
  }

  void close(const std::shared_ptr<outgoing>& l) {
    l->closed = true;
    l->retry.cancel();
    l->resolver.cancel();
    l->stream.close();
  }

  void stop() {
    stopped = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (auto& [id, l] : links) close(l);
    for (auto& in : inbound) {
      in->stream.close();
      in->deadline.cancel();
    }
    inbound.clear();
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  peer_links_options options;
  frame_handler on_frame;
  std::string hello_frame;
  std::map<std::uint64_t, std::shared_ptr<outgoing>> links;
  std::vector<std::shared_ptr<incoming>> inbound;
  std::atomic<std::uint64_t> tls_refused{0};  // TLS handshakes that failed, both ways
  bool stopped = false;
};

peer_links::peer_links(asio::io_context& io, peer_links_options options, frame_handler on_frame)
    : impl_(std::make_shared<impl>(io, std::move(options), std::move(on_frame))) {
  for (const auto& p : impl_->options.peers) impl_->link_to(p);
  impl_->listen();
}

peer_links::~peer_links() { impl_->stop(); }

void peer_links::send(std::uint64_t to, frame_kind kind, std::uint32_t group, std::string_view body) {
  impl_->send(to, kind, group, body);
}

void peer_links::set_peer(const server& s) {
  auto l = impl_->link_to(s);
  if (l->who.address != s.address) {
    impl_->close(l);
    impl_->links.erase(s.id);
    impl_->link_to(s);
  }
}

void peer_links::remove_peer(std::uint64_t id) {
  if (auto it = impl_->links.find(id); it != impl_->links.end()) {
    impl_->close(it->second);
    impl_->links.erase(it);
  }
}

void peer_links::stop() { impl_->stop(); }

std::vector<peer_link_stats> peer_links::stats() const {
  std::vector<peer_link_stats> out;
  for (const auto& [id, l] : impl_->links) {
    auto s = l->stats;
    s.connected = l->connected;
    out.push_back(std::move(s));
  }
  return out;
}

std::uint64_t peer_links::tls_refused() const { return impl_->tls_refused.load(std::memory_order_relaxed); }

std::uint16_t peer_links::port() const {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

}  // namespace wharf::core::replication
