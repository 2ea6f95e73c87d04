#!/usr/bin/env python3
"""Lint a capture file, as ``scapy-geneve lint`` does (on the bytes, no Scapy
dissection), and summarise by rule."""

import os
import sys
import tempfile

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import wrpcap

from scapy_geneve import Geneve
from scapy_geneve.conformance.lint import LintOptions
from scapy_geneve.conformance.lint_batch import CaptureTotals, lint_capture
from scapy_geneve.conformance.lint_rules import lint_summary

workdir = tempfile.TemporaryDirectory()
path = sys.argv[1] if len(sys.argv) > 1 else None
if path is None:  # no file given: write a small one with a few mistakes in it
    macs = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    inner = Ether(**macs) / IP(src="10.0.0.1", dst="10.0.0.2")
    ip = IP(src="192.0.2.1", dst="192.0.2.2")
    path = os.path.join(workdir.name, "mixed.pcap")
    wrpcap(
        path,
        [
            Ether(**macs) / ip / UDP(sport=50123, dport=6081) / Geneve(vni=1) / inner,  # no DF
            Ether(**macs) / ip / UDP(sport=50123, dport=6081, chksum=0x1234) / Geneve(vni=1) / inner,
            Ether(**macs) / ip / UDP(sport=1234, dport=4789, chksum=0) / VXLAN(flags=0x08, vni=7) / inner,
            Ether(**macs) / ip / UDP(sport=50000, dport=4789, chksum=0) / VXLAN(flags=0x0C, vni=7) / inner,
        ],
    )

totals = CaptureTotals()
flagged = []
for number, report in lint_capture(path, LintOptions(), totals=totals):  # flagged packets only
    flagged.append(report.findings)
    for f in report.findings:
        print("#%d %s" % (number, f))
summary = lint_summary(flagged)
summary["packets"] = totals.packets
print(summary)
workdir.cleanup()
