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

import shutil
import socket
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from scapy.layers.l2 import Ether
from scapy.utils import RawPcapReader

from scapy_geneve import coalesce, segment
from scapy_geneve.gro import coalesce_bytes
from scapy_geneve.segment import parse_offsets

from .kernel_lab import UNDERLAY, UNDERLAY_MTU, vxlan_gso_lab

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
    ip_id = int.from_bytes(frame[o.ip.off + 4:o.ip.off + 6], "big") if o.ip.version == 4 else 0
    seq = int.from_bytes(frame[o.l4_off + 4:o.l4_off + 8], "big")
    return ip_id, seq, o.end - o.payload_off


#: (outer IP version, inner IP version, outer UDP checksum)
LABS = [(4, 4, "noudpcsum"), (4, 4, "udpcsum"), (6, 6, "udpcsum"), (6, 6, "noudpcsum"),
        (4, 6, "udpcsum"), (6, 4, "noudpcsum")]


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
    ip_id = frame[o.ip.off + 4:o.ip.off + 6] if o.ip.version == 4 else b""
    return (ip_id + frame[o.l4_off:o.l4_off + 16] + frame[o.l4_off + 18:o.payload_off]
            + (o.end - o.payload_off).to_bytes(4, "big"))


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
            if theirs is None:   # tcpdump dropped it (counted below), not a mismatch
                missing.append((n, k))
                continue
            assert ours == theirs, (
                "%s: super-packet %d, segment %d differs from the kernel's:\n ours   %s\n kernel %s"
                % (mode, n, k, ours[:120].hex(), theirs[:120].hex()))
            compared += 1
        multi += len(mine) > 1
    assert multi >= 3, "too few multi-segment super-packets to say anything (%d)" % multi
    assert len(missing) <= compared // 20, "capture lost %d of %d segments" % (len(missing), compared)


def test_outer_udp_checksum_follows_the_super_packet(kernel_run):
    """noudpcsum: every segment keeps 0; udpcsum: every segment carries a checksum."""
    mode, supers, wire = kernel_run
    for f in wire:
        o = parse_offsets(f)
        csum = int.from_bytes(f[o.tunnel_off + 6:o.tunnel_off + 8], "big")
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

UDP_LABS = [(4, 4, "noudpcsum", True), (4, 4, "udpcsum", True), (6, 6, "udpcsum", True),
            (4, 4, "udpcsum", False), (6, 6, "udpcsum", False)]
GSO_SIZE = 1200


@pytest.fixture(scope="module", params=UDP_LABS,
                ids=["outer%d-inner%d-%s-%s" % (o, i, c, "vxlan" if t else "plain")
                     for o, i, c, t in UDP_LABS])
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
            if o.first_ip.src == src and o.l4 == "udp" and f[o.l4_off + 2:o.l4_off + 4] == b"\x13\x8a":
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
        assert ours == theirs, "datagram %d differs:\n ours   %s\n kernel %s" % (n, ours[:90].hex(), theirs[:90].hex())
