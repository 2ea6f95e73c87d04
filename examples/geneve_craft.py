#!/usr/bin/env python3
"""Craft Geneve packets: options, the C bit, the Protocol Type, BuildError."""

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import ls

from scapy_geneve import BuildError, Geneve, GeneveOption, GeneveOptionOVN, flow_sport

inner = Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02") / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP()

# An OVN logical-port option is critical: the header's C bit follows by itself.
pkt = (
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    / IP(src="192.0.2.1", dst="192.0.2.2", flags="DF")
    / UDP(sport=flow_sport(inner))  # RFC 8926 §3.3: entropy from the inner flow
    / Geneve(
        vni=0x1234,
        options=[
            GeneveOptionOVN(ingress_port=1, egress_port=2),
            GeneveOption(classid=0xFFFF, type=0x05, data=b"abc"),
        ],
    )
    / inner
)
wire = Ether(bytes(pkt))
g = wire[Geneve]
print("C bit:", g.critical, "| Opt Len:", g.optionlen, "words | proto:", hex(g.proto))
print("options:", [o.mysummary() for o in g.options])
print("unaligned data was padded:", g.options[1].data)
# ls() lists the fields as for Scapy's own layers, defaults in hex where RFC 8926 uses hex.
ls(GeneveOptionOVN)

# Nothing is masked: what cannot be encoded is refused, naming the field.
try:
    bytes(Geneve(vni=1 << 24))
except BuildError as err:
    print("BuildError:", err)

# A negative test gets exactly what it asks for: C clear, Opt Len a lie.
bad = Geneve(critical=0, optionlen=9, options=[GeneveOption(type=0x80, data=b"\0\0\0\1")])
print("negative test bytes:", bytes(bad).hex())
