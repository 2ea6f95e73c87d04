#!/usr/bin/env python3
"""Turn a capture taken before the NIC into the packets on the wire.

tcpdump on a sending host shows GSO super-packets with "incorrect" checksums
(only the pseudo-header sum is there: the NIC finishes it).  This reads
tcpdump's own sample gso-ipv6-geneve-ipv4.pcap if it is around, or builds
such a packet, then shows finish_checksums() and segment().
"""

import os
import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import rdpcap

from scapy_geneve import Geneve, finish_checksums, segment
from scapy_geneve.checksum import csum_add, pseudo_header_sum
from scapy_geneve.offload.segment import parse_offsets

SAMPLE = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "corpus", "tcpdump", "gso-ipv6-geneve-ipv4.pcap"
)


def captured_before_nic() -> Ether:
    if os.path.exists(SAMPLE):
        return rdpcap(SAMPLE)[0]
    pkt = (
        Ether(src="02:00:00:00:00:0b", dst="02:00:00:00:00:0d")
        / IPv6(src="2001:db8::b", dst="2001:db8::d")
        / UDP(sport=22155, dport=6081)
        / Geneve(vni=0x1389)
        / Ether(src="02:00:00:00:01:02", dst="02:00:00:00:01:01")
        / IP(src="192.168.1.2", dst="192.168.1.1", flags="DF")
        / TCP(sport=36991, dport=41507, flags="PA")
        / Raw(b"netperf\0" * 861)
    )
    raw = bytearray(bytes(pkt))
    o = parse_offsets(bytes(raw))
    partial = csum_add(pseudo_header_sum(o.ip.src, o.ip.dst, 6, o.end - o.l4_off))
    struct.pack_into("!H", raw, o.l4_off + 16, partial)  # CHECKSUM_PARTIAL
    return Ether(bytes(raw))


sup = captured_before_nic()
print(
    "captured: %d bytes, inner TCP checksum %#06x (pseudo-header only), outer UDP %#06x"
    % (len(sup), sup[TCP].chksum, sup[UDP].chksum)
)
fixed = finish_checksums(sup)
print("finish_checksums(): inner TCP %#06x, outer UDP %#06x" % (fixed[TCP].chksum, fixed[UDP].chksum))
segs = segment(sup, mtu=1500)
print("segment(mtu=1500): %d packets, TCP payloads %s" % (len(segs), [len(s[TCP].payload) for s in segs]))
print("payload preserved:", b"".join(bytes(s[TCP].payload) for s in segs) == bytes(sup[TCP].payload))
