"""Network namespaces for a cluster under faults: one namespace per node and one for the
clients, every pair of nodes joined by its own veth link, and each node joined to the
clients by another. Taking a node-to-node link down partitions those two nodes while the
clients still reach both (so a deposed leader stays reachable, which is the case that
matters); taking a client link down hides a node from the clients only.

Every namespace holds one address from 198.18.0.0/15 (RFC 2544's benchmarking range, never
routed) on its loopback device: node i is 198.18.1.i, the clients are 198.18.1.100. Each
namespace has a /32 route per other namespace through the direct link, and no forwarding,
so a link that is down is a real cut: no traffic goes around it through a third node.

Needs root (ip netns, ip link). Nothing is created outside the namespaces it names: their
names carry this process's id, and close() deletes them with everything in them."""

import itertools
import os
import subprocess

CLIENT_ADDRESS = "198.18.1.100"


def node_address(i):
    return "198.18.1.%d" % i


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Topology:
    """`tag` given: the namespaces another process built with that tag (its `tag`), used
    but not owned (close() leaves them)."""

    def __init__(self, size, tag=None):
        self.tag = tag or "wh%d" % os.getpid()
        self.size = size
        self.node_ns = {i: "%sn%d" % (self.tag, i) for i in range(1, size + 1)}
        self.client_ns = "%sc" % self.tag
        self.created = []
        if tag:
            return
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # Interface names are per namespace: "n2" in node 1's namespace is its link to node 2,
    # "c" its link to the clients; in the clients' namespace "n1" is the link to node 1.
    def _build(self):
        everyone = [(self.node_ns[i], node_address(i)) for i in self.node_ns] + [(self.client_ns, CLIENT_ADDRESS)]
        for ns, address in everyone:
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", address + "/32", "dev", "lo")
            # Loose reverse-path checks would drop replies that come in on the link but are
            # addressed to the loopback address.
            for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"):
                subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", key + "=0"], check=True)
        for a, b in itertools.combinations(sorted(self.node_ns), 2):
            self._link(self.node_ns[a], "n%d" % b, node_address(a), self.node_ns[b], "n%d" % a, node_address(b))
        for i, ns in self.node_ns.items():
            self._link(ns, "c", node_address(i), self.client_ns, "n%d" % i, CLIENT_ADDRESS)

    @staticmethod
    def _link(ns_a, if_a, addr_a, ns_b, if_b, addr_b):
        ip("link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        for ns, ifname, own, other in ((ns_a, if_a, addr_a, addr_b), (ns_b, if_b, addr_b, addr_a)):
            ip("-n", ns, "link", "set", ifname, "up")
            ip("-n", ns, "route", "add", other + "/32", "dev", ifname, "src", own)

    # ---- faults
    def set_link(self, a, b, up):
        """The link between nodes a and b (1-based), both ends."""
        state = "up" if up else "down"
        ip("-n", self.node_ns[a], "link", "set", "n%d" % b, state)
        ip("-n", self.node_ns[b], "link", "set", "n%d" % a, state)
        if up:  # a device brought back up has lost its routes
            for x, y in ((a, b), (b, a)):
                ip("-n", self.node_ns[x], "route", "replace", node_address(y) + "/32", "dev", "n%d" % y,
                   "src", node_address(x))

    def isolate(self, node):
        """Cuts `node` from every other node; the clients still reach it."""
        for other in self.node_ns:
            if other != node:
                self.set_link(node, other, False)

    def heal(self):
        for a, b in itertools.combinations(sorted(self.node_ns), 2):
            self.set_link(a, b, True)

    def exec_in(self, node):
        """The command prefix that runs a program in `node`'s namespace (0: the clients')."""
        return ["ip", "netns", "exec", self.node_ns[node] if node else self.client_ns]

    def close(self):
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created = []
