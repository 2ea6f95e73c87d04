# SPDX-License-Identifier: GPL-2.0-or-later
# This file is part of scapy-geneve.
"""Typed decoders for the Geneve options met in real captures.

Each class registers itself for its (option class, type) just by being
defined, and is chosen on dissection only when the wire Length matches the
layout (``option_length``, in 4-byte words); an option of a known class and
type but an unexpected length stays a generic :class:`GeneveOption`, so
nothing is lost.  ``pkt[GeneveOption]`` finds typed options too.

Sources: ovn-architecture(7) and ovn controller/physical.h (OVN);
aws-samples/aws-gateway-load-balancer-tunnel-handler (GWLB); Wireshark
packet-geneve.c and the GCP "Understand GENEVE format" page (Google Cloud);
the P4.org INT specification v2.1 §5 (INT); cilium bpf/lib/tunnel.h (Cilium);
Wireshark packet-geneve.c (cPacket).
"""

from scapy.fields import (
    BitEnumField,
    BitField,
    ByteField,
    IntField,
    IP6Field,
    IPField,
    LongField,
    ShortField,
    StrLenField,
    XIntField,
    XLongField,
    XShortField,
)

from scapy_geneve.layers.geneve import GeneveOption, option_header

__all__ = [
    "GeneveOptionOVN",
    "GeneveOptionGWLBEndpointID",
    "GeneveOptionGWLBAttachmentID",
    "GeneveOptionGWLBFlowCookie",
    "GeneveOptionGCPVNID",
    "GeneveOptionGCPEndpointID",
    "GeneveOptionGCPProfileID",
    "GeneveOptionINTMD",
    "GeneveOptionINTMX",
    "GeneveOptionCiliumDSR4",
    "GeneveOptionCiliumDSR6",
    "GeneveOptionCPacket",
    "OVN_CLASS",
    "GWLB_CLASS",
    "GCP_CLASS",
    "INT_CLASS",
    "CILIUM_CLASS",
    "CPACKET_CLASS",
]

OVN_CLASS = 0x0102
GWLB_CLASS = 0x0108
INT_CLASS = 0x0103
GCP_CLASS = 0x0132
CILIUM_CLASS = 0x014B
CPACKET_CLASS = 0x0164


class GeneveOptionOVN(GeneveOption):
    """OVN logical ports (class 0x0102, type 0x80 critical, 4 bytes).

    ::

        |R|  Logical Ingress Port (15)  |  Logical Egress Port (16)     |

    Egress ports >= 32768 are multicast groups (ovn-architecture(7)).
    """

    name = "Geneve Option OVN"
    option_length = 1
    fields_desc = option_header(OVN_CLASS, 0x80) + [
        BitField("ovn_reserved", 0, 1),
        BitField("ingress_port", 0, 15),
        ShortField("egress_port", 0),
    ]


class GeneveOptionGWLBEndpointID(GeneveOption):
    """AWS Gateway Load Balancer endpoint ID (class 0x0108, type 1, 8 bytes).

    The 64-bit VPC endpoint (``vpce-...``) identifier.  GWLB sends all three
    GWLB options, non-critical, in every packet.
    """

    name = "Geneve Option GWLB Endpoint ID"
    option_length = 2
    fields_desc = option_header(GWLB_CLASS, 0x01) + [XLongField("endpoint_id", 0)]


class GeneveOptionGWLBAttachmentID(GeneveOption):
    """AWS Gateway Load Balancer attachment ID (class 0x0108, type 2, 8 bytes)."""

    name = "Geneve Option GWLB Attachment ID"
    option_length = 2
    fields_desc = option_header(GWLB_CLASS, 0x02) + [XLongField("attachment_id", 0)]


class GeneveOptionGWLBFlowCookie(GeneveOption):
    """AWS Gateway Load Balancer flow cookie (class 0x0108, type 3, 4 bytes)."""

    name = "Geneve Option GWLB Flow Cookie"
    option_length = 1
    fields_desc = option_header(GWLB_CLASS, 0x03) + [XIntField("flow_cookie", 0)]


class GeneveOptionGCPVNID(GeneveOption):
    """Google Cloud virtual network ID (class 0x0132, type 1, 4 bytes).

    ::

        |          VNID (28 bits)                               |Rsv|D|

    D is the traffic direction: 1 egress, 0 ingress (Wireshark geneve.option.gcp.*).
    """

    name = "Geneve Option GCP VNID"
    option_length = 1
    fields_desc = option_header(GCP_CLASS, 0x01) + [
        BitField("vnid", 0, 28),
        BitField("gcp_reserved", 0, 3),
        BitEnumField("traffic_direction", 0, 1, {0: "ingress", 1: "egress"}),
    ]


class GeneveOptionGCPEndpointID(GeneveOption):
    """Google Cloud endpoint ID (class 0x0132, type 2): opaque, any length."""

    name = "Geneve Option GCP Endpoint ID"
    fields_desc = option_header(GCP_CLASS, 0x02, length_of="endpoint_id") + [
        StrLenField("endpoint_id", b"", length_from=lambda pkt: (pkt.length or 0) * 4),
    ]


class GeneveOptionGCPProfileID(GeneveOption):
    """Google Cloud profile ID (class 0x0132, type 3, 8 bytes)."""

    name = "Geneve Option GCP Profile ID"
    option_length = 2
    fields_desc = option_header(GCP_CLASS, 0x03) + [LongField("profile_id", 0)]


class GeneveOptionINTMD(GeneveOption):
    """In-band Network Telemetry, INT-MD (class 0x0103, type 1).

    The INT-MD metadata header (INT spec v2.1 §5.7) then the metadata stack::

        |Ver=2 |D|E|M|      Reserved (12)    | Hop ML  |RemainingHopCnt|
        |      Instruction Bitmap       |     Domain Specific ID        |
        |      DS Instruction           |     DS Flags                  |
        |              Metadata stack (Length*4 - 12 bytes) ...         |
    """

    name = "Geneve Option INT-MD"
    fields_desc = option_header(INT_CLASS, 0x01, length_of="metadata", fixed=12) + [
        BitField("int_version", 2, 4),
        BitField("discard", 0, 1),
        BitField("hop_count_exceeded", 0, 1),
        BitField("mtu_exceeded", 0, 1),
        BitField("int_reserved", 0, 12),
        BitField("hop_ml", 0, 5),
        ByteField("remaining_hop_cnt", 0),
        XShortField("instruction_bitmap", 0),
        XShortField("domain_id", 0),
        XShortField("ds_instruction", 0),
        XShortField("ds_flags", 0),
        StrLenField("metadata", b"", length_from=lambda pkt: max((pkt.length or 0) * 4 - 12, 0)),
    ]

    @classmethod
    def fits(cls, words: int) -> bool:
        return words >= 3


class GeneveOptionINTMX(GeneveOption):
    """In-band Network Telemetry, INT-MX (class 0x0103, type 3, 8 bytes).

    The INT-MX header (INT spec v2.1 §5.8): the instructions travel, no
    metadata stack::

        |Ver=2 |D|          Reserved (27)                               |
        |      Instruction Bitmap       |     Domain Specific ID        |
        |      DS Instruction           |     DS Flags                  |
    """

    name = "Geneve Option INT-MX"
    option_length = 3
    fields_desc = option_header(INT_CLASS, 0x03) + [
        BitField("int_version", 2, 4),
        BitField("discard", 0, 1),
        BitField("int_reserved", 0, 27),
        XShortField("instruction_bitmap", 0),
        XShortField("domain_id", 0),
        XShortField("ds_instruction", 0),
        XShortField("ds_flags", 0),
    ]


class GeneveOptionCiliumDSR4(GeneveOption):
    """Cilium DSR service address, IPv4 (class 0x014B, type 0x81, 8 bytes)."""

    name = "Geneve Option Cilium DSR (IPv4)"
    option_length = 2
    fields_desc = option_header(CILIUM_CLASS, 0x81) + [
        IPField("addr", "0.0.0.0"),
        ShortField("port", 0),
        XShortField("pad", 0),
    ]


class GeneveOptionCiliumDSR6(GeneveOption):
    """Cilium DSR service address, IPv6 (class 0x014B, type 0x81, 20 bytes)."""

    name = "Geneve Option Cilium DSR (IPv6)"
    option_length = 5
    fields_desc = option_header(CILIUM_CLASS, 0x81) + [
        IP6Field("addr", "::"),
        ShortField("port", 0),
        XShortField("pad", 0),
    ]


class GeneveOptionCPacket(GeneveOption):
    """cPacket Networks metadata (class 0x0164, type 0, 24 bytes; Wireshark)."""

    name = "Geneve Option cPacket"
    option_length = 6
    fields_desc = option_header(CPACKET_CLASS, 0x00) + [
        XIntField("packet_id", 0),
        ShortField("orig_len", 0),
        ByteField("cpacket_reserved", 0),
        ByteField("cpacket_version", 0),
        BitField("timestamp_s", 0, 48),
        IntField("timestamp_ns", 0),
        ShortField("timestamp_frac_ns", 0),
        ShortField("device_id", 0),
        ShortField("port_id", 0),
    ]
