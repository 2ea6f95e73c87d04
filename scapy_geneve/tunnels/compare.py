"""Side-by-side comparison of the five encapsulations, from packets actually built.

:func:`compare` puts the same inner frame in Geneve (with and without
options), VXLAN, NVGRE, STT and L2TPv3 (over IP and over UDP) through
:func:`scapy_geneve.tunnels.tunnel.encapsulate`, and measures each result:

- ``overhead``: outer bytes added to the inner Ethernet frame (outer IP,
  transport and tunnel headers; no outer Ethernet, no FCS);
- ``inner_mtu``: the largest inner IP packet that still goes out without IP
  fragmentation at the underlay MTU; for STT, the largest inner packet one
  STT frame can carry (it is segmented like TCP, so it is not bounded by the
  underlay MTU);
- ``efficiency``: inner IP bytes / outer IP bytes on the wire, per inner size
  (None where the kind cannot carry that size unfragmented);
- ``id_bits``: the identifier width, read from the layer's field and checked
  by building the largest value and one more;
- ``max_extension``: the most bytes the header can grow by for metadata
  (Geneve options, the L2TPv3 cookie and sublayer), measured by building it;
- ``stateless``: whether a receiver (a NIC) finds the inner frame from the
  wire alone, checked by dissecting the packet under every L2TPv3 session
  table layout and comparing the inner frames;
- ``inner_in_every_packet``: whether every packet on the wire holds the
  inner headers (a NIC can hash or checksum the inner flow per packet),
  checked by dissecting each packet of a frame larger than one segment:
  only STT's first segment carries them;
- ``entropy``: the outer header fields that change between inner flows
  (ECMP/RSS entropy), found by building several flows and diffing;
- ``transport``: the outer protocol and port.

No number in the table is typed in.
"""

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from scapy.packet import NoPayload, Packet, Raw
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from scapy_geneve import registry
from scapy_geneve.errors import BuildError, GeneveError
from scapy_geneve.layers.geneve import GeneveOption
from scapy_geneve.layers.geneve_options import (
    GeneveOptionGWLBAttachmentID,
    GeneveOptionGWLBEndpointID,
    GeneveOptionGWLBFlowCookie,
)
from scapy_geneve.layers.l2tpv3 import L2TPv3Layout, set_session_resolver
from scapy_geneve.tunnels.tunnel import decapsulate, encapsulate

__all__ = ["compare", "Comparison", "EncapsulationRow", "DEFAULT_SIZES", "VARIANTS", "MAX_INNER_SIZE"]

DEFAULT_SIZES = (64, 128, 256, 512, 1024, 1280, 1400, 1450, 1500, 4000, 9000)

#: (row name, kind, encapsulate() keywords); the kind's facts come from the registry.
VARIANTS: List[Tuple[str, str, Dict[str, Any]]] = [
    ("geneve", "geneve", {}),
    ("geneve+options", "geneve", {"options": "gwlb"}),
    ("vxlan", "vxlan", {}),
    ("nvgre", "nvgre", {}),
    ("stt", "stt", {"identifier": 1}),
    ("l2tpv3/ip", "l2tpv3", {"transport": "ip", "cookie": b"\x00" * 4}),
    ("l2tpv3/udp", "l2tpv3", {"transport": "udp", "cookie": b"\x00" * 4}),
]

_EXTENSIBILITY = {
    "geneve": "TLV options (Opt Len, 4-byte words)",
    "vxlan": "none in RFC 7348; GBP adds a 16-bit group policy ID, GPE a next protocol",
    "nvgre": "none; 8-bit FlowID for entropy",
    "stt": "fixed header: 64-bit context, VLAN TCI, offload flags",
    "l2tpv3": "per-session cookie (0/4/8 bytes) and L2-specific sublayer",
}
_IGNORED_FIELDS = {"chksum", "len", "plen", "cksum", "ack", "id", "seq"}


@dataclass
class EncapsulationRow:
    """One encapsulation, measured."""

    name: str
    kind: str
    transport: str
    overhead: int
    inner_mtu: int
    efficiency: List[Tuple[int, Optional[float]]]
    id_bits: int
    id_field: str
    header_len: int  # the fixed tunnel header (registry), after UDP/TCP/IP
    max_extension: int
    extensibility: str
    stateless: bool
    entropy: List[str]
    inner_in_every_packet: bool = True
    segments_at: List[Tuple[int, int]] = field(default_factory=list)  # (size, packets)


@dataclass
class Comparison:
    """The table :func:`compare` returns: one row per encapsulation."""

    underlay: str
    mtu: int
    inner_size: int
    sizes: List[int]
    rows: List[EncapsulationRow]

    def as_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict of the whole comparison."""
        return {
            "underlay": self.underlay,
            "mtu": self.mtu,
            "inner_size": self.inner_size,
            "sizes": list(self.sizes),
            "rows": [
                dict(
                    r.__dict__,
                    efficiency=[[s, e] for s, e in r.efficiency],
                    segments_at=[[s, n] for s, n in r.segments_at],
                )
                for r in self.rows
            ],
        }


#: An inner IPv4 packet's Total Length is 16 bits.
MAX_INNER_SIZE = 0xFFFF


def _check_size(size: int, what: str = "inner_size", version: int = 4) -> None:
    """Refuse an inner IP packet size that no IP/UDP packet can have."""
    hdr = (40 if version == 6 else 20) + 8
    if not isinstance(size, int) or isinstance(size, bool):
        raise BuildError("compare", what, size, "must be an integer")
    if size < hdr:
        raise BuildError("compare", what, size, "is below %d, the inner IP + UDP headers" % hdr)
    if size > MAX_INNER_SIZE:
        raise BuildError(
            "compare", what, size, "is over %d, the largest IP packet (16-bit Total Length)" % MAX_INNER_SIZE
        )


def _inner(size: int, sport: int = 40000, version: int = 4) -> Packet:
    """An inner Ether/IP/UDP frame whose IP packet is SIZE bytes long."""
    _check_size(size, version=version)
    if version == 6:
        l3: Packet = IPv6(src="2001:db8:1::1", dst="2001:db8:1::2")
        hdr = 40 + 8
    else:
        l3 = IP(src="10.1.0.1", dst="10.1.0.2")
        hdr = 20 + 8
    return (
        Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22")
        / l3
        / UDP(sport=sport, dport=4791)
        / Raw(b"\x00" * (size - hdr))
    )


def _params(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(kwargs)
    if out.get("options") == "gwlb":
        out["options"] = [
            GeneveOptionGWLBEndpointID(endpoint_id=0x0123456789ABCDEF),
            GeneveOptionGWLBAttachmentID(attachment_id=0x1122334455667788),
            GeneveOptionGWLBFlowCookie(flow_cookie=0xCAFEF00D),
        ]
    return out


def _wire(outer: Any) -> List[int]:
    packets = outer if isinstance(outer, list) else [outer]
    return [len(bytes(p)) for p in packets]


def _build(
    kind: str, inner: Packet, underlay: str, kwargs: Dict[str, Any], vni: int = 0x1234, mtu: int = 1500
) -> Any:
    params = _params(kwargs)
    if kind == "stt":
        params.setdefault("mtu", mtu)
    if kind == "l2tpv3":
        params["register"] = False
    return encapsulate(inner, kind, vni=vni, underlay=underlay, **params)


def _ip_class(underlay: str) -> type:
    return IPv6 if underlay == "ipv6" else IP


def _transport(outer: Packet) -> str:
    l3 = outer
    while not isinstance(l3, NoPayload) and not isinstance(l3, (IP, IPv6)):
        l3 = l3.payload
    nxt = l3.payload
    if isinstance(nxt, UDP):
        return "UDP %d" % nxt.dport
    if isinstance(nxt, TCP):
        return "TCP %d" % nxt.dport
    proto = int(l3.proto) if isinstance(l3, IP) else int(l3.nh)
    names = [rec.title for rec in registry.records() if rec.ip_protocol == proto]
    return "IP %d" % proto + (" (%s)" % names[0] if names else "")


def _tunnel_layers() -> Tuple[type, ...]:
    return tuple(cls for rec in registry.records() for cls in rec.load_adapter().layers)


def _outer_fields(outer: Packet) -> Dict[str, Any]:
    """Field values of the outer headers, up to and including the tunnel header."""
    values: Dict[str, Any] = {}
    stop = _tunnel_layers()
    layer = outer
    while not isinstance(layer, NoPayload):
        for f in layer.fields_desc:
            values["%s.%s" % (layer.__class__.__name__, f.name)] = layer.getfieldval(f.name)
        if isinstance(layer, stop):
            break
        layer = layer.payload
    return values


def _entropy(kind: str, underlay: str, kwargs: Dict[str, Any]) -> List[str]:
    flows = [_build(kind, _inner(200, sport=40000 + i), underlay, kwargs) for i in range(8)]
    first = [f[0] if isinstance(f, list) else f for f in flows]
    tables = [_outer_fields(_ip_class(underlay)(bytes(p))) for p in first]
    return [
        key
        for key in tables[0]
        if key.split(".", 1)[1] not in _IGNORED_FIELDS and len({repr(t.get(key)) for t in tables}) > 1
    ]


@contextmanager
def _sessions_laid_out(cookie_len: int, l2ss: bool) -> Iterator[None]:
    """Dissect every L2TPv3 session with this layout (the session table is not touched)."""
    layout = L2TPv3Layout(cookie_len, l2ss)
    previous = set_session_resolver(lambda session_id, dst: layout)
    try:
        yield
    finally:
        set_session_resolver(previous)


def _stateless(kind: str, underlay: str, kwargs: Dict[str, Any]) -> bool:
    """Does every session layout a receiver might assume give back the same inner frame?"""
    inner = _inner(200)
    outer = _build(kind, inner, underlay, kwargs)
    wires = [bytes(p) for p in (outer if isinstance(outer, list) else [outer])]
    cls = _ip_class(underlay)
    seen = set()
    for cookie_len in (0, 4, 8):
        for l2ss in (False, True):
            with _sessions_laid_out(cookie_len, l2ss):
                try:
                    got, _ = decapsulate([cls(w) for w in wires] if len(wires) > 1 else cls(wires[0]))
                    seen.add(bytes(got))
                except Exception:  # noqa: BLE001 - a wrong layout may not parse at all
                    seen.add(b"<unparsable>")
    return seen == {bytes(inner)}


def _carries_flow(wire: bytes, cls: type, sport: int) -> bool:
    """Does the packet WIRE hold the inner flow's UDP header (source port SPORT)?"""
    layer = cls(wire).payload  # below the outer IP header
    while not isinstance(layer, NoPayload):
        if isinstance(layer, UDP) and int(layer.sport) == sport:
            return True
        layer = layer.payload
    return False


def _inner_in_every_packet(kind: str, underlay: str, kwargs: Dict[str, Any], mtu: int) -> bool:
    """Does each wire packet of a frame carry the inner IP/UDP headers?

    The frame is the largest one the kind sends without IP fragmentation, or
    (STT) one of twice the MTU, at most the largest an STT frame holds; every
    packet is dissected from its bytes, with the layout it was built with.
    """
    probe = _wire(_build(kind, _inner(200), underlay, kwargs, mtu=1 << 17))
    if kind == "stt":
        size = min(2 * mtu, _stt_largest_inner(kind, underlay, kwargs))
    else:
        size = mtu - (probe[0] - 200)
    built = _build(kind, _inner(size, sport=40123), underlay, kwargs, mtu=mtu)
    cookie = kwargs.get("cookie", b"")
    with _sessions_laid_out(len(cookie), False):
        return all(
            _carries_flow(bytes(w), _ip_class(underlay), 40123)
            for w in (built if isinstance(built, list) else [built])
        )


def _max_extension(kind: str, underlay: str) -> int:
    inner = _inner(200)
    base = sum(_wire(_build(kind, inner, underlay, {"transport": "ip"} if kind == "l2tpv3" else {})))
    if kind == "geneve":
        # Fill Opt Len: 63 words as two options (128 + 124 bytes).
        opts = [
            GeneveOption(classid=0xFF00, type=1, data=b"\x00" * 124),
            GeneveOption(classid=0xFF00, type=2, data=b"\x00" * 120),
        ]
        grown = sum(_wire(_build(kind, inner, underlay, {"options": opts})))
    elif kind == "l2tpv3":
        grown = sum(
            _wire(_build(kind, inner, underlay, {"transport": "ip", "cookie": b"\x00" * 8, "sequence": 1}))
        )
    else:
        grown = base
    return grown - base


def _measured_id_bits(rec: registry.Encapsulation, underlay: str, kwargs: Dict[str, Any]) -> int:
    """The registry's identifier width, proved by building the largest value and one more."""
    inner = _inner(100)
    _build(rec.name, inner, underlay, kwargs, vni=rec.id_max)
    try:
        _build(rec.name, inner, underlay, kwargs, vni=rec.id_max + 1)
    except BuildError:
        return rec.id_bits
    raise GeneveError(
        "compare: %s accepted identifier %d, over the %d bits the registry "
        "gives %s" % (rec.name, rec.id_max + 1, rec.id_bits, rec.id_name)
    )


def _stt_largest_inner(kind: str, underlay: str, kwargs: Dict[str, Any]) -> int:
    """The largest inner IP packet one STT frame (64 KB) carries."""
    frame = sum(_wire(_build(kind, _inner(200), underlay, kwargs, mtu=1 << 17)))
    per_frame = frame - 200 - (40 if underlay == "ipv6" else 20) - 20  # one segment
    return MAX_INNER_SIZE - per_frame  # STT header + inner Ethernet within 64 KB


def _inner_mtu(kind: str, underlay: str, kwargs: Dict[str, Any], mtu: int) -> int:
    """The largest inner IP packet sent whole (STT: in one frame); proved by building."""
    if kind == "stt":
        best = _stt_largest_inner(kind, underlay, kwargs)
        _build(kind, _inner(best), underlay, kwargs, mtu=mtu)  # fits
        try:
            _build(kind, _inner(best + 1), underlay, kwargs, mtu=mtu)
        except BuildError:
            return best
        raise GeneveError("compare: STT accepted a frame over 65535 bytes")
    probe = 200
    overhead = _wire(_build(kind, _inner(probe), underlay, kwargs))[0] - probe
    best = min(mtu - overhead, MAX_INNER_SIZE)
    built = _wire(_build(kind, _inner(best), underlay, kwargs))[0]
    if built != best + overhead:
        raise GeneveError(
            "compare: a %d-byte inner packet in %s made a %d-byte packet, "
            "not %d" % (best, kind, built, best + overhead)
        )
    return best


def _curve(
    kind: str, underlay: str, kwargs: Dict[str, Any], mtu: int, overhead: int, sizes: Sequence[int]
) -> Tuple[List[Tuple[int, Optional[float]]], List[Tuple[int, int]]]:
    """Efficiency per inner size (None: not carried whole), and packets per frame."""
    curve: List[Tuple[int, Optional[float]]] = []
    segs: List[Tuple[int, int]] = []
    for size in sizes:
        if kind != "stt" and size + 14 + overhead > mtu:
            # One outer packet per inner frame: over the MTU it would need IP
            # fragmentation (and over 64 KB it cannot be built at all).
            curve.append((size, None))
            continue
        try:
            lengths = _wire(_build(kind, _inner(size), underlay, kwargs, mtu=mtu))
        except BuildError:
            curve.append((size, None))  # STT: the frame is over 64 KB
            continue
        if max(lengths) > mtu:
            curve.append((size, None))  # would need IP fragmentation
            continue
        curve.append((size, round(size / sum(lengths), 4)))
        segs.append((size, len(lengths)))
    return curve, segs


def _row(
    name: str, kind: str, kwargs: Dict[str, Any], underlay: str, mtu: int, sizes: Sequence[int]
) -> EncapsulationRow:
    rec = registry.get(kind)
    first = _build(kind, _inner(200), underlay, kwargs, mtu=mtu)
    first = first[0] if isinstance(first, list) else first
    frame = _wire(_build(kind, _inner(200), underlay, kwargs, mtu=1 << 17))
    overhead = frame[0] - (200 + 14)  # bytes added to the inner frame
    curve, segs = _curve(kind, underlay, kwargs, mtu, overhead, sizes)
    return EncapsulationRow(
        name=name,
        kind=kind,
        transport=_transport(first),
        overhead=overhead,
        inner_mtu=_inner_mtu(kind, underlay, kwargs, mtu),
        efficiency=curve,
        id_bits=_measured_id_bits(rec, underlay, kwargs),
        id_field="%s.%s" % (rec.load_layer().__name__, rec.id_name),
        header_len=rec.header_len,
        max_extension=_max_extension(kind, underlay),
        extensibility=_EXTENSIBILITY[kind],
        stateless=_stateless(kind, underlay, kwargs),
        inner_in_every_packet=_inner_in_every_packet(kind, underlay, kwargs, mtu),
        entropy=_entropy(kind, underlay, kwargs),
        segments_at=segs,
    )


#: The underlay MTUs compare() takes: IPv6's minimum link MTU up to the IP maximum.
MTU_RANGE = (576, 65535)


def compare(
    inner_size: int = 1400,
    underlay: str = "ipv4",
    mtu: int = 1500,
    sizes: Optional[Iterable[int]] = None,
    variants: Optional[Sequence[str]] = None,
) -> Comparison:
    """Build every encapsulation of the same inner frames and measure them.

    ``inner_size`` is the inner IP packet size of the headline row values
    (segment counts); ``sizes`` the inner IP sizes of the efficiency curve
    (default :data:`DEFAULT_SIZES` plus ``inner_size``); ``underlay``
    ``"ipv4"`` or ``"ipv6"``; ``mtu`` the underlay IP MTU (576..65535).
    ``variants`` limits the rows (names from :data:`VARIANTS`).
    """
    if underlay not in ("ipv4", "ipv6"):
        raise BuildError("compare", "underlay", underlay, "must be 'ipv4' or 'ipv6'")
    if not MTU_RANGE[0] <= mtu <= MTU_RANGE[1]:
        raise BuildError("compare", "mtu", mtu, "must be %d..%d" % MTU_RANGE)
    _check_size(inner_size)
    size_list = sorted(set(sizes if sizes is not None else DEFAULT_SIZES) | {inner_size})
    for size in size_list:
        _check_size(size, "sizes")
    rows = [
        _row(name, kind, kwargs, underlay, mtu, size_list)
        for name, kind, kwargs in VARIANTS
        if variants is None or name in variants
    ]
    return Comparison(underlay, mtu, inner_size, size_list, rows)
