#!/usr/bin/env python3
"""Tabulate the VNIs and Geneve options of a capture (default: the bundled sample).

Every packet is read with the wire decoder, as ``scapy-geneve show`` and ``stats``
do (no Scapy packet is built); Scapy dissects only the first packet that carries
options, to show its typed option fields.
"""

import collections
import sys
from pathlib import Path

import scapy_geneve
from scapy_geneve import option_class_name
from scapy_geneve.capture.decode import DecodeState, decode
from scapy_geneve.capture.pcapio import iter_records
from scapy_geneve.capture.summary import Summarizer

path = sys.argv[1] if len(sys.argv) > 1 else str(Path(scapy_geneve.__file__).parent / "data" / "sample.pcap")
vnis: "collections.Counter[int]" = collections.Counter()
options: "collections.Counter[str]" = collections.Counter()
first_with_options = None
summarize, state = Summarizer(), DecodeState()
for record in iter_records(path):
    dec = decode(record.data, record.linktype, state=state, wirelen=record.wirelen)
    if dec.kind != "geneve" or dec.vni is None:
        continue
    vnis[dec.vni] += 1
    for opt in dec.options:
        options[
            "%s / type 0x%02x%s" % (option_class_name(opt.classid), opt.type, " (C)" if opt.critical else "")
        ] += 1
    if dec.options and first_with_options is None:
        first_with_options = record
        print("packet %d: %s" % (record.number, summarize(dec, record.data)))

print("packets per VNI:", dict(sorted(vnis.items())))
for name, count in options.most_common():
    print("%4d  %s" % (count, name))

if first_with_options is not None:  # Scapy for the typed fields of one packet
    from scapy.layers.l2 import Ether

    from scapy_geneve import Geneve

    for opt in Ether(first_with_options.data)[Geneve].options:
        print("packet %d option: %s" % (first_with_options.number, opt.summary()))
