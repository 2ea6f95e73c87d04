#!/usr/bin/env python3
"""Dissect a capture and tabulate VNIs and options (default: the bundled sample)."""

import collections
import sys
from pathlib import Path

from scapy.utils import PcapReader

import scapy_geneve
from scapy_geneve import Geneve, GeneveOption, option_class_name

path = sys.argv[1] if len(sys.argv) > 1 else str(
    Path(scapy_geneve.__file__).parent / "data" / "sample.pcap")
vnis: "collections.Counter[int]" = collections.Counter()
options: "collections.Counter[str]" = collections.Counter()
with PcapReader(path) as reader:
    for pkt in reader:
        if Geneve not in pkt:
            continue
        vnis[pkt[Geneve].vni] += 1
        for opt in pkt[Geneve].options:
            if isinstance(opt, GeneveOption):
                options["%s / type 0x%02x%s -> %s" % (
                    option_class_name(opt.classid), opt.type, " (C)" if opt.critical else "",
                    type(opt).__name__)] += 1
print("packets per VNI:", dict(sorted(vnis.items())))
for name, count in options.most_common():
    print("%4d  %s" % (count, name))
