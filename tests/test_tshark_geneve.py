"""Wireshark's Geneve dissector as the oracle: our packets, its fields.

Packets built here are written to a pcap and decoded by tshark; every field
(VNI, protocol type, O/C flags, and each option's class, type, critical bit,
length and data) must agree.  tcpdump's Geneve printer is checked too.
"""

import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.utils import wrpcap

from scapy_geneve import (
    Geneve,
    GeneveOption,
    GeneveOptionGCPProfileID,
    GeneveOptionGCPVNID,
    GeneveOptionGWLBAttachmentID,
    GeneveOptionGWLBEndpointID,
    GeneveOptionGWLBFlowCookie,
    GeneveOptionOVN,
)

pytestmark = pytest.mark.oracle

INNER = (
    Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / ICMP(id=0x4242)
)


def underlay(v6: bool = False):
    l3 = (
        IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(src="192.0.2.1", dst="192.0.2.2", flags="DF")
    )
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / l3 / UDP(sport=50123)


PACKETS = [
    underlay() / Geneve(vni=0x123456) / INNER,
    underlay() / Geneve(vni=1, oam=1) / INNER,
    underlay()
    / Geneve(
        vni=5000,
        options=[
            GeneveOption(classid=0xFFFF, type=0x80, data=bytes.fromhex("1234abcd")),
            GeneveOption(classid=0x0101, type=0x01, data=bytes.fromhex("0102030405060708")),
        ],
    )
    / INNER,
    underlay() / Geneve(vni=7, options=[GeneveOptionOVN(ingress_port=3, egress_port=9)]) / INNER,
    underlay()
    / Geneve(
        vni=8,
        options=[
            GeneveOptionGWLBEndpointID(endpoint_id=0x0123456789ABCDEF),
            GeneveOptionGWLBAttachmentID(attachment_id=42),
            GeneveOptionGWLBFlowCookie(flow_cookie=0xCAFE),
        ],
    )
    / INNER[IP],
    underlay()
    / Geneve(
        vni=0,
        options=[
            GeneveOptionGCPVNID(vnid=0x800000D, traffic_direction=1),
            GeneveOptionGCPProfileID(profile_id=0x1234),
        ],
    )
    / INNER[IP],
    underlay(v6=True) / Geneve(vni=0xABCDEF, options=[GeneveOption(classid=0x0129, type=0x00)]) / INNER,
    underlay()
    / Geneve(vni=9, options=[GeneveOption(classid=0x0132, type=0x7F, reserved=5, data=b"odd")])
    / ARP(),
    underlay()
    / Geneve(
        vni=10, options=[GeneveOption(data=b"x" * 124), GeneveOption(classid=1, type=0x81, data=b"y" * 120)]
    )
    / INNER,
]

FIELDS = [
    "geneve.vni",
    "geneve.proto_type",
    "geneve.flags.oam",
    "geneve.flags.critical",
    "geneve.option.class",
    "geneve.option.type",
    "geneve.option.type.critical",
    "geneve.option.length",
    "geneve.option",
]


def tshark_fields(tshark: str, pcap: Path, fields: List[str]) -> List[Dict[str, List[str]]]:
    cmd = [
        tshark,
        "-r",
        str(pcap),
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
        "-E",
        "separator=/t",
    ]
    for field in fields:
        cmd += ["-e", field]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        cols = line.split("\t")
        rows.append({f: (c.split("|") if c else []) for f, c in zip(fields, cols)})
    return rows


def tshark_bool(value: str) -> int:
    return {"True": 1, "False": 0, "1": 1, "0": 0}[value]


def test_tshark_agrees_field_by_field(tshark, tmp_path):
    pcap = tmp_path / "ours.pcap"
    wrpcap(str(pcap), PACKETS)
    rows = tshark_fields(tshark, pcap, FIELDS)
    assert len(rows) == len(PACKETS)
    for pkt, row in zip(PACKETS, rows):
        g = Ether(bytes(pkt))[Geneve]
        assert int(row["geneve.vni"][0], 0) == g.vni
        assert int(row["geneve.proto_type"][0], 0) == g.proto
        assert tshark_bool(row["geneve.flags.oam"][0]) == g.oam
        assert tshark_bool(row["geneve.flags.critical"][0]) == g.critical
        assert g.critical == any(o.critical for o in g.options)
        # geneve.option.length: first the header Opt Len in bytes, then each
        # option's total length in bytes, header included (REPORT.md §3).
        lengths = [int(x) for x in row["geneve.option.length"]]
        assert lengths[0] == 4 * g.optionlen
        assert lengths[1:] == [4 + 4 * o.length for o in g.options]
        assert [int(x, 0) for x in row["geneve.option.class"]] == [o.classid for o in g.options]
        assert [int(x, 0) for x in row["geneve.option.type"]] == [o.type for o in g.options]
        assert [tshark_bool(x) for x in row["geneve.option.type.critical"]] == [
            int(o.critical) for o in g.options
        ]
        # geneve.option: the whole TLV as Wireshark framed it.
        assert [bytes.fromhex(x.replace(":", "")) for x in row["geneve.option"]] == [
            bytes(o) for o in g.options
        ]


def test_tshark_reads_the_gcp_option_fields(tshark, tmp_path):
    pcap = tmp_path / "gcp.pcap"
    wrpcap(str(pcap), [PACKETS[5]])
    row = tshark_fields(
        tshark, pcap, ["geneve.option.gcp.vnid", "geneve.option.gcp.direction", "geneve.option.gcp.profile"]
    )[0]
    opt = Ether(bytes(PACKETS[5]))[GeneveOptionGCPVNID]
    assert int(row["geneve.option.gcp.vnid"][0], 0) == opt.vnid
    assert tshark_bool(row["geneve.option.gcp.direction"][0]) == opt.traffic_direction
    assert int(row["geneve.option.gcp.profile"][0], 0) == 0x1234


def test_tshark_reaches_the_inner_frame(tshark, tmp_path):
    pcap = tmp_path / "inner.pcap"
    wrpcap(str(pcap), PACKETS)
    rows = tshark_fields(tshark, pcap, ["icmp.ident", "arp.opcode"])
    for pkt, row in zip(PACKETS, rows):
        if ICMP in pkt:
            assert [int(x, 0) for x in row["icmp.ident"]] == [0x4242]
        else:
            assert row["arp.opcode"] == ["1"]


def test_tshark_flags_version_1_as_unknown(tshark, tmp_path):
    pcap = tmp_path / "v1.pcap"
    wrpcap(str(pcap), [underlay() / Geneve(version=1, vni=3) / INNER])
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-T", "fields", "-e", "geneve.version", "-e", "geneve.version.unknown"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\t")
    assert out[0] == "1"


def test_tcpdump_prints_the_same_options(tcpdump, tmp_path):
    pcap = tmp_path / "ours.pcap"
    wrpcap(str(pcap), [PACKETS[2]])
    out = subprocess.run(
        [tcpdump, "-nn", "-vv", "-r", str(pcap)], check=True, capture_output=True, text=True
    ).stdout
    assert "[udp sum ok] Geneve, Flags [C], vni 0x1388, options [" in out
    assert "class Experimental (0xffff) type 0x80(C) len 8 data 1234abcd" in out
    assert "class Open vSwitch (0x101) type 0x1 len 12 data 01020304 05060708" in out
