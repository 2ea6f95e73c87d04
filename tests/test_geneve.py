"""Geneve (RFC 8926) layer: building and dissecting, vector by vector.

Every vector is annotated field by field against the diagrams of §3.4
(base header) and §3.5 (option TLV).
"""

import re

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw, ls

from scapy_geneve import (
    BuildError,
    GENEVE,
    Geneve,
    GeneveOption,
    GeneveOptions,
    GeneveOptionGCPEndpointID,
    GeneveOptionGCPProfileID,
    GeneveOptionGCPVNID,
    GeneveOptionGWLBAttachmentID,
    GeneveOptionGWLBEndpointID,
    GeneveOptionGWLBFlowCookie,
    GeneveOptionINTMD,
    GeneveOptionOVN,
    option_class_name,
    option_header,
)
from scapy_geneve.layers.geneve import flow_sport, registered_options


def h(text: str) -> bytes:
    """Hex with spaces, '|' separators and '#' comments allowed."""
    lines = [line.split("#")[0] for line in text.splitlines()]
    return bytes.fromhex("".join(lines).replace("|", ""))


# -- §3.4 base header --------------------------------------------------------

BASE_NO_OPTIONS = h("""
    00        # Ver=0 (2 bits) | Opt Len=0 (6 bits)
    00        # O=0 C=0 Rsvd=0
    6558      # Protocol Type: Transparent Ethernet Bridging
    123456    # VNI
    00        # Reserved
""")


def test_base_header_vector_builds():
    assert bytes(Geneve(vni=0x123456)) == BASE_NO_OPTIONS


def test_base_header_vector_dissects():
    g = Geneve(BASE_NO_OPTIONS)
    assert (g.version, g.optionlen, g.oam, g.critical, g.reserved) == (0, 0, 0, 0, 0)
    assert (g.proto, g.vni, g.reserved2, g.options) == (0x6558, 0x123456, 0, [])


# Two options, one critical (§3.5): the C bit and Opt Len are derived.
TWO_OPTIONS = h("""
    05        # Ver=0 | Opt Len=5 words (20 bytes of options)
    40        # O=0 C=1 (an option is critical) Rsvd=0
    0800      # Protocol Type: IPv4
    000064 00 # VNI=100 | Reserved
    ffff 80 01 | 1234abcd              # class 0xffff, type 0x80 (C), R=0 Len=1: 4 bytes
    0101 01 02 | 0102030405060708      # class 0x0101 (OVS), type 1, Len=2: 8 bytes
""")


def test_options_vector_builds_with_derived_lengths_and_c_bit():
    g = Geneve(
        vni=100,
        proto=0x0800,
        options=[
            GeneveOption(classid=0xFFFF, type=0x80, data=h("1234abcd")),
            GeneveOption(classid=0x0101, type=0x01, data=h("0102030405060708")),
        ],
    )
    assert bytes(g) == TWO_OPTIONS


def test_options_vector_dissects():
    g = Geneve(TWO_OPTIONS)
    assert g.optionlen == 5 and g.critical == 1 and g.vni == 100
    first, second = g.options
    assert (first.classid, first.type, first.critical, first.length, first.data) == (
        0xFFFF,
        0x80,
        True,
        1,
        h("1234abcd"),
    )
    assert (second.classid, second.type, second.critical, second.length) == (0x0101, 1, False, 2)
    assert bytes(g) == TWO_OPTIONS


def test_c_bit_clear_when_no_option_is_critical():
    g = Geneve(options=[GeneveOption(classid=0x0101, type=0x7F)])
    assert bytes(g)[1] & 0x40 == 0


def test_contrib_names_are_aliases():
    assert GENEVE is Geneve and GeneveOptions is GeneveOption


# -- §3.5 option data padding and limits -------------------------------------


@pytest.mark.parametrize(
    "data, wire",
    [
        (b"", h("0000 00 00")),
        (b"a", h("0000 00 01 | 61000000")),
        (b"abc", h("0000 00 01 | 61626300")),
        (b"abcd", h("0000 00 01 | 61626364")),
        (b"abcde", h("0000 00 02 | 6162636465000000")),
    ],
)
def test_option_data_is_zero_padded_to_whole_words(data, wire):
    # scapy.contrib.geneve writes b"abc" with Length=0 and three stray bytes.
    assert bytes(GeneveOption(data=data)) == wire


def test_padded_option_keeps_following_bytes_in_the_payload():
    g = Geneve(options=[GeneveOption(data=b"abc")]) / Ether(src="02:00:00:00:00:01")
    again = Geneve(bytes(g))
    assert again.options[0].data == b"abc\x00"
    assert again[Ether].src == "02:00:00:00:00:01"


def test_largest_option_and_largest_options_area():
    # 124 data bytes (Length 31) and 128 + 124 = 252 bytes (Opt Len 63).
    big = GeneveOption(data=b"x" * 124)
    assert bytes(big)[3] == 31
    g = Geneve(options=[big, GeneveOption(data=b"y" * 120)])
    wire = bytes(g)
    assert wire[0] == 63 and len(wire) == 8 + 252


def test_option_reserved_bits_survive_derived_length():
    # contrib masks byte 3 with 0x03 and loses R; R is kept here.
    assert bytes(GeneveOption(reserved=7, data=b"abcd"))[3] == 0xE1


def test_critical_bit_as_its_own_attribute():
    opt = GeneveOption(type=0x05, critical=True)
    assert opt.type == 0x85 and opt.critical
    opt.critical = False
    assert opt.type == 0x05 and not opt.critical
    assert "critical" in GeneveOption(type=0x80).sprintf("%GeneveOption.type%")


# -- BuildError: nothing is masked ---------------------------------------------


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: Geneve(vni=1 << 24), "vni"),
        (lambda: Geneve(version=4), "version"),
        (lambda: Geneve(optionlen=64), "optionlen"),
        (lambda: Geneve(oam=2), "oam"),
        (lambda: Geneve(critical=2), "critical"),
        (lambda: Geneve(reserved=64), "reserved"),
        (lambda: Geneve(proto=0x10000), "proto"),
        (lambda: Geneve(reserved2=256), "reserved2"),
        (lambda: Geneve(vni=-1), "vni"),
        (lambda: GeneveOption(classid=0x10000), "classid"),
        (lambda: GeneveOption(type=256), "type"),
        (lambda: GeneveOption(reserved=8), "reserved"),
        (lambda: GeneveOption(length=32), "length"),
        (lambda: GeneveOption(data=b"x" * 125), "data"),
        (lambda: Geneve(options=[GeneveOption(data=b"x" * 124)] * 2), "options"),
        (lambda: GeneveOptionOVN(ingress_port=1 << 15), "ingress_port"),
        (lambda: GeneveOptionGCPVNID(vnid=1 << 28), "vnid"),
    ],
)
def test_unencodable_values_raise_build_error_naming_the_field(make, field):
    with pytest.raises(BuildError) as err:
        bytes(make())
    assert err.value.field == field
    assert isinstance(err.value, ValueError)
    assert field in str(err.value)


def test_build_error_message_names_layer_field_and_value():
    with pytest.raises(BuildError, match=r"Geneve\.vni: value 16777216 does not fit in 24 bits"):
        bytes(Geneve(vni=0x1000000))


# -- explicit values for negative tests are written exactly as set -------------


def test_explicit_optionlen_length_and_critical_are_kept():
    g = Geneve(optionlen=7, critical=0, options=[GeneveOption(classid=1, type=0x80, length=9, data=b"abcd")])
    assert bytes(g) == h("""
        07 00 6558 000000 00   # Opt Len 7 (a lie), C=0 despite a critical option
        0001 80 09 61626364    # Length 9 (a lie), 4 bytes of data
    """)


def test_explicit_unaligned_option_needs_explicit_optionlen():
    g = Geneve(options=[GeneveOption(length=1, data=b"abc")])
    with pytest.raises(BuildError, match="optionlen"):
        bytes(g)
    g.optionlen = 1
    assert bytes(g) == h("01 00 6558 000000 00 | 0000 00 01 616263")


# -- Protocol Type follows the payload ----------------------------------------


@pytest.mark.parametrize(
    "payload, proto",
    [
        (Ether(), 0x6558),
        (IP(), 0x0800),
        (IPv6(), 0x86DD),
        (ARP(), 0x0806),
    ],
)
def test_proto_derived_from_payload(payload, proto):
    wire = bytes(Geneve() / payload)
    assert int.from_bytes(wire[2:4], "big") == proto
    assert type(Geneve(wire).payload) is type(payload)


def test_proto_covers_every_ethertype_scapy_knows():
    from scapy.main import load_contrib

    load_contrib("mpls")
    load_contrib("nsh")
    from scapy.contrib.mpls import MPLS
    from scapy.contrib.nsh import NSH

    for payload, proto in ((MPLS(label=16, s=1) / IP(), 0x8847), (NSH() / Ether(), 0x894F)):
        wire = bytes(Geneve() / payload)
        assert int.from_bytes(wire[2:4], "big") == proto
        assert isinstance(Geneve(wire).payload, type(payload))


def test_unknown_ethertype_payload_stays_raw():
    g = Geneve(h("00 00 1234 000001 00") + b"whatever")
    assert g.proto == 0x1234 and g[Raw].load == b"whatever"


# -- UDP binding ---------------------------------------------------------------


def test_udp_build_uses_port_6081_and_redissects_as_geneve():
    wire = bytes(IP() / UDP() / Geneve(vni=7) / Ether())
    again = IP(wire)
    assert again[UDP].dport == 6081 and again[UDP].sport != 53
    assert again[Geneve].vni == 7


def test_dissection_is_on_destination_port_only():
    # RFC 8926 §3.3: the source port is entropy, never an identifier.
    pkt = IP(bytes(IP() / UDP(sport=6081, dport=33333) / Raw(BASE_NO_OPTIONS)))
    assert Geneve not in pkt


# -- typed options -------------------------------------------------------------


def test_ovn_option_fields():
    wire = h("0102 80 01 | 0005 8001")  # ingress port 5, egress 0x8001 (multicast)
    opt = GeneveOption(wire)
    assert isinstance(opt, GeneveOptionOVN)
    assert (opt.ingress_port, opt.egress_port, opt.critical) == (5, 0x8001, True)
    assert bytes(GeneveOptionOVN(ingress_port=5, egress_port=0x8001)) == wire


def test_gwlb_options_as_aws_sends_them():
    # class 0x0108 types 1, 2, 3: endpoint ID, attachment ID, flow cookie; C=0.
    wire = h("""
        08 00 0800 000000 00
        0108 01 02 | 0123456789abcdef
        0108 02 02 | fedcba9876543210
        0108 03 01 | 0badcafe
    """)
    g = Geneve(wire)
    ep, att, cookie = g.options
    assert isinstance(ep, GeneveOptionGWLBEndpointID) and ep.endpoint_id == 0x0123456789ABCDEF
    assert isinstance(att, GeneveOptionGWLBAttachmentID) and att.attachment_id == 0xFEDCBA9876543210
    assert isinstance(cookie, GeneveOptionGWLBFlowCookie) and cookie.flow_cookie == 0x0BADCAFE
    built = Geneve(
        proto=0x0800,
        options=[
            GeneveOptionGWLBEndpointID(endpoint_id=0x0123456789ABCDEF),
            GeneveOptionGWLBAttachmentID(attachment_id=0xFEDCBA9876543210),
            GeneveOptionGWLBFlowCookie(flow_cookie=0x0BADCAFE),
        ],
    )
    assert bytes(built) == wire


def test_gcp_sample_from_tcpdump_pr_976():
    # tcpdump tests/geneve-gcp.pcap's Geneve header (specs §1.5).
    wire = h("""
        0a 00 0800 000000 00
        0132 01 01 | 800000d1                          # VNID 0x800000d, direction egress
        0132 02 04 | 0800000dc0a8640200000000 00000000 # endpoint ID, 16 bytes
        0132 03 02 | 0000000000001234                  # profile ID 0x1234
    """)
    g = Geneve(wire)
    vnid, endpoint, profile = g.options
    assert isinstance(vnid, GeneveOptionGCPVNID)
    assert (vnid.vnid, vnid.traffic_direction) == (0x800000D, 1)
    assert isinstance(endpoint, GeneveOptionGCPEndpointID) and len(endpoint.endpoint_id) == 16
    assert isinstance(profile, GeneveOptionGCPProfileID) and profile.profile_id == 0x1234
    assert bytes(g) == wire


def test_int_md_option():
    wire = h("""
        0103 01 04           # class INT, type 1 (INT-MD), 16 bytes
        20 00                # Ver=2 (4 bits) D=0 E=0 M=0, then 12 reserved bits...
        06 05                # ...3 more reserved bits | Hop ML=6 (5 bits) | RemainingHopCnt=5
        ff00 0000            # instruction bitmap | domain specific ID
        0000 0000            # DS instruction | DS flags
        00000001             # one metadata word
    """)
    opt = GeneveOption(wire)
    assert isinstance(opt, GeneveOptionINTMD)
    assert opt.int_version == 2 and opt.instruction_bitmap == 0xFF00
    assert opt.hop_ml == 6 and opt.remaining_hop_cnt == 5
    assert opt.metadata == h("00000001")
    assert bytes(opt) == wire


def test_known_class_with_unexpected_length_stays_generic():
    wire = h("0102 80 02 | 00000000 00000000")  # OVN is 1 word; this is 2
    opt = GeneveOption(wire)
    assert type(opt) is GeneveOption and bytes(opt) == wire


def test_getitem_finds_typed_options():
    g = Geneve(options=[GeneveOptionGWLBFlowCookie(flow_cookie=1)])
    assert isinstance(Geneve(bytes(g))[GeneveOption], GeneveOptionGWLBFlowCookie)


def test_user_registers_a_decoder_in_a_few_lines():
    from scapy.fields import IntField

    class MyOption(GeneveOption):
        name = "My option"
        option_length = 1
        fields_desc = option_header(0xFF01, 0x05) + [IntField("value", 0)]

    try:
        g = Geneve(bytes(Geneve(options=[MyOption(value=42)])))
        assert isinstance(g.options[0], MyOption) and g.options[0].value == 42
    finally:
        registered_options.pop((0xFF01, 0x05))


def test_option_class_names_follow_iana():
    assert option_class_name(0x0108) == "Amazon.com, Inc."
    assert option_class_name(0x0132) == "Google LLC"
    assert option_class_name(0xFF00) == "Experimental Use"
    assert option_class_name(0x0050) == "Unassigned (IETF Review)"
    assert "Amazon" in GeneveOption(classid=0x0108).sprintf("%GeneveOption.classid%")


# -- answers / hashret, entropy -------------------------------------------------


def test_answers_pairs_replies_on_the_same_vni():
    from scapy.layers.inet import ICMP

    req = IP(dst="10.0.0.2") / UDP() / Geneve(vni=5) / IP(src="1.1.1.1", dst="2.2.2.2") / ICMP()
    rep = IP(src="10.0.0.2") / UDP() / Geneve(vni=5) / IP(src="2.2.2.2", dst="1.1.1.1") / ICMP(type=0)
    other_vni = rep.copy()
    other_vni[Geneve].vni = 6
    req, rep, other_vni = (IP(bytes(p)) for p in (req, rep, other_vni))
    assert rep[Geneve].answers(req[Geneve])
    assert not other_vni[Geneve].answers(req[Geneve])
    assert rep[Geneve].hashret() == req[Geneve].hashret()


def test_flow_sport_is_stable_per_flow_and_in_range():
    a = Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=1000, dport=80)
    b = Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=1001, dport=80)
    assert flow_sport(a) == flow_sport(a.copy())
    assert 49152 <= flow_sport(a) <= 65535 and 49152 <= flow_sport(b) <= 65535
    ports = {flow_sport(Ether() / IP() / TCP(sport=s)) for s in range(200)}
    assert len(ports) > 150  # spreads flows over the range
    assert 1 <= flow_sport(a, low=1, high=65535) <= 65535
    with pytest.raises(BuildError):
        flow_sport(a, low=0)


# -- lengths are declared; ls() and summaries read as Scapy's own layers do ---------------


def test_lengths_are_declared_not_patched_after_the_build():
    """Scapy's generic field-by-field build (before post_build) already writes
    Opt Len and each option's Length; post_build only pads the data."""
    g = Geneve(
        vni=100,
        proto=0x0800,
        options=[
            GeneveOption(classid=0xFFFF, type=0x80, data=h("1234abcd")),
            GeneveOption(classid=0x0101, type=0x01, data=h("0102030405060708")),
        ],
    )
    assert Packet.self_build(g) == TWO_OPTIONS
    odd = GeneveOption(classid=0x0132, data=b"odd")
    assert Packet.self_build(odd) == h("0132 00 01 | 6f6464")  # Length 1 word, 3 bytes
    assert bytes(odd) == h("0132 00 01 | 6f6464 00")  # post_build: one zero pad


def test_variable_typed_options_declare_what_their_length_counts():
    # INT-MD: 12 fixed bytes, then the metadata stack (length_of="metadata", fixed=12)
    assert bytes(GeneveOptionINTMD(metadata=b"\x00" * 8))[3] & 0x1F == 5
    # GCP endpoint ID: the opaque bytes alone
    assert bytes(GeneveOptionGCPEndpointID(endpoint_id=b"\x01" * 6))[3] & 0x1F == 2


def test_ls_shows_scapy_style_field_classes_and_hex_defaults(capsys):
    ls(Geneve)
    ls(GeneveOptionOVN)
    out = capsys.readouterr().out
    assert "_" not in "".join(line.split(":")[1].split()[0] for line in out.splitlines())
    assert re.search(r"optionlen\s+: BitFieldLenField\s+\(6 bits\)", out)
    assert re.search(r"vni\s+: X3BytesField\s+= \('0x0'\)", out)
    assert re.search(r"classid\s+: XOptionClassField\s+= \('0x0102'\)", out)
    assert re.search(r"type\s+: XOptionTypeField\s+= \('0x80'\)", out)
    assert re.search(r"length\s+: OptionLengthField\s+\(5 bits\)", out)
    # the hex is only the repr: numbers print and format as numbers
    classid = GeneveOptionOVN().classid
    assert (classid, str(classid), "%d" % classid, repr(classid)) == (0x0102, "258", "258", "0x0102")


@pytest.mark.parametrize(
    "option, values",
    [
        (GeneveOptionGWLBFlowCookie(flow_cookie=0xCAFE), "len=1 flow_cookie=0xcafe"),
        (GeneveOptionGWLBEndpointID(endpoint_id=0x0123456789ABCDEF), "len=2 endpoint_id=0x123456789abcdef"),
        (GeneveOptionOVN(ingress_port=3, egress_port=9), "len=1 ingress_port=3 egress_port=9"),
        (
            GeneveOptionGCPVNID(vnid=0x800000D, traffic_direction=1),
            "len=1 vnid=134217741 traffic_direction=egress",
        ),
        (GeneveOption(classid=0x0101, data=b"odd!"), "len=1 data=6f646421"),  # hex, as tcpdump
    ],
)
def test_option_summaries_show_their_values(option, values):
    assert option.mysummary().endswith(values)
    assert Geneve(bytes(Geneve(options=[option]))).options[0].mysummary().endswith(values)


def test_user_option_declaring_no_length_gets_its_fields_length():
    from scapy.fields import IntField, ShortField

    class Undeclared(GeneveOption):
        name = "Undeclared"
        fields_desc = option_header(0xFF02, 0x06) + [IntField("a", 1), ShortField("b", 2)]

    try:
        assert bytes(Undeclared()) == h("ff02 06 02 | 00000001 0002 | 0000")  # 6 bytes: 2 words
    finally:
        registered_options.pop((0xFF02, 0x06))
