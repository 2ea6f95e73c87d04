# SPDX-License-Identifier: GPL-2.0-or-later
# This file is part of scapy-geneve.
"""BIG TCP and jumbograms in Scapy dissection: a zero length means "the capture's".

Linux BIG TCP (IPv4 since 6.3, IPv6 since 5.19) hands GSO super-packets over
64 KiB to the capture point with a length field that cannot hold their size:

- IPv4 Total Length 0 (tcpdump: "length 80052 [was 0, presumed BIG TCP]");
- IPv6 Payload Length 0, with the RFC 2675 Jumbo Payload option in a
  Hop-by-Hop header or, as the kernel captures them since 6.x, without one
  (tcpdump: "[real length 80122, presumed BIG TCP]", "HBH (jumbo: 80040)");
- a UDP Length of 0 inside them (RFC 2675 §4: a UDP jumbogram's Length is 0),
  as Geneve/VXLAN tunnels carrying BIG TCP have.

Scapy reads those lengths literally: the tunnel becomes ``Padding`` (IPv6) or
loses its last 8 bytes (UDP).  The hooks here read them as tcpdump does, and
leave every other packet to Scapy:

====================  =======================================================
IPv6 ``plen == 0``    the Jumbo Payload Length when the Hop-by-Hop header
                      has the option (RFC 2675 §2: it counts the extension
                      headers, not the IPv6 header), else the rest of the
                      capture.  Not with Next Header 59 (No Next Header),
                      where a zero length is a valid empty packet.
UDP ``len == 0``      the rest of the IP payload, when the datagram is over
                      65535 bytes or the IP header's length is 0 (BIG TCP)
IPv4 ``len == 0``     Scapy already reads the rest of the capture
====================  =======================================================

Every non-zero length is Scapy's, so normal packets (and Ethernet padding
after them) dissect exactly as without scapy-geneve.  The hooks are installed
on Scapy's own ``IPv6`` and ``UDP`` classes by ``import scapy_geneve`` (no
subclass: packets dissected anywhere in the process are read through the
tunnel); :func:`uninstall` removes them.  Dissection is lossless:
``bytes(pkt)`` is the captured frame.
"""

import struct
from typing import Optional, Tuple

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from scapy_geneve.compat import hook_method, hooked, unhook_method

__all__ = ["jumbo_payload_length", "install", "uninstall", "installed"]

IPPROTO_HOPOPTS = 0  # RFC 8200 §4.3
IPPROTO_NONE = 59  # RFC 8200 §4.7: No Next Header
IPV6_TLV_PAD1 = 0x00  # RFC 8200 §4.2
IPV6_TLV_JUMBO = 0xC2  # RFC 2675 §2
_U32 = struct.Struct("!I")

_Split = Optional[Tuple[bytes, bytes]]


def jumbo_payload_length(hbh: bytes) -> Optional[int]:
    """The Jumbo Payload Length in the Hop-by-Hop Options header HBH, or None.

    RFC 2675 §2: option type 0xC2, Opt Data Len 4, a 32-bit length of the
    packet after the IPv6 header (extension headers included).  The options
    are walked as RFC 8200 §4.2 lays them out; a short header gives None.
    """
    if len(hbh) < 2:
        return None
    end = min(len(hbh), 8 + 8 * hbh[1])
    at = 2
    while at < end:
        opt = hbh[at]
        if opt == IPV6_TLV_PAD1:
            at += 1
            continue
        if at + 2 > end:
            return None
        size = hbh[at + 1]
        if opt == IPV6_TLV_JUMBO and size == 4 and at + 6 <= end:
            return int(_U32.unpack_from(hbh, at + 2)[0])
        at += 2 + size
    return None


def _ipv6_split(pkt: Packet, data: bytes) -> _Split:
    """IPv6.extract_padding for Payload Length 0 (jumbogram or BIG TCP)."""
    fields = pkt.fields  # (dissected values: cheaper than attribute lookups)
    if fields.get("plen") != 0 or fields.get("nh") == IPPROTO_NONE:
        return None
    length = jumbo_payload_length(data) if fields.get("nh") == IPPROTO_HOPOPTS else None
    if length is None:
        return data, b""
    return data[:length], data[length:]


def _big_ip_under(pkt: Packet) -> bool:
    """Whether the IP header under PKT (past IPv6 extension headers) has length 0."""
    layer = pkt.underlayer
    while layer is not None:
        if isinstance(layer, IP):
            return layer.len == 0
        if isinstance(layer, IPv6):
            return layer.plen == 0
        layer = layer.underlayer
    return False


def _udp_split(pkt: Packet, data: bytes) -> _Split:
    """UDP.extract_padding for Length 0 in a jumbogram or BIG TCP packet."""
    if pkt.fields.get("len") != 0:
        return None
    if 8 + len(data) > 0xFFFF or _big_ip_under(pkt):
        return data, b""
    return None


def install() -> None:
    """Read zero IPv6/UDP lengths as the capture's (idempotent; see the module doc)."""
    hook_method(IPv6, "extract_padding", _ipv6_split)
    hook_method(UDP, "extract_padding", _udp_split)


def uninstall() -> None:
    """Give Scapy's IPv6 and UDP their own ``extract_padding`` back."""
    unhook_method(IPv6, "extract_padding")
    unhook_method(UDP, "extract_padding")


def installed() -> bool:
    """Whether the hooks are in place."""
    return hooked(IPv6, "extract_padding") and hooked(UDP, "extract_padding")


install()
