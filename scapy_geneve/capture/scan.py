"""Fast scanning of tunnel captures without building Scapy packets.

``scan(path)`` yields one light :class:`ScanRecord` per packet: outer
addresses and ports, the encapsulation (Geneve, VXLAN, VXLAN-GPE, NVGRE, STT,
L2TPv3), its identifier (VNI, VSID, context ID or session ID), the Geneve
options as class/type/critical/length, the inner 5-tuple, and a malformed flag
with its reason.  It parses bytes with :mod:`struct`; no Scapy is imported.

For whole-file work (``scapy-geneve stats`` and ``filter``) :func:`compute_stats`
and :func:`filter_capture` use a second, vectorised path: each chunk that
:mod:`scapy_geneve.capture.pcapio` reads is parsed for all its packets at once with
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
stt        TCP dport 7471                context ID, 64 bits, read in the segment
                                         whose offset (seq & 0xFFFF) is 0; later
                                         segments of that frame inherit it
l2tpv3     IP proto 115; UDP 1701 with   session ID, 32 bits (0 over IP, or the T
           version nibble 3 (RFC 3931)   bit over UDP, is a control message)
========== ============================= ======================================
"""

import os
import socket
import struct
from typing import (IO, Any, Callable, Dict, FrozenSet, Iterable, Iterator, List,
                    NamedTuple, Optional, Tuple, Union)

from scapy_geneve.consts import (ETH_P_IP, ETH_P_IPV6, ETH_P_TEB, GENEVE_PORT,
                                 IPPROTO_GRE, IPPROTO_L2TP, L2TP_PORT, STT_PORT,
                                 VXLAN_GPE_PORT, VXLAN_LINUX_PORT, VXLAN_PORT,
                                 option_class_name)
from scapy_geneve.errors import CaptureError
from scapy_geneve.capture.pcapio import (LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6,
                                 LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP,
                                 LINKTYPE_NAMES, LINKTYPE_NULL, LINKTYPE_RAW, Batch,
                                 CaptureReader, Record, open_capture)

__all__ = [
    "KINDS", "Ports", "GeneveOptionInfo", "ScanRecord", "ScanState", "parse_packet", "scan",
    "ScanStats", "compute_stats", "PacketFilter", "filter_capture", "matching_packets",
    "matching_records",
    "analyse_batch", "BatchResult", "FilterResult", "inner_protocol_name",
    "SUPPORTED_LINKTYPES",
]

KINDS = ("geneve", "vxlan", "vxlan-gpe", "nvgre", "stt", "l2tpv3")

SUPPORTED_LINKTYPES = frozenset([LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW,
                                 LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4,
                                 LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2, 12, 14])
# 12 and 14 are DLT_RAW values that some old files wrote instead of LINKTYPE_RAW.
_SUPPORTED_LIST = sorted(SUPPORTED_LINKTYPES)

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
GRE_C, GRE_R, GRE_K, GRE_S, GRE_VER = 0x8000, 0x4000, 0x2000, 0x1000, 0x0007
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


class ScanState:
    """What a scan learns across packets: the STT context ID of each frame.

    Only the first segment of an STT frame carries the STT header; the
    later ones share its reassembly key (outer source, outer destination,
    TCP ACK = frame identifier: the key of OVS's STT reassembly and of
    Wireshark's), so they get the context ID of the first segment seen with
    that key.  At
    most ``limit`` keys are remembered (oldest forgotten first).
    """

    __slots__ = ("stt", "limit")

    def __init__(self, limit: int = 65536) -> None:
        self.stt: Dict[Tuple[Optional[str], Optional[str], int], int] = {}
        self.limit = limit

    def learn_stt(self, key: Tuple[Optional[str], Optional[str], int], context: int) -> None:
        stt = self.stt
        stt.pop(key, None)
        stt[key] = context
        if len(stt) > self.limit:
            del stt[next(iter(stt))]


class ScanRecord:
    """What :func:`scan` knows about one packet.  Absent values are ``None``."""

    __slots__ = ("number", "offset", "ts_ns", "caplen", "wirelen", "linktype", "interface",
                 "vlans", "outer_ip", "outer_src", "outer_dst", "outer_proto",
                 "outer_sport", "outer_dport", "kind", "vni", "flow_id", "oam", "critical",
                 "proto", "stt_offset", "control", "options", "inner_ethertype",
                 "inner_src", "inner_dst", "inner_proto", "inner_sport", "inner_dport",
                 "malformed", "reason", "snapped", "skipped")

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
        self.stt_offset: Optional[int] = None       # STT segment offset (seq & 0xFFFF); a
        # continuation segment's vni is its first segment's context ID (ScanState)
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
        self.skipped: Optional[str] = None          # not examined: why (a link type scan
        # cannot read, on one interface of a pcapng file)

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
        if self.skipped:
            parts.append("skipped=%r" % self.skipped)
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
    """The frame and where its current layer's bytes end (IP length, caplen).

    Each parser checks ``pos + n > cur.end`` itself and raises _Short: an
    inline comparison, not a method call, on the per-packet path."""

    __slots__ = ("data", "end")

    def __init__(self, data: bytes, end: int) -> None:
        self.data = data
        self.end = end


def _l2(cur: _Cursor, rec: ScanRecord, linktype: int) -> Tuple[int, int]:
    """Link layer: returns (ethertype, offset of the network header)."""
    data = cur.data
    if linktype == LINKTYPE_ETHERNET:
        if 14 > cur.end:
            raise _Short("Ethernet header")
        ethertype, pos = _U16(data, 12)[0], 14
    elif linktype == LINKTYPE_LINUX_SLL:
        if 16 > cur.end:
            raise _Short("Linux cooked (SLL) header")
        ethertype, pos = _U16(data, 14)[0], 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if 20 > cur.end:
            raise _Short("Linux cooked (SLL2) header")
        ethertype, pos = _U16(data, 0)[0], 20
    elif linktype in (LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if 1 > cur.end:
            raise _Short("IP version")
        version = data[0] >> 4
        ethertype = ETH_P_IP if version == 4 else ETH_P_IPV6 if version == 6 else 0
        if ethertype == 0:
            raise _Bad("raw IP packet with version %d" % version)
        return ethertype, 0
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if 4 > cur.end:
            raise _Short("loopback header")
        family = _U32(data, 0)[0]
        if linktype == LINKTYPE_NULL and family > 0xFFFF:
            family = struct.unpack_from("<I", data, 0)[0]
        ethertype = ETH_P_IP if family == 2 else ETH_P_IPV6 if family in (10, 24, 28, 30) else 0
        return ethertype, 4
    else:  # pragma: no cover - parse_packet() skips unknown link types up front
        raise _Bad("unsupported link type %d" % linktype)
    vlans: List[int] = []
    while ethertype in VLAN_TPIDS and len(vlans) < 8:
        if pos + 4 > cur.end:
            raise _Short("VLAN tag")
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
        if pos + 20 > cur.end:
            raise _Short(layer + " IPv4 header")
        vihl = data[pos]
        if vihl >> 4 != 4:
            raise _Bad("%s IPv4 header with version %d" % (layer, vihl >> 4))
        ihl = (vihl & 0x0F) * 4
        if ihl < 20:
            raise _Bad("%s IPv4 header length %d < 20" % (layer, ihl))
        if pos + ihl > cur.end:
            raise _Short(layer + " IPv4 options")
        total = _U16(data, pos + 2)[0]
        if total:   # 0 is a TSO/BIG TCP super-packet: the capture length rules
            if total < ihl:
                raise _Bad("%s IPv4 total length %d < header length %d" % (layer, total, ihl))
            cur.end = min(cur.end, pos + total)
        frag = _U16(data, pos + 6)[0] & 0x1FFF
        return (data[pos + 9], pos + ihl, _ntop(_AF4, data[pos + 12:pos + 16]),
                _ntop(_AF4, data[pos + 16:pos + 20]), frag == 0)
    # IPv6
    if pos + 40 > cur.end:
        raise _Short(layer + " IPv6 header")
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
        if l4 + 8 > cur.end:
            raise _Short(layer + " IPv6 extension header")
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
        if pos + 14 > cur.end:
            raise _Short("inner Ethernet header")
        ethertype = _U16(data, pos + 12)[0]
        pos += 14
        tags = 0
        while ethertype in VLAN_TPIDS and tags < 8:
            if pos + 4 > cur.end:
                raise _Short("inner VLAN tag")
            ethertype = _U16(data, pos + 2)[0]
            pos += 4
            tags += 1
    rec.inner_ethertype = ethertype
    if ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return
    proto, l4, src, dst, first = _ip(cur, ethertype, pos, True)
    rec.inner_src, rec.inner_dst, rec.inner_proto = src, dst, proto
    if first and proto in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP):
        if l4 + 4 > cur.end:
            raise _Short("inner ports")
        rec.inner_sport, rec.inner_dport = _U16(data, l4)[0], _U16(data, l4 + 2)[0]


def _geneve(cur: _Cursor, rec: ScanRecord, pos: int) -> None:
    data = cur.data
    rec.kind = "geneve"
    if pos + 8 > cur.end:
        raise _Short("Geneve header")
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
        if opt + 4 > cur.end:
            raise _Short("Geneve option header")
        typ, length = data[opt + 2], data[opt + 3] & 0x1F
        options.append(GeneveOptionInfo(_U16(data, opt)[0], typ, bool(typ & 0x80), length))
        nxt = opt + 4 + length * 4
        if nxt > opt_end:
            rec.options = tuple(options)
            raise _Bad("Geneve option %d overruns Opt Len" % len(options))
        if opt + 4 + length * 4 > cur.end:
            raise _Short("Geneve option data")
        opt = nxt
    rec.options = tuple(options)
    if pos + opt_end - pos > cur.end:
        raise _Short("Geneve options")
    proto = rec.proto
    if proto == ETH_P_TEB:
        _inner(cur, rec, opt_end, None)
    elif proto in (ETH_P_IP, ETH_P_IPV6):
        _inner(cur, rec, opt_end, proto)


def _vxlan(cur: _Cursor, rec: ScanRecord, pos: int, gpe: bool) -> None:
    data = cur.data
    rec.kind = "vxlan-gpe" if gpe else "vxlan"
    if pos + 8 > cur.end:
        raise _Short("VXLAN-GPE header" if gpe else "VXLAN header")
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
    if pos + 8 > cur.end:
        raise _Short("outer UDP header")
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
            if pos + 12 > cur.end:
                raise _Short("L2TPv3 control header")
            return
        rec.control = False
        if pos + 8 > cur.end:
            raise _Short("L2TPv3 data header")
        rec.vni = _U32(data, pos + 4)[0]
        _l2tp_payload(cur, rec, pos + 8, l2tp_cookie, l2tp_l2ss)


def _l2tp_payload(cur: _Cursor, rec: ScanRecord, pos: int, cookie: int, l2ss: bool) -> None:
    pos += cookie + (4 if l2ss else 0)
    if pos > cur.end:
        raise _Short("L2TPv3 cookie")
    _inner(cur, rec, pos, None)


def _stt(cur: _Cursor, rec: ScanRecord, pos: int, state: Optional[ScanState]) -> None:
    data = cur.data
    rec.kind = "stt"
    if pos + 20 > cur.end:
        raise _Short("STT TCP-like header")
    rec.outer_sport, rec.outer_dport = _U16(data, pos)[0], _U16(data, pos + 2)[0]
    rec.stt_offset = _U32(data, pos + 4)[0] & 0xFFFF
    key = (rec.outer_src, rec.outer_dst, _U32(data, pos + 8)[0])
    doff = (data[pos + 12] >> 4) * 4
    if doff < 20:
        raise _Bad("STT TCP data offset %d < 20" % doff)
    if pos + doff > cur.end:
        raise _Short("STT TCP-like header")
    if rec.stt_offset:
        # A continuation segment: the STT header is in the first one.
        if state is not None:
            rec.vni = state.stt.get(key)
        return
    hdr = pos + doff
    if hdr + STT_HDR_LEN > cur.end:
        raise _Short("STT frame header")
    rec.vni = _U64(data, hdr + 8)[0]
    if state is not None:
        state.learn_stt(key, rec.vni)
    if data[hdr]:
        raise _Bad("STT version %d (only 0 is defined)" % data[hdr])
    _inner(cur, rec, hdr + STT_HDR_LEN, None)


def _nvgre(cur: _Cursor, rec: ScanRecord, pos: int) -> None:
    data = cur.data
    if pos + 4 > cur.end:
        raise _Short("GRE header")
    flags, proto = _U16(data, pos)[0], _U16(data, pos + 2)[0]
    if not (flags & GRE_K and proto == ETH_P_TEB and flags & GRE_VER == 0):
        return   # GRE, but not NVGRE
    rec.kind = "nvgre"
    key = pos + (8 if flags & (GRE_C | GRE_R) else 4)
    if key + 4 > cur.end:
        raise _Short("NVGRE key")
    value = _U32(data, key)[0]
    rec.vni, rec.flow_id = value >> 8, value & 0xFF
    if flags & (GRE_C | GRE_R | GRE_S):
        raise _Bad("NVGRE with C, R or S set (RFC 7637 fixes C=0, S=0: an 8-byte header)")
    _inner(cur, rec, key + 4, None)


def parse_packet(data: bytes, linktype: int = LINKTYPE_ETHERNET,
                 wirelen: Optional[int] = None, ports: Ports = DEFAULT_PORTS,
                 l2tp_cookie: int = 0, l2tp_l2ss: bool = False,
                 record: Optional[ScanRecord] = None,
                 state: Optional[ScanState] = None) -> ScanRecord:
    """Parse one captured frame into a :class:`ScanRecord`; never raises.

    ``l2tp_cookie`` (0, 4 or 8 bytes) and ``l2tp_l2ss`` (Default L2-Specific
    Sublayer present) say how to find the Ethernet frame in L2TPv3 data
    packets: neither is on the wire (RFC 3931 §4.1).  ``state`` (a
    :class:`ScanState` shared by the packets of one capture) lets STT
    continuation segments inherit the context ID of their first segment.
    """
    rec = record if record is not None else ScanRecord(
        caplen=len(data), wirelen=len(data) if wirelen is None else wirelen, linktype=linktype)
    if linktype not in SUPPORTED_LINKTYPES:
        rec.skipped = "link type %s is not supported" % _linktype_name(linktype)
        return rec
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
                _stt(cur, rec, l4, state)
            elif cur.end >= l4 + 4:
                rec.outer_sport, rec.outer_dport = _U16(data, l4)[0], _U16(data, l4 + 2)[0]
        elif proto == IPPROTO_GRE:
            _nvgre(cur, rec, l4)
        elif proto == IPPROTO_L2TP:
            rec.kind = "l2tpv3"
            if l4 + 4 > cur.end:
                raise _Short("L2TPv3 session ID")
            session = _U32(data, l4)[0]
            rec.control = session == 0
            if not session:
                if l4 + 4 + 12 > cur.end:
                    raise _Short("L2TPv3 control header")
            else:
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


def _linktype_name(linktype: int) -> str:
    name = LINKTYPE_NAMES.get(linktype)
    return "%d (%s)" % (linktype, name) if name else "%d" % linktype


class _LinkTypes:
    """Which packets of a capture scan can read, checked batch by batch.

    A pcap has one link type: if scan cannot read it, the file is an error at
    its first packet.  A pcapng may mix interfaces (``dumpcap -i eth0 -i
    usbmon0``): the packets of an interface scan cannot read are skipped
    (``ScanRecord.skipped``, counted by the stats) and the others are read; the
    file is an error only if it ends with every packet skipped.
    """

    __slots__ = ("reader", "packets", "skipped", "first")

    def __init__(self, reader: CaptureReader) -> None:
        self.reader = reader
        self.packets = 0
        self.skipped = 0
        self.first: Optional[Tuple[int, int, int]] = None   # (link type, offset, packet)

    def _error(self, linktype: int, offset: int, packet: int, what: str) -> CaptureError:
        return CaptureError("%s link type %s (scan reads Ethernet, Linux cooked SLL/SLL2, "
                            "raw IP and loopback)" % (what, _linktype_name(linktype)),
                            path=self.reader.path, offset=offset, packet=packet)

    def check(self, batch: Batch) -> None:
        """Raise for a pcap of an unsupported link type; count a pcapng's skips."""
        n = len(batch)
        self.packets += n
        if batch._fields is None:   # classic pcap: one link type for the file
            if n and batch.pcap_linktype not in SUPPORTED_LINKTYPES:
                raise self._error(batch.pcap_linktype, batch.base + batch.starts[0],
                                  batch.first, "unsupported")
            return
        np = _numpy()
        linktype = np.frombuffer(batch.fields[5], dtype=np.int64) if n else np.zeros(0, int)
        bad = ~np.isin(linktype, _SUPPORTED_LIST)
        if bad.any():
            self.skipped += int(bad.sum())
            if self.first is None:
                i = int(np.argmax(bad))
                self.first = (int(linktype[i]), batch.base + batch.starts[i], batch.first + i)

    def finish(self) -> None:
        """At the end of the file: raise if no packet could be read at all."""
        if self.packets and self.skipped == self.packets and self.first is not None:
            raise self._error(*self.first, "no packet scan can read: every interface "
                                            "has an unsupported")


def scan(path: Union[str, "os.PathLike[str]"], ports: Ports = DEFAULT_PORTS,
         l2tp_cookie: int = 0, l2tp_l2ss: bool = False,
         vectorised: bool = True) -> Iterator[ScanRecord]:
    """Yield a :class:`ScanRecord` for every packet of a pcap/pcapng file.

    Streams: memory does not grow with the file.  A damaged file raises
    :class:`CaptureError` (naming the file, byte offset and packet number)
    after every packet before the damage has been yielded.  So does a pcap
    of a link type scan cannot read; in a pcapng, the packets of such an
    interface are yielded with ``skipped`` set (the reason) and the other
    interfaces are read as usual.

    Each chunk is first parsed for all its packets at once (numpy) and the
    records are built from those columns; packets that are not plain go
    through :func:`parse_packet`.  ``vectorised=False`` runs
    :func:`parse_packet` on every packet (the reference; same records).
    """
    state = ScanState()
    with open_capture(path) as reader:
        links = _LinkTypes(reader)
        for batch in reader.batches():
            links.check(batch)
            if vectorised:
                res = analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state, detail=True)
                yield from _build_records(batch, res)
                del res
                continue
            data_off, _ends, caplen, wirelen, ts_ns, linktype, iface = batch.fields
            buf, base, first, starts = batch.buf, batch.base, batch.first, batch.starts
            for i in range(len(starts)):
                d = data_off[i]
                ts = ts_ns[i]
                rec = ScanRecord(first + i, base + starts[i], None if ts == _NO_TS else ts,
                                 caplen[i], wirelen[i], linktype[i], iface[i])
                yield parse_packet(bytes(buf[d:d + caplen[i]]), linktype[i], ports=ports,
                                   l2tp_cookie=l2tp_cookie, l2tp_l2ss=l2tp_l2ss, record=rec,
                                   state=state)
        links.finish()


def _build_records(batch: Batch, res: "BatchResult") -> Iterator[ScanRecord]:
    """ScanRecords of one batch from :func:`analyse_batch`'s detail columns."""
    np = _numpy()
    det: Dict[str, Any] = res.detail or {}
    n = res.n
    if not n:
        return
    buf, base, first, starts = batch.buf, batch.base, batch.first, batch.starts
    iface = [0] * n if batch._fields is None else batch.fields[6]
    ts_col, caplen, wirelen, linktype = (res.ts_ns.tolist(), res.caplen.tolist(),
                                         res.wirelen.tolist(), res.linktype.tolist())
    ok = det["ok"]
    records = det["records"]
    # Geneve options of the plain packets, grouped per packet in wire order.
    opts: Dict[int, Tuple[GeneveOptionInfo, ...]] = {}
    if len(res.opt_pkt):
        mine = ok[res.opt_pkt]
        pkt = res.opt_pkt[mine]
        order = np.argsort(pkt, kind="stable")
        pkt = pkt[order].tolist()
        triples = list(zip(res.opt_class[mine][order].tolist(),
                           res.opt_type[mine][order].tolist(),
                           res.opt_len[mine][order].tolist()))
        cache: Dict[Tuple[Tuple[int, int, int], ...], Tuple[GeneveOptionInfo, ...]] = {}
        k, total = 0, len(pkt)
        while k < total:
            j = k
            owner = pkt[k]
            while j < total and pkt[j] == owner:
                j += 1
            key = tuple(triples[k:j])
            value = cache.get(key)
            if value is None:
                value = cache[key] = tuple(GeneveOptionInfo(c, t, bool(t & 0x80), ln)
                                           for c, t, ln in key)
            opts[owner] = value
            k = j
    cols = [det[name].tolist() for name in (
        "l3", "vlan_n", "vlan1", "vlan2", "sport", "dport", "proto", "flow", "control",
        "inner_ethertype", "inner_pos", "inner_version", "inner_proto", "inner_sport",
        "inner_dport")]
    kind_col, vni_col, has_vni = res.kind.tolist(), res.vni.tolist(), res.has_vni.tolist()
    crit_col, oam_col, outer_col = res.crit.tolist(), res.oam.tolist(), res.outer_ip.tolist()
    proto_col = _outer_protocols(np, batch, res, det)
    ok_col = ok.tolist()
    ntop, af4, af6 = _ntop, _AF4, _AF6
    names = _KIND_NAME
    for i, (l3, vlan_n, vlan1, vlan2, sport, dport, proto, flow, control, iet, ipos, iver,
            iproto, isport, idport) in enumerate(zip(*cols)):
        ts = ts_col[i]
        if not ok_col[i]:
            rec = records[i]
            rec.number, rec.offset = first + i, base + starts[i]
            rec.ts_ns = None if ts == _NO_TS else ts
            rec.interface = iface[i]
            yield rec
            continue
        rec = ScanRecord(first + i, base + starts[i], None if ts == _NO_TS else ts,
                         caplen[i], wirelen[i], linktype[i], iface[i])
        if vlan_n:
            rec.vlans = (vlan1,) if vlan_n == 1 else (vlan1, vlan2)
        outer = outer_col[i]
        if outer == 4:
            rec.outer_ip = 4
            rec.outer_src = ntop(af4, buf[l3 + 12:l3 + 16])
            rec.outer_dst = ntop(af4, buf[l3 + 16:l3 + 20])
            rec.outer_proto = proto_col[i]
        elif outer == 6:
            rec.outer_ip = 6
            rec.outer_src = ntop(af6, buf[l3 + 8:l3 + 24])
            rec.outer_dst = ntop(af6, buf[l3 + 24:l3 + 40])
            rec.outer_proto = proto_col[i]
        if sport >= 0:
            rec.outer_sport, rec.outer_dport = sport, dport
        code = kind_col[i]
        if code:
            rec.kind = names[code]
            if has_vni[i]:
                rec.vni = vni_col[i]
            if code == 1:
                rec.oam, rec.critical, rec.proto = oam_col[i], crit_col[i], proto
                rec.options = opts.get(i, ())
            elif code == 3:
                rec.oam = oam_col[i]
                if proto >= 0:
                    rec.proto = proto
            elif code == 4:
                rec.flow_id = flow
            elif code == 6:
                rec.control = bool(control)
        if iet >= 0:
            rec.inner_ethertype = iet
            if ipos >= 0:
                if iver == 4:
                    rec.inner_src = ntop(af4, buf[ipos + 12:ipos + 16])
                    rec.inner_dst = ntop(af4, buf[ipos + 16:ipos + 20])
                else:
                    rec.inner_src = ntop(af6, buf[ipos + 8:ipos + 24])
                    rec.inner_dst = ntop(af6, buf[ipos + 24:ipos + 40])
                rec.inner_proto = iproto
                if isport >= 0:
                    rec.inner_sport, rec.inner_dport = isport, idport
        yield rec


def _outer_protocols(np: Any, batch: Batch, res: "BatchResult", det: Dict[str, Any]) -> List[int]:
    """The outer IP protocol (IPv4) or next header (IPv6) of each plain packet."""
    B = np.frombuffer(batch.buf, dtype=np.uint8)
    l3 = det["l3"]
    at = np.where(res.outer_ip == 6, l3 + 6, l3 + 9)
    out: List[int] = B.take(at, mode="clip").tolist()
    return out


# -- the vectorised path (numpy) ------------------------------------------------------
# Each batch of records is parsed for all packets at once: positions are int64
# arrays, fields are gathered with fancy indexing.  A packet that is not plain
# (anything the per-packet parser would call malformed or truncated, a third
# VLAN tag, IPv6 extension headers, loopback link types...) is handed to
# parse_packet() instead, so both paths agree by construction.

_KIND_CODE = {None: 0, "geneve": 1, "vxlan": 2, "vxlan-gpe": 3, "nvgre": 4, "stt": 5,
              "l2tpv3": 6}
_KIND_NAME = {code: name for name, code in _KIND_CODE.items()}
_VEC_LINKTYPES = (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW,
                  LINKTYPE_IPV4, LINKTYPE_IPV6, 12, 14)
_NO_INNER = -1
_INNER_NONIP = 0x10000      # inner key = 0x10000 | EtherType for non-IP inner frames
_NO_TS = -(1 << 63)
_TABLE_CELLS = 1 << 22    # largest packet x option table stats builds per batch


def _numpy() -> Any:
    import numpy
    return numpy


class BatchResult:
    """Per-packet arrays for one batch (what stats and filter need).

    ``kind`` holds codes (0 = no tunnel, then geneve, vxlan, vxlan-gpe, nvgre,
    stt, l2tpv3); options are flattened into ``opt_pkt``/``opt_class``/
    ``opt_type``/``opt_len`` with the packet index they belong to.
    """

    __slots__ = ("n", "kind", "vni", "has_vni", "crit", "oam", "inner", "outer_ip",
                 "malformed", "snapped", "skipped", "reasons", "wirelen", "caplen", "ts_ns",
                 "linktype", "opt_pkt", "opt_class", "opt_type", "opt_len", "fallback",
                 "first", "detail")
    n: int                  # packets in the batch
    first: int              # number of its first packet
    fallback: int           # packets parse_packet() parsed
    reasons: Dict[int, str]     # packet index -> why it is malformed
    detail: Optional[Dict[str, Any]]
    # numpy arrays, one item per packet (opt_*: one per option)
    kind: Any
    vni: Any
    has_vni: Any
    crit: Any
    oam: Any
    inner: Any
    outer_ip: Any
    malformed: Any
    snapped: Any
    skipped: Any
    wirelen: Any
    caplen: Any
    ts_ns: Any
    linktype: Any
    opt_pkt: Any
    opt_class: Any
    opt_type: Any
    opt_len: Any


def _pcap_header_arrays(np: Any, batch: Batch) -> Tuple[Any, ...]:
    B = np.frombuffer(batch.buf, dtype=np.uint8)
    starts = np.frombuffer(batch.starts, dtype=np.int64)
    hdr = B.take(starts[:, None] + np.arange(16, dtype=np.int64))   # (n, 16) record headers
    words = hdr.view(np.dtype(batch.endian + "u4"))
    caplen, wirelen = words[:, 2].astype(np.int64), words[:, 3].astype(np.int64)
    ts_ns = words[:, 0].astype(np.int64) * 1000000000 + words[:, 1].astype(np.int64) * batch.ts_mult
    data_off = starts + 16
    linktype = np.full(len(starts), batch.pcap_linktype, dtype=np.int64)
    return data_off, caplen, wirelen, ts_ns, linktype


def analyse_batch(batch: Batch, ports: Ports = DEFAULT_PORTS, l2tp_cookie: int = 0,
                  l2tp_l2ss: bool = False, state: Optional[ScanState] = None,
                  detail: bool = False) -> BatchResult:
    """Parse every packet of BATCH at once; returns a :class:`BatchResult`.

    With a ``state``, STT packets go through the per-packet parser, in order,
    so continuation segments inherit their frame's context ID.  With
    ``detail``, ``res.detail`` also holds what :func:`scan` needs to build a
    full :class:`ScanRecord` per packet (positions, ports, VLAN IDs, inner
    headers) and the per-packet parser's records of the packets it parsed.
    """
    np = _numpy()
    if batch._fields is None:
        data_off, caplen, wirelen, ts_ns, linktype = _pcap_header_arrays(np, batch)
    else:
        f = batch._fields
        data_off, caplen, wirelen, ts_ns, linktype = (
            np.frombuffer(f[i], dtype=np.int64) if len(f[i]) else np.zeros(0, np.int64)
            for i in (0, 2, 3, 4, 5))
    n = len(data_off)
    B = np.frombuffer(batch.buf, dtype=np.uint8)

    def g8(p: Any) -> Any:
        return B.take(p, mode="clip").astype(np.int64)

    def g16(p: Any) -> Any:
        return (g8(p) << 8) | g8(p + 1)

    def g32(p: Any) -> Any:
        return (g16(p) << 16) | g16(p + 2)

    res = BatchResult()
    res.n = n
    res.first = batch.first
    res.detail = None
    if detail:
        def column(value: int = -1) -> Any:
            return np.full(n, value, np.int64)
        d_vlan_n, d_vlan1, d_vlan2 = column(0), column(), column()
        d_sport, d_dport, d_proto, d_flow, d_control = (column() for _ in range(5))
        d_iet, d_ipos, d_iver, d_iproto, d_isport, d_idport = (column() for _ in range(6))
    res.wirelen, res.caplen, res.ts_ns, res.linktype = wirelen, caplen, ts_ns, linktype
    kind = np.zeros(n, np.int8)
    vni = np.zeros(n, np.uint64)
    has_vni = np.zeros(n, bool)
    crit = np.zeros(n, bool)
    oam = np.zeros(n, bool)
    inner = np.full(n, _NO_INNER, np.int64)
    outer_ip = np.zeros(n, np.int8)
    ok = np.ones(n, bool)                      # False: hand to parse_packet()
    opt_parts: List[Tuple[Any, Any, Any, Any]] = []

    def fail(idx: Any, bad: Any) -> Any:
        """Mark idx[bad] for the per-packet parser; return the remaining idx mask."""
        if bad.any():
            ok[idx[bad]] = False
        return ~bad

    # -- link layer ------------------------------------------------------------
    et_all = np.zeros(n, np.int64)
    l3_all = np.zeros(n, np.int64)
    valid = np.zeros(n, bool)
    end = data_off + caplen
    linktypes = np.unique(linktype).tolist()
    for lt in linktypes:
        idx = np.arange(n) if len(linktypes) == 1 else np.nonzero(linktype == lt)[0]
        s, e = data_off[idx], end[idx]
        if lt == LINKTYPE_ETHERNET:
            good, et, l3 = s + 14 <= e, g16(s + 12), s + 14
        elif lt == LINKTYPE_LINUX_SLL:
            good, et, l3 = s + 16 <= e, g16(s + 14), s + 16
        elif lt == LINKTYPE_LINUX_SLL2:
            good, et, l3 = s + 20 <= e, g16(s), s + 20
        elif lt in _VEC_LINKTYPES:   # raw IP
            v = g8(s) >> 4
            good = (s < e) & ((v == 4) | (v == 6))
            et, l3 = np.where(v == 4, ETH_P_IP, ETH_P_IPV6), s
        else:
            ok[idx] = False
            continue
        if lt in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2):
            for round_ in range(2):
                tag = (et == ETH_P_8021Q) | (et == ETH_P_8021AD) | (et == ETH_P_QINQ1)
                if not tag.any():
                    break
                if detail:
                    tagged = idx[tag]
                    (d_vlan1 if round_ == 0 else d_vlan2)[tagged] = g16(l3[tag]) & 0x0FFF
                    d_vlan_n[tagged] = round_ + 1
                good &= ~tag | (l3 + 4 <= e)
                et = np.where(tag, g16(l3 + 2), et)
                l3 = np.where(tag, l3 + 4, l3)
            good &= (et != ETH_P_8021Q) & (et != ETH_P_8021AD) & (et != ETH_P_QINQ1)
        ok[idx[~good]] = False
        valid[idx] = good
        et_all[idx], l3_all[idx] = et, l3

    # -- outer IP ----------------------------------------------------------------
    is4 = valid & (et_all == ETH_P_IP)
    is6 = valid & (et_all == ETH_P_IPV6)
    proto = np.full(n, -1, np.int64)
    l4 = np.zeros(n, np.int64)
    first = np.zeros(n, bool)
    if is4.any():
        idx = np.nonzero(is4)[0]
        l3, e = l3_all[idx], end[idx]
        vihl = g8(l3)
        ihl = (vihl & 0x0F) * 4
        tot = g16(l3 + 2)
        bad = (l3 + 20 > e) | (vihl >> 4 != 4) | (ihl < 20) | (l3 + ihl > e) | \
            ((tot > 0) & (tot < ihl))
        keep = fail(idx, bad)
        idx, l3, ihl, tot, e = idx[keep], l3[keep], ihl[keep], tot[keep], e[keep]
        end[idx] = np.where(tot > 0, np.minimum(e, l3 + tot), e)
        proto[idx] = g8(l3 + 9)
        l4[idx] = l3 + ihl
        first[idx] = (g16(l3 + 6) & 0x1FFF) == 0
        outer_ip[idx] = 4
    if is6.any():
        idx = np.nonzero(is6)[0]
        l3, e = l3_all[idx], end[idx]
        nh = g8(l3 + 6)
        bad = (l3 + 40 > e) | (g8(l3) >> 4 != 6) | np.isin(nh, list(IPV6_EXT))
        keep = fail(idx, bad)
        idx, l3, e, nh = idx[keep], l3[keep], e[keep], nh[keep]
        plen = g16(l3 + 4)
        end[idx] = np.where(plen > 0, np.minimum(e, l3 + 40 + plen), e)
        proto[idx] = nh
        l4[idx] = l3 + 40
        first[idx] = True
        outer_ip[idx] = 6
    live = ok & first

    # inner work list: (packet index, position, 0 = Ethernet / 4 / 6)
    inner_parts: List[Tuple[Any, Any, Any]] = []

    def add_inner(idx: Any, pos: Any, what: Any) -> None:
        if len(idx):
            inner_parts.append((idx, pos, what))

    # -- UDP tunnels ---------------------------------------------------------------------
    udp = live & (proto == IPPROTO_UDP)
    if udp.any():
        idx = np.nonzero(udp)[0]
        u, e = l4[idx], end[idx]
        keep = fail(idx, u + 8 > e)
        idx, u, e = idx[keep], u[keep], e[keep]
        sport, dport = g16(u), g16(u + 2)
        if detail:
            d_sport[idx], d_dport[idx] = sport, dport
        p = u + 8
        m_gnv = np.isin(dport, list(ports.geneve))
        m_vx = np.isin(dport, list(ports.vxlan)) & ~m_gnv
        m_gpe = np.isin(dport, list(ports.gpe)) & ~m_gnv & ~m_vx
        m_l2 = (np.isin(dport, list(ports.l2tp)) | np.isin(sport, list(ports.l2tp))) & \
            ~m_gnv & ~m_vx & ~m_gpe
        if m_gnv.any():
            gi, gp, ge = idx[m_gnv], p[m_gnv], e[m_gnv]
            kind[gi] = 1
            b0 = g8(gp)
            oend = gp + 8 + (b0 & 0x3F) * 4
            keep = fail(gi, (gp + 8 > ge) | (b0 >> 6 != 0) | (oend > ge))
            gi, gp, ge, oend = gi[keep], gp[keep], ge[keep], oend[keep]
            b1 = g8(gp + 1)
            crit[gi], oam[gi] = (b1 & 0x40) != 0, (b1 & 0x80) != 0
            vni[gi] = (g32(gp + 4) >> 8).astype(np.uint64)
            has_vni[gi] = True
            # options, walked one option index at a time for all packets
            q = gp + 8
            act = np.nonzero(q < oend)[0]
            while len(act):
                qa = q[act]
                cls, typ, ln = g16(qa), g8(qa + 2), g8(qa + 3) & 0x1F
                nq = qa + 4 + ln * 4
                over = nq > oend[act]
                if over.any():
                    ok[gi[act[over]]] = False
                opt_parts.append((gi[act], cls, typ, ln))
                q[act] = nq
                act = act[~over]
                act = act[q[act] < oend[act]]
            gproto = g16(gp + 2)
            if detail:
                d_proto[gi] = gproto
            for value, what in ((ETH_P_TEB, 0), (ETH_P_IP, 4), (ETH_P_IPV6, 6)):
                sel = gproto == value
                add_inner(gi[sel], oend[sel], what)
        for sel, code in ((m_vx, 2), (m_gpe, 3)):
            if not sel.any():
                continue
            vi, vp, ve = idx[sel], p[sel], e[sel]
            kind[vi] = code
            flags = g8(vp)
            bad = (vp + 8 > ve) | ((flags & 0x08) == 0)
            if code == 3:
                bad |= ((flags >> 4) & 0x03) != 0
            keep = fail(vi, bad)
            vi, vp, flags = vi[keep], vp[keep], flags[keep]
            vni[vi] = (g32(vp + 4) >> 8).astype(np.uint64)
            has_vni[vi] = True
            if code == 2:
                add_inner(vi, vp + 8, np.zeros(len(vi), np.int64))
                continue
            oam[vi] = (flags & 0x01) != 0
            nxt = g8(vp + 3)
            pbit = (flags & 0x04) != 0
            if detail:
                d_proto[vi[pbit]] = nxt[pbit]
            what = np.where(~pbit | (nxt == 3), 0, np.where(nxt == 1, 4, np.where(nxt == 2, 6, -1)))
            sel2 = what >= 0
            add_inner(vi[sel2], vp[sel2] + 8, what[sel2])
        if m_l2.any():
            li, lp, le = idx[m_l2], p[m_l2], e[m_l2]
            v3 = (lp + 2 <= le) & ((g16(lp) & 0x000F) == 3)
            li, lp, le = li[v3], lp[v3], le[v3]
            kind[li] = 6
            data = (g16(lp) & 0x8000) == 0
            if detail:
                d_control[li] = np.where(data, 0, 1)
            fail(li, ~data & (lp + 12 > le))          # short control header
            li, lp, le = li[data], lp[data], le[data]
            keep = fail(li, lp + 8 > le)
            li, lp = li[keep], lp[keep]
            vni[li] = g32(lp + 4).astype(np.uint64)
            has_vni[li] = True
            add_inner(li, lp + 8 + l2tp_cookie + (4 if l2tp_l2ss else 0),
                      np.zeros(len(li), np.int64))

    # -- STT (TCP) -------------------------------------------------------------------
    tcp = live & (proto == IPPROTO_TCP)
    if tcp.any():
        idx = np.nonzero(tcp)[0]
        t, e = l4[idx], end[idx]
        sel = (t + 4 <= e) & np.isin(g16(t + 2), list(ports.stt))
        if detail:
            has = t + 4 <= e
            d_sport[idx[has]], d_dport[idx[has]] = g16(t[has]), g16(t[has] + 2)
        idx, t, e = idx[sel], t[sel], e[sel]
        kind[idx] = 5
        if state is not None or detail:   # context IDs flow between segments: in order
            ok[idx] = False
            idx = idx[:0]
            t, e = t[:0], e[:0]
        doff = (g8(t + 12) >> 4) * 4
        keep = fail(idx, (t + 20 > e) | (doff < 20) | (t + doff > e))
        idx, t, e, doff = idx[keep], t[keep], e[keep], doff[keep]
        head = g16(t + 6) == 0
        idx, hdr, e = idx[head], (t + doff)[head], e[head]
        keep = fail(idx, (hdr + STT_HDR_LEN > e) | (g8(hdr) != 0))
        idx, hdr = idx[keep], hdr[keep]
        vni[idx] = (g32(hdr + 8).astype(np.uint64) << np.uint64(32)) | \
            g32(hdr + 12).astype(np.uint64)
        has_vni[idx] = True
        add_inner(idx, hdr + STT_HDR_LEN, np.zeros(len(idx), np.int64))

    # -- NVGRE ---------------------------------------------------------------------
    gre = live & (proto == IPPROTO_GRE)
    if gre.any():
        idx = np.nonzero(gre)[0]
        t, e = l4[idx], end[idx]
        keep = fail(idx, t + 4 > e)
        idx, t, e = idx[keep], t[keep], e[keep]
        flags = g16(t)
        sel = ((flags & GRE_K) != 0) & (g16(t + 2) == ETH_P_TEB) & ((flags & GRE_VER) == 0)
        idx, t, e, flags = idx[sel], t[sel], e[sel], flags[sel]
        kind[idx] = 4
        keep = fail(idx, ((flags & (GRE_C | GRE_R | GRE_S)) != 0) | (t + 8 > e))
        idx, t = idx[keep], t[keep]
        vni[idx] = (g32(t + 4) >> 8).astype(np.uint64)
        has_vni[idx] = True
        if detail:
            d_flow[idx] = g32(t + 4) & 0xFF
        add_inner(idx, t + 8, np.zeros(len(idx), np.int64))

    # -- L2TPv3 over IP ----------------------------------------------------------------
    l2ip = live & (proto == IPPROTO_L2TP)
    if l2ip.any():
        idx = np.nonzero(l2ip)[0]
        t, e = l4[idx], end[idx]
        kind[idx] = 6
        keep = fail(idx, t + 4 > e)
        idx, t = idx[keep], t[keep]
        session = g32(t)
        data = session != 0
        if detail:
            d_control[idx] = np.where(data, 0, 1)
        fail(idx, ~data & (t + 16 > e[keep]))      # short control header
        idx, t, session = idx[data], t[data], session[data]
        vni[idx] = session.astype(np.uint64)
        has_vni[idx] = True
        add_inner(idx, t + 4 + l2tp_cookie + (4 if l2tp_l2ss else 0),
                  np.zeros(len(idx), np.int64))

    # -- inner frames ----------------------------------------------------------------
    if inner_parts:
        idx = np.concatenate([part[0] for part in inner_parts])
        pos = np.concatenate([part[1] for part in inner_parts])
        what = np.concatenate([np.broadcast_to(np.asarray(part[2]), part[0].shape)
                               for part in inner_parts])
        keep = ok[idx]
        idx, pos, what = idx[keep], pos[keep], what[keep]
        e = end[idx]
        eth = what == 0
        if detail:
            d_iet[idx] = np.where(what == 4, ETH_P_IP, np.where(what == 6, ETH_P_IPV6, -1))
        if eth.any():
            ei, ep, ee = np.nonzero(eth)[0], pos[eth], e[eth]
            good = ep + 14 <= ee
            et = g16(ep + 12)
            ep = ep + 14
            for _ in range(2):
                tag = (et == ETH_P_8021Q) | (et == ETH_P_8021AD) | (et == ETH_P_QINQ1)
                if not tag.any():
                    break
                good &= ~tag | (ep + 4 <= ee)
                et = np.where(tag, g16(ep + 2), et)
                ep = np.where(tag, ep + 4, ep)
            good &= (et != ETH_P_8021Q) & (et != ETH_P_8021AD) & (et != ETH_P_QINQ1)
            ok[idx[ei[~good]]] = False
            if detail:
                d_iet[idx[ei]] = et
            pos[ei] = ep
            what[ei] = np.where(et == ETH_P_IP, 4, np.where(et == ETH_P_IPV6, 6, -1))
            nonip = good & (what[ei] == -1)
            inner[idx[ei[nonip]]] = _INNER_NONIP | et[nonip]
        for version in (4, 6):
            sel = (what == version) & ok[idx]
            if not sel.any():
                continue
            ii, ip, ie = idx[sel], pos[sel], e[sel]
            if version == 4:
                vihl = g8(ip)
                ihl = (vihl & 0x0F) * 4
                tot = g16(ip + 2)
                bad = (ip + 20 > ie) | (vihl >> 4 != 4) | (ihl < 20) | (ip + ihl > ie) | \
                    ((tot > 0) & (tot < ihl))
                ie = np.where(tot > 0, np.minimum(ie, ip + tot), ie)
                p_ = g8(ip + 9)
                l4i = ip + ihl
                firsti = (g16(ip + 6) & 0x1FFF) == 0
            else:
                p_ = g8(ip + 6)
                bad = (ip + 40 > ie) | (g8(ip) >> 4 != 6) | np.isin(p_, list(IPV6_EXT))
                plen = g16(ip + 4)
                ie = np.where(plen > 0, np.minimum(ie, ip + 40 + plen), ie)
                l4i = ip + 40
                firsti = np.ones(len(ii), bool)
            ported = firsti & ((p_ == IPPROTO_TCP) | (p_ == IPPROTO_UDP) | (p_ == IPPROTO_SCTP))
            bad |= ported & (l4i + 4 > ie)
            ok[ii[bad]] = False
            inner[ii[~bad]] = p_[~bad]
            if detail:
                d_ipos[ii], d_iver[ii], d_iproto[ii] = ip, version, p_
                d_isport[ii[ported]] = g16(l4i[ported])
                d_idport[ii[ported]] = g16(l4i[ported] + 2)

    # -- options of plain packets; parse the others one by one --------------------------------
    if opt_parts:
        opt_pkt = np.concatenate([part[0] for part in opt_parts])
        opt_class = np.concatenate([part[1] for part in opt_parts])
        opt_type = np.concatenate([part[2] for part in opt_parts])
        opt_len = np.concatenate([part[3] for part in opt_parts])
        keep = ok[opt_pkt]
        opt_pkt, opt_class, opt_type, opt_len = (opt_pkt[keep], opt_class[keep],
                                                 opt_type[keep], opt_len[keep])
    else:
        opt_pkt = opt_class = opt_type = opt_len = np.zeros(0, np.int64)
    malformed = np.zeros(n, bool)
    snapped = np.zeros(n, bool)
    skipped = np.zeros(n, bool)
    reasons: Dict[int, str] = {}
    fallback = np.nonzero(~ok)[0]
    records: Dict[int, ScanRecord] = {}
    if len(fallback):
        extra: List[Tuple[int, int, int, int]] = []
        buf = batch.buf
        for i in fallback.tolist():
            d, c = int(data_off[i]), int(caplen[i])
            rec = parse_packet(bytes(buf[d:d + c]), int(linktype[i]), int(wirelen[i]), ports,
                               l2tp_cookie, l2tp_l2ss, state=state)
            if detail:
                records[i] = rec
            kind[i] = _KIND_CODE[rec.kind]
            has_vni[i] = rec.vni is not None
            vni[i] = rec.vni or 0
            crit[i] = bool(rec.critical)
            oam[i] = bool(rec.oam)
            outer_ip[i] = rec.outer_ip or 0
            inner[i] = _record_inner_key(rec)
            malformed[i] = rec.malformed
            snapped[i] = rec.snapped
            skipped[i] = rec.skipped is not None
            if rec.malformed:
                reasons[i] = rec.reason or "malformed"
            for opt in rec.options:
                extra.append((i, opt.classid, opt.type, opt.length))
        if extra:
            arr = np.array(extra, dtype=np.int64)
            opt_pkt = np.concatenate([opt_pkt, arr[:, 0]])
            opt_class = np.concatenate([opt_class, arr[:, 1]])
            opt_type = np.concatenate([opt_type, arr[:, 2]])
            opt_len = np.concatenate([opt_len, arr[:, 3]])
    res.kind, res.vni, res.has_vni, res.crit, res.oam = kind, vni, has_vni, crit, oam
    res.inner, res.outer_ip, res.malformed, res.snapped, res.reasons = (
        inner, outer_ip, malformed, snapped, reasons)
    res.skipped = skipped
    res.opt_pkt, res.opt_class, res.opt_type, res.opt_len = opt_pkt, opt_class, opt_type, opt_len
    res.fallback = len(fallback)
    if detail:
        res.detail = {"ok": ok, "l3": l3_all, "records": records,
                      "vlan_n": d_vlan_n, "vlan1": d_vlan1, "vlan2": d_vlan2,
                      "sport": d_sport, "dport": d_dport, "proto": d_proto, "flow": d_flow,
                      "control": d_control, "inner_ethertype": d_iet, "inner_pos": d_ipos,
                      "inner_version": d_iver, "inner_proto": d_iproto,
                      "inner_sport": d_isport, "inner_dport": d_idport}
    return res


def _record_inner_key(rec: ScanRecord) -> int:
    if rec.inner_proto is not None:
        return rec.inner_proto
    if rec.inner_ethertype is not None and rec.inner_ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return _INNER_NONIP | rec.inner_ethertype
    return _NO_INNER


# -- statistics ------------------------------------------------------------------------
def inner_protocol_name(key: int) -> str:
    """Display name of an inner-protocol key (IP protocol, or 0x10000|EtherType)."""
    if key == _NO_INNER:
        return "none"
    if key & _INNER_NONIP:
        ethertype = key & 0xFFFF
        return ETHERTYPE_NAMES.get(ethertype, "EtherType 0x%04x" % ethertype)
    return PROTO_NAMES.get(key, "IP proto %d" % key)


class ScanStats:
    """Counters over a capture: what ``scapy-geneve stats`` prints.

    Feed it whole batches (:meth:`add_result`, the fast path) or single
    records (:meth:`add_record`); both give identical results.
    """

    def __init__(self, path: str = "") -> None:
        self.path = path
        self.format = ""
        self.packets = 0
        self.bytes = 0                 # wire bytes
        self.captured = 0              # captured bytes
        self.first_ns: Optional[int] = None
        self.last_ns: Optional[int] = None
        self.linktypes: Dict[int, int] = {}
        self.outer: Dict[int, int] = {}                        # 0, 4 or 6 -> packets
        self.kinds: Dict[int, List[int]] = {}                  # kind code -> [packets, bytes]
        self.vnis: Dict[Tuple[int, int], List[int]] = {}       # (kind code, vni) -> [packets, bytes]
        self.no_vni: Dict[int, int] = {}                       # kind code -> packets without one
        # (class, type) -> [occurrences, packets carrying it, their wire bytes]
        self.options: Dict[Tuple[int, int], List[int]] = {}
        self.option_classes: Dict[int, List[int]] = {}         # class -> [packets, bytes]
        self.c_bit = 0                 # Geneve packets with C set
        self.oam = 0                   # Geneve/GPE packets with O set
        self.critical_options = 0      # options whose type has 0x80
        self.crit_without_c = 0        # packets with a critical option but C clear
        self.inner: Dict[int, int] = {}
        self.malformed = 0
        self.reasons: Dict[str, int] = {}
        self.snapped = 0
        self.skipped: Dict[int, int] = {}  # link type -> packets not examined (pcapng)
        self.first_skipped: Optional[int] = None   # number of the first one
        self.error: Optional[str] = None   # set when the file is damaged part-way

    # -- feeding ---------------------------------------------------------------
    def _times(self, lo: Optional[int], hi: Optional[int]) -> None:
        if lo is None or hi is None:
            return
        self.first_ns = lo if self.first_ns is None else min(self.first_ns, lo)
        self.last_ns = hi if self.last_ns is None else max(self.last_ns, hi)

    def add_record(self, rec: ScanRecord) -> None:
        """Count one :class:`ScanRecord`."""
        self.packets += 1
        self.bytes += rec.wirelen
        self.captured += rec.caplen
        if rec.ts_ns is not None:
            self._times(rec.ts_ns, rec.ts_ns)
        self.linktypes[rec.linktype] = self.linktypes.get(rec.linktype, 0) + 1
        outer = rec.outer_ip or 0
        self.outer[outer] = self.outer.get(outer, 0) + 1
        code = _KIND_CODE[rec.kind]
        entry = self.kinds.setdefault(code, [0, 0])
        entry[0] += 1
        entry[1] += rec.wirelen
        if code:
            if rec.vni is None:
                self.no_vni[code] = self.no_vni.get(code, 0) + 1
            else:
                entry = self.vnis.setdefault((code, rec.vni), [0, 0])
                entry[0] += 1
                entry[1] += rec.wirelen
        self.c_bit += bool(rec.critical)
        self.oam += bool(rec.oam)
        has_crit = False
        seen = set()
        for opt in rec.options:
            key = (opt.classid, opt.type)
            entry = self.options.setdefault(key, [0, 0, 0])
            entry[0] += 1
            if key not in seen:
                seen.add(key)
                entry[1] += 1
                entry[2] += rec.wirelen
            if opt.critical:
                self.critical_options += 1
                has_crit = True
        for cls in {opt.classid for opt in rec.options}:
            entry = self.option_classes.setdefault(cls, [0, 0])
            entry[0] += 1
            entry[1] += rec.wirelen
        if has_crit and not rec.critical:
            self.crit_without_c += 1
        inner_key = _record_inner_key(rec)
        self.inner[inner_key] = self.inner.get(inner_key, 0) + 1
        if rec.malformed:
            self.malformed += 1
            reason = rec.reason or "malformed"
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self.snapped += rec.snapped
        if rec.skipped:
            self.skipped[rec.linktype] = self.skipped.get(rec.linktype, 0) + 1
            if self.first_skipped is None:
                self.first_skipped = rec.number

    def add_result(self, res: BatchResult) -> None:
        """Count one batch analysed by :func:`analyse_batch`."""
        np = _numpy()
        n = res.n
        if not n:
            return
        self.packets += n
        self.bytes += int(res.wirelen.sum())
        self.captured += int(res.caplen.sum())
        ts = res.ts_ns[res.ts_ns != _NO_TS]
        if len(ts):
            self._times(int(ts.min()), int(ts.max()))
        first = int(res.linktype[0])
        if (res.linktype == first).all():
            self.linktypes[first] = self.linktypes.get(first, 0) + n
        else:
            for value, count in zip(*np.unique(res.linktype, return_counts=True)):
                self.linktypes[int(value)] = self.linktypes.get(int(value), 0) + int(count)
        for value, count in enumerate(np.bincount(res.outer_ip, minlength=7).tolist()):
            if count:
                self.outer[value] = self.outer.get(value, 0) + count
        kind_packets = np.bincount(res.kind, minlength=7).tolist()
        kind_bytes = np.bincount(res.kind, weights=res.wirelen, minlength=7).tolist()
        for code in range(7):
            if kind_packets[code]:
                entry = self.kinds.setdefault(code, [0, 0])
                entry[0] += kind_packets[code]
                entry[1] += int(kind_bytes[code])
        for code in range(1, 7):
            if not kind_packets[code]:
                continue
            sel = res.kind == code
            without = int((sel & ~res.has_vni).sum())
            if without:
                self.no_vni[code] = self.no_vni.get(code, 0) + without
            sel &= res.has_vni
            if not sel.any():
                continue
            values, inv = np.unique(res.vni[sel], return_inverse=True)
            counts = np.bincount(inv).tolist()
            nbytes = np.bincount(inv, weights=res.wirelen[sel]).tolist()
            vnis = self.vnis
            for value, count, size in zip(values.tolist(), counts, nbytes):
                known = vnis.get((code, value))
                if known is None:
                    vnis[(code, value)] = [count, int(size)]
                else:
                    known[0] += count
                    known[1] += int(size)
        self.c_bit += int(res.crit.sum())
        self.oam += int(res.oam.sum())
        if len(res.opt_pkt):
            self._add_options(np, res)
        ip = res.inner < 256             # -1 (none) and IP protocols: one bincount
        counts = np.bincount(res.inner[ip] + 1, minlength=257).tolist()
        for value in np.nonzero(counts)[0].tolist():
            self.inner[value - 1] = self.inner.get(value - 1, 0) + counts[value]
        if not ip.all():                 # non-IP inner frames: EtherType keys
            for value, count in zip(*np.unique(res.inner[~ip], return_counts=True)):
                self.inner[int(value)] = self.inner.get(int(value), 0) + int(count)
        self.malformed += int(res.malformed.sum())
        for reason in res.reasons.values():
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self.snapped += int(res.snapped.sum())
        if res.skipped.any():
            for value, count in zip(*np.unique(res.linktype[res.skipped], return_counts=True)):
                self.skipped[int(value)] = self.skipped.get(int(value), 0) + int(count)
            if self.first_skipped is None:
                self.first_skipped = res.first + int(np.argmax(res.skipped))

    def _add_options(self, np: Any, res: BatchResult) -> None:
        """Occurrences, packets and bytes per option (class, type) and per class."""
        pkt = res.opt_pkt
        values, kid, counts = np.unique((res.opt_class << 8) | res.opt_type,
                                        return_inverse=True, return_counts=True)
        classes, cid = np.unique(values >> 8, return_inverse=True)
        cid = cid[kid]
        wirelen = res.wirelen.astype(np.float64)
        per_key: List[Any] = []
        for ids, width in ((kid, len(values)), (cid, len(classes))):
            if res.n * width <= _TABLE_CELLS:
                # a packet x option table: True where the packet carries the option
                seen = np.zeros((res.n, width), bool)
                seen[pkt, ids] = True
                per_key.append((seen.sum(axis=0).tolist(), (wirelen @ seen).tolist()))
            else:   # many distinct options in one batch: count (packet, option) pairs
                pairs = np.unique(pkt * width + ids)
                owner, which = pairs // width, pairs % width
                per_key.append((np.bincount(which, minlength=width).tolist(),
                                np.bincount(which, weights=wirelen[owner],
                                            minlength=width).tolist()))
        (packets, nbytes), (cpackets, cbytes) = per_key
        for value, count, npk, size in zip(values.tolist(), counts.tolist(), packets, nbytes):
            entry = self.options.setdefault((value >> 8, value & 0xFF), [0, 0, 0])
            entry[0] += count
            entry[1] += npk
            entry[2] += int(size)
        for value, npk, size in zip(classes.tolist(), cpackets, cbytes):
            entry = self.option_classes.setdefault(value, [0, 0])
            entry[0] += npk
            entry[1] += int(size)
        critical = (res.opt_type & 0x80) != 0
        self.critical_options += int(critical.sum())
        with_crit = np.zeros(res.n, bool)
        with_crit[pkt[critical]] = True
        self.crit_without_c += int((with_crit & ~res.crit).sum())

    # -- reporting -----------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Everything as plain JSON-ready data (sorted, largest first)."""
        kinds = {(_KIND_NAME[code] or "none"): {"packets": v[0], "bytes": v[1]}
                 for code, v in sorted(self.kinds.items(), key=lambda kv: -kv[1][0])}
        vnis = [{"kind": _KIND_NAME[code], "vni": vni, "packets": v[0], "bytes": v[1]}
                for (code, vni), v in sorted(self.vnis.items(),
                                             key=lambda kv: (-kv[1][0], kv[0]))]
        options = [{"class": cls, "class_name": option_class_name(cls), "type": typ,
                    "critical": bool(typ & 0x80), "count": v[0], "packets": v[1],
                    "bytes": v[2]}
                   for (cls, typ), v in sorted(self.options.items(),
                                               key=lambda kv: (-kv[1][0], kv[0]))]
        option_classes = [{"class": cls, "class_name": option_class_name(cls),
                           "packets": v[0], "bytes": v[1]}
                          for cls, v in sorted(self.option_classes.items(),
                                               key=lambda kv: (-kv[1][0], kv[0]))]
        duration = None
        if self.first_ns is not None and self.last_ns is not None:
            duration = (self.last_ns - self.first_ns) / 1e9
        return {
            "file": self.path,
            "format": self.format,
            "packets": self.packets,
            "bytes": self.bytes,
            "captured_bytes": self.captured,
            "first_time": None if self.first_ns is None else self.first_ns / 1e9,
            "last_time": None if self.last_ns is None else self.last_ns / 1e9,
            "duration": duration,
            "linktypes": {LINKTYPE_NAMES.get(lt, str(lt)): count
                          for lt, count in sorted(self.linktypes.items())},
            "outer": {("IPv%d" % v if v else "non-IP"): count
                      for v, count in sorted(self.outer.items())},
            "encapsulations": kinds,
            "vnis": vnis,
            "without_identifier": {_KIND_NAME[code]: count
                                   for code, count in sorted(self.no_vni.items())},
            "options": options,
            "option_classes": option_classes,
            "critical": {"c_bit_packets": self.c_bit,
                         "critical_options": self.critical_options,
                         "critical_option_without_c_bit": self.crit_without_c},
            "oam_packets": self.oam,
            "inner_protocols": {inner_protocol_name(k): v for k, v in
                                sorted(self.inner.items(), key=lambda kv: (-kv[1], kv[0]))},
            "malformed": {"packets": self.malformed,
                          "reasons": dict(sorted(self.reasons.items(),
                                                 key=lambda kv: (-kv[1], kv[0])))},
            "snapped": self.snapped,
            "skipped": {"packets": sum(self.skipped.values()),
                        "linktypes": {_linktype_name(lt): count
                                      for lt, count in sorted(self.skipped.items())},
                        "first_packet": self.first_skipped},
            "error": self.error,
        }


def _batches(path: Union[str, "os.PathLike[str]"], progress: Optional[Callable[[int, int], None]],
             on_open: Optional[Callable[[CaptureReader], None]] = None
             ) -> Iterator[Tuple[CaptureReader, Batch]]:
    with open_capture(path) as reader:
        if on_open is not None:
            on_open(reader)
        links = _LinkTypes(reader)
        for batch in reader.batches():
            links.check(batch)
            yield reader, batch
            del batch   # the reader may reuse the buffer once nobody holds it
            if progress is not None:
                progress(reader.bytes_read, reader.packets_read)
        links.finish()


def compute_stats(path: Union[str, "os.PathLike[str]"], ports: Ports = DEFAULT_PORTS,
                  l2tp_cookie: int = 0, l2tp_l2ss: bool = False,
                  progress: Optional[Callable[[int, int], None]] = None,
                  stats: Optional[ScanStats] = None) -> ScanStats:
    """Count packets and bytes per encapsulation, VNI, option, inner protocol.

    Uses the vectorised path.  On a damaged file it raises
    :class:`CaptureError`; pass your own ``stats`` to keep what was counted
    up to the damage.  ``progress(bytes_read, packets_read)`` is called after
    each chunk.
    """
    stats = stats if stats is not None else ScanStats(str(path))
    state = ScanState()

    def opened(reader: CaptureReader) -> None:
        stats.format = reader.format

    for _reader, batch in _batches(path, progress, opened):
        stats.add_result(analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state))
        del batch
    return stats


# -- filtering ---------------------------------------------------------------------------
class PacketFilter:
    """Which packets to keep.  Criteria of one kind are OR-ed, kinds AND-ed.

    ``vni``: identifiers (VNI, VSID, STT context, L2TPv3 session);
    ``kind``: names from :data:`KINDS`; ``option_class``/``option_type``: a
    packet matches if one Geneve option has one of the classes *and* one of
    the types (the 8-bit type, 0x80 = critical); ``malformed``: only
    malformed packets; ``invert``: keep the packets that do *not* match.
    An empty filter keeps everything.
    """

    def __init__(self, vni: Iterable[int] = (), kind: Iterable[str] = (),
                 option_class: Iterable[int] = (), option_type: Iterable[int] = (),
                 malformed: bool = False, invert: bool = False) -> None:
        self.vni = frozenset(int(v) for v in vni)
        self.kind = frozenset(kind)
        unknown = self.kind - set(KINDS)
        if unknown:
            raise ValueError("unknown encapsulation kind %s (choose from %s)"
                             % (", ".join(sorted(unknown)), ", ".join(KINDS)))
        self.option_class = frozenset(int(v) for v in option_class)
        self.option_type = frozenset(int(v) for v in option_type)
        self.malformed = malformed
        self.invert = invert
        for value in self.vni:
            if not 0 <= value < 1 << 64:
                raise ValueError("identifier %d is out of range" % value)
        for value in self.option_class:
            if not 0 <= value <= 0xFFFF:
                raise ValueError("option class 0x%x is not a 16-bit value" % value)
        for value in self.option_type:
            if not 0 <= value <= 0xFF:
                raise ValueError("option type 0x%x is not an 8-bit value" % value)

    @property
    def empty(self) -> bool:
        """True when the filter keeps every packet."""
        return not (self.vni or self.kind or self.option_class or self.option_type
                    or self.malformed or self.invert)

    def match(self, rec: ScanRecord) -> bool:
        """Does this record pass the filter?"""
        return self._match(rec) != self.invert

    def _match(self, rec: ScanRecord) -> bool:
        if self.kind and rec.kind not in self.kind:
            return False
        if self.vni and rec.vni not in self.vni:
            return False
        if self.option_class or self.option_type:
            if not any((not self.option_class or opt.classid in self.option_class)
                       and (not self.option_type or opt.type in self.option_type)
                       for opt in rec.options):
                return False
        if self.malformed and not rec.malformed:
            return False
        return True

    def mask(self, res: BatchResult) -> Any:
        """Boolean numpy array: which packets of an analysed batch pass."""
        np = _numpy()
        keep = np.ones(res.n, bool)
        if self.kind:
            keep &= np.isin(res.kind, [_KIND_CODE[k] for k in self.kind])
        if self.vni:
            keep &= res.has_vni & np.isin(res.vni, np.array(sorted(self.vni), dtype=np.uint64))
        if self.option_class or self.option_type:
            sel = np.ones(len(res.opt_pkt), bool)
            if self.option_class:
                sel &= np.isin(res.opt_class, list(self.option_class))
            if self.option_type:
                sel &= np.isin(res.opt_type, list(self.option_type))
            has = np.zeros(res.n, bool)
            has[res.opt_pkt[sel]] = True
            keep &= has
        if self.malformed:
            keep &= res.malformed
        return ~keep if self.invert else keep


def matching_packets(path: Union[str, "os.PathLike[str]"], pfilter: PacketFilter,
                     ports: Ports = DEFAULT_PORTS, l2tp_cookie: int = 0,
                     l2tp_l2ss: bool = False) -> Iterator[int]:
    """Yield the 1-based numbers of the packets that pass PFILTER (fast path)."""
    np = _numpy()
    state = ScanState()
    for _reader, batch in _batches(path, None):
        keep = pfilter.mask(analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state))
        for i in np.nonzero(keep)[0].tolist():
            yield batch.first + i


def matching_records(path: Union[str, "os.PathLike[str]"], pfilter: PacketFilter,
                     ports: Ports = DEFAULT_PORTS, l2tp_cookie: int = 0,
                     l2tp_l2ss: bool = False) -> Iterator[Record]:
    """Yield the :class:`~scapy_geneve.capture.pcapio.Record` of each packet that passes.

    The selection runs on the vectorised path; only the chosen records are
    sliced out, so a caller can dissect just those with Scapy.
    """
    np = _numpy()
    state = ScanState()
    for _reader, batch in _batches(path, None):
        if pfilter.empty:
            yield from batch.records()
            continue
        keep = pfilter.mask(analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state))
        chosen = np.nonzero(keep)[0].tolist()
        if not chosen:
            continue
        data_off, _ends, caplen, wirelen, ts_ns, linktype, iface = batch.fields
        buf = batch.buf
        for i in chosen:
            d = data_off[i]
            ts = ts_ns[i]
            yield Record(batch.first + i, batch.base + batch.starts[i],
                         None if ts == _NO_TS else ts, caplen[i], wirelen[i], linktype[i],
                         iface[i], bytes(buf[d:d + caplen[i]]))


class FilterResult(NamedTuple):
    packets: int        # packets read
    matched: int        # packets written
    skipped: int = 0    # packets not examined (pcapng interface of an unsupported link type)


def filter_capture(path: Union[str, "os.PathLike[str]"], out: IO[bytes],
                   pfilter: PacketFilter, ports: Ports = DEFAULT_PORTS,
                   l2tp_cookie: int = 0, l2tp_l2ss: bool = False,
                   progress: Optional[Callable[[int, int], None]] = None,
                   counts: Optional[List[int]] = None) -> FilterResult:
    """Copy the packets of PATH that pass PFILTER to the binary stream OUT.

    Records are copied byte for byte (timestamps, lengths, pcapng options
    included).  A pcap gives a pcap with the same header; a pcapng gives a
    pcapng with every block that is not a packet (sections, interfaces, name
    resolution, statistics...) kept in place.  ``counts``, if given, is a
    list updated as [packets read, matched, skipped] while the copy goes on.
    Packets that cannot be examined (``skipped``: a pcapng interface of a link
    type scan cannot read) match no criterion, so only an empty or inverted
    filter copies them.
    """
    np = _numpy()
    counts = counts if counts is not None else [0, 0, 0]
    while len(counts) < 3:
        counts.append(0)
    state = ScanState()

    def opened(reader: CaptureReader) -> None:
        out.write(reader.header)   # the pcap global header, as it was (empty for pcapng)

    for _reader, batch in _batches(path, progress, opened):
        res = analyse_batch(batch, ports, l2tp_cookie, l2tp_l2ss, state)
        keep = pfilter.mask(res)
        buf = batch.buf
        starts = batch.starts
        if batch._fields is None:
            caplen = res.caplen
            ends = np.frombuffer(starts, dtype=np.int64) + 16 + caplen if len(starts) else []
        else:
            ends = batch._fields[1]
        chosen = np.nonzero(keep)[0].tolist()
        if not batch.blocks:
            for i in chosen:
                out.write(buf[starts[i]:int(ends[i])])
        else:
            blocks = batch.blocks
            j = 0
            for i in chosen:
                while j < len(blocks) and blocks[j][0] <= i:
                    out.write(buf[blocks[j][1]:blocks[j][2]])
                    j += 1
                out.write(buf[starts[i]:int(ends[i])])
            for k in range(j, len(blocks)):
                out.write(buf[blocks[k][1]:blocks[k][2]])
        counts[0] += res.n
        counts[1] += len(chosen)
        counts[2] += int(res.skipped.sum())
        del batch, buf
    return FilterResult(counts[0], counts[1], counts[2])
