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
a bogus STT header.  :func:`stt_segment` builds the segments of a frame and
:func:`stt_reassemble` rebuilds frames by the draft's rules (OVS
``reassemble()``): key (outer source, outer destination, identifier);
segments may arrive in any order; empty, out-of-bounds, duplicate and
overlapping segments are dropped and reported; a missing segment is reported,
never invented.
"""

# scapy.contrib.description = STT (draft-davie-stt-08): header, segmentation, reassembly
# scapy.contrib.status = loads

import itertools
import random
import socket
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type, Union

from scapy.config import conf
from scapy.fields import (BitField, ByteField, FlagsField, ShortField, StrField,
                          XLongField, XShortField)
from scapy.packet import Packet, Raw, bind_bottom_up, bind_layers, bind_top_down
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import checksum
from scapy.layers.l2 import Ether

from scapy_geneve.consts import STT_PORT
from scapy_geneve.errors import BuildError

__all__ = ["STT", "STTFragment", "stt_segment", "stt_reassemble",
           "STTFrame", "STTIncomplete", "STTReassembly", "STT_HDR_LEN",
           "STT_FLAGS", "STT_REASSEMBLY_TIMEOUT", "STT_MAX_PENDING"]

STT_HDR_LEN = 18
STT_TCP_HDR_LEN = 20
STT_MAX_FRAME = 0xFFFF            # the frame length is the upper 16 bits of seq
STT_FLAGS = ["csum_verified", "csum_partial", "ipv4", "tcp",
             "reserved4", "reserved5", "reserved6", "reserved7"]


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
    def dispatch_hook(cls, _pkt: Optional[bytes] = None, *args: Any,
                      **kargs: Any) -> Type[Packet]:
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
    Use :func:`stt_reassemble` to rebuild the frame.
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
            self.offset, self.frame_length,
            "0x%08x" % self.identifier if self.identifier is not None else None)


# -- segmentation -------------------------------------------------------------------
_identifiers = itertools.count(random.getrandbits(31))


def _infer_offload(inner: Packet) -> Tuple[int, int]:
    """(flags, l4_offset) for a checksum-partial frame: IPv4/TCP bits and L4 offset."""
    flags = 0x02
    l4_offset = 0
    l3 = inner.getlayer(IP) or inner.getlayer(IPv6)
    if l3 is None:
        raise BuildError("STT", "flags", "csum_partial",
                         "needs an inner IPv4 or IPv6 header")
    if isinstance(l3, IP):
        flags |= 0x04
    l4 = l3.getlayer(TCP) or l3.getlayer(UDP)
    if l4 is None:
        raise BuildError("STT", "flags", "csum_partial", "needs an inner TCP or UDP header")
    if isinstance(l4, TCP):
        flags |= 0x08
    l4_offset = len(bytes(inner)) - len(bytes(l4))
    if l4_offset > 0xFF:
        raise BuildError("STT", "l4_offset", l4_offset, "8 bits")
    return flags, l4_offset


def stt_segment(frame: Union[Packet, bytes], context_id: int = 0, mss: Optional[int] = None,
                *, src: str = "192.0.2.1", dst: str = "192.0.2.2",
                sport: Optional[int] = None, identifier: Optional[int] = None,
                mtu: int = 1500, csum_partial: bool = False, csum_verified: bool = False,
                inner_mss: int = 0, vlan_id: Optional[int] = None, pcp: int = 0,
                ip_id: int = 0, ttl: int = 64, tos: int = 0, df: bool = True,
                dport: int = STT_PORT) -> List[Packet]:
    """The on-wire segments of one STT frame, as outer IP/IPv6 packets.

    FRAME is the inner Ethernet frame (or an ``STT()/Ether()`` packet to
    control every header field).  Each segment is ``IP/TCP/<chunk>`` with
    ``seq = frame_length << 16 | offset``, ``ack = identifier``, flags ACK
    (PSH on the last segment only, as after TSO), window 0xFFFF and a valid
    TCP checksum; the outer IPv4 ID increments per segment, DF set.

    ``mss`` is the number of STT-frame bytes per segment (default: ``mtu``
    minus the outer IP and TCP headers).  ``inner_mss`` goes into the STT
    header's MSS field (GSO for the receiver).  ``csum_partial`` sets the
    checksum-partial flag with the IPv4/TCP bits and the L4 offset read from
    the inner frame.  An IPv6 ``src``/``dst`` gives an IPv6 underlay.
    """
    ipv6 = ":" in src or ":" in dst
    if isinstance(frame, STT):
        stt_pkt = frame
    else:
        inner = frame if isinstance(frame, Packet) else Ether(frame)
        flags, l4_offset = 0, 0
        if csum_partial:
            flags, l4_offset = _infer_offload(inner)
        if csum_verified:
            flags |= 0x01
        if not 0 <= context_id < 1 << 64:
            raise BuildError("STT", "context_id", context_id, "64 bits")
        if not 0 <= inner_mss <= 0xFFFF:
            raise BuildError("STT", "mss", inner_mss, "16 bits")
        if vlan_id is not None and not 0 <= vlan_id < 1 << 12:
            raise BuildError("STT", "vlan_id", vlan_id, "12 bits")
        if not 0 <= pcp < 8:
            raise BuildError("STT", "pcp", pcp, "3 bits")
        stt_pkt = STT(flags=flags, l4_offset=l4_offset, mss=inner_mss,
                      pcp=pcp if vlan_id is not None else 0,
                      v=1 if vlan_id is not None else 0,
                      vlan_id=vlan_id or 0, context_id=context_id) / inner
    data = bytes(stt_pkt)
    if len(data) > STT_MAX_FRAME:
        raise BuildError("STT", "frame length", len(data),
                         "does not fit in 16 bits: the frame length is the upper "
                         "half of the TCP sequence number")
    ip_hlen = 40 if ipv6 else 20
    if mss is None:
        mss = mtu - ip_hlen - STT_TCP_HDR_LEN
    if mss <= 0:
        raise BuildError("STT", "mss", mss, "must be positive")
    if identifier is None:
        identifier = next(_identifiers) & 0xFFFFFFFF
    if not 0 <= identifier < 1 << 32:
        raise BuildError("STT", "identifier", identifier, "32 bits")
    if sport is None:
        # Entropy from the inner headers (the bytes after the STT header).
        sport = 49152 + zlib.crc32(data[STT_HDR_LEN:STT_HDR_LEN + 64]) % 16384
    segments: List[Packet] = []
    for k, off in enumerate(range(0, len(data), mss)):
        chunk = data[off:off + mss]
        last = off + mss >= len(data)
        tcp = TCP(sport=sport, dport=dport, seq=(len(data) << 16) | off, ack=identifier,
                  dataofs=5, flags="PA" if last else "A", window=0xFFFF, urgptr=0)
        if ipv6:
            outer: Packet = IPv6(src=src, dst=dst, hlim=ttl, tc=tos)
        else:
            outer = IP(src=src, dst=dst, id=(ip_id + k) & 0xFFFF, ttl=ttl, tos=tos,
                       flags="DF" if df else 0)
        wire = bytes(outer / tcp / Raw(chunk))
        segments.append(IPv6(wire) if ipv6 else IP(wire))
    return segments


# -- reassembly -----------------------------------------------------------------------
@dataclass
class STTFrame:
    """A reassembled STT frame: ``stt`` is ``STT/Ether/...``."""

    src: str
    dst: str
    identifier: int
    stt: Packet
    segments: int
    ecn_ce: bool = False


@dataclass
class STTIncomplete:
    """A frame some of whose bytes never arrived: ``missing`` [start, end) ranges.

    ``expired`` is True when the frame was given up because no segment of it
    came for ``timeout`` seconds of capture time (OVS: 30 s), or because more
    than ``max_pending`` frames were waiting (the oldest goes first, as OVS's
    LRU eviction); False when the input simply ended.
    """

    src: str
    dst: str
    identifier: int
    total_length: int
    received: int
    missing: List[Tuple[int, int]] = field(default_factory=list)
    expired: bool = False


@dataclass
class STTReassembly:
    """What :func:`stt_reassemble` found: frames, incomplete frames, dropped segments.

    ``dropped`` lists ``(index, reason)`` with the 0-based index of the segment
    in the input.
    """

    frames: List[STTFrame] = field(default_factory=list)
    incomplete: List[STTIncomplete] = field(default_factory=list)
    dropped: List[Tuple[int, str]] = field(default_factory=list)


@dataclass
class _Pending:
    total: int
    chunks: Dict[int, bytes] = field(default_factory=dict)
    received: int = 0
    count: int = 0
    ce: bool = False
    last: float = 0.0                # capture time of the latest segment


STT_REASSEMBLY_TIMEOUT = 30.0     # seconds, as OVS (STT_FRAG_EXPIRE)
STT_MAX_PENDING = 65536           # frames waiting for segments at once


def outer_l3(pkt: Packet) -> Optional[Packet]:
    """The outermost IP or IPv6 layer of PKT (not an inner one)."""
    layer = pkt
    while layer is not None and layer.__class__.__name__ != "NoPayload":
        if isinstance(layer, (IP, IPv6)):
            return layer
        layer = layer.payload
    return None


def _segment_parts(pkt: Packet, port: int) -> Tuple[Optional[Packet], Optional[bytes], str]:
    """(outer L3, TCP header+data bytes, reason) for one captured packet."""
    l3 = outer_l3(pkt)
    if l3 is None:
        return None, None, "no outer IP header"
    if isinstance(l3, IP) and (l3.len is None or l3.ihl is None):
        l3 = IP(bytes(l3))           # a packet built here, not yet on the wire
    elif isinstance(l3, IPv6) and l3.plen is None:
        l3 = IPv6(bytes(l3))
    if isinstance(l3, IP):
        if l3.proto != 6:
            return None, None, "not TCP"
        if l3.frag or l3.flags.MF:
            return None, None, "IP fragment (defragment first)"
        body = bytes(l3.payload)[:max(0, int(l3.len) - int(l3.ihl) * 4)]
    else:
        if l3.nh != 6:
            return None, None, "not TCP (IPv6 extension headers are not supported)"
        body = bytes(l3.payload)[:int(l3.plen)]
    if len(body) < STT_TCP_HDR_LEN:
        return None, None, "truncated TCP header"
    if int.from_bytes(body[2:4], "big") != port:
        return None, None, "not STT (destination port %d)" % int.from_bytes(body[2:4], "big")
    return l3, body, ""


def stt_reassemble(segments: Iterable[Packet], *, verify_checksum: bool = True,
                   port: int = STT_PORT, timeout: Optional[float] = STT_REASSEMBLY_TIMEOUT,
                   max_pending: int = STT_MAX_PENDING) -> STTReassembly:
    """Rebuild STT frames from captured segments (any order), by the draft's rules.

    Key: (outer source, outer destination, identifier = TCP ack).  A segment
    is dropped, with its reason, when it is not STT, its TCP checksum is wrong
    (``verify_checksum``), it is empty, it runs past the frame length
    (``offset + length > frame length``), its frame length disagrees with
    earlier segments of the frame, or it duplicates or overlaps bytes already
    received.  A frame is complete when its received bytes equal its length;
    frames still missing bytes at the end are reported in ``incomplete`` with
    the missing byte ranges.

    Bounds, as OVS keeps them: a frame with no new segment for ``timeout``
    seconds of capture time (``pkt.time``; None: never) is given up, and at
    most ``max_pending`` frames wait at once (the least recently fed is given
    up first); both are reported in ``incomplete`` with ``expired=True``.
    A segment equal to one of a frame already rebuilt (same key, length,
    offset and bytes, within the timeout) is a duplicate; anything else under
    that key starts a new frame (identifiers are only unique for a while).
    """
    if max_pending < 1:
        raise BuildError("STT", "max_pending", max_pending, "must be at least 1")
    result = STTReassembly()
    pending: Dict[Tuple[str, str, int], _Pending] = {}     # least recently fed first
    # Completed frames: key -> (length, {offset: crc32 of the chunk}, capture time).
    done: Dict[Tuple[str, str, int], Tuple[int, Dict[int, int], float]] = {}

    def give_up(key: Tuple[str, str, int]) -> None:
        state = pending.pop(key)
        result.incomplete.append(STTIncomplete(key[0], key[1], key[2], state.total,
                                               state.received, _holes(state), True))

    for index, pkt in enumerate(segments):
        l3, body, why = _segment_parts(pkt, port)
        if l3 is None or body is None:
            result.dropped.append((index, why))
            continue
        if verify_checksum:
            if _tcp_checksum(l3, body) != 0:
                result.dropped.append((index, "bad TCP checksum"))
                continue
        dataofs = (body[12] >> 4) * 4
        if dataofs < STT_TCP_HDR_LEN or dataofs > len(body):
            result.dropped.append((index, "bad TCP data offset %d" % dataofs))
            continue
        seq = int.from_bytes(body[4:8], "big")
        ident = int.from_bytes(body[8:12], "big")
        data = body[dataofs:]
        total, offset = seq >> 16, seq & 0xFFFF
        if not data:
            result.dropped.append((index, "empty segment"))
            continue
        if offset + len(data) > total:
            result.dropped.append((index, "offset %d + length %d runs past the frame "
                                   "length %d" % (offset, len(data), total)))
            continue
        key = (str(l3.src), str(l3.dst), ident)
        now = float(getattr(pkt, "time", 0.0) or 0.0)
        if timeout is not None:
            # Both tables are oldest first: expire from the front (O(1) a segment).
            while pending and now - pending[next(iter(pending))].last > timeout:
                give_up(next(iter(pending)))
            while done and now - done[next(iter(done))][2] > timeout:
                del done[next(iter(done))]
        finished = done.get(key)
        if finished is not None and key not in pending:
            length, crcs, _ = finished
            if length == total and crcs.get(offset) == zlib.crc32(data):
                result.dropped.append((index, "duplicate segment of an already "
                                       "reassembled frame"))
                continue
            del done[key]                # the identifier is reused: a new frame
        state = pending.pop(key, None)   # re-inserted below: most recently fed last
        if state is None:
            state = _Pending(total)
            while len(pending) >= max_pending:
                give_up(next(iter(pending)))
        pending[key] = state
        state.last = now
        if state.total != total:
            result.dropped.append((index, "frame length %d differs from %d in earlier "
                                   "segments of this frame" % (total, state.total)))
            continue
        end = offset + len(data)
        clash = [(o, c) for o, c in state.chunks.items() if o < end and offset < o + len(c)]
        if clash:
            same = len(clash) == 1 and clash[0] == (offset, data)
            result.dropped.append((index, "duplicate segment" if same else
                                   "overlapping segment (offset %d, length %d)"
                                   % (offset, len(data))))
            continue
        state.chunks[offset] = data
        state.received += len(data)
        state.count += 1
        state.ce = state.ce or _ecn_ce(l3)
        if state.received == state.total:
            frame = b"".join(state.chunks[o] for o in sorted(state.chunks))
            result.frames.append(STTFrame(key[0], key[1], ident, STT(frame),
                                          state.count, state.ce))
            del pending[key]
            done[key] = (total, {o: zlib.crc32(c) for o, c in state.chunks.items()}, now)
    for key, state in pending.items():
        result.incomplete.append(STTIncomplete(key[0], key[1], key[2], state.total,
                                               state.received, _holes(state)))
    return result


def _tcp_checksum(l3: Packet, body: bytes) -> int:
    """Internet checksum of the pseudo-header and BODY: 0 when BODY's checksum is right."""
    if isinstance(l3, IP):
        pseudo = (socket.inet_pton(socket.AF_INET, str(l3.src)) +
                  socket.inet_pton(socket.AF_INET, str(l3.dst)) +
                  struct.pack("!BBH", 0, 6, len(body)))
    else:
        pseudo = (socket.inet_pton(socket.AF_INET6, str(l3.src)) +
                  socket.inet_pton(socket.AF_INET6, str(l3.dst)) +
                  struct.pack("!I3xB", len(body), 6))
    return checksum(pseudo + body)


def _ecn_ce(l3: Packet) -> bool:
    tos = int(l3.tos) if isinstance(l3, IP) else int(l3.tc)
    return tos & 0x03 == 0x03


def _holes(state: _Pending) -> List[Tuple[int, int]]:
    holes = []
    pos = 0
    for off in sorted(state.chunks):
        if off > pos:
            holes.append((pos, off))
        pos = off + len(state.chunks[off])
    if pos < state.total:
        holes.append((pos, state.total))
    return holes


# -- bindings -------------------------------------------------------------------------
# Dissection: the destination port only (the source port is flow entropy).
bind_bottom_up(TCP, STT, dport=STT_PORT)
# Build: TCP()/STT() and TCP()/STTFragment() set the destination port.
bind_top_down(TCP, STT, dport=STT_PORT)
bind_top_down(TCP, STTFragment, dport=STT_PORT)
bind_layers(STT, Ether)
