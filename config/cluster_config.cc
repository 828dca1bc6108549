// Reading of the `cluster:` section: this node, its peer listener, the initial voters and
// the timing of elections and relayed requests.
#include "config/cluster_config.h"

#include <fmt/format.h>

#include <limits>
#include <set>

namespace wharf::config::detail {
namespace {

// "host:port" with a port in 1..65535 (the peer links' form, as the listeners').
bool is_host_port(std::string_view address) {
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == address.size()) return false;
  const auto port = address.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return false;
  const unsigned long p = std::stoul(std::string(port));
  return p >= 1 && p <= 65535;
}

}  // namespace

void read_cluster(const entry& e, cluster_config& out, diagnostics& diag, const file_reader& read_file) {
  if (!e.value.IsMap()) {
    diag.add(value_mark(e), "cluster: expected a map with node_id, bind and peers");
    return;
  }
  out.source_location = fmt::format("{}:{}:{}", diag.file(), e.key.Mark().line + 1, e.key.Mark().column + 1);
  map_reader m(e.value, "cluster", diag);
  constexpr std::uint64_t max_id = std::numeric_limits<std::int64_t>::max();
  const auto node = m.find("node_id");
  if (node) {
    if (auto v = read_uint(*node, 1, max_id, diag)) out.node_id = *v;
  } else {
    diag.add(e.value.Mark(), "cluster: missing required field 'node_id'");
  }
  const auto bind = m.find("bind");
  if (bind) {
    if (auto v = read_non_empty_string(*bind, diag)) {
      if (is_host_port(*v)) {
        out.bind = std::move(*v);
      } else {
        diag.add(value_mark(*bind), fmt::format("cluster.bind: '{}' is not host:port", *v));
      }
    }
  } else {
    diag.add(e.value.Mark(), "cluster: missing required field 'bind'");
  }
  if (auto v = m.find("name")) {
    if (auto text = read_non_empty_string(*v, diag)) out.name = std::move(*text);
  }
  read_uint_into(m, "election_timeout_ms", out.election_timeout_ms, 100, 60000, diag);
  const auto heartbeat = m.find("heartbeat_timeout_ms");
  if (heartbeat) {
    if (auto v = read_uint(*heartbeat, 10, 10000, diag)) {
      if (*v >= out.election_timeout_ms) {
        diag.add(value_mark(*heartbeat),
                 fmt::format("cluster.heartbeat_timeout_ms: {} must be below election_timeout_ms ({})", *v,
                             out.election_timeout_ms));
      } else {
        out.heartbeat_timeout_ms = static_cast<std::uint32_t>(*v);
      }
    }
  }
  const auto join = m.find("join");
  if (join) {
    if (auto v = read_bool(*join, diag)) out.join = *v;
  }
  if (auto t = m.find("tls")) {
    // Mutual: every node presents its certificate and checks the other's against ca_file,
    // both ways, so all three files are required.
    if (!t->value.IsMap()) {
      diag.add(value_mark(*t), "cluster.tls: expected a map with cert_file, key_file and ca_file");
    } else {
      map_reader files(t->value, t->path, diag);
      tls_config tls;
      tls.require_client_cert = true;
      auto cert = read_file(files, "cert_file", true);
      auto key = read_file(files, "key_file", true);
      auto ca = read_file(files, "ca_file", true);
      files.finish();
      if (cert && key && ca) {
        tls.cert_file = std::move(*cert);
        tls.key_file = std::move(*key);
        tls.ca_file = std::move(*ca);
        out.tls = std::move(tls);
      }
    }
  }
  read_uint_into(m, "leader_wait_ms", out.leader_wait_ms, 0, 60000, diag);
  read_uint_into(m, "forward_timeout_ms", out.forward_timeout_ms, 1000, 600000, diag);
  const auto peers = m.find("peers");
  if (!peers) {
    diag.add(e.value.Mark(), "cluster: missing required field 'peers' (the initial voters, this node among them)");
  } else {
    std::set<std::uint64_t> ids;
    read_map_list(*peers, "id and address", diag, [&](map_reader& p, const std::string&) {
      cluster_peer peer;
      if (auto id = p.find("id")) {
        if (auto v = read_uint(*id, 1, max_id, diag)) {
          peer.id = *v;
          if (!ids.insert(*v).second) diag.add(value_mark(*id), fmt::format("{}.id: {} is given twice", p.path(), *v));
        }
      } else {
        diag.add(p.node().Mark(), fmt::format("{}: missing required field 'id'", p.path()));
      }
      if (auto address = p.find("address")) {
        if (auto v = read_non_empty_string(*address, diag)) {
          if (is_host_port(*v)) {
            peer.address = std::move(*v);
          } else {
            diag.add(value_mark(*address), fmt::format("{}.address: '{}' is not host:port", p.path(), *v));
          }
        }
      } else {
        diag.add(p.node().Mark(), fmt::format("{}: missing required field 'address'", p.path()));
      }
      p.finish();
      if (peer.id != 0 && !peer.address.empty()) out.peers.push_back(std::move(peer));
    });
    if (out.node_id != 0 && !ids.empty() && !out.join && !ids.contains(out.node_id))
      diag.add(value_mark(*peers), fmt::format("cluster.peers: node_id {} is not one of the peers (a node added "
                                               "later says join: true)", out.node_id));
    if (out.node_id != 0 && out.join && ids.contains(out.node_id))
      diag.add(value_mark(*join), fmt::format("cluster.join: node {} is one of the peers, the initial voters; a "
                                              "joining node is not", out.node_id));
  }
  m.finish();
}

}  // namespace wharf::config::detail
