#!/usr/bin/env python3
"""Lint a capture file, as ``scapy-geneve lint`` does, and summarise by rule."""

import os
import sys
import tempfile

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import wrpcap

from scapy_geneve import Geneve, pcapio
from scapy_geneve.conformance.lint import lint, lint_summary

workdir = tempfile.TemporaryDirectory()
path = sys.argv[1] if len(sys.argv) > 1 else None
if path is None:  # no file given: write a small one with a few mistakes in it
    macs = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    inner = Ether(**macs) / IP(src="10.0.0.1", dst="10.0.0.2")
    ip = IP(src="192.0.2.1", dst="192.0.2.2")
    path = os.path.join(workdir.name, "mixed.pcap")
    wrpcap(path, [
        Ether(**macs) / ip / UDP(sport=50123, dport=6081) / Geneve(vni=1) / inner,           # no DF
        Ether(**macs) / ip / UDP(sport=50123, dport=6081, chksum=0x1234) / Geneve(vni=1) / inner,
        Ether(**macs) / ip / UDP(sport=1234, dport=4789, chksum=0) / VXLAN(flags=0x08, vni=7) / inner,
        Ether(**macs) / ip / UDP(sport=50000, dport=4789, chksum=0) / VXLAN(flags=0x0C, vni=7) / inner,
    ])

per_packet = []
for record in pcapio.iter_records(path):
    findings = lint(Ether(record.data))
    per_packet.append(findings)
    for f in findings:
        print("#%d %s" % (record.number, f))
print(lint_summary(per_packet))
workdir.cleanup()
