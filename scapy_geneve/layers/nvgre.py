"""NVGRE: Network Virtualization using GRE (RFC 7637).

https://www.rfc-editor.org/rfc/rfc7637

NVGRE is not a new header: it is a *profile* of GRE (RFC 2784 + RFC 2890)
whose 32-bit Key carries a 24-bit Virtual Subnet ID and an 8-bit FlowID::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |0| |1|0|   Reserved0     | Ver |   Protocol Type 0x6558        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |               Virtual Subnet ID (VSID)        |    FlowID     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

C (checksum) = 0, K (key) = 1, S (sequence) = 0, Ver = 0, so the header is
exactly 8 bytes and starts ``20 00 65 58``.  The FlowID carries entropy for
ECMP; "if a FlowID is not generated, it MUST be set to all zeros".

Binding: IP protocol 47 (and IPv6 next header 47) packets *of that exact
shape* dissect as :class:`NVGRE`; every other GRE packet still dissects as
Scapy's own ``GRE`` (or ``GRE_PPTP``).  No Scapy class is modified: NVGRE is
listed first among IP's protocol-47 candidates and its ``dispatch_hook``
hands anything that is not NVGRE back to ``GRE.dispatch_hook``.
``NVGRE`` is a subclass of ``GRE`` with ``match_subclass``, so
``pkt[GRE]`` and ``GRE in pkt`` keep working on NVGRE packets.
"""

# scapy.contrib.description = NVGRE (RFC 7637) as a GRE profile
# scapy.contrib.status = loads

from typing import Any, Optional, Type

from scapy.fields import BitField, X3BytesField, XByteField, XShortEnumField
from scapy.data import ETHER_TYPES
from scapy.packet import Packet, bind_top_down
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE

from scapy_geneve.compat import has_dissection_cache
from scapy_geneve.consts import ETH_P_TEB, IPPROTO_GRE
from scapy_geneve.errors import BuildError
from scapy_geneve.layers._bind import bind_bottom_up_first

__all__ = ["NVGRE", "NVGRE_SIGNATURE", "is_nvgre"]

#: The first four bytes of every NVGRE header: K bit, version 0, TEB.
NVGRE_SIGNATURE = b"\x20\x00\x65\x58"
NVGRE_HDR_LEN = 8


def is_nvgre(data: bytes) -> bool:
    """True when DATA (a GRE header and what follows) has the NVGRE shape."""
    return len(data) >= NVGRE_HDR_LEN and data[:4] == NVGRE_SIGNATURE


class NVGRE(GRE):
    """The RFC 7637 GRE header: ``vsid`` (24 bits) and ``flowid`` (8 bits).

    The GRE flag fields keep Scapy's names so code written for ``GRE``
    reads the same; they are fixed by RFC 7637 and checked at build time.
    ``key`` is the 32-bit GRE key view (``vsid << 8 | flowid``).
    """

    name = "NVGRE"
    match_subclass = True
    fields_desc = [
        BitField("chksum_present", 0, 1),
        BitField("routing_present", 0, 1),
        BitField("key_present", 1, 1),
        BitField("seqnum_present", 0, 1),
        BitField("strict_route_source", 0, 1),
        BitField("recursion_control", 0, 3),
        BitField("flags", 0, 5),
        BitField("version", 0, 3),
        XShortEnumField("proto", ETH_P_TEB, ETHER_TYPES),
        X3BytesField("vsid", 0),
        XByteField("flowid", 0),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any, **kargs: Any) -> Type[Packet]:
        if _pkt is None or is_nvgre(_pkt):
            return cls
        # Not NVGRE-shaped: exactly what Scapy would have chosen.
        return GRE.dispatch_hook(_pkt, *args, **kargs)

    @property
    def key(self) -> int:
        """The 32-bit GRE Key: VSID in the high 24 bits, FlowID in the low 8."""
        return (int(self.vsid) << 8) | int(self.flowid)

    def self_build(self) -> bytes:
        if not has_dissection_cache(self):
            self._check()
        return super().self_build()

    def _check(self) -> None:
        fixed = (
            ("chksum_present", 0),
            ("routing_present", 0),
            ("key_present", 1),
            ("seqnum_present", 0),
            ("version", 0),
        )
        for fname, want in fixed:
            if self.getfieldval(fname) != want:
                raise BuildError(
                    "NVGRE",
                    fname,
                    self.getfieldval(fname),
                    "must be %d: RFC 7637 fixes C=0, K=1, S=0, Ver=0 "
                    "(use scapy's GRE for other GRE headers)" % want,
                )
        if not 0 <= self.vsid < 1 << 24:
            raise BuildError("NVGRE", "vsid", self.vsid, "24 bits")
        if not 0 <= self.flowid < 1 << 8:
            raise BuildError("NVGRE", "flowid", self.flowid, "8 bits")

    def mysummary(self) -> str:
        return self.sprintf("NVGRE (vsid=%NVGRE.vsid% flowid=%NVGRE.flowid%)")


# -- bindings -------------------------------------------------------------------
# NVGRE is tried before Scapy's generic GRE (see layers/_bind.py); its
# dispatch_hook gives every other GRE packet back to GRE.
# Dissection: IPv4 protocol 47 (unfragmented) and IPv6 next header 47.
bind_bottom_up_first(IP, NVGRE, frag=0, proto=IPPROTO_GRE)
bind_bottom_up_first(IPv6, NVGRE, nh=IPPROTO_GRE)
# Build: IP()/NVGRE() sets the protocol number.
bind_top_down(IP, NVGRE, frag=0, proto=IPPROTO_GRE)
bind_top_down(IPv6, NVGRE, nh=IPPROTO_GRE)
# The payload (Ether for 0x6558) comes from GRE's own bindings, which
# NVGRE inherits as a GRE subclass (Scapy's aliastypes).
