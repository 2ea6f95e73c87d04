"""tcpdump's own captures (read in place) dissect to the values in its .out files.

- vxlan.pcap, vxlan_port_8472.pcap: RFC 7348 VXLAN on 4789 and Linux's legacy 8472;
- nsh-over-vxlan-gpe.pcap: VXLAN-GPE on 4790 carrying NSH (-vv output);
- various_gre.pcap: GRE with a key but not NVGRE-shaped, which must stay Scapy's GRE;
- gre-heapoverflow-{1,2}.pcap, l2tp-avp-overflow.pcap: fuzzer-made malformed
  packets, which must dissect without an exception and give back every byte.
"""

import re
from pathlib import Path
from typing import Dict, List

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE, Ether
from scapy.layers.l2tp import L2TP
from scapy.layers.vxlan import VXLAN
from scapy.utils import rdpcap

from scapy_geneve import NVGRE, L2TPv3, L2TPv3UDP, compat

VXLAN_LINE = re.compile(
    r"^\s*(?P<no>\d+)\s+\S+ \S+ (?P<osrc>[0-9a-f:]{17}) > (?P<odst>[0-9a-f:]{17}), ethertype "
    r"IPv4 \(0x0800\), length (?P<olen>\d+): (?P<ipsrc>[\d.]+)\.(?P<sport>\d+) > "
    r"(?P<ipdst>[\d.]+)\.(?P<dport>\d+): VXLAN, flags \[I\] \((?P<flags>0x[0-9a-f]+)\), "
    r"vni (?P<vni>\d+)\n(?P<isrc>[0-9a-f:]{17}) > (?P<idst>[0-9a-f:]{17}), ethertype "
    r"\S+ \((?P<itype>0x[0-9a-f]{4})\), length (?P<ilen>\d+):",
    re.M,
)


def _expected_vxlan(out: Path) -> List[Dict[str, str]]:
    return [m.groupdict() for m in VXLAN_LINE.finditer(out.read_text())]


@pytest.mark.parametrize("name, port", [("vxlan", 4789), ("vxlan_port_8472", 8472)])
def test_vxlan_captures_match_tcpdump(corpus, name, port):
    packets = rdpcap(str(corpus / (name + ".pcap")))
    expected = _expected_vxlan(corpus / (name + ".out"))
    assert len(expected) == len(packets) == 10
    for want, pkt in zip(expected, packets):
        assert bytes(pkt) == pkt.original
        assert (pkt[Ether].src, pkt[Ether].dst, len(pkt)) == (want["osrc"], want["odst"], int(want["olen"]))
        assert (pkt[IP].src, pkt[UDP].sport) == (want["ipsrc"], int(want["sport"]))
        assert (pkt[IP].dst, pkt[UDP].dport) == (want["ipdst"], int(want["dport"])) == (want["ipdst"], port)
        vx = pkt[VXLAN]
        assert int(vx.flags) == int(want["flags"], 16) == 0x08
        assert vx.vni == int(want["vni"])
        inner = vx.payload
        assert isinstance(inner, Ether)
        assert (inner.src, inner.dst, inner.type) == (want["isrc"], want["idst"], int(want["itype"], 16))
        assert len(inner) == int(want["ilen"])


#: Scapy's contrib NSH dissects MD type 2 context headers from Scapy 2.8 on.  Before,
#: the list is declared with ``count_from="length"`` (a string, not a function): its
#: dissection raises TypeError, an exception under conf.debug_dissector (else Raw),
#: and Scapy 2.5 binds VXLAN to NSH on a field VXLAN does not have (``nextproto``).
SCAPY_NSH_READS_MD2 = compat.SCAPY_VERSION >= (2, 8, 0)


@pytest.fixture
def nsh_capture(corpus, request):
    """nsh-over-vxlan-gpe.pcap's one packet (VXLAN-GPE, NSH MD type 2, IPv4, UDP).

    Before Scapy 2.8 it is read with conf.debug_dissector off, so that where another
    test loaded Scapy's NSH its MD type 2 failure leaves the NSH bytes Raw.
    """
    if not SCAPY_NSH_READS_MD2:
        request.getfixturevalue("no_debug_dissector")
    (pkt,) = rdpcap(str(corpus / "nsh-over-vxlan-gpe.pcap"))
    return pkt


def test_vxlan_gpe_carrying_nsh_matches_tcpdump_vv(corpus, nsh_capture):
    out = (corpus / "nsh-over-vxlan-gpe-vv.out").read_text()
    pkt = nsh_capture
    assert bytes(pkt) == pkt.original
    # "127.0.0.1.4790 > 127.0.0.1.4790: [udp sum ok] VXLAN-GPE, flags [IP], vni 16777215"
    m = re.search(
        r"(\S+)\.(\d+) > (\S+)\.(\d+): \[udp sum ok\] VXLAN-GPE, flags \[IP\], "
        r"vni (\d+)",
        out,
    )
    assert (pkt[IP].src, pkt[UDP].sport, pkt[IP].dst, pkt[UDP].dport) == (
        m.group(1),
        int(m.group(2)),
        m.group(3),
        int(m.group(4)),
    )
    vx = pkt[VXLAN]
    assert vx.flags.Instance and vx.flags.NextProtocol  # [IP]: I and P
    assert vx.vni == int(m.group(5)) and vx.NextProtocol == 4  # NSH


@pytest.mark.skipif(
    not SCAPY_NSH_READS_MD2, reason="Scapy < 2.8's contrib NSH cannot dissect MD type 2 context headers"
)
def test_nsh_after_vxlan_gpe_matches_tcpdump_vv(corpus, nsh_capture):
    pytest.importorskip("scapy.contrib.nsh")  # binds VXLAN NextProtocol 4 -> NSH
    from scapy.contrib.nsh import NSH

    out = (corpus / "nsh-over-vxlan-gpe-vv.out").read_text()
    pkt = Ether(nsh_capture.original)  # dissected again, now that NSH is bound
    # "NSH, ver 0, flags [O], next-protocol IPv4, service-path-id 0xffffff, service-index 0xff"
    m = re.search(
        r"NSH, ver (\d+), flags \[O\], next-protocol IPv4, service-path-id "
        r"(0x[0-9a-f]+), service-index (0x[0-9a-f]+)",
        out,
    )
    nsh = pkt[NSH]
    assert (nsh.ver, nsh.oam, nsh.nextproto) == (int(m.group(1)), 1, 1)
    assert nsh.spi == int(m.group(2), 16) and nsh.si == int(m.group(3), 16)
    # "192.168.0.1.10000 > 192.168.0.2.20000: [udp sum ok] UDP, length 4"
    inner = nsh.payload
    assert (inner[IP].src, inner[UDP].sport, inner[IP].dst, inner[UDP].dport) == (
        "192.168.0.1",
        10000,
        "192.168.0.2",
        20000,
    )
    assert inner[IP].id == 54321 and len(inner[UDP].payload) == 4


GRE_LINES = re.compile(
    r"^\s*(?P<no>\d+)\s+\S+ \S+ IP \(tos (?P<tos>0x[0-9a-f]+), ttl (?P<ttl>\d+), id "
    r"(?P<id>\d+), offset 0, flags \[none\], proto GRE \(47\), length (?P<len>\d+)\)\n"
    r"\s+(?P<src>[\d.]+) > (?P<dst>[\d.]+): GREv0, Flags \[key present\], "
    r"key=(?P<key>0x[0-9a-f]+), length (?P<glen>\d+)\n\s+(?P<what>\S+)",
    re.M,
)


def test_various_gre_stays_scapys_gre_with_tcpdumps_values(corpus):
    packets = rdpcap(str(corpus / "various_gre.pcap"))
    expected = [m.groupdict() for m in GRE_LINES.finditer((corpus / "various_gre.out").read_text())]
    assert len(expected) == 30
    for pkt in packets:
        assert bytes(pkt) == pkt.original
    for want in expected:
        pkt = packets[int(want["no"]) - 1]
        ip = pkt[IP]
        assert (ip.tos, ip.ttl, ip.id, ip.len) == (
            int(want["tos"], 16),
            int(want["ttl"]),
            int(want["id"]),
            int(want["len"]),
        )
        assert (ip.src, ip.dst) == (want["src"], want["dst"])
        gre = ip.payload
        assert type(gre) is GRE and NVGRE not in pkt  # keyed, but not TEB: not NVGRE
        assert gre.key_present == 1 and gre.key == int(want["key"], 16)
        assert len(gre) == int(want["glen"]) == ip.len - 20
        if want["what"].startswith("gre-proto-"):
            assert gre.proto == int(want["what"][len("gre-proto-") :], 16)


def _records(path: Path) -> List[bytes]:
    # These files carry fuzzed link-type words; their records are Ethernet frames.
    return [bytes(p) for p in rdpcap(str(path))]


@pytest.mark.parametrize("name", ["gre-heapoverflow-1", "gre-heapoverflow-2", "l2tp-avp-overflow"])
def test_malformed_captures_dissect_without_exception_and_losslessly(corpus, name, no_debug_dissector):
    for data in _records(corpus / (name + ".pcap")):
        for cls in (Ether, IP):
            if len(data) < 20:
                continue
            pkt = cls(data)
            assert bytes(pkt) == data
        if len(data) >= 14:
            pkt = Ether(data)
            if L2TP in pkt or UDP in pkt and pkt[UDP].dport == 1701:
                # L2TPv2 (tcpdump: "l2tp:[TL]"): Scapy's L2TP, not our L2TPv3.
                assert L2TPv3 not in pkt and L2TPv3UDP not in pkt


def test_l2tp_avp_overflow_is_l2tpv2_as_tcpdump_says(corpus, no_debug_dissector):
    out = (corpus / "l2tp-avp-overflow.out").read_text()
    # "    1  1995-... IP (...)\n    127.0.0.229.12416 > 127.0.128.1.1701:  l2tp:[TL](...)"
    tcpdump_l2tp = {
        int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\s+\S+ \S+ IP [^\n]*\n[^\n]*l2tp:\[TL\]", out, re.M)
    }
    assert tcpdump_l2tp
    ours = set()
    for number, data in enumerate(_records(corpus / "l2tp-avp-overflow.pcap"), 1):
        if len(data) < 14:
            continue
        pkt = Ether(data)
        if UDP in pkt and isinstance(pkt[UDP].payload, L2TP):
            l2tp = pkt[L2TP]
            assert l2tp.version == 2 and l2tp.hdr.control and l2tp.hdr.length  # [TL]
            ours.add(number)
    assert ours == tcpdump_l2tp


@pytest.mark.parametrize("name", ["geneve", "vxlan", "vxlan_port_8472", "nsh-over-vxlan-gpe"])
def test_params_rebuild_every_captured_packet_byte_for_byte(corpus, name, request):
    """decapsulate + encapsulate(**info.params()) gives back tcpdump's capture exactly:
    TTL, IP ID, DSCP/ECN, DF, ports, UDP checksum (zero or computed), options, flags."""
    if name.startswith("nsh"):
        if SCAPY_NSH_READS_MD2:
            pytest.importorskip("scapy.contrib.nsh")  # the inner frame as NSH
        else:
            request.getfixturevalue("no_debug_dissector")  # NSH's bytes Raw, if it is loaded
    from scapy_geneve import decapsulate, encapsulate

    packets = rdpcap(str(corpus / (name + ".pcap")))
    for number, pkt in enumerate(packets, 1):
        inner, info = decapsulate(pkt)
        again = encapsulate(inner, info.kind, **info.params())
        assert bytes(again) == bytes(pkt[IP]), "%s packet %d" % (name, number)


@pytest.mark.parametrize("name", ["bigtcp-ipv4-geneve-ipv4", "bigtcp-ipv6-vxlan-ipv6"])
def test_big_tcp_captures_re_encapsulate_without_a_struct_error(corpus, name):
    # The records are cut at 65535 bytes (the frames were 80 KB): what was captured
    # re-encapsulates; an inner frame over the 16-bit lengths is a BuildError (test_tunnel).
    from scapy_geneve import decapsulate, encapsulate

    (pkt,) = rdpcap(str(corpus / (name + ".pcap")))
    inner, info = decapsulate(pkt)
    assert len(bytes(encapsulate(inner, info.kind, **info.params()))) == len(pkt) - 14
