#!/usr/bin/env python3
"""Keep only the packets of the busiest Geneve VNI, byte for byte,
then check the result (default input: the bundled sample capture)."""

import os
import sys
import tempfile
from pathlib import Path

import scapy_geneve
from scapy_geneve import PacketFilter, filter_capture, iter_records, scan

path = sys.argv[1] if len(sys.argv) > 1 else str(Path(scapy_geneve.__file__).parent / "data" / "sample.pcap")

# Pick the busiest Geneve VNI of the file, then select it.
vnis = [rec.vni for rec in scan(path) if rec.kind == "geneve"]
vni = max(set(vnis), key=vnis.count)
wanted = PacketFilter(vni=[vni], kind=["geneve"])

with tempfile.TemporaryDirectory() as tmp:
    out_path = os.path.join(tmp, "vni.pcap")
    with open(out_path, "wb") as out:
        result = filter_capture(path, out, wanted)
    print("VNI %d: %d of %d packets copied to %s" % (vni, result.matched, result.packets, out_path))
    originals = {rec.data for rec in iter_records(path)}
    kept = list(iter_records(out_path))
    assert all(rec.data in originals for rec in kept)  # original bytes
    assert all(r.vni == vni for r in scan(out_path))
    print("every copied packet is byte-identical to its original and has VNI %d" % vni)
    print("same from the shell: scapy-geneve filter %s OUT.pcap --vni %d --kind geneve" % (path, vni))
