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
``encapsulate(*decapsulate(p)[::-1]...)`` round-trips, and re-encapsulating in
another kind keeps the inner frame and the identifier.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

from scapy.packet import NoPayload, Packet
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from scapy_geneve.consts import (GENEVE_PORT, IPPROTO_GRE, IPPROTO_L2TP, L2TP_PORT, STT_PORT,
                                 VXLAN_ACI_PORT, VXLAN_GPE_PORT, VXLAN_LINUX_PORT,
                                 VXLAN_PORT)
from scapy_geneve.errors import BuildError
from scapy_geneve.layers.geneve import Geneve, flow_sport
from scapy_geneve.layers.l2tpv3 import L2TPv3, L2TPv3UDP, l2tpv3_lookup, l2tpv3_session
from scapy_geneve.layers.nvgre import NVGRE
from scapy_geneve.layers.stt import (STT, STTFragment, outer_l3, stt_reassemble,
                                     stt_segment)
from scapy_geneve.layers.vxlan import (VXLAN_FLAG_B, VXLAN_FLAG_G, VXLAN_FLAG_I,
                                       VXLAN_FLAG_O, VXLAN_FLAG_P, build_vxlan)

__all__ = ["encapsulate", "decapsulate", "TunnelInfo", "NotATunnel", "KINDS",
           "ID_ALIASES", "entropy_sport"]

KINDS = ("geneve", "vxlan", "nvgre", "stt", "l2tpv3")
#: The kind's own name for its identifier, accepted as an alias of ``vni=``.
ID_ALIASES = {"nvgre": "vsid", "stt": "context_id", "l2tpv3": "session_id", "geneve": "vni",
              "vxlan": "vni"}
_ID_BITS = {"geneve": 24, "vxlan": 24, "nvgre": 24, "stt": 64, "l2tpv3": 32}
_DOC_SRC = {4: "192.0.2.1", 6: "2001:db8::1"}
_DOC_DST = {4: "192.0.2.2", 6: "2001:db8::2"}
_OUTER_MACS = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
ENTROPY_LOW, ENTROPY_HIGH = 49152, 65535


class NotATunnel(ValueError):
    """The packet holds no tunnel header that :func:`decapsulate` can open."""


def entropy_sport(inner: Packet, low: int = ENTROPY_LOW, high: int = ENTROPY_HIGH) -> int:
    """The outer source port for INNER's flow (same flow, same port).

    The hash is Geneve's :func:`~scapy_geneve.layers.geneve.flow_sport`, so a
    flow keeps its port whichever UDP/TCP encapsulation carries it.
    """
    return flow_sport(inner, low=low, high=high)


@dataclass
class TunnelInfo:
    """What :func:`decapsulate` read from the outer headers.

    ``vni`` is the identifier under its common name: the Geneve/VXLAN VNI,
    the NVGRE VSID, the STT Context ID, the L2TPv3 Session ID.
    """

    kind: str
    vni: int
    underlay: str = "ipv4"                 # "ipv4" or "ipv6"
    outer_src: str = ""
    outer_dst: str = ""
    transport: str = ""                    # "udp", "gre", "tcp" or "ip"
    sport: Optional[int] = None
    dport: Optional[int] = None
    overhead: int = 0                      # outer L3 + transport + tunnel header bytes
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
    bum: bool = False                      # VXLAN-GPE B bit (ingress-replicated BUM)
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
    sequence: Optional[int] = None         # Default L2SS sequence number (S=1)
    l2ss: bool = False
    l2tp_transport: Optional[str] = None   # "ip" or "udp"

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
        """Keyword arguments that re-create this tunnel with :func:`encapsulate`."""
        out: Dict[str, Any] = {"vni": self.vni, "src": self.outer_src, "dst": self.outer_dst}
        if self.kind == "geneve":
            out.update(options=[o.copy() for o in self.options], oam=self.oam,
                       sport=self.sport, dport=self.dport)
        elif self.kind == "vxlan":
            out.update(sport=self.sport, dport=self.dport)
            if self.group_policy_id is not None:
                out.update(gpid=self.group_policy_id, dont_learn=self.dont_learn,
                           policy_applied=self.policy_applied)
            if self.next_protocol is not None:
                out.update(next_protocol=self.next_protocol, oam=self.oam, bum=self.bum)
        elif self.kind == "nvgre":
            out.update(flowid=self.flowid)
        elif self.kind == "stt":
            out.update(sport=self.sport, identifier=self.identifier, inner_mss=self.mss,
                       vlan_id=self.vlan_id, pcp=self.pcp)
        elif self.kind == "l2tpv3":
            out.update(cookie=self.cookie or b"", sequence=self.sequence, l2ss=self.l2ss,
                       transport=self.l2tp_transport or "ip")
        return out


# -- encapsulation ----------------------------------------------------------------------
def _identifier(kind: str, vni: Optional[int], params: Dict[str, Any]) -> int:
    alias = ID_ALIASES[kind]
    value = vni
    if alias != "vni" and alias in params:
        other = params.pop(alias)
        if value is not None and other != value:
            raise BuildError(kind, alias, other, "disagrees with vni=%r" % value)
        value = other
    for name in set(ID_ALIASES.values()) - {"vni", alias}:
        if name in params:
            raise BuildError(kind, name, params[name],
                             "is not a %s parameter: the identifier is vni= (or %s=)"
                             % (kind, alias))
    if value is None:
        raise BuildError(kind, alias, None, "is required: pass vni= (or %s=)" % alias)
    bits = _ID_BITS[kind]
    if not 0 <= value < 1 << bits:
        raise BuildError(kind, alias, value, "%d bits" % bits)
    if kind == "l2tpv3" and value == 0:
        raise BuildError(kind, alias, value, "must be non-zero: session ID 0 marks "
                         "a control message (RFC 3931 §4.1.1)")
    return value


def _inner_l3(inner: Packet) -> Optional[Packet]:
    layer = inner
    while layer is not None and not isinstance(layer, NoPayload):
        if isinstance(layer, (IP, IPv6)):
            return layer
        if not isinstance(layer, (Ether, Dot1Q, Dot1AD)):
            return None
        layer = layer.payload
    return None


def _inner_ecn(inner: Packet) -> int:
    l3 = _inner_l3(inner)
    if isinstance(l3, IP):
        return int(l3.tos) & 0x03
    if isinstance(l3, IPv6):
        return int(l3.tc) & 0x03
    return 0


def _outer_l3(inner: Packet, src: Optional[str], dst: Optional[str], underlay: Optional[str],
              ttl: int, tos: int, df: bool, ip_id: int,
              flow_label: Optional[int]) -> Tuple[Packet, int]:
    if underlay is None:
        underlay = "ipv6" if ":" in (src or "") + (dst or "") else "ipv4"
    if underlay not in ("ipv4", "ipv6"):
        raise BuildError("encapsulate", "underlay", underlay, "must be 'ipv4' or 'ipv6'")
    version = 6 if underlay == "ipv6" else 4
    src = src or _DOC_SRC[version]
    dst = dst or _DOC_DST[version]
    if (":" in src) != (version == 6) or (":" in dst) != (version == 6):
        raise BuildError("encapsulate", "src/dst", (src, dst),
                         "are not both %s addresses" % underlay)
    # RFC 6040 normal mode: the outer ECN field copies the inner one.
    tclass = (tos & 0xFC) | _inner_ecn(inner)
    if version == 6:
        if flow_label is None:
            flow_label = flow_sport(inner, 1, 0xFFFF) << 4   # 20 bits, never 0
        return IPv6(src=src, dst=dst, hlim=ttl, tc=tclass, fl=flow_label), 6
    return IP(src=src, dst=dst, ttl=ttl, tos=tclass, id=ip_id,
              flags="DF" if df else 0), 4


def _udp(sport: int, dport: int, checksum: Optional[bool], default: bool,
         version: int, zero6: bool, kind: str) -> UDP:
    want = default if checksum is None else checksum
    if version == 6 and not want:
        if checksum is None:
            want = True          # RFC 6935/6936: IPv6 zero checksums are opt-in
        elif not zero6:
            raise BuildError(kind, "udp_checksum", 0,
                             "is not allowed over IPv6 unless udp6_zero_checksum=True "
                             "(RFC 6936: only for tunnels configured for it)")
    return UDP(sport=sport, dport=dport, chksum=None if want else 0)


def _ether_inner(kind: str, inner: Packet) -> None:
    if not isinstance(inner, Ether):
        raise BuildError(kind, "inner", inner.__class__.__name__,
                         "must be an Ethernet frame (Ether) for %s" % kind)


def encapsulate(inner: Packet, kind: str, vni: Optional[int] = None, *,
                src: Optional[str] = None, dst: Optional[str] = None,
                underlay: Optional[str] = None, ttl: int = 64, tos: int = 0,
                df: bool = True, ip_id: int = 0, flow_label: Optional[int] = None,
                sport: Optional[int] = None, dport: Optional[int] = None,
                udp_checksum: Optional[bool] = None, udp6_zero_checksum: bool = False,
                ether: Union[bool, Packet] = False,
                **params: Any) -> Union[Packet, List[Packet]]:
    """Put INNER in a tunnel of KIND; return the outer packet (STT: its segments).

    Common keywords: ``vni`` (or the kind's alias ``vsid``, ``context_id``,
    ``session_id``), ``src``/``dst`` (outer addresses; default the
    documentation prefixes 192.0.2.0/24 or 2001:db8::/32), ``underlay``
    (``"ipv4"``/``"ipv6"``, else from the addresses), ``ttl``, ``tos`` (DSCP;
    ECN comes from the inner packet), ``df``, ``ip_id``, ``flow_label``,
    ``sport``/``dport``, ``udp_checksum`` (True computed, False zero, None the
    kind's default), ``ether`` (True, or an ``Ether()`` to put in front).

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
    """
    kind = kind.lower()
    if kind not in KINDS:
        raise BuildError("encapsulate", "kind", kind, "must be one of %s" % ", ".join(KINDS))
    if not isinstance(inner, Packet):
        raise BuildError("encapsulate", "inner", type(inner).__name__, "must be a scapy Packet")
    ident = _identifier(kind, vni, params)
    l3, version = _outer_l3(inner, src, dst, underlay, ttl, tos, df, ip_id, flow_label)
    result: Union[Packet, List[Packet]]

    if kind == "geneve":
        gen = Geneve(vni=ident, options=list(params.pop("options", [])),
                     oam=int(bool(params.pop("oam", False))))
        if "critical" in params:
            gen.critical = params.pop("critical")
        udp = _udp(entropy_sport(inner) if sport is None else sport,
                   GENEVE_PORT if dport is None else dport,
                   udp_checksum, True, version, udp6_zero_checksum, kind)
        result = l3 / udp / gen / inner
    elif kind == "vxlan":
        next_protocol = params.pop("next_protocol", None)
        if not isinstance(inner, Ether) and next_protocol is None:
            if isinstance(inner, IP):
                next_protocol = 1
            elif isinstance(inner, IPv6):
                next_protocol = 2
            else:
                raise BuildError("vxlan", "inner", inner.__class__.__name__,
                                 "needs VXLAN-GPE: pass next_protocol=")
        hdr = build_vxlan(ident, gpid=params.pop("gpid", None),
                          dont_learn=params.pop("dont_learn", False),
                          policy_applied=params.pop("policy_applied", False),
                          next_protocol=next_protocol, oam=params.pop("oam", False),
                          bum=params.pop("bum", False))
        if dport is None:
            dport = VXLAN_GPE_PORT if next_protocol is not None else VXLAN_PORT
        udp = _udp(entropy_sport(inner) if sport is None else sport, dport,
                   udp_checksum, False, version, udp6_zero_checksum, kind)
        result = l3 / udp / hdr / inner
    elif kind == "nvgre":
        _ether_inner(kind, inner)
        if isinstance(inner.payload, (Dot1Q, Dot1AD)):
            raise BuildError("nvgre", "inner", "802.1Q tag",
                             "must be removed before NVGRE encapsulation (RFC 7637)")
        flowid = params.pop("flowid", None)
        if flowid is None:
            flowid = flow_sport(inner, 1, 0xFF)
        result = l3 / NVGRE(vsid=ident, flowid=flowid) / inner
    elif kind == "stt":
        _ether_inner(kind, inner)
        addr_src, addr_dst = l3.src, l3.dst
        segs = stt_segment(
            inner, context_id=ident, mss=params.pop("mss", None),
            src=addr_src, dst=addr_dst,
            sport=entropy_sport(inner) if sport is None else sport,
            identifier=params.pop("identifier", None), mtu=params.pop("mtu", 1500),
            csum_partial=params.pop("csum_partial", False),
            csum_verified=params.pop("csum_verified", False),
            inner_mss=params.pop("inner_mss", 0), vlan_id=params.pop("vlan_id", None),
            pcp=params.pop("pcp", 0), ip_id=ip_id, ttl=ttl, tos=int(l3.tc if version == 6
                                                                     else l3.tos),
            df=df, **({"dport": dport} if dport is not None else {}))
        if version == 6:
            for seg in segs:
                seg.fl = l3.fl
        result = segs
    else:  # l2tpv3
        _ether_inner(kind, inner)
        transport = params.pop("transport", "ip")
        cookie = bytes(params.pop("cookie", b"") or b"")
        sequence = params.pop("sequence", None)
        l2ss = bool(params.pop("l2ss", False)) or sequence is not None
        if len(cookie) not in (0, 4, 8):
            raise BuildError("l2tpv3", "cookie", cookie, "has a length other than 0, 4 or 8 "
                             "(RFC 3931 §4.1)")
        if sequence is not None and not 0 <= sequence < 1 << 24:
            raise BuildError("l2tpv3", "sequence", sequence, "24 bits")
        if params.pop("register", True):
            # The layout only: the cookie value is checked on receipt only when
            # declared (l2tpv3_session(cookie=...)) or learned (AVP 65).
            l2tpv3_session(ident, len(cookie), l2ss, dst=str(l3.dst))
        data = L2TPv3(session_id=ident, cookie=cookie)
        if l2ss:
            data.l2ss_s = 1 if sequence is not None else 0
            data.l2ss_seq = sequence or 0
        if transport == "ip":
            result = l3 / data / inner
        elif transport == "udp":
            udp = _udp(L2TP_PORT if sport is None else sport,
                       L2TP_PORT if dport is None else dport,
                       udp_checksum, True, version, udp6_zero_checksum, kind)
            result = l3 / udp / L2TPv3UDP() / data / inner
        else:
            raise BuildError("l2tpv3", "transport", transport, "must be 'ip' or 'udp'")
    if params:
        raise BuildError(kind, sorted(params)[0], params[sorted(params)[0]],
                         "is not a parameter of %s" % kind)
    if ether is not False:
        front = Ether(**_OUTER_MACS) if ether is True else ether
        if isinstance(result, list):
            return [front.copy() / seg for seg in result]
        return front.copy() / result
    return result


# -- decapsulation ------------------------------------------------------------------------
_TUNNEL_LAYERS = (Geneve, VXLAN, NVGRE, STT, STTFragment, L2TPv3)


def _as_packet(pkt: Union[Packet, bytes]) -> Packet:
    if isinstance(pkt, Packet):
        return pkt
    data = bytes(pkt)
    cls: Type[Packet] = Ether
    if data and data[0] >> 4 == 4:
        cls = IP
    elif data and data[0] >> 4 == 6:
        cls = IPv6
    try:
        return cls(data)
    except Exception as exc:  # noqa: BLE001 - Scapy raises on a truncated first header
        # A truncated outer header (or, with conf.debug_dissector, any layer).
        raise NotATunnel("%d bytes do not dissect as %s: %s"
                         % (len(data), cls.__name__, exc)) from None


#: What a receiver expects after each transport, for saying why nothing matched.
_EXPECTED = {
    ("udp", GENEVE_PORT): ("Geneve", 8), ("udp", VXLAN_PORT): ("VXLAN", 8),
    ("udp", VXLAN_GPE_PORT): ("VXLAN-GPE", 8), ("udp", VXLAN_LINUX_PORT): ("VXLAN", 8),
    ("udp", VXLAN_ACI_PORT): ("VXLAN", 8), ("udp", L2TP_PORT): ("L2TPv3 over UDP", 8),
    ("tcp", STT_PORT): ("STT", 18), ("ip", IPPROTO_GRE): ("NVGRE", 8),
    ("ip", IPPROTO_L2TP): ("L2TPv3", 4),
}


def _no_tunnel(packet: Packet) -> NotATunnel:
    """NotATunnel saying what is there, and where a tunnel header is cut short."""
    layer, offset = packet, 0
    whole = len(bytes(packet))
    while not isinstance(layer.payload, NoPayload):
        head = len(bytes(layer)) - len(bytes(layer.payload))
        nxt = layer.payload
        where = None
        if isinstance(layer, UDP):
            where = ("udp", int(layer.dport))
        elif isinstance(layer, TCP):
            where = ("tcp", int(layer.dport))
        elif isinstance(layer, IP):
            where = ("ip", int(layer.proto))
        elif isinstance(layer, IPv6):
            where = ("ip", int(layer.nh))
        offset += head
        if where in _EXPECTED and nxt.__class__.__name__ in ("Raw", "Padding"):
            name, need = _EXPECTED[where]
            have = whole - offset
            if have < need:
                return NotATunnel("truncated %s header: %d bytes at offset %d after %s, "
                                  "%d needed" % (name, have, offset, layer.mysummary(), need))
        layer = nxt
    return NotATunnel("no Geneve, VXLAN, NVGRE, STT or L2TPv3 header in %s"
                      % packet.summary())


def _vxlan_dport(dport: int) -> bool:
    """Is DPORT a port VXLAN is received on (IANA, Linux, ACI, or bound to VXLAN)?"""
    if dport in (VXLAN_PORT, VXLAN_GPE_PORT, VXLAN_LINUX_PORT, VXLAN_ACI_PORT):
        return True
    return any(cls is VXLAN and "dport" in fval and fval["dport"] == dport
               for fval, cls in UDP.payload_guess)


def _clean(layer: Packet) -> Packet:
    """An independent copy of LAYER and what follows it, re-dissected."""
    return layer.__class__(bytes(layer))


def decapsulate(pkt: Union[Packet, bytes, Sequence[Packet]]) -> Tuple[Packet, TunnelInfo]:
    """Open the outermost tunnel in PKT: ``(inner, info)``.

    PKT is a packet (from IP/IPv6 or Ethernet down), raw bytes, or, for STT,
    the list of segments of one frame (reassembled by :func:`stt_reassemble`).
    Raises :class:`NotATunnel` when there is no tunnel header, the STT frame
    is incomplete, or the L2TPv3 message is a control message.
    """
    if isinstance(pkt, (list, tuple)):
        done = stt_reassemble(pkt)
        if len(done.frames) != 1:
            raise NotATunnel("expected the segments of exactly one STT frame: got %d "
                             "complete, %d incomplete (missing bytes %s), %d dropped"
                             % (len(done.frames), len(done.incomplete),
                                [i.missing for i in done.incomplete], len(done.dropped)))
        frame = done.frames[0]
        first = next(p for p in pkt if STT in p)
        inner, info = _stt_info(frame.stt, first)
        info.segments = frame.segments
        return inner, info
    packet = _as_packet(pkt)
    layer: Packet = packet
    while not isinstance(layer, NoPayload) and not isinstance(layer, _TUNNEL_LAYERS):
        layer = layer.payload
    if isinstance(layer, NoPayload):
        raise _no_tunnel(packet)
    if isinstance(layer, STTFragment):
        raise NotATunnel("an STT continuation segment (offset %s of a %s-byte frame): "
                         "pass all segments, or use stt_reassemble()"
                         % (layer.offset, layer.frame_length))
    if isinstance(layer, STT):
        tcp = layer.underlayer
        if isinstance(tcp, TCP) and int(tcp.seq) >> 16 != len(bytes(layer)):
            raise NotATunnel("the first segment of a %d-byte STT frame: pass all "
                             "segments, or use stt_reassemble()" % (int(tcp.seq) >> 16))
        return _stt_info(layer, packet)
    l3 = layer.underlayer
    while l3 is not None and not isinstance(l3, (IP, IPv6)):
        l3 = l3.underlayer
    inner = _clean(layer.payload)
    info = TunnelInfo(kind="", vni=0)
    if l3 is not None:
        info.underlay = "ipv6" if isinstance(l3, IPv6) else "ipv4"
        info.outer_src, info.outer_dst = str(l3.src), str(l3.dst)
        info.overhead = len(bytes(l3)) - len(bytes(layer.payload))
    udp = layer.underlayer if isinstance(layer.underlayer, UDP) else None
    if udp is not None:
        info.transport, info.sport, info.dport = "udp", int(udp.sport), int(udp.dport)
    if isinstance(layer, Geneve):
        info.kind, info.vni = "geneve", int(layer.vni)
        info.options = [o.copy() for o in layer.options]
        info.oam, info.critical = bool(layer.oam), bool(layer.critical)
        info.proto = int(layer.proto)
    elif isinstance(layer, VXLAN):
        flags = int(layer.flags)
        if not flags & VXLAN_FLAG_I:
            # RFC 7348 §5: "the I flag MUST be set to 1 for a valid VXLAN Network
            # ID"; Linux's vxlan_rcv() drops such packets.
            raise NotATunnel("VXLAN flags 0x%02x at offset %d: the I flag is clear, so "
                             "the VNI is not valid (RFC 7348 §5)"
                             % (flags, len(bytes(packet)) - len(bytes(layer))))
        if udp is not None and not _vxlan_dport(int(udp.dport)):
            # Scapy also binds VXLAN to *source* ports 4789/4790/6633/8472; a VTEP
            # listens on the destination port only.
            raise NotATunnel("UDP %d -> %d is VXLAN only by Scapy's source-port binding: "
                             "a VTEP receives VXLAN on its destination port (bind_layers("
                             "UDP, VXLAN, dport=%d) for a custom one)"
                             % (int(udp.sport), int(udp.dport), int(udp.dport)))
        info.kind, info.vni = "vxlan", int(layer.vni)
        if flags & VXLAN_FLAG_G:
            info.group_policy_id = int(layer.gpid)
            info.dont_learn = bool(int(layer.gpflags) & 0x40)
            info.policy_applied = bool(int(layer.gpflags) & 0x08)
        if flags & VXLAN_FLAG_P:
            info.next_protocol = int(layer.NextProtocol)
            info.oam = bool(flags & VXLAN_FLAG_O)
            info.bum = bool(flags & VXLAN_FLAG_B)
    elif isinstance(layer, NVGRE):
        if isinstance(layer.payload, Ether) and isinstance(layer.payload.payload,
                                                           (Dot1Q, Dot1AD)):
            # RFC 7637: the decapsulating NVE MUST drop inner frames with 802.1Q tags.
            raise NotATunnel("NVGRE VSID 0x%06x: the inner frame carries an 802.1Q tag "
                             "(VLAN %d), which the decapsulating NVE must drop (RFC 7637)"
                             % (int(layer.vsid), int(layer.payload.payload.vlan)))
        info.kind, info.vni, info.flowid = "nvgre", int(layer.vsid), int(layer.flowid)
        info.transport = "gre"
    else:  # L2TPv3
        if layer.session_id == 0:
            raise NotATunnel("an L2TPv3 control message (session ID 0) carries no frame")
        info.kind, info.vni = "l2tpv3", int(layer.session_id)
        info.cookie = bytes(layer.cookie or b"")
        expected = l2tpv3_lookup(info.vni, info.outer_dst or None).cookie
        if expected is not None and info.cookie != expected:
            raise NotATunnel("L2TPv3 session 0x%08x to %s: cookie %s at offset %d is not "
                             "the session's %s, so the receiving LCCE discards the packet"
                             % (info.vni, info.outer_dst or "?", info.cookie.hex() or "(none)",
                                len(bytes(packet)) - len(bytes(layer)) + 4,
                                expected.hex() or "(none)"))
        info.l2tp_transport = "udp" if udp is not None or isinstance(
            layer.underlayer, L2TPv3UDP) else "ip"
        if udp is None and info.l2tp_transport == "udp":
            outer_udp = layer.underlayer.underlayer
            if isinstance(outer_udp, UDP):
                info.sport, info.dport = int(outer_udp.sport), int(outer_udp.dport)
        if info.l2tp_transport == "ip":
            info.transport = "ip"
        else:
            info.transport = "udp"
        if "l2ss_seq" in layer.fields:
            info.l2ss = True
            info.sequence = int(layer.l2ss_seq) if layer.l2ss_s else None
    return inner, info


def _stt_info(stt: Packet, outer: Packet) -> Tuple[Packet, TunnelInfo]:
    if int(stt.version) != 0:
        # OVS drops every frame whose version is not 0 (the only one defined).
        raise NotATunnel("STT version %d (the first byte of the STT frame header): only "
                         "version 0 is defined (draft-davie-stt-08)" % int(stt.version))
    inner = _clean(stt.payload)
    info = TunnelInfo(kind="stt", vni=int(stt.context_id), transport="tcp",
                      stt_flags=int(stt.flags), l4_offset=int(stt.l4_offset),
                      mss=int(stt.mss), pcp=int(stt.pcp), segments=1,
                      vlan_id=int(stt.vlan_id) if stt.v else None)
    l3 = outer_l3(outer)
    tcp = l3.payload if l3 is not None and isinstance(l3.payload, TCP) else None
    if l3 is not None:
        info.underlay = "ipv6" if isinstance(l3, IPv6) else "ipv4"
        info.outer_src, info.outer_dst = str(l3.src), str(l3.dst)
        info.overhead = (40 if info.underlay == "ipv6" else 20) + 20 + len(bytes(stt)) \
            - len(bytes(stt.payload))
    if tcp is not None:
        info.sport, info.dport = int(tcp.sport), int(tcp.dport)
        info.identifier = int(tcp.ack)
    return inner, info
