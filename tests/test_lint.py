"""The linter, rule by rule: a packet that triggers each rule, and one that does not.

Packets are written the way the specs draw them: Geneve headers as annotated
hex (RFC 8926 §3.4/§3.5), the rest with the project's layers.  Valid packets
of every family give no findings at all, and arbitrary bytes never make the
linter raise (Hypothesis).
"""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.packet import Raw

from scapy_geneve.layers.geneve import Geneve, GeneveOption
from scapy_geneve.layers.l2tpv3 import L2TPv3, L2TPv3UDP
from scapy_geneve.layers.nvgre import NVGRE
from scapy_geneve.layers.vxlan import build_vxlan
from scapy_geneve.checksum import pseudo_header_sum
from scapy_geneve.offload.stt import stt_segment
from scapy_geneve.conformance.lint import (
    GUESS_NOTE,
    INFO,
    MUST,
    RULES,
    SHOULD,
    Finding,
    lint,
    lint_bytes,
    lint_summary,
)


def ETH():
    """An Ethernet header with both addresses set (Scapy would ARP for a missing dst)."""
    return Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb")


INNER = (
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / UDP(sport=1, dport=2)
    / Raw(b"inner")
)
INNER_ECT0 = (
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    / IP(src="10.0.0.1", dst="10.0.0.2", tos=2)
    / UDP(sport=1, dport=2)
    / Raw(b"inner")
)


def wire(pkt):
    """Dissect from bytes, as a pcap reader would."""
    return Ether(bytes(pkt))


def gnv(hexhdr, ip=None, sport=50123, dport=6081, chksum=None, payload=INNER):
    """Ether/IPv4(DF)/UDP/<Geneve header given as hex>/inner frame."""
    udp = UDP(sport=sport, dport=dport)
    if chksum is not None:
        udp.chksum = chksum
    ip = ip if ip is not None else IP(src="192.0.2.1", dst="192.0.2.2", flags="DF")
    return wire(ETH() / ip / udp / Raw(bytes.fromhex(hexhdr.replace(" ", ""))) / payload)


# Ver=0 OptLen=2 | O=0 C=1 Rsvd=0 | proto 0x6558 | VNI 0x001388 | Reserved 0
# option: class 0xffff, type 0x80 (critical), R=0 Length=1 | data 1234abcd
VALID = "02 40 6558 001388 00  ffff 80 01 1234abcd"


def rules(pkt, **kw):
    return [f.rule for f in lint(pkt, **kw)]


# rule -> (packet that triggers it, packet that does not, lint kwargs)
CASES = {
    # Ver=1 (0x42 = 01 000010)
    "GNV001": (lambda: gnv("42 40 6558 001388 00  ffff 80 01 1234abcd"), lambda: gnv(VALID), {}),
    # Opt Len 1 word, but the option's Length says 1 data word: 8 bytes > 4
    "GNV002": (lambda: gnv("01 40 6558 001388 00  ffff 80 01 1234abcd"), lambda: gnv(VALID), {}),
    # 5 bytes of UDP payload: not even a base header
    "GNV003": (lambda: gnv("02 40 6558 00", payload=b""), lambda: gnv(VALID), {}),
    # critical option (type 0x80) but C (0x40 in byte 1) clear
    "GNV004": (lambda: gnv("02 00 6558 001388 00  ffff 80 01 1234abcd"), lambda: gnv(VALID), {}),
    # Rsvd = 0x3f
    "GNV005": (lambda: gnv("02 7f 6558 001388 00  ffff 80 01 1234abcd"), lambda: gnv(VALID), {}),
    # Reserved (byte 7) = 0xff
    "GNV006": (lambda: gnv("02 40 6558 001388 ff  ffff 80 01 1234abcd"), lambda: gnv(VALID), {}),
    # option R bits = 7 (0xe1 = 111 00001)
    "GNV007": (lambda: gnv("02 40 6558 001388 00  ffff 80 e1 1234abcd"), lambda: gnv(VALID), {}),
    # a built packet with 256 bytes of options (explicit Opt Len, as raw mode allows)
    "GNV008": (
        lambda: (
            ETH()
            / IP(flags="DF")
            / UDP(sport=50123, dport=6081)
            / Geneve(optionlen=63, options=[GeneveOption(classid=0xFF00, type=1, data=bytes(124))] * 2)
            / INNER
        ),
        lambda: (
            ETH()
            / IP(flags="DF")
            / UDP(sport=50123, dport=6081)
            / Geneve(
                options=[
                    GeneveOption(classid=0xFF00, type=1, data=bytes(124)),
                    GeneveOption(classid=0xFF00, type=2, data=bytes(120)),
                ]
            )
            / INNER
        ),
        {},
    ),
    # Geneve read on another destination port (the user said 6082 carries it)
    "GNV009": (lambda: gnv(VALID, dport=6082), lambda: gnv(VALID), {"geneve_ports": (6081, 6082)}),
    # 6081 as the *source* port only
    "GNV010": (lambda: gnv(VALID, sport=6081, dport=50123), lambda: gnv(VALID, sport=50123), {}),
    # UDP checksum 0xbeef does not verify
    "GNV011": (lambda: gnv(VALID, chksum=0xBEEF), lambda: gnv(VALID), {}),
    # zero UDP checksum over IPv6 (over IPv4 it is fine)
    "GNV012": (
        lambda: gnv(VALID, ip=IPv6(src="2001:db8::1", dst="2001:db8::2"), chksum=0),
        lambda: gnv(VALID, chksum=0),
        {},
    ),
    # O bit (0x80 in byte 1)
    "GNV013": (lambda: gnv("02 c0 6558 001388 00  ffff 80 01 1234abcd"), lambda: gnv(VALID), {}),
    # critical option class 0xffff not among the understood classes; OVN's 0x0102/0x80 is
    "GNV014": (
        lambda: gnv(VALID),
        lambda: gnv("02 40 6558 001388 00  0102 80 01 00010002"),
        {"understood": [0x0102]},
    ),
    # outer IPv4 without DF
    "GNV015": (lambda: gnv(VALID, ip=IP(src="192.0.2.1", dst="192.0.2.2")), lambda: gnv(VALID), {}),
    # C set, the only option is not critical (type 0x01)
    "GNV016": (lambda: gnv("02 40 6558 001388 00  ffff 01 01 1234abcd"), lambda: gnv(VALID), {}),
    # outer IPv4 fragment (MF set)
    "GNV017": (
        lambda: gnv(VALID, ip=IP(src="192.0.2.1", dst="192.0.2.2", flags="MF")),
        lambda: gnv(VALID),
        {},
    ),
    # outer TOS 0x03 (CE) over the inner TOS 0x00 (Not-ECT); clean: inner TOS 0x02 (ECT(0))
    "GNV018": (
        lambda: gnv(VALID, ip=IP(src="192.0.2.1", dst="192.0.2.2", flags="DF", tos=3)),
        lambda: gnv(VALID, ip=IP(src="192.0.2.1", dst="192.0.2.2", flags="DF", tos=3), payload=INNER_ECT0),
        {},
    ),
}


def vx(flags=0x08, rest="000000 001388 00", sport=50123, dport=4789, chksum=0, ip=None, payload=INNER):
    udp = UDP(sport=sport, dport=dport, chksum=chksum)
    ip = ip if ip is not None else IP(src="192.0.2.1", dst="192.0.2.2", flags="DF")
    hdr = bytes([flags]) + bytes.fromhex(rest.replace(" ", ""))
    return wire(ETH() / ip / udp / Raw(hdr) / payload)


CASES.update(
    {
        "VXL001": (lambda: vx(flags=0x00), lambda: vx(), {}),
        "VXL002": (lambda: vx(flags=0x0C), lambda: vx(), {}),
        "VXL003": (lambda: vx(rest="000001 001388 00"), lambda: vx(), {}),
        "VXL004": (lambda: vx(rest="000000 001388 01"), lambda: vx(), {}),
        # G bit: VXLAN-GBP, Group Policy ID 0x0064
        "VXL005": (lambda: vx(flags=0x88, rest="000064 001388 00"), lambda: vx(), {}),
        "VXL006": (lambda: vx(chksum=0xBEEF), lambda: vx(chksum=None), {}),
        "VXL007": (lambda: vx(dport=8472), lambda: vx(), {}),
        "VXL008": (lambda: vx(sport=1234), lambda: vx(sport=49152), {}),
        "VXL009": (lambda: vx(ip=IP(src="192.0.2.1", dst="192.0.2.2", flags="MF")), lambda: vx(), {}),
        "VXL010": (lambda: vx(payload=ETH() / Dot1Q(vlan=10) / IP()), lambda: vx(), {}),
        "VXL011": (lambda: vx(rest="0000", payload=b""), lambda: vx(), {}),
        # outer ECT(0) (TOS 0x02) over a Not-ECT inner IPv4 header
        "VXL012": (
            lambda: vx(ip=IP(src="192.0.2.1", dst="192.0.2.2", tos=2)),
            lambda: vx(ip=IP(src="192.0.2.1", dst="192.0.2.2", tos=2), payload=INNER_ECT0),
            {},
        ),
    }
)

OUTER4 = lambda: ETH() / IP(src="192.0.2.1", dst="192.0.2.2")  # noqa: E731


def nv(**kw):
    payload = kw.pop("payload", INNER)
    gre = GRE(**{"key_present": 1, "proto": 0x6558, "key": 0x00ABCD5A, **kw})
    return wire(OUTER4() / gre / payload)


GOOD_NVGRE = lambda: wire(OUTER4() / NVGRE(vsid=0xABCD, flowid=0x5A) / INNER)  # noqa: E731

CASES.update(
    {
        # keyless: RFC 2784 gretap unless the capture is declared NVGRE
        "NVG001": (lambda: nv(key_present=0), GOOD_NVGRE, {"nvgre": True}),
        "NVG002": (lambda: nv(chksum_present=1), GOOD_NVGRE, {}),
        "NVG003": (lambda: nv(seqnum_present=1, sequence_number=1), GOOD_NVGRE, {}),
        # Protocol Type 0x0800 under an NVGRE key: reported when the capture is declared NVGRE
        "NVG004": (lambda: _gre_raw("2000 0800 00abcd5a"), GOOD_NVGRE, {"nvgre": True}),
        "NVG005": (lambda: _gre_raw("2001 6558 00abcd5a"), GOOD_NVGRE, {}),
        "NVG006": (lambda: _gre_raw("2080 6558 00abcd5a"), GOOD_NVGRE, {}),
        "NVG007": (
            lambda: wire(OUTER4() / NVGRE(vsid=0xABCD) / ETH() / Dot1Q(vlan=5) / IP()),
            GOOD_NVGRE,
            {},
        ),
        "NVG008": (lambda: wire(OUTER4() / NVGRE(vsid=0x000123) / INNER), GOOD_NVGRE, {}),
        "NVG009": (lambda: _gre_raw("2000 6558 00ab", inner=b""), GOOD_NVGRE, {}),
    }
)


def _gre_raw(hexhdr, inner=None):
    """IPv4 protocol 47 with a GRE header given as hex (flags+version | protocol | key)."""
    data = bytes.fromhex(hexhdr.replace(" ", "")) + (bytes(INNER) if inner is None else inner)
    ip = IP(src="192.0.2.1", dst="192.0.2.2", proto=47)
    return wire(ETH() / ip / Raw(data))


def stt(**kw):
    seg = stt_segment(INNER, context_id=7, **kw)[0]
    return wire(ETH() / seg)


def stt_raw(hdr_hex, seq=None, chksum=None, flags="PA", dataofs=None, options=None):
    """IPv4/TCP to 7471 carrying an 18-byte STT header given as hex, then INNER."""
    body = bytes.fromhex(hdr_hex.replace(" ", "")) + bytes(INNER)
    tcp = TCP(
        sport=50000,
        dport=7471,
        seq=(len(body) << 16) if seq is None else seq,
        ack=1,
        flags=flags,
        window=0xFFFF,
    )
    if chksum is not None:
        tcp.chksum = chksum
    if options is not None:
        tcp.options = options
    return wire(ETH() / IP(src="192.0.2.1", dst="192.0.2.2", flags="DF") / tcp / Raw(body))


# version 0 | flags 0 | L4 offset 0 | reserved 0 | MSS 0 | VLAN 0 | context ID 7 | pad
STT_OK = "00 00 00 00 0000 0000 0000000000000007 0000"

CASES.update(
    {
        "STT001": (lambda: stt_raw("01" + STT_OK[2:]), lambda: stt_raw(STT_OK), {}),
        "STT002": (
            lambda: stt_raw("00 f0 00 00 0000 0000 0000000000000007 0000"),
            lambda: stt_raw(STT_OK),
            {},
        ),
        "STT003": (lambda: stt_raw(STT_OK, seq=(10 << 16) | 20), lambda: stt_raw(STT_OK), {}),
        "STT004": (lambda: stt_raw(STT_OK, chksum=0xBEEF), lambda: stt_raw(STT_OK), {}),
        # L4 offset 34 and MSS 1400 without the checksum-partial flag (0x02)
        "STT005": (
            lambda: stt_raw("00 00 22 00 0578 0000 0000000000000007 0000"),
            lambda: stt_raw("00 02 22 00 0578 0000 0000000000000007 0000"),
            {},
        ),
        "STT006": (lambda: stt_raw(STT_OK, flags="SA"), lambda: stt_raw(STT_OK), {}),
        "STT007": (
            lambda: wire(
                ETH()
                / IP(src="192.0.2.1", dst="192.0.2.2")
                / TCP(sport=1, dport=7471, seq=40 << 16, flags="PA")
                / Raw(b"\x00" * 10)
            ),
            lambda: stt_raw(STT_OK),
            {},
        ),
    }
)


def l2tp_udp(hexhdr, inner=INNER):
    return wire(
        ETH()
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=1701, dport=1701)
        / Raw(bytes.fromhex(hexhdr.replace(" ", "")))
        / inner
    )


def l2tp_ip(hexhdr, inner=INNER):
    return wire(
        ETH()
        / IP(src="192.0.2.1", dst="192.0.2.2", proto=115)
        / Raw(bytes.fromhex(hexhdr.replace(" ", "")))
        / inner
    )


CASES.update(
    {
        # T=0 Ver=3 | Reserved 0x0001 | Session ID 0x11223344
        "L2T001": (lambda: l2tp_udp("0003 0001 11223344"), lambda: l2tp_udp("0003 0000 11223344"), {}),
        # over IP, Session ID 0 followed by something that is not a control header (T clear)
        "L2T003": (lambda: l2tp_ip("00000000 0003 0000"), lambda: l2tp_ip("11223344"), {}),
        "L2T004": (lambda: l2tp_ip("0000", inner=b""), lambda: l2tp_ip("11223344"), {}),
        # control message over UDP: T=1 L=1 S=0 (0xc003), Length 12, CCID, Ns, Nr
        "L2T002": (
            lambda: l2tp_udp("c003 000c 00001234 0000 0000", inner=b""),
            lambda: l2tp_udp("c803 000c 00001234 0000 0000", inner=b""),
            {},
        ),
    }
)


def partial(pkt, proto=17):
    """PKT (Ether/IPv4/UDP or TCP) with the L4 checksum a sending host leaves for
    its NIC (CHECKSUM_PARTIAL): the pseudo-header sum only, not complemented."""
    data = bytearray(bytes(pkt))
    ihl = (data[14] & 0x0F) * 4
    l4, total = 14 + ihl, int.from_bytes(data[16:18], "big")
    at = l4 + (6 if proto == 17 else 16)
    data[at : at + 2] = pseudo_header_sum(
        bytes(data[26:30]), bytes(data[30:34]), proto, total - ihl
    ).to_bytes(2, "big")
    return wire(Ether(bytes(data)))


def gpe(flags=0x0C, rest="0000 03 001388 00", dport=4790, payload=INNER):
    """VXLAN-GPE: |R|R|Ver|I|P|B|O| Reserved (16) | Next Protocol | VNI | Reserved."""
    return vx(flags=flags, rest=rest, dport=dport, payload=payload)


CASES.update(
    {
        # the outer UDP checksum holds the pseudo-header sum (checksum offload, sending host)
        "GNV019": (lambda: partial(gnv(VALID)), lambda: gnv(VALID), {}),
        "VXL013": (lambda: partial(vx(chksum=None)), lambda: vx(chksum=None), {}),
        "STT008": (lambda: partial(stt_raw(STT_OK), proto=6), lambda: stt_raw(STT_OK), {}),
        # GPE flags 0x1c: Ver 1, I, P
        "VXL014": (lambda: gpe(flags=0x1C), lambda: gpe(), {}),
        # GPE flags 0x08: P clear, Ethernet as in RFC 7348
        "VXL015": (lambda: gpe(flags=0x08, rest="000000 001388 00"), lambda: gpe(), {}),
    }
)


# Truncated headers: Scapy's own GRE and VXLAN classes raise on them when
# conf.debug_dissector is on (a pcap reader runs with it off).
TRUNCATION_RULES = {"NVG009", "VXL011", "STT007", "L2T004"}


def test_every_rule_has_a_case():
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_triggers(rule, request):
    if rule in TRUNCATION_RULES:
        request.getfixturevalue("no_debug_dissector")
    bad, _good, kw = CASES[rule]
    found = lint(bad(), **kw)
    assert rule in [f.rule for f in found], found
    f = next(f for f in found if f.rule == rule)
    assert f.level == RULES[rule].level and f.section == RULES[rule].section
    assert f.message and f.field


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_does_not_trigger_on_the_clean_packet(rule):
    _bad, good, kw = CASES[rule]
    assert rule not in rules(good(), **kw)


def test_l2tp_control_header_over_ip_and_its_length():
    """RFC 3931 §3.2.1: a control message (Session ID 0 over IP, then T=1)
    needs L and S set; its Length may not run past the packet (L2T004)."""
    # Session ID 0 | T=1 L=1 S=1 Ver 3 | Length 12 | CCID | Ns | Nr
    assert rules(l2tp_ip("00000000 c803 000c 00001234 0000 0000", inner=b"")) == []
    # S clear (0xc003)
    assert rules(l2tp_ip("00000000 c003 000c 00001234 0000 0000", inner=b"")) == ["L2T002"]
    # Length 0x0400 = 1024, 12 bytes present
    found = lint(l2tp_ip("00000000 c803 0400 00001234 0000 0000", inner=b""))
    assert [(f.rule, f.field, f.offset) for f in found] == [("L2T004", "L2TPv3Control.length", 34 + 4 + 2)]


def test_ecn_rule_reads_the_inner_header_behind_tags_and_over_ipv6():
    """RFC 6040 §4.1: Not-ECT inside means Not-ECT outside, whatever else is
    in the way (802.1Q tag, IPv6 underlay, IPv6 inner); non-IP inner is out of scope."""
    tagged = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / Dot1Q(vlan=5)
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / UDP(sport=1, dport=2)
        / Raw(b"x")
    )
    over6 = wire(ETH() / IPv6(tc=3) / UDP(sport=50123, dport=6081) / Geneve(vni=1) / tagged)
    f = next(f for f in lint(over6) if f.rule == "GNV018")
    assert f.field == "IPv6.tc" and f.offset == 15 and "CE" in f.message
    inner6 = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IPv6(tc=1)
        / UDP(sport=1, dport=2)
        / Raw(b"x")
    )
    assert "GNV018" not in rules(
        wire(ETH() / IPv6(tc=3) / UDP(sport=50123, dport=6081) / Geneve(vni=1) / inner6)
    )
    arp = bytes.fromhex("0806")
    assert "GNV018" not in rules(
        gnv(VALID, ip=IP(flags="DF", tos=3), payload=Raw(bytes(12) + arp + bytes(28)))
    )


def test_stt_segment_running_past_its_frame():
    """draft-davie-stt-08 §3.5: a segment's bytes lie inside the frame whose
    length the high half of SEQ gives; offset 0 with more bytes than that overruns."""
    pkt = stt_raw(STT_OK, seq=(10 << 16) | 0)  # 18-byte STT header + inner, frame length 10
    found = [f for f in lint(pkt) if f.rule == "STT003"]
    assert len(found) == 1 and "runs past the frame length 10" in found[0].message


def test_offsets_point_at_the_field():
    pkt = CASES["GNV006"][0]()
    f = next(f for f in lint(pkt) if f.rule == "GNV006")
    # Ether 14 + IPv4 20 + UDP 8 = 42: the Geneve header; Reserved is its byte 7
    assert f.offset == 42 + 7 and bytes(pkt)[f.offset] == 0xFF


VALID_PACKETS = {
    "geneve, known critical option": lambda: gnv(VALID),
    "geneve built, OVN option": lambda: wire(
        ETH()
        / IP(flags="DF")
        / UDP(sport=50123, dport=6081)
        / Geneve(vni=7, options=[GeneveOption(classid=0x0102, type=0x80, data=b"\x00\x01\x00\x02")])
        / INNER
    ),
    "geneve, no options, IPv6 with checksum": lambda: wire(
        ETH() / IPv6() / UDP(sport=50123, dport=6081) / Geneve(vni=7) / INNER
    ),
    "vxlan, build_vxlan, zero checksum": lambda: wire(
        ETH() / IP() / UDP(sport=50000, dport=4789, chksum=0) / build_vxlan(42) / INNER
    ),
    "nvgre": GOOD_NVGRE,
    "stt, stt_segment": lambda: stt(),
    "l2tpv3 over ip": lambda: wire(
        ETH() / IP(src="192.0.2.1", dst="192.0.2.2") / L2TPv3(session_id=0x1234) / INNER
    ),
    "l2tpv3 over udp": lambda: wire(
        ETH() / IP() / UDP(sport=1701, dport=1701) / L2TPv3UDP() / L2TPv3(session_id=0x1234) / INNER
    ),
}


@pytest.mark.parametrize("name", sorted(VALID_PACKETS))
def test_valid_packets_have_no_findings(name):
    assert lint(VALID_PACKETS[name]()) == []


def test_nested_geneve_in_vxlan_is_linted_too():
    inner_geneve = (
        ETH()
        / IP(flags="DF")
        / UDP(sport=50123, dport=6081)
        / Raw(bytes.fromhex("42 40 6558 001388 00  ffff 80 01 1234abcd".replace(" ", "")))
        / INNER
    )
    pkt = vx(payload=inner_geneve)
    assert "GNV001" in rules(pkt)


def test_finding_is_data():
    f = lint(CASES["GNV001"][0]())[0]
    assert isinstance(f, Finding)
    d = f.as_dict()
    assert d["rule"] == "GNV001" and d["level"] == MUST and d["section"] == "RFC 8926 §3.4"
    assert "GNV001" in str(f)


def test_summary_counts_rules_and_levels():
    per_packet = [lint(CASES["GNV001"][0]()), [], lint(CASES["GNV013"][0]()), lint(CASES["VXL008"][0]())]
    s = lint_summary(per_packet)
    assert s["packets"] == 4 and s["packets_with_findings"] == 3
    assert s["rules"] == {"GNV001": 1, "GNV013": 1, "VXL008": 1}
    assert s["levels"] == {MUST: 1, SHOULD: 0, INFO: 2}  # VXL008 is INFO: Linux's port range


def test_protocol_families_can_be_turned_off():
    assert lint(CASES["NVG002"][0](), nvgre=False) == []
    assert lint(CASES["STT001"][0](), stt=False) == []
    assert lint(CASES["L2T001"][0](), l2tpv3=False) == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), port=st.sampled_from([6081, 4789, 8472, 1701]))
def test_arbitrary_udp_payload_never_raises(no_debug_dissector, data, port):
    pkt = wire(ETH() / IP() / UDP(sport=50000, dport=port) / Raw(data))
    for f in lint(pkt):
        assert f.rule in RULES


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200), proto=st.sampled_from([47, 115]))
def test_arbitrary_ip_payload_never_raises(no_debug_dissector, data, proto):
    pkt = wire(ETH() / IP(proto=proto) / Raw(data))
    for f in lint(pkt):
        assert f.rule in RULES


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200), seq=st.integers(0, 2**32 - 1))
def test_arbitrary_stt_never_raises(no_debug_dissector, data, seq):
    pkt = wire(ETH() / IP() / TCP(dport=7471, seq=seq) / Raw(data))
    for f in lint(pkt):
        assert f.rule in RULES


# -- lint on bytes -------------------------------------------------------------------------
def test_bytes_and_packets_lint_the_same(no_debug_dissector):
    """lint(pkt) is the bytes engine on bytes(pkt): a frame's bytes give the same findings."""
    for rule, (bad, _good, kw) in CASES.items():
        if rule == "GNV008":
            continue
        pkt = bad()
        assert lint(bytes(pkt), **kw) == lint(pkt, **kw), rule


def test_gnv008_needs_the_built_packet():
    """More than 252 bytes of options cannot be said by the 6-bit Opt Len: on the
    wire a receiver sees an option overrunning Opt Len (GNV002); only the Scapy
    packet, whose options are objects, shows the 256 bytes (GNV008)."""
    pkt = CASES["GNV008"][0]()
    assert "GNV008" in rules(pkt) and "GNV008" not in rules(bytes(pkt))
    assert "GNV002" in rules(bytes(pkt))


def _layer_fields(name):
    from scapy.layers.inet import IP as _IP, TCP as _TCP, UDP as _UDP
    from scapy.layers.inet6 import IPv6 as _IPv6
    from scapy.layers.l2 import GRE as _GRE, Ether as _Ether
    from scapy.layers.vxlan import VXLAN
    from scapy_geneve.layers.l2tpv3 import L2TPv3Control, L2TPv3UDP as _L2UDP
    from scapy_geneve.layers.stt import STT

    classes = {
        c.__name__: c
        for c in (
            _IP,
            _TCP,
            _UDP,
            _IPv6,
            _GRE,
            _Ether,
            VXLAN,
            Geneve,
            GeneveOption,
            L2TPv3,
            _L2UDP,
            L2TPv3Control,
            STT,
        )
    }
    return classes[name], {f.name for f in classes[name].fields_desc}


def assert_field_is_real(f):
    """``Layer``, ``Layer.field`` or ``Geneve.options[i].field``: a real Scapy layer and field."""
    head, _, rest = f.field.partition(".")
    cls, fields = _layer_fields(head)
    if rest.startswith("options["):
        _cls, fields = _layer_fields("GeneveOption")
        rest = rest.split("].", 1)[1] if "]." in rest else ""
        assert "options" in {x.name for x in cls.fields_desc}
    assert rest == "" or rest in fields, (f.rule, f.field)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_every_finding_names_a_real_field(rule, request):
    """Each finding's field exists in the Scapy layer it names (today's lint named
    L2TPv3Control.flags and L2TPv3.reserved, which do not exist)."""
    if rule in TRUNCATION_RULES:
        request.getfixturevalue("no_debug_dissector")
    bad, _good, kw = CASES[rule]
    for f in lint(bad(), **kw):
        assert_field_is_real(f)


def test_l2tp_fields_are_the_layers_own():
    found = lint(CASES["L2T001"][0]())
    assert [(f.rule, f.field) for f in found] == [("L2T001", "L2TPv3UDP.reserved")]
    found = lint(CASES["L2T002"][0]())
    assert [(f.rule, f.field) for f in found] == [("L2T002", "L2TPv3Control.s")]  # 0xc003: S clear


def test_partial_checksum_is_info_not_a_must():
    """A capture on the sending host holds the pseudo-header sum only (tshark: "maybe
    caused by checksum offload"): INFO, not the MUST a wrong checksum breaks."""
    found = lint(CASES["GNV019"][0]())
    assert [(f.rule, f.level) for f in found] == [("GNV019", INFO)] and "offload" in found[0].message
    assert [f.rule for f in lint(CASES["GNV011"][0]())] == ["GNV011"]


def test_coalesce_default_output_is_not_a_must_failure():
    """segment --coalesce writes partial checksums by default (as GRO hands a
    super-packet to the stack); lint calls that offload, not a broken MUST."""
    from scapy_geneve.offload.gro import coalesce
    from scapy_geneve.offload.segment import segment

    inner = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF")
        / TCP(sport=1000, dport=80, flags="A", seq=1)
        / Raw(bytes(3000))
    )
    sup = (
        ETH()
        / IP(src="192.0.2.1", dst="192.0.2.2", flags="DF")
        / UDP(sport=50123, dport=6081)
        / Geneve(vni=5)
        / inner
    )
    merged = coalesce(segment(sup, mss=1000))
    assert len(merged) == 1
    found = lint(bytes(merged[0]))
    assert {f.level for f in found} <= {INFO} and "GNV019" in {f.rule for f in found}


def test_keyless_gretap_is_not_nvgre():
    """RFC 2784 Ethernet over GRE without a key (Linux gretap, OVS gre ports) is
    not NVGRE: no NVG finding unless the capture is declared NVGRE."""
    gretap = lambda: nv(key_present=0, chksum_present=1)  # noqa: E731
    assert lint(gretap()) == []
    assert {"NVG001", "NVG002"} <= set(rules(gretap(), nvgre=True))
    assert rules(gretap(), gre_as="nvgre") == rules(gretap(), nvgre=True)


def test_keyed_teb_gre_is_a_stated_guess():
    """Keyed GRE carrying Ethernet reads as NVGRE by guess: each finding says so;
    --gre-as settles it either way."""
    pkt = wire(OUTER4() / GRE(key_present=1, proto=0x6558, key=456) / INNER)  # OVS gre, key 456
    found = lint(pkt)
    assert [f.rule for f in found] == ["NVG008"] and found[0].message.endswith(GUESS_NOTE)
    assert lint(pkt, gre_as="gre") == []
    assert [f.message for f in lint(pkt, gre_as="nvgre")] == ["VSID 0x000001 is reserved"]


def test_gpe_on_a_vxlan_port_when_the_user_says_so():
    """OVS exts=gpe on 4789: read as RFC 7348, P (0x04) and the Next Protocol
    byte are reserved bits (two MUSTs); --gpe-port 4789 reads it as GPE."""
    pkt = gpe(dport=4789)
    assert set(rules(pkt)) == {"VXL002", "VXL003"}
    assert rules(pkt, gpe_ports=[4789]) == []


def test_vxlan_source_port_is_info_with_the_reason():
    f = next(f for f in lint(vx(sport=39902)) if f.rule == "VXL008")
    assert f.level == INFO and "32768-60999" in f.message


def test_big_tcp_outer_lengths_are_linted():
    """BIG TCP: IPv6 payload length 0 (no jumbo option), UDP length 0: the lengths
    come from the capture (as tcpdump reads them), and the UDP checksum is judged."""
    body = Raw(bytes.fromhex(VALID.replace(" ", ""))) / INNER
    frame = bytearray(
        bytes(
            ETH()
            / IPv6(src="2001:db8::1", dst="2001:db8::2")
            / UDP(sport=50123, dport=6081, chksum=0xBEEF)
            / body
        )
    )
    frame[18:20] = b"\x00\x00"  # IPv6 Payload Length 0
    frame[58:60] = b"\x00\x00"  # UDP Length 0
    assert [f.rule for f in lint_bytes(bytes(frame))] == ["GNV011"]


def test_lint_reads_from_the_link_layer_or_ip():
    """A packet starting with IP is read as raw IP; one starting above IP is refused
    with a message (its tunnel cannot be judged without the IP header)."""
    pkt = CASES["GNV001"][0]()
    assert rules(pkt[IP]) == rules(pkt) == ["GNV001"]
    with pytest.raises(ValueError, match="starts with UDP"):
        lint(pkt[UDP])


def test_ipv6_routing_header_final_destination_in_the_pseudo_header():
    """RFC 8200 §8.1: behind a routing header the UDP checksum covers the final
    destination (today's lint skipped these packets: no GNV011 on a wrong one)."""
    from scapy.layers.inet6 import IPv6ExtHdrRouting

    def over_rh0(chksum=None):
        udp = UDP(sport=50123, dport=6081) if chksum is None else UDP(sport=50123, dport=6081, chksum=chksum)
        return wire(
            ETH()
            / IPv6(src="2001:db8::1", dst="2001:db8::10")
            / IPv6ExtHdrRouting(addresses=["2001:db8::99"])
            / udp
            / Geneve(vni=1)
            / INNER
        )

    assert lint(over_rh0()) == []  # Scapy's checksum: the final destination
    assert rules(over_rh0(chksum=0xBEEF)) == ["GNV011"]


def test_rule_families_are_the_registrys():
    """Every rule id starts with the lint_prefix of an encapsulation in the registry,
    and every encapsulation's family has rules."""
    from scapy_geneve import registry

    prefixes = {rec.lint_prefix for rec in registry.records()}
    assert {rule[:3] for rule in RULES} == prefixes
    assert all(rule[3:].isdigit() and len(rule) == 6 for rule in RULES)
