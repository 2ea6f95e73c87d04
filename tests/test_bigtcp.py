"""BIG TCP and RFC 2675 jumbograms in Scapy dissection (scapy_geneve.layers.bigtcp).

tcpdump's bigtcp-* captures (../shared/corpus/tcpdump, read in place) hold Linux
BIG TCP super-packets of about 80 kB, plain and inside Geneve and VXLAN over
IPv4 and IPv6, with IPv4 Total Length 0, IPv6 Payload Length 0 (with and
without the Jumbo Payload option) and UDP Length 0.  tcpdump's decodes (.out)
are the oracle: Scapy must reach the same tunnel and inner TCP segment, and
give the captured bytes back.  tshark gives up at the outer UDP header of the
tunnelled ones ("Malformed Packet: UDP"), so it is the oracle only for the
plain captures it decodes.
"""

import re
import struct
import subprocess
from pathlib import Path
from typing import List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import HBHOptUnknown, IPv6, IPv6ExtHdrHopByHop, Jumbo, Pad1, PadN
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Padding, Raw
from scapy.utils import RawPcapReader

from scapy_geneve import Geneve
from scapy_geneve.layers import bigtcp

CAPTURES = [
    "bigtcp-ipv4",
    "bigtcp-ipv6",
    "bigtcp-ipv6-hbh",
    "bigtcp-ipv4-geneve-ipv4",
    "bigtcp-ipv4-geneve-ipv6",
    "bigtcp-ipv6-geneve-ipv4",
    "bigtcp-ipv6-geneve-ipv6",
    "bigtcp-ipv4-vxlan-ipv4",
    "bigtcp-ipv4-vxlan-ipv6",
    "bigtcp-ipv6-vxlan-ipv4",
    "bigtcp-ipv6-vxlan-ipv6",
]
# tcpdump -v: "... 192.168.1.2.43959 > 192.168.1.1.39887: Flags [P.], ... seq A:B, ack C, ..., length N"
# (addresses and ports joined by a dot; after an IPv6 HBH header, ports alone)
TCP_LINE = re.compile(
    r"(?:(?P<src>[0-9a-f.:]+)\.)?(?P<sport>\d+) > (?:(?P<dst>[0-9a-f.:]+)\.)?"
    r"(?P<dport>\d+): "
    r"Flags \[[^\]]*\], cksum \S+ \([^)]*\), seq (?P<seq>\d+):(?P<end>\d+), "
    r"ack (?P<ack>\d+),.* length (?P<len>\d+)$",
    re.M,
)
TUNNEL = re.compile(r"(?P<kind>Geneve|VXLAN), .*?vni (?P<vni>0x[0-9a-f]+|\d+)")
JUMBO = re.compile(r"HBH \(jumbo: (\d+)\)")
ETHER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # no ARP/route lookups


def frame(path: Path) -> bytes:
    """The one record of the classic pcap PATH, whole: the 24-byte file header,
    the 16-byte record header (caplen at offset 8), the frame.  (Scapy's reader
    cuts records at 65535 bytes: see test_scapy_reader_truncates_what_tcpdump_reads.)"""
    data = path.read_bytes()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    (caplen,) = struct.unpack_from(endian + "I", data, 24 + 8)
    assert len(data) == 40 + caplen, "one record, whole"
    return data[40:]


def layers(pkt: Packet) -> List[str]:
    out = []
    while pkt:
        out.append(type(pkt).__name__)
        pkt = pkt.payload
    return out


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_dissects_like_tcpdump_through_tunnel_and_tcp(corpus: Path, name: str) -> None:
    wire = frame(corpus / (name + ".pcap"))
    pkt = Ether(wire)
    assert bytes(pkt) == wire  # lossless
    assert "Padding" not in layers(pkt), layers(pkt)  # nothing cut off as padding
    text = (corpus / (name + ".out")).read_text()
    want = TCP_LINE.search(text)
    assert want, text
    tunnel = TUNNEL.search(text)
    if tunnel:
        layer = pkt[Geneve] if tunnel["kind"] == "Geneve" else pkt[VXLAN]
        assert layer.vni == int(tunnel["vni"], 0)
        inner = layer.payload
        assert isinstance(inner, Ether)
    else:
        inner = pkt
    tcp = inner[TCP]
    assert (tcp.sport, tcp.dport) == (int(want["sport"]), int(want["dport"]))
    assert (tcp.seq, tcp.ack) == (int(want["seq"]), int(want["ack"]))
    assert len(tcp.payload) == int(want["len"]) == int(want["end"]) - int(want["seq"])
    assert isinstance(tcp.payload, Raw)
    if want["src"]:
        assert (tcp.underlayer.src, tcp.underlayer.dst) == (want["src"], want["dst"])
    else:
        assert isinstance(tcp.underlayer, IPv6ExtHdrHopByHop)


def test_jumbo_option_length_is_read_as_rfc_2675_says(corpus: Path) -> None:
    wire = frame(corpus / "bigtcp-ipv6-hbh.pcap")
    pkt = Ether(wire)
    jumbo = int(JUMBO.search((corpus / "bigtcp-ipv6-hbh.out").read_text()).group(1))
    assert pkt[IPv6].plen == 0
    assert bigtcp.jumbo_payload_length(bytes(pkt[IPv6].payload)) == jumbo == 80040
    assert len(pkt[IPv6].payload) == jumbo  # HBH + TCP + data, not the IPv6 header


@pytest.mark.oracle
@pytest.mark.parametrize("name", ["bigtcp-ipv4", "bigtcp-ipv6-hbh"])
def test_tshark_agrees_where_it_decodes(corpus: Path, tshark: str, name: str) -> None:
    path = corpus / (name + ".pcap")
    out = subprocess.run(
        [
            tshark,
            "-r",
            str(path),
            "-T",
            "fields",
            "-E",
            "separator=,",
            "-e",
            "tcp.len",
            "-e",
            "tcp.seq_raw",
            "-e",
            "frame.cap_len",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    tcp_len, seq, cap_len = (int(x) for x in out[0].split(","))
    pkt = Ether(frame(path))
    assert (len(pkt[TCP].payload), pkt[TCP].seq, len(pkt)) == (tcp_len, seq, cap_len)


@pytest.mark.oracle
def test_scapy_reader_truncates_what_tcpdump_reads(corpus: Path, tshark: str) -> None:
    """Why test_pcapio's comparison with Scapy's reader fails on these captures:
    RawPcapReader cuts every record at 65535 bytes without a word; tshark (and
    tcpdump, whose .out says "length 80000") read the 80116 captured bytes."""
    path = corpus / "bigtcp-ipv4-geneve-ipv4.pcap"
    scapys = [data for data, _meta in RawPcapReader(str(path))]
    cap_len = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.cap_len"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [len(d) for d in scapys] == [65535]
    assert [int(n) for n in cap_len] == [len(frame(path))] == [80116]


# -- the Jumbo Payload option (RFC 2675 §2) ---------------------------------------------

HBH_JUMBO = bytes.fromhex(
    "06"  # Next Header: TCP
    "00"  # Hdr Ext Len: 0 (8 bytes)
    "c2"  # option type 0xC2: Jumbo Payload
    "04"  # Opt Data Len 4
    "00013898"  # Jumbo Payload Length 80024
)
HBH_PADDED = bytes.fromhex(
    "06"  # Next Header: TCP
    "01"  # Hdr Ext Len: 1 (16 bytes)
    "00"  # Pad1
    "01"
    "01"
    "00"  # PadN, 1 byte of padding
    "c2"
    "04"
    "00001000"  # Jumbo Payload, length 4096
    "01"
    "02"
    "0000"  # PadN, 2 bytes
)


@pytest.mark.parametrize(
    "hbh, length",
    [
        (HBH_JUMBO, 80024),
        (HBH_PADDED, 4096),
        (bytes.fromhex("06 00 01 04 00000000"), None),  # PadN only: no jumbo option
        (bytes.fromhex("06 00 c2 04 0001"), None),  # option cut short
        (bytes.fromhex("06"), None),
    ],
)
def test_jumbo_payload_length(hbh: bytes, length: Optional[int]) -> None:
    assert bigtcp.jumbo_payload_length(hbh) == length


_OPTIONS = st.lists(
    st.one_of(
        st.builds(Pad1),
        st.builds(PadN, optdata=st.binary(max_size=6)),
        st.builds(
            HBHOptUnknown,
            otype=st.sampled_from([0x1E, 0x3E, 0x5E, 0xDE]),  # RFC 4727 experimental
            optdata=st.binary(max_size=6),
        ),
    ),
    max_size=4,
)


@settings(max_examples=100)
@given(_OPTIONS, st.one_of(st.none(), st.integers(0, 2**32 - 1)), _OPTIONS)
def test_jumbo_walk_reads_what_scapys_hop_by_hop_layer_reads(before, jumbo, after) -> None:
    """Our option walk against Scapy's own Hop-by-Hop dissection (its Jumbo class)."""
    options = before + ([Jumbo(jumboplen=jumbo)] if jumbo is not None else []) + after
    wire = bytes(IPv6ExtHdrHopByHop(nh=6, options=options))
    theirs = [o.jumboplen for o in IPv6ExtHdrHopByHop(wire).options if isinstance(o, Jumbo)]
    assert bigtcp.jumbo_payload_length(wire) == (theirs[0] if theirs else None) == jumbo


def test_jumbogram_shorter_than_the_frame_leaves_the_rest_as_padding() -> None:
    tcp = bytes(TCP(sport=1, dport=2, flags="A"))
    hbh = bytes.fromhex("06 00 c2 04") + struct.pack("!I", 8 + len(tcp) + 4)
    ip6 = bytes(IPv6(plen=0, nh=0, src="2001:db8::1", dst="2001:db8::2"))
    wire = ip6 + hbh + tcp + b"data" + b"\x00" * 6  # 6 bytes of link padding
    pkt = IPv6(wire)
    assert pkt[TCP].payload.load == b"data"
    assert pkt[Padding].load == b"\x00" * 6
    assert bytes(pkt) == wire


def test_payload_length_0_without_jumbo_option_is_the_capture() -> None:
    wire = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP() / (b"x" * 100))
    wire = wire[:4] + b"\x00\x00" + wire[6:]  # Payload Length 0 (BIG TCP)
    pkt = IPv6(wire)
    assert pkt[Raw].load == b"x" * 100 and bytes(pkt) == wire


def test_udp_length_0_in_a_big_ipv4_packet_is_the_rest() -> None:
    inner = bytes(ETHER / IP() / TCP() / (b"y" * 64))
    wire = bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=6081) / Geneve(vni=5) / inner)
    wire = wire[:2] + b"\x00\x00" + wire[4:24] + b"\x00\x00" + wire[26:]  # IP len 0, UDP len 0
    pkt = IP(wire)
    assert pkt[Geneve].vni == 5 and pkt[Raw].load == b"y" * 64 and bytes(pkt) == wire


# -- a good guest: every non-zero length is Scapy's -----------------------------------------


def _dissect_without_hooks(cls: type, wire: bytes) -> Packet:
    bigtcp.uninstall()
    try:
        return cls(wire)
    finally:
        bigtcp.install()


def _same(a: Packet, b: Packet) -> bool:
    return layers(a) == layers(b) and all(
        bytes(x) == bytes(y) for x, y in zip(a.iterpayloads(), b.iterpayloads())
    )


@settings(max_examples=100)
@given(st.booleans(), st.booleans(), st.binary(max_size=40), st.binary(max_size=20))
def test_packets_with_lengths_dissect_as_scapy_does(v6: bool, udp: bool, load: bytes, padding: bytes) -> None:
    l3 = IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(src="192.0.2.1", dst="192.0.2.2")
    l4 = UDP(sport=1234, dport=5678) if udp else TCP(sport=1234, dport=5678)
    wire = bytes(ETHER / l3 / l4 / load) + padding
    assert _same(Ether(wire), _dissect_without_hooks(Ether, wire))


@pytest.mark.parametrize(
    "wire",
    [
        # IPv6 Payload Length 0, Next Header 59 (No Next Header): a valid empty packet,
        # followed by 6 bytes of Ethernet padding
        bytes(ETHER / IPv6(nh=59, plen=0)) + b"\x00" * 6,
        # UDP Length 0 in a small IPv4 packet: not a jumbogram, left to Scapy
        bytes(ETHER / IP() / UDP(len=0, sport=1, dport=2) / b"abcdefgh"),
    ],
)
def test_zero_lengths_that_are_not_big_tcp_are_left_to_scapy(wire: bytes) -> None:
    assert _same(Ether(wire), _dissect_without_hooks(Ether, wire))


def test_install_is_idempotent_and_uninstall_restores_scapy() -> None:
    original = bigtcp.IPv6.extract_padding.__wrapped__
    bigtcp.install()
    assert bigtcp.installed() and IPv6.extract_padding.__wrapped__ is original
    bigtcp.uninstall()
    try:
        assert not bigtcp.installed() and IPv6.extract_padding is original
    finally:
        bigtcp.install()
    assert bigtcp.installed()
