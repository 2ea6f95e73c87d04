"""The kernel as a segmentation oracle: VXLAN software GSO in namespaces we make.

Recipe from ../shared/lab/gso_vxlan_lab.sh (REPORT.md §2)::

    ns A                         ns R (bridge br0)                 ns B
    vx0 172.16.0.1 (vxlan 42)    ra ---- br0 ---- rb               vx0 172.16.0.2
    va 10.77.0.1  <--veth-->     ra: offloads on, rb: ALL off      vb 10.77.0.2

TCP in A builds GSO super-packets; vxlan encapsulates them whole
(SKB_GSO_UDP_TUNNEL[_CSUM]); the bridge forwards them whole; the kernel
segments them in software when it transmits on rb (no tx-udp_tnl-segmentation,
no checksum offload), so one transfer gives the super-packets (tcpdump on A:va)
and the kernel's segments of the same bytes (tcpdump on B:vb).

Namespaces are named after this process id so parallel runs never collide,
and are deleted on exit.  Only the processes started here are stopped.
"""

import os
import signal
import struct
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Tuple

from scapy.utils import RawPcapReader

SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    n += len(b)
print("received", n, flush=True)
"""

CLIENT = r"""
import socket, sys
n = int(sys.argv[2])
s = socket.create_connection((sys.argv[1], 5001))
s.sendall(bytes((i * 7 + 3) & 0xff for i in range(n)))
s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
"""

UDP_GSO_CLIENT = r"""
import socket, sys
dst, gso, sizes = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")]
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_UDP, 103, gso)          # UDP_SEGMENT: the kernel builds UDP GSO skbs
for n in sizes:
    s.sendto(bytes((i * 11 + n) & 0xff for i in range(n)), (dst, 5002))
"""

#: the MTU of the underlay veths; vx0 gets 1450 (VXLAN over IPv4 takes 50, over IPv6 70)
UNDERLAY_MTU = 1500

#: addresses per family: (A's, B's, prefix length)
UNDERLAY = {4: ("10.77.0.1", "10.77.0.2", 24), 6: ("fd77::1", "fd77::2", 64)}
OVERLAY = {4: ("172.16.0.1", "172.16.0.2", 24), 6: ("fd16::1", "fd16::2", 64)}


#: our namespaces are NS_PREFIX + pid + a|r|b
NS_PREFIX = "sgkgso"


def remove_stale_namespaces() -> None:
    """Delete namespaces a killed earlier run of this lab left behind (its pid is gone)."""
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    for line in res.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(NS_PREFIX) or name[-1:] not in ("a", "r", "b"):
            continue
        pid = name[len(NS_PREFIX) : -1]
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists("/proc/%s" % pid):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _run(*cmd: str) -> str:
    res = subprocess.run(list(cmd), capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), res.stderr.strip()))
    return res.stdout


class VxlanGsoLab:
    """Three namespaces; :meth:`transfer` returns (super-packets, segments) pcaps."""

    def __init__(self, workdir: Path, csum: str, outer: int = 4, inner: int = 4, gro: bool = False) -> None:
        assert csum in ("udpcsum", "noudpcsum") and outer in (4, 6) and inner in (4, 6)
        self.outer, self.inner = outer, inner
        self.gro = gro
        tag = "%s%d" % (NS_PREFIX, os.getpid())
        self.na, self.nr, self.nb = tag + "a", tag + "r", tag + "b"
        self.workdir = workdir
        self.csum = csum
        self.procs: List[subprocess.Popen] = []

    # -- topology ---------------------------------------------------------
    def up(self) -> None:
        remove_stale_namespaces()
        self.down()
        self._namespaces()
        self._offloads()
        self._underlay()
        self._tunnels()
        self._neighbours()

    def _namespaces(self) -> None:
        """A and B, each with a veth into R's bridge."""
        na, nr, nb = self.na, self.nr, self.nb
        v6 = 6 in (self.outer, self.inner)
        for n in (na, nr, nb):
            _run("ip", "netns", "add", n)
            _run(
                "ip",
                "netns",
                "exec",
                n,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=%d" % (not v6),
                "net.ipv6.conf.default.disable_ipv6=%d" % (not v6),
            )
            _run("ip", "-n", n, "link", "set", "lo", "up")
        _run("ip", "link", "add", "va", "netns", na, "type", "veth", "peer", "name", "ra", "netns", nr)
        _run("ip", "link", "add", "vb", "netns", nb, "type", "veth", "peer", "name", "rb", "netns", nr)
        _run("ip", "-n", nr, "link", "add", "br0", "type", "bridge")
        for d in ("ra", "rb"):
            _run("ip", "-n", nr, "link", "set", d, "master", "br0")
        for d in ("ra", "rb", "br0"):
            _run("ip", "-n", nr, "link", "set", d, "up")

    def _offloads(self) -> None:
        """R's port to B segments in software; B's veth runs GRO only when asked."""
        nr, nb = self.nr, self.nb
        # the segmenting egress port: no TSO/GSO/UDP-tunnel GSO/checksum offload
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                nr,
                "ethtool",
                "-K",
                "rb",
                "tx",
                "off",
                "sg",
                "off",
                "tso",
                "off",
                "gso",
                "off",
                "gro",
                "off",
                "tx-udp_tnl-segmentation",
                "off",
                "tx-udp_tnl-csum-segmentation",
                "off",
            ],
            capture_output=True,
        )
        # gro=True: B's veth runs NAPI GRO (veth enables NAPI when GRO is turned on), so a
        # capture on vb shows what GRO made of the wire segments (captured on rb)
        res = subprocess.run(
            ["ip", "netns", "exec", nb, "ethtool", "-K", "vb", "gro", "on" if self.gro else "off"],
            capture_output=True,
            text=True,
        )
        if self.gro and res.returncode != 0:
            raise RuntimeError("cannot turn GRO on for veth vb: %s" % res.stderr.strip())

    def _underlay(self) -> None:
        na, nb = self.na, self.nb
        ua, ub, ulen = UNDERLAY[self.outer]
        fam = "-%d" % self.outer
        nodad = ["nodad"] if self.outer == 6 else []  # no duplicate address detection wait
        _run("ip", "-n", na, fam, "addr", "add", "%s/%d" % (ua, ulen), "dev", "va", *nodad)
        _run("ip", "-n", nb, fam, "addr", "add", "%s/%d" % (ub, ulen), "dev", "vb", *nodad)
        for n, d in ((na, "va"), (nb, "vb")):
            _run("ip", "-n", n, "link", "set", d, "mtu", str(UNDERLAY_MTU), "up")

    def _tunnels(self) -> None:
        """vx0 (VXLAN 42, port 4789) in A and B over the underlay, the overlay addresses."""
        na, nb = self.na, self.nb
        ua, ub, _ulen = UNDERLAY[self.outer]
        oa, ob, olen = OVERLAY[self.inner]
        if self.outer == 6:
            csum = ["udp6zerocsumtx", "udp6zerocsumrx"] if self.csum == "noudpcsum" else []
        else:
            csum = [self.csum]
        for n, loc, rem, mac, d in (
            (na, ua, ub, "02:00:00:00:aa:01", "va"),
            (nb, ub, ua, "02:00:00:00:bb:01", "vb"),
        ):
            _run(
                "ip",
                "-n",
                n,
                "link",
                "add",
                "vx0",
                "type",
                "vxlan",
                "id",
                "42",
                "local",
                loc,
                "remote",
                rem,
                "dstport",
                "4789",
                "dev",
                d,
                *csum,
            )
            _run("ip", "-n", n, "link", "set", "vx0", "address", mac)
        ifam = "-%d" % self.inner
        nodad = ["nodad"] if self.inner == 6 else []
        _run("ip", "-n", na, ifam, "addr", "add", "%s/%d" % (oa, olen), "dev", "vx0", *nodad)
        _run("ip", "-n", nb, ifam, "addr", "add", "%s/%d" % (ob, olen), "dev", "vx0", *nodad)
        for n in (na, nb):
            _run("ip", "-n", n, "link", "set", "vx0", "up")

    def _neighbours(self) -> None:
        """Static neighbours: no ARP/ND traffic in the captures."""
        na, nb = self.na, self.nb
        ua, ub, _ulen = UNDERLAY[self.outer]
        oa, ob, _olen = OVERLAY[self.inner]
        fam, ifam = "-%d" % self.outer, "-%d" % self.inner
        _run("ip", "-n", na, fam, "neigh", "replace", ub, "lladdr", self._mac(nb, "vb"), "dev", "va")
        _run("ip", "-n", nb, fam, "neigh", "replace", ua, "lladdr", self._mac(na, "va"), "dev", "vb")
        _run("ip", "-n", na, ifam, "neigh", "replace", ob, "lladdr", "02:00:00:00:bb:01", "dev", "vx0")
        _run("ip", "-n", nb, ifam, "neigh", "replace", oa, "lladdr", "02:00:00:00:aa:01", "dev", "vx0")

    @staticmethod
    def _mac(ns: str, dev: str) -> str:
        out = _run("ip", "-n", ns, "-o", "link", "show", dev)
        return out.split("link/ether ")[1].split()[0]

    def down(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        for n in (self.na, self.nr, self.nb):
            subprocess.run(["ip", "netns", "del", n], capture_output=True)

    # -- one transfer -------------------------------------------------------
    def _capture(
        self, ns: str, dev: str, path: Path, snap: int, bpf: Tuple[str, ...] = ("udp", "port", "4789")
    ) -> subprocess.Popen:
        log = path.with_suffix(".log")
        p = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "tcpdump",
                "--immediate-mode",
                "-U",
                "-n",
                "-s",
                str(snap),
                "-B",
                "65536",
                "-i",
                dev,
                "-w",
                str(path),
                *bpf,
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(log, "w"),
        )
        self.procs.append(p)
        for _ in range(200):
            if "listening on" in log.read_text():
                return p
            time.sleep(0.025)
        raise RuntimeError("tcpdump did not start on %s: %s" % (dev, log.read_text()))

    def transfer(self, nbytes: int) -> Tuple[Path, Path]:
        """Send ``nbytes`` A->B over vx0.

        Returns (pre-segmentation pcap on A:va, wire pcap on B:vb); with
        ``gro=True``: (wire pcap on R:rb, post-GRO pcap on B:vb)."""
        tag = "v%d_v%d_%s%s" % (self.outer, self.inner, self.csum, "_gro" if self.gro else "")
        if self.gro:
            first = self.workdir / ("%s_wire_at_rb.pcap" % tag)
            second = self.workdir / ("%s_after_gro.pcap" % tag)
            caps = [self._capture(self.nr, "rb", first, 2048), self._capture(self.nb, "vb", second, 70000)]
        else:
            first = self.workdir / ("%s_outer_super.pcap" % tag)
            second = self.workdir / ("%s_segments.pcap" % tag)
            caps = [self._capture(self.na, "va", first, 70000), self._capture(self.nb, "vb", second, 2048)]
        srv = subprocess.Popen(
            ["ip", "netns", "exec", self.nb, sys.executable, "-c", SERVER, OVERLAY[self.inner][1]],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(srv)
        assert srv.stdout is not None
        if srv.stdout.readline().strip() != "ready":
            raise RuntimeError("server in %s did not start" % self.nb)
        _run(
            "ip", "netns", "exec", self.na, sys.executable, "-c", CLIENT, OVERLAY[self.inner][1], str(nbytes)
        )
        got = srv.stdout.readline().strip()
        srv.wait(10)
        if got != "received %d" % nbytes:
            raise RuntimeError("transfer incomplete: %r" % got)
        time.sleep(0.3)
        for p in caps:
            p.send_signal(signal.SIGTERM)
            p.wait(5)
        return first, second

    def udp_gso_transfer(self, gso_size: int, sizes: List[int], tunnel: bool) -> Tuple[Path, Path]:
        """Send one UDP_SEGMENT (UDP GSO) datagram train per entry of ``sizes``
        A->B, through vx0 (``tunnel``) or straight over the underlay.

        Returns (pre-segmentation pcap on A:va, wire pcap on B:vb)."""
        tag = "udpgso_%s_v%d" % ("vxlan" if tunnel else "plain", self.outer)
        first = self.workdir / ("%s_super.pcap" % tag)
        second = self.workdir / ("%s_segments.pcap" % tag)
        bpf = ("udp", "port", "4789") if tunnel else ("udp", "port", "5002")
        caps = [
            self._capture(self.na, "va", first, 70000, bpf),
            self._capture(self.nb, "vb", second, 2048, bpf),
        ]
        fam = self.inner if tunnel else self.outer
        dst = (OVERLAY if tunnel else UNDERLAY)[fam][1]
        _run(
            "ip",
            "netns",
            "exec",
            self.na,
            sys.executable,
            "-c",
            UDP_GSO_CLIENT,
            dst,
            str(gso_size),
            ",".join(map(str, sizes)),
        )
        time.sleep(0.3)
        for p in caps:
            p.send_signal(signal.SIGTERM)
            p.wait(5)
        return first, second


@contextmanager
def vxlan_gso_lab(
    workdir: Path, csum: str, outer: int = 4, inner: int = 4, gro: bool = False
) -> Iterator[VxlanGsoLab]:
    """Build the lab (IPv4 or IPv6 underlay and overlay, GRO on B or not),
    yield it, delete the namespaces whatever happens."""
    lab = VxlanGsoLab(workdir, csum, outer, inner, gro)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


# -- the kernel's GSO fed directly: a tap device with the virtio UDP-tunnel header ----------
#
# Linux 6.17 ("tun: enable gso over UDP tunnel support") lets a tap writer hand the kernel
# a GSO super-packet *inside any UDP tunnel*: struct virtio_net_hdr_v1_hash_tunnel (24
# bytes) carries gso_type | VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4/IPV6, the outer UDP header
# offset and the inner network header offset, and virtio_net_hdr_tnl_to_skb() marks the
# skb SKB_GSO_UDP_TUNNEL[_CSUM] with inner_mac_header = inner_nh (the tunnel header with
# every Geneve option and the inner Ethernet header is then copied into every segment by
# __skb_udp_tunnel_segment, as for a geneve device).  So the kernel segments Geneve with
# options although this kernel has no geneve module:
#
#     ns R: tap0 --- br0 --- rb (every offload off)  <--veth-->  ns B: vb (tcpdump)

TAP_WRITER = r"""
import fcntl, os, struct, sys
TUNSETIFF, TUNSETOFFLOAD, TUNSETVNETHDRSZ = 0x400454ca, 0x400454d0, 0x400454d8
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000
# TUN_F_CSUM | TSO4 | TSO6 | USO4 | USO6, and UDP_TUNNEL_GSO | UDP_TUNNEL_GSO_CSUM (Linux 6.17+)
PLAIN, TUNNEL = 0x01 | 0x02 | 0x04 | 0x20 | 0x40, 0x80 | 0x100
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", sys.argv[2].encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", 24))
try:
    fcntl.ioctl(fd, TUNSETOFFLOAD, PLAIN | TUNNEL)
    print("ready tunnel", flush=True)
except OSError as exc:
    fcntl.ioctl(fd, TUNSETOFFLOAD, PLAIN)
    print("ready plain (no UDP-tunnel GSO: %s)" % exc, flush=True)
sys.stdin.readline()
data, off, errors = open(sys.argv[1], "rb").read(), 0, []
while off < len(data):
    n = struct.unpack_from("!I", data, off)[0]
    try:
        os.write(fd, data[off + 4:off + 4 + n])
    except OSError as exc:
        errors.append("%d: %s" % (off, exc))
    off += 4 + n
print("done", len(errors), "; ".join(errors[:3]), flush=True)
sys.stdin.readline()
"""

#: virtio_net_hdr flags and GSO types (include/uapi/linux/virtio_net.h)
VIRTIO_NEEDS_CSUM, VIRTIO_UDP_TUNNEL_CSUM = 0x01, 0x08
VIRTIO_GSO_TCPV4, VIRTIO_GSO_TCPV6, VIRTIO_GSO_UDP_L4 = 1, 4, 5
VIRTIO_GSO_UDP_TUNNEL_IPV4, VIRTIO_GSO_UDP_TUNNEL_IPV6, VIRTIO_GSO_ECN = 0x20, 0x40, 0x80


def virtio_tunnel_header(
    gso_type: int,
    flags: int,
    hdr_len: int,
    gso_size: int,
    csum_start: int,
    csum_offset: int,
    outer_th: int = 0,
    inner_nh: int = 0,
) -> bytes:
    """struct virtio_net_hdr_v1_hash_tunnel, little-endian: the v1 header (12 bytes), the
    hash fields (8, unused here), outer_th_offset and inner_nh_offset."""
    return (
        struct.pack("<BBHHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, 0)
        + bytes(8)
        + struct.pack("<HH", outer_th, inner_nh)
    )


class TapGsoLab(VxlanGsoLab):
    """:meth:`segment` writes (virtio header, frame) pairs into a tap bridged to a port with
    every offload off and returns what the kernel put on the wire, in order."""

    def __init__(self, workdir: Path, tx_csum: bool = False) -> None:  # pylint: disable=super-init-not-called
        self.tx_csum = tx_csum
        tag = "%s%d" % (NS_PREFIX, os.getpid())
        self.na = self.nr = tag + "r"  # no namespace A: down() deletes R and B
        self.nb = tag + "b"
        self.workdir = workdir
        self.procs: List[subprocess.Popen] = []

    def up(self) -> None:
        remove_stale_namespaces()
        self.down()
        nr, nb = self.nr, self.nb
        for n in (nr, nb):
            _run("ip", "netns", "add", n)
            # no IPv6 chatter (MLD, router solicitations) on the bridged ports
            _run(
                "ip",
                "netns",
                "exec",
                n,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            )
            _run("ip", "-n", n, "link", "set", "lo", "up")
        _run("ip", "link", "add", "vb", "netns", nb, "type", "veth", "peer", "name", "rb", "netns", nr)
        _run("ip", "-n", nr, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", nr, "link", "set", "rb", "master", "br0")
        # segments of any MSS must pass the veth (is_skb_forwardable checks the MTU)
        for n, d in ((nr, "rb"), (nb, "vb")):
            _run("ip", "-n", n, "link", "set", d, "mtu", "9000")
        for d in ("rb", "br0"):
            _run("ip", "-n", nr, "link", "set", d, "up")
        _run("ip", "-n", nb, "link", "set", "vb", "up")
        # tx_csum: segmentation stays in software but the port offers checksum offload, so
        # the segments leave with CHECKSUM_PARTIAL inner checksums (the pseudo-header sum)
        # and outer UDP checksums computed by local checksum offload
        res = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                nr,
                "ethtool",
                "-K",
                "rb",
                "tx",
                "on" if self.tx_csum else "off",
                "sg",
                "off",
                "tso",
                "off",
                "gso",
                "off",
                "gro",
                "off",
                "tx-udp_tnl-segmentation",
                "off",
                "tx-udp_tnl-csum-segmentation",
                "off",
                "tx-udp-segmentation",
                "off",
                "tx-gso-list",
                "off",
            ],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise RuntimeError("ethtool -K rb failed: %s" % res.stderr.strip())

    def segment(self, items: List[Tuple[bytes, bytes]], src_mac: str, tunnel: bool = True) -> List[bytes]:
        """Write every (virtio header, frame) into the tap; return the wire frames sent
        from ``src_mac`` (the frames' source address: nothing else the namespaces say).
        ``tunnel``: the headers use UDP-tunnel GSO (RuntimeError "no-udp-tunnel-gso" when
        this kernel's tun lacks it)."""
        blob = self.workdir / "tap_frames.bin"
        blob.write_bytes(b"".join(struct.pack("!I", len(h) + len(f)) + h + f for h, f in items))
        w = subprocess.Popen(
            ["ip", "netns", "exec", self.nr, sys.executable, "-c", TAP_WRITER, str(blob), "tap0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(w)
        assert w.stdin is not None and w.stdout is not None
        first = w.stdout.readline().strip()
        if not first.startswith("ready"):
            raise RuntimeError("tap writer: %s" % (first or "did not start"))
        if tunnel and first != "ready tunnel":
            raise RuntimeError("no-udp-tunnel-gso: %s" % first)
        _run("ip", "-n", self.nr, "link", "set", "tap0", "master", "br0")
        _run("ip", "-n", self.nr, "link", "set", "tap0", "up")
        wire = self.workdir / "tap_wire.pcap"
        cap = self._capture(self.nb, "vb", wire, 10000, ("ether", "src", src_mac))
        w.stdin.write("go\n")
        w.stdin.flush()
        done = w.stdout.readline().split(None, 1)
        if done[:1] != ["done"] or not done[1].startswith("0"):
            raise RuntimeError("tap writer: %s" % " ".join(done))
        time.sleep(0.3)
        cap.send_signal(signal.SIGTERM)
        cap.wait(5)
        w.stdin.write("bye\n")
        w.stdin.flush()
        w.wait(5)
        return [bytes(d) for d, _m in RawPcapReader(str(wire))]


@contextmanager
def tap_gso_lab(workdir: Path, tx_csum: bool = False) -> Iterator[TapGsoLab]:
    """Build the tap lab (``tx_csum``: the segmenting port offers checksum offload),
    yield it, delete the namespaces whatever happens."""
    lab = TapGsoLab(workdir, tx_csum)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


# -- NVGRE: the same tap lab with a tc BPF program that wraps each frame in GRE ------------
#
# No gre module either, but gre_gso_segment() is built in: a tc egress program on rb calls
# bpf_skb_adjust_room(BPF_ADJ_ROOM_MAC, ENCAP_L3_IPV4|IPV6 | ENCAP_L4_GRE | ENCAP_L2_ETH |
# ENCAP_L2(14) | FIXED_GSO), which marks the GSO skb SKB_GSO_GRE with its inner headers, and
# writes the outer IP, NVGRE (K bit, 0x6558, VSID+FlowID) and inner Ethernet headers with
# bpf_skb_store_bytes(); validate_xmit_skb() then segments it in software (inet_gso_segment ->
# gre_gso_segment -> inet_gso_segment -> tcp_gso_segment).  The program is LLVM IR written
# here and compiled with llc (no clang needed).

NVGRE_INNER_MACS = bytes.fromhex("020000000bb1020000000aa1")


def nvgre_header(outer: int, inner: int) -> bytes:
    """The bytes the program writes from frame offset 12: outer EtherType, outer IP header
    (length 0, checksum 0: GSO sets both per segment), NVGRE header, inner Ethernet header."""
    if outer == 4:
        ip = bytes.fromhex("4500000012344000402f00000a0100010a010002")
    else:
        ip = (
            bytes.fromhex("6000000000002f40")
            + bytes.fromhex("fd01" + "00" * 13 + "01")
            + bytes.fromhex("fd01" + "00" * 13 + "02")
        )
    gre = bytes.fromhex("2000655812345678")  # K bit, TEB; VSID 0x123456, FlowID 0x78
    inner_eth = NVGRE_INNER_MACS + (b"\x08\x00" if inner == 4 else b"\x86\xdd")
    return (b"\x08\x00" if outer == 4 else b"\x86\xdd") + ip + gre + inner_eth


def nvgre_encap_object(workdir: Path, outer: int, inner: int) -> Path:
    """Compile the tc program that inserts :func:`nvgre_header` (minus the EtherType)
    after the Ethernet header; raises RuntimeError when llc cannot."""
    hdr = nvgre_header(outer, inner)
    buf = hdr + bytes(-len(hdr) % 8)
    stores = "".join(
        "  %%p%d = getelementptr inbounds i8, ptr %%hdr, i64 %d\n"
        "  store i64 %d, ptr %%p%d, align 8\n" % (i, i * 8, struct.unpack_from("<q", buf, i * 8)[0], i)
        for i in range(len(buf) // 8)
    )
    room = len(hdr) - 2
    # BPF_F_ADJ_ROOM_FIXED_GSO | ENCAP_L3_IPV4 or _IPV6 | ENCAP_L4_GRE | ENCAP_L2_ETH | ENCAP_L2(14)
    flags = 1 | (2 if outer == 4 else 4) | 8 | 64 | (14 << 56)
    ir = """target datalayout = "e-m:e-p:64:64-i64:64-i128:128-n32:64-S128"
target triple = "bpf"

@_license = dso_local global [4 x i8] c"GPL\\00", section "license", align 1
@llvm.used = appending global [2 x ptr] [ptr @_license, ptr @encap], section "llvm.metadata"

define dso_local i32 @encap(ptr %%skb) section "tc" {
entry:
  %%hdr = alloca [%d x i8], align 8
%s  %%r = call i64 inttoptr (i64 50 to ptr)(ptr %%skb, i32 %d, i32 1, i64 %d)
  %%ok = icmp eq i64 %%r, 0
  br i1 %%ok, label %%store, label %%out
store:
  %%r2 = call i64 inttoptr (i64 9 to ptr)(ptr %%skb, i32 12, ptr %%hdr, i32 %d, i64 0)
  br label %%out
out:
  ret i32 0
}
""" % (len(buf), stores, room, flags, len(hdr))
    src = workdir / ("nvgre_%d%d.ll" % (outer, inner))
    obj = src.with_suffix(".o")
    src.write_text(ir)
    # LLVM 14/15 need -opaque-pointers for `ptr`; LLVM 17+ have only opaque pointers and no flag
    for extra in (["-opaque-pointers"], []):
        res = subprocess.run(
            ["llc", *extra, "-march=bpf", "-filetype=obj", "-O2", str(src), "-o", str(obj)],
            capture_output=True,
            text=True,
        )
        if res.returncode == 0:
            break
    if res.returncode != 0:
        raise RuntimeError("llc could not build the tc program: %s" % res.stderr.strip())
    return obj


def attach_egress_program(lab: TapGsoLab, obj: Path) -> None:
    """Run ``obj`` (section "tc") on every frame rb transmits, before GSO."""
    _run("ip", "netns", "exec", lab.nr, "tc", "qdisc", "add", "dev", "rb", "clsact")
    _run(
        "ip",
        "netns",
        "exec",
        lab.nr,
        "tc",
        "filter",
        "add",
        "dev",
        "rb",
        "egress",
        "bpf",
        "da",
        "obj",
        str(obj),
        "sec",
        "tc",
    )
