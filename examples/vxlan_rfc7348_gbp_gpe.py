#!/usr/bin/env python3
"""VXLAN three ways: RFC 7348 (flags 0x08), Group Based Policy, and GPE on 4790."""

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from scapy_geneve import VXLAN, decapsulate, encapsulate

inner = (
    Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / UDP(sport=1000, dport=2000)
    / b"hello"
)

plain = encapsulate(inner, "vxlan", vni=42)  # Scapy alone would send flags 0x0C (GPE)
print(
    "RFC 7348 :",
    bytes(plain[VXLAN])[:8].hex(" "),
    "| dport",
    plain[UDP].dport,
    "| UDP checksum",
    plain[UDP].chksum,
    "(zero by default on IPv4)",
)

gbp = encapsulate(inner, "vxlan", vni=42, gpid=0x1234, dont_learn=True)
print("GBP      :", bytes(gbp[VXLAN])[:8].hex(" "), "| group policy", hex(gbp[VXLAN].gpid))

gpe = encapsulate(inner[IP], "vxlan", vni=42)  # an IP packet needs GPE: next protocol 1
print("GPE      :", bytes(gpe[VXLAN])[:8].hex(" "), "| dport", gpe[UDP].dport)

# Read them back from bytes, as from a capture:
for pkt in (plain, gbp, gpe):
    inner_back, info = decapsulate(bytes(pkt))
    print(
        info.kind,
        "vni",
        info.vni,
        "gpid",
        info.group_policy_id,
        "next",
        info.next_protocol,
        "->",
        inner_back.summary(),
    )
