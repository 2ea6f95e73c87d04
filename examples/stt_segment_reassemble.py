#!/usr/bin/env python3
"""STT: one 4 KB inner frame, its TCP-like segments, and reassembly with a lost segment."""

import random

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from scapy_geneve import STT
from scapy_geneve.offload.stt import stt_reassemble, stt_segment

inner = (
    Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / TCP(sport=40000, dport=80, flags="PA")
    / Raw(b"x" * 4000)
)

segs = stt_segment(inner, context_id=0x0102030405060708, identifier=0xC0FFEE, mtu=1500)
for s in segs:
    print(
        "seq = %5d << 16 | %5d   ack (frame id) = %#x   %s"
        % (s[TCP].seq >> 16, s[TCP].seq & 0xFFFF, s[TCP].ack, s[TCP].payload.summary())
    )

shuffled = segs + [segs[1]]  # out of order, one duplicate
random.Random(1).shuffle(shuffled)
done = stt_reassemble(shuffled)
frame = done.frames[0].stt
print(
    "reassembled:",
    frame[STT].mysummary(),
    "inner",
    len(frame[Ether]),
    "bytes",
    "| same as sent:",
    bytes(frame[Ether]) == bytes(inner),
    "| dropped:",
    done.dropped,
)

done = stt_reassemble(segs[:1] + segs[2:])  # segment 1 lost: reported, never invented
print("incomplete:", done.incomplete[0].missing, "frames:", done.frames)
