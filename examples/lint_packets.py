#!/usr/bin/env python3
"""Lint packets against RFC 8926 / RFC 7348: which MUST each one breaks, and where.

``lint()`` judges the wire bytes: a Scapy packet is linted as ``bytes(pkt)``,
and bytes (a captured frame) are linted as they are.
"""

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from scapy_geneve import Geneve, GeneveOption, lint

MACS = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
inner = Ether(**MACS) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2)
outer = Ether(**MACS) / IP(src="192.0.2.1", dst="192.0.2.2", flags="DF") / UDP(sport=50123, dport=6081)
critical = GeneveOption(classid=0xFFFF, type=0x80, data=b"\x12\x34\xab\xcd")

packets = {
    "valid": outer / Geneve(vni=42, options=[critical]) / inner,
    "C bit left clear": outer / Geneve(vni=42, critical=0, options=[critical]) / inner,
    "version 1, reserved bits": outer / Geneve(version=1, reserved=0x3F, vni=42) / inner,
    "Opt Len says 1 word": outer / Geneve(vni=42, optionlen=1, options=[critical]) / inner,
}
for name, pkt in packets.items():
    findings = lint(bytes(pkt))  # lint what is on the wire
    print("%-26s %s" % (name, "no findings" if not findings else ""))
    for f in findings:
        print("    %s %-6s %-18s @%-3d %s: %s" % (f.rule, f.level, f.field, f.offset, f.section, f.message))

# A receiver that understands only OVN's class sees the experimental critical option as unknown:
print("\nreceiver understands 0x0102 only:")
for f in lint(packets["valid"], understood=[0x0102]):
    print("   ", f)
