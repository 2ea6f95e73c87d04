#!/usr/bin/env python3
"""Regenerate the comparison-encapsulation captures in pcaps/ (VXLAN, NVGRE, STT, L2TPv3).

    python pcaps/make_tunnels.py [OUTDIR]

Deterministic: fixed timestamps, addresses, identifiers and ports (source
ports come from the inner-flow hash, itself deterministic), so a test can
check that the committed files are what this script makes today.  Every
packet, malformed ones included, dissects without an exception and rebuilds
to the same bytes.  What each file holds is in pcaps/README.md.
"""

import sys
from pathlib import Path
from typing import Dict, List

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import GRE, Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

from scapy_geneve import (
    NVGRE,
    L2TPv3,
    L2TPv3AVP,
    L2TPv3Control,
    build_vxlan,
    encapsulate,
    stt_segment,
)

HERE = Path(__file__).resolve().parent
T0 = 1_764_100_000  # every packet is 1 ms after the previous one
OUTER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def ping(seq: int = 1, reply: bool = False) -> Packet:
    a, b = ("10.0.0.1", "10.0.0.2") if not reply else ("10.0.0.2", "10.0.0.1")
    ma, mb = ("02:00:00:00:0a:01", "02:00:00:00:0a:02")
    return (
        Ether(src=ma if not reply else mb, dst=mb if not reply else ma)
        / IP(src=a, dst=b)
        / ICMP(type=0 if reply else 8, id=0x4242, seq=seq)
        / Raw(b"scapy-geneve")
    )


def tcp_data(size: int) -> Packet:
    return (
        Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / TCP(sport=40000, dport=80, flags="PA", seq=1000, ack=1)
        / Raw(bytes(i & 0xFF for i in range(size)))
    )


def ip4(**kw) -> Packet:
    return IP(src="192.0.2.1", dst="192.0.2.2", flags="DF", id=0, **kw)


def _l(x) -> List[Packet]:
    return x if isinstance(x, list) else [x]


def _icrq(local_sid: int, cookie: bytes, l2ss: int, mtype: int = 10) -> L2TPv3Control:
    return L2TPv3Control(
        ccid=0x00001234,
        ns=1,
        nr=1,
        avps=[
            L2TPv3AVP(m=1, attr_type=0, value=mtype.to_bytes(2, "big")),  # ICRQ / ICRP
            L2TPv3AVP(m=1, attr_type=63, value=local_sid.to_bytes(4, "big")),  # Local Session ID
            L2TPv3AVP(m=1, attr_type=64, value=(0).to_bytes(4, "big")),  # Remote Session ID
            L2TPv3AVP(attr_type=65, value=cookie),  # Assigned Cookie
            L2TPv3AVP(m=1, attr_type=68, value=(5).to_bytes(2, "big")),  # PW type Ethernet
            L2TPv3AVP(attr_type=69, value=l2ss.to_bytes(2, "big")),  # L2-Specific Sublayer
        ],
    )


def captures() -> Dict[str, List[Packet]]:
    """{file name: packets}, in the order pcaps/README.md describes them."""
    f: Dict[str, List[Packet]] = {}
    E = dict(ether=OUTER)

    f["vxlan.pcap"] = [
        encapsulate(ping(1), "vxlan", vni=42, **E),
        encapsulate(ping(1, reply=True), "vxlan", vni=42, src="192.0.2.2", dst="192.0.2.1", **E),
        encapsulate(ping(2), "vxlan", vni=0xABCDEF, gpid=0x1234, dont_learn=True, policy_applied=True, **E),
        encapsulate(ping(3)[IP], "vxlan", vni=44, **E),  # GPE on 4790
        encapsulate(ping(4), "vxlan", vni=45, underlay="ipv6", **E),
        encapsulate(ping(5), "vxlan", vni=46, dport=8472, **E),  # Linux legacy port
    ]
    f["vxlan_malformed.pcap"] = [
        OUTER
        / ip4()
        / UDP(sport=50000, dport=4789)
        / Raw(bytes.fromhex("00000000 00002a00"))
        / ping(1),  # I flag clear
        OUTER
        / ip4()
        / UDP(sport=50000, dport=4789)
        / Raw(bytes.fromhex("0fabcdef 00002aff"))
        / ping(2),  # reserved bits set
        OUTER / ip4() / UDP(sport=50000, dport=4789) / Raw(bytes.fromhex("0800000000")),
        OUTER
        / ip4()
        / UDP(sport=50000, dport=4789, chksum=0xBEEF)
        / build_vxlan(42)
        / ping(3),  # wrong UDP checksum
    ]
    f["nvgre.pcap"] = [
        encapsulate(ping(1), "nvgre", vsid=0xABCD, flowid=0x5A, **E),
        encapsulate(ping(1, reply=True), "nvgre", vsid=0xABCD, src="192.0.2.2", dst="192.0.2.1", **E),
        encapsulate(ping(2), "nvgre", vsid=0x1000, flowid=0, underlay="ipv6", **E),
        OUTER / ip4(proto=47) / GRE(key_present=1, key=0x28, proto=0x0800) / ping(3)[IP],
    ]
    f["nvgre_malformed.pcap"] = [
        OUTER
        / ip4()
        / NVGRE(vsid=0xABCD)
        / Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
        / Dot1Q(vlan=10)
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / ICMP(),  # inner 802.1Q tag
        OUTER / ip4() / NVGRE(vsid=0xFFFFFF, flowid=1) / ping(4),  # reserved VSID
        OUTER / ip4(proto=47) / Raw(bytes.fromhex("20006558 00ab")),  # key truncated
        OUTER
        / ip4(proto=47)
        / GRE(chksum_present=1, key_present=1, key=0xABCD00, proto=0x6558)
        / ping(5),  # C bit: plain GRE
    ]
    big = stt_segment(
        tcp_data(3000),
        context_id=0x0102030405060708,
        identifier=0xC0FFEE,
        sport=50200,
        src="192.0.2.1",
        dst="192.0.2.2",
        csum_partial=True,
        inner_mss=1448,
    )
    f["stt.pcap"] = [
        OUTER / p
        for p in _l(encapsulate(ping(1), "stt", vni=0x42, identifier=1, vlan_id=100, pcp=5))
        + big
        + _l(encapsulate(ping(2), "stt", vni=0x43, identifier=2, underlay="ipv6"))
    ]
    frame = stt_segment(tcp_data(2000), context_id=7, identifier=0xBAD, mss=800, sport=50300)  # 3 segments
    lost = stt_segment(tcp_data(2000), context_id=8, identifier=0xBAE, mss=800, sport=50301)
    overlap = IP(bytes(frame[1]))
    overlap[TCP].seq -= 100  # 100 bytes earlier: overlaps segment 0
    del overlap[TCP].chksum
    past = IP(bytes(frame[2]))
    past[TCP].seq = (100 << 16) | 90  # frame length 100, offset 90: past the end
    del past[TCP].chksum
    badsum = IP(bytes(stt_segment(ping(3), context_id=9, identifier=0xBAF, sport=50302)[0]))
    badsum[TCP].chksum ^= 0xFFFF
    version1 = IP(bytes(stt_segment(ping(4), context_id=10, identifier=0xBB0, sport=50303)[0]))
    raw = bytearray(bytes(version1))
    raw[40] = 1  # STT version 1
    version1 = IP(bytes(raw))
    del version1[TCP].chksum
    f["stt_malformed.pcap"] = [
        OUTER / p
        for p in [
            frame[2],
            frame[0],
            frame[0],
            overlap,
            frame[1],  # reordered, duplicate, overlap
            lost[0],
            lost[2],  # segment 1 never arrives
            past,
            badsum,
            version1,
        ]
    ]
    f["l2tpv3_ip.pcap"] = [
        encapsulate(
            ping(1), "l2tpv3", session_id=0x1234, cookie=b"\xc0\x01\xc0\x01", sequence=1, register=False, **E
        ),
        encapsulate(
            ping(1, reply=True),
            "l2tpv3",
            session_id=0x4321,
            cookie=b"\x0d\x15\xea\x5e",
            sequence=1,
            src="192.0.2.2",
            dst="192.0.2.1",
            register=False,
            **E,
        ),
        encapsulate(
            ping(2),
            "l2tpv3",
            session_id=0x1234,
            cookie=b"\xc0\x01\xc0\x01",
            sequence=2,
            underlay="ipv6",
            register=False,
            **E,
        ),
    ]
    f["l2tpv3_udp.pcap"] = [
        encapsulate(
            ping(1),
            "l2tpv3",
            session_id=0x1234,
            cookie=b"\xc0\x01\xc0\x01",
            sequence=1,
            transport="udp",
            register=False,
            **E,
        ),
        encapsulate(
            ping(2),
            "l2tpv3",
            session_id=0x1234,
            cookie=b"\xc0\x01\xc0\x01",
            sequence=2,
            transport="udp",
            register=False,
            **E,
        ),
    ]
    # The sender of the ICRQ/ICRP chose the Local Session ID and the cookie it
    # wants to *receive* (RFC 3931): 0x77's data goes to 192.0.2.1, 0x88's to .2.
    f["l2tpv3_control.pcap"] = [
        OUTER / ip4() / L2TPv3(session_id=0) / _icrq(0x77, b"ABCDEFGH", 1),
        OUTER
        / IP(src="192.0.2.2", dst="192.0.2.1", flags="DF", id=0)
        / L2TPv3(session_id=0)
        / _icrq(0x88, b"", 0, mtype=11),
        encapsulate(
            ping(1, reply=True),
            "l2tpv3",
            session_id=0x77,
            cookie=b"ABCDEFGH",
            sequence=0,
            src="192.0.2.2",
            dst="192.0.2.1",
            register=False,
            **E,
        ),
        encapsulate(ping(1), "l2tpv3", session_id=0x88, register=False, **E),
    ]
    f["l2tpv3_malformed.pcap"] = [
        OUTER
        / ip4()
        / UDP(sport=1701, dport=1701)
        / Raw(bytes.fromhex("c803 0014 00001234 0001 0001 8003 0000 0001 00")),  # AVP len 3
        OUTER
        / ip4()
        / L2TPv3(session_id=0)
        / Raw(bytes.fromhex("c803 0400 00001234 0001 0001")),  # Length 1024 > message
        OUTER / ip4(proto=115) / Raw(bytes.fromhex("00001234 c001")),  # cut in the cookie
        OUTER
        / ip4()
        / UDP(sport=1701, dport=1701)
        / Raw(bytes.fromhex("0002 0001 0002 ff03 c021")),  # L2TPv2: Scapy's L2TP
        OUTER / ip4() / UDP(sport=1701, dport=1701) / Raw(bytes.fromhex("c803 00")),
    ]
    return f


def write(outdir: Path) -> List[Path]:
    """Write every capture into OUTDIR; returns the paths."""
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    n = 0
    for name, packets in captures().items():
        path = outdir / name
        with PcapWriter(str(path), linktype=1, sync=True) as out:
            for pkt in packets:
                pkt.time = T0 + n / 1000
                n += 1
                out.write(pkt)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(written)
