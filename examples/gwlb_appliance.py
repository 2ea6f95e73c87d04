#!/usr/bin/env python3
"""An AWS Gateway Load Balancer appliance's job in four lines: take the
packet GWLB sends, inspect the inner flow, send it back with the same Geneve
header and options (swap the outer addresses)."""

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from scapy_geneve import (
    Geneve,
    GeneveOptionGWLBAttachmentID,
    GeneveOptionGWLBEndpointID,
    GeneveOptionGWLBFlowCookie,
)

from_gwlb = Ether(
    bytes(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.1.0.10", dst="10.1.0.20")
        / UDP(sport=55555)
        / Geneve(
            vni=0,
            options=[
                GeneveOptionGWLBEndpointID(endpoint_id=0x0A1B2C3D4E5F6071),
                GeneveOptionGWLBAttachmentID(attachment_id=0x42),
                GeneveOptionGWLBFlowCookie(flow_cookie=0x5EED),
            ],
        )
        / IP(src="198.51.100.1", dst="203.0.113.5")
        / TCP(dport=443, flags="S")
    )
)

g = from_gwlb[Geneve]
print(
    "flow cookie %#x from endpoint %#x: %s"
    % (
        g[GeneveOptionGWLBFlowCookie].flow_cookie,
        g[GeneveOptionGWLBEndpointID].endpoint_id,
        g.payload.summary(),
    )
)
for option in g.options:  # each summary carries the option's values
    print("  ", option.mysummary())

reply = from_gwlb.copy()
reply[IP].src, reply[IP].dst = from_gwlb[IP].dst, from_gwlb[IP].src
del reply[IP].chksum, reply[UDP].chksum
assert bytes(reply[Geneve]) == bytes(g)  # the same header and options, byte for byte
print("returned:", Ether(bytes(reply))[Geneve].mysummary())
