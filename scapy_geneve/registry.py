"""The registry of encapsulations: every protocol fact about a kind, written once.

One frozen :class:`Encapsulation` record per kind says how it is carried
(transport, default ports, IP protocol), what its identifier is called and how
wide it is, which Scapy layer and which encapsulate/decapsulate adapter serve it,
its lint rule family, its scan kind code and what a receiver must know out of
band.  tunnels, compare, lint, scan/stats/filter, segment, gro, every CLI
command and the pytest plugin read this module; nothing else lists ports or
kinds.

The module is pure data and imports nothing from Scapy: the layer and the
adapter are named as ``"module:attribute"`` strings and loaded on first use
(:meth:`Encapsulation.load_layer`, :meth:`Encapsulation.load_adapter`), so the
wire decoder and the capture tools can read the registry without Scapy.

Adding an encapsulation: a record here, its layer, its adapter (CONTRIBUTING.md
walks through one).
"""

import enum
import importlib
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Iterable, Iterator, NamedTuple, Optional, Tuple

__all__ = [
    "Kind", "Encapsulation", "REGISTRY", "Ports", "DEFAULT_PORTS", "get", "names",
    "tunnel_names", "by_kind", "records", "parse_port", "PortError", "register", "unregister",
]


class Kind(enum.IntEnum):
    """Kind codes: the scan's per-packet ``kind`` column (an int8 array)."""

    NONE = 0
    GENEVE = 1
    VXLAN = 2
    VXLAN_GPE = 3
    NVGRE = 4
    STT = 5
    L2TPV3 = 6


@dataclass(frozen=True)
class Encapsulation:
    """Everything the project knows about one encapsulation."""

    name: str                          # canonical name, as every command prints it
    kind: Kind                         # scan kind code
    title: str                         # display name
    spec: str                          # defining document
    aliases: Tuple[str, ...] = ()      # other spellings accepted on input
    udp_ports: FrozenSet[int] = frozenset()   # default UDP destination ports
    tcp_ports: FrozenSet[int] = frozenset()   # default TCP destination ports
    ip_protocol: Optional[int] = None  # carried directly over IP (protocol number)
    either_port: bool = False          # the port may be the source or the destination
    ports_key: Optional[str] = None    # the :class:`Ports` field holding its ports
    port_option: Optional[str] = None  # the CLI option that adds ports
    header_len: int = 8                # fixed tunnel header bytes (after UDP/TCP/IP)
    id_name: str = "vni"               # the kind's own name for its identifier
    id_title: str = "VNI"
    id_bits: int = 24
    layer: str = ""                    # "module:Class" of the Scapy layer
    adapter: str = ""                  # "module:object" with encapsulate/decapsulate
    lint_prefix: str = ""              # rule family: GNV001...
    variant_of: Optional[str] = None   # vxlan-gpe is a variant of vxlan
    out_of_band: Tuple[str, ...] = ()  # what a receiver must know that the wire does not say

    @property
    def transport(self) -> str:
        """"udp", "tcp", "ip", or "ip/udp" (L2TPv3: IP protocol 115 or UDP)."""
        parts = [p for p, have in (("ip", self.ip_protocol is not None),
                                   ("udp", bool(self.udp_ports)), ("tcp", bool(self.tcp_ports)))
                 if have]
        return "/".join(parts)

    @property
    def ports(self) -> FrozenSet[int]:
        """Default UDP or TCP ports."""
        return self.udp_ports | self.tcp_ports

    @property
    def id_max(self) -> int:
        return (1 << self.id_bits) - 1

    def load_layer(self) -> Any:
        """The Scapy layer class (imports Scapy)."""
        return _load(self.layer)

    def load_adapter(self) -> Any:
        """The encapsulate/decapsulate adapter (imports Scapy)."""
        return _load(self.adapter)

    def check_id(self, value: int) -> int:
        """VALUE if it fits the identifier, else ValueError naming the field."""
        if not 0 <= value <= self.id_max:
            raise ValueError("%s %s %d does not fit in %d bits (0-%d)"
                             % (self.title, self.id_title, value, self.id_bits, self.id_max))
        return value


def _load(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


# -- well-known ports and protocols (the only place they are written) ---------------------
GENEVE_PORT = 6081            # RFC 8926 §3.3, IANA
VXLAN_PORT = 4789             # RFC 7348 §5, IANA
VXLAN_LINUX_PORT = 8472       # Linux's legacy default (VXLAN_LINUX_PORT, before IANA)
VXLAN_ACI_PORT = 48879        # Cisco ACI fabric (iVXLAN)
VXLAN_GPE_PORT = 4790         # draft-ietf-nvo3-vxlan-gpe, IANA
STT_PORT = 7471               # draft-davie-stt-08, IANA "stt" (TCP)
L2TP_PORT = 1701              # RFC 3931 §4.1.2
IPPROTO_GRE = 47              # RFC 2784
IPPROTO_L2TP = 115            # RFC 3931 §4.1.1

_RECORDS: Tuple[Encapsulation, ...] = (
    Encapsulation(
        name="geneve", kind=Kind.GENEVE, title="Geneve", spec="RFC 8926",
        aliases=("gnv",), udp_ports=frozenset([GENEVE_PORT]), ports_key="geneve",
        port_option="--geneve-port", header_len=8,
        layer="scapy_geneve.layers.geneve:Geneve",
        adapter="scapy_geneve.tunnels.adapters:GENEVE", lint_prefix="GNV"),
    Encapsulation(
        name="vxlan", kind=Kind.VXLAN, title="VXLAN", spec="RFC 7348",
        udp_ports=frozenset([VXLAN_PORT, VXLAN_LINUX_PORT, VXLAN_ACI_PORT]), ports_key="vxlan",
        port_option="--vxlan-port", header_len=8,
        layer="scapy.layers.vxlan:VXLAN",
        adapter="scapy_geneve.tunnels.adapters:VXLAN", lint_prefix="VXL"),
    Encapsulation(
        name="vxlan-gpe", kind=Kind.VXLAN_GPE, title="VXLAN-GPE",
        spec="draft-ietf-nvo3-vxlan-gpe", aliases=("gpe", "vxlan_gpe"),
        udp_ports=frozenset([VXLAN_GPE_PORT]), ports_key="gpe", port_option="--gpe-port",
        header_len=8, layer="scapy.layers.vxlan:VXLAN",
        adapter="scapy_geneve.tunnels.adapters:VXLAN", lint_prefix="VXL", variant_of="vxlan"),
    Encapsulation(
        name="nvgre", kind=Kind.NVGRE, title="NVGRE", spec="RFC 7637",
        ip_protocol=IPPROTO_GRE, header_len=8, id_name="vsid", id_title="VSID",
        layer="scapy_geneve.layers.nvgre:NVGRE",
        adapter="scapy_geneve.tunnels.adapters:NVGRE", lint_prefix="NVG"),
    Encapsulation(
        name="stt", kind=Kind.STT, title="STT", spec="draft-davie-stt-08",
        tcp_ports=frozenset([STT_PORT]), ports_key="stt", port_option="--stt-port",
        header_len=18, id_name="context_id", id_title="Context ID", id_bits=64,
        layer="scapy_geneve.layers.stt:STT",
        adapter="scapy_geneve.tunnels.adapters:STT", lint_prefix="STT",
        out_of_band=("continuation segments carry no STT header: the first segment's "
                     "context ID is matched by (outer source, outer destination, TCP ACK)",)),
    Encapsulation(
        name="l2tpv3", kind=Kind.L2TPV3, title="L2TPv3", spec="RFC 3931",
        aliases=("l2tp",), ip_protocol=IPPROTO_L2TP, udp_ports=frozenset([L2TP_PORT]),
        either_port=True, ports_key="l2tp", port_option="--l2tp-port", header_len=4,
        id_name="session_id", id_title="Session ID", id_bits=32,
        layer="scapy_geneve.layers.l2tpv3:L2TPv3",
        adapter="scapy_geneve.tunnels.adapters:L2TPV3", lint_prefix="L2T",
        out_of_band=("cookie length (0, 4 or 8 bytes) per session",
                     "whether the Default L2-Specific Sublayer is present",
                     "the pseudowire type")),
)

#: Every encapsulation by canonical name, in kind-code order.
REGISTRY: Dict[str, Encapsulation] = {rec.name: rec for rec in _RECORDS}
_BY_SPELLING: Dict[str, Encapsulation] = {
    spelling: rec for rec in _RECORDS for spelling in (rec.name,) + rec.aliases}
_BY_KIND: Dict[int, Encapsulation] = {int(rec.kind): rec for rec in _RECORDS}


def register(record: Encapsulation) -> Encapsulation:
    """Add RECORD to the registry (a new encapsulation); returns it.

    Every reader (``get``, ``names``, ``records``, ``by_kind``, ``encapsulate``
    and ``decapsulate``) sees it from then on; :class:`Ports` defaults do not
    change (they are fixed when this module is imported).  Refuses a name,
    alias or kind code already taken.  :func:`unregister` removes it.
    """
    global _RECORDS
    spellings = (record.name,) + record.aliases
    taken = [s for s in spellings if s in _BY_SPELLING]
    if taken or int(record.kind) in _BY_KIND:
        raise ValueError("cannot register %r: %s already registered"
                         % (record.name, ", ".join(taken) or "kind code %d" % int(record.kind)))
    _RECORDS = _RECORDS + (record,)
    REGISTRY[record.name] = record
    _BY_SPELLING.update({spelling: record for spelling in spellings})
    _BY_KIND[int(record.kind)] = record
    return record


def unregister(name: str) -> None:
    """Remove the encapsulation NAME that :func:`register` added."""
    global _RECORDS
    record = get(name)
    _RECORDS = tuple(rec for rec in _RECORDS if rec is not record)
    del REGISTRY[record.name]
    for spelling in (record.name,) + record.aliases:
        del _BY_SPELLING[spelling]
    del _BY_KIND[int(record.kind)]


def get(name: str) -> Encapsulation:
    """The record for NAME or one of its aliases (case-insensitive); KeyError names them all."""
    try:
        return _BY_SPELLING[name.lower().strip()]
    except KeyError:
        raise KeyError("unknown encapsulation %r: one of %s" % (name, ", ".join(names()))) from None


def names() -> Tuple[str, ...]:
    """Every canonical name: geneve, vxlan, vxlan-gpe, nvgre, stt, l2tpv3."""
    return tuple(REGISTRY)


def tunnel_names() -> Tuple[str, ...]:
    """The kinds ``encapsulate`` takes (variants such as vxlan-gpe are options of their base)."""
    return tuple(rec.name for rec in _RECORDS if rec.variant_of is None)


def by_kind(code: int) -> Optional[Encapsulation]:
    """The record for a scan kind code (None for Kind.NONE)."""
    return _BY_KIND.get(int(code))


def records() -> Iterator[Encapsulation]:
    """Every record, in kind-code order."""
    return iter(_RECORDS)


# -- ports ------------------------------------------------------------------------------
class PortError(ValueError):
    """A port option's value is not a port number."""


def parse_port(text: str) -> int:
    """A port from the command line: decimal or 0x-hex, 0-65535.

    >>> parse_port("0x17c1")
    6081
    """
    try:
        value = int(str(text).strip(), 0)
    except ValueError:
        raise PortError("%r is not a port number (decimal or 0x-hex)" % (text,)) from None
    if not 0 <= value <= 0xFFFF:
        raise PortError("port %d is out of range (0-65535)" % value)
    return value


def _defaults(key: str) -> FrozenSet[int]:
    return frozenset().union(*(rec.ports for rec in _RECORDS if rec.ports_key == key))


class Ports(NamedTuple):
    """Which UDP/TCP ports mean which encapsulation (destination ports; L2TPv3 either).

    The defaults come from the registry; :meth:`extended` adds ports (extra
    ports always add to the defaults, in every command).
    """

    geneve: FrozenSet[int] = _defaults("geneve")
    vxlan: FrozenSet[int] = _defaults("vxlan")
    gpe: FrozenSet[int] = _defaults("gpe")
    stt: FrozenSet[int] = _defaults("stt")
    l2tp: FrozenSet[int] = _defaults("l2tp")

    def extended(self, **extra: Iterable[int]) -> "Ports":
        """These ports plus EXTRA (``geneve=[6082]``; keys are field names or kind names)."""
        changes = {}
        for key, values in extra.items():
            field = key if key in self._fields else get(key).ports_key
            if field is None:
                raise KeyError("%s is not carried on a port" % key)
            changes[field] = getattr(self, field) | frozenset(int(v) for v in values)
        return self._replace(**changes)

    def udp_kind(self, sport: int, dport: int) -> Optional[str]:
        """The kind a UDP datagram's ports say, or None (destination port first)."""
        if dport in self.geneve:
            return "geneve"
        if dport in self.gpe:      # before vxlan: a port the user says carries GPE is GPE
            return "vxlan-gpe"
        if dport in self.vxlan:
            return "vxlan"
        if dport in self.l2tp or sport in self.l2tp:
            return "l2tpv3"
        return None


#: The registry's default ports.
DEFAULT_PORTS = Ports()
