"""The one wire decoder: a captured frame to header offsets and fields, without Scapy.

``decode(data, linktype)`` reads a frame from the link layer down to the
innermost payload and returns one :class:`Decoded` record.  Every fast path of
the project (scan's reference path, segment, gro, lint on bytes, ``show``
one-liners, the columnar export) reads frames through it, and scan's
vectorised batch path is proven equal to it by hypothesis (tests/test_scan_fuzz.py).
It never raises on any bytes: what cannot be read is said in ``malformed``,
``reason`` and ``reason_offset`` (a byte offset in the frame), or ``snapped``
when the capture (snaplen) cut the frame.

The layers read::

    link       Ethernet + any number of VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, 0x9100),
               Linux cooked SLL/SLL2, raw IP (linktypes 101, 12, 14, 228, 229), NULL/LOOP
    outer IP   IPv4 (options), IPv6 + extension headers (Hop-by-Hop with the RFC 2675
               jumbo option, Routing, Fragment, Destination Options, AH, ...)
    transport  UDP (the Length field bounds the tunnel), TCP (STT), GRE (47), L2TPv3 (115)
    tunnel     the kind the ports / protocol say (scapy_geneve.registry): Geneve with its
               options, VXLAN, VXLAN-GPE, NVGRE, plain GRE, STT, L2TPv3 data and control;
               a kind added with ``registry.register`` (UDP/TCP ports or an IP protocol)
               from its record alone: ``header_len``, the identifier at ``id_offset``
               (``id_bits`` wide, ``id_shift`` above the word's end), then ``inner``
    inner      Ethernet + VLANs, or IP (Geneve / GPE / GRE carrying IP); inner IP; inner
               TCP/UDP/SCTP ports, TCP flags/seq/ack/data offset; the payload

Lengths follow tcpdump: an IPv4 Total Length of 0 or an IPv6 Payload Length of 0
(a TSO / BIG TCP super-packet captured before segmentation) takes the length
from what encloses it (the capture for the outer header), and says so in
``IPHeader.from_capture``; an IPv6 Payload Length of 0 with a jumbo option
takes the jumbo payload length.  UDP Length 0 under such a header runs to its
end; otherwise the UDP Length bounds the datagram (a Length of 8 leaves no room
for a tunnel header: a receiver reads none).

:class:`Decoded` (every offset is from the start of ``data``; -1 or None when absent)
========================= ==============================================================
field                     meaning
========================= ==============================================================
linktype, caplen, wirelen as given (caplen = len(data))
ethertype                 outer EtherType after the VLAN tags (link types without one:
                          0x0800 / 0x86dd from the IP version or address family)
vlans, vlan_off           outer VLAN IDs (12 bits each, outermost first); offset of the
                          first tag (each tag is 4 bytes: TCI, then the next EtherType)
ip                        outer :class:`IPHeader` (None: not IP)
l4                        outer :class:`L4Header` (UDP, TCP, GRE or L2TPv3/IP: offset,
                          ports, UDP Length/Checksum, TCP fields)
kind, kind_code           registry name (geneve, vxlan, vxlan-gpe, nvgre, stt, l2tpv3,
                          or a kind added with ``registry.register``) and its kind code
                          (an int; ``registry.Kind`` for the built-ins); None / 0 for no
                          tunnel (plain GRE included: see ``gre_proto``)
tunnel_off, tunnel_len    the tunnel header (Geneve incl. options; VXLAN 8; NVGRE/GRE 4-16;
                          STT 18, after its TCP-like header; L2TPv3 incl. cookie and L2SS)
vni                       the identifier: VNI, NVGRE VSID, STT Context ID, L2TPv3 Session
                          ID (an STT continuation segment: its frame's, from ``state``)
flow_id                   NVGRE FlowID (low 8 bits of the key)
version                   Geneve Ver, GPE Ver, STT Version, L2TPv3/UDP Ver nibble
flags                     VXLAN/GPE flags byte, Geneve byte 1 (O, C, rsvd), GRE flags
                          and version word, STT Flags, L2TPv3/UDP T/L/S... word
oam, critical             Geneve O and C bits; GPE O bit
opt_len                   Geneve Opt Len (4-byte words)
proto                     Geneve Protocol Type, GPE Next Protocol (P set)
reserved1, reserved2      Geneve Rsvd1 (6 bits) / Reserved (8 bits); VXLAN the 24 bits
                          after the flags / the last 8; GPE the 16 bits / the last 8;
                          STT the reserved byte; L2TPv3/UDP the 16 bits after T..Ver
options                   Geneve options: :class:`GeneveOptionHeader` (offset, classid,
                          type, critical, length in words)
gre_flags, gre_proto      GRE flags+version word and Protocol Type (any GRE, NVGRE or not)
gre_key, gre_seq          GRE Key / Sequence Number (-1: absent)
stt_offset, stt_frame_len STT segment offset (TCP seq & 0xffff) and frame length (seq >> 16)
stt_l4_offset, stt_mss,   the STT frame header's L4 Offset, MSS and VLAN TCI
stt_vlan_tci
control                   L2TPv3 control message (True), data (False)
l2tp_cookie               L2TPv3 cookie bytes (length out of band: ``l2tp_cookie``)
inner_off                 inner frame: Ethernet (or IP when the tunnel carries IP)
inner_ethertype           inner EtherType (after inner VLANs)
inner_vlans               inner VLAN IDs
inner_ip, inner_l4        inner :class:`IPHeader`, :class:`L4Header` (TCP/UDP/SCTP)
payload_off, payload_len  the innermost L4 payload (after TCP/UDP/SCTP headers), its
                          length as the headers say (past caplen when snapped)
malformed, reason         the bytes contradict a header (or a header is cut while the
reason_offset             frame is whole): why, and the byte offset where
snapped                   the capture cut the frame (caplen < wirelen) before a header
                          ended: not malformed
skipped                   the link type is not one the decoder reads (why)
========================= ==============================================================

:class:`IPHeader`: ``off``, ``version``, ``hlen`` (header incl. IPv6 extension
headers), ``proto`` (upper-layer protocol), ``length`` (IPv4 Total Length / IPv6
Payload Length as on the wire), ``end`` (where the datagram ends), ``from_capture``,
``jumbo`` (RFC 2675 Jumbo Payload Length, -1: no option), ``ident`` (IPv4 ID or the
IPv6 Fragment header's Identification, -1), ``flags`` (IPv4 3-bit flags; IPv6: 1 if the
Fragment header has M), ``frag`` (fragment offset in 8-byte units), ``ttl`` (TTL / Hop
Limit), ``tos`` (TOS / Traffic Class; ``ecn`` property), ``flow_label``, ``src_b``/``dst_b``
(address bytes; ``src``/``dst`` properties format them), ``ext`` ((type, offset) of each
IPv6 extension header).

:class:`L4Header`: ``off``, ``proto``, ``sport``, ``dport``, ``hlen`` (UDP 8, TCP data
offset, SCTP 12; -1 when the header is cut), ``length`` (UDP Length), ``checksum``,
``end`` (UDP: off + Length; else the IP end), ``seq``, ``ack``, ``flags`` (TCP).
"""

import socket
import struct
from typing import Dict, NamedTuple, Optional, Tuple

from scapy_geneve.capture.pcapio import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
)
from scapy_geneve.consts import ETH_P_IP, ETH_P_IPV6, ETH_P_TEB
from scapy_geneve import registry
from scapy_geneve.registry import DEFAULT_PORTS, IPPROTO_GRE, IPPROTO_L2TP, Kind, Ports

__all__ = [
    "decode",
    "decode_ether",
    "decode_ip",
    "Decoded",
    "IPHeader",
    "L4Header",
    "GeneveOptionHeader",
    "DecodeState",
    "SUPPORTED_LINKTYPES",
    "VLAN_TPIDS",
]

#: Link types the decoder reads (12 and 14 are DLT_RAW values of some old files).
SUPPORTED_LINKTYPES = frozenset(
    [
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
        12,
        14,
    ]
)
_RAW_IP = frozenset([LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6])
VLAN_TPIDS = frozenset([0x8100, 0x88A8, 0x9100])  # 802.1Q, 802.1ad, old QinQ
IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP = 6, 17, 132
# IPv6 extension headers walked to the upper layer (RFC 8200 §4, RFC 7045).
IPV6_EXT = frozenset([0, 43, 44, 60, 51, 135, 139, 140, 253, 254])
GRE_C, GRE_R, GRE_K, GRE_S, GRE_VER = 0x8000, 0x4000, 0x2000, 0x1000, 0x0007
STT_HDR_LEN = 18
_GPE_NEXT = {1: ETH_P_IP, 2: ETH_P_IPV6, 3: ETH_P_TEB}
_KIND_NAMES = {rec.kind: rec.name for rec in registry.records()}  # names as the registry says
_KIND_CODES: Dict[Optional[str], int] = {rec.name: rec.kind for rec in registry.records()}
_L4_HLEN = {IPPROTO_UDP: 8, IPPROTO_SCTP: 12}

_U16 = struct.Struct("!H").unpack_from
_U32 = struct.Struct("!I").unpack_from
_U64 = struct.Struct("!Q").unpack_from
_IP4 = struct.Struct("!BBHHHBB").unpack_from  # ver/IHL, TOS, length, ID, flags/offset, TTL, proto
_IP6 = struct.Struct("!IHBB").unpack_from  # ver/TC/flow label, payload length, NH, hop limit
_TCP = struct.Struct("!HHIIHHH").unpack_from  # ports, seq, ack, offset/flags, window, checksum
_UDP = struct.Struct("!HHHH").unpack_from
_GNV = struct.Struct("!BBHI").unpack_from  # Ver/Opt Len, O/C/Rsvd, Protocol Type, VNI/Rsvd
_ntop = socket.inet_ntop
_AF4, _AF6 = socket.AF_INET, socket.AF_INET6


class _Short(Exception):
    """The bytes ran out (at END) while reading WHAT at OFFSET."""

    def __init__(self, what: str, offset: int, end: int) -> None:
        super().__init__(what)
        self.what, self.offset, self.end = what, offset, end


class _Bad(Exception):
    """The bytes contradict a header: a malformed packet (REASON, at OFFSET)."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason, self.offset = reason, offset


class GeneveOptionHeader(NamedTuple):
    """One Geneve option TLV header (RFC 8926 §3.5) and where it is."""

    offset: int  # of the option header in the frame
    classid: int
    type: int  # the 8-bit wire value; 0x80 is the critical bit
    critical: bool
    length: int  # data length in 4-byte words (the 5-bit field), excluding the header


class IPHeader:
    """An IPv4 or IPv6 header, with its extension headers (see the module docstring)."""

    __slots__ = (
        "off",
        "version",
        "hlen",
        "proto",
        "length",
        "end",
        "from_capture",
        "jumbo",
        "ident",
        "flags",
        "frag",
        "ttl",
        "tos",
        "flow_label",
        "ext",
        "data",
    )

    def __init__(
        self,
        data: bytes,
        off: int,
        version: int,
        hlen: int,
        proto: int,
        length: int,
        end: int,
        ident: int,
        flags: int,
        frag: int,
        ttl: int,
        tos: int,
        flow_label: int,
    ) -> None:
        self.data, self.off, self.version, self.hlen, self.proto = data, off, version, hlen, proto
        self.length, self.end, self.ident, self.flags, self.frag = length, end, ident, flags, frag
        self.ttl, self.tos, self.flow_label = ttl, tos, flow_label
        self.from_capture = False
        self.jumbo = -1
        self.ext: Tuple[Tuple[int, int], ...] = ()

    @property
    def src_b(self) -> bytes:
        """The source address bytes (4 or 16)."""
        at = self.off + (12 if self.version == 4 else 8)
        return self.data[at : at + (4 if self.version == 4 else 16)]

    @property
    def dst_b(self) -> bytes:
        at = self.off + (16 if self.version == 4 else 24)
        return self.data[at : at + (4 if self.version == 4 else 16)]

    @property
    def src(self) -> str:
        """The source address as text (formatted when asked)."""
        off = self.off
        if self.version == 4:
            return _ntop(_AF4, self.data[off + 12 : off + 16])
        return _ntop(_AF6, self.data[off + 8 : off + 24])

    @property
    def dst(self) -> str:
        off = self.off
        if self.version == 4:
            return _ntop(_AF4, self.data[off + 16 : off + 20])
        return _ntop(_AF6, self.data[off + 24 : off + 40])

    @property
    def ecn(self) -> int:
        return self.tos & 0x03

    @property
    def l4_off(self) -> int:
        return self.off + self.hlen

    @property
    def first_fragment(self) -> bool:
        """False for a non-first fragment (its upper-layer header is in another one)."""
        return self.frag == 0

    @property
    def more_fragments(self) -> bool:
        return bool(self.flags & 1)  # IPv4 MF, or the IPv6 Fragment header's M

    def __repr__(self) -> str:
        return "<IPHeader v%d @%d hlen=%d proto=%d end=%d>" % (
            self.version,
            self.off,
            self.hlen,
            self.proto,
            self.end,
        )


class L4Header:
    """A UDP, TCP, SCTP, GRE or L2TPv3/IP header (see the module docstring)."""

    __slots__ = ("off", "proto", "sport", "dport", "hlen", "length", "checksum", "end", "seq", "ack", "flags")

    def __init__(self, off: int, proto: int, end: int, sport: int = -1, dport: int = -1) -> None:
        self.off, self.proto, self.end, self.sport, self.dport = off, proto, end, sport, dport
        self.hlen = self.length = self.checksum = self.seq = self.ack = self.flags = -1

    def __repr__(self) -> str:
        return "<L4Header proto=%d @%d %d>%d hlen=%d end=%d>" % (
            self.proto,
            self.off,
            self.sport,
            self.dport,
            self.hlen,
            self.end,
        )


class DecodeState:
    """What the decoder learns across the packets of one capture: STT context IDs.

    Only the first segment of an STT frame carries the STT header; the later
    ones share its reassembly key (outer source, outer destination, TCP ACK =
    frame identifier: the key of OVS's STT reassembly and of Wireshark's), so
    they get the context ID of the first segment seen with that key.  At most
    ``limit`` keys are remembered (oldest forgotten first).
    """

    __slots__ = ("stt", "limit")

    def __init__(self, limit: int = 65536) -> None:
        self.stt: Dict[Tuple[bytes, bytes, int], int] = {}
        self.limit = limit

    def learn_stt(self, key: Tuple[bytes, bytes, int], context: int) -> None:
        stt = self.stt
        stt.pop(key, None)
        stt[key] = context
        if len(stt) > self.limit:
            del stt[next(iter(stt))]


class Decoded:
    """Offsets and fields of one frame (the table in the module docstring)."""

    __slots__ = (
        "linktype",
        "caplen",
        "wirelen",
        "ethertype",
        "vlans",
        "vlan_off",
        "ip",
        "l4",
        "kind",
        "kind_code",
        "tunnel_off",
        "tunnel_len",
        "vni",
        "flow_id",
        "version",
        "flags",
        "oam",
        "critical",
        "opt_len",
        "proto",
        "reserved1",
        "reserved2",
        "options",
        "gre_flags",
        "gre_proto",
        "gre_key",
        "gre_seq",
        "stt_offset",
        "stt_frame_len",
        "stt_l4_offset",
        "stt_mss",
        "stt_vlan_tci",
        "control",
        "l2tp_cookie",
        "inner_off",
        "inner_ethertype",
        "inner_vlans",
        "inner_ip",
        "inner_l4",
        "payload_off",
        "payload_len",
        "malformed",
        "reason",
        "reason_offset",
        "snapped",
        "skipped",
    )

    def __init__(self, linktype: int, caplen: int, wirelen: int) -> None:
        self.linktype, self.caplen, self.wirelen = linktype, caplen, wirelen
        self.ethertype = self.vlan_off = -1
        self.vlans: Tuple[int, ...] = ()
        self.ip: Optional[IPHeader] = None
        self.l4: Optional[L4Header] = None
        self.kind: Optional[str] = None
        self.kind_code = 0
        self.tunnel_off = self.tunnel_len = -1
        self.vni: Optional[int] = None
        self.flow_id: Optional[int] = None
        self.version = self.flags = self.opt_len = self.proto = -1
        self.reserved1 = self.reserved2 = -1
        self.oam: Optional[bool] = None
        self.critical: Optional[bool] = None
        self.options: Tuple[GeneveOptionHeader, ...] = ()
        self.gre_flags = self.gre_proto = self.gre_key = self.gre_seq = -1
        self.stt_offset = self.stt_frame_len = self.stt_l4_offset = -1
        self.stt_mss = self.stt_vlan_tci = -1
        self.control: Optional[bool] = None
        self.l2tp_cookie = b""
        self.inner_off = self.inner_ethertype = -1
        self.inner_vlans: Tuple[int, ...] = ()
        self.inner_ip: Optional[IPHeader] = None
        self.inner_l4: Optional[L4Header] = None
        self.payload_off = self.payload_len = -1
        self.malformed = False
        self.reason: Optional[str] = None
        self.reason_offset = -1
        self.snapped = False
        self.skipped: Optional[str] = None

    def _set_kind(self, kind: Kind) -> None:
        self.kind_code, self.kind = int(kind), _KIND_NAMES[kind]

    def __repr__(self) -> str:
        parts = [self.kind or "no tunnel"]
        if self.vni is not None:
            parts.append("id=%d" % self.vni)
        if self.inner_ip is not None:
            parts.append("inner=%s>%s" % (self.inner_ip.src, self.inner_ip.dst))
        if self.malformed:
            parts.append("malformed=%r@%d" % (self.reason, self.reason_offset))
        if self.snapped:
            parts.append("snapped")
        return "<Decoded %s>" % " ".join(parts)


# -- link layer ------------------------------------------------------------------------
def _link(rec: Decoded, data: bytes, end: int, linktype: int) -> int:
    """The link header: sets ``ethertype`` (and VLANs); returns the network header offset."""
    if linktype == LINKTYPE_ETHERNET:
        return _ether(rec, data, 0, end, 14, 12, "Ethernet header")
    if linktype == LINKTYPE_LINUX_SLL:
        return _ether(rec, data, 0, end, 16, 14, "Linux cooked (SLL) header")
    if linktype == LINKTYPE_LINUX_SLL2:
        return _ether(rec, data, 0, end, 20, 0, "Linux cooked (SLL2) header")
    if linktype in _RAW_IP:
        if end < 1:
            raise _Short("IP version", 0, end)
        version = data[0] >> 4
        if version not in (4, 6):
            raise _Bad("raw IP packet with version %d" % version, 0)
        rec.ethertype = ETH_P_IP if version == 4 else ETH_P_IPV6
        return 0
    # NULL (host byte order) / LOOP (network byte order): a 4-byte address family
    if end < 4:
        raise _Short("loopback header", 0, end)
    family = _U32(data, 0)[0]
    if linktype == LINKTYPE_NULL and family > 0xFFFF:
        family = struct.unpack_from("<I", data, 0)[0]
    rec.ethertype = ETH_P_IP if family == 2 else ETH_P_IPV6 if family in (10, 24, 28, 30) else 0
    return 4


def _ether(rec: Decoded, data: bytes, pos: int, end: int, hlen: int, type_at: int, what: str) -> int:
    if pos + hlen > end:
        raise _Short(what, pos, end)
    ethertype, vlans, nxt = _vlan_stack(data, pos + hlen, end, _U16(data, pos + type_at)[0], "VLAN tag")
    if vlans:
        rec.vlans, rec.vlan_off = vlans, pos + hlen
    rec.ethertype = ethertype
    return nxt


def _vlan_stack(
    data: bytes, pos: int, end: int, ethertype: int, what: str
) -> Tuple[int, Tuple[int, ...], int]:
    """Any number of VLAN tags at POS: (EtherType after them, VLAN IDs, next offset)."""
    if ethertype not in VLAN_TPIDS:
        return ethertype, (), pos
    vlans = []
    while ethertype in VLAN_TPIDS:
        if pos + 4 > end:
            raise _Short(what, pos, end)
        vlans.append(_U16(data, pos)[0] & 0x0FFF)
        ethertype = _U16(data, pos + 2)[0]
        pos += 4
    return ethertype, tuple(vlans), pos


# -- IP ------------------------------------------------------------------------------
def _ip(data: bytes, ethertype: int, pos: int, end: int, enclosing: int, layer: str) -> IPHeader:
    """The IPv4/IPv6 header at POS.

    END is where the readable bytes end; ENCLOSING where what carries the
    packet ends on the wire (the frame's wire length for the outer header):
    the length of a TSO / BIG TCP packet whose header says 0.
    """
    if ethertype == ETH_P_IP:
        return _ipv4(data, pos, end, enclosing, layer)
    return _ipv6(data, pos, end, enclosing, layer)


def _ipv4(data: bytes, pos: int, end: int, enclosing: int, layer: str) -> IPHeader:
    if pos + 20 > end:
        raise _Short(layer + " IPv4 header", pos, end)
    vihl, tos, total, ident, word, ttl, proto = _IP4(data, pos)
    if vihl >> 4 != 4:
        raise _Bad("%s IPv4 header with version %d" % (layer, vihl >> 4), pos)
    ihl = (vihl & 0x0F) * 4
    if ihl < 20:
        raise _Bad("%s IPv4 header length %d < 20" % (layer, ihl), pos)
    if pos + ihl > end:
        raise _Short(layer + " IPv4 options", pos + 20, end)
    if total and total < ihl:
        raise _Bad("%s IPv4 total length %d < header length %d" % (layer, total, ihl), pos + 2)
    ip = IPHeader(
        data,
        pos,
        4,
        ihl,
        proto,
        total,
        pos + total if total else enclosing,
        ident,
        word >> 13,
        word & 0x1FFF,
        ttl,
        tos,
        0,
    )
    if not total:  # a TSO / BIG TCP super-packet: what encloses it says the length
        ip.from_capture = True
    return ip


def _ipv6(data: bytes, pos: int, end: int, enclosing: int, layer: str) -> IPHeader:
    if pos + 40 > end:
        raise _Short(layer + " IPv6 header", pos, end)
    word, plen, nh, hlim = _IP6(data, pos)
    if word >> 28 != 6:
        raise _Bad("%s IPv6 header with version %d" % (layer, word >> 28), pos)
    ip = IPHeader(
        data,
        pos,
        6,
        40,
        nh,
        plen,
        pos + 40 + plen if plen else enclosing,
        -1,
        0,
        0,
        hlim,
        (word >> 20) & 0xFF,
        word & 0xFFFFF,
    )
    if nh in IPV6_EXT:
        _ipv6_ext(ip, data, nh, pos + 40, min(end, ip.end), layer)
    if plen == 0:  # jumbogram, or BIG TCP without the option (tcpdump's reading)
        if ip.jumbo >= 0:
            ip.end = pos + 40 + ip.jumbo
        else:
            ip.from_capture = True
    return ip


def _ipv6_ext(ip: IPHeader, data: bytes, nh: int, l4: int, end: int, layer: str) -> None:
    """Walk the extension headers to the upper layer; sets proto, hlen, ext, fragment."""
    ext = []
    while nh in IPV6_EXT:
        if l4 + 8 > end:
            raise _Short(layer + " IPv6 extension header", l4, end)
        ext.append((nh, l4))
        if nh == 44:  # Fragment: fixed 8 bytes
            word = _U16(data, l4 + 2)[0]
            ip.frag, ip.flags, ip.ident = word >> 3, word & 1, _U32(data, l4 + 4)[0]
            size = 8
        elif nh == 51:  # AH: Payload Len in 4-byte words, minus 2
            size = (data[l4 + 1] + 2) * 4
        else:
            size = (data[l4 + 1] + 1) * 8
            if nh == 0:
                _hop_by_hop(ip, data, l4 + 2, min(l4 + size, end))
        nh, l4 = data[l4], l4 + size
        if l4 > end:
            raise _Short(layer + " IPv6 extension header", ext[-1][1], end)
    ip.proto, ip.hlen, ip.ext = nh, l4 - ip.off, tuple(ext)


def _hop_by_hop(ip: IPHeader, data: bytes, pos: int, end: int) -> None:
    """Find the RFC 2675 Jumbo Payload option (type 0xC2, length 4) among the options."""
    while pos < end:
        kind = data[pos]
        if kind == 0:  # Pad1
            pos += 1
            continue
        if pos + 2 > end:
            return
        size = data[pos + 1]
        if kind == 0xC2 and size == 4 and pos + 6 <= end:
            ip.jumbo = _U32(data, pos + 2)[0]
        pos += 2 + size


# -- transport -------------------------------------------------------------------------
def _udp(rec: Decoded, data: bytes, ip: IPHeader, end: int, layer: str) -> L4Header:
    """The UDP header at the IP payload; its Length bounds what follows."""
    pos = ip.off + ip.hlen
    if pos + 8 > end:
        raise _Short(layer + " UDP header", pos, end)
    sport, dport, length, checksum = _UDP(data, pos)
    udp = L4Header(pos, IPPROTO_UDP, ip.end, sport, dport)
    udp.length, udp.checksum = length, checksum
    udp.hlen = 8
    if udp.length == 0 and (ip.from_capture or ip.jumbo >= 0):
        return udp  # RFC 2675 §4: a jumbo datagram's Length is 0
    if udp.length < 8:
        raise _Bad("%s UDP length %d < 8" % (layer, udp.length), pos + 4)
    if pos + udp.length > ip.end:
        raise _Bad(
            "%s UDP length %d exceeds the IP payload (%d bytes)" % (layer, udp.length, ip.end - pos), pos + 4
        )
    udp.end = pos + udp.length
    return udp


def _tcp(data: bytes, pos: int, end: int, ip_end: int) -> L4Header:
    """TCP ports and, when the whole header is there, seq/ack/flags/data offset."""
    if pos + 20 > end:
        return L4Header(pos, IPPROTO_TCP, ip_end, _U16(data, pos)[0], _U16(data, pos + 2)[0])
    sport, dport, seq, ack, word, _window, checksum = _TCP(data, pos)
    tcp = L4Header(pos, IPPROTO_TCP, ip_end, sport, dport)
    tcp.seq, tcp.ack, tcp.flags, tcp.checksum = seq, ack, word & 0x0FFF, checksum
    doff = (word >> 12) * 4
    if doff >= 20 and pos + doff <= end:
        tcp.hlen = doff
    return tcp


def _payload(rec: Decoded, l4: L4Header) -> None:
    """The payload after L4's header, as long as the headers say (the wire length)."""
    if l4.hlen >= 0:
        rec.payload_off = l4.off + l4.hlen
        rec.payload_len = max(0, l4.end - rec.payload_off)


# -- tunnels ---------------------------------------------------------------------------
def _geneve(rec: Decoded, data: bytes, pos: int, end: int) -> None:
    rec._set_kind(Kind.GENEVE)
    rec.tunnel_off = pos
    if pos + 8 > end:
        raise _Short("Geneve header", pos, end)
    b0, b1, rec.proto, word = _GNV(data, pos)
    rec.version, rec.opt_len, rec.flags = b0 >> 6, b0 & 0x3F, b1
    rec.oam, rec.critical, rec.reserved1 = bool(b1 & 0x80), bool(b1 & 0x40), b1 & 0x3F
    rec.vni, rec.reserved2 = word >> 8, word & 0xFF
    if rec.version:
        raise _Bad("Geneve version %d (only 0 is defined)" % rec.version, pos)
    opt_end = pos + 8 + rec.opt_len * 4
    rec.tunnel_len = opt_end - pos
    _geneve_options(rec, data, pos + 8, opt_end, end)
    if rec.proto == ETH_P_TEB:
        _inner(rec, data, opt_end, end, None)
    elif rec.proto in (ETH_P_IP, ETH_P_IPV6):
        _inner(rec, data, opt_end, end, rec.proto)


def _geneve_options(rec: Decoded, data: bytes, opt: int, opt_end: int, end: int) -> None:
    options = []
    try:
        while opt < opt_end:
            if opt + 4 > end:
                raise _Short("Geneve option header", opt, end)
            typ, length = data[opt + 2], data[opt + 3] & 0x1F
            options.append(GeneveOptionHeader(opt, _U16(data, opt)[0], typ, bool(typ & 0x80), length))
            nxt = opt + 4 + length * 4
            if nxt > opt_end:
                raise _Bad("Geneve option %d overruns Opt Len" % len(options), opt + 3)
            if nxt > end:
                raise _Short("Geneve option data", opt + 4, end)
            opt = nxt
    finally:
        rec.options = tuple(options)


def _vxlan(rec: Decoded, data: bytes, pos: int, end: int, gpe: bool) -> None:
    name = "VXLAN-GPE" if gpe else "VXLAN"
    rec._set_kind(Kind.VXLAN_GPE if gpe else Kind.VXLAN)
    rec.tunnel_off, rec.tunnel_len = pos, 8
    if pos + 8 > end:
        raise _Short(name + " header", pos, end)
    flags = rec.flags = data[pos]
    word = _U32(data, pos + 4)[0]
    rec.vni, rec.reserved2 = word >> 8, word & 0xFF
    if not flags & 0x08:
        raise _Bad("%s I flag clear (RFC 7348 §5: MUST be 1)" % name, pos)
    if not gpe:
        rec.reserved1 = _U32(data, pos)[0] & 0xFFFFFF
        _inner(rec, data, pos + 8, end, None)
        return
    rec.reserved1 = _U16(data, pos + 1)[0]
    rec.oam, rec.version = bool(flags & 0x01), (flags >> 4) & 0x03
    if rec.version:
        raise _Bad("VXLAN-GPE version %d (only 0 is defined)" % rec.version, pos)
    if not flags & 0x04:  # no Next Protocol: Ethernet
        _inner(rec, data, pos + 8, end, None)
        return
    rec.proto = data[pos + 3]
    inner = _GPE_NEXT.get(rec.proto)
    if inner is not None:
        _inner(rec, data, pos + 8, end, None if inner == ETH_P_TEB else inner)


def _l2tp_udp(rec: Decoded, data: bytes, pos: int, end: int, cookie: int, l2ss: bool) -> None:
    if pos + 2 > end or _U16(data, pos)[0] & 0x000F != 3:
        return  # L2F / L2TPv2 (or too short to tell): not L2TPv3
    rec._set_kind(Kind.L2TPV3)
    rec.tunnel_off = pos
    word = rec.flags = _U16(data, pos)[0]
    rec.version = word & 0x000F
    if word & 0x8000:  # T: a control message (RFC 3931 §3.2.1)
        rec.control = True
        if pos + 12 > end:
            raise _Short("L2TPv3 control header", pos, end)
        rec.tunnel_len = 12
        return
    rec.control = False
    if pos + 8 > end:
        raise _Short("L2TPv3 data header", pos, end)
    rec.reserved1 = _U16(data, pos + 2)[0]
    rec.vni = _U32(data, pos + 4)[0]
    _l2tp_payload(rec, data, pos, 8, end, cookie, l2ss)


def _l2tp_ip(rec: Decoded, data: bytes, pos: int, end: int, cookie: int, l2ss: bool) -> None:
    rec._set_kind(Kind.L2TPV3)
    rec.tunnel_off = pos
    if pos + 4 > end:
        raise _Short("L2TPv3 session ID", pos, end)
    session = _U32(data, pos)[0]
    rec.control = session == 0
    if rec.control:  # Session ID 0: a control message follows
        if pos + 16 > end:
            raise _Short("L2TPv3 control header", pos, end)
        rec.flags, rec.version, rec.tunnel_len = _U16(data, pos + 4)[0], data[pos + 5] & 0x0F, 16
        return
    rec.vni = session
    _l2tp_payload(rec, data, pos, 4, end, cookie, l2ss)


def _l2tp_payload(rec: Decoded, data: bytes, pos: int, hlen: int, end: int, cookie: int, l2ss: bool) -> None:
    """Cookie and Default L2-Specific Sublayer (lengths out of band), then Ethernet."""
    start = pos + hlen
    rec.tunnel_len = hlen + cookie + (4 if l2ss else 0)
    if start + cookie + (4 if l2ss else 0) > end:
        raise _Short("L2TPv3 cookie", start, end)
    rec.l2tp_cookie = data[start : start + cookie]
    _inner(rec, data, pos + rec.tunnel_len, end, None)


def _stt(rec: Decoded, data: bytes, tcp: L4Header, end: int, state: Optional[DecodeState]) -> None:
    rec._set_kind(Kind.STT)
    pos = tcp.off
    if pos + 20 > end:
        raise _Short("STT TCP-like header", pos, end)
    rec.stt_offset, rec.stt_frame_len = tcp.seq & 0xFFFF, tcp.seq >> 16
    doff = (data[pos + 12] >> 4) * 4
    if doff < 20:
        raise _Bad("STT TCP data offset %d < 20" % doff, pos + 12)
    if pos + doff > end:
        raise _Short("STT TCP-like header", pos, end)
    ip = rec.ip
    key = (bytes(ip.src_b), bytes(ip.dst_b), tcp.ack) if ip is not None else (b"", b"", tcp.ack)
    if rec.stt_offset:  # a continuation segment: the STT header is in the first
        if state is not None:
            rec.vni = state.stt.get(key)
        return
    hdr = rec.tunnel_off = pos + doff
    rec.tunnel_len = STT_HDR_LEN
    if hdr + STT_HDR_LEN > end:
        raise _Short("STT frame header", hdr, end)
    rec.version, rec.flags, rec.stt_l4_offset, rec.reserved1 = data[hdr : hdr + 4]
    rec.stt_mss, rec.stt_vlan_tci = _U16(data, hdr + 4)[0], _U16(data, hdr + 6)[0]
    rec.vni = _U64(data, hdr + 8)[0]
    if state is not None:
        state.learn_stt(key, rec.vni)
    if rec.version:
        raise _Bad("STT version %d (only 0 is defined)" % rec.version, hdr)
    _inner(rec, data, hdr + STT_HDR_LEN, end, None)


def _gre(rec: Decoded, data: bytes, pos: int, end: int) -> None:
    """GRE (RFC 2784/2890): NVGRE only for RFC 7637's exact header, else plain GRE."""
    if pos + 4 > end:
        raise _Short("GRE header", pos, end)
    flags, proto = rec.gre_flags, rec.gre_proto = _U16(data, pos)[0], _U16(data, pos + 2)[0]
    if flags & (GRE_R | GRE_VER):
        return  # RFC 1701 routing or PPTP's version 1: not read further
    nvgre = flags & (GRE_C | GRE_K | GRE_S) == GRE_K and proto == ETH_P_TEB  # RFC 7637 §3.2
    if nvgre:
        rec._set_kind(Kind.NVGRE)
    rec.tunnel_off = pos
    nxt = pos + 4 + (4 if flags & GRE_C else 0)
    if flags & GRE_K:
        if nxt + 4 > end:
            raise _Short("NVGRE key" if nvgre else "GRE key", nxt, end)
        rec.gre_key, nxt = _U32(data, nxt)[0], nxt + 4
    if flags & GRE_S:
        if nxt + 4 > end:
            raise _Short("GRE sequence number", nxt, end)
        rec.gre_seq, nxt = _U32(data, nxt)[0], nxt + 4
    rec.tunnel_len = nxt - pos
    if nvgre:
        rec.vni, rec.flow_id = rec.gre_key >> 8, rec.gre_key & 0xFF
    if proto == ETH_P_TEB:
        _inner(rec, data, nxt, end, None)
    elif proto in (ETH_P_IP, ETH_P_IPV6):
        _inner(rec, data, nxt, end, proto)


# -- inner headers -------------------------------------------------------------------------
def _inner(rec: Decoded, data: bytes, pos: int, end: int, ethertype: Optional[int]) -> None:
    """The inner frame at POS: Ethernet (ETHERTYPE None) or IP; then its IP and L4."""
    rec.inner_off = pos
    if ethertype is None:
        if pos + 14 > end:
            raise _Short("inner Ethernet header", pos, end)
        ethertype, rec.inner_vlans, pos = _vlan_stack(
            data, pos + 14, end, _U16(data, pos + 12)[0], "inner VLAN tag"
        )
    rec.inner_ethertype = ethertype
    if ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return
    enclosing = end if rec.l4 is None else max(end, rec.l4.end)
    ip = rec.inner_ip = _ip(data, ethertype, pos, end, enclosing, "inner")
    end = min(end, ip.end)
    if ip.frag or ip.proto not in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP):
        return
    l4 = ip.off + ip.hlen
    if l4 + 4 > end:
        raise _Short("inner ports", l4, end)
    if ip.proto == IPPROTO_TCP:
        rec.inner_l4 = _tcp(data, l4, end, ip.end)
    else:
        rec.inner_l4 = _plain_l4(data, ip.proto, l4, end, ip.end)
    _payload(rec, rec.inner_l4)


def _plain_l4(data: bytes, proto: int, pos: int, end: int, ip_end: int) -> L4Header:
    """UDP or SCTP ports; the UDP Length and Checksum when the header is whole."""
    l4 = L4Header(pos, proto, ip_end, _U16(data, pos)[0], _U16(data, pos + 2)[0])
    if proto == IPPROTO_UDP and pos + 8 <= end:
        l4.length, l4.checksum = _U16(data, pos + 4)[0], _U16(data, pos + 6)[0]
        if l4.length >= 8:
            l4.end = min(ip_end, pos + l4.length)
    if pos + _L4_HLEN[proto] <= end:
        l4.hlen = _L4_HLEN[proto]
    return l4


# -- the walk ------------------------------------------------------------------------
def _transport(
    rec: Decoded,
    data: bytes,
    ip: IPHeader,
    end: int,
    ports: Ports,
    cookie: int,
    l2ss: bool,
    state: Optional[DecodeState],
) -> None:
    pos = ip.off + ip.hlen
    proto = ip.proto
    if proto == IPPROTO_UDP:
        _udp_tunnel(rec, data, ip, end, ports, cookie, l2ss)
    elif proto == IPPROTO_TCP:
        if pos + 4 > end:
            return
        tcp = rec.l4 = _tcp(data, pos, end, ip.end)
        name = ports.tcp_kind(tcp.sport, tcp.dport)
        if name == "stt":
            _stt(rec, data, tcp, end, state)
        elif name is None or not _registered(rec, data, tcp, end, name):
            _payload(rec, tcp)
    elif proto == IPPROTO_GRE:
        rec.l4 = L4Header(pos, proto, ip.end)
        _gre(rec, data, pos, end)
    elif proto == IPPROTO_L2TP:
        rec.l4 = L4Header(pos, proto, ip.end)
        _l2tp_ip(rec, data, pos, end, cookie, l2ss)
    else:
        record = registry.by_ip_protocol(proto)
        if record is not None:
            rec.l4 = L4Header(pos, proto, ip.end)
            _generic(rec, data, pos, end, record)


def _udp_tunnel(
    rec: Decoded, data: bytes, ip: IPHeader, end: int, ports: Ports, cookie: int, l2ss: bool
) -> None:
    """The outer UDP header and the tunnel its ports say (the registry's reading)."""
    udp = rec.l4 = _udp(rec, data, ip, end, "outer")
    end, pos = min(end, udp.end), udp.off + 8
    name = ports.udp_kind(udp.sport, udp.dport)
    kind = _KIND_CODES.get(name)
    if kind == Kind.GENEVE:
        _geneve(rec, data, pos, end)
    elif kind == Kind.L2TPV3:
        _l2tp_udp(rec, data, pos, end, cookie, l2ss)
    elif kind in (Kind.VXLAN, Kind.VXLAN_GPE):
        _vxlan(rec, data, pos, end, kind == Kind.VXLAN_GPE)
    elif name is None or not _registered(rec, data, udp, end, name):
        _payload(rec, udp)


def _registered(rec: Decoded, data: bytes, l4: L4Header, end: int, name: str) -> bool:
    """A registered kind's header after L4's (False: NAME is not registered here)."""
    try:
        record = registry.get(name)
    except KeyError:
        return False  # Ports naming a kind this process has not registered
    if l4.hlen < 0:
        raise _Short("%s TCP header" % record.title, l4.off, end)
    _generic(rec, data, l4.off + l4.hlen, end, record)
    return True


def _generic(rec: Decoded, data: bytes, pos: int, end: int, record: registry.Encapsulation) -> None:
    """A kind with no dedicated parser, read from its record: a fixed ``header_len``
    header, the identifier at ``id_offset``, then what ``inner`` says."""
    rec.kind_code, rec.kind = int(record.kind), record.name
    rec.tunnel_off, rec.tunnel_len = pos, record.header_len
    nxt = pos + record.header_len
    if nxt > end:
        raise _Short(record.title + " header", pos, end)
    if record.id_offset is not None:
        rec.vni = record.read_id(data, pos)
    if record.inner == "ether":
        _inner(rec, data, nxt, end, None)
    elif record.inner == "ip":
        if nxt >= end:
            raise _Short("%s inner IP header" % record.title, nxt, end)
        version = data[nxt] >> 4
        if version not in (4, 6):
            raise _Bad("%s inner IP header with version %d" % (record.title, version), nxt)
        _inner(rec, data, nxt, end, ETH_P_IP if version == 4 else ETH_P_IPV6)
    elif rec.l4 is not None:  # "none": what the tunnel carries is not read
        rec.payload_off, rec.payload_len = nxt, max(0, rec.l4.end - nxt)


def _walk(
    rec: Decoded, data: bytes, ports: Ports, cookie: int, l2ss: bool, state: Optional[DecodeState]
) -> None:
    end = len(data)
    pos = _link(rec, data, end, rec.linktype)
    if rec.ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return
    ip = rec.ip = _ip(data, rec.ethertype, pos, end, max(end, rec.wirelen), "outer")
    if ip.frag:
        return  # a non-first fragment carries no upper-layer header
    _transport(rec, data, ip, min(end, ip.end), ports, cookie, l2ss, state)


def decode(
    data: bytes,
    linktype: int = LINKTYPE_ETHERNET,
    ports: Ports = DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
    state: Optional[DecodeState] = None,
    wirelen: Optional[int] = None,
) -> Decoded:
    """Decode one captured frame (bytes) of LINKTYPE; never raises.

    ``ports`` says which UDP/TCP ports carry which tunnel (``registry.Ports``);
    ``l2tp_cookie`` (0, 4 or 8 bytes) and ``l2tp_l2ss`` (Default L2-Specific
    Sublayer present) are what an L2TPv3 receiver knows out of band (RFC 3931
    §4.1); ``state`` (a :class:`DecodeState` shared by the frames of one
    capture) lets STT continuation segments inherit their frame's context ID;
    ``wirelen`` (the length on the wire, default ``len(data)``) tells a frame
    cut by the snaplen (``snapped``) from a malformed one.
    """
    caplen = len(data)
    rec = Decoded(linktype, caplen, caplen if wirelen is None else wirelen)
    if linktype not in SUPPORTED_LINKTYPES:
        rec.skipped = "link type %d is not supported" % linktype
        return rec
    try:
        _walk(rec, data, ports, l2tp_cookie, l2tp_l2ss, state)
    except _Short as exc:
        if rec.caplen < rec.wirelen and exc.end >= caplen:
            rec.snapped = True  # the capture was cut short (snaplen): not malformed
        else:
            rec.malformed, rec.reason = True, "truncated " + exc.what
            rec.reason_offset = exc.offset
    except _Bad as exc:
        rec.malformed, rec.reason, rec.reason_offset = True, exc.reason, exc.offset
    return rec


def decode_ether(data: bytes, **kwargs: object) -> Decoded:
    """:func:`decode` of an Ethernet frame."""
    return decode(data, LINKTYPE_ETHERNET, **kwargs)  # type: ignore[arg-type]


def decode_ip(data: bytes, **kwargs: object) -> Decoded:
    """:func:`decode` of a raw IPv4/IPv6 packet."""
    return decode(data, LINKTYPE_RAW, **kwargs)  # type: ignore[arg-type]
