"""What every encapsulation adapter shares: the result type, the outer headers, the base class.

:mod:`scapy_geneve.tunnels.tunnel` builds the outer IP/IPv6 header and reads
the outer headers of a received packet; the kind-specific steps are an
:class:`Adapter` per encapsulation (:mod:`scapy_geneve.tunnels.adapters`),
found through the registry (``registry.get(kind).load_adapter()``).
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Type, Union

from scapy.packet import NoPayload, Packet
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

from scapy_geneve import registry
from scapy_geneve.errors import BuildError
from scapy_geneve.layers.geneve import flow_sport

__all__ = [
    "TunnelInfo",
    "NotATunnel",
    "Outer",
    "Adapter",
    "entropy_sport",
    "ENTROPY_LOW",
    "ENTROPY_HIGH",
    "inner_l3",
    "inner_ecn",
]

ENTROPY_LOW, ENTROPY_HIGH = 49152, 65535


class NotATunnel(ValueError):
    """The packet holds no tunnel header that :func:`decapsulate` can open, or one a
    receiver must drop (the message names the field and its byte offset)."""


def entropy_sport(inner: Packet, low: int = ENTROPY_LOW, high: int = ENTROPY_HIGH) -> int:
    """The outer source port for INNER's flow (same flow, same port).

    The hash is Geneve's :func:`~scapy_geneve.layers.geneve.flow_sport`, so a
    flow keeps its port whichever UDP/TCP encapsulation carries it.
    """
    return flow_sport(inner, low=low, high=high)


def inner_l3(inner: Packet) -> Optional[Packet]:
    """The inner IP/IPv6 header, under Ethernet and VLAN tags; None when there is none."""
    layer = inner
    while layer is not None and not isinstance(layer, NoPayload):
        if isinstance(layer, (IP, IPv6)):
            return layer
        if not isinstance(layer, (Ether, Dot1Q, Dot1AD)):
            return None
        layer = layer.payload
    return None


def inner_ecn(inner: Packet) -> Optional[int]:
    """The inner IP header's ECN field, or None when the inner packet is not IP."""
    l3 = inner_l3(inner)
    if isinstance(l3, IP):
        return int(l3.tos) & 0x03
    if isinstance(l3, IPv6):
        return int(l3.tc) & 0x03
    return None


@dataclass
class TunnelInfo:
    """What :func:`decapsulate` read from the outer headers.

    ``vni`` is the identifier under its common name: the Geneve/VXLAN VNI,
    the NVGRE VSID, the STT Context ID, the L2TPv3 Session ID.
    """

    kind: str
    vni: int
    underlay: str = "ipv4"  # "ipv4" or "ipv6"
    outer_src: str = ""
    outer_dst: str = ""
    transport: str = ""  # "udp", "gre", "tcp" or "ip"
    sport: Optional[int] = None
    dport: Optional[int] = None
    overhead: int = 0  # outer L3 + transport + tunnel header bytes
    # The outer IP header, as received (params() rebuilds it)
    ttl: int = 64  # IPv4 TTL / IPv6 Hop Limit
    tos: int = 0  # IPv4 TOS / IPv6 Traffic Class, ECN included
    ip_id: int = 0
    df: bool = True
    flow_label: Optional[int] = None  # IPv6 only
    udp_checksum: Optional[bool] = None  # False: the UDP checksum was zero
    #: Reserved header fields that were not zero, by field name (rebuilt as received).
    reserved: Dict[str, int] = field(default_factory=dict)
    # Geneve (``oam`` is also VXLAN-GPE's O bit)
    options: List[Packet] = field(default_factory=list)
    oam: bool = False
    critical: bool = False
    proto: Optional[int] = None
    # VXLAN-GBP / VXLAN-GPE
    group_policy_id: Optional[int] = None
    dont_learn: bool = False
    policy_applied: bool = False
    next_protocol: Optional[int] = None
    bum: bool = False  # VXLAN-GPE B bit (ingress-replicated BUM)
    # NVGRE
    flowid: Optional[int] = None
    # STT
    stt_flags: int = 0
    l4_offset: int = 0
    mss: int = 0
    vlan_id: Optional[int] = None
    pcp: int = 0
    identifier: Optional[int] = None
    segments: int = 0
    # L2TPv3
    cookie: Optional[bytes] = None
    sequence: Optional[int] = None  # Default L2SS sequence number (S=1)
    l2ss: bool = False
    l2tp_transport: Optional[str] = None  # "ip" or "udp"

    @property
    def vsid(self) -> int:
        return self.vni

    @property
    def context_id(self) -> int:
        return self.vni

    @property
    def session_id(self) -> int:
        return self.vni

    def params(self) -> Dict[str, Any]:
        """Keyword arguments that re-create this tunnel with :func:`encapsulate`.

        They cover every outer field a sender chooses: addresses, TTL/Hop
        Limit, DSCP and ECN, IPv4 ID and DF, IPv6 flow label, ports, a zero
        UDP checksum, the tunnel header's fields and its non-zero reserved
        bits.  So ``encapsulate(inner, info.kind, **info.params())`` gives
        back the received bytes whenever the received checksums were right.
        Not carried: IPv4 options and IPv6 extension headers, an outer
        Ethernet header (``ether=``), and checksums that were wrong.
        """
        out: Dict[str, Any] = {
            "vni": self.vni,
            "src": self.outer_src,
            "dst": self.outer_dst,
            "ttl": self.ttl,
            "tos": self.tos & 0xFC,
            "ecn": self.tos & 0x03,
        }
        if self.underlay == "ipv6":
            out["flow_label"] = self.flow_label
        else:
            out.update(ip_id=self.ip_id, df=self.df)
        if self.udp_checksum is not None:  # computed or zero, as received
            out["udp_checksum"] = self.udp_checksum
            if self.underlay == "ipv6" and not self.udp_checksum:
                out["udp6_zero_checksum"] = True
        if self.reserved:
            out["reserved"] = dict(self.reserved)
        out.update(registry.get(self.kind).load_adapter().params(self))
        return out


@dataclass
class Outer:
    """The outer IP/IPv6 header built for one packet, and the transport choices."""

    l3: Packet
    version: int
    sport: Optional[int] = None
    dport: Optional[int] = None
    udp_checksum: Optional[bool] = None
    udp6_zero_checksum: bool = False
    ip_id: int = 0
    ttl: int = 64
    df: bool = True

    def udp(self, kind: str, sport: int, dport: int, checksum_default: bool) -> UDP:
        """The outer UDP header: the caller's ports, else these defaults.

        ``udp_checksum`` None takes the kind's default; IPv6 zero checksums
        need ``udp6_zero_checksum`` (RFC 6935/6936).
        """
        want = checksum_default if self.udp_checksum is None else self.udp_checksum
        if self.version == 6 and not want:
            if self.udp_checksum is None:
                want = True  # RFC 6935/6936: IPv6 zero checksums are opt-in
            elif not self.udp6_zero_checksum:
                raise BuildError(
                    kind,
                    "udp_checksum",
                    0,
                    "is not allowed over IPv6 unless udp6_zero_checksum=True "
                    "(RFC 6936: only for tunnels configured for it)",
                )
        return UDP(
            sport=sport if self.sport is None else self.sport,
            dport=dport if self.dport is None else self.dport,
            chksum=None if want else 0,
        )


class Adapter:
    """The kind-specific steps of :func:`encapsulate` and :func:`decapsulate`.

    A subclass names its registry record (``kind``), the Scapy layers that
    mark its header in a received packet (``layers``), the header fields
    that are reserved (``reserved_fields``), and implements
    :meth:`encapsulate` (build the outer packet from the outer IP header),
    :meth:`decapsulate` (fill a :class:`TunnelInfo`, refuse what a receiver
    drops) and :meth:`params` (the kind's keywords back from the info).
    """

    kind = ""
    layers: Tuple[Type[Packet], ...] = ()
    reserved_fields: Tuple[str, ...] = ()

    @property
    def record(self) -> registry.Encapsulation:
        return registry.get(self.kind)

    def check_identifier(self, value: int) -> None:
        """Refuse an identifier the kind reserves (the width is checked already)."""

    def encapsulate(
        self, inner: Packet, ident: int, outer: Outer, params: Dict[str, Any]
    ) -> Union[Packet, List[Packet]]:
        """The outer packet(s) for INNER; pop the keywords used from PARAMS."""
        raise NotImplementedError

    def decapsulate(self, layer: Packet, packet: Packet, info: TunnelInfo) -> Optional[Packet]:
        """Fill INFO from the tunnel header LAYER of PACKET; raise NotATunnel to drop.

        Returns the inner packet, or None for "what follows the header".
        """
        raise NotImplementedError

    def params(self, info: TunnelInfo) -> Dict[str, Any]:
        """The kind's :func:`encapsulate` keywords that re-create INFO."""
        return {}

    def expected(self, transport: str) -> Tuple[str, int]:
        """(name, header bytes) a receiver expects after TRANSPORT ("udp", "tcp", "ip")."""
        return self.record.title, self.record.header_len

    # -- helpers for subclasses -------------------------------------------------------
    def set_reserved(self, header: Packet, params: Dict[str, Any]) -> None:
        """Write ``reserved={field: value}`` into HEADER (negative tests, exact rebuilds)."""
        for name, value in dict(params.pop("reserved", None) or {}).items():
            if name not in self.reserved_fields:
                raise BuildError(
                    self.kind,
                    "reserved",
                    name,
                    "is not a reserved field of %s "
                    "(one of %s)" % (self.kind, ", ".join(self.reserved_fields)),
                )
            header.setfieldval(name, value)

    def read_reserved(self, header: Packet, info: TunnelInfo) -> None:
        """Record HEADER's non-zero reserved fields in INFO."""
        for name in self.reserved_fields:
            if name in header.fields and header.getfieldval(name):
                info.reserved[name] = int(header.getfieldval(name))
