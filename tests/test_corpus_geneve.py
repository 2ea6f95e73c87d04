"""tcpdump's own Geneve capture (OVS hosts, 2015) against tcpdump's decodes.

geneve.pcap is read in place from ../shared/corpus/tcpdump; geneve-vv.out is
what ``tcpdump -vv`` printed for it, geneve-vni.out and geneve-tcp.out are
the packets its ``geneve 0xb`` and ``geneve and tcp`` filters kept.
"""

import re
from typing import Dict, List

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.utils import rdpcap

from scapy_geneve import Geneve

RECORD = re.compile(r"^\s*(\d+)\s+\d{4}-\d\d-\d\d ", re.M)
GENEVE = re.compile(
    r"Geneve, Flags \[(?P<flags>[^\]]*)\], vni (?P<vni>0x[0-9a-f]+)"
    r"(?:, proto (?P<proto>\S+) \((?P<protonum>0x[0-9a-f]+)\))?"
    r"(?:, options \[(?P<options>[^\]]*)\])?"
)
OPTION = re.compile(
    r"class (?P<name>.+?) \((?P<cls>0x[0-9a-f]+)\) type (?P<type>0x[0-9a-f]+)(?P<crit>\(C\))?"
    r" len (?P<len>\d+)(?: data (?P<data>[0-9a-f ]+))?"
)
INNER_IP = re.compile(
    r"IP \(tos \S+, ttl \d+, id (?P<id>\d+), offset \d+, flags \[[^\]]*\], "
    r"proto (?P<proto>\w+) \(\d+\), length (?P<len>\d+)\)"
)


def records(text: str) -> Dict[int, str]:
    starts = list(RECORD.finditer(text))
    out = {}
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        out[int(m.group(1))] = text[m.start() : end]
    return out


@pytest.fixture(scope="module")
def geneve_pcap(corpus):
    return [p for p in rdpcap(str(corpus / "geneve.pcap"))]


def test_every_packet_dissects_losslessly(geneve_pcap):
    for pkt in geneve_pcap:
        assert bytes(pkt.__class__(bytes(pkt))) == bytes(pkt)


def test_geneve_vv_decode_matches(corpus, geneve_pcap):
    expected = records((corpus / "geneve-vv.out").read_text())
    assert len(expected) == len(geneve_pcap) == 39
    for number, pkt in enumerate(geneve_pcap, 1):
        text = expected[number]
        m = GENEVE.search(text)
        assert m, text
        g = pkt[Geneve]
        assert g.vni == int(m["vni"], 16)
        flags = set(m["flags"].split(", ")) - {"none"}
        assert ("C" in flags) == bool(g.critical)
        assert ("O" in flags) == bool(g.oam)
        if m["protonum"]:  # tcpdump names the protocol type only when not TEB
            assert g.proto == int(m["protonum"], 16)
        else:
            assert g.proto == 0x6558
        options: List[re.Match] = list(OPTION.finditer(m["options"] or ""))
        assert len(options) == len(g.options)
        for want, got in zip(options, g.options):
            assert got.classid == int(want["cls"], 16)
            assert got.type == int(want["type"], 16)
            assert bool(want["crit"]) == got.critical
            assert int(want["len"]) == 4 + 4 * got.length  # tcpdump: bytes, header included
            assert bytes.fromhex(want["data"].replace(" ", "")) == got.data
        inner = INNER_IP.search(text[m.end() :])
        ip = g[IP]
        assert ip.id == int(inner["id"]) and ip.len == int(inner["len"])
        assert {"ICMP": ICMP, "TCP": TCP, "UDP": UDP}[inner["proto"]] in ip


def test_class_0_option_is_named_as_iana_has_it(geneve_pcap):
    # tcpdump says "Standard"; IANA's 0x0000-0x00FF is unassigned, IETF Review.
    opt = next(p[Geneve].options[0] for p in geneve_pcap if p[Geneve].options)
    assert "Unassigned (IETF Review)" in opt.sprintf("%GeneveOption.classid%")


def test_vni_filter_selects_the_same_packets(corpus, geneve_pcap):
    expected = records((corpus / "geneve-vni.out").read_text())
    ours = [p for p in geneve_pcap if p[Geneve].vni == 0xB]
    assert len(ours) == len(expected) == 20


def test_inner_tcp_filter_selects_the_same_packets(corpus, geneve_pcap):
    expected = records((corpus / "geneve-tcp.out").read_text())
    ours = [p for p in geneve_pcap if TCP in p[Geneve]]
    assert len(ours) == len(expected)
    for n, pkt in enumerate(ours, 1):
        assert "vni %#x" % pkt[Geneve].vni in expected[n]
        assert (
            "%s.%d > %s.%d"
            % (pkt[Geneve][IP].src, pkt[Geneve][TCP].sport, pkt[Geneve][IP].dst, pkt[Geneve][TCP].dport)
            in expected[n]
        )
