"""STT segmentation and reassembly (draft-davie-stt-08), moved out of the layer.

An STT *frame* (the 18-byte STT header, then the inner Ethernet frame) of up
to 64 KB is cut into segments the way TSO cuts TCP; every segment carries a
20-byte TCP-like header whose Sequence Number is ``frame length << 16 |
offset`` and whose Acknowledgment Number is the frame identifier.
:func:`stt_segment` builds the segments of a frame; :func:`stt_reassemble`
rebuilds frames by the draft's rules (OVS ``reassemble()``): key (outer
source, outer destination, identifier); segments may arrive in any order;
empty, out-of-bounds, duplicate and overlapping segments are dropped and
reported; a missing segment is reported, never invented.

The header layers (:class:`~scapy_geneve.layers.stt.STT`,
:class:`~scapy_geneve.layers.stt.STTFragment`) live in
:mod:`scapy_geneve.layers.stt`.
"""

import bisect
import itertools
import random
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

from scapy.packet import Packet, Raw
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from scapy_geneve.checksum import csum_add, csum_block, csum_fold, inet_pton_any, pseudo_header_sum
from scapy_geneve.consts import STT_PORT
from scapy_geneve.errors import BuildError
from scapy_geneve.layers.stt import STT, STT_HDR_LEN, STT_MAX_FRAME, STT_TCP_HDR_LEN

__all__ = [
    "stt_segment",
    "stt_reassemble",
    "STTFrame",
    "STTIncomplete",
    "STTReassembly",
    "STT_REASSEMBLY_TIMEOUT",
    "STT_MAX_PENDING",
    "outer_l3",
]


# -- segmentation -------------------------------------------------------------------
_identifiers = itertools.count(random.getrandbits(31))


def _infer_offload(inner: Packet) -> Tuple[int, int]:
    """(flags, l4_offset) for a checksum-partial frame: IPv4/TCP bits and L4 offset."""
    flags = 0x02
    l4_offset = 0
    l3 = inner.getlayer(IP) or inner.getlayer(IPv6)
    if l3 is None:
        raise BuildError("STT", "flags", "csum_partial", "needs an inner IPv4 or IPv6 header")
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


def stt_segment(
    frame: Union[Packet, bytes],
    context_id: int = 0,
    mss: Optional[int] = None,
    *,
    src: str = "192.0.2.1",
    dst: str = "192.0.2.2",
    sport: Optional[int] = None,
    identifier: Optional[int] = None,
    mtu: int = 1500,
    csum_partial: bool = False,
    csum_verified: bool = False,
    inner_mss: int = 0,
    vlan_id: Optional[int] = None,
    pcp: int = 0,
    ip_id: int = 0,
    ttl: int = 64,
    tos: int = 0,
    df: bool = True,
    dport: int = STT_PORT,
) -> List[Packet]:
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
    if isinstance(frame, STT):
        stt_pkt = frame
    else:
        inner = frame if isinstance(frame, Packet) else Ether(frame)
        stt_pkt = _stt_header(inner, context_id, csum_partial, csum_verified, inner_mss, vlan_id, pcp) / inner
    data = bytes(stt_pkt)
    if len(data) > STT_MAX_FRAME:
        raise BuildError(
            "STT",
            "frame length",
            len(data),
            "does not fit in 16 bits: the frame length is the upper half of the TCP sequence number",
        )
    ipv6 = ":" in src or ":" in dst
    if mss is None:
        mss = mtu - (40 if ipv6 else 20) - STT_TCP_HDR_LEN
    if mss <= 0:
        raise BuildError("STT", "mss", mss, "must be positive")
    if identifier is None:
        identifier = next(_identifiers) & 0xFFFFFFFF
    if not 0 <= identifier < 1 << 32:
        raise BuildError("STT", "identifier", identifier, "32 bits")
    if sport is None:
        # Entropy from the inner headers (the bytes after the STT header).
        sport = 49152 + zlib.crc32(data[STT_HDR_LEN : STT_HDR_LEN + 64]) % 16384

    def outer(k: int) -> Packet:
        if ipv6:
            return IPv6(src=src, dst=dst, hlim=ttl, tc=tos)
        return IP(src=src, dst=dst, id=(ip_id + k) & 0xFFFF, ttl=ttl, tos=tos, flags="DF" if df else 0)

    return _segments(data, mss, outer, sport, dport, identifier)


def _stt_header(
    inner: Packet,
    context_id: int,
    csum_partial: bool,
    csum_verified: bool,
    inner_mss: int,
    vlan_id: Optional[int],
    pcp: int,
) -> Packet:
    """The STT frame header for INNER, every value checked against its width."""
    flags, l4_offset = _infer_offload(inner) if csum_partial else (0, 0)
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
    return STT(
        flags=flags,
        l4_offset=l4_offset,
        mss=inner_mss,
        pcp=pcp if vlan_id is not None else 0,
        v=1 if vlan_id is not None else 0,
        vlan_id=vlan_id or 0,
        context_id=context_id,
    )


def _segments(
    data: bytes, mss: int, outer: Callable[[int], Packet], sport: int, dport: int, identifier: int
) -> List[Packet]:
    """DATA (a whole STT frame) cut into TCP-like segments of MSS bytes under OUTER(k)."""
    segments: List[Packet] = []
    for k, off in enumerate(range(0, len(data), mss)):
        tcp = TCP(
            sport=sport,
            dport=dport,
            seq=(len(data) << 16) | off,
            ack=identifier,
            dataofs=5,
            flags="PA" if off + mss >= len(data) else "A",
            window=0xFFFF,
            urgptr=0,
        )
        head = outer(k)
        wire = bytes(head / tcp / Raw(data[off : off + mss]))
        segments.append(head.__class__(wire))
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
    """A frame being rebuilt: its chunks by offset, and the offsets kept sorted."""

    total: int
    chunks: Dict[int, bytes] = field(default_factory=dict)
    starts: List[int] = field(default_factory=list)  # sorted chunk offsets
    received: int = 0
    count: int = 0
    ce: bool = False
    last: float = 0.0  # capture time of the latest segment

    def clash(self, offset: int, data: bytes) -> Optional[str]:
        """Why [offset, offset+len) cannot be added, or None.

        The chunks never overlap each other, so only the chunk starting at or
        before OFFSET and the one after it can overlap: a binary search, not
        a scan of every chunk (32k one-byte segments: n log n, not n²).
        """
        end = offset + len(data)
        i = bisect.bisect_right(self.starts, offset)
        if i:
            before = self.starts[i - 1]
            if before + len(self.chunks[before]) > offset:
                if before == offset and self.chunks[before] == data:
                    return "duplicate segment"
                return "overlapping segment (offset %d, length %d)" % (offset, len(data))
        if i < len(self.starts) and self.starts[i] < end:
            return "overlapping segment (offset %d, length %d)" % (offset, len(data))
        return None

    def add(self, offset: int, data: bytes, ce: bool) -> None:
        bisect.insort(self.starts, offset)
        self.chunks[offset] = data
        self.received += len(data)
        self.count += 1
        self.ce = self.ce or ce

    def frame(self) -> bytes:
        return b"".join(self.chunks[o] for o in self.starts)

    def holes(self) -> List[Tuple[int, int]]:
        """The missing [start, end) byte ranges."""
        holes = []
        pos = 0
        for off in self.starts:
            if off > pos:
                holes.append((pos, off))
            pos = off + len(self.chunks[off])
        if pos < self.total:
            holes.append((pos, self.total))
        return holes


STT_REASSEMBLY_TIMEOUT = 30.0  # seconds, as OVS (STT_FRAG_EXPIRE)
STT_MAX_PENDING = 65536  # frames waiting for segments at once


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
        l3 = IP(bytes(l3))  # a packet built here, not yet on the wire
    elif isinstance(l3, IPv6) and l3.plen is None:
        l3 = IPv6(bytes(l3))
    if isinstance(l3, IP):
        if l3.proto != 6:
            return None, None, "not TCP"
        if l3.frag or l3.flags.MF:
            return None, None, "IP fragment (defragment first)"
        body = bytes(l3.payload)[: max(0, int(l3.len) - int(l3.ihl) * 4)]
    else:
        if l3.nh != 6:
            return None, None, "not TCP (IPv6 extension headers are not supported)"
        body = bytes(l3.payload)[: int(l3.plen)]
    if len(body) < STT_TCP_HDR_LEN:
        return None, None, "truncated TCP header"
    if int.from_bytes(body[2:4], "big") != port:
        return None, None, "not STT (destination port %d)" % int.from_bytes(body[2:4], "big")
    return l3, body, ""


Key = Tuple[str, str, int]


@dataclass
class _Segment:
    """One captured STT segment, parsed: where it goes in which frame."""

    key: Key
    total: int
    offset: int
    data: bytes
    ce: bool
    time: float


def _parse_segment(pkt: Packet, port: int, verify_checksum: bool) -> Union[_Segment, str]:
    """The segment PKT carries, or why it is dropped."""
    l3, body, why = _segment_parts(pkt, port)
    if l3 is None or body is None:
        return why
    if verify_checksum and _tcp_checksum(l3, body) != 0:
        return "bad TCP checksum"
    dataofs = (body[12] >> 4) * 4
    if dataofs < STT_TCP_HDR_LEN or dataofs > len(body):
        return "bad TCP data offset %d" % dataofs
    seq = int.from_bytes(body[4:8], "big")
    ident = int.from_bytes(body[8:12], "big")
    data = body[dataofs:]
    total, offset = seq >> 16, seq & 0xFFFF
    if not data:
        return "empty segment"
    if offset + len(data) > total:
        return "offset %d + length %d runs past the frame length %d" % (offset, len(data), total)
    return _Segment(
        (str(l3.src), str(l3.dst), ident),
        total,
        offset,
        data,
        _ecn_ce(l3),
        float(getattr(pkt, "time", 0.0) or 0.0),
    )


class _Reassembler:
    """The state of one :func:`stt_reassemble` run (OVS's bounds)."""

    def __init__(self, timeout: Optional[float], max_pending: int) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self.result = STTReassembly()
        self.pending: Dict[Key, _Pending] = {}  # least recently fed first
        # Completed frames: key -> (length, {offset: crc32 of the chunk}, capture time).
        self.done: Dict[Key, Tuple[int, Dict[int, int], float]] = {}

    def give_up(self, key: Key, expired: bool = True) -> None:
        state = self.pending.pop(key)
        self.result.incomplete.append(
            STTIncomplete(key[0], key[1], key[2], state.total, state.received, state.holes(), expired)
        )

    def expire(self, now: float) -> None:
        """Give up frames idle past the timeout (both tables are oldest first: O(1))."""
        if self.timeout is None:
            return
        while self.pending and now - self.pending[next(iter(self.pending))].last > self.timeout:
            self.give_up(next(iter(self.pending)))
        while self.done and now - self.done[next(iter(self.done))][2] > self.timeout:
            del self.done[next(iter(self.done))]

    def replayed(self, seg: _Segment) -> bool:
        """Is SEG a copy of a segment of a frame already rebuilt?"""
        finished = self.done.get(seg.key)
        if finished is None or seg.key in self.pending:
            return False
        length, crcs, _ = finished
        if length == seg.total and crcs.get(seg.offset) == zlib.crc32(seg.data):
            return True
        del self.done[seg.key]  # the identifier is reused: a new frame
        return False

    def state_for(self, seg: _Segment) -> _Pending:
        state = self.pending.pop(seg.key, None)  # re-inserted: most recently fed last
        if state is None:
            state = _Pending(seg.total)
            while len(self.pending) >= self.max_pending:
                self.give_up(next(iter(self.pending)))
        self.pending[seg.key] = state
        state.last = seg.time
        return state

    def feed(self, index: int, seg: _Segment) -> None:
        self.expire(seg.time)
        if self.replayed(seg):
            self.result.dropped.append((index, "duplicate segment of an already reassembled frame"))
            return
        state = self.state_for(seg)
        if state.total != seg.total:
            self.result.dropped.append(
                (
                    index,
                    "frame length %d differs from %d in earlier "
                    "segments of this frame" % (seg.total, state.total),
                )
            )
            return
        why = state.clash(seg.offset, seg.data)
        if why is not None:
            self.result.dropped.append((index, why))
            return
        state.add(seg.offset, seg.data, seg.ce)
        if state.received == state.total:
            key = seg.key
            self.result.frames.append(
                STTFrame(key[0], key[1], key[2], STT(state.frame()), state.count, state.ce)
            )
            del self.pending[key]
            self.done[key] = (state.total, {o: zlib.crc32(c) for o, c in state.chunks.items()}, seg.time)

    def finish(self) -> STTReassembly:
        for key in list(self.pending):
            self.give_up(key, expired=False)
        return self.result


def stt_reassemble(
    segments: Iterable[Packet],
    *,
    verify_checksum: bool = True,
    port: int = STT_PORT,
    timeout: Optional[float] = STT_REASSEMBLY_TIMEOUT,
    max_pending: int = STT_MAX_PENDING,
) -> STTReassembly:
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

    Work: O(log n) per segment for the overlap check (the chunk offsets of a
    frame are kept sorted), so a frame cut into n segments costs n log n.
    """
    if max_pending < 1:
        raise BuildError("STT", "max_pending", max_pending, "must be at least 1")
    run = _Reassembler(timeout, max_pending)
    for index, pkt in enumerate(segments):
        seg = _parse_segment(pkt, port, verify_checksum)
        if isinstance(seg, str):
            run.result.dropped.append((index, seg))
        else:
            run.feed(index, seg)
    return run.finish()


def _tcp_checksum(l3: Packet, body: bytes) -> int:
    """The folded sum of the pseudo-header and BODY: 0 when BODY's checksum is right."""
    total = csum_add(
        pseudo_header_sum(inet_pton_any(str(l3.src)), inet_pton_any(str(l3.dst)), 6, len(body)),
        csum_block(body),
    )
    return csum_fold(total)


def _ecn_ce(l3: Packet) -> bool:
    tos = int(l3.tos) if isinstance(l3, IP) else int(l3.tc)
    return tos & 0x03 == 0x03
