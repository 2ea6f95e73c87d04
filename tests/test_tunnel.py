"""One API over five encapsulations: encapsulate/decapsulate and their defaults."""

import itertools

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from scapy_geneve import (
    NVGRE,
    STT,
    VXLAN,
    BuildError,
    build_vxlan,
    Geneve,
    GeneveOption,
    GeneveOptionOVN,
    L2TPv3,
    L2TPv3Control,
    NotATunnel,
    decapsulate,
    encapsulate,
)
from scapy_geneve.tunnels.tunnel import KINDS


def inner_frame(sport: int = 1000, tos: int = 0, size: int = 20) -> Ether:
    return (
        Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22")
        / IP(src="192.168.1.1", dst="192.168.1.2", tos=tos)
        / UDP(sport=sport, dport=2000)
        / Raw(b"p" * size)
    )


INNER = inner_frame()


def wire(outer):
    """What a capture would hold: the packets re-dissected from their bytes."""
    if isinstance(outer, list):
        return [wire(p) for p in outer]
    data = bytes(outer)
    return IPv6(data) if isinstance(outer, IPv6) else IP(data)


@pytest.mark.parametrize("kind, underlay", list(itertools.product(KINDS, ("ipv4", "ipv6"))))
def test_round_trip_keeps_inner_frame_and_identifier(kind, underlay):
    out = encapsulate(INNER, kind, vni=0xABCDE, underlay=underlay)
    inner, info = decapsulate(wire(out))
    assert bytes(inner) == bytes(INNER)
    assert (info.kind, info.vni, info.underlay) == (kind, 0xABCDE, underlay)


@pytest.mark.parametrize("src_kind, dst_kind", list(itertools.permutations(KINDS, 2)))
def test_re_encapsulating_in_another_kind_keeps_frame_and_identifier(src_kind, dst_kind):
    inner, info = decapsulate(wire(encapsulate(INNER, src_kind, vni=4242)))
    inner2, info2 = decapsulate(wire(encapsulate(inner, dst_kind, vni=info.vni)))
    assert bytes(inner2) == bytes(INNER) and info2.vni == 4242 and info2.kind == dst_kind


@pytest.mark.parametrize(
    "kind, alias, value",
    [("nvgre", "vsid", 0xABC), ("stt", "context_id", 1 << 60), ("l2tpv3", "session_id", 77)],
)
def test_kind_specific_identifier_names_are_aliases(kind, alias, value):
    _, info = decapsulate(wire(encapsulate(INNER, kind, **{alias: value})))
    assert info.vni == value == getattr(info, alias)


@pytest.mark.parametrize(
    "kind, kwargs",
    [
        ("nvgre", dict(vni=1, vsid=2)),  # disagreeing aliases
        ("vxlan", dict(context_id=5)),  # another kind's name
        ("geneve", dict()),  # no identifier
        ("vxlan", dict(vni=1 << 24)),
        ("nvgre", dict(vni=1 << 24)),
        ("l2tpv3", dict(vni=0)),
        ("l2tpv3", dict(vni=1 << 32)),
        ("stt", dict(vni=1 << 64)),
        ("geneve", dict(vni=1, bogus=1)),
        ("l2tpv3", dict(vni=1, cookie=b"abc")),
        ("l2tpv3", dict(vni=1, transport="tcp")),
    ],
)
def test_bad_parameters_are_refused(kind, kwargs):
    with pytest.raises(BuildError):
        encapsulate(INNER, kind, **kwargs)


def test_unknown_kind_is_refused():
    with pytest.raises(BuildError, match="kind"):
        encapsulate(INNER, "gre", vni=1)


@pytest.mark.parametrize("kind", ["geneve", "vxlan", "nvgre", "l2tpv3"])
def test_ipv4_defaults_df_ttl_and_ecn_copied_from_inner(kind):
    out = encapsulate(inner_frame(tos=0x03), kind, vni=1, tos=0xB8)
    assert out[IP].flags.DF and out[IP].ttl == 64
    assert out[IP].tos == 0xB8 | 0x03  # DSCP given, ECN from the inner (RFC 6040)


def test_udp_checksum_policy():
    gen = wire(encapsulate(INNER, "geneve", vni=1))
    vx = wire(encapsulate(INNER, "vxlan", vni=1))
    vx6 = wire(encapsulate(INNER, "vxlan", vni=1, underlay="ipv6"))
    assert gen[UDP].chksum != 0  # Geneve: computed by default on IPv4
    assert vx[UDP].chksum == 0  # VXLAN: zero by default on IPv4
    assert vx6[UDP].chksum != 0  # IPv6: zero only when configured
    for pkt in (gen, vx6):  # and the computed ones are right
        again = pkt.copy()
        del again[UDP].chksum
        assert again.__class__(bytes(again))[UDP].chksum == pkt[UDP].chksum
    with pytest.raises(BuildError, match="udp6_zero_checksum"):
        encapsulate(INNER, "vxlan", vni=1, underlay="ipv6", udp_checksum=False)
    z6 = encapsulate(INNER, "vxlan", vni=1, underlay="ipv6", udp_checksum=False, udp6_zero_checksum=True)
    assert wire(z6)[UDP].chksum == 0


@pytest.mark.parametrize("kind, layer", [("geneve", UDP), ("vxlan", UDP), ("stt", TCP)])
def test_source_port_entropy_is_per_flow_in_the_dynamic_range(kind, layer):
    def sport(flow):
        out = encapsulate(inner_frame(sport=flow), kind, vni=1)
        return (out[0] if isinstance(out, list) else out)[layer].sport

    ports = [sport(f) for f in range(1000, 1016)]
    assert ports[0] == sport(1000)  # stable per flow
    assert len(set(ports)) > 8  # spread across flows
    assert all(49152 <= p <= 65535 for p in ports)


def test_nvgre_flowid_carries_entropy_and_can_be_zero():
    ids = {encapsulate(inner_frame(sport=f), "nvgre", vni=1)[NVGRE].flowid for f in range(1000, 1016)}
    assert 0 not in ids and len(ids) > 8
    assert encapsulate(INNER, "nvgre", vni=1, flowid=0)[NVGRE].flowid == 0


def test_nvgre_refuses_an_inner_vlan_tag():
    tagged = Ether() / Dot1Q(vlan=5) / IP() / UDP()
    with pytest.raises(BuildError, match="802.1Q"):
        encapsulate(tagged, "nvgre", vni=1)


def test_stt_gives_segments_that_fit_the_mtu():
    big = inner_frame(size=4000)
    segs = encapsulate(big, "stt", vni=9, mtu=1500)
    assert isinstance(segs, list) and len(segs) == 3
    assert all(len(s) <= 1500 for s in segs)
    inner, info = decapsulate(wire(segs))
    assert bytes(inner) == bytes(big) and info.segments == 3 and info.vni == 9


def test_decapsulate_refuses_what_is_not_a_tunnel_frame():
    with pytest.raises(NotATunnel):
        decapsulate(IP() / UDP() / b"x")
    with pytest.raises(NotATunnel, match="control"):
        decapsulate(IP(bytes(IP() / L2TPv3(session_id=0) / L2TPv3Control())))
    segs = wire(encapsulate(inner_frame(size=4000), "stt", vni=9))
    with pytest.raises(NotATunnel, match="continuation"):
        decapsulate(segs[1])
    with pytest.raises(NotATunnel, match="first segment"):
        decapsulate(segs[0])
    with pytest.raises(NotATunnel, match="exactly one"):
        decapsulate(segs[:2])


def _stt_version(segment, version):
    """SEGMENT with the STT frame header's Version byte set, TCP checksum redone."""
    data = bytearray(bytes(segment))
    data[20 + 20] = version  # outer IPv4 (20) + TCP-like header (20)
    again = IP(bytes(data))
    del again[TCP].chksum
    return IP(bytes(again))


def test_decapsulate_refuses_what_a_receiver_drops():
    # draft-davie-stt-08: Version 0 is the only one; OVS drops the others.
    (seg,) = encapsulate(INNER, "stt", vni=9)
    for pkt in (_stt_version(seg, 1), [_stt_version(seg, 1)]):
        with pytest.raises(NotATunnel, match="STT version 1"):
            decapsulate(pkt)
    assert decapsulate(_stt_version(seg, 0))[1].vni == 9
    # RFC 7348 §5: "the I flag MUST be set to 1 for a valid VXLAN Network ID".
    no_i = IP(bytes(IP() / UDP(sport=50000, dport=4789) / VXLAN(flags=0, vni=3) / INNER))
    with pytest.raises(NotATunnel, match="I flag is clear"):
        decapsulate(no_i)


def test_vxlan_is_received_on_its_destination_port_only():
    # Scapy binds VXLAN to source ports 4789/4790/6633/8472 too, so a reply from a
    # service that happens to use one of them dissects as VXLAN; no VTEP takes it.
    reply = IP(bytes(IP() / UDP(sport=4789, dport=33333) / build_vxlan(7) / INNER))
    assert VXLAN in reply  # Scapy's view, unchanged
    with pytest.raises(NotATunnel, match="source-port binding"):
        decapsulate(reply)
    for dport in (4789, 8472, 48879):  # IANA, Linux, Cisco ACI
        pkt = IP(bytes(IP() / UDP(sport=4789, dport=dport) / build_vxlan(7) / INNER))
        assert decapsulate(pkt)[1].vni == 7


def test_nvgre_inner_vlan_tag_is_dropped_as_rfc7637_says():
    tagged = Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22") / Dot1Q(vlan=10) / INNER[IP]
    pkt = IP(bytes(IP() / NVGRE(vsid=0xABCD) / tagged))
    with pytest.raises(NotATunnel, match="802.1Q tag .VLAN 10."):
        decapsulate(pkt)


@pytest.mark.parametrize(
    "kind, params, cut, says",
    [
        ("vxlan", {}, 20 + 8 + 4, "truncated VXLAN header: 4 bytes at offset 28"),
        ("geneve", {}, 20 + 8 + 7, "truncated Geneve header: 7 bytes at offset 28"),
        ("nvgre", {}, 20 + 6, "truncated NVGRE header: 6 bytes at offset 20"),
        ("l2tpv3", {}, 20 + 2, "truncated L2TPv3 header: 2 bytes at offset 20"),
        ("stt", {}, 20 + 20 + 10, "truncated STT header: 10 bytes at offset 40"),
    ],
)
def test_a_cut_tunnel_header_is_named_with_its_offset(kind, params, cut, says, no_debug_dissector):
    out = encapsulate(INNER, kind, vni=5, **params)
    data = bytes(out[0] if isinstance(out, list) else out)[:cut]
    with pytest.raises(NotATunnel, match=says):
        decapsulate(data)


@pytest.mark.parametrize("dport, name", [(4789, "VXLAN"), (4790, "VXLAN-GPE"), (6081, "Geneve")])
def test_a_cut_header_is_named_as_its_port_says_on_every_scapy(dport, name, no_debug_dissector):
    # 20 IPv4 + 8 UDP, then 4 of the 8 header bytes: Scapy 2.5 dissects them as a VXLAN
    # layer with default values, 2.6+ leaves them Raw; decapsulate says the same on both.
    cut = bytes.fromhex("0c 00 00 03")  # flags I+P, reserved, next protocol 3; VNI cut
    data = bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=49152, dport=dport) / Raw(cut))
    says = "truncated %s header: 4 bytes at offset 28 after .*, 8 needed" % name
    with pytest.raises(NotATunnel, match=says):
        decapsulate(data)


@pytest.mark.parametrize("data", [b"\x45\x00\x00", b"\x60\x00", b"\x45"])
def test_bytes_too_short_for_the_outer_header_are_not_a_traceback(data):
    with pytest.raises(NotATunnel, match="%d bytes do not dissect as" % len(data)):
        decapsulate(data)


def test_ether_front_and_bytes_input():
    out = encapsulate(INNER, "geneve", vni=3, ether=True)
    assert isinstance(out, Ether) and out[Ether].dst == "02:00:00:00:00:02"
    inner, info = decapsulate(bytes(out))
    assert bytes(inner) == bytes(INNER) and info.vni == 3


@pytest.mark.parametrize(
    "kind, extras, check",
    [
        (
            "geneve",
            dict(
                options=[
                    GeneveOptionOVN(ingress_port=3, egress_port=9),
                    GeneveOption(classid=0xFFFF, type=1, data=b"abcd"),
                ],
                oam=True,
            ),
            lambda i: len(i.options) == 2 and i.oam and i.critical,
        ),
        ("vxlan", dict(gpid=0x1234, dont_learn=True), lambda i: i.group_policy_id == 0x1234 and i.dont_learn),
        (
            "vxlan",
            dict(next_protocol=3, oam=True, bum=True),  # GPE O and B bits
            lambda i: (i.next_protocol, i.oam, i.bum) == (3, True, True),
        ),
        ("nvgre", dict(flowid=0x5A), lambda i: i.flowid == 0x5A),
        (
            "stt",
            dict(vlan_id=100, pcp=5, identifier=77),
            lambda i: (i.vlan_id, i.pcp, i.identifier) == (100, 5, 77),
        ),
        (
            "l2tpv3",
            dict(cookie=b"\x01" * 8, sequence=12, transport="udp"),
            lambda i: i.cookie == b"\x01" * 8 and i.sequence == 12 and i.l2tp_transport == "udp",
        ),
    ],
)
def test_extras_come_back_in_info_and_params_rebuild_the_same_bytes(kind, extras, check):
    out = encapsulate(INNER, kind, vni=5, **extras)
    inner, info = decapsulate(wire(out))
    assert check(info)
    again = encapsulate(inner, kind, **info.params())
    assert [bytes(p) for p in (again if isinstance(again, list) else [again])] == [
        bytes(p) for p in (out if isinstance(out, list) else [out])
    ]


def test_geneve_carries_a_non_ethernet_inner_packet():
    out = encapsulate(INNER[IP], "geneve", vni=1)
    assert out[Geneve].proto == 0x0800
    inner, info = decapsulate(wire(out))
    assert isinstance(inner, IP) and info.proto == 0x0800


def test_vxlan_gpe_carries_an_inner_ip_packet():
    out = encapsulate(INNER[IP], "vxlan", vni=1)
    inner, info = decapsulate(wire(out))
    assert info.next_protocol == 1 and bytes(inner) == bytes(INNER[IP])
    assert out[VXLAN].flags == 0x0C


def test_stt_first_segment_holds_the_stt_header():
    segs = encapsulate(INNER, "stt", vni=1)
    assert STT in segs[0]


# -- the project's own captures (pcaps/make_tunnels.py) ---------------------------------
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from scapy.config import conf  # noqa: E402
from scapy.utils import rdpcap  # noqa: E402

from scapy_geneve.offload.stt import stt_reassemble  # noqa: E402
from scapy_geneve.tunnels.l2tpv3 import (  # noqa: E402
    l2tpv3_forget,
    l2tpv3_learn,
    l2tpv3_session,
    l2tpv3_sessions,
)

PCAPS = Path(__file__).resolve().parent.parent / "pcaps"
TUNNEL_PCAPS = [
    "vxlan",
    "vxlan_malformed",
    "nvgre",
    "nvgre_malformed",
    "stt",
    "stt_malformed",
    "l2tpv3_ip",
    "l2tpv3_udp",
    "l2tpv3_control",
    "l2tpv3_malformed",
]


def test_make_tunnels_reproduces_the_committed_captures(tmp_path):
    subprocess.run(
        [sys.executable, str(PCAPS / "make_tunnels.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    for name in TUNNEL_PCAPS:
        assert (tmp_path / (name + ".pcap")).read_bytes() == (PCAPS / (name + ".pcap")).read_bytes(), name


@pytest.mark.parametrize("name", TUNNEL_PCAPS)
def test_every_captured_packet_is_lossless(name, no_debug_dissector):
    for pkt in rdpcap(str(PCAPS / (name + ".pcap"))):
        assert bytes(pkt) == pkt.original


def test_stt_malformed_capture_reassembles_as_documented():
    done = stt_reassemble(rdpcap(str(PCAPS / "stt_malformed.pcap")))
    assert [(f.identifier, f.segments) for f in done.frames] == [(0xBAD, 3), (0xBB0, 1)]
    assert [(i.identifier, i.missing) for i in done.incomplete] == [(0xBAE, [(800, 1600)])]
    assert [i for i, _ in done.dropped] == [2, 3, 7, 8]


@pytest.fixture
def session_table():
    """The L2TPv3 session table, emptied for the test and restored after it."""
    saved = l2tpv3_sessions()
    l2tpv3_forget()
    yield
    table = conf.contribs["scapy_geneve"]["l2tpv3_sessions"]
    table.clear()
    table.update(saved)


def test_l2tpv3_control_capture_teaches_the_data_layout(session_table):
    packets = rdpcap(str(PCAPS / "l2tpv3_control.pcap"))
    assert l2tpv3_learn(packets) == [0x77, 0x88]
    # RFC 3931: the sender of the ICRQ/ICRP receives the session's data.
    assert set(l2tpv3_sessions()) == {("192.0.2.1", 0x77), ("192.0.2.2", 0x88)}
    for pkt in packets[2:]:
        inner, info = decapsulate(Ether(bytes(pkt)))
        assert inner[IP].src in ("10.0.0.1", "10.0.0.2")
    assert info.vni == 0x88 and info.outer_dst == "192.0.2.2"
    first = decapsulate(Ether(bytes(packets[2])))[1]
    assert (first.vni, first.outer_dst, first.cookie, first.sequence) == (0x77, "192.0.2.1", b"ABCDEFGH", 0)


def test_one_session_id_at_two_receivers_with_two_layouts(session_table):
    # Session IDs are the receiver's: 192.0.2.1 and 192.0.2.9 both picked 0x10.
    l2tpv3_session(0x10, cookie=b"\xaa" * 8, l2ss=True, dst="192.0.2.1")
    l2tpv3_session(0x10, cookie_len=0, dst="192.0.2.9")
    a = encapsulate(
        INNER,
        "l2tpv3",
        vni=0x10,
        cookie=b"\xaa" * 8,
        sequence=3,
        src="192.0.2.2",
        dst="192.0.2.1",
        register=False,
    )
    b = encapsulate(INNER, "l2tpv3", vni=0x10, src="192.0.2.2", dst="192.0.2.9", register=False)
    for out, cookie in ((a, b"\xaa" * 8), (b, b"")):
        inner, info = decapsulate(bytes(out))
        assert bytes(inner) == bytes(INNER) and info.cookie == cookie


def test_a_cookie_that_is_not_the_sessions_is_refused(session_table):
    l2tpv3_session(0x20, cookie=b"\xc0\x01\xc0\x01")
    good = encapsulate(INNER, "l2tpv3", vni=0x20, cookie=b"\xc0\x01\xc0\x01", register=False)
    bad = encapsulate(INNER, "l2tpv3", vni=0x20, cookie=b"\xde\xad\xbe\xef", register=False)
    assert decapsulate(bytes(good))[1].cookie == b"\xc0\x01\xc0\x01"
    with pytest.raises(NotATunnel, match="cookie deadbeef at offset 24 is not the session's c001c001"):
        decapsulate(bytes(bad))
    # Dissection itself still shows what is on the wire.
    assert IP(bytes(bad))[L2TPv3].cookie == b"\xde\xad\xbe\xef"


# -- what a receiver must drop (RFC 8926 §3.4-3.5, RFC 6040, RFC 6935/6936) ----------------
def _geneve_bytes(**kw):
    """Outer IPv4 (20) + UDP (8) + Geneve (8 + options) + INNER, as bytes."""
    return bytearray(bytes(encapsulate(INNER, "geneve", vni=0x1234, **kw)))


def _redo_udp_checksum(data, v6=False):
    pkt = (IPv6 if v6 else IP)(bytes(data))
    del pkt[UDP].chksum
    return bytearray(bytes(pkt))


def _geneve_version(version):
    # byte 28: |Ver|Opt Len|  (Ver in the top 2 bits)
    data = _geneve_bytes()
    data[28] = (version << 6) | (data[28] & 0x3F)
    return data


def _opt_len_past_packet():
    # Opt Len 63 words = 252 bytes, but only INNER's 62 bytes follow the base header.
    data = _geneve_bytes()
    data[28] = 0x3F
    return data[: 20 + 8 + 8 + 62]


def _options_not_adding_up():
    # One 8-byte option (4 + Length 1 word), Opt Len says 1 word (4 bytes):
    #   01 -> Ver 0, Opt Len 1 (was 2); then ff ff 01 01 "abcd": the option runs past it
    data = _geneve_bytes(options=[GeneveOption(classid=0xFFFF, type=1, data=b"abcd")])
    assert data[28] == 0x02
    data[28] = 0x01
    return data


def _fragment():
    # IPv4 flags byte 6: 0x20 = MF (DF cleared); the header checksum redone.
    pkt = IP(bytes(_geneve_bytes()))
    pkt.flags = "MF"
    del pkt.chksum
    return bytearray(bytes(pkt))


def _udp_len_cuts_inner():
    # UDP Length (bytes 24-25) says 8 + 8 + 30: the inner IPv4 says 48 bytes.
    data = _geneve_bytes(udp_checksum=False)
    data[24:26] = (8 + 8 + 30).to_bytes(2, "big")
    return data


def _ip_len_cuts_inner():
    # IPv4 Total Length (bytes 2-3) cuts 20 bytes off the inner frame; checksum redone.
    pkt = IP(bytes(_geneve_bytes(udp_checksum=False)))
    pkt.len -= 20
    del pkt.chksum
    return bytearray(bytes(pkt))


def _ce_over_not_ect():
    # outer TOS byte 1 = 0x03 (CE); the inner IPv4 TOS is 0 (Not-ECT).
    pkt = IP(bytes(_geneve_bytes()))
    pkt.tos = 0x03
    del pkt.chksum
    return bytearray(bytes(pkt))


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda: _geneve_version(1), r"Geneve version 1 at offset 28: .* MUST drop"),
        (lambda: _geneve_version(3), r"Geneve version 3 at offset 28"),
        (_opt_len_past_packet, r"Geneve Opt Len 63 \(252 bytes\) at offset 28 runs past the packet"),
        (_options_not_adding_up, r"Geneve options at offset 36 add up to 8 bytes, not the 4"),
        (_fragment, r"IPv4 fragment at offset 0 \(MF=1"),
        (_udp_len_cuts_inner, r"UDP length at offset 24 cuts the inner packet"),
        (_ip_len_cuts_inner, r"IPv4 total length at offset 2 cuts the inner packet"),
        (_ce_over_not_ect, r"ECN CE on the outer header \(offset 1\) over a Not-ECT inner"),
    ],
    ids=[
        "version-1",
        "version-3",
        "optlen-past-packet",
        "options-not-opt-len",
        "ipv4-mf",
        "udp-length-cut",
        "ip-length-cut",
        "ce-over-not-ect",
    ],
)
def test_geneve_a_receiver_must_drop_is_refused_naming_field_and_offset(make, says, no_debug_dissector):
    with pytest.raises(NotATunnel, match=says):
        decapsulate(bytes(make()))


def test_ipv6_zero_udp_checksum_is_dropped_unless_configured():
    # RFC 6935 §5 / RFC 6936: zero UDP checksums over IPv6 only on tunnels configured so.
    out = encapsulate(INNER, "geneve", vni=1, underlay="ipv6", udp_checksum=False, udp6_zero_checksum=True)
    with pytest.raises(NotATunnel, match=r"UDP checksum 0 at offset 46 over IPv6"):
        decapsulate(bytes(out))
    inner, info = decapsulate(bytes(out), udp6_zero_checksum=True)
    assert bytes(inner) == bytes(INNER) and info.udp_checksum is False


def test_ce_over_an_ect_inner_packet_is_delivered():
    pkt = IP(bytes(encapsulate(inner_frame(tos=0x02), "geneve", vni=1)))  # inner ECT(0)
    pkt.tos = 0x03  # outer CE
    del pkt.chksum
    assert decapsulate(bytes(pkt))[1].tos == 0x03


def test_trailing_bytes_past_the_lengths_are_not_inner_frame():
    # Ethernet padding or an FCS after the IP datagram: not part of the inner frame.
    out = encapsulate(INNER, "vxlan", vni=2, ether=True)
    inner, _ = decapsulate(bytes(out) + b"\xde\xad\xbe\xef")
    assert bytes(inner) == bytes(INNER)


def test_decapsulate_agrees_with_the_projects_conformance_vectors():
    """Every header check decapsulate makes, on the conformance vectors (Expect says)."""
    from scapy_geneve import vectors

    checked = {
        "geneve-version-1",
        "geneve-version-3",
        "geneve-optlen-mismatch",
        "geneve-ecn-ce-over-not-ect",
        "geneve-ipv6-udp-checksum-zero",
        "vxlan-i-flag-clear",
        "vxlan-ecn-ce-over-not-ect",
        "vxlan-ipv6-udp-checksum-zero",
        "nvgre-inner-vlan",
        "nvgre-no-key",
        "geneve-ports-reversed",
    }
    for vec in vectors():
        if vec.expect.name == "DROP" and vec.name in checked:
            with pytest.raises(NotATunnel):
                decapsulate(vec.frame())
        elif vec.expect.name == "DELIVER" and vec.level != "CONTROL":
            inner, _ = decapsulate(vec.frame())
            want = vec.expected_inner()
            assert want is None or vec.name.endswith("ce-over-ect0") or bytes(inner) == want


# -- info.params() rebuilds what was received ------------------------------------------------
def test_params_carry_ttl_ip_id_tos_reserved_bits_and_a_zero_checksum():
    # A packet encapsulate() would not make by itself: TTL 17, ID 0x1234, DF clear,
    # DSCP 0x28 with ECT(1) on the outer only, zero UDP checksum, Geneve Rsvd 0x15
    # and reserved byte 0xAB.
    sent = (
        IP(src="198.51.100.1", dst="198.51.100.2", ttl=17, id=0x1234, flags=0, tos=0xA1)
        / UDP(sport=50001, dport=6081, chksum=0)
        / Geneve(vni=7, reserved=0x15, reserved2=0xAB)
        / INNER
    )
    wire_bytes = bytes(sent)
    inner, info = decapsulate(wire_bytes)
    assert (info.ttl, info.ip_id, info.df, info.tos, info.udp_checksum) == (17, 0x1234, False, 0xA1, False)
    assert info.reserved == {"reserved": 0x15, "reserved2": 0xAB}
    assert bytes(encapsulate(inner, "geneve", **info.params())) == wire_bytes


@pytest.mark.parametrize("kind", KINDS)
def test_params_rebuild_ipv6_flow_label_and_hop_limit(kind):
    out = encapsulate(INNER, kind, vni=9, underlay="ipv6", ttl=3, flow_label=0xABCDE, tos=0x20)
    inner, info = decapsulate(wire(out))
    again = encapsulate(inner, kind, **info.params())
    assert [bytes(p) for p in (again if isinstance(again, list) else [again])] == [
        bytes(p) for p in (out if isinstance(out, list) else [out])
    ]


# -- inner frames over 64 KB --------------------------------------------------------------------
BIG = Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22", type=0x88B5) / Raw(b"j" * 70000)


@pytest.mark.parametrize(
    "kind, params, says",
    [
        ("geneve", {}, r"UDP\.len: value 70030 does not fit in 16 bits"),
        ("vxlan", {}, r"UDP\.len: value 70030 does not fit in 16 bits"),
        ("nvgre", {}, r"IP\.len: value 70042 does not fit|IPv6\.plen: value 70022 does not fit"),
        ("l2tpv3", {}, r"IP\.len: value 70038 does not fit|IPv6\.plen: value 70018 does not fit"),
        ("l2tpv3", {"transport": "udp"}, r"UDP\.len: value 70030 does not fit in 16 bits"),
        ("stt", {}, r"STT\.frame length: value 70032 does not fit in 16 bits"),
    ],
)
@pytest.mark.parametrize("underlay", ["ipv4", "ipv6"])
def test_an_inner_frame_over_64k_is_a_build_error_at_encapsulate(kind, params, says, underlay):
    with pytest.raises(BuildError, match=says):
        encapsulate(BIG, kind, vni=5, underlay=underlay, **params)


def test_the_largest_inner_frame_that_fits_builds():
    # IPv4 Total Length 65535 = 20 + UDP 8 + Geneve 8 + inner 65499.
    inner = Ether(type=0x88B5) / Raw(b"j" * (65499 - 14))
    assert len(bytes(encapsulate(inner, "geneve", vni=1))) == 65535
    with pytest.raises(BuildError, match="at most 65499 bytes"):
        encapsulate(Ether(type=0x88B5) / Raw(b"j" * (65500 - 14)), "geneve", vni=1)


# -- adding an encapsulation: a registry record, a layer, an adapter ---------------------
def test_a_new_encapsulation_needs_only_a_record_a_layer_and_an_adapter(no_debug_dissector):
    from scapy.fields import IntField
    from scapy.packet import Packet, bind_layers, split_layers

    from scapy_geneve import registry
    from scapy_geneve.tunnels.base import Adapter

    class Toy(Packet):  # 4-byte header: a 32-bit "ring"
        name = "Toy"
        fields_desc = [IntField("ring", 0)]

    class ToyAdapter(Adapter):
        kind = "toy"
        layers = (Toy,)

        def encapsulate(self, inner, ident, outer, params):
            udp = outer.udp(self.kind, 40000, 9999, True)
            return outer.l3 / udp / Toy(ring=ident) / inner

        def decapsulate(self, layer, packet, info):
            info.vni = int(layer.ring)
            return None

        def params(self, info):
            return {"sport": info.sport, "dport": info.dport}

    record = registry.Encapsulation(
        name="toy",
        kind=100,
        title="Toy",
        spec="this test",
        udp_ports=frozenset([9999]),
        header_len=4,
        id_name="ring",
        id_title="Ring",
        id_bits=32,
        layer=__name__ + ":Toy",
        adapter=__name__ + ":TOY_ADAPTER",
    )
    bind_layers(UDP, Toy, dport=9999)
    bind_layers(Toy, Ether)
    globals().update(Toy=Toy, TOY_ADAPTER=ToyAdapter())
    registry.register(record)
    try:
        out = encapsulate(INNER, "toy", ring=0xDEADBEEF)
        inner, info = decapsulate(bytes(out))
        assert bytes(inner) == bytes(INNER) and (info.kind, info.vni) == ("toy", 0xDEADBEEF)
        assert bytes(encapsulate(inner, "toy", **info.params())) == bytes(out)
        with pytest.raises(BuildError, match=r"toy\.ring: value 4294967296 does not fit"):
            encapsulate(INNER, "toy", vni=1 << 32)
        with pytest.raises(NotATunnel, match="truncated Toy header: 2 bytes at offset 28"):
            decapsulate(bytes(out)[:30])
    finally:
        registry.unregister("toy")
        split_layers(UDP, Toy, dport=9999)
        split_layers(Toy, Ether)
    with pytest.raises(BuildError, match="kind"):
        encapsulate(INNER, "toy", vni=1)


# -- errors: the message reads right for every kind of reason ------------------------------
@pytest.mark.parametrize(
    "value, why, says",
    [
        (1 << 24, "24 bits", "geneve.vni: value 16777216 does not fit in 24 bits"),
        (9, "8 bytes", "geneve.vni: value 9 does not fit in 8 bytes"),
        (
            0,
            "must be a positive number of payload bytes",
            "geneve.vni: value 0 must be a positive number of payload bytes",
        ),
        (None, "is required: pass vni=", "geneve.vni is required: pass vni="),
        ("x", "is not a number", "geneve.vni: value x is not a number"),
    ],
)
def test_build_error_wording(value, why, says):
    assert str(BuildError("geneve", "vni", value, why)) == says


@pytest.mark.parametrize("kind", ["geneve", "vxlan", "nvgre", "l2tpv3"])
def test_decapsulate_reads_a_packet_built_here_as_its_bytes(kind):
    # Lengths (Opt Len, option Length, IP/UDP lengths) are still None before a build:
    # decapsulate reads the packet as a receiver would, from its bytes.
    extras = {"options": [GeneveOptionOVN(ingress_port=1, egress_port=2)]} if kind == "geneve" else {}
    inner, info = decapsulate(encapsulate(INNER, kind, vni=77, **extras))
    assert bytes(inner) == bytes(INNER) and info.vni == 77


def test_stt_ce_on_any_segment_over_a_not_ect_inner_packet_is_dropped():
    # RFC 6040 §4.2 for a reassembled frame: CE on one segment marks the frame.
    segs = wire(encapsulate(inner_frame(size=4000), "stt", vni=9))
    marked = IP(bytes(segs[1]))
    marked.tos = 0x03
    del marked.chksum
    with pytest.raises(NotATunnel, match=r"ECN CE on a segment of the STT frame"):
        decapsulate([segs[0], IP(bytes(marked)), segs[2]])
    assert decapsulate(segs)[1].vni == 9


def _inner_kinds():
    from hypothesis import strategies as st
    from scapy.layers.inet6 import IPv6ExtHdrRouting

    payload = st.binary(max_size=300)
    return st.one_of(
        st.builds(lambda d: Ether() / IP(options=[]) / TCP(options=[("MSS", 1460)]) / Raw(d), payload),
        st.builds(
            lambda d: Ether() / IPv6(src="::1") / IPv6ExtHdrRouting(addresses=["::2"]) / UDP() / Raw(d),
            payload,
        ),  # fmt: skip
        st.builds(lambda d: Ether() / Dot1Q(vlan=3) / IP() / UDP() / Raw(d), payload),
        st.builds(
            lambda d: (
                IP()
                / UDP(dport=6081)
                / Geneve(options=[GeneveOption(classid=1, type=2, data=d[:124])])
                / Ether()
            ),
            payload,
        ),
        st.builds(lambda d: Ether(type=0x88B5) / Raw(d), payload),
    )


def test_the_size_bound_is_never_below_the_built_length():
    """The fast path (a bound from field values) against the reference (building)."""
    from hypothesis import given, settings

    from scapy_geneve.tunnels.tunnel import _size_bound

    @settings(max_examples=120, deadline=None)
    @given(_inner_kinds())
    def check(pkt):
        assert _size_bound(pkt) >= len(bytes(pkt))

    check()


def test_stt_params_come_from_the_first_segment_in_any_order():
    segs = encapsulate(inner_frame(size=4000), "stt", vni=9, ip_id=0x100, ttl=12)
    inner, info = decapsulate(wire(segs)[::-1])
    assert (info.ip_id, info.ttl) == (0x100, 12)
    again = encapsulate(inner, "stt", **info.params())
    assert [bytes(p) for p in again] == [bytes(p) for p in segs]
