"""Where the headers of a (super-)packet are, from the wire decoder.

:func:`parse_offsets` reads a frame with :func:`scapy_geneve.capture.decode.decode`
(the project's one wire decoder) and keeps what GSO/GRO need: the outer and
inner IP headers, the tunnel header, the innermost TCP/UDP header and where
the payload starts.  What the decoder cannot read becomes a
:class:`CaptureError` naming the byte offset; a well-formed packet that GSO
does not cut (a fragment, a tunnel carrying no IP, an IPv6 routing header)
a :class:`NotSegmentable`.

Which UDP ports are tunnels comes from :mod:`scapy_geneve.registry`
(:func:`tunnel_ports`); GSO cuts Geneve, VXLAN and VXLAN-GPE over UDP
(``__skb_udp_tunnel_segment``) and any GRE version 0 without routing
(``gre_gso_segment``): NVGRE as the registry knows it, or plain GRE.
"""

from functools import lru_cache
from typing import Dict, NamedTuple, Optional, Union

from scapy_geneve import registry
from scapy_geneve.capture.decode import Decoded, L4Header, decode
from scapy_geneve.capture.decode import IPHeader as WireIP
from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, LINKTYPE_RAW
from scapy_geneve.consts import ETH_P_IP, ETH_P_IPV6, IPPROTO_GRE
from scapy_geneve.errors import CaptureError

__all__ = [
    "parse_offsets",
    "decode_frame",
    "offsets_of",
    "Offsets",
    "IPHeader",
    "NotSegmentable",
    "TUNNEL_PORTS",
    "UDP_TUNNELS",
    "GRE_TUNNELS",
    "tunnel_ports",
    "PortTable",
    "frame_is_ip",
]

#: The UDP tunnels Linux's GSO segments (``__skb_udp_tunnel_segment``): registry names.
UDP_TUNNELS = ("geneve", "vxlan", "vxlan-gpe")
#: GRE as ``gre_gso_segment`` cuts it: NVGRE (RFC 7637, the registry's "nvgre") or plain GRE.
GRE_TUNNELS = ("nvgre", "gre")
#: What ``tunnel=`` takes besides "none".
_FORCEABLE = UDP_TUNNELS + ("nvgre",)

PortTable = Union[Dict[int, str], registry.Ports]

_IPPROTO_TCP, _IPPROTO_UDP = 6, 17
_COPIED_EXT = (0, 60)  # IPv6 Hop-by-Hop and Destination Options: copied into every segment
_LINKTYPES = {"ether": LINKTYPE_ETHERNET, "ip": LINKTYPE_RAW}


def tunnel_ports(ports: registry.Ports = registry.DEFAULT_PORTS) -> Dict[int, str]:
    """UDP destination port -> tunnel name for the :data:`UDP_TUNNELS` in PORTS
    (a :class:`scapy_geneve.registry.Ports`; default: the registry's ports)."""
    keys = [registry.get(name).ports_key or "" for name in UDP_TUNNELS]
    candidates = set().union(*(getattr(ports, key) for key in keys))
    kinds = {port: ports.udp_kind(-1, port) for port in candidates}  # the registry's precedence
    return {port: kind for port, kind in sorted(kinds.items()) if kind in UDP_TUNNELS}


#: UDP destination ports recognised as tunnels when the packet does not say
#: (the registry's defaults: Geneve 6081, VXLAN 4789/8472/48879, VXLAN-GPE 4790).
TUNNEL_PORTS: Dict[int, str] = tunnel_ports()


class NotSegmentable(CaptureError):
    """The packet is well formed but not something GSO cuts (an IP fragment, a
    tunnel carrying no IP, an IPv6 routing header...): a writer may copy it as it is."""


class IPHeader(NamedTuple):
    """Where an IPv4 or IPv6 header is, and what the checksums need from it."""

    off: int  # offset of the IP header in the frame
    version: int  # 4 or 6
    hlen: int  # IPv4 IHL*4, or 40 + extension headers copied as they are
    proto: int  # upper-layer protocol (after IPv6 extension headers)
    src: bytes
    dst: bytes
    end: int  # frame offset where this datagram ends


class Offsets(NamedTuple):
    """Header offsets of a (super-)packet, found once from its bytes.

    ``outer`` is the tunnel's IP header (None without a tunnel), ``tunnel``
    one of "geneve", "vxlan", "vxlan-gpe", "nvgre" (the registry's names) or
    "gre" (GRE that is not NVGRE: gretap, GRE carrying IP), ``tunnel_off`` the
    offset of its UDP or GRE header and ``inner_l2`` the offset of the inner
    frame (or inner IP header when the tunnel carries IP directly).  ``ip`` is
    the innermost IP header, ``l4`` "tcp", "udp" or "other".  ``wire`` is the
    decoder's record the offsets come from.
    """

    outer: Optional[IPHeader]
    tunnel: Optional[str]
    tunnel_off: int
    inner_l2: int
    ip: IPHeader
    l4: str
    l4_off: int
    l4_hlen: int
    payload_off: int
    wire: Optional[Decoded] = None

    @property
    def end(self) -> int:
        return self.ip.end

    @property
    def first_ip(self) -> IPHeader:
        return self.outer if self.outer is not None else self.ip

    @property
    def gre(self) -> bool:
        """The tunnel is GRE (NVGRE or plain): no UDP header, GRE's own checksum."""
        return self.tunnel in GRE_TUNNELS


def _err(msg: str, off: int, cls: type = CaptureError) -> CaptureError:
    err: CaptureError = cls("%s (at byte %d of the packet)" % (msg, off))
    return err


def _not_gso(msg: str, off: int) -> CaptureError:
    """A well-formed packet GSO does not cut (:class:`NotSegmentable`)."""
    return _err(msg, off, NotSegmentable)


# -- ports and forced tunnels ---------------------------------------------------------------
_NO_PORTS = registry.Ports(*(frozenset() for _ in registry.Ports._fields))


@lru_cache(maxsize=64)
def _decoder_ports(ports: registry.Ports) -> registry.Ports:
    """PORTS with only the tunnels GSO cuts: no STT (TCP) and no L2TPv3 (UDP/IP 115)."""
    return ports._replace(stt=frozenset(), l2tp=frozenset())


def _ports_of_table(table: Dict[int, str]) -> registry.Ports:
    sets: Dict[str, set] = {}
    for port, kind in table.items():
        key = registry.get(kind).ports_key
        if kind not in UDP_TUNNELS or key is None:
            raise ValueError(
                "tunnel_ports: %s is not a UDP tunnel GSO cuts (%s)" % (kind, ", ".join(UDP_TUNNELS))
            )
        sets.setdefault(key, set()).add(port)
    return _NO_PORTS._replace(**{key: frozenset(v) for key, v in sets.items()})


def _ports(table: Optional[PortTable]) -> registry.Ports:
    if table is None:
        return _decoder_ports(registry.DEFAULT_PORTS)
    if isinstance(table, registry.Ports):
        return _decoder_ports(table)
    return _ports_of_table(table)


def _tunnel_name(tunnel: Optional[str]) -> Optional[str]:
    """None, "none", or the registry name of a tunnel GSO cuts (aliases accepted)."""
    if tunnel is None or tunnel == "none":
        return tunnel
    if tunnel in GRE_TUNNELS:
        return "nvgre"  # GRE is read as a tunnel whatever it is
    try:
        name = registry.get(tunnel).name
    except KeyError:
        name = ""
    if name not in _FORCEABLE:
        raise ValueError("unknown tunnel %r (%s, gre or none)" % (tunnel, ", ".join(_FORCEABLE)))
    return name


def decode_frame(
    buf: bytes, link: str = "ether", tunnel: Optional[str] = None, tunnel_ports: Optional[PortTable] = None
) -> Decoded:
    """The decoder's record of BUF as segment and GRO read it: only the UDP tunnels
    GSO cuts; ``tunnel`` forces how the UDP payload is read ("none": as data)."""
    linktype = _LINKTYPES.get(link)
    if linktype is None:
        raise ValueError("link must be 'ether' or 'ip', not %r" % (link,))
    forced = _tunnel_name(tunnel)
    if forced is None:
        return decode(buf, linktype, _ports(tunnel_ports))
    rec = decode(buf, linktype, _NO_PORTS)
    if forced in ("none", "nvgre") or rec.l4 is None or rec.l4.proto != _IPPROTO_UDP:
        return rec
    key = registry.get(forced).ports_key or ""
    return decode(buf, linktype, _NO_PORTS._replace(**{key: frozenset([rec.l4.dport])}))


# -- the decoder's record -> Offsets -----------------------------------------------------------
def parse_offsets(
    buf: bytes, link: str = "ether", tunnel: Optional[str] = None, tunnel_ports: Optional[PortTable] = None
) -> Offsets:
    """Find the header offsets of ``buf`` (one frame).

    ``link`` is "ether" or "ip" (the frame starts with the IP header).
    ``tunnel`` forces how a UDP payload is read ("geneve", "vxlan",
    "vxlan-gpe" or a registry alias, or "none" for UDP GSO of the UDP
    itself, GRE then being read as data too); by default the UDP
    destination port decides (``tunnel_ports``: a port table or a
    :class:`scapy_geneve.registry.Ports`, default :data:`TUNNEL_PORTS`).
    Raises :class:`CaptureError` naming the byte offset of whatever cannot
    be read, :class:`NotSegmentable` for a packet GSO does not cut.
    """
    rec = decode_frame(buf, link, tunnel, tunnel_ports)
    return offsets_of(rec, buf, plain=tunnel == "none")


def offsets_of(rec: Decoded, buf: bytes, plain: bool = False) -> Offsets:
    """The :class:`Offsets` of BUF, decoded as REC (``plain``: read no tunnel)."""
    if rec.ip is None:
        _raise_malformed(rec)
        raise _not_gso("outer EtherType %#06x is not IPv4 or IPv6" % rec.ethertype, 0)
    outer = _ip_header(rec.ip, len(buf), "outer")
    l4 = rec.l4
    if plain or l4 is None:
        opaque = l4 is not None and l4.proto == IPPROTO_GRE  # "none": GRE read as data
        return _transport(rec, buf, None, None, _link_len(rec, outer), outer, opaque)
    if rec.tunnel_off >= 0 and (rec.kind in UDP_TUNNELS or l4.proto == IPPROTO_GRE):
        return _tunnel_offsets(rec, l4, buf, outer)
    if l4.proto == IPPROTO_GRE:
        raise _not_gso(
            "GRE version %d / routing present: not a GRE/NVGRE tunnel header" % (rec.gre_flags & 7),
            l4.off,
        )
    if rec.kind in UDP_TUNNELS:
        _short_tunnel(rec, l4)  # the tunnel header did not fit: raises
    return _transport(rec, buf, None, None, _link_len(rec, outer), outer, False)


def _link_len(rec: Decoded, outer: IPHeader) -> int:
    """``inner_l2`` without a tunnel: 0 for Ethernet, the IP header's offset otherwise."""
    return 0 if rec.linktype == LINKTYPE_ETHERNET else outer.off


def _raise_malformed(rec: Decoded, before: Optional[int] = None) -> None:
    """Raise the decoder's complaint (only one before byte BEFORE, when given)."""
    if rec.malformed and (before is None or rec.reason_offset < before):
        raise _err(str(rec.reason), rec.reason_offset)


def _ip_header(ip: WireIP, size: int, what: str) -> IPHeader:
    """Our IPHeader of the decoder's IP; the checks GSO needs of it."""
    if ip.end > size:
        field_name = "total length" if ip.version == 4 else "payload length"
        raise _err(
            "%s IPv%d %s %d runs past the %d bytes captured (truncated capture? use a "
            "larger snaplen)" % (what, ip.version, field_name, ip.length, size - ip.off),
            ip.off,
        )
    if ip.frag or ip.flags & 1:  # offset, or MF (IPv4) / M (IPv6 Fragment header)
        raise _not_gso(
            "%s IPv%d packet is a fragment (MF or offset set): nothing to segment" % (what, ip.version),
            ip.off,
        )
    for nh, off in ip.ext:
        if nh not in _COPIED_EXT:
            raise _not_gso(
                "%s IPv6 next header %d (routing/fragment/IPsec) is not segmentable" % (what, nh), off
            )
    return IPHeader(ip.off, ip.version, ip.hlen, ip.proto, ip.src_b, ip.dst_b, ip.end)


def _short_tunnel(rec: Decoded, udp: L4Header) -> None:
    """A UDP datagram to a tunnel port too short for the tunnel's header: not a tunnel
    packet GSO could have made (an empty datagram to 4789, as captured on the sender)."""
    left = udp.end - udp.off - 8
    if left < 8:
        raise _not_gso(
            "UDP datagram to port %d carries %d bytes: too short for a %s header, "
            "not a tunnel packet" % (udp.dport, max(left, 0), registry.get(str(rec.kind)).title),
            udp.off,
        )
    _raise_malformed(rec)


def _tunnel_offsets(rec: Decoded, l4: L4Header, buf: bytes, outer: IPHeader) -> Offsets:
    """The offsets of a tunnel packet whose UDP/GRE header is L4."""
    t_off = l4.off
    kind = rec.kind if rec.kind is not None else "gre"
    if kind in UDP_TUNNELS and l4.end - t_off - 8 < 8:
        _short_tunnel(rec, l4)
    _raise_malformed(rec)
    if rec.inner_ip is None:
        what = rec.inner_ethertype if rec.inner_ethertype >= 0 else rec.proto
        if kind in GRE_TUNNELS:
            what = rec.gre_proto if rec.inner_ethertype < 0 else rec.inner_ethertype
        raise _not_gso("%s carries protocol %#06x: no inner IP to segment" % (kind, what), t_off)
    inner = _ip_header(rec.inner_ip, outer.end, "inner")
    if inner.end != outer.end or l4.end != outer.end:
        raise _err(
            "inner IP length (%d bytes) disagrees with the outer one (%d bytes left)"
            % (inner.end - inner.off, outer.end - inner.off),
            inner.off,
        )
    return _transport(rec, buf, outer, kind, rec.inner_off, inner, False, t_off)


def _transport(
    rec: Decoded,
    buf: bytes,
    outer: Optional[IPHeader],
    tunnel: Optional[str],
    inner_l2: int,
    ip: IPHeader,
    opaque: bool,
    t_off: int = 0,
) -> Offsets:
    """The innermost TCP/UDP header (anything else, or a GRE read as data: "other")."""
    l4_off = ip.off + ip.hlen
    proto = -1 if opaque else ip.proto
    if proto == _IPPROTO_TCP:
        if ip.end - l4_off < 20:
            raise _err("TCP header truncated", l4_off)
        hlen = (buf[l4_off + 12] >> 4) * 4  # l4_off + 20 <= ip.end <= len(buf)
        if hlen < 20 or l4_off + hlen > ip.end:
            raise _err("TCP data offset %d is invalid" % hlen, l4_off + 12)
        l4 = "tcp"
    elif proto == _IPPROTO_UDP:
        if ip.end - l4_off < 8:
            raise _err("UDP header truncated", l4_off)
        hlen, l4 = 8, "udp"
    else:
        hlen, l4 = 0, "other"
    if outer is None:  # the decoder's complaints about what segment reads
        _raise_malformed(rec, l4_off + hlen)
    return Offsets(outer, tunnel, t_off, inner_l2, ip, l4, l4_off, hlen, l4_off + hlen, rec)


def frame_is_ip(buf: bytes, link: str = "ether") -> bool:
    """Whether the frame carries IPv4 or IPv6 (after Ethernet and any VLAN tags);
    CaptureError when the link header itself is cut."""
    rec = decode(buf, _LINKTYPES[link], _NO_PORTS)
    if rec.ethertype < 0:
        _raise_malformed(rec)
    return rec.ethertype in (ETH_P_IP, ETH_P_IPV6)
