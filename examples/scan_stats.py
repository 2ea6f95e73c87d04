#!/usr/bin/env python3
"""Scan a capture without building Scapy packets: one frame through the wire decoder,
per-packet records, the aggregated stats, and stats merged across files or chunks
(default: the bundled sample capture)."""

import sys
from pathlib import Path

import scapy_geneve
from scapy_geneve import compute_stats, iter_records, scan
from scapy_geneve.capture.decode import decode
from scapy_geneve.capture.scan import ScanStats

path = sys.argv[1] if len(sys.argv) > 1 else str(Path(scapy_geneve.__file__).parent / "data" / "sample.pcap")

# 0. The wire decoder: where every header of one frame is, and its fields.
first = next(iter(iter_records(path)))
dec = decode(first.data, first.linktype, wirelen=first.wirelen)
if dec.ip is not None:
    print(
        "frame 1: outer IPv%d at %d, %s tunnel header at %d (%d bytes, id %s), inner frame "
        "at %d"
        % (dec.ip.version, dec.ip.off, dec.kind, dec.tunnel_off, dec.tunnel_len, dec.vni, dec.inner_off)
    )

# 1. One light record per packet: outer addresses, kind, VNI, options, inner 5-tuple.
for rec in scan(path):
    if rec.number > 5:
        break
    options = ", ".join(
        "0x%04x/0x%02x%s" % (o.classid, o.type, "(C)" if o.critical else "") for o in rec.options
    )
    print(
        "#%d %s > %s  %s vni=%s [%s]  inner=%s%s"
        % (
            rec.number,
            rec.outer_src,
            rec.outer_dst,
            rec.kind,
            rec.vni,
            options,
            rec.inner_5tuple,
            "  MALFORMED: " + rec.reason if rec.malformed else "",
        )
    )

# 2. The whole file, vectorised: what `scapy-geneve stats --json` prints.
stats = compute_stats(path).to_dict()
print(
    "packets:",
    stats["packets"],
    "per encapsulation:",
    {kind: v["packets"] for kind, v in stats["encapsulations"].items()},
)
print("busiest VNIs:", [(v["kind"], v["vni"], v["packets"]) for v in stats["vnis"][:3]])
for o in stats["options"][:3]:  # occurrences, packets carrying it, their wire bytes
    print(
        "option 0x%04x/0x%02x (%s): %d times in %d packets, %d bytes"
        % (o["class"], o["type"], o["class_name"], o["count"], o["packets"], o["bytes"])
    )
print("malformed:", stats["malformed"])

# 3. Stats of several files (or of chunks counted in other processes) merge exactly:
#    merging is associative and commutative.
total = ScanStats()
for part in (compute_stats(path), compute_stats(path)):
    total.merge(part)
print(
    "the file counted twice and merged:",
    total.packets,
    "packets,",
    sum(v[0] for v in total.vnis.values()),
    "with an identifier",
)
