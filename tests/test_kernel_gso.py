"""segment() against the Linux kernel's own software UDP-tunnel GSO, byte for byte.

The test builds the lab of tests/kernel_lab.py (three namespaces, VXLAN over a
bridge whose egress port has every offload off), sends a TCP stream through it,
captures the super-packets the kernel hands to the bridge (before GSO) and the
segments it puts on the wire (after ``validate_xmit_skb`` -> ``skb_gso_segment``),
and checks that ``segment(super, mtu=1500)`` rebuilds every wire segment exactly:
outer IPv4 ID +1 per segment, lengths, the outer UDP checksum (zero in
``noudpcsum`` mode, computed in ``udpcsum`` mode), inner IPv4 ID, TCP sequence
numbers, PSH on the last segment only, every checksum.

Skips (with the reason) unless root with ``ip netns``, tcpdump and ethtool.
"""

import random
import shutil
import socket
import struct
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import RawPcapReader

from scapy_geneve import Geneve, GeneveOption, coalesce, segment
from scapy_geneve.checksum import csum_add, ipv4_header_checksum, pseudo_header_sum
from scapy_geneve.offload.gro import coalesce_bytes
from scapy_geneve.offload.segment import parse_offsets

from .kernel_lab import (
    UNDERLAY,
    UNDERLAY_MTU,
    VIRTIO_GSO_ECN,
    VIRTIO_GSO_TCPV4,
    VIRTIO_GSO_TCPV6,
    VIRTIO_GSO_UDP_L4,
    VIRTIO_GSO_UDP_TUNNEL_IPV4,
    VIRTIO_GSO_UDP_TUNNEL_IPV6,
    VIRTIO_NEEDS_CSUM,
    VIRTIO_UDP_TUNNEL_CSUM,
    attach_egress_program,
    nvgre_encap_object,
    nvgre_header,
    tap_gso_lab,
    virtio_tunnel_header,
    vxlan_gso_lab,
)

pytestmark = [pytest.mark.netns, pytest.mark.oracle]

NBYTES = 120_000


def _frames(path: Path) -> List[bytes]:
    return [bytes(data) for data, _meta in RawPcapReader(str(path))]


def _a_to_b_tcp(frames: List[bytes], outer: int) -> List[bytes]:
    """Encapsulated A->B frames (outer source = A's underlay address) carrying TCP."""
    src = socket.inet_pton(socket.AF_INET if outer == 4 else socket.AF_INET6, UNDERLAY[outer][0])
    out = []
    for f in frames:
        o = parse_offsets(f)
        if o.outer is not None and o.outer.src == src and o.l4 == "tcp":
            out.append(f)
    return out


def _key(frame: bytes) -> Tuple[int, int, int]:
    """(inner IPv4 ID or 0 for IPv6, TCP seq, payload length): unique per wire segment
    (a retransmission of the same bytes would collide: none in a clean lab run)."""
    o = parse_offsets(frame)
    ip_id = int.from_bytes(frame[o.ip.off + 4 : o.ip.off + 6], "big") if o.ip.version == 4 else 0
    seq = int.from_bytes(frame[o.l4_off + 4 : o.l4_off + 8], "big")
    return ip_id, seq, o.end - o.payload_off


#: (outer IP version, inner IP version, outer UDP checksum)
LABS = [
    (4, 4, "noudpcsum"),
    (4, 4, "udpcsum"),
    (6, 6, "udpcsum"),
    (6, 6, "noudpcsum"),
    (4, 6, "udpcsum"),
    (6, 4, "noudpcsum"),
]


@pytest.fixture(scope="module", params=LABS, ids=["outer%d-inner%d-%s" % lab for lab in LABS])
def kernel_run(request, netns_capable, tcpdump, tmp_path_factory):
    if shutil.which("ethtool") is None:
        pytest.skip("ethtool is not installed (needed to turn offloads off on the segmenting port)")
    outer, inner, csum = request.param
    workdir = tmp_path_factory.mktemp("gso")
    with vxlan_gso_lab(workdir, csum, outer, inner) as lab:
        sup, seg = lab.transfer(NBYTES)
    supers = _a_to_b_tcp(_frames(sup), outer)
    wire = _a_to_b_tcp(_frames(seg), outer)
    return "%s (outer IPv%d, inner IPv%d)" % (csum, outer, inner), supers, wire


def test_kernel_super_packets_really_are_gso(kernel_run):
    """The lab works: some captured A->B packets are bigger than the 1500-byte MTU."""
    _mode, supers, wire = kernel_run
    assert any(len(f) > UNDERLAY_MTU + 14 for f in supers)
    assert all(len(f) <= UNDERLAY_MTU + 14 for f in wire)


def _tcp_key(frame: bytes) -> bytes:
    """The inner IPv4 ID, every TCP header byte but the checksum, the payload length:
    tells a retransmission (new TSval) from the original."""
    o = parse_offsets(frame)
    ip_id = frame[o.ip.off + 4 : o.ip.off + 6] if o.ip.version == 4 else b""
    return (
        ip_id
        + frame[o.l4_off : o.l4_off + 16]
        + frame[o.l4_off + 18 : o.payload_off]
        + (o.end - o.payload_off).to_bytes(4, "big")
    )


def test_segment_equals_kernel_segments_byte_for_byte(kernel_run):
    """segment(super, mtu=1500) == what the kernel put on the wire, for every super-packet."""
    mode, supers, wire = kernel_run
    kernel: Dict[bytes, bytes] = {_tcp_key(f): f for f in wire}
    compared = multi = 0
    missing = []
    for n, sup in enumerate(supers, 1):
        mine = [bytes(p) for p in segment(Ether(sup), mtu=UNDERLAY_MTU)]
        for k, ours in enumerate(mine):
            theirs = kernel.get(_tcp_key(ours))
            if theirs is None:  # tcpdump dropped it (counted below), not a mismatch
                missing.append((n, k))
                continue
            assert ours == theirs, (
                "%s: super-packet %d, segment %d differs from the kernel's:\n ours   %s\n kernel %s"
                % (mode, n, k, ours[:120].hex(), theirs[:120].hex())
            )
            compared += 1
        multi += len(mine) > 1
    assert multi >= 3, "too few multi-segment super-packets to say anything (%d)" % multi
    assert len(missing) <= compared // 20, "capture lost %d of %d segments" % (len(missing), compared)


def test_outer_udp_checksum_follows_the_super_packet(kernel_run):
    """noudpcsum: every segment keeps 0; udpcsum: every segment carries a checksum."""
    mode, supers, wire = kernel_run
    for f in wire:
        o = parse_offsets(f)
        csum = int.from_bytes(f[o.tunnel_off + 6 : o.tunnel_off + 8], "big")
        assert (csum == 0) == mode.startswith("noudpcsum")


def test_coalesce_of_kernel_segments_gives_back_the_super_packets(kernel_run):
    """GRO of the kernel's wire segments rebuilds the kernel's super-packets
    (same bytes: GRO leaves pseudo-header checksums, as the sender's stack did)."""
    _mode, supers, wire = kernel_run
    multi = [s for s in supers if len(s) > UNDERLAY_MTU + 14]
    merged = {_key(bytes(p))[:2]: bytes(p) for p in coalesce([Ether(f) for f in wire])}
    hits = 0
    for sup in multi:
        got = merged.get(_key(sup)[:2])
        if got is not None and len(got) == len(sup):
            assert got == sup
            hits += 1
    assert hits >= len(multi) // 2


# -- GRO: the kernel's own receive-side merge ---------------------------------------------
#
# The same lab with GRO turned on for B's veth (veth runs NAPI when GRO is on): a capture
# on R:rb shows the wire segments, one on B:vb what GRO (udp_gro_receive ->
# vxlan_gro_receive -> eth/inet_gro_receive -> tcp_gro_receive, then *_gro_complete)
# made of them.  coalesce() of the segments behind each GRO packet must give that packet,
# byte for byte (pseudo-header checksums included).

GRO_LABS = [(4, 4, "noudpcsum"), (4, 4, "udpcsum"), (6, 6, "udpcsum"), (6, 4, "noudpcsum")]


@pytest.fixture(scope="module", params=GRO_LABS, ids=["outer%d-inner%d-%s" % lab for lab in GRO_LABS])
def gro_run(request, netns_capable, tcpdump, tmp_path_factory):
    if shutil.which("ethtool") is None:
        pytest.skip("ethtool is not installed (needed to turn GRO on and offloads off)")
    outer, inner, csum = request.param
    workdir = tmp_path_factory.mktemp("gro")
    with vxlan_gso_lab(workdir, csum, outer, inner, gro=True) as lab:
        wire, after = lab.transfer(NBYTES)
    return _a_to_b_tcp(_frames(wire), outer), _a_to_b_tcp(_frames(after), outer)


def test_coalesce_equals_the_kernels_gro(gro_run):
    wire, merged = gro_run
    assert any(len(m) > UNDERLAY_MTU + 14 for m in merged), "GRO merged nothing: is veth NAPI on?"
    at = 0
    for n, kernel in enumerate(merged, 1):
        want = _key(kernel)[2]
        behind, got = [], 0
        while at < len(wire) and (got < want or not behind):
            behind.append(wire[at])
            got += _key(wire[at])[2]
            at += 1
        assert got == want, "GRO packet %d: the wire capture lost segments" % n
        assert coalesce_bytes(behind) == [kernel], "GRO packet %d (%d segments) differs" % (n, len(behind))
    assert at == len(wire)


def test_whole_capture_coalesces_where_the_kernel_does(gro_run):
    """Run as one stream, coalesce() never merges across a point where the kernel
    did not.  The kernel may cut more: the end of a NAPI poll flushes every held
    packet, which coalesce() does not model (in this lab one poll usually holds a
    whole burst, and then the two are identical)."""
    wire, merged = gro_run
    ours = coalesce_bytes(wire)
    kernel_starts = {_key(p)[:2] for p in merged}
    assert {_key(p)[:2] for p in ours} <= kernel_starts
    if len(ours) == len(merged):
        assert ours == merged


# -- UDP GSO (UDP_SEGMENT sockets): __udp_gso_segment, alone and inside VXLAN ----------------

UDP_LABS = [
    (4, 4, "noudpcsum", True),
    (4, 4, "udpcsum", True),
    (6, 6, "udpcsum", True),
    (4, 4, "udpcsum", False),
    (6, 6, "udpcsum", False),
]
GSO_SIZE = 1200


@pytest.fixture(
    scope="module",
    params=UDP_LABS,
    ids=["outer%d-inner%d-%s-%s" % (o, i, c, "vxlan" if t else "plain") for o, i, c, t in UDP_LABS],
)
def udp_gso_run(request, netns_capable, tcpdump, tmp_path_factory):
    if shutil.which("ethtool") is None:
        pytest.skip("ethtool is not installed (needed to turn offloads off on the segmenting port)")
    outer, inner, csum, tunnel = request.param
    with vxlan_gso_lab(tmp_path_factory.mktemp("udpgso"), csum, outer, inner) as lab:
        sup, seg = lab.udp_gso_transfer(GSO_SIZE, [5000, 3600, 2400, 100], tunnel)
    src = socket.inet_pton(socket.AF_INET if outer == 4 else socket.AF_INET6, UNDERLAY[outer][0])

    def a_to_b(frames: List[bytes]) -> List[bytes]:
        """A's datagrams to port 5002 (not the ICMPv6/MLD chatter of the IPv6 devices)."""
        out = []
        for f in frames:
            o = parse_offsets(f)
            if o.first_ip.src == src and o.l4 == "udp" and f[o.l4_off + 2 : o.l4_off + 4] == b"\x13\x8a":
                out.append(f)
        return out

    return a_to_b(_frames(sup)), a_to_b(_frames(seg))


def test_udp_gso_segments_equal_the_kernels(udp_gso_run):
    """segment(super, mss=gso_size) == the kernel's datagrams, byte for byte, in order."""
    supers, wire = udp_gso_run
    assert [parse_offsets(s).end - parse_offsets(s).payload_off for s in supers] == [5000, 3600, 2400, 100]
    mine = [bytes(p) for s in supers for p in segment(Ether(s), mss=GSO_SIZE)]
    assert len(mine) == len(wire) == 5 + 3 + 2 + 1
    for n, (ours, theirs) in enumerate(zip(mine, wire)):
        assert ours == theirs, "datagram %d differs:\n ours   %s\n kernel %s" % (
            n,
            ours[:90].hex(),
            theirs[:90].hex(),
        )


# -- Geneve with options (and VXLAN, VXLAN-GPE, no tunnel) segmented by the kernel itself ----
#
# This kernel has no geneve module, but since Linux 6.17 a tap writer can hand the kernel a
# GSO super-packet inside any UDP tunnel (virtio_net_hdr_v1_hash_tunnel: outer UDP and inner
# IP offsets, SKB_GSO_UDP_TUNNEL[_CSUM]); the bridge port with every offload off makes the
# kernel segment it in software (validate_xmit_skb -> __skb_udp_tunnel_segment ->
# tcp_gso_segment / __udp_gso_segment), the same code a geneve device's packets go through.
# Random super-packets (seeded, so a failure replays): Geneve with 0-5 options of random
# classes, types (critical or not) and lengths, VXLAN, VXLAN-GPE carrying IP, or no tunnel;
# IPv4/IPv6 outer and inner in every mix; outer UDP checksum on or off; random IDs, DF, TTL,
# TOS; TCP with random CWR/ECE/URG/PSH/FIN, or UDP GSO; random MSS and payload sizes.

TAP_CASES = 48
TAP_SEED = 8926
TAP_SRC_MAC = "02:00:00:00:00:01"


def _random_super(rng: random.Random) -> Tuple[bytes, bytes, int]:
    """(virtio header, super-packet as captured before the NIC, MSS)."""
    outer_v, inner_v = rng.choice((4, 6)), rng.choice((4, 6))
    tunnel = rng.choice(("geneve", "geneve", "geneve", "vxlan", "vxlan-gpe", "none"))
    udp = rng.random() < 0.25
    outer_csum = rng.random() < 0.5

    def ip(v: int, n: int) -> Packet:
        if v == 4:
            return IP(
                src="10.%d.0.1" % n,
                dst="10.%d.0.2" % n,
                id=rng.randrange(65536),
                flags="DF" if rng.random() < 0.6 else 0,
                ttl=rng.randrange(1, 256),
                tos=rng.randrange(256),
            )
        return IPv6(
            src="fd%02x::1" % n,
            dst="fd%02x::2" % n,
            tc=rng.randrange(256),
            fl=rng.randrange(1 << 20),
            hlim=rng.randrange(1, 256),
        )

    mss = rng.randrange(64, 1400)
    payload = bytes(rng.randrange(256) for _ in range(mss * rng.randrange(1, 12) + rng.randrange(1, mss + 1)))
    if udp:
        l4: Packet = UDP(sport=rng.randrange(1024, 65536), dport=5002)
    else:
        flags = 0x10 | rng.choice((0, 0x08, 0x01, 0x09)) | rng.choice((0, 0, 0x80, 0x40, 0xC0, 0x20))
        l4 = TCP(
            sport=rng.randrange(1024, 65536),
            dport=5001,
            seq=rng.randrange(1 << 32),
            ack=rng.randrange(1 << 32),
            flags=flags,
            window=rng.randrange(65536),
            urgptr=rng.randrange(65536) if flags & 0x20 else 0,
            options=[("NOP", None), ("NOP", None), ("Timestamp", (rng.randrange(1 << 32), 7))],
        )
    inner = ip(inner_v, 1) / l4 / Raw(payload)
    eth = Ether(src=TAP_SRC_MAC, dst="02:00:00:00:00:02")
    if tunnel == "none":
        pkt = eth / inner
    else:
        if tunnel == "geneve":
            opts = [
                GeneveOption(
                    classid=rng.choice((0x0102, 0x0105, 0x0129, 0xFFFF)),
                    type=rng.randrange(256),
                    data=bytes(rng.randrange(256) for _ in range(4 * rng.randrange(0, 9))),
                )
                for _ in range(rng.randrange(0, 6))
            ]
            th: Packet = UDP(sport=rng.randrange(65536), dport=6081) / Geneve(
                vni=rng.randrange(1 << 24), options=opts, critical=int(any(o.type & 0x80 for o in opts))
            )
            inner = Ether(src="02:00:00:00:aa:01", dst="02:00:00:00:bb:01") / inner
        elif tunnel == "vxlan":
            th = UDP(sport=rng.randrange(65536), dport=4789) / Raw(
                b"\x08\0\0\0" + struct.pack("!I", rng.randrange(1 << 24) << 8)
            )
            inner = Ether(src="02:00:00:00:aa:01", dst="02:00:00:00:bb:01") / inner
        else:  # VXLAN-GPE (I and P bits), next protocol IPv4 (1) or IPv6 (2), no inner Ethernet
            th = UDP(sport=rng.randrange(65536), dport=4790) / Raw(
                bytes((0x0C, 0, 0, 1 if inner_v == 4 else 2)) + struct.pack("!I", rng.randrange(1 << 24) << 8)
            )
        pkt = eth / ip(outer_v, 2) / th / inner
    raw = bytearray(bytes(pkt))
    o = parse_offsets(bytes(raw), tunnel=None if tunnel == "none" else tunnel)
    # as captured before the NIC: the inner checksum holds the pseudo-header sum
    # (CHECKSUM_PARTIAL), the outer UDP checksum too when it is on (udp_set_csum), or 0
    csum_at = o.l4_off + (6 if udp else 16)
    struct.pack_into(
        "!H",
        raw,
        csum_at,
        csum_add(pseudo_header_sum(o.ip.src, o.ip.dst, 17 if udp else 6, len(raw) - o.l4_off)),
    )
    flags = VIRTIO_NEEDS_CSUM
    gso = VIRTIO_GSO_UDP_L4 if udp else (VIRTIO_GSO_TCPV4 if inner_v == 4 else VIRTIO_GSO_TCPV6)
    if not udp and raw[o.l4_off + 13] & 0x80:
        gso |= VIRTIO_GSO_ECN  # the stack marks a CWR super-packet SKB_GSO_TCP_ECN
    outer_th = inner_nh = 0
    if o.outer is not None:
        seed = csum_add(pseudo_header_sum(o.outer.src, o.outer.dst, 17, len(raw) - o.tunnel_off))
        struct.pack_into("!H", raw, o.tunnel_off + 6, seed if outer_csum else 0)
        gso |= VIRTIO_GSO_UDP_TUNNEL_IPV4 if outer_v == 4 else VIRTIO_GSO_UDP_TUNNEL_IPV6
        flags |= VIRTIO_UDP_TUNNEL_CSUM if outer_csum else 0
        outer_th, inner_nh = o.tunnel_off, o.ip.off
    hdr = virtio_tunnel_header(
        gso, flags, o.payload_off, mss, o.l4_off, csum_at - o.l4_off, outer_th, inner_nh
    )
    return hdr, bytes(raw), mss


@pytest.fixture(scope="module")
def tap_runs(netns_capable, tcpdump, tmp_path_factory):
    """The random cases, and the kernel's wire segments of them for a segmenting port
    without checksum offload ("plain") and with it ("tx-csum")."""
    if shutil.which("ethtool") is None:
        pytest.skip("ethtool is not installed (needed to turn offloads off on the segmenting port)")
    rng = random.Random(TAP_SEED)
    cases = [_random_super(rng) for _ in range(TAP_CASES)]
    wires = {}
    for mode in ("plain", "tx-csum"):
        with tap_gso_lab(tmp_path_factory.mktemp("tapgso"), tx_csum=mode == "tx-csum") as lab:
            try:
                wires[mode] = lab.segment([(h, f) for h, f, _m in cases], TAP_SRC_MAC)
            except RuntimeError as exc:
                if "no-udp-tunnel-gso" in str(exc):
                    pytest.skip("this kernel's tun has no UDP-tunnel GSO (Linux 6.17+): %s" % exc)
                raise
    return cases, wires


@pytest.mark.parametrize("mode", ["plain", "tx-csum"])
def test_kernel_segments_geneve_with_options_as_segment_does(tap_runs, mode):
    """segment(super, mss) == the kernel's segments, byte for byte, for every random case.
    "tx-csum": the port offers checksum offload, so the kernel leaves the inner checksums
    CHECKSUM_PARTIAL (pseudo-header sum) and fills the outer UDP checksum by local
    checksum offload: segment(..., csum_offload=True)."""
    cases, wires = tap_runs
    wire = wires[mode]
    ours = []
    for n, (_h, frame, mss) in enumerate(cases):
        ours += [
            (n, k, bytes(p))
            for k, p in enumerate(segment(Ether(frame), mss=mss, csum_offload=mode == "tx-csum"))
        ]
    assert len(wire) == len(ours), "kernel sent %d segments, segment() made %d; unmatched: %s" % (
        len(wire),
        len(ours),
        [w[:80].hex() for w in set(wire) - {m for _n, _k, m in ours}][:3],
    )
    for (n, k, mine), theirs in zip(ours, wire):
        assert mine == theirs, (
            "case %d (seed %d), segment %d differs from the kernel's:\n ours   %s\n"
            " kernel %s" % (n, TAP_SEED, k, mine[:160].hex(), theirs[:160].hex())
        )
    kinds = {parse_offsets(f).tunnel for _h, f, _m in cases}
    assert {"geneve", "vxlan", "vxlan-gpe", None} <= kinds


def test_coalesce_of_the_kernels_geneve_segments_gives_back_each_super_packet(tap_runs):
    """GRO of the kernel's segments of each case rebuilds that case's super-packet
    (pseudo-header checksums, as before the NIC), Geneve options and all."""
    cases, wires = tap_runs
    wire = wires["plain"]
    at = 0
    for n, (_h, frame, mss) in enumerate(cases):
        count = len(segment(Ether(frame), mss=mss))
        got = coalesce_bytes(wire[at : at + count])
        at += count
        o = parse_offsets(frame)
        if o.l4 == "tcp" and frame[o.l4_off + 13] & 0x20:
            # URG is copied into every segment and flushes each one at once (tcp_gro_receive)
            assert got == wire[at - count : at], "case %d (seed %d): URG segments were merged" % (n, TAP_SEED)
        else:  # PSH/FIN ride on the last segment only: merged, then the packet is flushed
            assert got == [frame], "case %d (seed %d): GRO of %d kernel segments differs" % (
                n,
                TAP_SEED,
                count,
            )


# -- NVGRE: GRE GSO by the kernel, the encapsulation done by a tc BPF program --------------
#
# The tap hands the kernel plain TCP GSO super-packets; a tc egress program on the
# segmenting port wraps each in outer IP / NVGRE / inner Ethernet with
# bpf_skb_adjust_room(ENCAP_L4_GRE, FIXED_GSO), and the kernel segments the GRE GSO skb in
# software (gre_gso_segment).  Seeded random inner packets, every outer/inner IP mix.

GRE_MIXES = [(4, 4), (4, 6), (6, 4), (6, 6)]


def _random_inner_tcp(rng: random.Random, inner_v: int) -> Tuple[bytes, bytes, int]:
    """(virtio header, plain TCP GSO super-packet, MSS)."""
    if inner_v == 4:
        ip: Packet = IP(
            src="192.168.7.1",
            dst="192.168.7.2",
            id=rng.randrange(65536),
            flags="DF" if rng.random() < 0.7 else 0,
            ttl=rng.randrange(1, 256),
            tos=rng.randrange(256),
        )
    else:
        ip = IPv6(src="fd07::1", dst="fd07::2", tc=rng.randrange(256), fl=rng.randrange(1 << 20))
    mss = rng.randrange(100, 1400)
    flags = 0x10 | rng.choice((0, 0x08, 0x01, 0x09)) | rng.choice((0, 0, 0x80, 0x40))
    pkt = (
        Ether(src=TAP_SRC_MAC, dst="02:00:00:00:00:02")
        / ip
        / TCP(
            sport=rng.randrange(1024, 65536),
            dport=5001,
            seq=rng.randrange(1 << 32),
            ack=rng.randrange(1 << 32),
            flags=flags,
            window=rng.randrange(65536),
            options=[("NOP", None), ("NOP", None), ("Timestamp", (rng.randrange(1 << 32), 9))],
        )
        / Raw(
            bytes(rng.randrange(256) for _ in range(mss * rng.randrange(1, 10) + rng.randrange(1, mss + 1)))
        )
    )
    raw = bytearray(bytes(pkt))
    o = parse_offsets(bytes(raw))
    struct.pack_into(
        "!H", raw, o.l4_off + 16, csum_add(pseudo_header_sum(o.ip.src, o.ip.dst, 6, len(raw) - o.l4_off))
    )
    gso = (VIRTIO_GSO_TCPV4 if inner_v == 4 else VIRTIO_GSO_TCPV6) | (VIRTIO_GSO_ECN if flags & 0x80 else 0)
    return virtio_tunnel_header(gso, VIRTIO_NEEDS_CSUM, o.payload_off, mss, o.l4_off, 16), bytes(raw), mss


def _as_nvgre(frame: bytes, outer: int, inner: int) -> bytes:
    """The GRE super-packet the program makes of ``frame`` (lengths filled in)."""
    sup = bytearray(frame[:12] + nvgre_header(outer, inner) + frame[14:])
    if outer == 4:
        struct.pack_into("!H", sup, 16, len(sup) - 14)
        struct.pack_into("!H", sup, 24, ipv4_header_checksum(sup[14:34]))
    else:
        struct.pack_into("!H", sup, 18, len(sup) - 14 - 40)
    return bytes(sup)


@pytest.fixture(scope="module", params=GRE_MIXES, ids=["outer%d-inner%d" % m for m in GRE_MIXES])
def gre_run(request, netns_capable, tcpdump, tmp_path_factory):
    for tool in ("ethtool", "llc", "tc"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed (the NVGRE lab compiles and attaches a tc BPF program)" % tool)
    outer, inner = request.param
    workdir = tmp_path_factory.mktemp("nvgre")
    obj = nvgre_encap_object(workdir, outer, inner)
    rng = random.Random(TAP_SEED + 10 * outer + inner)
    cases = [_random_inner_tcp(rng, inner) for _ in range(8)]
    with tap_gso_lab(workdir) as lab:
        attach_egress_program(lab, obj)
        wire = lab.segment([(h, f) for h, f, _m in cases], TAP_SRC_MAC, tunnel=False)
    return outer, inner, cases, wire


def test_kernel_segments_nvgre_as_segment_does(gre_run):
    """segment(NVGRE super-packet, mss) == the kernel's GRE GSO segments, byte for byte."""
    outer, inner, cases, wire = gre_run
    ours = []
    for n, (_h, frame, mss) in enumerate(cases):
        sup = _as_nvgre(frame, outer, inner)
        assert parse_offsets(sup).tunnel == "nvgre"
        ours += [(n, k, bytes(p)) for k, p in enumerate(segment(Ether(sup), mss=mss))]
    assert len(wire) == len(ours), "kernel sent %d segments, segment() made %d" % (len(wire), len(ours))
    for (n, k, mine), theirs in zip(ours, wire):
        assert mine == theirs, "case %d, segment %d differs from the kernel's:\n ours   %s\n kernel %s" % (
            n,
            k,
            mine[:120].hex(),
            theirs[:120].hex(),
        )
    at = 0
    for n, (_h, frame, _mss) in enumerate(cases):  # and GRO puts each super-packet back together
        count = sum(1 for m, _k, _b in ours if m == n)
        assert coalesce_bytes(wire[at : at + count]) == [_as_nvgre(frame, outer, inner)], "case %d" % n
        at += count
