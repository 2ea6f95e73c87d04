"""STT: Stateless Transport Tunneling (draft-davie-stt-08).

https://datatracker.ietf.org/doc/html/draft-davie-stt-08

An STT *frame* (this 18-byte header, then the inner Ethernet frame without
FCS) of up to 64 KB rides in a TCP-like header on destination port 7471 and
is cut into segments the way TSO cuts TCP.  Every segment carries a normal
20-byte TCP header whose fields mean::

    Sequence Number        = STT frame length << 16 | offset of this segment
    Acknowledgment Number  = frame identifier (the same in every segment)

Only the segment at offset 0 carries the STT frame header::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Version      | Flags         |  L4 Offset    |  Reserved     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |    Max. Segment Size          | PCP |V|     VLAN ID           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                                                               |
    +                     Context ID (64 bits)                      +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Padding                   |    data                       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +

Flags (bit 0 = least significant, as OVS and Wireshark define them):
0x01 checksum verified, 0x02 checksum partial, 0x04 IPv4 (clear: IPv6),
0x08 TCP (clear: UDP), 0xF0 reserved.

Continuation segments (offset != 0) dissect as :class:`STTFragment`, never as
a bogus STT header.  Segmentation (``stt_segment``) and reassembly
(``stt_reassemble``) are helpers in :mod:`scapy_geneve.offload.stt`; this
module holds the header fields, the dissection hooks and the bindings.
"""

# scapy.contrib.description = STT (draft-davie-stt-08): frame header and continuation segments
# scapy.contrib.status = loads

import importlib
import warnings
from typing import Any, Optional, Type

from scapy.config import conf
from scapy.fields import BitField, ByteField, FlagsField, ShortField, StrField, XLongField, XShortField
from scapy.packet import Packet, bind_bottom_up, bind_layers, bind_top_down
from scapy.layers.inet import TCP
from scapy.layers.l2 import Ether

from scapy_geneve.consts import STT_PORT

__all__ = ["STT", "STTFragment", "STT_HDR_LEN", "STT_FLAGS"]

STT_HDR_LEN = 18
STT_TCP_HDR_LEN = 20
STT_MAX_FRAME = 0xFFFF  # the frame length is the upper 16 bits of seq
STT_FLAGS = [
    "csum_verified",
    "csum_partial",
    "ipv4",
    "tcp",
    "reserved4",
    "reserved5",
    "reserved6",
    "reserved7",
]


def _tcp_under(pkt: Optional[Packet]) -> Optional[TCP]:
    return pkt if isinstance(pkt, TCP) else None


class STT(Packet):
    """The STT frame header (first segment only), followed by Ether."""

    name = "STT"
    fields_desc = [
        ByteField("version", 0),
        FlagsField("flags", 0, 8, STT_FLAGS),
        ByteField("l4_offset", 0),
        ByteField("reserved", 0),
        ShortField("mss", 0),
        BitField("pcp", 0, 3),
        BitField("v", 0, 1),
        BitField("vlan_id", 0, 12),
        XLongField("context_id", 0),
        XShortField("padding", 0),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any, **kargs: Any) -> Type[Packet]:
        # The segment offset is in the TCP header below us: a continuation
        # segment carries frame bytes, not a header.
        tcp = _tcp_under(kargs.get("_underlayer"))
        if _pkt is not None and tcp is not None and int(tcp.seq) & 0xFFFF:
            return STTFragment
        if _pkt is not None and len(_pkt) < STT_HDR_LEN:
            return conf.raw_layer
        return cls

    def _frame_cut(self, s: bytes) -> bool:
        """True when the TCP header below says the frame goes on past S."""
        tcp = _tcp_under(self.underlayer)
        return tcp is not None and (int(tcp.seq) >> 16) > STT_HDR_LEN + len(s)

    def do_dissect_payload(self, s: bytes) -> None:
        if s and self._frame_cut(s):
            # First segment of a segmented frame: the inner frame is cut at
            # the segment boundary.  Show what parses; never raise on it.
            try:
                super().do_dissect_payload(s)
            except Exception:
                self.add_payload(conf.raw_layer(s, _internal=1, _underlayer=self))
            return
        super().do_dissect_payload(s)

    def mysummary(self) -> str:
        return self.sprintf("STT (context_id=%STT.context_id%)")


class STTFragment(Packet):
    """A continuation segment: raw bytes of an STT frame at a non-zero offset.

    ``frame_length``, ``offset`` and ``identifier`` read the TCP header below.
    Use :func:`scapy_geneve.offload.stt.stt_reassemble` to rebuild the frame.
    """

    name = "STT fragment"
    fields_desc = [StrField("data", b"")]

    def _tcp(self) -> Optional[TCP]:
        return _tcp_under(self.underlayer)

    @property
    def frame_length(self) -> Optional[int]:
        tcp = self._tcp()
        return None if tcp is None else int(tcp.seq) >> 16

    @property
    def offset(self) -> Optional[int]:
        tcp = self._tcp()
        return None if tcp is None else int(tcp.seq) & 0xFFFF

    @property
    def identifier(self) -> Optional[int]:
        tcp = self._tcp()
        return None if tcp is None else int(tcp.ack)

    def mysummary(self) -> str:
        return "STT fragment (offset=%s of %s, id=%s)" % (
            self.offset,
            self.frame_length,
            "0x%08x" % self.identifier if self.identifier is not None else None,
        )


# -- bindings -------------------------------------------------------------------------
# Dissection: the destination port only (the source port is flow entropy).
bind_bottom_up(TCP, STT, dport=STT_PORT)
# Build: TCP()/STT() and TCP()/STTFragment() set the destination port.
bind_top_down(TCP, STT, dport=STT_PORT)
bind_top_down(TCP, STTFragment, dport=STT_PORT)
bind_layers(STT, Ether)


# -- old import paths (before 0.2), kept for one release ---------------------------------
_MOVED = (
    "stt_segment",
    "stt_reassemble",
    "STTFrame",
    "STTIncomplete",
    "STTReassembly",
    "STT_REASSEMBLY_TIMEOUT",
    "STT_MAX_PENDING",
    "outer_l3",
)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            "scapy_geneve.layers.stt.%s moved to scapy_geneve.offload.stt "
            "(the old path goes in the next release)" % name,
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module("scapy_geneve.offload.stt"), name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
