"""scan's per-packet record, built from the wire decoder (:mod:`scapy_geneve.capture.decode`).

:class:`ScanRecord` is the public light record :func:`~scapy_geneve.capture.scan.scan`
yields: the outer addresses and ports, the encapsulation and its identifier, the
Geneve options, the inner 5-tuple and whether the packet is malformed.
:func:`parse_packet` fills one from :func:`~scapy_geneve.capture.decode.decode`;
the vectorised batch path (:mod:`scapy_geneve.capture.scan_batch`) builds the same
records from its columns.
"""

from typing import Any, Dict, NamedTuple, Optional, Tuple

from scapy_geneve import registry
from scapy_geneve.capture.decode import Decoded, DecodeState, decode
from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, LINKTYPE_NAMES
from scapy_geneve.consts import ETH_P_IP, ETH_P_IPV6

__all__ = [
    "KINDS",
    "GeneveOptionInfo",
    "ScanRecord",
    "ScanState",
    "parse_packet",
    "record_from_decoded",
    "inner_key",
    "inner_protocol_name",
    "kind_name",
    "linktype_name",
    "NO_INNER",
    "INNER_NONIP",
    "NO_TS",
]

#: Every encapsulation scan tells apart, by its registry name.
KINDS: Tuple[str, ...] = registry.names()

#: The decoder's cross-packet state (STT context IDs), under scan's historical name.
ScanState = DecodeState

NO_INNER = -1  # inner key: no inner frame
INNER_NONIP = 0x10000  # inner key = 0x10000 | EtherType for non-IP inner frames
NO_TS = -(1 << 63)  # ts_ns marker of the reader: no timestamp

PROTO_NAMES = {
    1: "ICMP",
    2: "IGMP",
    4: "IPIP",
    6: "TCP",
    17: "UDP",
    41: "IPv6",
    47: "GRE",
    50: "ESP",
    51: "AH",
    58: "ICMPv6",
    89: "OSPF",
    103: "PIM",
    112: "VRRP",
    115: "L2TP",
    132: "SCTP",
}
ETHERTYPE_NAMES = {
    0x0806: "ARP",
    0x8035: "RARP",
    0x88CC: "LLDP",
    0x8847: "MPLS",
    0x8848: "MPLS multicast",
    0x894F: "NSH",
    0x88E5: "MACsec",
    0x8809: "Slow protocols (LACP)",
    0x6558: "TEB",
    0x88F7: "PTP",
}


class GeneveOptionInfo(NamedTuple):
    """One Geneve option TLV header (RFC 8926 §3.5); ``length`` in 4-byte words."""

    classid: int
    type: int  # the 8-bit wire value; 0x80 is the critical bit
    critical: bool
    length: int  # data length in 4-byte words (the 5-bit field), excluding the header


class ScanRecord:
    """What :func:`~scapy_geneve.capture.scan.scan` knows about one packet (absent: None)."""

    __slots__ = (
        "number",
        "offset",
        "ts_ns",
        "caplen",
        "wirelen",
        "linktype",
        "interface",
        "vlans",
        "outer_ip",
        "outer_src",
        "outer_dst",
        "outer_proto",
        "outer_sport",
        "outer_dport",
        "kind",
        "vni",
        "flow_id",
        "oam",
        "critical",
        "proto",
        "stt_offset",
        "control",
        "options",
        "inner_ethertype",
        "inner_src",
        "inner_dst",
        "inner_proto",
        "inner_sport",
        "inner_dport",
        "malformed",
        "reason",
        "snapped",
        "skipped",
    )

    def __init__(
        self,
        number: int = 0,
        offset: int = 0,
        ts_ns: Optional[int] = None,
        caplen: int = 0,
        wirelen: int = 0,
        linktype: int = LINKTYPE_ETHERNET,
        interface: int = 0,
    ) -> None:
        self.number = number  # 1-based packet number in the file
        self.offset = offset  # file offset of the record / block
        self.ts_ns = ts_ns  # timestamp in ns since the epoch (None: no timestamp)
        self.caplen = caplen
        self.wirelen = wirelen
        self.linktype = linktype
        self.interface = interface
        self.vlans: Tuple[int, ...] = ()  # outer 802.1Q/802.1ad VLAN IDs
        self.outer_ip: Optional[int] = None  # 4 or 6
        self.outer_src: Optional[str] = None
        self.outer_dst: Optional[str] = None
        self.outer_proto: Optional[int] = None  # IP protocol / next header
        self.outer_sport: Optional[int] = None
        self.outer_dport: Optional[int] = None
        self.kind: Optional[str] = None  # one of KINDS
        self.vni: Optional[int] = None  # VNI / VSID / context ID / session ID
        self.flow_id: Optional[int] = None  # NVGRE FlowID
        self.oam: Optional[bool] = None  # Geneve O bit, VXLAN-GPE O bit
        self.critical: Optional[bool] = None  # Geneve C bit
        self.proto: Optional[int] = None  # Geneve Protocol Type / GPE Next Protocol
        self.stt_offset: Optional[int] = None  # STT segment offset (seq & 0xFFFF); a
        # continuation segment's vni is its first segment's context ID (ScanState)
        self.control: Optional[bool] = None  # L2TPv3 control message
        self.options: Tuple[GeneveOptionInfo, ...] = ()
        self.inner_ethertype: Optional[int] = None
        self.inner_src: Optional[str] = None
        self.inner_dst: Optional[str] = None
        self.inner_proto: Optional[int] = None
        self.inner_sport: Optional[int] = None
        self.inner_dport: Optional[int] = None
        self.malformed = False
        self.reason: Optional[str] = None  # why it is malformed
        self.snapped = False  # ran out of captured bytes (caplen < wirelen)
        self.skipped: Optional[str] = None  # not examined: why (a link type scan
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
        return (self.inner_src, self.inner_dst, self.inner_proto, self.inner_sport, self.inner_dport)

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
            parts.append(
                "options=[%s]"
                % ", ".join("0x%04x/0x%02x/%d" % (o.classid, o.type, o.length) for o in self.options)
            )
        if self.inner_src is not None:
            parts.append("inner=%s" % (self.inner_5tuple,))
        if self.malformed:
            parts.append("malformed=%r" % self.reason)
        if self.snapped:
            parts.append("snapped")
        if self.skipped:
            parts.append("skipped=%r" % self.skipped)
        return "<ScanRecord %s>" % " ".join(parts)


def linktype_name(linktype: int) -> str:
    name = LINKTYPE_NAMES.get(linktype)
    return "%d (%s)" % (linktype, name) if name else "%d" % linktype


def kind_name(code: int) -> Optional[str]:
    """The registry name of a kind code (None for Kind.NONE)."""
    rec = registry.by_kind(code)
    return None if rec is None else rec.name


_OPTION_CACHE: Dict[Tuple[int, int, int], GeneveOptionInfo] = {}


def _option(classid: int, typ: int, length: int) -> GeneveOptionInfo:
    key = (classid, typ, length)
    opt = _OPTION_CACHE.get(key)
    if opt is None:
        if len(_OPTION_CACHE) > 4096:
            _OPTION_CACHE.clear()
        opt = _OPTION_CACHE[key] = GeneveOptionInfo(classid, typ, bool(typ & 0x80), length)
    return opt


def _fill_outer(rec: ScanRecord, dec: Decoded) -> None:
    rec.vlans = dec.vlans
    ip = dec.ip
    if ip is None:
        return
    rec.outer_ip, rec.outer_src, rec.outer_dst, rec.outer_proto = (ip.version, ip.src, ip.dst, ip.proto)
    l4 = dec.l4
    if l4 is not None and l4.sport >= 0:
        rec.outer_sport, rec.outer_dport = l4.sport, l4.dport


def _fill_tunnel(rec: ScanRecord, dec: Decoded) -> None:
    rec.kind, rec.vni, rec.flow_id = dec.kind, dec.vni, dec.flow_id
    rec.oam, rec.critical, rec.control = dec.oam, dec.critical, dec.control
    if dec.proto >= 0 and dec.kind_code in (registry.Kind.GENEVE, registry.Kind.VXLAN_GPE):
        rec.proto = dec.proto
    if dec.stt_offset >= 0:
        rec.stt_offset = dec.stt_offset
    if dec.options:
        rec.options = tuple(_option(o.classid, o.type, o.length) for o in dec.options)
    if dec.inner_ethertype >= 0:
        rec.inner_ethertype = dec.inner_ethertype
    ip = dec.inner_ip
    if ip is not None:
        rec.inner_src, rec.inner_dst, rec.inner_proto = ip.src, ip.dst, ip.proto
        l4 = dec.inner_l4
        if l4 is not None:
            rec.inner_sport, rec.inner_dport = l4.sport, l4.dport


def record_from_decoded(rec: ScanRecord, dec: Decoded) -> ScanRecord:
    """Fill REC from the decoder's view of the same packet.

    The inner fields describe a tunnel's payload: a packet without one (plain
    GRE included) has none, though the decoder reads them.
    """
    if dec.skipped:
        rec.skipped = "link type %s is not supported" % linktype_name(dec.linktype)
        return rec
    _fill_outer(rec, dec)
    if dec.kind is not None:
        _fill_tunnel(rec, dec)
    rec.malformed, rec.reason, rec.snapped = dec.malformed, dec.reason, dec.snapped
    return rec


def parse_packet(
    data: bytes,
    linktype: int = LINKTYPE_ETHERNET,
    wirelen: Optional[int] = None,
    ports: registry.Ports = registry.DEFAULT_PORTS,
    l2tp_cookie: int = 0,
    l2tp_l2ss: bool = False,
    record: Optional[ScanRecord] = None,
    state: Optional[DecodeState] = None,
) -> ScanRecord:
    """Parse one captured frame into a :class:`ScanRecord`; never raises.

    ``l2tp_cookie`` (0, 4 or 8 bytes) and ``l2tp_l2ss`` (Default L2-Specific
    Sublayer present) say how to find the Ethernet frame in L2TPv3 data
    packets: neither is on the wire (RFC 3931 §4.1).  ``state`` (a
    :class:`ScanState` shared by the packets of one capture) lets STT
    continuation segments inherit the context ID of their first segment.
    """
    rec = (
        record
        if record is not None
        else ScanRecord(
            caplen=len(data), wirelen=len(data) if wirelen is None else wirelen, linktype=linktype
        )
    )
    dec = decode(data, linktype, ports, l2tp_cookie, l2tp_l2ss, state, rec.wirelen)
    return record_from_decoded(rec, dec)


def inner_key(rec: ScanRecord) -> int:
    """What the stats count as the inner protocol: an IP protocol, 0x10000|EtherType, -1."""
    if rec.inner_proto is not None:
        return rec.inner_proto
    if rec.inner_ethertype is not None and rec.inner_ethertype not in (ETH_P_IP, ETH_P_IPV6):
        return INNER_NONIP | rec.inner_ethertype
    return NO_INNER


def inner_protocol_name(key: int) -> str:
    """Display name of an inner-protocol key (IP protocol, or 0x10000|EtherType)."""
    if key == NO_INNER:
        return "none"
    if key & INNER_NONIP:
        ethertype = key & 0xFFFF
        return ETHERTYPE_NAMES.get(ethertype, "EtherType 0x%04x" % ethertype)
    return PROTO_NAMES.get(key, "IP proto %d" % key)
