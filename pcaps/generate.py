#!/usr/bin/env python3
"""Regenerate the project's own Geneve captures in pcaps/ (and the sample
bundled in the package, scapy_geneve/data/sample.pcap).

    python pcaps/generate.py [OUTDIR]

Deterministic: the same code gives the same bytes (fixed timestamps, fixed
ports), so tests/test_pcaps.py can check the committed files are current.
What each file holds is in pcaps/README.md.
"""

import sys
from pathlib import Path
from typing import Dict, List

from scapy.contrib.mpls import MPLS
from scapy.contrib.nsh import NSH
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

from scapy_geneve import (
    Geneve,
    GeneveOption,
    GeneveOptionCiliumDSR4,
    GeneveOptionCiliumDSR6,
    GeneveOptionCPacket,
    GeneveOptionGCPEndpointID,
    GeneveOptionGCPProfileID,
    GeneveOptionGCPVNID,
    GeneveOptionGWLBAttachmentID,
    GeneveOptionGWLBEndpointID,
    GeneveOptionGWLBFlowCookie,
    GeneveOptionINTMD,
    GeneveOptionOVN,
)

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "scapy_geneve" / "data" / "sample.pcap"
T0 = 1_764_000_000  # 2025-11-24T16:00:00Z; every packet is 1 ms after the previous

VM_A = Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
VM_B = Ether(src="02:00:00:00:0a:02", dst="02:00:00:00:0a:01")


def ul4(sport: int = 50123, **udp) -> Packet:
    """IPv4 underlay between two tunnel endpoints (DF set, RFC 8926 §4.4.1)."""
    return (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="192.0.2.1", dst="192.0.2.2", flags="DF", id=0)
        / UDP(sport=sport, dport=6081, **udp)
    )


def ul6(sport: int = 50124, **udp) -> Packet:
    return (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x86DD)
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / UDP(sport=sport, dport=6081, **udp)
    )


def ping(seq: int = 1) -> Packet:
    return VM_A / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(id=0x4242, seq=seq) / Raw(b"scapy-geneve")


def captures() -> Dict[str, List[Packet]]:
    files: Dict[str, List[Packet]] = {}

    files["geneve_basic.pcap"] = [
        ul4() / Geneve(vni=0x123456) / ping(1),
        ul4()
        / Geneve(vni=0x123456)
        / (VM_B / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=0, id=0x4242, seq=1) / Raw(b"scapy-geneve")),
        ul4(sport=50200)
        / Geneve(vni=0x123456)
        / (VM_A / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=22, flags="S")),
    ]

    files["geneve_options.pcap"] = [
        # OVN: logical ingress/egress ports, critical (C set in the header)
        ul4() / Geneve(vni=0x000005, options=[GeneveOptionOVN(ingress_port=1, egress_port=2)]) / ping(),
        # AWS Gateway Load Balancer: all three options, non-critical, IPv4 payload
        ul4()
        / Geneve(
            vni=0,
            options=[
                GeneveOptionGWLBEndpointID(endpoint_id=0x0A1B2C3D4E5F6071),
                GeneveOptionGWLBAttachmentID(attachment_id=0x1122334455667788),
                GeneveOptionGWLBFlowCookie(flow_cookie=0x5EED5EED),
            ],
        )
        / ping()[IP],
        # Google Cloud NSI: VNID (egress), endpoint ID, profile ID; VNI 0
        ul4()
        / Geneve(
            vni=0,
            options=[
                GeneveOptionGCPVNID(vnid=0x800000D, traffic_direction=1),
                GeneveOptionGCPEndpointID(endpoint_id=bytes.fromhex("0800000dc0a864020000000000000000")),
                GeneveOptionGCPProfileID(profile_id=0x1234),
            ],
        )
        / ping()[IP],
        # INT-MD with one hop of metadata
        ul4()
        / Geneve(
            vni=0x000007,
            options=[
                GeneveOptionINTMD(
                    hop_ml=1,
                    remaining_hop_cnt=7,
                    instruction_bitmap=0x8000,
                    metadata=bytes.fromhex("00000001"),
                )
            ],
        )
        / ping(),
        # Cilium DSR service address, IPv4 and IPv6 forms (critical)
        ul4()
        / Geneve(vni=0x000008, options=[GeneveOptionCiliumDSR4(addr="198.51.100.7", port=443)])
        / ping(),
        ul4() / Geneve(vni=0x000008, options=[GeneveOptionCiliumDSR6(addr="2001:db8::7", port=443)]) / ping(),
        # cPacket metadata
        ul4()
        / Geneve(
            vni=0x000009,
            options=[GeneveOptionCPacket(packet_id=1, orig_len=98, timestamp_s=T0, timestamp_ns=5)],
        )
        / ping(),
        # Open vSwitch and Oxide classes as generic options, critical and not
        ul4()
        / Geneve(
            vni=0x001388,
            options=[
                GeneveOption(classid=0x0101, type=0x01, data=bytes.fromhex("0102030405060708")),
                GeneveOption(classid=0x0129, type=0x00),
            ],
        )
        / ping(),
        # Experimental class, a critical option and an unaligned one (padded)
        ul4()
        / Geneve(
            vni=0x001388,
            options=[
                GeneveOption(classid=0xFFFF, type=0x80, data=bytes.fromhex("1234abcd")),
                GeneveOption(classid=0xFF00, type=0x7F, data=b"odd"),
            ],
        )
        / ping(),
        # The largest options area: 252 bytes (Opt Len 63)
        ul4()
        / Geneve(
            vni=0x00000A,
            options=[
                GeneveOption(classid=0xFF01, type=0x01, data=b"\x11" * 124),
                GeneveOption(classid=0xFF01, type=0x02, data=b"\x22" * 120),
            ],
        )
        / ping(),
    ]

    files["geneve_oam.pcap"] = [
        ul4() / Geneve(vni=0x000042, oam=1) / ping(),
    ]

    files["geneve_ipv6_underlay.pcap"] = [
        ul6(chksum=None)
        / Geneve(vni=0xABCDEF, options=[GeneveOptionOVN(ingress_port=3, egress_port=4)])
        / ping(),
        ul6()
        / Geneve(vni=0xABCDEF)
        / (VM_A / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=5353, dport=5353)),
    ]

    files["geneve_payloads.pcap"] = [
        ul4() / Geneve(vni=1) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(),
        ul4() / Geneve(vni=1) / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=2),
        ul4() / Geneve(vni=1) / ARP(psrc="10.0.0.1", pdst="10.0.0.2"),
        ul4() / Geneve(vni=1) / MPLS(label=16, s=1, ttl=64) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(),
        ul4() / Geneve(vni=1) / NSH(mdtype=2, nextproto=3, spi=10, si=255) / ping(),
    ]

    raw_v1 = bytes.fromhex("41006558000001000101010000112233")
    files["geneve_malformed.pcap"] = [
        # version 1: an endpoint must drop it (§3.4)
        ul4() / Raw(raw_v1 + bytes(ping())),
        # an option runs past Opt Len (§3.5: lengths must sum to Opt Len)
        ul4()
        / Geneve(vni=2, optionlen=1, options=[GeneveOption(classid=0x0101, type=1, data=b"abcdefgh")])
        / ping(),
        # C clear although an option is critical (§3.5)
        ul4()
        / Geneve(vni=3, critical=0, options=[GeneveOption(classid=0xFFFF, type=0x80, data=b"\0\0\0\1")])
        / ping(),
        # reserved bits set in the header and in an option (§3.4, §3.5)
        ul4()
        / Geneve(
            vni=4,
            reserved=0x3F,
            reserved2=0xFF,
            options=[GeneveOption(classid=0x0101, type=1, reserved=7, data=b"\0\0\0\1")],
        )
        / ping(),
        # wrong non-zero UDP checksum (§4.3)
        ul4(chksum=0xBEEF) / Geneve(vni=5) / ping(),
        # a truncated base header (5 bytes)
        ul4() / Raw(bytes.fromhex("0000655800")),
        # a truncated option header inside Opt Len
        ul4() / Raw(bytes.fromhex("01001234000006000101ff")),
        # zero UDP checksum over IPv6 (§4.3.1: only where explicitly allowed)
        ul6(chksum=0) / Geneve(vni=6) / ping(),
        # destination port not 6081: plain UDP to a dissector, Geneve to lint
        ul4() / Geneve(vni=7) / ping(),
    ]
    last = files["geneve_malformed.pcap"][-1]
    last[UDP].dport = 6082
    return files


def write(path: Path, packets: List[Packet], start: int) -> int:
    with PcapWriter(str(path), linktype=1, sync=True) as out:
        for n, pkt in enumerate(packets):
            frame = Ether(bytes(pkt))
            frame.time = T0 + (start + n) / 1000
            out.write(frame)
    return start + len(packets)


def main(argv: List[str]) -> int:
    outdir = Path(argv[1]) if len(argv) > 1 else HERE
    sample = Path(argv[2]) if len(argv) > 2 else (SAMPLE if outdir == HERE else outdir / "sample.pcap")
    outdir.mkdir(parents=True, exist_ok=True)
    sample.parent.mkdir(parents=True, exist_ok=True)
    files = captures()
    start = 0
    everything: List[Packet] = []
    for name, packets in files.items():
        write(outdir / name, packets, start)
        everything += packets
        start += len(packets)
        print("%-28s %3d packets" % (name, len(packets)))
    write(sample, everything, 0)
    print("%-28s %3d packets (all of the above)" % (sample.name, len(everything)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
