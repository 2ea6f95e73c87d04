#!/usr/bin/env python3
"""Build and dissect a Geneve stack: scapy-geneve vs scapy.contrib.geneve.

Same packets, same process, side by side; prints packets/s and the ratio
(ours / contrib: above 1.0 means ours is faster).  Also dpkt, which has no
Geneve, walking the same frames as UDP, for scale.

    python bench/bench_geneve.py [--n 2000] [--repeat 7]
"""

import argparse
import time
from typing import Callable, List

from scapy.contrib.geneve import GENEVE, GeneveOptions as ContribOption
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from scapy_geneve import Geneve, GeneveOption
from scapy_geneve.layers import bigtcp

INNER = (
    Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0a:02")
    / IP(src="10.0.0.1", dst="10.0.0.2")
    / TCP(sport=40000, dport=443, flags="PA")
)
OPTS = [(0x0102, 0x80, b"\x00\x01\x00\x02"), (0x0101, 0x01, b"12345678")]


def ours_build(vni: int) -> bytes:
    return bytes(
        Geneve(vni=vni, options=[GeneveOption(classid=c, type=t, data=d) for c, t, d in OPTS]) / INNER
    )


def contrib_build(vni: int) -> bytes:
    # contrib needs proto and critical by hand (it derives neither)
    return bytes(
        GENEVE(
            vni=vni,
            proto=0x6558,
            critical=1,
            options=[ContribOption(classid=c, type=t, data=d) for c, t, d in OPTS],
        )
        / INNER
    )


def best(fn: Callable[[int], object], n: int, repeat: int) -> float:
    times: List[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        times.append(time.perf_counter() - start)
    return n / min(times)


def side_by_side(
    ours: Callable[[int], object], theirs: Callable[[int], object], n: int, repeat: int
) -> "tuple[float, float]":
    """Best of ``repeat`` interleaved runs each: a shared, noisy machine
    slows both sides alike instead of whichever ran second."""
    a: List[float] = []
    b: List[float] = []
    for _ in range(repeat):
        a.append(best(ours, n, 1))
        b.append(best(theirs, n, 1))
    return max(a), max(b)


def bigtcp_cost(wire: bytes, n: int, repeat: int) -> "tuple[float, float]":
    """Dissection with scapy_geneve.layers.bigtcp's hooks on Scapy's IPv6 and UDP
    (installed by the import) and without them, interleaved."""
    frame = (
        bytes(
            Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
            / IPv6(src="2001:db8::1", dst="2001:db8::2")
            / UDP(sport=50000, dport=6081)
        )
        + wire
    )
    a: List[float] = []
    b: List[float] = []
    for _ in range(repeat):
        a.append(best(lambda i: Ether(frame), n, 1))
        bigtcp.uninstall()
        try:
            b.append(best(lambda i: Ether(frame), n, 1))
        finally:
            bigtcp.install()
    return max(a), max(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    assert ours_build(7) == contrib_build(7), "both must build the same bytes"
    wire = ours_build(7)
    frames = [bytes(Ether() / IP() / UDP(sport=50000, dport=6081, chksum=0)) + wire]

    header = wire[: 8 + 20]  # base header and the two options, no inner frame
    rows = [
        (
            "build Geneve+2 options+Ether/IP/TCP",
            *side_by_side(ours_build, contrib_build, args.n, args.repeat),
        ),
        (
            "dissect Geneve+2 options+Ether/IP/TCP",
            *side_by_side(lambda i: Geneve(wire), lambda i: GENEVE(wire), args.n, args.repeat),
        ),
        (
            "dissect + rebuild the same",
            *side_by_side(lambda i: bytes(Geneve(wire)), lambda i: bytes(GENEVE(wire)), args.n, args.repeat),
        ),
        (
            "build the Geneve header + options only",
            *side_by_side(
                lambda i: bytes(
                    Geneve(vni=i, options=[GeneveOption(classid=c, type=t, data=d) for c, t, d in OPTS])
                ),
                lambda i: bytes(
                    GENEVE(
                        vni=i,
                        proto=0x6558,
                        critical=1,
                        options=[ContribOption(classid=c, type=t, data=d) for c, t, d in OPTS],
                    )
                ),
                args.n,
                args.repeat,
            ),
        ),
        (
            "dissect the Geneve header + options only",
            *side_by_side(lambda i: Geneve(header), lambda i: GENEVE(header), args.n, args.repeat),
        ),
    ]

    print("%-40s %14s %14s %8s" % ("operation", "ours pkt/s", "contrib pkt/s", "ratio"))
    for name, ours, contrib in rows:
        print("%-40s %14.0f %14.0f %7.2fx" % (name, ours, contrib, ours / contrib))
    hooked, bare = bigtcp_cost(wire, args.n, args.repeat)
    print(
        "%-40s %14.0f %14.0f %7.2fx   (with / without the BIG TCP hooks)"
        % ("dissect Ether/IPv6/UDP/Geneve/...", hooked, bare, hooked / bare)
    )
    try:
        import dpkt

        frame = frames[0]
        d_dpkt = best(lambda i: dpkt.ethernet.Ethernet(frame), args.n, args.repeat)
        print("%-40s %14.0f   (dpkt has no Geneve: it stops at UDP)" % ("dpkt Ethernet/IP/UDP parse", d_dpkt))
    except ImportError:
        print("dpkt not installed: pip install dpkt for its column")


if __name__ == "__main__":
    main()
