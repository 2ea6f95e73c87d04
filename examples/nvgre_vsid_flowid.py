#!/usr/bin/env python3
"""NVGRE (RFC 7637): a GRE profile with a 24-bit VSID and an 8-bit FlowID."""

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE, Ether

from scapy_geneve import NVGRE, BuildError, encapsulate

inner = (
    Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / UDP(sport=1000, dport=2000)
)

pkt = IP(bytes(encapsulate(inner, "nvgre", vsid=0xABCD)))  # FlowID: 8 bits of the flow hash
print(pkt.summary())
print(
    "VSID",
    hex(pkt[NVGRE].vsid),
    "FlowID",
    hex(pkt[NVGRE].flowid),
    "| as a GRE key",
    hex(pkt[GRE].key),
    "| header",
    bytes(pkt[NVGRE])[:8].hex(" "),
)

# Any other GRE (no key, another protocol, C or S bit) stays Scapy's GRE:
other = IP(bytes(IP() / GRE(key_present=1, key=0x28, proto=0x0800) / IP()))
print("keyed GRE carrying IPv4 ->", type(other.payload).__name__)

try:
    encapsulate(inner, "nvgre", vsid=1 << 24)
except BuildError as err:
    print("BuildError:", err)
