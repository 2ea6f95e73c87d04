"""coalesce(): Linux GRO, merging only where the kernel would.

Rules (specs.md §7.2, the kernel's tcp_gro_receive, inet_gro_receive,
udp_gro_receive, geneve_gro_receive, vxlan_gro_receive): same flow, contiguous
sequence, identical tunnel header with every option, O bit clear, matching
ack/window/options/TTL/TOS/DF, IPv4 IDs counting up (or fixed with DF), valid
checksums, no more than the first segment's length, under 64 KB; a short
segment or PSH/FIN/URG/RST/SYN ends a super-packet.  The kernel itself checks
coalesce() in tests/test_kernel_gso.py (its wire segments GRO back into its own
super-packets, byte for byte).
"""

import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from scapy_geneve import Geneve, GeneveOption, coalesce, finish_checksums, segment
from scapy_geneve.checksum import csum_add, ipv4_header_checksum, pseudo_header_sum
from scapy_geneve.offload.segment import parse_offsets, segment_bytes

from .test_segment import OUTER_ETH, geneve_super, nvgre_super, payload, plain_tcp, vxlan_super


def as_captured(pkt) -> bytes:
    """The super-packet as the sender's stack hands it over (and GRO hands it
    up): TCP and non-zero outer UDP checksums hold the pseudo-header sum."""
    raw = bytearray(bytes(pkt))
    o = parse_offsets(bytes(raw))
    at = o.l4_off + (16 if o.l4 == "tcp" else 6)
    struct.pack_into(
        "!H",
        raw,
        at,
        csum_add(pseudo_header_sum(o.ip.src, o.ip.dst, 6 if o.l4 == "tcp" else 17, o.end - o.l4_off)),
    )
    if o.outer is not None and not o.gre and raw[o.tunnel_off + 6 : o.tunnel_off + 8] != b"\0\0":
        struct.pack_into(
            "!H",
            raw,
            o.tunnel_off + 6,
            csum_add(pseudo_header_sum(o.outer.src, o.outer.dst, 17, o.end - o.tunnel_off)),
        )
    return bytes(raw)


def lens(pkts):
    return [len(p) for p in pkts]


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: geneve_super(9000),
        lambda: geneve_super(9000, udp_csum=True, flags="FPAC"),
        lambda: geneve_super(9000, v6_outer=True, v6_inner=True, udp_csum=True),
        lambda: vxlan_super(9000, udp_csum=True),
        lambda: plain_tcp(9000),
        lambda: plain_tcp(9000, v6=True),
    ],
    ids=["geneve", "geneve-csum-FPC", "geneve-v6", "vxlan", "tcp", "tcp6"],
)
def test_coalesce_of_segment_gives_back_the_super_packet(build):
    sup = Ether(as_captured(build()))
    merged = coalesce(segment(sup, mtu=1500))
    assert len(merged) == 1
    assert bytes(merged[0]) == bytes(sup)


def test_nvgre_round_trip_and_gre_checksum():
    """gre_gro_receive: same flags, protocol and key (VSID/FlowID); the GRE
    checksum (C bit) is validated and is not part of the flow."""
    sup = Ether(as_captured(nvgre_super(5000)))
    assert [bytes(m) for m in coalesce(segment(sup, mtu=1500))] == [bytes(sup)]
    with_csum = Ether(as_captured(nvgre_super(5000, gre_csum=True)))
    merged = coalesce(segment(with_csum, mtu=1500), checksums="full")
    assert [bytes(m) for m in merged] == [bytes(finish_checksums(with_csum))]
    other_key = [bytearray(bytes(p)) for p in segment(nvgre_super(5000), mtu=1500)]
    other_key[1][14 + 20 + 7] ^= 1  # FlowID, the low byte of the GRE key
    assert len(coalesce([bytes(p) for p in other_key])) == 3


def test_checksums_full_gives_the_finished_super_packet():
    sup = Ether(as_captured(geneve_super(9000, udp_csum=True)))
    merged = coalesce(segment(sup, mtu=1500), checksums="full")
    assert bytes(merged[0]) == bytes(finish_checksums(sup))


def test_udp_gso_round_trip():
    sup = (
        OUTER_ETH / IP(src="10.1.1.1", dst="10.1.1.2", id=10) / UDP(sport=1, dport=9999) / Raw(payload(3500))
    )
    sup = Ether(as_captured(sup))
    assert bytes(coalesce(segment(sup, mss=1000))[0]) == bytes(sup)


def test_a_single_segment_is_not_touched():
    seg = segment(geneve_super(500), mtu=1500)
    assert bytes(coalesce(seg)[0]) == bytes(seg[0])  # full checksums stay full


# -- what ends a super-packet ---------------------------------------------------------------------


def test_psh_merges_then_closes():
    a = segment(geneve_super(3000, flags="PA"), mss=1000)
    b = segment(geneve_super(3000, flags="A", seq=4000, ip_id=10), mss=1000)
    for p in b:
        p[IP].id += 3
        del p[IP].chksum
    merged = coalesce(a + [Ether(bytes(p)) for p in b])
    assert [m[Geneve][TCP].seq for m in merged] == [1000, 4000]


def test_short_segment_merges_then_closes():
    segs = segment(geneve_super(2500, flags="A"), mss=1000)  # 1000, 1000, 500
    more = segment(geneve_super(1000, flags="A", seq=3500, ip_id=10), mss=1000)
    merged = coalesce(segs + more)
    assert [len(m[Geneve][TCP].payload) for m in merged] == [2500, 1000]


def test_cwr_starts_a_new_super_packet():
    segs = segment(geneve_super(3000, flags="A"), mss=1000)
    cwr = Ether(bytes(segs[1]))
    cwr[Geneve][TCP].flags = "AC"
    cwr[Geneve][TCP].chksum = None
    merged = coalesce([segs[0], Ether(bytes(cwr)), segs[2]])
    assert [len(m[Geneve][TCP].payload) for m in merged] == [1000, 2000]
    assert merged[1][Geneve][TCP].flags.C


def test_64k_limit():
    """gro_max_size: the merged IP packet stays under 65536 bytes; BIG TCP beyond."""
    first = geneve_super(60000, flags="A")  # 60 segments
    second = geneve_super(20000, flags="A", seq=61000, ip_id=7 + 60)
    second[IP].id = 3000 + 60
    segs = segment(first, mss=1000) + segment(second, mss=1000)
    merged = coalesce(segs)
    assert [len(m[Geneve][TCP].payload) for m in merged] == [65000, 15000]
    assert all(len(m) - 14 < 65536 for m in merged)
    big = coalesce(segs, max_size=200000)
    assert len(big) == 1 and big[0][IP].len == 0  # BIG TCP: total length 0


# -- what is never merged --------------------------------------------------------------------------


def _segs(**kw):
    return segment(geneve_super(3000, flags="A", **kw), mss=1000)


def _rebuild(p):
    """Let Scapy recompute lengths and checksums after a test edited a field."""
    q = Ether(bytes(p))
    for layer in (q[IP], q[Geneve][IP]):
        layer.chksum = None
    q[Geneve][TCP].chksum = None
    return Ether(bytes(q))


@pytest.mark.parametrize(
    "edit",
    [
        "oam",
        "option",
        "vni",
        "seq",
        "ack",
        "window",
        "ttl",
        "tos",
        "inner_id",
        "longer",
        "bad_csum",
        "outer_csum_mix",
        "ip_options",
        "tcp_option",
    ],
)
def test_never_merged(edit):
    segs = _segs()
    p = Ether(bytes(segs[1]))
    g, t = p[Geneve], p[Geneve][TCP]
    if edit == "oam":
        # O bit: not merged even with identical headers: set it on both
        segs = [Ether(bytes(s)) for s in segs]
        for s in segs:
            s[Geneve].oam = 1
        segs = [_rebuild(s) for s in segs]
        assert len(coalesce(segs)) == 3
        return
    if edit == "option":
        g.options[1].data = b"ABCDEFGX"
    elif edit == "vni":
        g.vni = 0x1235
    elif edit == "seq":
        t.seq += 1
    elif edit == "ack":
        t.ack += 1
    elif edit == "window":
        t.window += 1
    elif edit == "ttl":
        g[IP].ttl -= 1
    elif edit == "tos":
        g[IP].tos = 4
    elif edit == "inner_id":
        g[IP].id += 5
    elif edit == "longer":
        t.remove_payload()
        t.add_payload(Raw(payload(1001)))
        g[IP].len = None
        p[UDP].len = None
        p[IP].len = None
    elif edit == "outer_csum_mix":
        p[UDP].chksum = None
    elif edit == "ip_options":
        from scapy.layers.inet import IPOption_NOP

        g[IP].options = [IPOption_NOP()] * 4
        g[IP].ihl = None
        g[IP].len = None
        p[UDP].len = None
        p[IP].len = None
    elif edit == "tcp_option":
        t.options = [("NOP", None), ("NOP", None), ("Timestamp", (1001, 2000))]
    q = _rebuild(p)
    if edit == "bad_csum":
        q = Ether(bytes(segs[1]))
        q[Geneve][TCP].chksum ^= 0x0101
    merged = coalesce([segs[0], q, segs[2]])
    assert len(merged) >= 2, edit
    assert bytes(merged[0])[14:] != bytes(segs[0])[14:] or len(merged[0]) == len(segs[0])


def test_pure_acks_pass_through():
    acks = [geneve_super(0, flags="A", seq=1000 + i) for i in range(3)]
    assert lens(coalesce(acks)) == lens(acks)


def test_interleaved_flows_merge_separately_in_place_of_their_first_segment():
    a = _segs()
    b = segment(
        geneve_super(3000, flags="A", options=[GeneveOption(classid=0x0102, type=0x80, data=b"\0\1\0\3")]),
        mss=1000,
    )
    merged = coalesce([a[0], b[0], a[1], b[1], a[2], b[2]])
    assert [len(m[Geneve][TCP].payload) for m in merged] == [3000, 3000]
    assert bytes(merged[0][Geneve].options[0])[4:] == b"\0\1\0\2"


def test_fixed_inner_ip_id_merges_only_with_df():
    segs = segment(geneve_super(3000, flags="A"), mss=1000, ip_id="fixed")
    assert len(coalesce(segs)) == 1
    nodf = [Ether(bytes(s)) for s in segs]
    for s in nodf:
        s[Geneve][IP].flags = 0
    assert len(coalesce([_rebuild(s) for s in nodf])) == 3


def test_outer_ip_id_is_not_checked_when_df_is_set():
    segs = [Ether(bytes(s)) for s in segment(geneve_super(3000, flags="A"), mss=1000, outer_ip_id="fixed")]
    assert len(coalesce([_rebuild(s) for s in segs])) == 3  # no DF: fixed outer ID flushes
    for s in segs:
        s[IP].flags = "DF"
    assert len(coalesce([_rebuild(s) for s in segs])) == 1


def test_non_ip_and_unparseable_frames_pass_through(no_debug_dissector):
    from scapy.layers.l2 import ARP

    junk = [Ether() / ARP(), Ether(bytes(geneve_super(100))[:40])]
    assert [bytes(p) for p in coalesce(junk)] == [bytes(p) for p in junk]


def test_wrong_checksums_knob():
    with pytest.raises(ValueError, match="partial"):
        coalesce(_segs(), checksums="maybe")


def test_coalesce_indexed_streams_each_super_packet_once_final():
    from scapy_geneve.offload.gro import coalesce_indexed

    first = [bytes(s) for s in segment(geneve_super(3000, flags="PA"), mss=1000)]
    consumed = []

    def frames():
        for i, f in enumerate(first + first):  # the repeat is not contiguous: new packets
            consumed.append(i)
            yield f

    it = coalesce_indexed(frames())
    frame, index = next(it)
    assert index == 0 and len(consumed) == 3  # out as soon as its PSH segment was read
    assert len(frame) == len(as_captured(geneve_super(3000)))


def test_big_tcp_round_trip_beyond_64k():
    """BIG TCP (gro_max_size > 64K): IPv4 total length 0 and IPv6 payload length 0."""
    for v6 in (False, True):
        small = bytearray(bytes(plain_tcp(8, v6=v6)))
        o = parse_offsets(bytes(small))
        big = bytearray(small[: o.payload_off]) + payload(100_000)
        struct.pack_into("!H", big, o.ip.off + (4 if v6 else 2), 0)
        if not v6:
            struct.pack_into("!H", big, o.ip.off + 10, 0)
            struct.pack_into("!H", big, o.ip.off + 10, ipv4_header_checksum(big[o.ip.off : o.ip.off + 20]))
        big = as_captured(bytes(big))
        segs = segment(Ether(big), mss=1448)
        assert len(segs) == 70 and b"".join(bytes(s)[o.payload_off :] for s in segs) == payload(100_000)
        assert [bytes(m) for m in coalesce(segs, max_size=1 << 20)] == [big]
        assert len(coalesce(segs)) == 2  # default gro_max_size: 64 KB


def test_flush_every_models_the_end_of_a_napi_poll():
    segs = segment(geneve_super(5000, flags="PA"), mss=1000)  # 5 segments
    assert [len(m[Geneve][TCP].payload) for m in coalesce(segs, flush_every=2)] == [2000, 2000, 1000]
    assert len(coalesce(segs, flush_every=64)) == 1
    with pytest.raises(ValueError, match="flush_every"):
        coalesce(segs, flush_every=0)


# -- bounds (issue 12): held flows by count, by age; memory stays bounded -----------------------
from scapy_geneve.offload.gro import (  # noqa: E402
    MAX_AGE_NS,
    MAX_FLOWS,
    coalesce_bytes,
    coalesce_indexed,
    coalesce_timed,
)


def _two_segments(sport: int) -> list:
    """A 2000-byte TCP super-packet of flow SPORT cut at MSS 1000: two full segments."""
    sup = (
        OUTER_ETH
        / IP(src="10.0.0.1", dst="10.0.0.2", id=1, flags="DF")
        / TCP(sport=sport, dport=80, seq=1, ack=1, flags="A")
        / Raw(payload(2000))
    )
    return segment_bytes(bytes(sup), mss=1000)


def test_at_most_64_flows_are_held_and_a_new_one_flushes_the_oldest():
    """MAX_GRO_SKBS (8) per bucket, GRO_HASH_BUCKETS (8): the kernel never holds more than
    64 super-packets; gro_flush_oldest makes room.  65 flows' first segments, then their
    second ones: each second segment finds its flow already flushed."""
    flows = [_two_segments(1000 + i) for i in range(65)]
    frames = [f[0] for f in flows] + [f[1] for f in flows]
    assert MAX_FLOWS == 64
    assert len(coalesce_bytes(frames, max_flows=None)) == 65  # unbounded: every pair merged
    assert len(coalesce_bytes(frames)) == 130  # bounded: none merged
    first64 = [f[0] for f in flows[:64]] + [f[1] for f in flows[:64]]
    assert len(coalesce_bytes(first64)) == 64  # 64 fit: all merged


def test_a_held_super_packet_is_flushed_after_max_age_packets_frames():
    a1, a2 = _two_segments(1000)
    others = [bytes(Ether() / ARP())] * 50
    # a2 is the 51st frame after a1: a1 is flushed once 51 later frames arrived
    assert len(coalesce_bytes([a1, *others, a2], max_age_packets=52)) == 51  # merged
    assert len(coalesce_bytes([a1, *others, a2], max_age_packets=51)) == 52  # flushed first


def test_frames_behind_an_open_super_packet_wait_for_at_most_max_age_packets_frames():
    """Streaming memory is bounded: with one flow left open forever, the output still
    flows (it held every later frame until the end of the input)."""
    consumed = 0

    def endless():
        nonlocal consumed
        yield _two_segments(1000)[0]  # opened, never continued
        arp = bytes(Ether() / ARP())
        while True:
            consumed += 1
            yield arp

    out = coalesce_indexed(endless(), max_age_packets=100)
    first, index = next(out)
    assert index == 0 and consumed <= 101
    for _ in range(1000):
        next(out)
    assert consumed <= 1101


def test_a_held_super_packet_is_flushed_by_time_as_napi_flush_old_does():
    """Packet times (a capture's timestamps) age held super-packets: nothing is held past
    MAX_AGE_NS (2 jiffies at HZ=100) after its first segment."""
    a1, a2 = _two_segments(1000)
    b = _two_segments(2000)
    t0 = 1_700_000_000 * 10**9
    soon = [(a1, t0), (b[0], t0 + 10**6), (a2, t0 + 10**7)]
    late = [(a1, t0), (b[0], t0 + 10**6), (a2, t0 + MAX_AGE_NS + 1)]
    assert len(list(coalesce_timed(soon))) == 2  # a merged, b alone
    assert len(list(coalesce_timed(late))) == 3  # a flushed before a2
    assert len(list(coalesce_timed(late, max_age_ns=None))) == 2


def test_coalesce_of_scapy_packets_ignores_creation_times_by_default():
    """A packet built in Python carries its creation time, not an arrival time."""
    segs = [Ether(f) for f in _two_segments(1000)]
    segs[1].time = segs[0].time + 3600
    assert len(coalesce(segs)) == 1
    assert len(coalesce(segs, max_age_ns=MAX_AGE_NS)) == 2
