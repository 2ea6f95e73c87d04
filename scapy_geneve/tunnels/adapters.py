"""One adapter per encapsulation: its encapsulate and decapsulate steps.

The registry names these objects (``adapter="scapy_geneve.tunnels.adapters:GENEVE"``);
:func:`scapy_geneve.tunnels.tunnel.encapsulate` and ``decapsulate`` reach them
through ``registry.get(kind).load_adapter()``.  Each adapter holds only what
is particular to its kind; the outer IP header, the identifier checks and
the receiver's checks of the outer headers are common to all of them.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from scapy.packet import Packet
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

from scapy_geneve.compat import is_bound
from scapy_geneve.errors import BuildError
from scapy_geneve.layers.geneve import Geneve, GeneveOption, flow_sport
from scapy_geneve.layers.l2tpv3 import L2TPv3, L2TPv3UDP, resolve_session
from scapy_geneve.layers.nvgre import NVGRE as NVGREHeader
from scapy_geneve.layers.stt import STT as STTHeader
from scapy_geneve.layers.stt import STTFragment
from scapy_geneve.layers.vxlan import VXLAN as VXLANHeader
from scapy_geneve.layers.vxlan import (
    VXLAN_FLAG_B,
    VXLAN_FLAG_G,
    VXLAN_FLAG_I,
    VXLAN_FLAG_O,
    VXLAN_FLAG_P,
    build_vxlan,
)
from scapy_geneve.offload.stt import outer_l3, stt_reassemble, stt_segment
from scapy_geneve.registry import L2TP_PORT, records
from scapy_geneve.tunnels.base import Adapter, NotATunnel, Outer, TunnelInfo, entropy_sport, inner_ecn
from scapy_geneve.tunnels.l2tpv3 import l2tpv3_session

# The layer classes are imported as VXLANHeader, NVGREHeader and STTHeader here: the
# adapters take the registry's names (VXLAN, NVGRE, STT).
__all__ = [
    "GENEVE",
    "VXLAN",
    "NVGRE",
    "STT",
    "L2TPV3",
    "GeneveAdapter",
    "VXLANAdapter",
    "NVGREAdapter",
    "STTAdapter",
    "L2TPv3Adapter",
    "offset_of",
    "require_ether",
]


def offset_of(packet: Packet, layer: Packet) -> int:
    """The byte offset of LAYER in PACKET."""
    return len(bytes(packet)) - len(bytes(layer))


def require_ether(kind: str, inner: Packet) -> None:
    if not isinstance(inner, Ether):
        raise BuildError(
            kind, "inner", inner.__class__.__name__, "must be an Ethernet frame (Ether) for %s" % kind
        )


def _default_port(kind: str) -> int:
    """The registry's lowest default port of KIND (the IANA one for these kinds)."""
    rec = next(r for r in records() if r.name == kind)
    return min(rec.ports)


# -- Geneve -------------------------------------------------------------------------------
class GeneveAdapter(Adapter):
    """RFC 8926 over UDP 6081: options, O and C bits; checksum on by default."""

    kind = "geneve"
    layers = (Geneve,)
    reserved_fields = ("reserved", "reserved2")

    def encapsulate(self, inner: Packet, ident: int, outer: Outer, params: Dict[str, Any]) -> Packet:
        gen = Geneve(
            vni=ident, options=list(params.pop("options", [])), oam=int(bool(params.pop("oam", False)))
        )
        if "critical" in params:
            gen.critical = params.pop("critical")
        self.set_reserved(gen, params)
        udp = outer.udp(self.kind, entropy_sport(inner), _default_port(self.kind), True)
        return outer.l3 / udp / gen / inner

    def decapsulate(self, layer: Packet, packet: Packet, info: TunnelInfo) -> Optional[Packet]:
        _check_geneve(layer, offset_of(packet, layer))
        info.kind, info.vni = self.kind, int(layer.vni)
        info.options = [o.copy() for o in layer.options]
        info.oam, info.critical = bool(layer.oam), bool(layer.critical)
        info.proto = int(layer.proto)
        self.read_reserved(layer, info)
        return None

    def params(self, info: TunnelInfo) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "options": [o.copy() for o in info.options],
            "oam": info.oam,
            "sport": info.sport,
            "dport": info.dport,
        }
        if info.critical != any(o.critical for o in info.options):
            out["critical"] = info.critical  # as received, even if inconsistent
        return out


def _check_geneve(layer: Packet, offset: int) -> None:
    """What RFC 8926 §3.4-3.5 tells a receiver to drop, read from the dissected header."""
    version, opt_len = int(layer.version), int(layer.optionlen or 0) * 4
    if version != 0:
        raise NotATunnel(
            "Geneve version %d at offset %d: only version 0 is defined, and a "
            "tunnel endpoint MUST drop packets with an unknown version "
            "(RFC 8926 §3.4)" % (version, offset)
        )
    after = len(bytes(layer)) - 8
    if opt_len > after:
        raise NotATunnel(
            "Geneve Opt Len %d (%d bytes) at offset %d runs past the packet: "
            "%d bytes follow the 8-byte base header" % (opt_len // 4, opt_len, offset, after)
        )
    # Each option's own Length (4-byte header + Length words), as the layer read it; bytes
    # that do not make an option header stay raw in the list.
    total = sum(
        4 + 4 * int(opt.length or 0) if isinstance(opt, GeneveOption) else len(bytes(opt))
        for opt in layer.options
    )
    if total != opt_len:
        raise NotATunnel(
            "Geneve options at offset %d add up to %d bytes, not the %d bytes "
            "Opt Len says (the last option's Length runs past Opt Len)" % (offset + 8, total, opt_len)
        )


# -- VXLAN (RFC 7348, GBP, GPE) ---------------------------------------------------------
class VXLANAdapter(Adapter):
    """RFC 7348 over UDP 4789; GBP (group policy) and GPE (next protocol, port 4790)."""

    kind = "vxlan"
    layers = (VXLANHeader,)
    reserved_fields = ("reserved0", "reserved1", "reserved2")

    def ports(self) -> Tuple[int, ...]:
        """Every port VXLAN and its variants are received on (the registry's)."""
        return tuple(sorted(p for r in records() if self.kind in (r.name, r.variant_of) for p in r.udp_ports))

    def encapsulate(self, inner: Packet, ident: int, outer: Outer, params: Dict[str, Any]) -> Packet:
        next_protocol = params.pop("next_protocol", None)
        if not isinstance(inner, Ether) and next_protocol is None:
            next_protocol = _gpe_next_protocol(inner)
        hdr = build_vxlan(
            ident,
            gpid=params.pop("gpid", None),
            dont_learn=params.pop("dont_learn", False),
            policy_applied=params.pop("policy_applied", False),
            next_protocol=next_protocol,
            oam=params.pop("oam", False),
            bum=params.pop("bum", False),
        )
        self.set_reserved(hdr, params)
        port = _default_port("vxlan-gpe" if next_protocol is not None else self.kind)
        udp = outer.udp(self.kind, entropy_sport(inner), port, False)
        return outer.l3 / udp / hdr / inner

    def decapsulate(self, layer: Packet, packet: Packet, info: TunnelInfo) -> Optional[Packet]:
        flags = int(layer.flags)
        if not flags & VXLAN_FLAG_I:
            # RFC 7348 §5: "the I flag MUST be set to 1 for a valid VXLAN Network
            # ID"; Linux's vxlan_rcv() drops such packets.
            raise NotATunnel(
                "VXLAN flags 0x%02x at offset %d: the I flag is clear, so "
                "the VNI is not valid (RFC 7348 §5)" % (flags, offset_of(packet, layer))
            )
        udp = layer.underlayer
        if isinstance(udp, UDP) and not self._received_on(int(udp.dport)):
            # Scapy also binds VXLAN to *source* ports 4789/4790/6633/8472; a VTEP
            # listens on the destination port only.
            raise NotATunnel(
                "UDP %d -> %d is VXLAN only by Scapy's source-port binding: "
                "a VTEP receives VXLAN on its destination port (bind_layers("
                "UDP, VXLAN, dport=%d) for a custom one)" % (int(udp.sport), int(udp.dport), int(udp.dport))
            )
        info.kind, info.vni = self.kind, int(layer.vni)
        if flags & VXLAN_FLAG_G:
            info.group_policy_id = int(layer.gpid)
            info.dont_learn = bool(int(layer.gpflags) & 0x40)
            info.policy_applied = bool(int(layer.gpflags) & 0x08)
        if flags & VXLAN_FLAG_P:
            info.next_protocol = int(layer.NextProtocol)
            info.oam = bool(flags & VXLAN_FLAG_O)
            info.bum = bool(flags & VXLAN_FLAG_B)
        self.read_reserved(layer, info)
        return None

    def _received_on(self, dport: int) -> bool:
        """Is DPORT a port VXLAN is received on (the registry's, or bound to VXLAN)?"""
        if dport in self.ports():
            return True
        return is_bound(UDP, VXLANHeader, dport=dport)

    def params(self, info: TunnelInfo) -> Dict[str, Any]:
        out: Dict[str, Any] = {"sport": info.sport, "dport": info.dport}
        if info.group_policy_id is not None:
            out.update(
                gpid=info.group_policy_id, dont_learn=info.dont_learn, policy_applied=info.policy_applied
            )
        if info.next_protocol is not None:
            out.update(next_protocol=info.next_protocol, oam=info.oam, bum=info.bum)
        return out


def _gpe_next_protocol(inner: Packet) -> int:
    if isinstance(inner, IP):
        return 1
    if isinstance(inner, IPv6):
        return 2
    raise BuildError("vxlan", "inner", inner.__class__.__name__, "needs VXLAN-GPE: pass next_protocol=")


# -- NVGRE ------------------------------------------------------------------------------
class NVGREAdapter(Adapter):
    """RFC 7637: GRE key = VSID (24 bits) + FlowID (8 bits), Ethernet without 802.1Q."""

    kind = "nvgre"
    layers = (NVGREHeader,)
    reserved_fields = ("strict_route_source", "recursion_control", "flags")

    def encapsulate(self, inner: Packet, ident: int, outer: Outer, params: Dict[str, Any]) -> Packet:
        require_ether(self.kind, inner)
        if isinstance(inner.payload, (Dot1Q, Dot1AD)):
            raise BuildError(
                "nvgre", "inner", "802.1Q tag", "must be removed before NVGRE encapsulation (RFC 7637)"
            )
        flowid = params.pop("flowid", None)
        if flowid is None:
            flowid = flow_sport(inner, 1, 0xFF)
        hdr = NVGREHeader(vsid=ident, flowid=flowid)
        self.set_reserved(hdr, params)
        return outer.l3 / hdr / inner

    def decapsulate(self, layer: Packet, packet: Packet, info: TunnelInfo) -> Optional[Packet]:
        if isinstance(layer.payload, Ether) and isinstance(layer.payload.payload, (Dot1Q, Dot1AD)):
            # RFC 7637: the decapsulating NVE MUST drop inner frames with 802.1Q tags.
            raise NotATunnel(
                "NVGRE VSID 0x%06x: the inner frame carries an 802.1Q tag "
                "(VLAN %d), which the decapsulating NVE must drop (RFC 7637)"
                % (int(layer.vsid), int(layer.payload.payload.vlan))
            )
        info.kind, info.vni, info.flowid = self.kind, int(layer.vsid), int(layer.flowid)
        info.transport = "gre"
        self.read_reserved(layer, info)
        return None

    def params(self, info: TunnelInfo) -> Dict[str, Any]:
        return {"flowid": info.flowid}


# -- STT --------------------------------------------------------------------------------
class STTAdapter(Adapter):
    """draft-davie-stt-08: a 64 KB frame in TCP-like segments on TCP 7471."""

    kind = "stt"
    layers = (STTHeader, STTFragment)
    reserved_fields = ("reserved",)

    def encapsulate(self, inner: Packet, ident: int, outer: Outer, params: Dict[str, Any]) -> List[Packet]:
        require_ether(self.kind, inner)
        l3 = outer.l3
        frame: Packet = inner
        if params.get("reserved"):
            frame = self._header(inner, ident, params) / inner
        segs = stt_segment(
            frame,
            context_id=ident,
            mss=params.pop("mss", None),
            src=l3.src,
            dst=l3.dst,
            sport=entropy_sport(inner) if outer.sport is None else outer.sport,
            identifier=params.pop("identifier", None),
            mtu=params.pop("mtu", 1500),
            csum_partial=params.pop("csum_partial", False),
            csum_verified=params.pop("csum_verified", False),
            inner_mss=params.pop("inner_mss", 0),
            vlan_id=params.pop("vlan_id", None),
            pcp=params.pop("pcp", 0),
            ip_id=outer.ip_id,
            ttl=outer.ttl,
            tos=int(l3.tc if outer.version == 6 else l3.tos),
            df=outer.df,
            **({"dport": outer.dport} if outer.dport is not None else {}),
        )
        if outer.version == 6:
            for seg in segs:
                seg.fl = l3.fl
        return segs

    def _header(self, inner: Packet, ident: int, params: Dict[str, Any]) -> Packet:
        """The STT header with reserved bits set: built here, the rest as stt_segment does."""
        vlan_id = params.pop("vlan_id", None)
        hdr = STTHeader(
            context_id=ident,
            mss=params.pop("inner_mss", 0),
            pcp=params.pop("pcp", 0) if vlan_id is not None else 0,
            v=int(vlan_id is not None),
            vlan_id=vlan_id or 0,
        )
        self.set_reserved(hdr, params)
        return hdr

    def decapsulate(self, layer: Packet, packet: Packet, info: TunnelInfo) -> Optional[Packet]:
        if isinstance(layer, STTFragment):
            raise NotATunnel(
                "an STT continuation segment (offset %s of a %s-byte frame): "
                "pass all segments, or use stt_reassemble()" % (layer.offset, layer.frame_length)
            )
        tcp = layer.underlayer
        if isinstance(tcp, TCP) and int(tcp.seq) >> 16 != len(bytes(layer)):
            raise NotATunnel(
                "the first segment of a %d-byte STT frame: pass all "
                "segments, or use stt_reassemble()" % (int(tcp.seq) >> 16)
            )
        return self.read_frame(layer, packet, info)

    def reassemble(self, segments: Sequence[Packet], info: TunnelInfo) -> Tuple[Packet, Packet]:
        """(inner frame, first segment) of the segments of exactly one STT frame (fills INFO).

        The first segment (offset 0, the one holding the STT header) is where
        the outer headers are read, whatever order the segments came in.
        """
        done = stt_reassemble(segments)
        if len(done.frames) != 1:
            raise NotATunnel(
                "expected the segments of exactly one STT frame: got %d "
                "complete, %d incomplete (missing bytes %s), %d dropped"
                % (
                    len(done.frames),
                    len(done.incomplete),
                    [i.missing for i in done.incomplete],
                    len(done.dropped),
                )
            )
        frame = done.frames[0]
        first = next(p for p in segments if STTHeader in p)
        inner = self.read_frame(frame.stt, first, info)
        info.segments = frame.segments
        if frame.ecn_ce and inner_ecn(inner) == 0:
            raise NotATunnel(
                "ECN CE on a segment of the STT frame (identifier 0x%08x) over a "
                "Not-ECT inner packet: the decapsulator must drop it (RFC 6040 "
                "§4.2)" % frame.identifier
            )
        return inner, first

    def read_frame(self, stt: Packet, outer: Packet, info: TunnelInfo) -> Packet:
        if int(stt.version) != 0:
            # OVS drops every frame whose version is not 0 (the only one defined).
            raise NotATunnel(
                "STT version %d (the first byte of the STT frame header): only "
                "version 0 is defined (draft-davie-stt-08)" % int(stt.version)
            )
        info.kind, info.vni, info.transport = self.kind, int(stt.context_id), "tcp"
        info.stt_flags, info.l4_offset = int(stt.flags), int(stt.l4_offset)
        info.mss, info.pcp, info.segments = int(stt.mss), int(stt.pcp), 1
        info.vlan_id = int(stt.vlan_id) if stt.v else None
        self.read_reserved(stt, info)
        l3 = outer_l3(outer)
        if l3 is not None:
            info.overhead = (
                (40 if isinstance(l3, IPv6) else 20) + 20 + len(bytes(stt)) - len(bytes(stt.payload))
            )
            if isinstance(l3.payload, TCP):
                info.sport, info.dport = int(l3.payload.sport), int(l3.payload.dport)
                info.identifier = int(l3.payload.ack)
        return stt.payload.__class__(bytes(stt.payload))

    def params(self, info: TunnelInfo) -> Dict[str, Any]:
        return {
            "sport": info.sport,
            "identifier": info.identifier,
            "inner_mss": info.mss,
            "vlan_id": info.vlan_id,
            "pcp": info.pcp,
        }


# -- L2TPv3 -----------------------------------------------------------------------------
class L2TPv3Adapter(Adapter):
    """RFC 3931/4719: over IP 115 or UDP 1701; cookie and sublayer per session."""

    kind = "l2tpv3"
    layers = (L2TPv3,)
    reserved_fields = ("l2ss_x", "l2ss_reserved")

    def check_identifier(self, value: int) -> None:
        if value == 0:
            raise BuildError(
                self.kind,
                "session_id",
                value,
                "must be non-zero: session ID 0 marks a control message (RFC 3931 §4.1.1)",
            )

    def expected(self, transport: str) -> Tuple[str, int]:
        if transport == "udp":  # the 4-byte data header (RFC 3931 §4.1.2.1), then ours
            return "L2TPv3 over UDP", 4 + self.record.header_len
        return super().expected(transport)

    def encapsulate(self, inner: Packet, ident: int, outer: Outer, params: Dict[str, Any]) -> Packet:
        require_ether(self.kind, inner)
        transport = params.pop("transport", "ip")
        if transport not in ("ip", "udp"):
            raise BuildError("l2tpv3", "transport", transport, "must be 'ip' or 'udp'")
        data = self._header(ident, outer, params)
        if transport == "ip":
            return outer.l3 / data / inner
        udp = outer.udp(self.kind, L2TP_PORT, L2TP_PORT, True)
        return outer.l3 / udp / L2TPv3UDP() / data / inner

    def _header(self, ident: int, outer: Outer, params: Dict[str, Any]) -> Packet:
        cookie = bytes(params.pop("cookie", b"") or b"")
        sequence = params.pop("sequence", None)
        l2ss = bool(params.pop("l2ss", False)) or sequence is not None
        if len(cookie) not in (0, 4, 8):
            raise BuildError("l2tpv3", "cookie", cookie, "has a length other than 0, 4 or 8 (RFC 3931 §4.1)")
        if sequence is not None and not 0 <= sequence < 1 << 24:
            raise BuildError("l2tpv3", "sequence", sequence, "24 bits")
        if params.pop("register", True):
            # The layout only: the cookie value is checked on receipt only when
            # declared (l2tpv3_session(cookie=...)) or learned (AVP 65).
            l2tpv3_session(ident, len(cookie), l2ss, dst=str(outer.l3.dst))
        data = L2TPv3(session_id=ident, cookie=cookie)
        if l2ss:
            data.l2ss_s = 1 if sequence is not None else 0
            data.l2ss_seq = sequence or 0
        self.set_reserved(data, params)
        return data

    def decapsulate(self, layer: Packet, packet: Packet, info: TunnelInfo) -> Optional[Packet]:
        if layer.session_id == 0:
            raise NotATunnel("an L2TPv3 control message (session ID 0) carries no frame")
        info.kind, info.vni = self.kind, int(layer.session_id)
        info.cookie = bytes(layer.cookie or b"")
        # The layout the layer dissected with (the session table, unless a caller
        # installed another resolver): its cookie value, when known, must match.
        expected = getattr(resolve_session(info.vni, info.outer_dst or None), "cookie", None)
        if expected is not None and info.cookie != expected:
            raise NotATunnel(
                "L2TPv3 session 0x%08x to %s: cookie %s at offset %d is not "
                "the session's %s, so the receiving LCCE discards the packet"
                % (
                    info.vni,
                    info.outer_dst or "?",
                    info.cookie.hex() or "(none)",
                    offset_of(packet, layer) + 4,
                    expected.hex() or "(none)",
                )
            )
        data_header = layer.underlayer
        over_udp = isinstance(data_header, L2TPv3UDP)
        info.l2tp_transport = info.transport = "udp" if over_udp else "ip"
        udp = data_header.underlayer if data_header is not None else None
        if over_udp and isinstance(udp, UDP):
            info.sport, info.dport = int(udp.sport), int(udp.dport)
        if "l2ss_seq" in layer.fields:
            info.l2ss = True
            info.sequence = int(layer.l2ss_seq) if layer.l2ss_s else None
        self.read_reserved(layer, info)
        return None

    def params(self, info: TunnelInfo) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "cookie": info.cookie or b"",
            "sequence": info.sequence,
            "l2ss": info.l2ss,
            "transport": info.l2tp_transport or "ip",
        }
        if info.l2tp_transport == "udp":
            out.update(sport=info.sport, dport=info.dport)
        return out


#: The adapters the registry names.
GENEVE = GeneveAdapter()
VXLAN = VXLANAdapter()
NVGRE = NVGREAdapter()
STT = STTAdapter()
L2TPV3 = L2TPv3Adapter()


def adapter_for(layer: Packet) -> Union[Adapter, None]:
    """The adapter of the first registered kind whose layers include LAYER's class."""
    for rec in records():
        adapter = rec.load_adapter()
        if isinstance(layer, adapter.layers):
            return adapter
    return None
