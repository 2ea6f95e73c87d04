#!/usr/bin/env python3
"""One API over five encapsulations: the same frame and identifier through each of them."""

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from scapy_geneve import GeneveOptionOVN, decapsulate, encapsulate

frame = (
    Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / UDP(sport=1000, dport=2000)
    / b"same frame"
)

pkt = encapsulate(frame, "geneve", vni=5001, options=[GeneveOptionOVN(ingress_port=1, egress_port=2)])
for kind in ("vxlan", "nvgre", "stt", "l2tpv3", "geneve"):
    inner, info = decapsulate(pkt)
    pkt = encapsulate(inner, kind, vni=info.vni, underlay="ipv6")
    packets = pkt if isinstance(pkt, list) else [pkt]
    print(
        "%-7s -> %-7s id %d kept, frame kept: %s, %d packet(s) of %s bytes"
        % (info.kind, kind, info.vni, bytes(inner) == bytes(frame), len(packets), [len(p) for p in packets])
    )

# A captured packet rebuilds byte for byte: info.params() carries what its sender chose
# (TTL, IP ID, DSCP/ECN, DF, ports, a zero UDP checksum, reserved bits, options).
captured = bytes(
    IP(src="198.51.100.1", dst="198.51.100.2", ttl=9, id=77, tos=0x28)
    / UDP(sport=50000, dport=6081, chksum=0)
    / encapsulate(frame, "geneve", vni=7)[UDP].payload
)
inner, info = decapsulate(captured)
print(
    "rebuilt from info.params():",
    bytes(encapsulate(inner, "geneve", **info.params())) == captured,
    {k: info.params()[k] for k in ("ttl", "ip_id", "tos", "udp_checksum")},
)
