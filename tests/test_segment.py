"""segment() and finish_checksums(): the per-segment rules of Linux software GSO.

Rules: specs.md §7.3 (tcp_gso_segment, __skb_udp_tunnel_segment,
inet_gso_segment, ipv6_gso_segment, __udp_gso_segment, gre_gso_segment).
The byte-for-byte check against the kernel itself is tests/test_kernel_gso.py;
here every rule gets its own test on super-packets built with Scapy, and every
segment's checksums and lengths are re-derived by Scapy (an implementation
independent of scapy_geneve.checksum).
"""

import struct
from typing import List, Optional

import pytest
from scapy.layers.inet import GRE, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, Jumbo
from scapy.layers.l2 import ARP, LLC, Dot3, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from scapy_geneve import compat
from scapy_geneve import BuildError, CaptureError, Geneve, GeneveOption, finish_checksums, segment
from scapy_geneve.checksum import csum_add, csum_block, pseudo_header_sum
from scapy_geneve.offload.gro import coalesce_bytes
from scapy_geneve.offload.segment import (
    NotSegmentable,
    finish_checksums_bytes,
    parse_offsets,
    segment_bytes,
)

OUTER_ETH = Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
INNER_ETH = Ether(dst="02:00:00:00:bb:01", src="02:00:00:00:aa:01")
TS = [("NOP", None), ("NOP", None), ("Timestamp", (1000, 2000))]  # 12 bytes: TCP header 32


def payload(n: int) -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def two_options() -> List[GeneveOption]:
    """OVN-style metadata (class 0x0102, 4 bytes) and a critical 8-byte experimental option."""
    return [
        GeneveOption(classid=0x0102, type=0x80, data=b"\x00\x01\x00\x02"),
        GeneveOption(classid=0xFFFF, type=0x01, data=b"ABCDEFGH"),
    ]


def inner_tcp(
    n: int, v6: bool = False, flags: str = "PA", ip_id: int = 7, seq: int = 1000, **tcp: object
) -> Packet:
    ip = (
        IPv6(src="fd00::1", dst="fd00::2")
        if v6
        else IP(src="192.168.1.1", dst="192.168.1.2", id=ip_id, flags="DF")
    )
    return (
        ip
        / TCP(sport=40000, dport=5001, seq=seq, ack=555, flags=flags, window=502, options=TS, **tcp)
        / Raw(payload(n))
    )


def geneve_super(
    n: int,
    v6_outer: bool = False,
    v6_inner: bool = False,
    udp_csum: bool = False,
    options: Optional[List[GeneveOption]] = None,
    flags: str = "PA",
    **tcp: object,
) -> Ether:
    outer = (
        IPv6(src="2001:db8::1", dst="2001:db8::2")
        if v6_outer
        else IP(src="10.0.0.1", dst="10.0.0.2", id=3000)
    )
    return (
        OUTER_ETH
        / outer
        / UDP(sport=51000, dport=6081, chksum=None if udp_csum else 0)
        / Geneve(vni=0x1234, options=two_options() if options is None else options)
        / INNER_ETH
        / inner_tcp(n, v6_inner, flags, **tcp)
    )


def vxlan_super(n: int, udp_csum: bool = False) -> Ether:
    return (
        OUTER_ETH
        / IP(src="10.0.0.1", dst="10.0.0.2", id=3000)
        / UDP(sport=51000, dport=4789, chksum=None if udp_csum else 0)
        / VXLAN(flags=0x08, vni=42)
        / INNER_ETH
        / inner_tcp(n)
    )


def nvgre_super(n: int, gre_csum: bool = False) -> Ether:
    gre = GRE(key_present=1, key=(0xABCDEF << 8) | 0x5A, proto=0x6558, chksum_present=int(gre_csum))
    return OUTER_ETH / IP(src="10.0.0.1", dst="10.0.0.2", id=3000) / gre / INNER_ETH / inner_tcp(n)


def plain_tcp(n: int, v6: bool = False, **kw: object) -> Ether:
    return OUTER_ETH / inner_tcp(n, v6, **kw)


def scapy_rebuilds_identically(frame: bytes) -> bool:
    """Let Scapy recompute every length and checksum: nothing may change.

    A zero UDP checksum is kept (it means "none" on IPv4)."""
    p = Ether(frame)
    layer: Packet = p
    while layer and not isinstance(layer, (Raw,)):
        if isinstance(layer, IP):
            layer.len = layer.chksum = None
        elif isinstance(layer, IPv6):
            layer.plen = None
        elif isinstance(layer, TCP):
            layer.chksum = None
        elif isinstance(layer, UDP):
            layer.len = None
            if layer.chksum:
                layer.chksum = None
        elif isinstance(layer, GRE) and layer.chksum_present:
            layer.chksum = None
        layer = layer.payload
    return bytes(Ether(bytes(p))) == frame and bytes(p) == frame


def raw_segments(pkt: Packet, **kw: object) -> List[bytes]:
    return [bytes(s) for s in segment(pkt, **kw)]


# -- a golden vector ---------------------------------------------------------------------

#: Segment 1 (the second and last) of an 8-byte super-packet cut at MSS 4: Ether / IPv4 /
#: UDP (checksum 0) / Geneve (VNI 0x123456, one critical option) / Ether / IPv4 / TCP [FPA].
SEGMENT_1 = bytes.fromhex(
    "020000000002"
    "020000000001"
    "0800"  # outer Ethernet: copied
    "4500"
    "0066"
    "1001"
    "0000"
    "4011"
    "5684"  # IPv4: len 102, ID 0x1000+1, csum
    "0a000001"
    "0a000002"
    "c000"
    "17c1"
    "0052"
    "0000"  # UDP 49152 > 6081, len 82, csum 0 stays 0
    "0240"
    "6558"
    "123456"
    "00"  # Geneve: Opt Len 2, C bit, TEB, VNI
    "0102"
    "80"
    "01"
    "00010002"  # option class 0x0102 type 0x80 (critical)
    "02000000bb01"
    "02000000aa01"
    "0800"  # inner Ethernet: copied
    "4500"
    "002c"
    "0008"
    "4000"
    "4006"
    "b770"  # IPv4: len 44, ID 7+1, DF, csum
    "c0a80101"
    "c0a80102"
    "9c40"
    "1389"
    "000003ec"
    "0000022b"  # TCP 40000 > 5001, seq 1000+4, ack 555
    "5019"
    "01f6"
    "a7ce"
    "0000"  # FIN PSH ACK (last segment), win 502, csum
    "65666768"
)  # "efgh"


def test_golden_vector_of_the_last_segment():
    sup = (
        OUTER_ETH
        / IP(src="10.0.0.1", dst="10.0.0.2", id=0x1000)
        / UDP(sport=0xC000, dport=6081, chksum=0)
        / Geneve(vni=0x123456, options=[GeneveOption(classid=0x0102, type=0x80, data=b"\0\1\0\2")])
        / INNER_ETH
        / IP(src="192.168.1.1", dst="192.168.1.2", id=7, flags="DF")
        / TCP(sport=40000, dport=5001, seq=1000, ack=555, flags="FPA", window=502)
        / Raw(b"abcdefgh")
    )
    first, last = raw_segments(sup, mss=4)
    assert last == SEGMENT_1
    assert first[-4:] == b"abcd" and first[14 + 20 + 8 + 16 + 14 + 20 + 13] == 0x10  # ACK only
    assert scapy_rebuilds_identically(first) and scapy_rebuilds_identically(last)


# -- the tunnel header and the payload ------------------------------------------


def test_geneve_header_with_every_option_is_copied_into_every_segment():
    sup = geneve_super(5000)
    raw = bytes(sup)
    o = parse_offsets(raw)
    geneve = raw[o.tunnel_off + 8 : o.inner_l2]
    assert len(geneve) == 8 + (4 + 4) + (4 + 8)  # base, option 1 (hdr + 4), option 2 (hdr + 8)
    segs = raw_segments(sup, mss=1000)
    assert len(segs) == 5
    for s in segs:
        assert s[o.tunnel_off + 8 : o.inner_l2] == geneve
        assert s[o.inner_l2 : o.ip.off] == raw[o.inner_l2 : o.ip.off]  # inner Ethernet
        assert s[: o.outer.off] == raw[: o.outer.off]  # outer Ethernet
        assert s[o.tunnel_off : o.tunnel_off + 4] == raw[o.tunnel_off : o.tunnel_off + 4]  # UDP ports


def test_payloads_concatenate_to_the_original_and_all_but_the_last_carry_mss():
    sup = geneve_super(5000)
    o = parse_offsets(bytes(sup))
    segs = raw_segments(sup, mss=1200)
    assert [len(s) - o.payload_off for s in segs] == [1200, 1200, 1200, 1200, 200]
    assert b"".join(s[o.payload_off :] for s in segs) == payload(5000)


@pytest.mark.parametrize(
    "build", [geneve_super, vxlan_super, nvgre_super, plain_tcp], ids=["geneve", "vxlan", "nvgre", "tcp"]
)
@pytest.mark.parametrize("csum", [False, True], ids=["csum0", "csum"])
def test_every_segment_has_the_lengths_and_checksums_scapy_computes(build, csum):
    sup = (
        build(4000, udp_csum=csum)
        if build in (geneve_super, vxlan_super)
        else (build(4000, gre_csum=csum) if build is nvgre_super else build(4000))
    )
    for s in raw_segments(sup, mss=1000):
        assert scapy_rebuilds_identically(s), Ether(s).show(dump=True)


@pytest.mark.parametrize("v6_outer,v6_inner", [(False, True), (True, False), (True, True)])
def test_ipv6_outer_and_inner_payload_lengths(v6_outer, v6_inner):
    sup = geneve_super(3000, v6_outer=v6_outer, v6_inner=v6_inner, udp_csum=True)
    segs = raw_segments(sup, mss=1000)
    assert len(segs) == 3
    for s in segs:
        assert scapy_rebuilds_identically(s)
        p = Ether(s)
        if v6_outer:
            assert p[IPv6].plen == len(s) - 14 - 40


# -- IP IDs ---------------------------------------------------------------------------


def test_outer_and_inner_ipv4_ids_count_up_one_per_segment():
    segs = segment(geneve_super(4000), mss=1000)
    assert [s[IP].id for s in segs] == [3000, 3001, 3002, 3003]
    assert [s[Geneve][IP].id for s in segs] == [7, 8, 9, 10]


def test_ipv4_ids_wrap_at_16_bits():
    sup = geneve_super(3000)
    sup[IP].id = 0xFFFF
    sup[Geneve][IP].id = 0xFFFE
    segs = segment(sup, mss=1000)
    assert [s[IP].id for s in segs] == [0xFFFF, 0, 1]
    assert [s[Geneve][IP].id for s in segs] == [0xFFFE, 0xFFFF, 0]


def test_fixed_id_knobs_keep_the_ids():
    segs = segment(geneve_super(4000), mss=1000, outer_ip_id="fixed", ip_id="fixed")
    assert {s[IP].id for s in segs} == {3000}
    assert {s[Geneve][IP].id for s in segs} == {7}
    assert all(scapy_rebuilds_identically(bytes(s)) for s in segs)


def test_df_ttl_tos_are_copied():
    sup = geneve_super(3000)
    sup[IP].flags = "DF"
    sup[IP].ttl = 17
    sup[IP].tos = 0xB8
    for s in segment(sup, mss=1000):
        assert (s[IP].flags, s[IP].ttl, s[IP].tos) == ("DF", 17, 0xB8)
        assert s[Geneve][IP].flags == "DF"


# -- TCP ------------------------------------------------------------------------------


def test_sequence_numbers_advance_by_mss_and_wrap():
    sup = geneve_super(3000, seq=0xFFFFFC00)
    #                                          +1000        +2000 wraps past 2**32
    assert [s[TCP].seq for s in segment(sup, mss=1000)] == [0xFFFFFC00, 0xFFFFFFE8, 0x000003D0]


def test_cwr_on_the_first_segment_fin_and_psh_on_the_last():
    segs = segment(geneve_super(3000, flags="FPAEC"), mss=1000)
    assert [str(s[TCP].flags) for s in segs] == ["AEC", "AE", "FPAE"]


def test_cwr_all_knob_keeps_cwr_everywhere_accecn():
    segs = segment(geneve_super(3000, flags="PAC"), mss=1000, cwr="all")
    assert all(s[TCP].flags.C for s in segs)


def test_urg_and_urgent_pointer_ack_window_options_are_copied():
    segs = segment(geneve_super(3000, flags="UA", urgptr=77), mss=1000)
    for s in segs:
        t = s[TCP]
        assert (str(t.flags), t.urgptr, t.ack, t.window, t.options) == ("AU", 77, 555, 502, TS)


# -- outer UDP checksum -----------------------------------------------------------------


def test_zero_outer_udp_checksum_stays_zero():
    assert {s[UDP].chksum for s in segment(geneve_super(4000), mss=1000)} == {0}


def test_nonzero_outer_udp_checksum_is_computed_in_every_segment():
    segs = segment(geneve_super(4000, udp_csum=True), mss=1000)
    assert all(s[UDP].chksum != 0 for s in segs)
    assert all(scapy_rebuilds_identically(bytes(s)) for s in segs)
    # local checksum offload: with valid inner checksums, the outer checksum
    # of equal-length segments does not depend on the payload (REPORT.md §2)
    assert len({s[UDP].chksum for s in segs}) == 1


def test_partial_outer_checksum_in_the_super_packet_means_computed():
    sup = geneve_super(4000, udp_csum=True)
    raw = bytearray(bytes(sup))
    o = parse_offsets(bytes(raw))
    struct.pack_into(
        "!H",
        raw,
        o.tunnel_off + 6,
        csum_add(pseudo_header_sum(o.outer.src, o.outer.dst, 17, o.end - o.tunnel_off)),
    )
    assert all(scapy_rebuilds_identically(s) for s in segment_bytes(bytes(raw), mss=1000))


def test_computed_zero_outer_udp_checksum_is_sent_as_ffff():
    """RFC 768: 0 means 'no checksum', so a computed 0 goes out as 0xFFFF (CSUM_MANGLED_0).
    The outer sum is independent of the payload: tune a 4-byte option to hit 0."""

    def build(word: int) -> Ether:
        opts = [GeneveOption(classid=0xFFFF, type=0x01, data=struct.pack("!I", word))]
        return geneve_super(3000, udp_csum=True, options=opts)

    first = bytes(segment(build(0), mss=1000)[0])
    o = parse_offsets(first)
    s = csum_add(
        pseudo_header_sum(o.outer.src, o.outer.dst, 17, o.end - o.tunnel_off),
        csum_block(first[o.tunnel_off : o.tunnel_off + 6] + b"\0\0" + first[o.tunnel_off + 8 :]),
    )
    word = (0xFFFF - s) & 0xFFFF  # makes the ones'-complement sum 0xFFFF: checksum 0
    segs = segment(build(word), mss=1000)
    assert segs[0][UDP].chksum == 0xFFFF
    assert scapy_rebuilds_identically(bytes(segs[0]))


def test_outer_udp_checksum_knob_forces_either_way():
    assert all(s[UDP].chksum for s in segment(geneve_super(3000), mss=1000, outer_udp_csum=True))
    assert not any(
        s[UDP].chksum for s in segment(geneve_super(3000, udp_csum=True), mss=1000, outer_udp_csum=False)
    )


def test_csum_offload_leaves_inner_checksum_partial_and_outer_valid_once_filled():
    sup = geneve_super(3000, udp_csum=True)
    full = raw_segments(sup, mss=1000)
    part = raw_segments(sup, mss=1000, csum_offload=True)
    for f, p in zip(full, part):
        o = parse_offsets(p)
        at = o.l4_off + 16
        assert p[:at] == f[:at] and p[at + 2 :] == f[at + 2 :]
        assert struct.unpack_from("!H", p, at)[0] == csum_add(
            pseudo_header_sum(o.ip.src, o.ip.dst, 6, o.end - o.l4_off)
        )


# -- MTU -------------------------------------------------------------------------------


def test_mtu_counts_every_outer_header_and_option():
    sup = geneve_super(10000)
    # outer IPv4 20 + UDP 8 + Geneve 8 + options (4+4) + (4+8) + inner Ethernet 14 + IPv4 20 + TCP 32
    headers = 20 + 8 + 8 + 20 + 14 + 20 + 32
    segs = raw_segments(sup, mtu=1500)
    o = parse_offsets(bytes(sup))
    assert len(segs[0]) - o.payload_off == 1500 - headers
    assert max(len(s) - 14 for s in segs) == 1500


def test_mtu_and_mss_together_must_agree():
    with pytest.raises(BuildError, match="mtu 1400"):
        segment(geneve_super(5000), mss=1400, mtu=1400)


def test_payload_that_fits_gives_one_finished_packet():
    sup = geneve_super(500)
    segs = segment(sup, mtu=1500)
    assert len(segs) == 1 and bytes(segs[0]) == bytes(sup)


# -- other encapsulations and UDP GSO ------------------------------------------------------


def test_vxlan_header_copied_and_lengths_per_segment():
    sup = vxlan_super(3000, udp_csum=True)
    segs = segment(sup, mss=1000)
    assert [s[VXLAN].vni for s in segs] == [42] * 3
    assert [s[UDP].len for s in segs] == [8 + 8 + 14 + 20 + 32 + 1000] * 3


def test_nvgre_key_copied_and_gre_checksum_computed():
    segs = segment(nvgre_super(3000, gre_csum=True), mss=1000)
    assert {s[GRE].key for s in segs} == {(0xABCDEF << 8) | 0x5A}
    assert all(scapy_rebuilds_identically(bytes(s)) for s in segs)


def test_plain_tcp_over_ipv6():
    segs = segment(plain_tcp(3000, v6=True), mtu=1500)
    mss = 1500 - 40 - 32  # IPv6 40 + TCP with timestamps 32
    assert [len(s[TCP].payload) for s in segs] == [mss, mss, 3000 - 2 * mss]


def test_udp_gso_cuts_the_payload_into_datagrams():
    sup = (
        OUTER_ETH / IP(src="10.1.1.1", dst="10.1.1.2", id=10) / UDP(sport=1, dport=9999) / Raw(payload(3500))
    )
    segs = segment(sup, mss=1000)
    assert [len(s[UDP].payload) for s in segs] == [1000, 1000, 1000, 500]
    assert [s[UDP].len for s in segs] == [1008, 1008, 1008, 508]
    assert [s[IP].id for s in segs] == [10, 11, 12, 13]
    assert b"".join(bytes(s[UDP].payload) for s in segs) == payload(3500)
    assert all(scapy_rebuilds_identically(bytes(s)) for s in segs)


def test_udp_gso_inside_geneve():
    sup = (
        OUTER_ETH
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / UDP(sport=5, dport=6081, chksum=0)
        / Geneve(vni=9, options=two_options())
        / INNER_ETH
        / IPv6(src="fd00::1", dst="fd00::2")
        / UDP(sport=7, dport=8)
        / Raw(payload(2500))
    )
    segs = segment(sup, mss=1200)
    assert [len(s[Geneve][UDP].payload) for s in segs] == [1200, 1200, 100]
    assert all(scapy_rebuilds_identically(bytes(s)) for s in segs)


@pytest.mark.parametrize("tunnel", ["geneve-ipv4", "geneve-ipv6", "gpe-ipv4", "gre-ipv4"])
def test_tunnels_carrying_ip_without_an_inner_ethernet_header(tunnel):
    """Geneve Protocol Type 0x0800/0x86DD, VXLAN-GPE Next Protocol 1, GRE protocol 0x0800."""
    outer = OUTER_ETH / IP(src="10.0.0.1", dst="10.0.0.2", id=1)
    inner = inner_tcp(3000, v6=tunnel.endswith("ipv6"))
    if tunnel.startswith("geneve"):
        sup = outer / UDP(sport=5, dport=6081, chksum=0) / Geneve(vni=1, options=two_options()) / inner
    elif tunnel == "gpe-ipv4":
        sup = outer / UDP(sport=5, dport=4790) / VXLAN(flags=0x0C, NextProtocol=1, vni=5) / inner
    else:
        sup = outer / GRE(proto=0x0800) / inner
    raw = bytes(sup)
    o = parse_offsets(raw)
    assert o.inner_l2 == o.ip.off  # no inner Ethernet
    segs = segment_bytes(raw, mss=1000)
    assert len(segs) == 3
    assert all(scapy_rebuilds_identically(x) for x in segs)
    assert b"".join(x[o.payload_off :] for x in segs) == payload(3000)


def test_ipv6_extension_headers_are_copied():
    from scapy.layers.inet6 import IPv6ExtHdrDestOpt

    sup = (
        OUTER_ETH
        / IPv6(src="fd00::1", dst="fd00::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / TCP(sport=1, dport=2, seq=5, flags="PA")
        / Raw(payload(3000))
    )
    raw = bytes(sup)
    segs = segment_bytes(raw, mss=1000)
    assert [len(x) for x in segs] == [14 + 40 + 8 + 8 + 20 + 1000] * 3
    assert all(x[14 + 40 : 14 + 56] == raw[14 + 40 : 14 + 56] for x in segs)
    assert all(scapy_rebuilds_identically(x) for x in segs)


def test_tunnel_on_a_custom_port_is_found_from_the_layers():
    from scapy.packet import bind_bottom_up, split_bottom_up

    # Dissection binding only: bind_layers would also replace Geneve's build-time
    # overload (dport 6081) for every later test in the process.
    bind_bottom_up(UDP, Geneve, dport=16081)
    try:
        sup = geneve_super(3000)
        sup[UDP].dport = 16081
        sup = Ether(bytes(sup))
        segs = segment(sup, mss=1000)
        assert [s[Geneve][TCP].seq for s in segs] == [1000, 2000, 3000]
    finally:
        split_bottom_up(UDP, Geneve, dport=16081)


# -- captures taken before the NIC -----------------------------------------------------------


def test_big_tcp_ipv4_total_length_zero():
    sup = bytearray(bytes(geneve_super(4000)))
    o = parse_offsets(bytes(sup))
    struct.pack_into("!H", sup, o.outer.off + 2, 0)
    struct.pack_into("!H", sup, o.ip.off + 2, 0)
    assert raw_segments(Ether(bytes(sup)), mss=1000) == raw_segments(geneve_super(4000), mss=1000)


def test_big_tcp_ipv6_payload_length_zero_and_old_style_jumbo_option():
    ref = raw_segments(plain_tcp(3000, v6=True), mss=1000)
    sup = bytearray(bytes(plain_tcp(3000, v6=True)))
    struct.pack_into("!H", sup, 14 + 4, 0)
    assert segment_bytes(bytes(sup), mss=1000) == ref
    jumbo = (
        OUTER_ETH
        / IPv6(src="fd00::1", dst="fd00::2", plen=0)
        / IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=8 + 32 + 3000)])
        / TCP(sport=40000, dport=5001, seq=1000, ack=555, flags="PA", window=502, options=TS)
        / Raw(payload(3000))
    )
    assert segment_bytes(bytes(jumbo), mss=1000) == ref


def test_partial_inner_checksum_in_the_super_packet_is_fine():
    sup = bytearray(bytes(geneve_super(4000)))
    o = parse_offsets(bytes(sup))
    struct.pack_into("!H", sup, o.l4_off + 16, 0x1234)
    assert segment_bytes(bytes(sup), mss=1000) == raw_segments(geneve_super(4000), mss=1000)


def test_ethernet_padding_after_the_datagram_is_dropped():
    sup = bytes(geneve_super(3000)) + b"\0" * 4
    assert segment_bytes(sup, mss=1000) == raw_segments(geneve_super(3000), mss=1000)


def test_times_are_copied():
    sup = geneve_super(3000)
    sup.time = 1234.5
    assert {s.time for s in segment(sup, mss=1000)} == {1234.5}


# -- finish_checksums ----------------------------------------------------------------------------


def test_finish_checksums_fixes_lengths_and_partial_checksums_only():
    good = bytes(geneve_super(3000, udp_csum=True))
    bad = bytearray(good)
    o = parse_offsets(good)
    for at in (o.outer.off + 2, o.ip.off + 2, o.l4_off + 16, o.tunnel_off + 6 + 0):
        struct.pack_into("!H", bad, at, 0 if at != o.tunnel_off + 6 else 0x1111)
    assert bytes(finish_checksums(Ether(bytes(bad)))) == good


def test_finish_checksums_keeps_a_zero_outer_udp_checksum_and_flags_and_ids():
    sup = geneve_super(3000, flags="FPAC")
    fixed = finish_checksums(sup)
    assert bytes(fixed) == bytes(sup)
    assert fixed[UDP].chksum == 0


def test_finish_checksums_leaves_non_ip_frames_alone():
    arp = Ether() / ARP()
    assert bytes(finish_checksums(arp)) == bytes(arp)


def test_finish_checksums_of_a_tunnel_carrying_arp_finishes_the_outer_packet():
    p = (
        OUTER_ETH
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / UDP(sport=5, dport=6081)
        / Geneve(vni=1)
        / INNER_ETH
        / ARP()
    )
    bad = bytearray(bytes(p))
    struct.pack_into("!H", bad, 14 + 20 + 6, 0x1111)
    assert bytes(finish_checksums(Ether(bytes(bad)))) == bytes(p)


# -- errors: clear, typed, naming where -----------------------------------------------------------


def test_mss_must_be_positive():
    with pytest.raises(BuildError, match="segment.mss: value 0"):
        segment(geneve_super(3000), mss=0)


def test_mtu_too_small_for_the_headers():
    with pytest.raises(BuildError, match="122 bytes of headers"):
        segment(geneve_super(3000), mtu=100)


def test_truncated_capture_names_the_offset():
    raw = bytes(geneve_super(3000))[:1000]
    with pytest.raises(CaptureError, match=r"outer IPv4 total length 3\d+ runs past the 986 bytes.*byte 14"):
        segment_bytes(raw, mss=500)


def test_fragment_cannot_be_segmented():
    p = OUTER_ETH / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / UDP() / Raw(payload(100))
    with pytest.raises(CaptureError, match="fragment"):
        segment(p, mss=50)


def test_non_tcp_udp_payload_larger_than_mss():
    p = OUTER_ETH / IP(src="10.0.0.1", dst="10.0.0.2", proto=132) / Raw(payload(3000))
    with pytest.raises(BuildError, match="neither TCP nor UDP"):
        segment(p, mss=1000)


def test_wrong_knob_value():
    with pytest.raises(ValueError, match="ip_id must be one of"):
        segment(geneve_super(3000), mss=1000, ip_id="random")


def test_not_a_packet():
    with pytest.raises(TypeError, match=r"Ether \(or 802.3\), IP or IPv6"):
        segment(TCP(), mss=100)  # type: ignore[arg-type]


def test_ip_layer_input_gives_ip_layer_output():
    segs = segment(inner_tcp(3000), mss=1000)
    assert all(isinstance(s, IP) for s in segs) and len(segs) == 3


# -- tshark as an independent checker -------------------------------------------------------


@pytest.mark.oracle
def test_tshark_finds_every_checksum_good_in_every_kind_of_segment(tshark, tmp_path):
    """Geneve (IPv4/IPv6, UDP checksum on), VXLAN, NVGRE, plain TCP/IPv6, UDP GSO:
    tshark validates every IPv4, UDP and TCP checksum of every segment."""
    from scapy.utils import wrpcap

    from tests.test_corpus_gso import _tshark_status

    supers = [
        geneve_super(4000, udp_csum=True),
        geneve_super(4000, v6_outer=True, v6_inner=True, udp_csum=True),
        vxlan_super(4000, udp_csum=True),
        nvgre_super(4000),
        plain_tcp(4000, v6=True),
        OUTER_ETH / IP(src="10.1.1.1", dst="10.1.1.2") / UDP(sport=1, dport=9999) / Raw(payload(3500)),
    ]
    segs = [s for sup in supers for s in segment(sup, mss=1000)]
    pcap = tmp_path / "all.pcap"
    wrpcap(str(pcap), segs)
    out = _tshark_status(tshark, pcap)  # the corpus test's tshark checksum verdicts
    assert len(out) == len(segs)
    for line in out:
        statuses = {v for field in line for v in field.split(",") if v}
        assert statuses <= {"1", "2"}, line  # 1 good, 2 unverified (none expected 0 = bad)
        assert "1" in statuses


def test_segment_copies_the_first_segment_instead_of_dissecting_each(monkeypatch):
    """A 64 KB Geneve super-packet: the first and last segments are dissected, every
    other one is a copy of the first with its own IDs, sequence number, flags,
    checksums and payload (tests/test_segment_props.py proves the copies equal full
    dissections); the copies share no mutable value with each other."""
    calls = []
    real = compat.fast_copy  # copies a layer and, calling itself, each payload and option
    monkeypatch.setattr(compat, "fast_copy", lambda *a, **k: calls.append(1) or real(*a, **k))
    opts = [
        GeneveOption(classid=0x0102, type=0x80, data=b"\x00\x01\x00\x02"),
        GeneveOption(classid=0xFFFF, type=0x01, data=b"ABCDEFGH"),
    ]
    sup = (
        OUTER_ETH
        / IP(src="10.0.0.1", dst="10.0.0.2", id=1)
        / UDP(sport=1, dport=6081)
        / Geneve(vni=5, options=opts)
        / INNER_ETH
        / IP(src="192.168.0.1", dst="192.168.0.2")
        / TCP(sport=1, dport=2, flags="PA")
        / Raw(bytes(64000))
    )
    segs = segment(sup, mtu=1500)
    assert len(segs) == 47
    assert len(calls) >= 45 * 8  # every layer of the 45 middle segments was copied
    assert [bytes(p) for p in segs] == segment_bytes(bytes(sup), mtu=1500)
    segs[1][Geneve].options[0].classid = 0x0ABC
    segs[1][TCP].options.append(("NOP", None))
    assert segs[2][Geneve].options[0].classid == 0x0102 and segs[2][TCP].options == []
    assert bytes(segs[2]) == segment_bytes(bytes(sup), mtu=1500)[2]


@pytest.mark.parametrize("top", ["ip", "vlan"])
def test_copied_segments_equal_dissected_ones_for_ip_input_and_vlan_tags(top):
    """The copies also hold for a super-packet given as IPv6 (no Ethernet) and for
    an outer 802.1Q tag in front of a VXLAN tunnel."""
    from scapy.layers.l2 import Dot1Q

    if top == "ip":
        sup: Packet = (
            IPv6(src="fd00::1", dst="fd00::2")
            / TCP(sport=1, dport=2, flags="A", seq=7)
            / Raw(bytes(range(256)) * 40)
        )
        cls = IPv6
    else:
        sup = (
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / Dot1Q(vlan=10)
            / IP(src="10.0.0.1", dst="10.0.0.2", id=9)
            / UDP(sport=5, dport=4789)
            / VXLAN(vni=3)
            / INNER_ETH
            / IP(src="192.168.0.1", dst="192.168.0.2")
            / TCP(flags="PA")
            / Raw(bytes(9000))
        )
        cls = Ether
    segs = segment(sup, mss=1000)
    assert len(segs) >= 9
    for p in segs:
        full = cls(bytes(p))
        assert p == full and bytes(p) == bytes(full)
        a, b = p, full
        while a.__class__.__name__ != "NoPayload":
            assert type(a) is type(b) and compat.dissection_cache(a) == compat.dissection_cache(b)
            a, b = a.payload, b.payload


# -- hostile input (issue 12): every read bounds-checked, non-IP frames unchanged -------------

#: An empty UDP datagram to the VXLAN port, as the sending host captures it (42 bytes).
#: Nothing follows the UDP header: no room for a VXLAN header, so not a tunnel packet.
EMPTY_TO_4789 = bytes.fromhex(
    "020000000002"
    "020000000001"
    "0800"  # Ethernet
    "4500"
    "001c"
    "0001"
    "0000"
    "4011"
    "66ce"  # IPv4: total length 28 (20 + 8), UDP
    "0a000001"
    "0a000002"
    "c000"
    "12b5"
    "0008"
    "0000"  # UDP 49152 > 4789, length 8, no checksum
)
#: The same to Linux's VXLAN port 8472, with a UDP checksum.
EMPTY_TO_8472 = bytes.fromhex(
    "020000000002"
    "020000000001"
    "0800"
    "4500"
    "001c"
    "0001"
    "0000"
    "4011"
    "66ce"
    "0a000001"
    "0a000002"
    "c000"
    "2118"
    "0008"
    "0ac3"  # UDP 49152 > 8472, length 8, checksum
)


@pytest.mark.parametrize("frame", [EMPTY_TO_4789, EMPTY_TO_8472], ids=["4789", "8472"])
def test_an_empty_udp_datagram_to_a_vxlan_port_is_not_a_tunnel_packet(frame):
    """It used to raise IndexError (a read past the buffer); it is plain UDP with nothing to cut."""
    p = Ether(frame)
    assert len(frame) == 42 and bytes(p) == frame  # Scapy agrees with the annotation
    with pytest.raises(CaptureError, match="too short for a VXLAN header, not a tunnel packet"):
        segment_bytes(frame, mss=100)
    assert finish_checksums_bytes(frame) == frame  # checksums already right: unchanged
    assert coalesce_bytes([frame, frame, frame]) == [frame] * 3
    assert bytes(finish_checksums(p)) == frame


def test_finish_checksums_fixes_an_empty_datagram_as_plain_udp():
    bad = bytearray(EMPTY_TO_8472)
    bad[-2:] = b"\x12\x34"
    assert finish_checksums_bytes(bytes(bad)) == EMPTY_TO_8472


@pytest.mark.parametrize("cut", [14, 20, 33, 34, 41, 42 + 7, 42 + 15])
def test_a_tunnel_header_cut_anywhere_is_a_capture_error(cut):
    """Headers cut at every boundary: CaptureError naming a byte, never an IndexError."""
    raw = bytes(vxlan_super(100))[:cut]
    with pytest.raises(CaptureError, match=r"at byte \d+ of the packet"):
        segment_bytes(raw, mss=50)


def test_802_3_llc_frames_come_back_unchanged():
    """Scapy dissects an Ethernet frame whose type field is a length as Dot3: not IP,
    so segment() and finish_checksums() return it as it is (they raised TypeError)."""
    frame = (
        Dot3(dst="01:80:c2:00:00:00", src="02:00:00:00:00:01")
        / LLC(dsap=0x42, ssap=0x42, ctrl=3)
        / Raw(b"\0" * 35)
    )  # a spanning-tree BPDU's framing
    raw = bytes(frame)
    again = Ether(raw)
    assert isinstance(again, Dot3)
    assert [bytes(s) for s in segment(again, mss=10)] == [raw]
    assert bytes(finish_checksums(again)) == raw
    assert segment_bytes(raw, mss=10) == [raw] and finish_checksums_bytes(raw) == raw


def test_arp_comes_back_unchanged_from_segment():
    arp = Ether() / ARP()
    assert [bytes(s) for s in segment(arp, mss=10)] == [bytes(arp)]


def test_a_fragment_is_not_segmentable_and_says_so():
    p = OUTER_ETH / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / UDP() / Raw(payload(100))
    with pytest.raises(NotSegmentable, match="fragment"):
        segment_bytes(bytes(p), mss=50)


# -- the registry: ports and names written once (scapy_geneve.registry) ------------------------


def test_tunnel_ports_come_from_the_registry():
    """VXLAN on Cisco ACI's 48879 is VXLAN here as in every command (it was cut as plain
    UDP GSO); a Ports extended with a port adds it; NVGRE is "nvgre"."""
    from scapy_geneve import registry
    from scapy_geneve.offload.segment import TUNNEL_PORTS, tunnel_ports

    assert TUNNEL_PORTS == {4789: "vxlan", 4790: "vxlan-gpe", 6081: "geneve", 8472: "vxlan", 48879: "vxlan"}
    assert tunnel_ports(registry.DEFAULT_PORTS.extended(geneve=[6082]))[6082] == "geneve"
    aci = vxlan_super(3000)
    aci[UDP].dport = 48879
    segs = segment_bytes(bytes(aci), mss=1000)
    assert len(segs) == 3 and {parse_offsets(s).tunnel for s in segs} == {"vxlan"}  # UDP GSO: 4
    assert parse_offsets(bytes(nvgre_super(100))).tunnel == "nvgre"
    plain_gre = OUTER_ETH / IP(src="10.0.0.1", dst="10.0.0.2") / GRE(proto=0x0800) / inner_tcp(100)
    assert parse_offsets(bytes(plain_gre)).tunnel == "gre"  # RFC 2784 GRE carrying IP: not NVGRE


def test_a_registry_ports_table_adds_ports_for_the_bytes_path():
    from scapy_geneve import registry

    sup = geneve_super(3000)
    sup[UDP].dport = 16081
    raw = bytes(sup)
    assert parse_offsets(raw).tunnel is None
    ports = registry.DEFAULT_PORTS.extended(geneve=[registry.parse_port("0x3ed1")])
    assert parse_offsets(raw, tunnel_ports=ports).tunnel == "geneve"
    assert segment_bytes(raw, mss=1000, tunnel_ports=ports) == segment_bytes(raw, mss=1000, tunnel="gnv")
