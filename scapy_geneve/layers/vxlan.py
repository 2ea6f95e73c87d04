"""VXLAN (RFC 7348), VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe) and VXLAN-GBP.

https://www.rfc-editor.org/rfc/rfc7348

This module reuses Scapy's own ``VXLAN`` class (``scapy.layers.vxlan``),
which overlays the three variants with conditional fields.  It adds only a
builder, :func:`build_vxlan`, that sets the flags each variant needs
*explicitly*, because Scapy's default for ``VXLAN()/Ether()`` is the GPE
layout (flags 0x0C, NextProtocol 3), not RFC 7348.

RFC 7348 §5::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |R|R|R|R|I|R|R|R|            Reserved                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                VXLAN Network Identifier (VNI) |   Reserved    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

VXLAN-GPE (UDP 4790)::

    |R|R|Ver|I|P|B|O|       Reserved                |Next Protocol  |
    |                VXLAN Network Identifier (VNI) |   Reserved    |

VXLAN-GBP (draft-smith-vxlan-group-policy; Linux ``gbp``, OVS)::

    |G|R|R|R|I|R|R|R|R|D|R|R|A|R|R|R|        Group Policy ID        |
    |                VXLAN Network Identifier (VNI) |   Reserved    |

Scapy field names: ``flags`` (bit names, LSB first: OAM, R, NextProtocol,
Instance, V1, V2, R, G), ``reserved0``/``NextProtocol`` (GPE),
``reserved1`` (RFC 7348), ``gpflags``/``gpid`` (GBP), ``vni``, ``reserved2``.
Scapy already dissects UDP 4789, 4790, 8472 (Linux legacy) and 48879 (ACI).
"""

# scapy.contrib.description = VXLAN / VXLAN-GPE / VXLAN-GBP builder over Scapy's VXLAN
# scapy.contrib.status = loads

from typing import Optional

from scapy.layers.vxlan import VXLAN

from scapy_geneve.consts import VXLAN_GPE_PORT, VXLAN_PORT
from scapy_geneve.errors import BuildError

__all__ = [
    "VXLAN",
    "build_vxlan",
    "vxlan_port",
    "VXLAN_FLAG_I",
    "VXLAN_FLAG_P",
    "VXLAN_FLAG_B",
    "VXLAN_FLAG_O",
    "VXLAN_FLAG_G",
    "GBP_FLAG_D",
    "GBP_FLAG_A",
    "GPE_NEXT_PROTOCOLS",
]

VXLAN_FLAG_I = 0x08  # RFC 7348: valid VNI; MUST be 1
VXLAN_FLAG_P = 0x04  # GPE: Next Protocol present
VXLAN_FLAG_B = 0x02  # GPE: BUM traffic
VXLAN_FLAG_O = 0x01  # GPE: OAM
VXLAN_FLAG_G = 0x80  # GBP: group policy extension present
GBP_FLAG_D = 0x40  # GBP: Don't Learn
GBP_FLAG_A = 0x08  # GBP: Policy Applied

#: GPE Next Protocol values (draft-ietf-nvo3-vxlan-gpe, tcpdump, Wireshark).
GPE_NEXT_PROTOCOLS = {1: "IPv4", 2: "IPv6", 3: "Ethernet", 4: "NSH"}


def build_vxlan(
    vni: int,
    *,
    gpid: Optional[int] = None,
    dont_learn: bool = False,
    policy_applied: bool = False,
    next_protocol: Optional[int] = None,
    oam: bool = False,
    bum: bool = False,
) -> VXLAN:
    """A VXLAN header with the flags RFC 7348 (or its extension) wants.

    - plain: flags 0x08 (I), all reserved fields zero;
    - ``gpid=``: VXLAN-GBP, flags 0x88 (G|I), ``dont_learn``/``policy_applied``;
    - ``next_protocol=``: VXLAN-GPE, flags I|P (+B/O), for UDP port 4790.

    GBP and GPE reuse the same reserved bits, so asking for both is a
    :class:`BuildError`.  The VNI must fit in 24 bits.
    """
    if not 0 <= vni < 1 << 24:
        raise BuildError("VXLAN", "vni", vni, "24 bits")
    if gpid is not None and next_protocol is not None:
        raise BuildError(
            "VXLAN",
            "gpid",
            gpid,
            "cannot be combined with GPE next_protocol: GBP and GPE reuse the same reserved bits",
        )
    if next_protocol is not None:
        if not 0 <= next_protocol <= 0xFF:
            raise BuildError("VXLAN", "NextProtocol", next_protocol, "8 bits")
        flags = VXLAN_FLAG_I | VXLAN_FLAG_P
        flags |= VXLAN_FLAG_B if bum else 0
        flags |= VXLAN_FLAG_O if oam else 0
        return VXLAN(flags=flags, reserved0=0, NextProtocol=next_protocol, vni=vni, reserved2=0)
    if oam or bum:
        raise BuildError("VXLAN", "flags", "O/B", "exist only in VXLAN-GPE: pass next_protocol=")
    if gpid is not None:
        if not 0 <= gpid <= 0xFFFF:
            raise BuildError("VXLAN", "gpid", gpid, "16 bits")
        gpflags = (GBP_FLAG_D if dont_learn else 0) | (GBP_FLAG_A if policy_applied else 0)
        return VXLAN(flags=VXLAN_FLAG_G | VXLAN_FLAG_I, gpflags=gpflags, gpid=gpid, vni=vni, reserved2=0)
    if dont_learn or policy_applied:
        raise BuildError("VXLAN", "gpflags", "D/A", "exist only in VXLAN-GBP: pass gpid=")
    return VXLAN(flags=VXLAN_FLAG_I, reserved1=0, vni=vni, reserved2=0)


def vxlan_port(header: VXLAN) -> int:
    """The IANA destination port for HEADER: 4790 for GPE, else 4789."""
    return VXLAN_GPE_PORT if int(header.flags) & VXLAN_FLAG_P else VXLAN_PORT
