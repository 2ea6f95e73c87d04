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
walks through one).  A record registered at run time (:func:`register`) is read
by the wire decoder without code when its header is simple and fixed: the
identifier is ``id_bits`` wide, ``id_shift`` bits above the end of the
big-endian word at ``id_offset`` in the tunnel header, and ``inner`` says what
follows the ``header_len`` bytes (:attr:`Encapsulation.generic`).  The built-in
records carry the same facts for the basic form of their header (Geneve without
options, VXLAN-GPE carrying Ethernet, exact NVGRE, an STT frame's first
segment, L2TPv3 over IP without cookie); their dedicated parsers read the rest.
"""

import enum
import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, FrozenSet, Iterable, Iterator, NamedTuple, Optional, Tuple

__all__ = [
    "Kind",
    "Encapsulation",
    "REGISTRY",
    "Ports",
    "DEFAULT_PORTS",
    "get",
    "names",
    "tunnel_names",
    "by_kind",
    "records",
    "parse_port",
    "PortError",
    "register",
    "unregister",
    "INNER_TYPES",
    "KIND_MAX",
    "by_ip_protocol",
]

#: The largest kind code (the scan's per-packet kind column is int8; 0 is no tunnel).
KIND_MAX = 127

#: What may follow a tunnel header (:attr:`Encapsulation.inner`).
INNER_TYPES = ("ether", "ip", "none")


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

    name: str  # canonical name, as every command prints it
    kind: int  # scan kind code (a Kind member for the built-ins)
    title: str  # display name
    spec: str  # defining document
    aliases: Tuple[str, ...] = ()  # other spellings accepted on input
    udp_ports: FrozenSet[int] = frozenset()  # default UDP destination ports
    tcp_ports: FrozenSet[int] = frozenset()  # default TCP destination ports
    ip_protocol: Optional[int] = None  # carried directly over IP (protocol number)
    either_port: bool = False  # the port may be the source or the destination
    ports_key: Optional[str] = None  # the :class:`Ports` field holding its ports
    port_option: Optional[str] = None  # the CLI option that adds ports
    header_len: int = 8  # fixed tunnel header bytes (after UDP/TCP/IP)
    id_name: str = "vni"  # the kind's own name for its identifier
    id_title: str = "VNI"
    id_bits: int = 24
    layer: str = ""  # "module:Class" of the Scapy layer
    adapter: str = ""  # "module:object" with encapsulate/decapsulate
    lint_prefix: str = ""  # rule family: GNV001...
    variant_of: Optional[str] = None  # vxlan-gpe is a variant of vxlan
    out_of_band: Tuple[str, ...] = ()  # what a receiver must know that the wire does not say
    # the generic wire reading (see the module docstring)
    id_offset: Optional[int] = None  # byte offset of the identifier's word in the header
    id_shift: int = 0  # bits below the identifier in that word (VXLAN: 8)
    inner: str = "none"  # what follows header_len bytes: one of INNER_TYPES

    def __post_init__(self) -> None:
        if self.inner not in INNER_TYPES:
            raise ValueError(
                "%s: inner %r is not one of %s" % (self.name, self.inner, ", ".join(INNER_TYPES))
            )
        if self.id_offset is not None and not 0 <= self.id_offset <= self.header_len - self.id_bytes:
            raise ValueError(
                "%s: a %d-byte identifier word at offset %s does not fit the %d-byte header"
                % (self.name, self.id_bytes, self.id_offset, self.header_len)
            )

    @property
    def transport(self) -> str:
        """ "udp", "tcp", "ip", or "ip/udp" (L2TPv3: IP protocol 115 or UDP)."""
        parts = [
            p
            for p, have in (
                ("ip", self.ip_protocol is not None),
                ("udp", bool(self.udp_ports)),
                ("tcp", bool(self.tcp_ports)),
            )
            if have
        ]
        return "/".join(parts)

    @property
    def ports(self) -> FrozenSet[int]:
        """Default UDP or TCP ports."""
        return self.udp_ports | self.tcp_ports

    @property
    def id_max(self) -> int:
        return (1 << self.id_bits) - 1

    @property
    def id_bytes(self) -> int:
        """Bytes of the word holding the identifier (identifier and the bits below it)."""
        return (self.id_bits + self.id_shift + 7) // 8

    @property
    def generic(self) -> bool:
        """True when a receiver can read the header from these fields alone."""
        return self.id_offset is not None

    def read_id(self, data: bytes, tunnel_off: int) -> int:
        """The identifier of the header at TUNNEL_OFF in DATA (``generic`` records)."""
        at = tunnel_off + (self.id_offset or 0)
        return (int.from_bytes(data[at : at + self.id_bytes], "big") >> self.id_shift) & self.id_max

    def load_layer(self) -> Any:
        """The Scapy layer class (imports Scapy)."""
        return _load(self.layer)

    def load_adapter(self) -> Any:
        """The encapsulate/decapsulate adapter (imports Scapy)."""
        return _load(self.adapter)

    def check_id(self, value: int) -> int:
        """VALUE if it fits the identifier, else ValueError naming the field."""
        if not 0 <= value <= self.id_max:
            raise ValueError(
                "%s %s %d does not fit in %d bits (0-%d)"
                % (self.title, self.id_title, value, self.id_bits, self.id_max)
            )
        return value


def _load(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


# -- well-known ports and protocols (the only place they are written) ---------------------
GENEVE_PORT = 6081  # RFC 8926 §3.3, IANA
VXLAN_PORT = 4789  # RFC 7348 §5, IANA
VXLAN_LINUX_PORT = 8472  # Linux's legacy default (VXLAN_LINUX_PORT, before IANA)
VXLAN_ACI_PORT = 48879  # Cisco ACI fabric (iVXLAN)
VXLAN_GPE_PORT = 4790  # draft-ietf-nvo3-vxlan-gpe, IANA
STT_PORT = 7471  # draft-davie-stt-08, IANA "stt" (TCP)
L2TP_PORT = 1701  # RFC 3931 §4.1.2
IPPROTO_GRE = 47  # RFC 2784
IPPROTO_L2TP = 115  # RFC 3931 §4.1.1

_RECORDS: Tuple[Encapsulation, ...] = (
    Encapsulation(
        name="geneve",
        kind=Kind.GENEVE,
        title="Geneve",
        spec="RFC 8926",
        aliases=("gnv",),
        udp_ports=frozenset([GENEVE_PORT]),
        ports_key="geneve",
        port_option="--geneve-port",
        header_len=8,
        id_offset=4,
        id_shift=8,
        inner="ether",
        layer="scapy_geneve.layers.geneve:Geneve",
        adapter="scapy_geneve.tunnels.adapters:GENEVE",
        lint_prefix="GNV",
    ),
    Encapsulation(
        name="vxlan",
        kind=Kind.VXLAN,
        title="VXLAN",
        spec="RFC 7348",
        udp_ports=frozenset([VXLAN_PORT, VXLAN_LINUX_PORT, VXLAN_ACI_PORT]),
        ports_key="vxlan",
        port_option="--vxlan-port",
        header_len=8,
        id_offset=4,
        id_shift=8,
        inner="ether",
        layer="scapy.layers.vxlan:VXLAN",
        adapter="scapy_geneve.tunnels.adapters:VXLAN",
        lint_prefix="VXL",
    ),
    Encapsulation(
        name="vxlan-gpe",
        kind=Kind.VXLAN_GPE,
        title="VXLAN-GPE",
        spec="draft-ietf-nvo3-vxlan-gpe",
        aliases=("gpe", "vxlan_gpe"),
        udp_ports=frozenset([VXLAN_GPE_PORT]),
        ports_key="gpe",
        port_option="--gpe-port",
        header_len=8,
        id_offset=4,
        id_shift=8,
        inner="ether",
        layer="scapy.layers.vxlan:VXLAN",
        adapter="scapy_geneve.tunnels.adapters:VXLAN",
        lint_prefix="VXL",
        variant_of="vxlan",
    ),
    Encapsulation(
        name="nvgre",
        kind=Kind.NVGRE,
        title="NVGRE",
        spec="RFC 7637",
        ip_protocol=IPPROTO_GRE,
        header_len=8,
        id_name="vsid",
        id_title="VSID",
        id_offset=4,
        id_shift=8,
        inner="ether",
        layer="scapy_geneve.layers.nvgre:NVGRE",
        adapter="scapy_geneve.tunnels.adapters:NVGRE",
        lint_prefix="NVG",
    ),
    Encapsulation(
        name="stt",
        kind=Kind.STT,
        title="STT",
        spec="draft-davie-stt-08",
        tcp_ports=frozenset([STT_PORT]),
        ports_key="stt",
        port_option="--stt-port",
        header_len=18,
        id_name="context_id",
        id_title="Context ID",
        id_bits=64,
        id_offset=8,
        inner="ether",
        layer="scapy_geneve.layers.stt:STT",
        adapter="scapy_geneve.tunnels.adapters:STT",
        lint_prefix="STT",
        out_of_band=(
            "continuation segments carry no STT header: the first segment's "
            "context ID is matched by (outer source, outer destination, TCP ACK)",
        ),
    ),
    Encapsulation(
        name="l2tpv3",
        kind=Kind.L2TPV3,
        title="L2TPv3",
        spec="RFC 3931",
        aliases=("l2tp",),
        ip_protocol=IPPROTO_L2TP,
        udp_ports=frozenset([L2TP_PORT]),
        either_port=True,
        ports_key="l2tp",
        port_option="--l2tp-port",
        header_len=4,
        id_name="session_id",
        id_title="Session ID",
        id_bits=32,
        id_offset=0,
        inner="ether",
        layer="scapy_geneve.layers.l2tpv3:L2TPv3",
        adapter="scapy_geneve.tunnels.adapters:L2TPV3",
        lint_prefix="L2T",
        out_of_band=(
            "cookie length (0, 4 or 8 bytes) per session",
            "whether the Default L2-Specific Sublayer is present",
            "the pseudowire type",
        ),
    ),
)

#: Every encapsulation by canonical name, in kind-code order.
REGISTRY: Dict[str, Encapsulation] = {rec.name: rec for rec in _RECORDS}
_BY_SPELLING: Dict[str, Encapsulation] = {
    spelling: rec for rec in _RECORDS for spelling in (rec.name,) + rec.aliases
}
_BY_KIND: Dict[int, Encapsulation] = {int(rec.kind): rec for rec in _RECORDS}
_BUILTIN = _RECORDS
#: (transport, port, kind name) of the registered kinds' default ports: what
#: ``Ports.others`` stands for by default (rebuilt by register/unregister).
_REGISTERED_PORTS: FrozenSet[Tuple[str, int, str]] = frozenset()


def register(record: Encapsulation) -> Encapsulation:
    """Add RECORD to the registry (a new encapsulation); returns it.

    Every reader (``get``, ``names``, ``records``, ``by_kind``, ``encapsulate``,
    ``decapsulate``, the wire decoder) sees it from then on, and so do
    :class:`Ports` and ``DEFAULT_PORTS``: its UDP/TCP ports claim their
    datagrams (``Ports.udp_kind`` / ``tcp_kind``).  Refuses a name, alias, kind
    code, default port or IP protocol already taken, and a ``ports_key`` that
    is one of the built-in :class:`Ports` fields.  :func:`unregister` removes it.
    """
    global _RECORDS
    _check_new(record)
    _RECORDS = _RECORDS + (record,)
    REGISTRY[record.name] = record
    _BY_SPELLING.update({spelling: record for spelling in (record.name,) + record.aliases})
    _BY_KIND[int(record.kind)] = record
    _claim_ports(record, True)
    return record


def _check_new(record: Encapsulation) -> None:
    if not 0 < int(record.kind) <= KIND_MAX:
        raise ValueError(
            "cannot register %r: kind code %d is not in 1-%d (the scan's int8 kind column)"
            % (record.name, int(record.kind), KIND_MAX)
        )
    taken = [s for s in (record.name,) + record.aliases if s in _BY_SPELLING]
    if int(record.kind) in _BY_KIND:
        taken.append("kind code %d" % int(record.kind))
    for transport, ports in (("UDP", record.udp_ports), ("TCP", record.tcp_ports)):
        taken += [
            "%s port %d (%s)" % (transport, port, rec.name)
            for rec in _RECORDS
            for port in sorted(ports)
            if port in (rec.udp_ports if transport == "UDP" else rec.tcp_ports)
        ]
    if record.ip_protocol is not None and by_ip_protocol(record.ip_protocol) is not None:
        taken.append("IP protocol %d" % record.ip_protocol)
    if record.ports_key in Ports._fields:
        taken.append("ports_key %r (a built-in kind's)" % record.ports_key)
    if taken:
        raise ValueError("cannot register %r: %s already registered" % (record.name, ", ".join(taken)))


def _claim_ports(record: Encapsulation, claim: bool) -> None:
    """Add (or remove) RECORD's default ports to the registered kinds' port table."""
    global _REGISTERED_PORTS
    mine = frozenset(
        [("udp", port, record.name) for port in record.udp_ports]
        + [("tcp", port, record.name) for port in record.tcp_ports]
    )
    _REGISTERED_PORTS = _REGISTERED_PORTS | mine if claim else _REGISTERED_PORTS - mine


def unregister(name: str) -> None:
    """Remove the encapsulation NAME that :func:`register` added."""
    global _RECORDS
    record = get(name)
    if any(record is builtin for builtin in _BUILTIN):
        raise ValueError("cannot unregister %r: a built-in encapsulation" % record.name)
    _RECORDS = tuple(rec for rec in _RECORDS if rec is not record)
    del REGISTRY[record.name]
    for spelling in (record.name,) + record.aliases:
        del _BY_SPELLING[spelling]
    del _BY_KIND[int(record.kind)]
    _claim_ports(record, False)


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


def by_ip_protocol(protocol: int) -> Optional[Encapsulation]:
    """The record carried directly over IP with PROTOCOL (GRE: nvgre), or None."""
    for rec in _RECORDS:
        if rec.ip_protocol == protocol:
            return rec
    return None


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


class _RegisteredNow(frozenset):
    """``Ports.others``'s default: the registered kinds' default ports as they are *now*.

    Empty as a set (code that walks the Ports fields as sets of port numbers
    finds nothing in it); equal only to itself, so a cache keyed on a
    :class:`Ports` never mistakes it for an explicit empty set.
    """

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _RegisteredNow)

    def __ne__(self, other: object) -> bool:
        return not isinstance(other, _RegisteredNow)

    def __hash__(self) -> int:
        return hash("registry.REGISTERED_NOW")

    def __repr__(self) -> str:
        return "REGISTERED_NOW"


_REGISTERED_NOW = _RegisteredNow()


class Ports(NamedTuple):
    """Which UDP/TCP ports mean which encapsulation (destination ports; L2TPv3 either).

    The defaults come from the registry; :meth:`extended` adds ports (extra
    ports always add to the defaults, in every command).  The built-in kinds
    have a field each; the kinds added with :func:`register` share ``others``,
    a set of (transport, port, kind name) with transport "udp" or "tcp".  Its
    default (in ``Ports()`` and ``DEFAULT_PORTS``) stands for the registered
    kinds' default ports *now*: a ``Ports()`` made before :func:`register`
    sees the new kind, and forgets it after :func:`unregister`.  An explicit
    set (``frozenset()``: none) is taken as it is.  Registration is per process.
    """

    geneve: FrozenSet[int] = _defaults("geneve")
    vxlan: FrozenSet[int] = _defaults("vxlan")
    gpe: FrozenSet[int] = _defaults("gpe")
    stt: FrozenSet[int] = _defaults("stt")
    l2tp: FrozenSet[int] = _defaults("l2tp")
    others: FrozenSet[Any] = _REGISTERED_NOW  # (transport, port, kind name) triples

    def registered(self) -> FrozenSet[Tuple[str, int, str]]:
        """(transport, port, kind name) of the registered kinds' ports."""
        if isinstance(self.others, _RegisteredNow):
            return _REGISTERED_PORTS
        return frozenset(self.others)

    def extended(self, **extra: Iterable[int]) -> "Ports":
        """These ports plus EXTRA (``geneve=[6082]``; keys are field names or kind names)."""
        changes: Dict[str, Any] = {}
        for key, values in extra.items():
            ports = frozenset(int(v) for v in values)
            field = key if key in self._fields else get(key).ports_key
            if field in self._fields and field != "others":
                changes[field] = getattr(self, field) | ports
                continue
            record = get(key)
            if record.ip_protocol is not None and not record.ports:
                raise KeyError("%s is not carried on a port" % key)
            transport = "tcp" if record.tcp_ports and not record.udp_ports else "udp"
            added = frozenset((transport, port, record.name) for port in ports)
            changes["others"] = changes.get("others", self.registered()) | added
        return self._replace(**changes)

    def udp_kind(self, sport: int, dport: int) -> Optional[str]:
        """The kind a UDP datagram's ports say, or None (destination port first)."""
        if dport in self.geneve:
            return "geneve"
        if dport in self.gpe:  # before vxlan: a port the user says carries GPE is GPE
            return "vxlan-gpe"
        if dport in self.vxlan:
            return "vxlan"
        if dport in self.l2tp or sport in self.l2tp:
            return "l2tpv3"
        return _other_kind(self.registered(), "udp", sport, dport)

    def tcp_kind(self, sport: int, dport: int) -> Optional[str]:
        """The kind a TCP segment's ports say, or None (STT: the destination port)."""
        if dport in self.stt:
            return "stt"
        return _other_kind(self.registered(), "tcp", sport, dport)


@lru_cache(maxsize=64)
def _port_table(others: FrozenSet[Tuple[str, int, str]], transport: str) -> Dict[int, str]:
    return {port: name for proto, port, name in sorted(others) if proto == transport}


def _other_kind(
    others: FrozenSet[Tuple[str, int, str]], transport: str, sport: int, dport: int
) -> Optional[str]:
    """A registered kind's name for these ports (destination first; source if ``either_port``)."""
    if not others:
        return None
    table = _port_table(others, transport)
    name = table.get(dport)
    if name is None:
        name = table.get(sport)
        record = _BY_SPELLING.get(name) if name is not None else None
        if record is None or not record.either_port:
            return None
    return name


#: The registry's default ports (registered kinds included, as they are now).
DEFAULT_PORTS = Ports()
