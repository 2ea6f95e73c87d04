#!/usr/bin/env python3
"""Segmenting a 64 KB Geneve super-packet with two options, side by side.

    python bench/bench_segment.py [--repeat N]

Compares, in one run on the same packet:
  A. segment_bytes(): the bytes-level path (headers read once by the wire
     decoder, fields patched per segment, payload sums from one numpy reduceat);
  A'. the same with numpy turned off (one int.from_bytes % 0xFFFF per segment);
  B. building every segment as a Scapy packet (copy the super-packet, set the
     IDs/seq/flags/payload, delete lengths and checksums, bytes()), the way
     scapy.layers.inet.fragment() works;
  C. segment(): what the Python API returns, Scapy packets: A, then the first
     segment dissected once and every other one a copy of it with the fields
     that differ set (IDs, seq, flags, checksums, payload) and the last one
     dissected;
  C'. the same with every segment dissected in full (segment(..., _derive=False));
  D. dissecting A's bytes alone (Ether(bytes) per segment), for scale;
and checks A, A', B, C and C' produce the same bytes.  Prints B/A, B/A', B/C and
C'/C, the payload Gbit/s of each, and the checksum-summing strategies measured on
their own.
"""

import argparse
import array
import os
import sys
import time
from typing import Callable, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

from scapy_geneve import Geneve, GeneveOption, segment  # noqa: E402
from scapy_geneve import checksum  # noqa: E402
from scapy_geneve.checksum import csum_block  # noqa: E402
from scapy_geneve.offload.segment import parse_offsets, segment_bytes  # noqa: E402

PAYLOAD = 64000
MTU = 1500


def super_packet() -> Ether:
    opts = [
        GeneveOption(classid=0x0102, type=0x80, data=b"\x00\x01\x00\x02"),
        GeneveOption(classid=0xFFFF, type=0x01, data=b"ABCDEFGH"),
    ]
    return (
        Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
        / IP(src="10.0.0.1", dst="10.0.0.2", id=3000)
        / UDP(sport=51000, dport=6081, chksum=None)
        / Geneve(vni=0x1234, options=opts)
        / Ether(dst="02:00:00:00:bb:01", src="02:00:00:00:aa:01")
        / IP(src="192.168.1.1", dst="192.168.1.2", id=7, flags="DF")
        / TCP(
            sport=40000,
            dport=5001,
            seq=1000,
            ack=555,
            flags="PA",
            window=502,
            options=[("NOP", None), ("NOP", None), ("Timestamp", (1000, 2000))],
        )
        / Raw(bytes((i * 7 + 3) & 0xFF for i in range(PAYLOAD)))
    )


def scapy_segments(sup: Ether, mss: int) -> List[bytes]:
    """Baseline: every segment built as a Scapy packet."""
    data = bytes(sup[Geneve][TCP].payload)
    chunks = [data[a : a + mss] for a in range(0, len(data), mss)]
    out = []
    for i, chunk in enumerate(chunks):
        q = sup.copy()
        q[IP].id = (sup[IP].id + i) & 0xFFFF
        q[IP].len = q[IP].chksum = None
        q[UDP].len = q[UDP].chksum = None
        inner = q[Geneve][IP]
        inner.id = (sup[Geneve][IP].id + i) & 0xFFFF
        inner.len = inner.chksum = None
        t = q[Geneve][TCP]
        t.seq = (sup[Geneve][TCP].seq + i * mss) & 0xFFFFFFFF
        flags = int(sup[Geneve][TCP].flags)
        if i != len(chunks) - 1:
            flags &= ~0x09
        if i:
            flags &= ~0x80
        t.flags = flags
        t.chksum = None
        t.remove_payload()
        t.add_payload(Raw(chunk))
        out.append(bytes(q))
    return out


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sup = super_packet()
    raw = bytes(sup)
    o = parse_offsets(raw)
    mss = MTU - (o.payload_off - o.first_ip.off)
    a_out = segment_bytes(raw, mtu=MTU)
    b_out = scapy_segments(sup, mss)
    assert a_out == b_out, "bytes path and Scapy baseline disagree"
    n = len(a_out)
    bits = PAYLOAD * 8

    ta = best(lambda: segment_bytes(raw, mtu=MTU), args.repeat * 20)
    checksum.USE_NUMPY = False
    assert segment_bytes(raw, mtu=MTU) == b_out
    ta2 = best(lambda: segment_bytes(raw, mtu=MTU), args.repeat * 20)
    checksum.USE_NUMPY = True
    tb = best(lambda: scapy_segments(sup, mss), args.repeat)
    assert [bytes(p) for p in segment(sup, mtu=MTU)] == b_out
    assert [bytes(p) for p in segment(sup, mtu=MTU, _derive=False)] == b_out
    tc = best(lambda: segment(sup, mtu=MTU), args.repeat)
    tc2 = best(lambda: segment(sup, mtu=MTU, _derive=False), args.repeat)
    td = best(lambda: [Ether(x) for x in a_out], args.repeat)
    cap = Ether(raw)  # a super-packet read from a capture: bytes() is cached
    te = best(lambda: segment(cap, mtu=MTU), args.repeat)
    te2 = best(lambda: segment(cap, mtu=MTU, _derive=False), args.repeat)
    print(
        "super-packet: %d bytes, Geneve with 2 options (%d option bytes), MSS %d -> %d segments"
        % (len(raw), o.inner_l2 - o.tunnel_off - 16, mss, n)
    )
    for label, t in (
        ("A. segment_bytes() (numpy sums)", ta),
        ("A'. segment_bytes() (pure Python sums)", ta2),
        ("B. every segment built as a Scapy packet", tb),
        ("C. segment() (A + copies of one dissection)", tc),
        ("C'. segment() dissecting every segment", tc2),
        ("D. Ether(bytes) of every segment alone", td),
        ("E. C on a dissected (captured) super-packet", te),
        ("E'. C' on a dissected (captured) super-packet", te2),
    ):
        print("%-52s %9.3f ms  %7.2f Gbit/s payload" % (label, t * 1e3, bits / t / 1e9))
    print("ratio B/A  (bytes path vs Scapy build): %.0fx   (target >= 200x)" % (tb / ta))
    print("ratio B/A' (bytes path without numpy vs Scapy build): %.0fx" % (tb / ta2))
    print("ratio B/C (Scapy packets out vs Scapy build): %.1fx" % (tb / tc))
    print(
        "ratio C'/C (copies of one dissection vs dissecting each): %.1fx;  per segment: "
        "C %.0f us, C' %.0f us" % (tc2 / tc, tc / n * 1e6, tc2 / n * 1e6)
    )
    print(
        "ratio E'/E (the same from a captured super-packet, no Scapy build of the input): %.1fx" % (te2 / te)
    )
    t_parse = best(lambda: [parse_offsets(raw) for _ in range(100)], args.repeat * 4) / 100
    print(
        "headers read by the wire decoder (capture.decode -> offsets): %.1f us of A's %.1f us (%.0f%%)"
        % (t_parse * 1e6, ta * 1e6, 100 * t_parse / ta)
    )

    chunk = raw[o.payload_off : o.payload_off + mss]

    def arr() -> int:
        w = array.array("H", chunk[: len(chunk) & ~1])
        if sys.byteorder == "little":
            w.byteswap()
        return sum(w) % 0xFFFF

    t_int = best(lambda: [csum_block(chunk) for _ in range(100)], args.repeat * 4) / 100
    t_arr = best(lambda: [arr() for _ in range(100)], args.repeat * 4) / 100
    print(
        "checksum of one %d-byte segment: int.from_bytes %% 0xFFFF %.2f us, array('H') sum %.2f us (%.1fx)"
        % (len(chunk), t_int * 1e6, t_arr * 1e6, t_arr / t_int)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
