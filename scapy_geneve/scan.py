"""Fast scanning of tunnel captures without building Scapy packets.

``scan(path)`` yields one light :class:`ScanRecord` per packet: outer
addresses and ports, the encapsulation (Geneve, VXLAN, VXLAN-GPE, NVGRE, STT,
L2TPv3), its identifier (VNI, VSID, context ID or session ID), the Geneve
options as class/type/critical/length, the inner 5-tuple, and a malformed flag
with its reason.  It parses bytes with :mod:`struct`; no Scapy is imported.

For whole-file work (``scapy-geneve stats`` and ``filter``) :func:`compute_stats`
and :func:`filter_capture` use a second, vectorised path: each chunk that
:mod:`scapy_geneve.pcapio` reads is parsed for all its packets at once with
numpy fancy indexing, and only the packets that are not plain (malformed,
truncated, IPv6 extension headers, unusual link types...) go through the
per-packet parser.  Both paths give the same answers; the tests check it.

Wire formats recognised (destination ports are configurable with
:class:`Ports`):

========== ============================= ======================================
kind       where                         identifier (``vni``)
========== ============================= ======================================
geneve     UDP dport 6081 (RFC 8926)     VNI, 24 bits
vxlan      UDP dport 4789, 8472          VNI, 24 bits (RFC 7348)
vxlan-gpe  UDP dport 4790                VNI, 24 bits (draft-ietf-nvo3-vxlan-gpe)
nvgre      GRE, K=1, proto 0x6558        VSID = key >> 8; ``flow_id`` = key & 0xFF
stt        TCP dport 7471                context ID, 64 bits, only in the segment
                                         whose offset (seq & 0xFFFF) is 0
l2tpv3     IP proto 115; UDP 1701 with   session ID, 32 bits (0 over IP, or the T
           version nibble 3 (RFC 3931)   bit over UDP, is a control message)
========== ============================= ======================================
"""

import os
import socket
import struct
from typing import (IO, Any, Callable, Dict, FrozenSet, Iterable, Iterator, List,
                    NamedTuple, Optional, Sequence, Tuple, Union)

from scapy_geneve.consts import (ETH_P_IP, ETH_P_IPV6, ETH_P_TEB, GENEVE_PORT,
                                 IPPROTO_GRE, IPPROTO_L2TP, L2TP_PORT, STT_PORT,
                                 VXLAN_GPE_PORT, VXLAN_LINUX_PORT, VXLAN_PORT,
                                 option_class_name)
from scapy_geneve.errors import CaptureError
from scapy_geneve.pcapio import (LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6,
                                 LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP,
                                 LINKTYPE_NAMES, LINKTYPE_NULL, LINKTYPE_RAW, Batch,
                                 CaptureReader, open_capture)

__all__ = [
    "KINDS", "Ports", "GeneveOptionInfo", "ScanRecord", "parse_packet", "scan",
    "ScanStats", "compute_stats", "PacketFilter", "filter_capture",
    "SUPPORTED_LINKTYPES",
]

KINDS = ("geneve", "vxlan", "vxlan-gpe", "nvgre", "stt", "l2tpv3")

SUPPORTED_LINKTYPES = frozenset([LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW,
                                 LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4,
                                 LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2, 12, 14])
# 12 and 14 are DLT_RAW values that some old files wrote instead of LINKTYPE_RAW.

ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_QINQ1 = 0x9100
VLAN_TPIDS = (ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ1)
ETH_P_ARP = 0x0806
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_SCTP = 132
IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58
# IPv6 extension headers walked to find the upper layer (RFC 8200 §4, RFC 7045).
IPV6_EXT = frozenset([0, 43, 44, 60, 51, 135, 139, 140, 253, 254])
GRE_C, GRE_K, GRE_S, GRE_VER = 0x8000, 0x2000, 0x1000, 0x0007
STT_HDR_LEN = 18
PROTO_NAMES = {1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6",
               47: "GRE", 50: "ESP", 51: "AH", 58: "ICMPv6", 89: "OSPF", 103: "PIM",
               112: "VRRP", 115: "L2TP", 132: "SCTP"}
ETHERTYPE_NAMES = {0x0806: "ARP", 0x8035: "RARP", 0x88CC: "LLDP", 0x8847: "MPLS",
                   0x8848: "MPLS multicast", 0x894F: "NSH", 0x88E5: "MACsec",
                   0x8809: "Slow protocols (LACP)", 0x6558: "TEB", 0x88F7: "PTP"}


class Ports(NamedTuple):
    """Which UDP/TCP ports mean which encapsulation (dissected on dport)."""

    geneve: FrozenSet[int] = frozenset([GENEVE_PORT])
    vxlan: FrozenSet[int] = frozenset([VXLAN_PORT, VXLAN_LINUX_PORT])
    gpe: FrozenSet[int] = frozenset([VXLAN_GPE_PORT])
    stt: FrozenSet[int] = frozenset([STT_PORT])
    l2tp: FrozenSet[int] = frozenset([L2TP_PORT])   # source or destination


DEFAULT_PORTS = Ports()


class GeneveOptionInfo(NamedTuple):
    """One Geneve option TLV header (RFC 8926 §3.5); ``length`` in 4-byte words."""

    classid: int
    type: int        # the 8-bit wire value; 0x80 is the critical bit
    critical: bool
    length: int      # data length in 4-byte words (the 5-bit field), excluding the header


class ScanRecord:
    """What :func:`scan` knows about one packet.  Absent values are ``None``."""

    __slots__ = ("number", "offset", "ts_ns", "caplen", "wirelen", "linktype", "interface",
                 "vlans", "outer_ip", "outer_src", "outer_dst", "outer_proto",
                 "outer_sport", "outer_dport", "kind", "vni", "flow_id", "oam", "critical",
                 "proto", "stt_offset", "control", "options", "inner_ethertype",
                 "inner_src", "inner_dst", "inner_proto", "inner_sport", "inner_dport",
                 "malformed", "reason", "snapped")

    def __init__(self, number: int = 0, offset: int = 0, ts_ns: Optional[int] = None,
                 caplen: int = 0, wirelen: int = 0, linktype: int = LINKTYPE_ETHERNET,
                 interface: int = 0) -> None:
        self.number = number            # 1-based packet number in the file
        self.offset = offset            # file offset of the record / block
        self.ts_ns = ts_ns              # timestamp in ns since the epoch (None: no timestamp)
        self.caplen = caplen
        self.wirelen = wirelen
        self.linktype = linktype
        self.interface = interface
        self.vlans: Tuple[int, ...] = ()            # outer 802.1Q/802.1ad VLAN IDs
        self.outer_ip: Optional[int] = None         # 4 or 6
        self.outer_src: Optional[str] = None
        self.outer_dst: Optional[str] = None
        self.outer_proto: Optional[int] = None      # IP protocol / next header
        self.outer_sport: Optional[int] = None
        self.outer_dport: Optional[int] = None
        self.kind: Optional[str] = None             # one of KINDS
        self.vni: Optional[int] = None              # VNI / VSID / context ID / session ID
        self.flow_id: Optional[int] = None          # NVGRE FlowID
        self.oam: Optional[bool] = None             # Geneve O bit, VXLAN-GPE O bit
        self.critical: Optional[bool] = None        # Geneve C bit
        self.proto: Optional[int] = None            # Geneve Protocol Type / GPE Next Protocol
        self.stt_offset: Optional[int] = None       # STT segment offset (seq & 0xFFFF)
        self.control: Optional[bool] = None         # L2TPv3 control message
        self.options: Tuple[GeneveOptionInfo, ...] = ()
        self.inner_ethertype: Optional[int] = None
        self.inner_src: Optional[str] = None
        self.inner_dst: Optional[str] = None
        self.inner_proto: Optional[int] = None
        self.inner_sport: Optional[int] = None
        self.inner_dport: Optional[int] = None
        self.malformed = False
        self.reason: Optional[str] = None           # why it is malformed
        self.snapped = False                        # ran out of captured bytes (caplen < wirelen)

    @property
    def timestamp(self) -> Optional[float]:
        """Timestamp in seconds (float); ``ts_ns`` keeps full precision."""
        return None if self.ts_ns is None else self.ts_ns / 1e9

    @property
    def inner_5tuple(self) -> Optional[Tuple[Any, ...]]:
        """(src, dst, proto, sport, dport) of the inner IP packet, or None."""
        if self.inner_src is None:
            return None
        return (self.inner_src, self.inner_dst, self.inner_proto, self.inner_sport,
                self.inner_dport)

    def as_dict(self) -> Dict[str, Any]:
        """The record as a plain dict (options as dicts), e.g. for JSON."""
        out = {name: getattr(self, name) for name in self.__slots__}
        out["options"] = [opt._asdict() for opt in self.options]
        out["vlans"] = list(self.vlans)
        return out

    def __repr__(self) -> str:
        parts = ["#%d" % self.number]
        if self.kind:
            parts.append("%s vni=%s" % (self.kind, self.vni))
        if self.options:
            parts.append("options=[%s]" % ", ".join(
                "0x%04x/0x%02x/%d" % (o.classid, o.type, o.length) for o in self.options))
        if self.inner_src is not None:
            parts.append("inner=%s" % (self.inner_5tuple,))
        if self.malformed:
            parts.append("malformed=%r" % self.reason)
        if self.snapped:
            parts.append("snapped")
        return "<ScanRecord %s>" % " ".join(parts)


# -- the per-packet parser ---------------------------------------------------------
class _Short(Exception):
    """The bytes ran out while reading WHAT."""


class _Bad(Exception):
    """The bytes contradict a header: a malformed packet."""


_U16 = struct.Struct("!H").unpack_from
_U32 = struct.Struct("!I").unpack_from
_U64 = struct.Struct("!Q").unpack_from
_ntop = socket.inet_ntop
_AF4, _AF6 = socket.AF_INET, socket.AF_INET6


class _Cursor:
    __slots__ = ("data", "end")

    def __init__(self, data: bytes, end: int) -> None:
        self.data = data
        self.end = end

    def need(self, pos: int, length: int, what: str) -> None:
        if pos + length > self.end:
            raise _Short(what)


def _l2(cur: _Cursor, rec: ScanRecord, linktype: int) -> Tuple[int, int]:
    """Link layer: returns (ethertype, offset of the network header)."""
    data = cur.data
    if linktype == LINKTYPE_ETHERNET:
        cur.need(0, 14, "Ethernet header")
        ethertype, pos = _U16(data, 12)[0], 14
    elif linktype == LINKTYPE_LINUX_SLL:
        cur.need(0, 16, "Linux cooked (SLL) header")
        ethertype, pos = _U16(data, 14)[0], 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        cur.need(0, 20, "Linux cooked (SLL2) header")
        ethertype, pos = _U16(data, 0)[0], 20
    elif linktype in (LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6):
        cur.need(0, 1, "IP version")
        version = data[0] >> 4
        ethertype = ETH_P_IP if version == 4 else ETH_P_IPV6 if version == 6 else 0
        if ethertype == 0:
            raise _Bad("raw IP packet with version %d" % version)
        return ethertype, 0
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        cur.need(0, 4, "loopback header")
        family = _U32(data, 0)[0]
        if linktype == LINKTYPE_NULL and family > 0xFFFF:
            family = struct.unpack_from("<I", data, 0)[0]
        ethertype = ETH_P_IP if family == 2 else ETH_P_IPV6 if family in (10, 24, 28, 30) else 0
        return ethertype, 4
    else:  # pragma: no cover - scan() refuses unknown link types up front
        raise _Bad("unsupported link type %d" % linktype)
    vlans = []
    while ethertype in VLAN_TPIDS and len(vlans) < 8:
        cur.need(pos, 4, "VLAN tag")
        vlans.append(_U16(data, pos)[0] & 0x0FFF)
        ethertype = _U16(data, pos + 2)[0]
        pos += 4
    rec.vlans = tuple(vlans)
    return ethertype, pos


def _ip(cur: _Cursor, ethertype: int, pos: int, inner: bool) -> Tuple[int, int, str, str, bool]:
    """IPv4/IPv6 header at POS: (proto, l4 offset, src, dst, first_fragment).

    Narrows ``cur.end`` to the IP packet's own length (drops Ethernet padding).
    ``first_fragment`` is False for a non-first fragment (no L4 header there).
    """
    data = cur.data
    layer = "inner" if inner else "outer"
    if ethertype == ETH_P_IP:
        cur.need(pos, 20, layer + " IPv4 header")
        vihl = data[pos]
        if vihl >> 4 != 4:
            raise _Bad("%s IPv4 header with version %d" % (layer, vihl >> 4))
        ihl = (vihl & 0x0F) * 4
        if ihl < 20:
            raise _Bad("%s IPv4 header length %d < 20" % (layer, ihl))
        cur.need(pos, ihl, layer + " IPv4 options")
        total = _U16(data, pos + 2)[0]
        if total:   # 0 is a TSO/BIG TCP super-packet: the capture length rules
            if total < ihl:
                raise _Bad("%s IPv4 total length %d < header length %d" % (layer, total, ihl))
            cur.end = min(cur.end, pos + total)
        frag = _U16(data, pos + 6)[0] & 0x1FFF
        return (data[pos + 9], pos + ihl, _ntop(_AF4, data[pos + 12:pos + 16]),
                _ntop(_AF4, data[pos + 16:pos + 20]), frag == 0)
    # IPv6
    cur.need(pos, 40, layer + " IPv6 header")
    if data[pos] >> 4 != 6:
        raise _Bad("%s IPv6 header with version %d" % (layer, data[pos] >> 4))
    plen = _U16(data, pos + 4)[0]
    if plen:    # 0: jumbogram or BIG TCP; the capture length rules
        cur.end = min(cur.end, pos + 40 + plen)
    nh = data[pos + 6]
    src = _ntop(_AF6, data[pos + 8:pos + 24])
    dst = _ntop(_AF6, data[pos + 24:pos + 40])
    l4 = pos + 40
    first = True
    hops = 0
    while nh in IPV6_EXT and hops < 16:
        hops += 1
        if nh == 59:
            break
        cur.need(l4, 8, layer + " IPv6 extension header")
        if nh == 44:   # Fragment header: fixed 8 bytes
            if _U16(data, l4 + 2)[0] & 0xFFF8:
                first = False
            nh, l4 = data[l4], l4 + 8
        elif nh == 51:  # AH: length in 4-byte words minus 2
            nh, l4 = data[l4], l4 + (data[l4 + 1] + 2) * 4
        else:
            nh, l4 = data[l4], l4 + (data[l4 + 1] + 1) * 8
    return nh, l4, src, dst, first


def _inner(cur: _Cursor, rec: ScanRecord, pos: int, ethertype: Optional[int]) -> None:
    """Inner frame at POS: Ethernet (ethertype None) or IP (ethertype given)."""
    data = cur.data
    if ethertype is None:
        cur.need(pos, 14, "inner Ethernet header")
        ethertype = _U16(data, pos + 12)[0]
        pos += 14
        tags = 0
        while ethertype in VLAN_TPIDS and tags < 8:
            cur.need(pos, 4, "inner VLAN tag")
            ethertype = _U16(data, pos + 2)[0]
            pos += 4
            tags += 1
    rec.inner_ethertype = ethertype
    if ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return
    proto, l4, src, dst, first = _ip(cur, ethertype, pos, True)
    rec.inner_src, rec.inner_dst, rec.inner_proto = src, dst, proto
    if first and proto in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP):
        cur.need(l4, 4, "inner ports")
        rec.inner_sport, rec.inner_dport = _U16(data, l4)[0], _U16(data, l4 + 2)[0]


def _geneve(cur: _Cursor, rec: ScanRecord, pos: int) -> None:
    data = cur.data
    rec.kind = "geneve"
    cur.need(pos, 8, "Geneve header")
    b0, b1 = data[pos], data[pos + 1]
    rec.oam, rec.critical = bool(b1 & 0x80), bool(b1 & 0x40)
    rec.proto = _U16(data, pos + 2)[0]
    rec.vni = _U32(data, pos + 4)[0] >> 8
    if b0 >> 6:
        raise _Bad("Geneve version %d (only 0 is defined)" % (b0 >> 6))
    opt_end = pos + 8 + (b0 & 0x3F) * 4
    opt = pos + 8
    options = []
    while opt < opt_end:
        cur.need(opt, 4, "Geneve option header")
        typ, length = data[opt + 2], data[opt + 3] & 0x1F
        options.append(GeneveOptionInfo(_U16(data, opt)[0], typ, bool(typ & 0x80), length))
        nxt = opt + 4 + length * 4
        if nxt > opt_end:
            rec.options = tuple(options)
            raise _Bad("Geneve option %d overruns Opt Len" % len(options))
        cur.need(opt, 4 + length * 4, "Geneve option data")
        opt = nxt
    rec.options = tuple(options)
    cur.need(pos, opt_end - pos, "Geneve options")
    proto = rec.proto
    if proto == ETH_P_TEB:
        _inner(cur, rec, opt_end, None)
    elif proto in (ETH_P_IP, ETH_P_IPV6):
        _inner(cur, rec, opt_end, proto)


def _vxlan(cur: _Cursor, rec: ScanRecord, pos: int, gpe: bool) -> None:
    data = cur.data
    rec.kind = "vxlan-gpe" if gpe else "vxlan"
    cur.need(pos, 8, "VXLAN-GPE header" if gpe else "VXLAN header")
    flags = data[pos]
    rec.vni = _U32(data, pos + 4)[0] >> 8
    if not flags & 0x08:
        raise _Bad("%s I flag clear (RFC 7348 §5: MUST be 1)" % ("VXLAN-GPE" if gpe else "VXLAN"))
    if not gpe:
        _inner(cur, rec, pos + 8, None)
        return
    rec.oam = bool(flags & 0x01)
    if (flags >> 4) & 0x03:
        raise _Bad("VXLAN-GPE version %d (only 0 is defined)" % ((flags >> 4) & 0x03))
    if flags & 0x04:   # P: Next Protocol present
        rec.proto = data[pos + 3]
        if rec.proto == 3:
            _inner(cur, rec, pos + 8, None)
        elif rec.proto in (1, 2):
            _inner(cur, rec, pos + 8, ETH_P_IP if rec.proto == 1 else ETH_P_IPV6)
    else:
        _inner(cur, rec, pos + 8, None)


def _udp_tunnel(cur: _Cursor, rec: ScanRecord, pos: int, ports: Ports,
                l2tp_cookie: int, l2tp_l2ss: bool) -> None:
    data = cur.data
    cur.need(pos, 8, "outer UDP header")
    sport, dport = _U16(data, pos)[0], _U16(data, pos + 2)[0]
    rec.outer_sport, rec.outer_dport = sport, dport
    pos += 8
    if dport in ports.geneve:
        _geneve(cur, rec, pos)
    elif dport in ports.vxlan:
        _vxlan(cur, rec, pos, False)
    elif dport in ports.gpe:
        _vxlan(cur, rec, pos, True)
    elif dport in ports.l2tp or sport in ports.l2tp:
        if pos + 2 > cur.end or _U16(data, pos)[0] & 0x000F != 3:
            return  # L2F / L2TPv2 (or too short to tell): not L2TPv3
        rec.kind = "l2tpv3"
        word = _U16(data, pos)[0]
        if word & 0x8000:
            rec.control = True
            return
        rec.control = False
        cur.need(pos, 8, "L2TPv3 data header")
        rec.vni = _U32(data, pos + 4)[0]
        _l2tp_payload(cur, rec, pos + 8, l2tp_cookie, l2tp_l2ss)


def _l2tp_payload(cur: _Cursor, rec: ScanRecord, pos: int, cookie: int, l2ss: bool) -> None:
    pos += cookie + (4 if l2ss else 0)
    cur.need(pos, 0, "L2TPv3 cookie")
    _inner(cur, rec, pos, None)


def _stt(cur: _Cursor, rec: ScanRecord, pos: int) -> None:
    data = cur.data
    rec.kind = "stt"
    cur.need(pos, 20, "STT TCP-like header")
    rec.outer_sport, rec.outer_dport = _U16(data, pos)[0], _U16(data, pos + 2)[0]
    rec.stt_offset = _U32(data, pos + 4)[0] & 0xFFFF
    doff = (data[pos + 12] >> 4) * 4
    if doff < 20:
        raise _Bad("STT TCP data offset %d < 20" % doff)
    cur.need(pos, doff, "STT TCP-like header")
    if rec.stt_offset:
        return   # a continuation segment: the STT header is in the first one
    hdr = pos + doff
    cur.need(hdr, STT_HDR_LEN, "STT frame header")
    rec.vni = _U64(data, hdr + 8)[0]
    if data[hdr]:
        raise _Bad("STT version %d (only 0 is defined)" % data[hdr])
    _inner(cur, rec, hdr + STT_HDR_LEN, None)


def _nvgre(cur: _Cursor, rec: ScanRecord, pos: int) -> None:
    data = cur.data
    cur.need(pos, 4, "GRE header")
    flags, proto = _U16(data, pos)[0], _U16(data, pos + 2)[0]
    if not (flags & GRE_K and proto == ETH_P_TEB and flags & GRE_VER == 0):
        return   # GRE, but not NVGRE
    rec.kind = "nvgre"
    key = pos + (8 if flags & GRE_C else 4)
    cur.need(key, 4, "NVGRE key")
    value = _U32(data, key)[0]
    rec.vni, rec.flow_id = value >> 8, value & 0xFF
    _inner(cur, rec, key + (8 if flags & GRE_S else 4), None)


def parse_packet(data: bytes, linktype: int = LINKTYPE_ETHERNET,
                 wirelen: Optional[int] = None, ports: Ports = DEFAULT_PORTS,
                 l2tp_cookie: int = 0, l2tp_l2ss: bool = False,
                 record: Optional[ScanRecord] = None) -> ScanRecord:
    """Parse one captured frame into a :class:`ScanRecord`; never raises.

    ``l2tp_cookie`` (0, 4 or 8 bytes) and ``l2tp_l2ss`` (Default L2-Specific
    Sublayer present) say how to find the Ethernet frame in L2TPv3 data
    packets: neither is on the wire (RFC 3931 §4.1).
    """
    rec = record if record is not None else ScanRecord(
        caplen=len(data), wirelen=len(data) if wirelen is None else wirelen, linktype=linktype)
    cur = _Cursor(data, len(data))
    try:
        ethertype, pos = _l2(cur, rec, linktype)
        if ethertype not in (ETH_P_IP, ETH_P_IPV6):
            return rec
        proto, l4, src, dst, first = _ip(cur, ethertype, pos, False)
        rec.outer_ip = 4 if ethertype == ETH_P_IP else 6
        rec.outer_src, rec.outer_dst, rec.outer_proto = src, dst, proto
        if not first:
            return rec   # a non-first IP fragment carries no tunnel header
        if proto == IPPROTO_UDP:
            _udp_tunnel(cur, rec, l4, ports, l2tp_cookie, l2tp_l2ss)
        elif proto == IPPROTO_TCP:
            if cur.end >= l4 + 4 and _U16(data, l4 + 2)[0] in ports.stt:
                _stt(cur, rec, l4)
            elif cur.end >= l4 + 4:
                rec.outer_sport, rec.outer_dport = _U16(data, l4)[0], _U16(data, l4 + 2)[0]
        elif proto == IPPROTO_GRE:
            _nvgre(cur, rec, l4)
        elif proto == IPPROTO_L2TP:
            rec.kind = "l2tpv3"
            cur.need(l4, 4, "L2TPv3 session ID")
            session = _U32(data, l4)[0]
            rec.control = session == 0
            if session:
                rec.vni = session
                _l2tp_payload(cur, rec, l4 + 4, l2tp_cookie, l2tp_l2ss)
    except _Short as exc:
        if rec.caplen < rec.wirelen and cur.end >= len(data):
            rec.snapped = True   # the capture was cut short (snaplen): not malformed
        else:
            rec.malformed = True
            rec.reason = "truncated %s" % exc.args[0]
    except _Bad as exc:
        rec.malformed = True
        rec.reason = exc.args[0]
    return rec


def _check_linktype(reader: CaptureReader, batch: Batch) -> None:
    linktypes = set(batch.fields[5])
    for linktype in linktypes:
        if linktype not in SUPPORTED_LINKTYPES:
            i = list(batch.fields[5]).index(linktype)
            raise CaptureError("unsupported link type %d%s (scan reads Ethernet, Linux "
                               "cooked SLL/SLL2, raw IP and loopback)" % (
                                   linktype, " (%s)" % LINKTYPE_NAMES[linktype]
                                   if linktype in LINKTYPE_NAMES else ""),
                               path=reader.path, offset=batch.base + batch.starts[i],
                               packet=batch.first + i)


def scan(path: Union[str, "os.PathLike[str]"], ports: Ports = DEFAULT_PORTS,
         l2tp_cookie: int = 0, l2tp_l2ss: bool = False) -> Iterator[ScanRecord]:
    """Yield a :class:`ScanRecord` for every packet of a pcap/pcapng file.

    Streams: memory does not grow with the file.  A damaged file raises
    :class:`CaptureError` (naming the file, byte offset and packet number)
    after every packet before the damage has been yielded.
    """
    with open_capture(path) as reader:
        for batch in reader.batches():
            _check_linktype(reader, batch)
            data_off, _ends, caplen, wirelen, ts_ns, linktype, iface = batch.fields
            buf, base, first, starts = batch.buf, batch.base, batch.first, batch.starts
            for i in range(len(starts)):
                d = data_off[i]
                ts = ts_ns[i]
                rec = ScanRecord(first + i, base + starts[i], None if ts == -(1 << 63) else ts,
                                 caplen[i], wirelen[i], linktype[i], iface[i])
                yield parse_packet(buf[d:d + caplen[i]], linktype[i], ports=ports,
                                   l2tp_cookie=l2tp_cookie, l2tp_l2ss=l2tp_l2ss, record=rec)

