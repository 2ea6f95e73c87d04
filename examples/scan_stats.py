#!/usr/bin/env python3
"""Scan a capture without building Scapy packets: per-packet records, then the
aggregated stats (default: the bundled sample capture)."""

import sys
from pathlib import Path

import scapy_geneve
from scapy_geneve import compute_stats, scan

path = sys.argv[1] if len(sys.argv) > 1 else str(
    Path(scapy_geneve.__file__).parent / "data" / "sample.pcap")

# 1. One light record per packet: outer addresses, kind, VNI, options, inner 5-tuple.
for rec in scan(path):
    if rec.number > 5:
        break
    options = ", ".join("0x%04x/0x%02x%s" % (o.classid, o.type, "(C)" if o.critical else "")
                        for o in rec.options)
    print("#%d %s > %s  %s vni=%s [%s]  inner=%s%s" % (
        rec.number, rec.outer_src, rec.outer_dst, rec.kind, rec.vni, options,
        rec.inner_5tuple, "  MALFORMED: " + rec.reason if rec.malformed else ""))

# 2. The whole file, vectorised: what `scapy-geneve stats --json` prints.
stats = compute_stats(path).to_dict()
print("packets:", stats["packets"], "per encapsulation:",
      {kind: v["packets"] for kind, v in stats["encapsulations"].items()})
print("busiest VNIs:", [(v["kind"], v["vni"], v["packets"]) for v in stats["vnis"][:3]])
for o in stats["options"][:3]:     # occurrences, packets carrying it, their wire bytes
    print("option 0x%04x/0x%02x (%s): %d times in %d packets, %d bytes" % (
        o["class"], o["type"], o["class_name"], o["count"], o["packets"], o["bytes"]))
print("malformed:", stats["malformed"])
