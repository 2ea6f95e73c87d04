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

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from scapy.config import conf
from scapy.packet import NoPayload, Packet, Raw
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from scapy_geneve.errors import BuildError
from scapy_geneve.layers.geneve import Geneve, GeneveOption
from scapy_geneve.layers.geneve_options import (GeneveOptionGWLBAttachmentID,
                                                GeneveOptionGWLBEndpointID,
                                                GeneveOptionGWLBFlowCookie)
from scapy_geneve.layers.l2tpv3 import L2TPv3
from scapy_geneve.tunnels.l2tpv3 import L2TPv3Session
from scapy_geneve.layers.nvgre import NVGRE
from scapy_geneve.layers.stt import STT
from scapy_geneve.layers.vxlan import VXLAN
from scapy_geneve.tunnels.tunnel import decapsulate, encapsulate

__all__ = ["compare", "Comparison", "EncapsulationRow", "DEFAULT_SIZES", "VARIANTS",
           "MAX_INNER_SIZE"]

DEFAULT_SIZES = (64, 128, 256, 512, 1024, 1280, 1400, 1450, 1500, 4000, 9000)

#: (row name, kind, encapsulate() keywords, identifier field)
VARIANTS: List[Tuple[str, str, Dict[str, Any], Tuple[type, str]]] = [
    ("geneve", "geneve", {}, (Geneve, "vni")),
    ("geneve+options", "geneve", {"options": "gwlb"}, (Geneve, "vni")),
    ("vxlan", "vxlan", {}, (VXLAN, "vni")),
    ("nvgre", "nvgre", {}, (NVGRE, "vsid")),
    ("stt", "stt", {"identifier": 1}, (STT, "context_id")),
    ("l2tpv3/ip", "l2tpv3", {"transport": "ip", "cookie": b"\x00" * 4}, (L2TPv3, "session_id")),
    ("l2tpv3/udp", "l2tpv3", {"transport": "udp", "cookie": b"\x00" * 4},
     (L2TPv3, "session_id")),
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
            "underlay": self.underlay, "mtu": self.mtu, "inner_size": self.inner_size,
            "sizes": list(self.sizes),
            "rows": [dict(r.__dict__, efficiency=[[s, e] for s, e in r.efficiency],
                          segments_at=[[s, n] for s, n in r.segments_at])
                     for r in self.rows],
        }


#: An inner IPv4 packet's Total Length is 16 bits.
MAX_INNER_SIZE = 0xFFFF


def _check_size(size: int, what: str = "inner_size", version: int = 4) -> None:
    """Refuse an inner IP packet size that no IP/UDP packet can have."""
    hdr = (40 if version == 6 else 20) + 8
    if not isinstance(size, int) or isinstance(size, bool):
        raise BuildError("compare", what, size, "must be an integer")
    if size < hdr:
        raise BuildError("compare", what, size,
                         "is below %d, the inner IP + UDP headers" % hdr)
    if size > MAX_INNER_SIZE:
        raise BuildError("compare", what, size,
                         "is over %d, the largest IP packet (16-bit Total Length)"
                         % MAX_INNER_SIZE)


def _inner(size: int, sport: int = 40000, version: int = 4) -> Packet:
    """An inner Ether/IP/UDP frame whose IP packet is SIZE bytes long."""
    _check_size(size, version=version)
    if version == 6:
        l3: Packet = IPv6(src="2001:db8:1::1", dst="2001:db8:1::2")
        hdr = 40 + 8
    else:
        l3 = IP(src="10.1.0.1", dst="10.1.0.2")
        hdr = 20 + 8
    return (Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:22") / l3 /
            UDP(sport=sport, dport=4791) / Raw(b"\x00" * (size - hdr)))


def _params(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(kwargs)
    if out.get("options") == "gwlb":
        out["options"] = [GeneveOptionGWLBEndpointID(endpoint_id=0x0123456789ABCDEF),
                          GeneveOptionGWLBAttachmentID(attachment_id=0x1122334455667788),
                          GeneveOptionGWLBFlowCookie(flow_cookie=0xCAFEF00D)]
    return out


def _wire(outer: Any) -> List[int]:
    packets = outer if isinstance(outer, list) else [outer]
    return [len(bytes(p)) for p in packets]


def _build(kind: str, inner: Packet, underlay: str, kwargs: Dict[str, Any],
           vni: int = 0x1234, mtu: int = 1500) -> Any:
    params = _params(kwargs)
    if kind == "stt":
        params.setdefault("mtu", mtu)
    return encapsulate(inner, kind, vni=vni, underlay=underlay,
                       **({"register": False} if kind == "l2tpv3" else {}), **params)


def _field_bits(cls: type, name: str) -> int:
    fld = None
    for f in cls.fields_desc:  # type: ignore[attr-defined]
        if f.name == name:
            fld = getattr(f, "fld", f)
    size = getattr(fld, "size", None)
    if isinstance(size, int):
        return size
    return int(getattr(fld, "sz", 0)) * 8


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
    return {47: "GRE (IP 47)", 115: "IP 115"}.get(proto, "IP %d" % proto)


def _outer_fields(outer: Packet) -> Dict[str, Any]:
    """Field values of the outer headers, up to and including the tunnel header."""
    values: Dict[str, Any] = {}
    layer = outer
    while not isinstance(layer, NoPayload):
        for f in layer.fields_desc:
            values["%s.%s" % (layer.__class__.__name__, f.name)] = layer.getfieldval(f.name)
        if isinstance(layer, (Geneve, VXLAN, NVGRE, STT, L2TPv3)):
            break
        layer = layer.payload
    return values


def _entropy(kind: str, underlay: str, kwargs: Dict[str, Any]) -> List[str]:
    flows = [_build(kind, _inner(200, sport=40000 + i), underlay, kwargs) for i in range(8)]
    first = [f[0] if isinstance(f, list) else f for f in flows]
    tables = [_outer_fields(IP(bytes(p)) if underlay == "ipv4" else IPv6(bytes(p)))
              for p in first]
    varying = []
    for key in tables[0]:
        if key.split(".", 1)[1] in _IGNORED_FIELDS:
            continue
        if len({repr(t.get(key)) for t in tables}) > 1:
            varying.append(key)
    return varying


def _stateless(kind: str, underlay: str, kwargs: Dict[str, Any]) -> bool:
    """Does every session-table layout give back the same inner frame?"""
    inner = _inner(200)
    outer = _build(kind, inner, underlay, kwargs)
    wires = [bytes(p) for p in (outer if isinstance(outer, list) else [outer])]
    cls = IP if underlay == "ipv4" else IPv6
    cfg = conf.contribs.setdefault("scapy_geneve", {})
    saved = (dict(cfg.get("l2tpv3_sessions", {})), cfg.get("l2tpv3_default"))
    seen = set()
    try:
        cfg["l2tpv3_sessions"] = {}
        for cookie_len in (0, 4, 8):
            for l2ss in (False, True):
                cfg["l2tpv3_default"] = L2TPv3Session(cookie_len, l2ss)
                try:
                    got, _ = decapsulate([cls(w) for w in wires] if len(wires) > 1
                                         else cls(wires[0]))
                    seen.add(bytes(got))
                except Exception:  # noqa: BLE001 - a wrong layout may not parse at all
                    seen.add(b"<unparsable>")
    finally:
        cfg["l2tpv3_sessions"], cfg["l2tpv3_default"] = saved
    return seen == {bytes(inner)}


def _inner_in_every_packet(kind: str, underlay: str, kwargs: Dict[str, Any],
                           mtu: int) -> bool:
    """Does each wire packet of a frame carry the inner IP/UDP headers?

    The frame is the largest one the kind sends without IP fragmentation, or
    (STT) one of twice the MTU; every packet is dissected from its bytes.
    """
    cls = IP if underlay == "ipv4" else IPv6
    probe = _wire(_build(kind, _inner(200), underlay, kwargs, mtu=1 << 17))
    size = 2 * mtu if kind == "stt" else mtu - (probe[0] - 200)
    built = _build(kind, _inner(size, sport=40123), underlay, kwargs, mtu=mtu)
    # The receiver knows its sessions: dissect L2TPv3 with the layout it was built with.
    cookie = kwargs.get("cookie", b"")
    cfg = conf.contribs.setdefault("scapy_geneve", {})
    saved = (dict(cfg.get("l2tpv3_sessions", {})), cfg.get("l2tpv3_default"))
    try:
        cfg["l2tpv3_sessions"] = {}
        cfg["l2tpv3_default"] = L2TPv3Session(len(cookie), False)
        for wire in (built if isinstance(built, list) else [built]):
            layer = cls(bytes(wire)).payload          # below the outer IP header
            found = False
            while not isinstance(layer, NoPayload):
                if isinstance(layer, UDP) and int(layer.sport) == 40123:
                    found = True                      # the inner flow's UDP header
                    break
                layer = layer.payload
            if not found:
                return False
    finally:
        cfg["l2tpv3_sessions"], cfg["l2tpv3_default"] = saved
    return True


def _max_extension(name: str, kind: str, underlay: str) -> int:
    inner = _inner(200)
    base = sum(_wire(_build(kind, inner, underlay,
                            {"transport": "ip"} if kind == "l2tpv3" else {})))
    if kind == "geneve":
        # Fill Opt Len: 63 words as two options (128 + 124 bytes).
        opts = [GeneveOption(classid=0xFF00, type=1, data=b"\x00" * 124),
                GeneveOption(classid=0xFF00, type=2, data=b"\x00" * 120)]
        grown = sum(_wire(_build(kind, inner, underlay, {"options": opts})))
    elif kind == "l2tpv3":
        grown = sum(_wire(_build(kind, inner, underlay,
                                 {"transport": "ip", "cookie": b"\x00" * 8, "sequence": 1})))
    else:
        grown = base
    return grown - base


def _check_id_bits(kind: str, underlay: str, kwargs: Dict[str, Any], bits: int) -> None:
    inner = _inner(100)
    _build(kind, inner, underlay, kwargs, vni=(1 << bits) - 1)
    try:
        _build(kind, inner, underlay, kwargs, vni=1 << bits)
    except BuildError:
        return
    raise AssertionError("%s accepted a %d-bit identifier" % (kind, bits + 1))


def _inner_mtu(kind: str, underlay: str, kwargs: Dict[str, Any], mtu: int) -> int:
    probe = 200
    if kind == "stt":
        frame = sum(_wire(_build(kind, _inner(probe), underlay, kwargs, mtu=1 << 17)))
        per_frame = frame - probe - (40 if underlay == "ipv6" else 20) - 20  # one segment
        best = 0xFFFF - (per_frame - 0)  # STT header + inner Ethernet within 64 KB
        _build(kind, _inner(best), underlay, kwargs, mtu=mtu)          # fits
        try:
            _build(kind, _inner(best + 1), underlay, kwargs, mtu=mtu)
        except BuildError:
            return best
        raise AssertionError("STT accepted a frame over 65535 bytes")
    overhead = _wire(_build(kind, _inner(probe), underlay, kwargs))[0] - probe
    best = mtu - overhead
    assert _wire(_build(kind, _inner(best), underlay, kwargs))[0] == mtu
    return best


def compare(inner_size: int = 1400, underlay: str = "ipv4", mtu: int = 1500,
            sizes: Optional[Iterable[int]] = None,
            variants: Optional[Sequence[str]] = None) -> Comparison:
    """Build every encapsulation of the same inner frames and measure them.

    ``inner_size`` is the inner IP packet size of the headline row values
    (segment counts); ``sizes`` the inner IP sizes of the efficiency curve
    (default :data:`DEFAULT_SIZES` plus ``inner_size``); ``underlay``
    ``"ipv4"`` or ``"ipv6"``; ``mtu`` the underlay IP MTU.  ``variants``
    limits the rows (names from :data:`VARIANTS`).
    """
    if underlay not in ("ipv4", "ipv6"):
        raise BuildError("compare", "underlay", underlay, "must be 'ipv4' or 'ipv6'")
    if mtu < 576 or mtu > 65535:
        raise BuildError("compare", "mtu", mtu, "must be 576..65535")
    _check_size(inner_size)
    size_list = sorted(set(sizes if sizes is not None else DEFAULT_SIZES) | {inner_size})
    for size in size_list:
        _check_size(size, "sizes")
    rows = []
    for name, kind, kwargs, (cls, id_field) in VARIANTS:
        if variants is not None and name not in variants:
            continue
        probe = _build(kind, _inner(200), underlay, kwargs, mtu=mtu)
        first = probe[0] if isinstance(probe, list) else probe
        frame_overhead = _wire(_build(kind, _inner(200), underlay, kwargs, mtu=1 << 17))
        overhead = frame_overhead[0] - (200 + 14)   # bytes added to the inner frame
        inner_mtu = _inner_mtu(kind, underlay, kwargs, mtu)
        curve: List[Tuple[int, Optional[float]]] = []
        segs: List[Tuple[int, int]] = []
        for size in size_list:
            if kind != "stt" and size + 14 + overhead > mtu:
                # One outer packet per inner frame: over the MTU it would need IP
                # fragmentation (and over 64 KB it cannot be built at all).
                curve.append((size, None))
                continue
            try:
                built = _build(kind, _inner(size), underlay, kwargs, mtu=mtu)
            except BuildError:
                curve.append((size, None))       # STT: the frame is over 64 KB
                continue
            lengths = _wire(built)
            if max(lengths) > mtu:
                curve.append((size, None))       # would need IP fragmentation
                continue
            curve.append((size, round(size / sum(lengths), 4)))
            segs.append((size, len(lengths)))
        bits = _field_bits(cls, id_field)
        _check_id_bits(kind, underlay, kwargs, bits)
        rows.append(EncapsulationRow(
            name=name, kind=kind, transport=_transport(first), overhead=overhead,
            inner_mtu=inner_mtu, efficiency=curve, id_bits=bits,
            id_field="%s.%s" % (cls.__name__, id_field),
            max_extension=_max_extension(name, kind, underlay),
            extensibility=_EXTENSIBILITY[kind],
            stateless=_stateless(kind, underlay, kwargs),
            inner_in_every_packet=_inner_in_every_packet(kind, underlay, kwargs, mtu),
            entropy=_entropy(kind, underlay, kwargs), segments_at=segs))
    return Comparison(underlay, mtu, inner_size, size_list, rows)
