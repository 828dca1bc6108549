// The TCP links between the members of a group. Each member keeps one outgoing connection
// to each peer and sends everything for that peer on it, in order (libraft relies on a link
// not reordering); what a peer sends arrives on the connection the peer opened. A
// connection starts with a hello frame naming the sender and the cluster (after a TLS
// handshake, with mutual TLS); frames after it are handed to the owner with the sender's id. A connection that breaks loses what was
// queued on it (Raft sends again) and is made again, backing off to once a second.
//
// Threading: one io_context (the queue service's): every method and every callback runs on
// its thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/replication/replica.h"
#include "core/replication/wire.h"

namespace wharf::core::replication {

struct peer_links_options {
  std::uint64_t self_id = 0;
  std::string cluster;  // a name both sides must share (a link to another cluster is refused)
  std::string bind;     // where peers connect to this member ("host:port")
  std::vector<server> peers;  // the other members
  // Bytes queued for one peer at most; frames beyond are dropped (counted), as a broken
  // link would lose them. Default: 64 MiB.
  std::size_t max_queued_bytes = 64u << 20;
  // Mutual TLS, both or neither: connections this member accepts go through tls_server
  // (its certificate; the peer must present one it verifies), those it opens through
  // tls_client (the peer's certificate verified; its own presented). Null: plain TCP.
  std::shared_ptr<boost::asio::ssl::context> tls_server;
  std::shared_ptr<boost::asio::ssl::context> tls_client;
};

struct peer_link_stats {
  std::uint64_t id = 0;
  std::string address;
  bool connected = false;
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t frames_dropped = 0;  // queue full, or lost with a broken connection
  std::uint64_t connects = 0;
};

class peer_links {
 public:
  using frame_handler = std::function<void(std::uint64_t from, const frame& f)>;

  // Listens on options.bind at once. Throws std::system_error when it cannot.
  peer_links(boost::asio::io_context& io, peer_links_options options, frame_handler on_frame);
  ~peer_links();
  peer_links(const peer_links&) = delete;
  peer_links& operator=(const peer_links&) = delete;

  // Queues a frame for peer `to`; connects first if needed. Unknown peers are ignored.
  void send(std::uint64_t to, frame_kind kind, std::uint32_t group, std::string_view body);
  // Makes `s` a peer (a member added), or forgets one (removed).
  void set_peer(const server& s);
  void remove_peer(std::uint64_t id);
  // Closes every connection and the listener.
  void stop();

  [[nodiscard]] std::vector<peer_link_stats> stats() const;
  // TLS handshakes that failed, both ways (a peer without a certificate the CA signed, or
  // one that is not TLS at all). Thread-safe.
  [[nodiscard]] std::uint64_t tls_refused() const;
  [[nodiscard]] std::uint16_t port() const;  // the listener's (bind port 0: the one chosen)

 private:
  struct outgoing;
  struct incoming;
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace wharf::core::replication
