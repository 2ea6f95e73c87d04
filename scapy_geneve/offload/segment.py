"""GSO/TSO segmentation the way Linux's software GSO does it (specs.md §7).

A *super-packet* is what a host hands to its NIC (and what a capture taken
before the NIC shows): one big TCP segment, or a UDP payload for UDP GSO,
optionally inside a UDP tunnel (Geneve, VXLAN, VXLAN-GPE) or GRE/NVGRE::

    Ether / IPv4|IPv6 / UDP / Geneve(+options)|VXLAN / Ether / IPv4|IPv6 / TCP|UDP / payload
    Ether / IPv4|IPv6 / GRE(K, 0x6558) / Ether / IPv4|IPv6 / TCP|UDP / payload   (NVGRE)
    Ether / IPv4|IPv6 / TCP|UDP / payload                                        (no tunnel)

:func:`segment` cuts it into the packets Linux's ``skb_segment()`` chain
(``inet_gso_segment`` / ``ipv6_gso_segment`` -> ``__skb_udp_tunnel_segment`` or
``gre_gso_segment`` -> inner IP -> ``tcp_gso_segment`` / ``__udp_gso_segment``)
puts on the wire:

- every header byte up to the payload is copied (the tunnel header with every
  option, in order, DF/TTL/TOS, ports, ack, window, TCP options, urgent pointer);
- IPv4 IDs (outer and inner) count up from the super-packet's, one per
  segment (``outer_ip_id``/``ip_id="fixed"`` keeps them, as TCP_FIXEDID does);
- IPv4 total length / IPv6 payload length, UDP length: per segment;
- TCP sequence numbers advance by MSS; CWR stays on the first segment only,
  FIN and PSH on the last only;
- IPv4 header checksums, inner TCP/UDP checksums: computed; the outer UDP
  checksum stays 0 when the super-packet's is 0 (no SKB_GSO_UDP_TUNNEL_CSUM)
  and is computed otherwise, a computed 0 being sent as 0xFFFF.

It works on bytes: the headers are read once by the project's wire decoder
(:mod:`scapy_geneve.capture.decode`, through :mod:`scapy_geneve.offload.offsets`),
the header template is patched per segment, and checksums are summed with
big-integer arithmetic.  Which UDP ports are tunnels comes from
:mod:`scapy_geneve.registry`.  Any bytes give segments or a :class:`CaptureError`
naming a byte offset (tests/test_segment_props.py fuzzes every entry point).
"""

import struct
from dataclasses import dataclass
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot3, Ether
from scapy.packet import Packet

from scapy_geneve import compat
from scapy_geneve.checksum import (
    CSUM_MANGLED_0,
    chunk_sums,
    csum_add,
    csum_block,
    csum_fold,
    ipv4_header_checksum,
    pseudo_header_sum,
)
from scapy_geneve.consts import ETH_P_IP, ETH_P_IPV6
from scapy_geneve.errors import BuildError, CaptureError
from scapy_geneve.offload.offsets import (
    TUNNEL_PORTS,
    UDP_TUNNELS,
    IPHeader,
    NotSegmentable,
    Offsets,
    PortTable,
    decode_frame,
    offsets_of,
    parse_offsets,
    tunnel_ports,
)

__all__ = [
    "segment",
    "segment_bytes",
    "finish_checksums",
    "finish_checksums_bytes",
    "parse_offsets",
    "Offsets",
    "IPHeader",
    "TUNNEL_PORTS",
    "UDP_TUNNELS",
    "tunnel_ports",
    "NotSegmentable",
    "PortTable",
]

_IPPROTO_TCP, _IPPROTO_UDP = 6, 17
_TCP_FIN, _TCP_PSH, _TCP_CWR = 0x01, 0x08, 0x80
_IPV4_MAX, _IPV6_MAX = 0xFFFF, 0xFFFF
_U16, _U32 = struct.Struct("!H"), struct.Struct("!I")


def _strip_jumbo(buf: bytes, ip_off: int) -> bytes:
    """Old-style IPv6 BIG TCP (RFC 2675 jumbo Hop-by-Hop option, payload
    length 0): remove the 8-byte HBH header as ``ipv6_gso_segment`` does."""
    if len(buf) < ip_off + 48 or buf[ip_off + 6] != 0 or buf[ip_off + 4 : ip_off + 6] != b"\0\0":
        return buf
    hbh = ip_off + 40
    if buf[hbh + 1] != 0 or buf[hbh + 2 : hbh + 4] != b"\xc2\x04":
        return buf
    out = bytearray(buf[:hbh] + buf[hbh + 8 :])
    out[ip_off + 6] = buf[hbh]
    return bytes(out)


# -- the bytes path ----------------------------------------------------------


def _offsets(
    data: bytes, link: str, tunnel: Optional[str], tunnel_ports: Optional[PortTable]
) -> Tuple[bytes, Optional[Offsets]]:
    """The frame (an RFC 2675 jumbo option of old IPv6 BIG TCP dropped) and its offsets
    from the wire decoder; None for a frame that is not IP (ARP, LLDP, 802.3/LLC)."""
    buf = bytes(data)
    rec = decode_frame(buf, link, tunnel, tunnel_ports)
    if rec.ip is None and not rec.malformed and rec.ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return buf, None
    if rec.ip is not None and rec.ip.version == 6 and rec.ip.jumbo >= 0:
        stripped = _strip_jumbo(buf, rec.ip.off)
        if stripped is not buf:
            buf, rec = stripped, decode_frame(stripped, link, tunnel, tunnel_ports)
    return buf, offsets_of(rec, buf, plain=tunnel == "none")


def _resolve_mss(o: Offsets, mss: Optional[int], mtu: Optional[int]) -> int:
    headers = o.payload_off - o.first_ip.off
    if mss is None:
        m = 1500 if mtu is None else mtu
        if m <= headers:
            raise BuildError(
                "segment",
                "mtu",
                m,
                "leaves no room for payload after %d bytes of "
                "headers (outer IP through inner %s)" % (headers, o.l4.upper()),
            )
        return m - headers
    if mss <= 0:
        raise BuildError("segment", "mss", mss, "must be a positive number of payload bytes")
    if mtu is not None and mss + headers > mtu:
        raise BuildError("segment", "mss", mss, "plus %d bytes of headers exceeds mtu %d" % (headers, mtu))
    return mss


def _patch_segment(
    h: bytearray,
    o: Offsets,
    first: bool,
    last: bool,
    ip_id_step: int,
    outer_id_step: int,
    tcp_seq: int,
    chunk_sum: int,
    chunk_len: int,
    knobs: "_Knobs",
) -> None:
    """Patch one segment's header in place (``h`` = template copy): the reference
    path, one field at a time (:func:`_cut_fast` is checked equal to it)."""
    total = o.payload_off + chunk_len
    _patch_ip(h, o.ip, total, ip_id_step)
    partial = _patch_l4(h, o, total, first, last, tcp_seq, chunk_sum, knobs)
    if o.outer is not None:
        _patch_ip(h, o.outer, total, outer_id_step)
        _patch_tunnel(h, o, total, chunk_sum, knobs)
    if knobs.csum_offload and o.l4 in ("tcp", "udp") and (o.l4 == "tcp" or knobs.udp_csum):
        # CHECKSUM_PARTIAL: the NIC finishes it; the field holds the pseudo-header sum.
        _U16.pack_into(h, o.l4_off + (16 if o.l4 == "tcp" else 6), partial)


def _patch_ip(h: bytearray, ip: IPHeader, total: int, id_step: int) -> None:
    """Length; IPv4: ID + ID_STEP and the header checksum."""
    _set_ip_len(h, ip, total)
    if ip.version != 4:
        return
    if id_step:
        _U16.pack_into(h, ip.off + 4, (_U16.unpack_from(h, ip.off + 4)[0] + id_step) & 0xFFFF)
    _U16.pack_into(h, ip.off + 10, 0)
    _U16.pack_into(h, ip.off + 10, ipv4_header_checksum(h[ip.off : ip.off + ip.hlen]))


def _patch_l4(
    h: bytearray,
    o: Offsets,
    total: int,
    first: bool,
    last: bool,
    tcp_seq: int,
    chunk_sum: int,
    knobs: "_Knobs",
) -> int:
    """The inner TCP (seq, flags, checksum) or UDP (length, checksum) header; returns
    the pseudo-header sum (what CHECKSUM_PARTIAL leaves in the field)."""
    ip, l4o = o.ip, o.l4_off
    l4_len = total - l4o
    if o.l4 == "tcp":
        _U32.pack_into(h, l4o + 4, tcp_seq & 0xFFFFFFFF)
        fl = h[l4o + 13]
        if not last:
            fl &= ~(_TCP_FIN | _TCP_PSH)
        if not first and knobs.cwr == "first":
            fl &= ~_TCP_CWR
        h[l4o + 13] = fl
        _U16.pack_into(h, l4o + 16, 0)
        ph = pseudo_header_sum(ip.src, ip.dst, _IPPROTO_TCP, l4_len)
        _U16.pack_into(h, l4o + 16, csum_fold(csum_add(ph, csum_block(h[l4o : o.payload_off]), chunk_sum)))
        return csum_add(ph)
    if o.l4 != "udp":
        return 0
    _U16.pack_into(h, l4o + 4, l4_len if l4_len <= 0xFFFF else 0)
    _U16.pack_into(h, l4o + 6, 0)
    if not knobs.udp_csum:
        return 0
    ph = pseudo_header_sum(ip.src, ip.dst, _IPPROTO_UDP, l4_len)
    c = csum_fold(csum_add(ph, csum_block(h[l4o : o.payload_off]), chunk_sum)) or CSUM_MANGLED_0
    _U16.pack_into(h, l4o + 6, c)
    return csum_add(ph)


def _patch_tunnel(h: bytearray, o: Offsets, total: int, chunk_sum: int, knobs: "_Knobs") -> None:
    """The outer UDP length and checksum, or the GRE checksum (C bit)."""
    t = o.tunnel_off
    odd = (o.payload_off - t) & 1  # the payload's words start at an odd offset of the sum
    tail_sum = ((chunk_sum << 8) | (chunk_sum >> 8)) & 0xFFFF if odd else chunk_sum
    if o.gre:
        if h[t] & 0x80:  # C bit: checksum over GRE header and payload
            h[t + 4 : t + 8] = b"\0\0\0\0"
            _U16.pack_into(h, t + 4, csum_fold(csum_add(csum_block(h[t : o.payload_off]), tail_sum)))
        return
    outer = o.outer
    udp_len = total - t
    _U16.pack_into(h, t + 4, udp_len if udp_len <= 0xFFFF else 0)
    _U16.pack_into(h, t + 6, 0)
    if knobs.outer_udp_csum and outer is not None:
        ph = pseudo_header_sum(outer.src, outer.dst, _IPPROTO_UDP, udp_len)
        c = csum_fold(csum_add(ph, csum_block(h[t : o.payload_off]), tail_sum)) or CSUM_MANGLED_0
        _U16.pack_into(h, t + 6, c)


def _set_ip_len(h: bytearray, ip: IPHeader, total: int) -> None:
    if ip.version == 4:
        n = total - ip.off
        struct.pack_into("!H", h, ip.off + 2, n if n <= _IPV4_MAX else 0)
    else:
        n = total - ip.off - 40
        struct.pack_into("!H", h, ip.off + 4, n if n <= _IPV6_MAX else 0)


@dataclass(frozen=True)
class _Knobs:
    outer_ip_id: str = "increment"
    ip_id: str = "increment"
    outer_udp_csum: bool = False
    udp_csum: bool = True
    cwr: str = "first"
    csum_offload: bool = False


def _knobs(
    buf: bytes,
    o: Offsets,
    outer_ip_id: str,
    ip_id: str,
    outer_udp_csum: Optional[bool],
    udp_csum: Optional[bool],
    cwr: str,
    csum_offload: bool,
) -> _Knobs:
    for name, val, allowed in (
        ("outer_ip_id", outer_ip_id, ("increment", "fixed")),
        ("ip_id", ip_id, ("increment", "fixed")),
        ("cwr", cwr, ("first", "all")),
    ):
        if val not in allowed:
            raise ValueError("%s must be one of %s, not %r" % (name, ", ".join(allowed), val))
    if outer_udp_csum is None:
        # SKB_GSO_UDP_TUNNEL_CSUM is exactly "the tunnel's UDP checksum is on".
        outer_udp_csum = (
            o.outer is not None and not o.gre and struct.unpack_from("!H", buf, o.tunnel_off + 6)[0] != 0
        )
    if udp_csum is None:
        udp_csum = o.l4 == "udp" and (
            o.ip.version == 6 or struct.unpack_from("!H", buf, o.l4_off + 6)[0] != 0
        )
    return _Knobs(outer_ip_id, ip_id, bool(outer_udp_csum), bool(udp_csum), cwr, csum_offload)


def _cut(buf: bytes, o: Offsets, mss: Optional[int], knobs: _Knobs) -> List[bytes]:
    template = bytearray(buf[: o.payload_off])
    payload = memoryview(buf)[o.payload_off : o.end]
    n_pay = len(payload)
    if mss is None or n_pay <= mss:
        bounds = [(0, n_pay)]
    else:
        if o.l4 == "other":
            raise BuildError(
                "segment",
                "payload",
                n_pay,
                "is larger than the MSS %d but IP protocol %d is neither TCP nor UDP" % (mss, o.ip.proto),
            )
        bounds = [(a, min(a + mss, n_pay)) for a in range(0, n_pay, mss)]
    single = mss is None
    seq0 = struct.unpack_from("!I", buf, o.l4_off + 4)[0] if o.l4 == "tcp" else 0
    id_inc = int(knobs.ip_id == "increment" and not single)
    oid_inc = int(knobs.outer_ip_id == "increment" and not single)
    out = []
    last_i = len(bounds) - 1
    for i, (a, b) in enumerate(bounds):
        chunk = payload[a:b]
        h = bytearray(template)
        _patch_segment(
            h, o, i == 0, i == last_i, i * id_inc, i * oid_inc, seq0 + a, csum_block(chunk), b - a, knobs
        )
        h += chunk
        out.append(bytes(h))
    return out


def _words(b: Union[bytes, bytearray]) -> int:
    """Sum of the big-endian 16-bit words of ``b`` (zero-padded), as a residue mod 0xFFFF."""
    return (int.from_bytes(b, "big") << (8 * (len(b) & 1))) % 0xFFFF


class _Fast(NamedTuple):
    """What :func:`_cut_fast` needs of a super-packet's layout, found once."""

    tcp: bool
    l4_csum_on: bool  # TCP, or UDP with its checksum on
    csum_at: int  # inner TCP/UDP checksum field
    outer_on: bool  # the outer UDP (or GRE) checksum is computed
    outer_csum_at: int
    mangle_outer: bool  # a computed outer UDP checksum of 0 is sent as 0xFFFF (not GRE)
    v4_in: bool
    v4_out: bool
    id_in0: int  # first IPv4 IDs, and their step per segment
    id_out0: int
    id_in_step: int
    id_out_step: int
    seq0: int  # first TCP sequence number and flags
    fl0: int
    cwr_first: bool
    write_partial: bool  # leave the inner checksum CHECKSUM_PARTIAL (csum_offload)


class _Plan(NamedTuple):
    """The header template of a segment of one payload length, and its base sums
    (every field that varies per segment zeroed)."""

    template: bytes
    ip_out: int
    ip_in: int
    l4: int
    outer: int
    partial: int  # the pseudo-header sum (CHECKSUM_PARTIAL)


def _fast_layout(buf: bytes, o: Offsets, knobs: _Knobs) -> _Fast:
    ip, outer, tcp = o.ip, o.outer, o.l4 == "tcp"
    v4_in, v4_out = ip.version == 4, outer is not None and outer.version == 4
    return _Fast(
        tcp=tcp,
        l4_csum_on=tcp or knobs.udp_csum,
        csum_at=o.l4_off + (16 if tcp else 6),
        outer_on=outer is not None
        and (knobs.outer_udp_csum if not o.gre else bool(buf[o.tunnel_off] & 0x80)),
        outer_csum_at=o.tunnel_off + (6 if not o.gre else 4),
        mangle_outer=not o.gre,
        v4_in=v4_in,
        v4_out=v4_out,
        id_in0=_U16.unpack_from(buf, ip.off + 4)[0] if v4_in else 0,
        id_out0=_U16.unpack_from(buf, outer.off + 4)[0] if v4_out and outer is not None else 0,
        id_in_step=int(knobs.ip_id == "increment"),
        id_out_step=int(knobs.outer_ip_id == "increment"),
        seq0=_U32.unpack_from(buf, o.l4_off + 4)[0] if tcp else 0,
        fl0=buf[o.l4_off + 13] if tcp else 0,
        cwr_first=knobs.cwr == "first",
        write_partial=knobs.csum_offload and (tcp or knobs.udp_csum),
    )


def _fast_plan(buf: bytes, o: Offsets, f: _Fast, n: int) -> _Plan:
    """The template and base sums of a segment carrying N payload bytes."""
    ip, outer, t_off, l4o, po = o.ip, o.outer, o.tunnel_off, o.l4_off, o.payload_off
    h = bytearray(buf[:po])
    total = po + n
    _set_ip_len(h, ip, total)
    if f.v4_in:
        h[ip.off + 4 : ip.off + 6] = h[ip.off + 10 : ip.off + 12] = b"\0\0"
    h[f.csum_at : f.csum_at + 2] = b"\0\0"
    l4_len = total - l4o
    if f.tcp:
        h[l4o + 4 : l4o + 8] = b"\0\0\0\0"
        h[l4o + 13] = 0
    else:
        _U16.pack_into(h, l4o + 4, l4_len if l4_len <= 0xFFFF else 0)
    base_ip_out = base_outer = 0
    if outer is not None:
        _set_ip_len(h, outer, total)
        if f.v4_out:
            h[outer.off + 4 : outer.off + 6] = h[outer.off + 10 : outer.off + 12] = b"\0\0"
            base_ip_out = _words(h[outer.off : outer.off + outer.hlen])
        if not o.gre:
            udp_len = total - t_off
            _U16.pack_into(h, t_off + 4, udp_len if udp_len <= 0xFFFF else 0)
        if f.outer_on or not o.gre:
            h[f.outer_csum_at : f.outer_csum_at + 2] = b"\0\0"
        if f.outer_on:
            base_outer = _words(h[t_off:po])
            if not o.gre:
                base_outer += pseudo_header_sum(outer.src, outer.dst, 17, total - t_off)
    pseudo = pseudo_header_sum(ip.src, ip.dst, 6 if f.tcp else 17, l4_len)
    base_ip_in = _words(h[ip.off : ip.off + ip.hlen]) if f.v4_in else 0
    return _Plan(bytes(h), base_ip_out, base_ip_in, pseudo + _words(h[l4o:po]), base_outer, csum_add(pseudo))


def _cut_fast(buf: bytes, o: Offsets, mss: int, knobs: _Knobs) -> Optional[List[bytes]]:
    """The bytes path: one header template per segment length, base sums
    precomputed, per segment only integer additions and field writes.

    Sums are kept as residues modulo 0xFFFF: 2**16 == 1 (mod 0xFFFF), so the
    residue *is* the ones'-complement sum, residue 0 standing for 0xFFFF (the
    summed data is never all zero: it holds a protocol number or a version).
    A checksum field is then ``0xFFFF - r`` (0 when r is 0).

    Returns None when the layout is not the common case (then :func:`_cut`,
    the straightforward per-segment computation, does the job; the two are
    checked equal by tests/test_segment_props.py)."""
    if o.l4 not in ("tcp", "udp") or (o.outer is not None and (o.ip.off - o.tunnel_off) & 1):
        return None
    payload = buf[o.payload_off : o.end]
    n_pay = len(payload)
    bounds = [(a, min(a + mss, n_pay)) for a in range(0, n_pay, mss)] or [(0, 0)]
    f = _fast_layout(buf, o, knobs)
    plans = {b - a: _fast_plan(buf, o, f, b - a) for a, b in (bounds[0], bounds[-1])}
    sums = chunk_sums(payload, mss) if n_pay else [0]
    return _fast_segments(o, f, payload, bounds, plans, sums)


def _fast_segments(
    o: Offsets,
    f: _Fast,
    payload: bytes,
    bounds: List[Tuple[int, int]],
    plans: Dict[int, _Plan],
    sums: List[int],
) -> List[bytes]:
    """Every segment from its plan: IDs, sequence number, flags and checksums set."""
    (
        tcp,
        l4_csum_on,
        csum_at,
        outer_on,
        outer_csum_at,
        mangle_outer,
        v4_in,
        v4_out,
        id_in0,
        id_out0,
        id_in_step,
        id_out_step,
        seq0,
        fl0,
        cwr_first,
        write_partial,
    ) = f  # locals: the loop is hot
    out = []
    last = len(bounds) - 1
    put16 = _U16.pack_into
    in_id_at, in_ck_at = o.ip.off + 4, o.ip.off + 10
    out_id_at = o.outer.off + 4 if o.outer is not None else 0
    out_ck_at, seq_at, fl_at = out_id_at + 6, o.l4_off + 4, o.l4_off + 13
    for i, (a, b) in enumerate(bounds):
        tmpl, b_out, b_in, b_l4, b_outer, partial = plans[b - a]
        h = bytearray(tmpl)
        p_sum = sums[i]  # payload words, reduced mod 0xFFFF
        var = 0  # what the per-segment fields add to the outer sums
        if v4_in:
            iid = (id_in0 + i * id_in_step) & 0xFFFF
            r = (b_in + iid) % 0xFFFF
            ic = 0xFFFF - r if r else 0
            put16(h, in_id_at, iid)
            put16(h, in_ck_at, ic)
            var = iid + ic
        if tcp:
            seq = (seq0 + a) & 0xFFFFFFFF
            fl = fl0 if i == last else fl0 & 0xF6  # FIN and PSH only on the last segment
            if i and cwr_first:
                fl &= 0x7F  # CWR only on the first
            t = (seq >> 16) + (seq & 0xFFFF) + fl
            r = (b_l4 + t + p_sum) % 0xFFFF
            c = 0xFFFF - r if r else 0
            _U32.pack_into(h, seq_at, seq)
            h[fl_at] = fl
            var += t + c
        elif l4_csum_on:
            r = (b_l4 + p_sum) % 0xFFFF
            c = (0xFFFF - r if r else 0) or CSUM_MANGLED_0
            var += c
        else:
            c = 0
        if v4_out:
            oid = (id_out0 + i * id_out_step) & 0xFFFF
            r = (b_out + oid) % 0xFFFF
            put16(h, out_id_at, oid)
            put16(h, out_ck_at, 0xFFFF - r if r else 0)
        if outer_on:
            r = (b_outer + var + p_sum) % 0xFFFF
            oc = 0xFFFF - r if r else 0
            put16(h, outer_csum_at, CSUM_MANGLED_0 if mangle_outer and not oc else oc)
        put16(h, csum_at, partial if write_partial else c)
        out.append(bytes(h) + payload[a:b])
    return out


def segment_bytes(
    data: bytes,
    mss: Optional[int] = None,
    mtu: Optional[int] = None,
    *,
    link: str = "ether",
    tunnel: Optional[str] = None,
    tunnel_ports: Optional[PortTable] = None,
    outer_ip_id: str = "increment",
    ip_id: str = "increment",
    outer_udp_csum: Optional[bool] = None,
    udp_csum: Optional[bool] = None,
    cwr: str = "first",
    csum_offload: bool = False,
    _fast: bool = True,
) -> List[bytes]:
    """:func:`segment` on raw frame bytes: returns the segments as bytes.

    This is the fast path (no Scapy packet is built); :func:`segment` calls
    it and dissects the result.  See :func:`segment` for the arguments;
    ``tunnel_ports`` replaces :data:`TUNNEL_PORTS` (UDP destination port ->
    "geneve", "vxlan" or "vxlan-gpe") for port-based tunnel detection.
    """
    buf, found = _offsets(data, link, tunnel, tunnel_ports)
    if found is None:
        return [buf]  # ARP, LLDP, 802.3/LLC...: nothing to cut
    o = found
    m = _resolve_mss(o, mss, mtu)
    k = _knobs(buf, o, outer_ip_id, ip_id, outer_udp_csum, udp_csum, cwr, csum_offload)
    if _fast and o.end - o.payload_off > m:
        fast = _cut_fast(buf, o, m, k)
        if fast is not None:
            return fast
    return _cut(buf, o, m, k)


def finish_checksums_bytes(
    data: bytes,
    *,
    link: str = "ether",
    tunnel: Optional[str] = None,
    tunnel_ports: Optional[PortTable] = None,
    csum_offload: bool = False,
) -> bytes:
    """:func:`finish_checksums` on raw frame bytes."""
    try:
        buf, found = _offsets(data, link, tunnel, tunnel_ports)
    except CaptureError:
        if tunnel == "none":
            raise
        # The tunnel carries no IP (ARP, ...) or cannot be read: finish the outer packet alone.
        buf, found = _offsets(data, link, "none", None)
    if found is None:
        return buf  # ARP, LLDP, 802.3/LLC...: nothing to finish
    o = found
    k = _knobs(buf, o, "fixed", "fixed", None, None, "all", csum_offload)
    return _cut(buf, o, None, k)[0]


# -- the Scapy face ---------------------------------------------------------


def _link_of(pkt: Union[Packet, bytes]) -> Tuple[bytes, str, Any]:
    if isinstance(pkt, (bytes, bytearray, memoryview)):
        return bytes(pkt), "ether", Ether
    if isinstance(pkt, (Ether, Dot3)):  # Ether(bytes) dissects an 802.3 frame as Dot3
        return bytes(pkt), "ether", Ether
    if isinstance(pkt, (IP, IPv6)):
        return bytes(pkt), "ip", type(pkt)
    raise TypeError(
        "segment() takes an Ether (or 802.3), IP or IPv6 packet (or frame bytes), not %s" % type(pkt).__name__
    )


def _tunnel_hint(pkt: Union[Packet, bytes]) -> Optional[str]:
    """The tunnel the packet's own layers name (for tunnels on other ports)."""
    if not isinstance(pkt, Packet):
        return None
    layer: Any = pkt
    while layer is not None and not isinstance(layer, (bytes, type(None))):
        name = type(layer).__name__
        if name in ("Geneve", "GENEVE"):
            return "geneve"
        if name == "VXLAN":  # Scapy's one layer for both: the P bit says GPE
            return "vxlan-gpe" if int(layer.flags) & 0x04 else "vxlan"
        if name in ("NoPayload", "Raw", "Padding"):
            return None
        if name in ("TCP",):
            return None
        layer = layer.payload if layer.payload else None
    return None


def _copy_meta(src: Any, dst: Packet) -> Packet:
    if isinstance(src, Packet):
        dst.time = src.time
    return dst


_ChangePlan = List[Tuple[int, List[Tuple[str, int, str, int]]]]


def _layer_bounds(proto: Packet) -> Optional[Tuple[Dict[int, int], List[Packet], List[Tuple[int, int]]]]:
    """(frame offset -> index of the layer starting there, the layers, each one's byte
    range) of a dissected packet; None when a layer has no dissection cache."""
    starts: Dict[int, int] = {}
    layers: List[Packet] = []
    bounds: List[Tuple[int, int]] = []
    off = 0
    layer: Any = proto
    while isinstance(layer, Packet) and layer.__class__.__name__ != "NoPayload":
        cache = compat.dissection_cache(layer)
        if cache is None:
            return None
        starts.setdefault(off, len(layers))
        layers.append(layer)
        bounds.append((off, off + len(cache)))
        off += len(cache)
        layer = layer.payload
    return starts, layers, bounds


def _change_plan(
    first: bytes, o: Offsets, starts: Dict[int, int], layers: List[Packet]
) -> Optional[_ChangePlan]:
    """(layer index, [(field, byte offset, struct format, mask)]) of every field that
    differs between segments; None when a layer is not where the offsets say."""
    plan: _ChangePlan = []
    for ip in (o.outer, o.ip) if o.outer is not None else (o.ip,):
        i = starts.get(ip.off)
        if i is None or not isinstance(layers[i], (IP, IPv6)):
            return None
        if ip.version == 4:
            plan.append((i, [("id", ip.off + 4, "!H", 0xFFFF), ("chksum", ip.off + 10, "!H", 0xFFFF)]))
    if o.outer is not None:
        i = starts.get(o.tunnel_off)
        if i is None or (o.gre and first[o.tunnel_off] & 0x80):
            return None  # no layer there, or a GRE checksum: left to full dissection
        if not o.gre:
            plan.append((i, [("chksum", o.tunnel_off + 6, "!H", 0xFFFF)]))
    i = starts.get(o.l4_off)
    if i is None or type(layers[i]).__name__ != o.l4.upper():
        return None
    if o.l4 == "tcp":
        tcp = [("seq", o.l4_off + 4, "!I", 0xFFFFFFFF), ("flags", o.l4_off + 12, "!H", 0x1FF)]
        plan.append((i, tcp + [("chksum", o.l4_off + 16, "!H", 0xFFFF)]))
    else:
        plan.append((i, [("chksum", o.l4_off + 6, "!H", 0xFFFF)]))
    return plan


class _Deriver:
    """Segments as Scapy packets without dissecting each one.

    Every segment but the last has the first one's length and differs from it
    only in the fields :func:`segment_bytes` patches: IPv4 ID and header
    checksum (outer and inner), the outer UDP checksum, the TCP sequence
    number, flags and checksum (or the UDP checksum) and the payload.  So the
    first segment is dissected once and each next one is a copy of it
    (:func:`scapy_geneve.compat.fast_copy`) with those fields set from the segment's bytes.
    Whenever the layers are not the plain ones this knows (a payload Scapy
    dissects as a protocol, an NVGRE checksum, a layer it cannot place), or
    the copy does not build to the segment's bytes, the segment is dissected
    in full instead; tests/test_segment_props.py checks the copies equal full
    dissections, field by field.
    """

    def __init__(self, cls: Any, first: bytes, o: Offsets) -> None:
        self.cls, self.first = cls, first
        self.proto = cls(first)
        self.ok = False
        found = _layer_bounds(self.proto)
        if found is None:
            return
        starts, layers, bounds = found
        plan = _change_plan(first, o, starts, layers)
        raw_index = starts.get(o.payload_off)
        if plan is None or raw_index is None or type(layers[raw_index]).__name__ != "Raw":
            return
        if raw_index != len(layers) - 1:
            return
        for i, fields in plan:
            for name, _at, _fmt, _mask in fields:
                if layers[i].get_field(name) is None or name not in layers[i].fields:
                    return
        self.plan, self.bounds, self.raw_index = plan, bounds, raw_index
        self.memo: compat.CopyMemo = {}
        self.proto_snaps = [compat.dissection_snapshots(x) for x in layers]
        self.checked = False
        self.ok = True

    def packet(self, frame: bytes) -> Packet:
        """Segment ``frame`` as a Scapy packet (a copy of the first, or dissected)."""
        if not self.ok or len(frame) != len(self.first):
            return self.cls(frame)
        if frame is self.first:
            return self.proto
        layers: List[Packet] = []
        top = compat.fast_copy(self.proto, None, self.memo, layers)
        for i, fields in self.plan:
            layer = layers[i]
            snap = compat.dissection_snapshots(layer) or {}
            for name, at, fmt, mask in fields:
                # the value the field's dissection gives (m2i: a FlagValue for TCP flags)
                fld = layer.get_field(name)
                val = layer.fields[name] = fld.m2i(layer, struct.unpack_from(fmt, frame, at)[0] & mask)
                if name in snap:
                    # dissection snapshots mutable values (TCP flags) to notice edits;
                    # the copy shares the first segment's snapshots until it changes one
                    if snap is self.proto_snaps[i]:
                        snap = dict(snap)
                    snap[name] = compat.cache_field_value(layer, fld, val)
            start, end = self.bounds[i]
            compat.set_dissection_cache(layer, frame[start:end], snap)
        raw = layers[self.raw_index]
        start = self.bounds[self.raw_index][0]
        raw.fields["load"] = frame[start:]
        compat.set_dissection_cache(raw, raw.fields["load"], compat.dissection_snapshots(raw) or {})
        for layer, (start, _end) in zip(layers, self.bounds):
            layer.original = frame[start:] if start else frame
        if not self.checked:
            # The copy builds from its layers' caches, which are slices of the frame at
            # the first segment's layer bounds: if that holds once it holds for every
            # segment of this length (tests/test_segment_props.py checks them all).
            self.checked = True
            if bytes(top) != frame:
                self.ok = False
                return self.cls(frame)
        return top


def segment(
    pkt: Union[Packet, bytes], mss: Optional[int] = None, mtu: Optional[int] = None, **knobs: Any
) -> List[Packet]:
    """Cut a GSO/TSO super-packet into what Linux's software GSO sends.

    ``pkt`` is an ``Ether`` (or ``IP``/``IPv6``) packet, or frame bytes:
    plain TCP, UDP (UDP GSO), or either inside Geneve (with options), VXLAN,
    VXLAN-GPE, GRE or NVGRE.  Captures taken before the NIC work as they
    are: IPv4 total length 0 / IPv6 payload length 0 (BIG TCP) and partial
    checksums are fine.

    ``mss`` is the payload per segment (TCP MSS, or ``gso_size`` for UDP);
    without it, it is derived from ``mtu`` (default 1500: the IP MTU of the
    outer link) minus every header from the outer IP header to the end of
    the inner TCP header, Geneve options included.

    Knobs (keyword-only; each default follows the super-packet, as the
    kernel does):

    - ``outer_ip_id``/``ip_id``: "increment" (default: ID+i in segment i)
      or "fixed" (TCP_FIXEDID / mangleid).
    - ``outer_udp_csum``: None follows the super-packet (0 stays 0, anything
      else is computed, a computed 0 sent as 0xFFFF); True/False force it.
    - ``udp_csum``: the same for the datagrams of UDP GSO.
    - ``cwr``: "first" (CWR only on the first segment) or "all" (AccECN,
      SKB_GSO_TCP_ACCECN).
    - ``csum_offload``: leave inner TCP/UDP checksums CHECKSUM_PARTIAL (the
      pseudo-header sum) as a device with tx checksum offload receives
      them; outer checksums are then computed as local checksum offload does.
    - ``tunnel``: "geneve", "vxlan", "vxlan-gpe" (or a registry alias) or
      "none" to override the port-based (or layer-based) detection;
      ``tunnel_ports`` replaces the port table :data:`TUNNEL_PORTS` (a dict,
      or a :class:`scapy_geneve.registry.Ports` such as
      ``DEFAULT_PORTS.extended(geneve=[6082])``).  A UDP datagram on any other port
      that is longer than the MSS is cut as UDP GSO.

    Returns new packets of the input's first layer class, times copied.  They
    are what dissecting each segment's bytes gives, field for field, but only
    the first and the last segment are dissected: the others are copies of the
    first with their own IDs, sequence number, flags, checksums and payload
    (about 3x faster; see :class:`_Deriver`).
    Frames that are not IP (ARP, LLDP, 802.3/LLC: Scapy's ``Dot3``) come back
    unchanged, as a list of one copy.
    Raises :class:`BuildError` for an impossible MSS/MTU, :class:`CaptureError`
    for a packet whose headers cannot be read (never another exception for
    any bytes), and :class:`NotSegmentable` (a CaptureError) for an IP packet
    GSO does not cut (a fragment, a tunnel carrying no IP).
    """
    raw, link, cls = _link_of(pkt)
    if knobs.get("tunnel") is None:
        knobs["tunnel"] = _tunnel_hint(pkt)
    derive = knobs.pop("_derive", True)
    frames = segment_bytes(raw, mss, mtu, link=link, **knobs)
    if derive and len(frames) >= 3:
        d = _Deriver(
            cls, frames[0], parse_offsets(frames[0], link, knobs.get("tunnel"), knobs.get("tunnel_ports"))
        )
        return [_copy_meta(pkt, d.packet(f)) for f in frames]
    return [_copy_meta(pkt, cls(f)) for f in frames]


def finish_checksums(pkt: Union[Packet, bytes], **knobs: Any) -> Packet:
    """Turn a capture taken before the NIC into the valid packet it becomes.

    Fills IPv4 total length 0 / IPv6 payload length 0 (BIG TCP, when the
    packet fits in 64 KB), recomputes the IPv4 header checksums, the inner
    TCP/UDP checksum (a partial one holds only the pseudo-header sum) and a
    non-zero outer UDP checksum; an outer UDP checksum of 0 stays 0.  Nothing
    else changes: no segmentation.  Non-IP frames (ARP, 802.3/LLC) come back unchanged.
    """
    raw, link, cls = _link_of(pkt)
    if knobs.get("tunnel") is None:
        knobs["tunnel"] = _tunnel_hint(pkt)
    return _copy_meta(pkt, cls(finish_checksums_bytes(raw, link=link, **knobs)))
