#!/usr/bin/env python3
"""The comparison, from packets actually built (same as `scapy-geneve compare`)."""

from scapy_geneve import compare

for underlay in ("ipv4", "ipv6"):
    table = compare(inner_size=1400, underlay=underlay, mtu=1500, sizes=[64, 512, 1400, 9000])
    print("underlay %s, MTU %d" % (underlay, table.mtu))
    print(
        "  %-15s %-12s %8s %9s %7s %9s  %s"
        % ("encapsulation", "transport", "overhead", "inner MTU", "id bits", "stateless", "entropy")
    )
    for r in table.rows:
        print(
            "  %-15s %-12s %7dB %9d %7d %9s  %s"
            % (
                r.name,
                r.transport,
                r.overhead,
                r.inner_mtu,
                r.id_bits,
                "yes" if r.stateless else "no",
                ", ".join(r.entropy) or "none",
            )
        )
    stt = next(r for r in table.rows if r.name == "stt")
    print(
        "  a 9000-byte inner packet: STT sends it in %d segments; the others cannot "
        "without IP fragmentation" % dict(stt.segments_at)[9000]
    )
