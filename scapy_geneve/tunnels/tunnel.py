"""One API over five encapsulations: :func:`encapsulate` and :func:`decapsulate`.

``encapsulate(inner, kind, vni=...)`` puts an inner frame in Geneve, VXLAN,
NVGRE, STT or L2TPv3 and returns the outer packet (STT: the list of its
segments), over an IPv4 or IPv6 underlay, with the defaults the RFCs ask for:

==========  ==========================  =====================  ======================
kind        identifier (``vni=``)       entropy                outer UDP checksum
==========  ==========================  =====================  ======================
geneve      VNI, 24 bits                UDP source port        computed (RFC 8926)
vxlan       VNI, 24 bits                UDP source port        zero on IPv4 (RFC 7348)
nvgre       VSID, 24 bits (``vsid=``)   FlowID (8 bits)        no UDP
stt         Context ID, 64 bits         TCP source port        TCP checksum, always
            (``context_id=``)
l2tpv3      Session ID, 32 bits         none (IPv6 flow label  computed over UDP 1701;
            (``session_id=``)           only)                  no UDP over IP 115
==========  ==========================  =====================  ======================

Every kind: DF set on IPv4 (Path MTU discovery, as RFC 8926 recommends;
VXLAN packets must not be fragmented, RFC 7348), TTL 64, ECN copied from the inner IP
header (RFC 6040 normal mode), on IPv6 a flow label from the inner flow hash,
and a zero UDP checksum over IPv6 only if ``udp6_zero_checksum=True``
(RFC 6935/6936).  The source-port entropy comes from
:func:`scapy_geneve.layers.geneve.flow_sport`, a hash of the inner flow, in
49152-65535.

``decapsulate(pkt)`` finds the outermost tunnel header and returns
``(inner, info)``; ``info`` (:class:`TunnelInfo`) has ``kind``, ``vni`` and the
kind's extras, and ``info.params()`` gives them back to ``encapsulate``, so
``encapsulate(inner, info.kind, **info.params())`` rebuilds the received bytes,
and re-encapsulating in another kind keeps the inner frame and the identifier.
It refuses (:class:`NotATunnel`, naming the field and its byte offset) what a
receiver must drop: for every kind an IPv4 fragment, an IPv6 UDP datagram with
a zero checksum (RFC 6935/6936, unless ``udp6_zero_checksum=True``), CE over a
Not-ECT inner packet (RFC 6040 §4.2), an IP or UDP length that cuts the inner
packet; and each kind's own rules (Geneve version and option lengths, the VXLAN
I flag, NVGRE's inner 802.1Q tag, the STT version, the L2TPv3 cookie).

The kinds and their facts (ports, identifier names and widths, header sizes)
come from :mod:`scapy_geneve.registry`; the kind-specific steps are the
adapters the registry names (:mod:`scapy_geneve.tunnels.adapters`).  Adding an
encapsulation touches the registry, its layer and its adapter only.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

from scapy.packet import NoPayload, Packet
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from scapy_geneve import compat, registry
from scapy_geneve.errors import BuildError
from scapy_geneve.layers.geneve import flow_sport
from scapy_geneve.tunnels.base import (
    ENTROPY_HIGH,
    ENTROPY_LOW,
    Adapter,
    NotATunnel,
    Outer,
    TunnelInfo,
    entropy_sport,
    inner_ecn,
    inner_l3,
)

__all__ = [
    "encapsulate",
    "decapsulate",
    "TunnelInfo",
    "NotATunnel",
    "KINDS",
    "ID_ALIASES",
    "entropy_sport",
    "ENTROPY_LOW",
    "ENTROPY_HIGH",
]

#: The kinds ``encapsulate`` takes (the registry's, when this module was imported).
KINDS: Tuple[str, ...] = registry.tunnel_names()
#: The kind's own name for its identifier, accepted as an alias of ``vni=``.
ID_ALIASES: Dict[str, str] = {rec.name: rec.id_name for rec in registry.records() if rec.variant_of is None}
_DOC_SRC = {4: "192.0.2.1", 6: "2001:db8::1"}
_DOC_DST = {4: "192.0.2.2", 6: "2001:db8::2"}
_OUTER_MACS = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
_IP_MAX = 0xFFFF  # IPv4 Total Length, IPv6 Payload Length, UDP Length: 16 bits
#: More than any outer stack encapsulate() builds: IPv6 40 + UDP 8 + Geneve 8 + 252 of
#: options, or IPv4 20 + UDP 8 + L2TPv3 4 + 4 + cookie 8 + sublayer 4.
_HEADROOM = 512


# -- encapsulation ----------------------------------------------------------------------
def _record(kind: str) -> registry.Encapsulation:
    try:
        rec = registry.get(str(kind))
    except KeyError:
        raise BuildError(
            "encapsulate", "kind", kind, "must be one of %s" % ", ".join(registry.tunnel_names())
        ) from None
    if rec.variant_of is not None:
        raise BuildError(
            "encapsulate",
            "kind",
            kind,
            "is a variant of %s: pass kind=%r and its keywords" % (rec.variant_of, rec.variant_of),
        )
    return rec


def _identifier(rec: registry.Encapsulation, vni: Optional[int], params: Dict[str, Any]) -> int:
    kind, alias = rec.name, rec.id_name
    value = vni
    if alias != "vni" and alias in params:
        other = params.pop(alias)
        if value is not None and other != value:
            raise BuildError(kind, alias, other, "disagrees with vni=%r" % value)
        value = other
    others = {r.id_name for r in registry.records()} - {"vni", alias}
    for name in sorted(others & set(params)):
        raise BuildError(
            kind, name, params[name], "is not a %s parameter: the identifier is vni= (or %s=)" % (kind, alias)
        )
    if value is None:
        raise BuildError(kind, alias, None, "is required: pass vni= (or %s=)" % alias)
    if not 0 <= value <= rec.id_max:
        raise BuildError(kind, alias, value, "%d bits" % rec.id_bits)
    return value


def _outer_l3(
    inner: Packet,
    src: Optional[str],
    dst: Optional[str],
    underlay: Optional[str],
    ttl: int,
    tos: int,
    ecn: Optional[int],
    df: bool,
    ip_id: int,
    flow_label: Optional[int],
) -> Tuple[Packet, int]:
    if underlay is None:
        underlay = "ipv6" if ":" in (src or "") + (dst or "") else "ipv4"
    if underlay not in ("ipv4", "ipv6"):
        raise BuildError("encapsulate", "underlay", underlay, "must be 'ipv4' or 'ipv6'")
    version = 6 if underlay == "ipv6" else 4
    src = src or _DOC_SRC[version]
    dst = dst or _DOC_DST[version]
    if (":" in src) != (version == 6) or (":" in dst) != (version == 6):
        raise BuildError("encapsulate", "src/dst", (src, dst), "are not both %s addresses" % underlay)
    if ecn is None:
        ecn = inner_ecn(inner) or 0  # RFC 6040 normal mode: the outer copies the inner
    elif not 0 <= ecn <= 3:
        raise BuildError("encapsulate", "ecn", ecn, "2 bits")
    tclass = (tos & 0xFC) | ecn
    if version == 6:
        if flow_label is None:
            flow_label = flow_sport(inner, 1, 0xFFFF) << 4  # 20 bits, never 0
        return IPv6(src=src, dst=dst, hlim=ttl, tc=tclass, fl=flow_label), 6
    return IP(src=src, dst=dst, ttl=ttl, tos=tclass, id=ip_id, flags="DF" if df else 0), 4


def _size_bound(pkt: Packet) -> int:
    """An upper bound of len(bytes(PKT)) that does not build it.

    Every field counts its value's length when it is bytes or text (at least 16:
    an IPv6 address written "::1" is 16 bytes on the wire), 16 bytes otherwise,
    and the packets and lists it holds, recursively.
    """
    total = 0
    layer: Packet = pkt
    while not isinstance(layer, NoPayload):
        for fld in layer.fields_desc:
            total += _value_bound(layer.getfieldval(fld.name))
        layer = layer.payload
    return total


def _value_bound(value: Any) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, str):
        return max(16, len(value))
    if isinstance(value, Packet):
        return _size_bound(value)
    if isinstance(value, (list, tuple)):
        return sum(_value_bound(v) for v in value)
    return 16


def _inner_length(kind: str, inner: Packet) -> int:
    try:
        return len(bytes(inner))
    except Exception as exc:  # noqa: BLE001 - Scapy raises struct.error on a field overflow
        raise BuildError(
            kind, "inner", inner.summary(), "cannot be built: %s (a length field over 16 bits?)" % exc
        ) from None


def _check_lengths(kind: str, outer: Packet, inner: Packet) -> None:
    """Refuse, at encapsulate(), an outer packet whose length fields cannot hold it.

    The IPv4 Total Length, IPv6 Payload Length and UDP Length are 16 bits; an
    inner frame over about 64 KB does not fit (no jumbogram is built).
    """
    if _size_bound(inner) + _HEADROOM <= _IP_MAX:
        return  # cannot overflow: no need to build the inner frame here
    inner_len = _inner_length(kind, inner)
    if inner_len + _HEADROOM <= _IP_MAX:
        return  # every outer header stack here is shorter than _HEADROOM
    layers = [outer] + [layer for layer in outer.iterpayloads()][1:]
    outer_layers = layers[: len(layers) - len(list(inner.iterpayloads()))]
    after = inner_len
    for layer in reversed(outer_layers):
        own = len(layer.self_build())
        field, room = {IP: ("len", _IP_MAX - own), IPv6: ("plen", _IP_MAX), UDP: ("len", _IP_MAX - own)}.get(
            type(layer), (None, 0)
        )
        if field is not None and after > room:
            raise BuildError(
                type(layer).__name__,
                field,
                after + (own if field == "len" else 0),
                "does not fit in 16 bits: the %d-byte inner frame is too big for "
                "%s over %s (at most %d bytes; IPv6 jumbograms are not built)"
                % (inner_len, kind, type(layer).__name__, inner_len - (after - room)),
            )
        after += own


def encapsulate(
    inner: Packet,
    kind: str,
    vni: Optional[int] = None,
    *,
    src: Optional[str] = None,
    dst: Optional[str] = None,
    underlay: Optional[str] = None,
    ttl: int = 64,
    tos: int = 0,
    ecn: Optional[int] = None,
    df: bool = True,
    ip_id: int = 0,
    flow_label: Optional[int] = None,
    sport: Optional[int] = None,
    dport: Optional[int] = None,
    udp_checksum: Optional[bool] = None,
    udp6_zero_checksum: bool = False,
    ether: Union[bool, Packet] = False,
    **params: Any,
) -> Union[Packet, List[Packet]]:
    """Put INNER in a tunnel of KIND; return the outer packet (STT: its segments).

    Common keywords: ``vni`` (or the kind's alias ``vsid``, ``context_id``,
    ``session_id``), ``src``/``dst`` (outer addresses; default the
    documentation prefixes 192.0.2.0/24 or 2001:db8::/32), ``underlay``
    (``"ipv4"``/``"ipv6"``, else from the addresses), ``ttl``, ``tos`` (DSCP;
    ``ecn`` None copies the inner packet's, RFC 6040), ``df``, ``ip_id``,
    ``flow_label``, ``sport``/``dport``, ``udp_checksum`` (True computed,
    False zero, None the kind's default), ``ether`` (True, or an ``Ether()``
    to put in front), ``reserved`` (``{field: value}`` for the tunnel
    header's reserved bits).

    Kind keywords:

    - geneve: ``options`` (GeneveOption list), ``oam``, ``critical``;
    - vxlan: ``gpid``, ``dont_learn``, ``policy_applied`` (GBP),
      ``next_protocol``, ``oam``, ``bum`` (GPE, port 4790; chosen by itself
      for an inner IP/IPv6 packet);
    - nvgre: ``flowid`` (default: 8 bits of the inner flow hash, never 0);
    - stt: ``mss``, ``mtu``, ``identifier``, ``csum_partial``,
      ``csum_verified``, ``inner_mss``, ``vlan_id``, ``pcp``;
    - l2tpv3: ``transport`` (``"ip"``, protocol 115, or ``"udp"``, port
      1701), ``cookie`` (0, 4 or 8 bytes), ``sequence`` (adds the Default
      L2-Specific Sublayer with S=1), ``l2ss`` (the sublayer with S=0),
      ``register`` (default True: record the session layout, cookie length
      and sublayer, for the outer destination in the session table, so the
      packet dissects back as it was built).

    An inner frame too big for the outer length fields (about 64 KB) raises
    :class:`BuildError` here, naming the field, not later at ``bytes()``.
    """
    rec = _record(kind)
    if not isinstance(inner, Packet):
        raise BuildError("encapsulate", "inner", type(inner).__name__, "must be a scapy Packet")
    adapter: Adapter = rec.load_adapter()
    ident = _identifier(rec, vni, params)
    adapter.check_identifier(ident)
    l3, version = _outer_l3(inner, src, dst, underlay, ttl, tos, ecn, df, ip_id, flow_label)
    outer = Outer(l3, version, sport, dport, udp_checksum, udp6_zero_checksum, ip_id, ttl, df)
    result = adapter.encapsulate(inner, ident, outer, params)
    if params:
        name = sorted(params)[0]
        raise BuildError(rec.name, name, params[name], "is not a parameter of %s" % rec.name)
    if not isinstance(result, list):
        _check_lengths(rec.name, result, inner)
    if ether is not False:
        front = Ether(src=_OUTER_MACS["src"], dst=_OUTER_MACS["dst"]) if ether is True else ether
        if isinstance(result, list):
            return [front.copy() / seg for seg in result]
        return front.copy() / result
    return result


# -- decapsulation ------------------------------------------------------------------------
def _as_packet(pkt: Union[Packet, bytes]) -> Packet:
    """PKT as a receiver sees it: dissected from its bytes.

    A packet built here (not dissected: lengths and checksums still to be
    computed) is dissected from its bytes first, so the checks read the wire.
    """
    cls: Type[Packet] = Ether
    if isinstance(pkt, Packet):
        if getattr(pkt, "original", None):  # dissected from bytes already
            return pkt
        cls, data = pkt.__class__, bytes(pkt)
    else:
        data = bytes(pkt)
        if data and data[0] >> 4 == 4:
            cls = IP
        elif data and data[0] >> 4 == 6:
            cls = IPv6
    try:
        return cls(data)
    except Exception as exc:  # noqa: BLE001 - Scapy raises on a truncated first header
        # A truncated outer header (or, with conf.debug_dissector, any layer).
        raise NotATunnel("%d bytes do not dissect as %s: %s" % (len(data), cls.__name__, exc)) from None


def _expected() -> Dict[Tuple[str, int], Tuple[str, int]]:
    """What a receiver expects after each transport, from the registry."""
    table = {}
    for rec in registry.records():
        adapter = rec.load_adapter()
        for port in rec.udp_ports:
            table[("udp", port)] = adapter.expected("udp")
        for port in rec.tcp_ports:
            table[("tcp", port)] = adapter.expected("tcp")
        if rec.ip_protocol is not None:
            table[("ip", rec.ip_protocol)] = adapter.expected("ip")
    if "vxlan-gpe" in registry.REGISTRY:  # the variant's own name on its port
        for port in registry.get("vxlan-gpe").udp_ports:
            table[("udp", port)] = (registry.get("vxlan-gpe").title, registry.get("vxlan-gpe").header_len)
    return table


def _where(layer: Packet) -> Optional[Tuple[str, int]]:
    if isinstance(layer, (UDP, TCP)):
        return ("udp" if isinstance(layer, UDP) else "tcp", int(layer.dport))
    if isinstance(layer, IP):
        return ("ip", int(layer.proto))
    if isinstance(layer, IPv6):
        return ("ip", int(layer.nh))
    return None


def _no_tunnel(packet: Packet) -> NotATunnel:
    """NotATunnel saying what is there, and where a tunnel header is cut short."""
    expected = _expected()
    layer, offset = packet, 0
    whole = len(bytes(packet))
    while not isinstance(layer.payload, NoPayload):
        offset += len(bytes(layer)) - len(bytes(layer.payload))
        nxt = layer.payload
        where = _where(layer)
        if where in expected and nxt.__class__.__name__ in ("Raw", "Padding"):
            name, need = expected[where]
            have = whole - offset
            if have < need:
                return NotATunnel(
                    "truncated %s header: %d bytes at offset %d after %s, "
                    "%d needed" % (name, have, offset, layer.mysummary(), need)
                )
        layer = nxt
    return NotATunnel(
        "no %s header in %s"
        % (" or ".join(rec.title for rec in registry.records() if rec.variant_of is None), packet.summary())
    )


def _find_tunnel(packet: Packet) -> Tuple[Packet, Adapter]:
    """The outermost tunnel header in PACKET and its adapter (from the registry)."""
    adapters = [rec.load_adapter() for rec in registry.records()]
    layer: Packet = packet
    while not isinstance(layer, NoPayload):
        for adapter in adapters:
            if isinstance(layer, adapter.layers):
                _check_header_room(packet, layer, adapter.record)
                return layer, adapter
        layer = layer.payload
    raise _no_tunnel(packet)


def _offset_in(packet: Packet, layer: Packet) -> int:
    """LAYER's byte offset in the dissected PACKET: the sum of the headers before it."""
    offset, here = 0, packet
    while here is not layer:
        cache = compat.dissection_cache(here)
        if cache is None:  # a layer edited since its dissection: measure by building
            return len(bytes(packet)) - len(bytes(layer))
        offset, here = offset + len(cache), here.payload
    return offset


def _check_header_room(packet: Packet, layer: Packet, rec: registry.Encapsulation) -> None:
    """Refuse a tunnel header cut short of its fixed part (the registry's ``header_len``).

    Scapy 2.6+ leaves such bytes Raw (:func:`_no_tunnel` names them); Scapy 2.5
    dissects them as the tunnel layer with the missing fields at their defaults
    (``compat.DISSECT_STOPS_AT_END``), so the length is checked here, on every version.
    """
    original = getattr(layer, "original", None)
    if original is None or not isinstance(layer, rec.load_layer()):
        return  # built here, not received; or a continuation segment (STT) with no header
    if len(original) < rec.header_len:
        under = layer.underlayer
        where = _where(under) if under is not None else None
        # the name a receiver gives the port (VXLAN-GPE on 4790), else the kind's
        expected = _expected()
        title = expected[where][0] if where in expected else rec.title
        raise NotATunnel(
            "truncated %s header: %d bytes at offset %d after %s, %d needed"
            % (
                title,
                len(original),
                _offset_in(packet, layer),
                under.mysummary() if under is not None else "nothing",
                rec.header_len,
            )
        )


def _outer_ip(layer: Packet) -> Optional[Packet]:
    l3 = layer.underlayer
    while l3 is not None and not isinstance(l3, (IP, IPv6)):
        l3 = l3.underlayer
    return l3


def decapsulate(
    pkt: Union[Packet, bytes, Sequence[Packet]], *, udp6_zero_checksum: bool = False
) -> Tuple[Packet, TunnelInfo]:
    """Open the outermost tunnel in PKT: ``(inner, info)``.

    PKT is a packet (from IP/IPv6 or Ethernet down), raw bytes, or, for STT,
    the list of segments of one frame (reassembled by ``stt_reassemble``).
    Raises :class:`NotATunnel` when there is no tunnel header, the STT frame
    is incomplete, the L2TPv3 message is a control message, or the packet is
    one a receiver must drop (see the module docstring);
    ``udp6_zero_checksum=True`` accepts zero UDP checksums over IPv6, as a
    tunnel configured for them does (RFC 6935).
    """
    if isinstance(pkt, (list, tuple)):
        return _from_segments(pkt)
    packet = _as_packet(pkt)  # type: ignore[arg-type]
    layer, adapter = _find_tunnel(packet)
    info = TunnelInfo(kind=adapter.kind, vni=0)
    l3 = _outer_ip(layer)
    if l3 is not None:
        _read_outer(l3, layer, info)
        _check_outer(packet, l3, layer, udp6_zero_checksum)
    inner = adapter.decapsulate(layer, packet, info)
    if inner is None:
        inner = _inner_within(packet, l3, layer)
    if l3 is not None:
        _check_ecn(packet, l3, inner)
    return inner, info


def _from_segments(segments: Sequence[Packet]) -> Tuple[Packet, TunnelInfo]:
    for rec in registry.records():
        adapter = rec.load_adapter()
        if hasattr(adapter, "reassemble"):
            info = TunnelInfo(kind=adapter.kind, vni=0)
            inner, first = adapter.reassemble(segments, info)
            l3 = _outer_ip_of(first)
            if l3 is not None:
                _read_outer(l3, None, info)
            return inner, info
    raise NotATunnel("a list of packets: no registered encapsulation reassembles segments")


def _outer_ip_of(pkt: Packet) -> Optional[Packet]:
    layer = pkt
    while not isinstance(layer, NoPayload):
        if isinstance(layer, (IP, IPv6)):
            return layer
        layer = layer.payload
    return None


def _read_outer(l3: Packet, layer: Optional[Packet], info: TunnelInfo) -> None:
    """The outer IP (and UDP) header fields into INFO."""
    info.outer_src, info.outer_dst = str(l3.src), str(l3.dst)
    if isinstance(l3, IPv6):
        info.underlay, info.ttl, info.tos = "ipv6", int(l3.hlim), int(l3.tc)
        info.flow_label = int(l3.fl)
    else:
        info.underlay, info.ttl, info.tos = "ipv4", int(l3.ttl), int(l3.tos)
        info.ip_id, info.df = int(l3.id), bool(l3.flags.DF)
    if layer is None:
        return
    if not info.overhead:
        info.overhead = len(bytes(l3)) - len(bytes(layer.payload))
    udp = layer.underlayer
    while udp is not None and udp is not l3 and not isinstance(udp, UDP):
        udp = udp.underlayer
    if isinstance(udp, UDP):
        info.transport, info.sport, info.dport = "udp", int(udp.sport), int(udp.dport)
        info.udp_checksum = udp.chksum != 0  # None: not built yet, so computed


def _check_outer(packet: Packet, l3: Packet, layer: Packet, zero6: bool) -> None:
    """What a receiver drops, whatever the kind: fragments and IPv6 zero UDP checksums."""
    where = len(bytes(packet)) - len(bytes(l3))
    if isinstance(l3, IP) and (l3.flags.MF or int(l3.frag)):
        raise NotATunnel(
            "IPv4 fragment at offset %d (MF=%d, fragment offset %d): a tunnel "
            "endpoint decapsulates reassembled packets only" % (where, int(l3.flags.MF), int(l3.frag) * 8)
        )
    udp = layer.underlayer
    while udp is not None and udp is not l3 and not isinstance(udp, UDP):
        udp = udp.underlayer
    if isinstance(l3, IPv6) and isinstance(udp, UDP) and udp.chksum == 0 and not zero6:
        raise NotATunnel(
            "UDP checksum 0 at offset %d over IPv6: a receiver drops it unless "
            "the tunnel is configured for zero checksums (RFC 6935 §5, RFC 6936; "
            "decapsulate(..., udp6_zero_checksum=True))" % (len(bytes(packet)) - len(bytes(udp)) + 6)
        )


def _datagram_end(packet: Packet, l3: Packet, layer: Packet) -> Tuple[int, str, int]:
    """(end offset of the datagram by its length fields, field name, field offset)."""
    whole = len(bytes(packet))
    at = whole - len(bytes(l3))
    if isinstance(l3, IP):
        length = int(l3.len or 0)  # 0: BIG TCP (or not built yet): the capture's
        end, name, foff = (at + length if length else whole), "IPv4 total length", at + 2
    else:
        length = int(l3.plen or 0)
        end, name, foff = (at + 40 + length if length else whole), "IPv6 payload length", at + 4
    udp = layer.underlayer
    while udp is not None and udp is not l3 and not isinstance(udp, UDP):
        udp = udp.underlayer
    if isinstance(udp, UDP) and int(udp.len or 0):
        uat = whole - len(bytes(udp))
        if uat + int(udp.len) < end:
            end, name, foff = uat + int(udp.len), "UDP length", uat + 4
    return end, name, foff


def _inner_within(packet: Packet, l3: Optional[Packet], layer: Packet) -> Packet:
    """The inner packet: the bytes after the tunnel header, up to where the lengths say."""
    data = bytes(layer.payload)
    cls = layer.payload.__class__
    if l3 is None:
        return cls(data)
    end, name, foff = _datagram_end(packet, l3, layer)
    start = len(bytes(packet)) - len(data)
    whole = cls(data)
    if end >= start + len(data):
        return whole
    _check_cut(whole, name, foff, end - start)  # the inner headers say they go on
    return cls(data[: max(0, end - start)])


def _check_cut(inner: Packet, name: str, foff: int, room: int) -> None:
    """Refuse an inner IP packet whose own length runs past the outer datagram."""
    l3 = inner_l3(inner)
    if l3 is None:
        return
    own = int(l3.len or 0) if isinstance(l3, IP) else 40 + int(l3.plen or 0)
    at = len(bytes(inner)) - len(bytes(l3))
    if (isinstance(l3, IP) and own == 0) or (isinstance(l3, IPv6) and own == 40):
        return  # BIG TCP: the length is the capture's
    if at + own > room:
        raise NotATunnel(
            "%s at offset %d cuts the inner packet: %d bytes of inner frame, "
            "but its %s header says %d" % (name, foff, room, type(l3).__name__, at + own)
        )


def _check_ecn(packet: Packet, l3: Packet, inner: Packet) -> None:
    """RFC 6040 §4.2: CE on the outer header over a Not-ECT inner packet is dropped."""
    outer_ecn = (int(l3.tos) if isinstance(l3, IP) else int(l3.tc)) & 0x03
    if outer_ecn == 0x03 and inner_ecn(inner) == 0:
        where = len(bytes(packet)) - len(bytes(l3)) + 1
        raise NotATunnel(
            "ECN CE on the outer header (offset %d) over a Not-ECT inner "
            "packet: the decapsulator must drop it (RFC 6040 §4.2)" % where
        )
