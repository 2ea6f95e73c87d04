#!/usr/bin/env python3
"""Segment a Geneve TSO super-packet the way Linux's software GSO does, and GRO it back.

A host hands its NIC one 9000-byte TCP segment inside Geneve (two options);
segment() gives the 1500-MTU packets on the wire: every option copied, IDs and
sequence numbers counted up, CWR on the first, PSH on the last, every checksum
computed.  coalesce() merges them again as GRO would.
"""

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from scapy_geneve import Geneve, GeneveOption, GeneveOptionOVN, coalesce, finish_checksums, segment

inner = (
    Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
    / IP(src="10.0.0.1", dst="10.0.0.2", id=100, flags="DF")
    / TCP(sport=40000, dport=443, seq=1, ack=1, flags="PAC")
    / Raw(bytes(range(256)) * 35 + bytes(40))
)  # 9000 bytes
sup = (
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    / IP(src="192.0.2.1", dst="192.0.2.2", id=5000)
    / UDP(sport=49152, dport=6081, chksum=0)  # zero-checksum tunnel
    / Geneve(
        vni=0x1234,
        options=[
            GeneveOptionOVN(ingress_port=1, egress_port=2),
            GeneveOption(classid=0xFFFF, type=0x05, data=b"abcd"),
        ],
    )
    / inner
)

segs = segment(sup, mtu=1500)  # MSS = 1500 - (20+8+8+16+14+20+20) = 1394
print("%d segments of %s bytes" % (len(segs), sorted({len(s) for s in segs})))
print("%-5s %-7s %-7s %-10s %-6s %-7s %s" % ("seg", "o.id", "i.id", "seq", "flags", "udp.ck", "geneve"))
for i, s in enumerate(segs):
    g = s[Geneve]
    geneve = bytes(g)[: len(bytes(g)) - len(bytes(g.payload))]  # header + options: copied as is
    print(
        "%-5d %-7d %-7d %-10d %-6s %#06x  %s"
        % (i, s[IP].id, g[IP].id, g[TCP].seq, g[TCP].flags, s[UDP].chksum, geneve.hex())
    )

# The same super-packet with the outer UDP checksum on: computed per segment.
with_csum = segment(sup, mtu=1500, outer_udp_csum=True)
print("outer UDP checksums with outer_udp_csum=True:", sorted({hex(s[UDP].chksum) for s in with_csum}))

# GRO: the segments merge back into one super-packet (pseudo-header checksums,
# as GRO hands packets to the stack), and finish_checksums() makes it valid.
back = coalesce(segs)
print(
    "coalesce(): %d packet(s), TCP payload %d bytes, flags %s"
    % (len(back), len(back[0][TCP].payload), back[0][TCP].flags)
)
print(
    "same bytes as the finished super-packet:",
    bytes(finish_checksums(back[0])) == bytes(finish_checksums(sup)),
)
