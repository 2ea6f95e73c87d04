"""GRO: merge wire segments back into super-packets, only where Linux would.

:func:`coalesce` follows the receive side of the kernel (``dev_gro_receive``
-> ``inet_gro_receive`` / ``ipv6_gro_receive`` -> ``udp4_gro_receive`` ->
``geneve_gro_receive`` / ``vxlan_gro_receive`` / ``gre_gro_receive`` ->
``eth_gro_receive`` -> inner IP -> ``tcp_gro_receive`` or
``udp_gro_receive_segment``):

- same flow: identical outer and inner Ethernet headers, IP addresses and
  protocol, UDP/TCP ports, tunnel header byte for byte (Geneve with every
  option: ``memcmp`` of the whole header), both outer UDP checksums zero or
  both non-zero;
- a held packet takes the next one only when: TTL/hop limit, TOS/traffic class
  (IPv6: flow label) and DF match; IPv4 IDs count up by one per segment (or
  stay fixed with DF; an outer header with DF is not checked); TCP ack, window,
  data offset, options and flags other than CWR/FIN/PSH match; the sequence
  number is contiguous; the payload is not longer than the first one (the
  MSS); the new one carries no CWR; the merged packet stays under
  ``max_size`` (gro_max_size, 65536);
- headers must be plain: IPv4 without options (IHL 5), not a fragment; the
  Geneve version is 0 and the O (OAM) bit clear; every checksum is valid;
- a segment shorter than the MSS, or one with URG/PSH/RST/SYN/FIN, is merged
  and then closes its super-packet; a pure ACK is never merged.

A merged packet keeps the first segment's headers (IP IDs, sequence number),
gets the FIN/PSH of later segments, new lengths and IPv4 header checksums, and
the TCP (and a non-zero outer UDP) checksum the way ``tcp4_gro_complete`` /
``udp4_gro_complete`` leave it: the pseudo-header sum (CHECKSUM_PARTIAL).
``checksums="full"`` finishes them instead.  Packets that are not merged come
back unchanged.  Each super-packet takes the place of its first segment.

Bounds, as the kernel's (memory stays bounded on any capture):

- count: at most ``max_flows`` super-packets are held (default 64, the most
  the kernel holds: GRO_HASH_BUCKETS 8 x MAX_GRO_SKBS 8); a new flow beyond
  that flushes the oldest held one, as ``gro_flush_oldest`` does in its
  bucket (the kernel's buckets come from the skb hash, which a capture does
  not carry: here the whole list is one bucket);
- age: a held super-packet is flushed once a packet arrives ``max_age_ns``
  after its first segment (default 20 ms: ``napi_gro_flush(napi, flush_old)``
  at the end of a full NAPI poll flushes what was held before the current
  jiffy, so nothing waits longer than 2 jiffies, 20 ms at HZ=100), or, for
  frames without timestamps, once ``max_age_packets`` later frames arrived
  (default 8192).  Frames behind an open super-packet wait for it (output
  keeps input order), so at most that many frames are held.

NAPI poll boundaries (the kernel flushes every held packet at the end of each
poll that ends its work, at most 64 packets) are modelled only on request
(``flush_every``).  Within the bounds above coalesce() merges at least as much
as the kernel could; ``None`` lifts a bound.

Headers and the fields compared (Geneve version and O bit, GRE flags and key,
IP TOS/TTL/DF/ID/flow label, TCP seq/ack/flags) come from the wire decoder
(:mod:`scapy_geneve.capture.decode`); a frame it cannot read passes through.
"""

import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from scapy_geneve.checksum import csum_add, csum_block, csum_fold, ipv4_header_checksum, pseudo_header_sum
from scapy_geneve.errors import CaptureError
from scapy_geneve.capture.decode import Decoded, L4Header
from scapy_geneve.capture.decode import IPHeader as WireIP
from scapy_geneve.offload.segment import (
    IPHeader,
    Offsets,
    PortTable,
    finish_checksums_bytes,
    parse_offsets,
)

__all__ = [
    "coalesce",
    "coalesce_bytes",
    "coalesce_indexed",
    "coalesce_timed",
    "MAX_FLOWS",
    "MAX_AGE_NS",
    "MAX_AGE_PACKETS",
]

_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_PSH, _TCP_URG, _TCP_CWR = 0x01, 0x02, 0x04, 0x08, 0x20, 0x80
_CLOSE_FLAGS = _TCP_URG | _TCP_PSH | _TCP_RST | _TCP_SYN | _TCP_FIN
_UDP_GRO_CNT_MAX = 64
_DF_FLAG = 0x2  # the DF bit of IPHeader.flags (the 3 flag bits)
MAX_FLOWS = 64  # GRO_HASH_BUCKETS (8) x MAX_GRO_SKBS (8)
MAX_AGE_NS = 20_000_000  # 2 jiffies at HZ=100
MAX_AGE_PACKETS = 8192  # the age bound for frames without timestamps


@dataclass
class _Held:
    key: Tuple[Any, ...]  # the flow
    first: bytes  # the first segment (headers come from it)
    o: Offsets
    view: "_View"
    mss: int
    chunks: List[bytes] = field(default_factory=list)
    count: int = 1
    next_seq: int = 0
    flags: int = 0
    fixedid: Dict[int, bool] = field(default_factory=dict)
    closed: bool = False
    index: int = 0  # the first segment's place in the input
    ts_ns: Optional[int] = None  # and its time

    @property
    def l3_len(self) -> int:
        return self.o.end - self.o.first_ip.off + sum(len(c) for c in self.chunks[1:])


def _ipv4_ok(buf: bytes, ip: IPHeader) -> bool:
    return (
        ip.hlen == 20
        and ipv4_header_checksum(buf[ip.off : ip.off + 20]) == struct.unpack_from("!H", buf, ip.off + 10)[0]
    )


def _l4_ok(buf: bytes, ip: IPHeader, l4_off: int, proto: int, end: int) -> bool:
    if proto == 17 and buf[l4_off + 6 : l4_off + 8] == b"\0\0":
        return True  # skb_gro_checksum_validate_zero_check: 0 is not validated (v4 and v6)
    s = csum_add(pseudo_header_sum(ip.src, ip.dst, proto, end - l4_off), csum_block(buf[l4_off:end]))
    return csum_fold(s) == 0


class _View(NamedTuple):
    """The decoder's record of a frame: outer IP (None without a tunnel), innermost
    IP and innermost TCP/UDP header, as GRO compares them."""

    rec: Decoded
    outer: Optional[WireIP]
    ip: WireIP
    l4: L4Header


def _view(o: Offsets) -> Optional[_View]:
    rec = o.wire
    if rec is None or rec.ip is None:
        return None
    if o.outer is None:
        return _View(rec, None, rec.ip, rec.l4) if rec.l4 is not None else None
    if rec.inner_ip is None or rec.inner_l4 is None:
        return None
    return _View(rec, rec.ip, rec.inner_ip, rec.inner_l4)


def _gro_view(buf: bytes, o: Offsets) -> Optional[_View]:
    """The frame's view if GRO accepts its headers at all (valid checksums), else None."""
    if o.l4 not in ("tcp", "udp"):
        return None
    if o.l4 == "tcp" and o.end == o.payload_off:
        return None  # pure ACK: flushed through
    view = _view(o)
    if view is None or not _gro_able(buf, o, view.rec):
        return None
    return view


def _gro_able(buf: bytes, o: Offsets, rec: Decoded) -> bool:
    for ip in (o.outer, o.ip):
        if ip is None:
            continue
        if ip.version == 4 and not _ipv4_ok(buf, ip):
            return False
        if ip.version == 6 and ip.hlen != 40:
            return False
    if o.outer is not None:
        if o.tunnel == "geneve" and (rec.version != 0 or rec.oam):
            return False  # geneve_gro_receive: version != 0 or OAM
        if o.gre:
            if (rec.gre_flags >> 8) & ~0xA0:  # gre_gro_receive: only the C and K bits
                return False
            if rec.gre_flags & 0x8000 and csum_fold(csum_block(buf[o.tunnel_off : o.end])) != 0:
                return False  # GRE checksum (C bit) must be valid
        elif not _l4_ok(buf, o.outer, o.tunnel_off, 17, o.end):
            return False
    return _l4_ok(buf, o.ip, o.l4_off, 6 if o.l4 == "tcp" else 17, o.end)


def _flow_key(buf: bytes, o: Offsets, rec: Decoded) -> Tuple[Any, ...]:
    """Same flow (the headers GRO compares byte for byte, memcmp-style)."""
    first = o.first_ip
    parts: List[Any] = [o.tunnel, buf[: first.off], first.src, first.dst, first.proto]
    if o.outer is not None:
        t = o.tunnel_off
        if o.gre:  # flags, protocol and key; not the checksum
            parts += [buf[t : t + 4], rec.gre_key]
        else:  # UDP ports, checksum on/off, the whole tunnel header with every option
            parts += [buf[t : t + 4], buf[t + 6 : t + 8] == b"\0\0", buf[t + 8 : o.inner_l2]]
        parts += [buf[o.inner_l2 : o.ip.off], o.ip.src, o.ip.dst, o.ip.proto]
    parts.append(buf[o.l4_off : o.l4_off + 4])
    return tuple(parts)


def _ip_matches(ip: WireIP, h: _Held, hip: WireIP, outer: bool) -> bool:
    """inet_gro_receive / ipv6_gro_receive: the IP fields a held packet must share."""
    if ip.version != hip.version:
        return False
    if ip.version == 6:
        return (ip.tos, ip.flow_label, ip.ttl) == (hip.tos, hip.flow_label, hip.ttl)
    if ip.tos != hip.tos or ip.ttl != hip.ttl:
        return False
    df = ip.flags & _DF_FLAG
    if df != hip.flags & _DF_FLAG:
        return False
    if outer and df:
        return True  # outer header with DF: ID not checked
    offset = (ip.ident - hip.ident) & 0xFFFF
    if h.count == 1 and df and offset == 0:
        h.fixedid[hip.off] = True
    return offset == (0 if h.fixedid.get(hip.off) else h.count & 0xFFFF)


def _tcp_matches(buf: bytes, o: Offsets, tcp: L4Header, h: _Held) -> bool:
    """tcp_gro_receive: ack, data offset, window, options and flags but CWR/FIN/PSH
    the same; the sequence number contiguous; no CWR."""
    held_tcp = h.view.l4
    fl, t, first = tcp.flags, o.l4_off, h.first
    if fl & _TCP_CWR or tcp.ack != held_tcp.ack or tcp.hlen != held_tcp.hlen:
        return False
    if (fl ^ held_tcp.flags) & 0xF00 or buf[t + 14 : t + 16] != first[t + 14 : t + 16]:
        return False  # reserved bits / AE, window
    keep = ~(_TCP_CWR | _TCP_FIN | _TCP_PSH) & 0xFF
    if (fl ^ h.flags) & keep:
        return False
    if buf[t + 20 : o.payload_off] != first[t + 20 : o.payload_off]:  # options
        return False
    return tcp.seq == h.next_seq


def _try_merge(buf: bytes, o: Offsets, view: _View, h: _Held, max_size: int) -> bool:
    plen = o.end - o.payload_off
    if h.closed or o.payload_off != h.o.payload_off or o.l4_hlen != h.o.l4_hlen:
        return False
    if plen == 0 or plen > h.mss or h.l3_len + plen >= max_size:
        return False
    _rec, outer, ip, l4 = view
    held_outer, held_ip = h.view.outer, h.view.ip
    if outer is not None and (held_outer is None or not _ip_matches(outer, h, held_outer, True)):
        return False
    if not _ip_matches(ip, h, held_ip, False):
        return False
    if o.l4 == "tcp":
        if not _tcp_matches(buf, o, l4, h):
            return False
        fl = l4.flags & 0xFF
        h.flags |= fl & (_TCP_FIN | _TCP_PSH)
        h.next_seq = (h.next_seq + plen) & 0xFFFFFFFF
        if plen < h.mss or fl & _CLOSE_FLAGS:
            h.closed = True
    else:
        if h.count >= _UDP_GRO_CNT_MAX:
            return False
        if plen < h.mss:
            h.closed = True
    h.chunks.append(buf[o.payload_off : o.end])
    h.count += 1
    return True


def _complete(h: _Held, checksums: str) -> bytes:
    """Rebuild the merged packet (inet/udp/tcp_gro_complete)."""
    o = h.o
    if h.count == 1:
        return h.first
    buf = bytearray(h.first[: o.payload_off]) + b"".join(h.chunks)
    total = len(buf)
    if o.l4 == "tcp":
        buf[o.l4_off + 13] = h.flags
    for ip in (o.ip, o.outer):
        if ip is None:
            continue
        if ip.version == 4:
            n = total - ip.off
            struct.pack_into("!H", buf, ip.off + 2, n if n <= 0xFFFF else 0)
            buf[ip.off + 10 : ip.off + 12] = b"\0\0"
            struct.pack_into("!H", buf, ip.off + 10, ipv4_header_checksum(buf[ip.off : ip.off + ip.hlen]))
        else:
            n = total - ip.off - 40
            struct.pack_into("!H", buf, ip.off + 4, n if n <= 0xFFFF else 0)
    if o.l4 == "udp":
        n = total - o.l4_off
        struct.pack_into("!H", buf, o.l4_off + 4, n if n <= 0xFFFF else 0)
    csum_at = o.l4_off + (16 if o.l4 == "tcp" else 6)
    inner_on = o.l4 == "tcp" or buf[csum_at : csum_at + 2] != b"\0\0"
    outer_on = False
    if o.outer is not None and not o.gre:
        t = o.tunnel_off
        n = total - t
        struct.pack_into("!H", buf, t + 4, n if n <= 0xFFFF else 0)
        outer_on = buf[t + 6 : t + 8] != b"\0\0"
    if checksums == "full":
        return finish_checksums_bytes(
            bytes(buf), link="ether" if o.first_ip.off else "ip", tunnel=o.tunnel or "none"
        )
    proto = 6 if o.l4 == "tcp" else 17
    if inner_on:
        struct.pack_into(
            "!H", buf, csum_at, csum_add(pseudo_header_sum(o.ip.src, o.ip.dst, proto, total - o.l4_off))
        )
    if outer_on and o.outer is not None:
        t = o.tunnel_off
        struct.pack_into(
            "!H", buf, t + 6, csum_add(pseudo_header_sum(o.outer.src, o.outer.dst, 17, total - t))
        )
    return bytes(buf)


@dataclass(frozen=True)
class _Config:
    link: str = "ether"
    max_size: int = 65536
    checksums: str = "partial"
    tunnel: Optional[str] = None
    tunnel_ports: Optional[PortTable] = None
    flush_every: Optional[int] = None
    max_flows: Optional[int] = MAX_FLOWS
    max_age_ns: Optional[int] = MAX_AGE_NS
    max_age_packets: Optional[int] = MAX_AGE_PACKETS

    def check(self) -> None:
        if self.checksums not in ("partial", "full"):
            raise ValueError("checksums must be 'partial' or 'full', not %r" % (self.checksums,))
        for name in ("flush_every", "max_flows", "max_age_packets"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError("%s must be a positive number, not %r" % (name, value))
        if self.max_age_ns is not None and self.max_age_ns < 0:
            raise ValueError("max_age_ns must not be negative, not %r" % (self.max_age_ns,))


class _Gro:
    """The GRO state: held super-packets (oldest first) and the output queue."""

    def __init__(self, cfg: _Config) -> None:
        cfg.check()
        self.cfg = cfg
        self.out: Deque[Tuple[Union[bytes, _Held], int]] = deque()
        self.held: Dict[Tuple[Any, ...], _Held] = {}  # open super-packets, oldest first

    def close(self, h: _Held) -> None:
        h.closed = True
        if self.held.get(h.key) is h:
            del self.held[h.key]

    def ready(self) -> Iterator[Tuple[bytes, int]]:
        """Every output frame that is final, with the index of its first input frame."""
        out = self.out
        while out and (isinstance(out[0][0], bytes) or out[0][0].closed):
            x, i = out.popleft()
            yield (x, i) if isinstance(x, bytes) else (_complete(x, self.cfg.checksums), i)

    def age(self, i: int, ts_ns: Optional[int]) -> None:
        """Flush what is too old when frame I (at TS_NS) arrives, and at NAPI poll ends."""
        cfg = self.cfg
        if cfg.flush_every and i and i % cfg.flush_every == 0:
            for h in list(self.held.values()):  # end of a NAPI poll: napi_gro_flush
                self.close(h)
        while self.held:
            h = next(iter(self.held.values()))
            old = (cfg.max_age_packets is not None and i - h.index >= cfg.max_age_packets) or (
                cfg.max_age_ns is not None
                and ts_ns is not None
                and h.ts_ns is not None
                and ts_ns - h.ts_ns > cfg.max_age_ns
            )
            if not old:
                break
            self.close(h)

    def receive(self, i: int, raw: bytes, ts_ns: Optional[int]) -> None:
        """dev_gro_receive for frame I: merged, held, or passed through."""
        self.age(i, ts_ns)
        buf = bytes(raw)
        try:
            o = parse_offsets(buf, self.cfg.link, self.cfg.tunnel, self.cfg.tunnel_ports)
        except CaptureError:  # not IP, unreadable, not GSO-shaped: passed through
            self.out.append((buf, i))
            return
        view = _gro_view(buf, o)
        if view is None:
            self.out.append((buf, i))
            return
        if o.end != len(buf):
            buf = buf[: o.end]  # Ethernet padding is not payload
        key = _flow_key(buf, o, view.rec)
        h = self.held.get(key)
        if h is not None and _try_merge(buf, o, view, h, self.cfg.max_size):
            if h.closed:
                self.close(h)
            return
        if h is not None:
            self.close(h)
        self.hold(_new_held(key, buf, o, view, i, ts_ns))

    def hold(self, nh: _Held) -> None:
        cap = self.cfg.max_flows
        if cap is not None and len(self.held) >= cap:
            self.close(next(iter(self.held.values())))  # gro_flush_oldest
        self.out.append((nh, nh.index))
        if not nh.closed:
            self.held[nh.key] = nh

    def finish(self) -> Iterator[Tuple[bytes, int]]:
        for h in list(self.held.values()):
            self.close(h)
        return self.ready()


def _new_held(
    key: Tuple[Any, ...], buf: bytes, o: Offsets, view: _View, i: int, ts_ns: Optional[int]
) -> _Held:
    plen = o.end - o.payload_off
    nh = _Held(key, buf, o, view, plen, [buf[o.payload_off : o.end]], index=i, ts_ns=ts_ns)
    if o.l4 == "tcp":
        tcp = view.l4
        nh.flags = tcp.flags & 0xFF
        nh.next_seq = (tcp.seq + plen) & 0xFFFFFFFF
        nh.closed = bool(nh.flags & _CLOSE_FLAGS)
    return nh


def _coalesce_iter(items: Iterable[Tuple[bytes, Optional[int]]], cfg: _Config) -> Iterator[Tuple[bytes, int]]:
    """(frame, index of its first input frame) for every output frame, in order.

    Streams: an output frame is produced as soon as it and every frame before
    it are final, so memory holds only the super-packets still open and the
    frames behind them, both bounded (module docstring)."""
    gro = _Gro(cfg)
    for i, (raw, ts_ns) in enumerate(items):
        gro.receive(i, raw, ts_ns)
        yield from gro.ready()
    yield from gro.finish()


def coalesce_timed(
    items: Iterable[Tuple[bytes, Optional[int]]],
    *,
    link: str = "ether",
    max_size: int = 65536,
    checksums: str = "partial",
    tunnel: Optional[str] = None,
    tunnel_ports: Optional[PortTable] = None,
    flush_every: Optional[int] = None,
    max_flows: Optional[int] = MAX_FLOWS,
    max_age_ns: Optional[int] = MAX_AGE_NS,
    max_age_packets: Optional[int] = MAX_AGE_PACKETS,
) -> Iterator[Tuple[bytes, int]]:
    """:func:`coalesce_indexed` on ``(frame, time in ns or None)`` pairs: the times
    drive the age bound (``max_age_ns``) as the kernel's jiffies do."""
    cfg = _Config(
        link, max_size, checksums, tunnel, tunnel_ports, flush_every, max_flows, max_age_ns, max_age_packets
    )
    return _coalesce_iter(items, cfg)


def coalesce_indexed(
    frames: Iterable[bytes],
    *,
    link: str = "ether",
    max_size: int = 65536,
    checksums: str = "partial",
    tunnel: Optional[str] = None,
    tunnel_ports: Optional[PortTable] = None,
    flush_every: Optional[int] = None,
    max_flows: Optional[int] = MAX_FLOWS,
    max_age_packets: Optional[int] = MAX_AGE_PACKETS,
) -> Iterator[Tuple[bytes, int]]:
    """:func:`coalesce_bytes` as a stream (any iterable of frames, e.g. a
    capture being read): yields each output frame, paired with the index of
    its first input frame (to carry timestamps and link headers over), as
    soon as it and every frame before it are final."""
    cfg = _Config(
        link, max_size, checksums, tunnel, tunnel_ports, flush_every, max_flows, None, max_age_packets
    )
    return _coalesce_iter(((f, None) for f in frames), cfg)


def coalesce_bytes(
    frames: Sequence[bytes],
    *,
    link: str = "ether",
    max_size: int = 65536,
    checksums: str = "partial",
    tunnel: Optional[str] = None,
    tunnel_ports: Optional[PortTable] = None,
    flush_every: Optional[int] = None,
    max_flows: Optional[int] = MAX_FLOWS,
    max_age_packets: Optional[int] = MAX_AGE_PACKETS,
) -> List[bytes]:
    """:func:`coalesce` on raw frames; returns frames."""
    return [
        f
        for f, _ in coalesce_indexed(
            frames,
            link=link,
            max_size=max_size,
            checksums=checksums,
            tunnel=tunnel,
            tunnel_ports=tunnel_ports,
            flush_every=flush_every,
            max_flows=max_flows,
            max_age_packets=max_age_packets,
        )
    ]


def coalesce(
    packets: Sequence[Union[Packet, bytes]],
    *,
    max_size: int = 65536,
    checksums: str = "partial",
    tunnel: Optional[str] = None,
    tunnel_ports: Optional[PortTable] = None,
    flush_every: Optional[int] = None,
    max_flows: Optional[int] = MAX_FLOWS,
    max_age_ns: Optional[int] = None,
    max_age_packets: Optional[int] = MAX_AGE_PACKETS,
) -> List[Packet]:
    """Merge segments into super-packets the way Linux GRO does (module doc).

    ``packets`` are ``Ether`` (or ``IP``/``IPv6``) packets or frame bytes, in
    arrival order.  ``max_size`` is gro_max_size (default 65536; larger
    values give BIG TCP packets with IPv4 total length / IPv6 payload length
    0); ``checksums`` is "partial" (pseudo-header sums, as GRO hands packets
    to the stack) or "full" (finished); ``tunnel`` forces "geneve", "vxlan",
    "vxlan-gpe" or "none" instead of port-based detection, ``tunnel_ports``
    replaces the port table (:data:`scapy_geneve.offload.segment.TUNNEL_PORTS`,
    or a :class:`scapy_geneve.registry.Ports`).
    ``flush_every=N`` closes every held super-packet after each N packets, as
    the end of a NAPI poll does (the kernel's budget is 64 packets per poll);
    by default nothing is flushed before the end but what the bounds flush:
    ``max_flows`` and ``max_age_packets`` (module docstring; None lifts one).
    ``max_age_ns=MAX_AGE_NS`` adds the age bound in time, reading ``pkt.time``
    as the arrival time (do so for captured packets: a packet built in Python
    carries its creation time).
    ``coalesce(segment(p)) == p`` for a super-packet captured before the NIC
    (partial checksums).  Each output packet keeps its first segment's time.
    """
    if not packets:
        return []
    first = packets[0]
    link, cls = ("ip", type(first)) if isinstance(first, (IP, IPv6)) else ("ether", Ether)
    items = [(bytes(p), int(float(p.time) * 1e9) if isinstance(p, Packet) else None) for p in packets]
    merged = coalesce_timed(
        items,
        link=link,
        max_size=max_size,
        checksums=checksums,
        tunnel=tunnel,
        tunnel_ports=tunnel_ports,
        flush_every=flush_every,
        max_flows=max_flows,
        max_age_ns=max_age_ns,
        max_age_packets=max_age_packets,
    )
    out: List[Packet] = []
    for frame, i in merged:
        q = cls(frame)
        src = packets[i]
        if isinstance(src, Packet):
            q.time = src.time
        out.append(q)
    return out
