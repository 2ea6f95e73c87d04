"""RFC conformance linter for overlay encapsulations, on wire bytes.

``lint(pkt)`` judges a packet (a Scapy packet, or the bytes of one) and
returns a list of :class:`Finding`: which rule, how strong the requirement is
(MUST / SHOULD / INFO), where the RFC says so, what is wrong and in which
field, and the byte offset of that field in the packet.  A Scapy packet is
linted as ``bytes(pkt)``: the linter judges what is on the wire, exactly as a
receiver would, whatever a dissector made of it.  :func:`lint_bytes` takes the
bytes and the capture's link type directly, so a pcap is linted without
building Scapy packets.

Covered encapsulations and their rule prefixes (the registry's ``lint_prefix``):

========  ===================================  ==============================
prefix    protocol                             spec
========  ===================================  ==============================
GNV       Geneve (UDP 6081)                    RFC 8926
VXL       VXLAN (UDP 4789, 8472, 48879),       RFC 7348,
          VXLAN-GPE (UDP 4790, ``--gpe-port``) draft-ietf-nvo3-vxlan-gpe
NVG       NVGRE (GRE, protocol 0x6558)         RFC 7637 (+ RFC 2784/2890)
STT       STT (TCP 7471)                       draft-davie-stt-08
L2T       L2TPv3 data (IP 115, UDP 1701 v3)    RFC 3931
========  ===================================  ==============================

The walk: link layer (Ethernet and 802.1Q/802.1ad tags, Linux SLL/SLL2, raw
IP, loopback) -> IPv4/IPv6 (extension headers; BIG TCP lengths of 0 taken
from the capture, as tcpdump does) -> UDP/TCP/GRE/IP 115 -> the tunnel header
(:mod:`~scapy_geneve.conformance.lint_checks`) -> the inner frame, where
nested tunnels are linted too.  The linter is pure: no I/O, no printing.
``RULES`` lists every rule for documentation and ``--list-rules``.
"""

from dataclasses import dataclass, field, replace
from typing import (Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set,
                    Tuple, Union)

from scapy_geneve import registry
from scapy_geneve.consts import ETH_P_IP, ETH_P_IPV6, ETH_P_TEB, IPPROTO_GRE, IPPROTO_L2TP
from scapy_geneve.conformance.lint_checks import (ETH_P_8021AD, ETH_P_8021Q, Inner, IPHeader, Site,
                                                  Understood, check_geneve, check_l2tpv3_ip,
                                                  check_l2tpv3_udp, check_nvgre, check_stt,
                                                  check_vxlan)
from scapy_geneve.conformance.lint_rules import (INFO, LEVEL_ORDER, MUST, RULES, SHOULD, Finding,
                                                 Rule, finding, lint_summary, select_rules)

__all__ = ["Finding", "Rule", "RULES", "LintOptions", "PacketReport", "lint", "lint_bytes",
           "lint_report", "lint_summary", "select_rules", "MUST", "SHOULD", "INFO",
           "GRE_AS", "GUESS_NOTE", "linktype_of"]

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2 = 113, 228, 229, 276
_RAW_IP = (LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6)

#: How GRE carrying Ethernet (0x6558) is read: ``auto`` (a keyed one is NVGRE,
#: said to be a guess; a keyless one is RFC 2784 gretap), ``nvgre`` (every GRE
#: packet is NVGRE: the capture is known to be), ``gre`` (none is).
GRE_AS = ("auto", "nvgre", "gre")
_MAX_DEPTH = 8          # nested tunnels followed
#: Appended to NVGRE findings on GRE read as NVGRE by guess.
GUESS_NOTE = " (keyed GRE carrying Ethernet read as NVGRE: a guess; --gre-as nvgre|gre settles it)"


@dataclass(frozen=True)
class LintOptions:
    """What the receiver knows: ports, understood options, how to read GRE, L2TPv3 framing."""

    ports: registry.Ports = registry.DEFAULT_PORTS
    understood: Understood = None
    gre_as: str = "auto"
    stt: bool = True
    l2tpv3: bool = True
    l2tp_cookie: int = 0
    l2tp_l2ss: bool = False
    rules: Optional[FrozenSet[str]] = None     # None: every rule
    level: str = INFO                          # report this level and stronger

    def __post_init__(self) -> None:
        if self.gre_as not in GRE_AS:
            raise ValueError("gre_as must be one of %s, not %r" % (", ".join(GRE_AS), self.gre_as))
        if self.level not in LEVEL_ORDER:
            raise ValueError("level must be one of %s, not %r" % (", ".join(LEVEL_ORDER), self.level))

    def keeps(self, f: Finding) -> bool:
        return (self.rules is None or f.rule in self.rules) and \
            LEVEL_ORDER[f.level] >= LEVEL_ORDER[self.level]


@dataclass
class PacketReport:
    """A packet's findings, and the kinds read by guess (``nvgre``: keyed 0x6558 GRE)."""

    findings: List[Finding] = field(default_factory=list)
    guessed: Set[str] = field(default_factory=set)
    kinds: List[str] = field(default_factory=list)


# -- link layer ---------------------------------------------------------------------------
def _u16(data: bytes, pos: int) -> int:
    return (data[pos] << 8) | data[pos + 1]


def _ether(data: bytes, pos: int, end: int) -> Tuple[int, int]:
    """(EtherType, offset of the network header) behind an Ethernet header and its tags."""
    if end - pos < 14:
        return 0, end
    ethertype, pos = _u16(data, pos + 12), pos + 14
    while ethertype in (ETH_P_8021Q, ETH_P_8021AD) and end - pos >= 4:
        ethertype, pos = _u16(data, pos + 2), pos + 4
    return ethertype, pos


def _link(data: bytes, linktype: int) -> Tuple[int, int]:
    """(EtherType, offset of the network header) for the capture's link type (0: none)."""
    n = len(data)
    if linktype == LINKTYPE_ETHERNET:
        return _ether(data, 0, n)
    if linktype == LINKTYPE_LINUX_SLL:
        return (_u16(data, 14), 16) if n >= 16 else (0, n)
    if linktype == LINKTYPE_LINUX_SLL2:
        return (_u16(data, 0), 20) if n >= 20 else (0, n)
    if linktype in _RAW_IP:
        version = data[0] >> 4 if n else 0
        return {4: ETH_P_IP, 6: ETH_P_IPV6}.get(version, 0), 0
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP) and n >= 4:
        family = int.from_bytes(data[:4], "big")
        if linktype == LINKTYPE_NULL and family > 0xFFFF:
            family = int.from_bytes(data[:4], "little")
        return {2: ETH_P_IP, 10: ETH_P_IPV6, 24: ETH_P_IPV6, 28: ETH_P_IPV6,
                30: ETH_P_IPV6}.get(family, 0), 4
    return 0, n


# -- IP ---------------------------------------------------------------------------------
def _ipv4(data: bytes, pos: int, end: int) -> Optional[IPHeader]:
    if end - pos < 20 or data[pos] >> 4 != 4:
        return None
    ihl = (data[pos] & 0x0F) * 4
    total = _u16(data, pos + 2)
    if ihl < 20 or end - pos < ihl:
        return None
    big = total == 0                       # BIG TCP: the length is the capture's
    stop = end if big or total < ihl else min(pos + total, end)
    flags = data[pos + 6]
    return IPHeader(off=pos, version=4, proto=data[pos + 9], l4=pos + ihl, end=stop,
                    src=data[pos + 12:pos + 16], dst=data[pos + 16:pos + 20],
                    df=bool(flags & 0x40), mf=bool(flags & 0x20),
                    frag_offset=(_u16(data, pos + 6) & 0x1FFF) * 8, ecn=data[pos + 1] & 3, big=big)


_IPV6_EXT = (0, 43, 44, 60)     # hop-by-hop, routing, fragment, destination options


def _jumbo(data: bytes, pos: int, hlen: int) -> Optional[int]:
    """The Jumbo Payload option's length in a hop-by-hop header (RFC 2675)."""
    i = pos + 2
    while i + 2 <= pos + hlen:
        opt = data[i]
        if opt == 0:
            i += 1
            continue
        if opt == 0xC2 and data[i + 1] == 4 and i + 6 <= pos + hlen:
            return int.from_bytes(data[i + 2:i + 6], "big")
        i += 2 + data[i + 1]
    return None


def _routing_final(data: bytes, pos: int, hlen: int) -> Optional[bytes]:
    """The final destination a routing header names (type 0 and SRH: the last
    address to visit), used by the upper-layer pseudo-header (RFC 8200 §8.1)."""
    rtype, left = data[pos + 2], data[pos + 3]
    if rtype == 0 and left and hlen >= 8 + 16 * left:
        return data[pos + hlen - 16:pos + hlen]
    if rtype == 4 and left and hlen >= 24:
        return data[pos + 8:pos + 24]     # Segment List[0] is the final segment (RFC 8754 §2)
    return None


def _ipv6(data: bytes, pos: int, end: int) -> Optional[IPHeader]:
    if end - pos < 40 or data[pos] >> 4 != 6:
        return None
    plen, nh, l4 = _u16(data, pos + 4), data[pos + 6], pos + 40
    dst, mf, frag_offset, jumbo = data[pos + 24:pos + 40], False, 0, None
    while nh in _IPV6_EXT and end - l4 >= 8:
        hlen = 8 if nh == 44 else (data[l4 + 1] + 1) * 8
        if end - l4 < hlen:
            break
        if nh == 0 and l4 == pos + 40:
            jumbo = _jumbo(data, l4, hlen)
        elif nh == 43:
            dst = _routing_final(data, l4, hlen) or dst
        elif nh == 44:
            frag_offset, mf = _u16(data, l4 + 2) & 0xFFF8, bool(data[l4 + 3] & 1)
        nh, l4 = data[l4], l4 + hlen
    big = plen == 0
    length = jumbo if big and jumbo else plen
    stop = end if big and not jumbo else min(pos + 40 + length, end)
    return IPHeader(off=pos, version=6, proto=nh, l4=l4, end=stop, src=data[pos + 8:pos + 24],
                    dst=dst, mf=mf, frag_offset=frag_offset, ecn=(data[pos + 1] >> 4) & 3,
                    big=big, field_prefix="IPv6")


def _ip(data: bytes, ethertype: int, pos: int, end: int) -> Optional[IPHeader]:
    if ethertype == ETH_P_IP:
        return _ipv4(data, pos, end)
    if ethertype == ETH_P_IPV6:
        return _ipv6(data, pos, end)
    return None


# -- transport and tunnel ------------------------------------------------------------------
@dataclass
class _Walk:
    data: bytes
    options: LintOptions
    report: PacketReport
    depth: int = 0


def _udp(walk: _Walk, ip: Optional[IPHeader], pos: int, end: int) -> Optional[Inner]:
    if end - pos < 8:
        return None
    ports, data = walk.options.ports, walk.data
    sport, dport = _u16(data, pos), _u16(data, pos + 2)
    site = Site(data, ip, pos, end)
    if dport in ports.geneve:
        return _judge(walk, "geneve", site, lambda s: check_geneve(s, walk.options.understood,
                                                                  dport == registry.GENEVE_PORT))
    if sport in ports.geneve and not _known_port(ports, dport):
        return _judge(walk, "geneve", site, lambda s: check_geneve(s, walk.options.understood, False))
    kind = ports.udp_kind(sport, dport)
    if kind in ("vxlan", "vxlan-gpe"):
        return _judge(walk, kind, replace(site, kind=kind), check_vxlan)
    if kind == "l2tpv3" and walk.options.l2tpv3 and end - pos > 9 and data[pos + 9] & 0x0F == 3:
        return _judge(walk, "l2tpv3", site, lambda s: check_l2tpv3_udp(s, _session_len(walk.options)))
    return None


def _known_port(ports: registry.Ports, port: int) -> bool:
    return any(port in group for group in ports)


def _session_len(options: LintOptions) -> int:
    return 4 + options.l2tp_cookie + (4 if options.l2tp_l2ss else 0)


def _gre(walk: _Walk, ip: Optional[IPHeader], pos: int, end: int) -> Optional[Inner]:
    gre_as, data = walk.options.gre_as, walk.data
    if gre_as == "gre" or (ip is not None and ip.fragment):
        return None
    teb = end - pos >= 4 and _u16(data, pos + 2) == ETH_P_TEB
    keyed = end - pos >= 2 and bool(data[pos] & 0x20)
    if gre_as == "nvgre":
        return _judge(walk, "nvgre", Site(data, ip, pos, end), check_nvgre)
    if not (teb and keyed):
        return None            # keyless Ethernet over GRE is RFC 2784 gretap, not NVGRE
    walk.report.guessed.add("nvgre")
    inner = check_nvgre(Site(data, ip, pos, end))
    inner.findings = [replace(f, message=f.message + GUESS_NOTE) for f in inner.findings]
    return _judge(walk, "nvgre", Site(data, ip, pos, end), lambda s: inner)


def _judge(walk: _Walk, kind: str, site: Site, check: Callable[[Site], Inner]) -> Inner:
    inner = check(site)
    walk.report.kinds.append(kind)
    walk.report.findings += inner.findings
    return inner


def _transport(walk: _Walk, ip: IPHeader) -> Optional[Inner]:
    """Lint the tunnel IP carries; returns what it carries (for nested tunnels)."""
    opts, proto, pos, end = walk.options, ip.proto, ip.l4, ip.end
    if proto == IPPROTO_L2TP and opts.l2tpv3:
        return _judge(walk, "l2tpv3", Site(walk.data, ip, pos, end),
                      lambda s: check_l2tpv3_ip(s, _session_len(opts)))
    if ip.frag_offset:
        return None                          # no transport header in a non-first fragment
    if proto == 17:
        return _udp(walk, ip, pos, end)
    if proto == IPPROTO_GRE:
        return _gre(walk, ip, pos, end)
    if proto == 6 and opts.stt and end - pos >= 20 and _u16(walk.data, pos + 2) in opts.ports.stt:
        return _judge(walk, "stt", Site(walk.data, ip, pos, end), check_stt)
    if proto in (4, 41):                      # IP in IP
        return Inner([], pos, ETH_P_IP if proto == 4 else ETH_P_IPV6, end)
    return None


def _network(walk: _Walk, ethertype: int, pos: int, end: int) -> None:
    """Lint from a network header on, following nested tunnels."""
    while walk.depth < _MAX_DEPTH:
        walk.depth += 1
        ip = _ip(walk.data, ethertype, pos, end)
        if ip is None:
            return
        inner = _transport(walk, ip)
        if inner is None or inner.offset is None or inner.offset >= inner.end:
            return
        ethertype, pos, end = inner.ethertype, inner.offset, inner.end
        if ethertype == ETH_P_TEB:
            ethertype, pos = _ether(walk.data, pos, end)


def lint_report(data: bytes, linktype: int = LINKTYPE_ETHERNET,
                options: LintOptions = LintOptions()) -> PacketReport:
    """Every tunnel header in DATA (a frame of LINKTYPE) against its spec, with
    what the walk had to guess; findings filtered by OPTIONS' rules and level."""
    walk = _Walk(bytes(data), options, PacketReport())
    ethertype, pos = _link(walk.data, linktype)
    if ethertype:
        _network(walk, ethertype, pos, len(walk.data))
    walk.report.findings = [f for f in walk.report.findings if options.keeps(f)]
    return walk.report


def lint_bytes(data: bytes, linktype: int = LINKTYPE_ETHERNET,
               options: LintOptions = LintOptions()) -> List[Finding]:
    """The findings of one captured frame (``Record.data`` and ``Record.linktype``)."""
    return lint_report(data, linktype, options).findings


# -- Scapy packets ---------------------------------------------------------------------------
def linktype_of(pkt: Any) -> int:
    """The link type a Scapy packet's first layer stands for (Ethernet if unknown)."""
    from scapy.config import conf

    return int(conf.l2types.layer2num.get(type(pkt), LINKTYPE_ETHERNET))


def _built_geneve_options(pkt: Any, data: bytes) -> List[Finding]:
    """GNV008: a Geneve layer built (raw mode) with more option bytes than Opt
    Len's 6 bits can say.  The wire cannot show it (a receiver sees the
    overrun, GNV002), so only a Scapy packet can be judged for it."""
    from scapy_geneve.layers.geneve import Geneve

    out = []
    layer = pkt.getlayer(Geneve)
    while layer is not None:
        try:
            built = sum(len(bytes(o)) for o in (layer.options or []))
        except Exception:        # an option that cannot be built: its bytes say the rest
            built = 0
        if built > 252:
            base = len(data) - len(bytes(layer))
            out.append(finding("GNV008", "%d bytes of options, the maximum is 252" % built,
                               "Geneve.options", base + 8))
        layer = layer.payload.getlayer(Geneve)
    return out


def _options_from_kwargs(understood: Optional[Iterable[Union[int, Tuple[int, int]]]],
                         geneve_ports: Sequence[int], vxlan_ports: Sequence[int],
                         nvgre: Union[bool, str], stt: bool, l2tpv3: bool,
                         extra: Dict[str, Any]) -> LintOptions:
    ports = extra.pop("ports", None) or registry.DEFAULT_PORTS
    ports = ports.extended(geneve=geneve_ports, vxlan=vxlan_ports,
                           gpe=extra.pop("gpe_ports", ()))
    gre_as = extra.pop("gre_as", None) or ("nvgre" if nvgre is True else "gre" if nvgre is False
                                           else "auto")
    return LintOptions(ports=ports, understood=None if understood is None else set(understood),
                       gre_as=gre_as, stt=stt, l2tpv3=l2tpv3, **extra)


def lint(pkt: Any, understood: Optional[Iterable[Union[int, Tuple[int, int]]]] = None,
         geneve_ports: Sequence[int] = (), vxlan_ports: Sequence[int] = (),
         nvgre: Union[bool, str] = "auto", stt: bool = True, l2tpv3: bool = True,
         options: Optional[LintOptions] = None, **extra: Any) -> List[Finding]:
    """Lint every tunnel header in PKT (outer and nested) against its spec.

    PKT is a Scapy packet (linted as ``bytes(pkt)``, its link type from its
    first layer) or the bytes of an Ethernet frame.  ``understood``: option
    classes (``0x0102``) or ``(class, type)`` pairs the receiving endpoint
    understands; when given, critical options outside it are reported (GNV014).
    ``geneve_ports``/``vxlan_ports`` (and ``gpe_ports``): UDP destination ports
    that also carry Geneve/VXLAN/VXLAN-GPE, added to the registry's defaults.
    ``nvgre``: ``"auto"`` reads keyed GRE carrying Ethernet as NVGRE and says it
    is a guess (each finding says so), ``True`` every GRE packet (the capture is NVGRE: a
    keyless or non-Ethernet one is then reported), ``False`` none (``gre_as``
    ``"auto"|"nvgre"|"gre"`` says the same).  ``stt``/``l2tpv3``: False turns
    those families off.  ``l2tp_cookie``/``l2tp_l2ss``: the L2TPv3 session
    framing (for nested tunnels).  ``options``: a :class:`LintOptions`, instead
    of the keywords.

    Valid packets return ``[]``.
    """
    if options is None:
        options = _options_from_kwargs(understood, geneve_ports, vxlan_ports, nvgre, stt, l2tpv3,
                                       dict(extra))
    if isinstance(pkt, (bytes, bytearray, memoryview)):
        return lint_bytes(bytes(pkt), LINKTYPE_ETHERNET, options)
    data = bytes(pkt)
    found = lint_bytes(data, linktype_of(pkt), options)
    built = [f for f in _built_geneve_options(pkt, data) if options.keeps(f)]
    return found + built
