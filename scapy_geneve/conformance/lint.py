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

The walk, at each nesting level: the wire decoder
(:func:`scapy_geneve.capture.decode.decode`) reads the link layer and the IP
header (VLAN stacks, SLL/SLL2, raw IP, loopback; IPv6 extension headers, a
routing header's final destination for the pseudo-header; BIG TCP lengths of 0
taken from the capture, as tcpdump does); the ports and protocol say which
tunnel the transport carries; that family's check
(:mod:`~scapy_geneve.conformance.lint_checks`) judges its bytes and says where
the inner frame is, where nested tunnels are linted too.  The linter is pure:
no I/O, no printing.  :mod:`~scapy_geneve.conformance.lint_batch` lints whole
captures without a Python object per clean packet.
``RULES`` lists every rule for documentation and ``--list-rules``.
"""

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple, Union

from scapy_geneve import registry
from scapy_geneve.capture.decode import decode
from scapy_geneve.capture.pcapio import LINKTYPE_ETHERNET, LINKTYPE_RAW
from scapy_geneve.consts import ETH_P_IP, ETH_P_IPV6, ETH_P_TEB, IPPROTO_GRE, IPPROTO_L2TP
from scapy_geneve.conformance.lint_checks import (
    Inner,
    IPHeader,
    Site,
    Understood,
    check_geneve,
    check_l2tpv3_ip,
    check_l2tpv3_udp,
    check_nvgre,
    check_stt,
    check_vxlan,
    gre_header_len,
)
from scapy_geneve.conformance.lint_rules import (
    INFO,
    LEVEL_ORDER,
    MUST,
    RULES,
    SHOULD,
    Finding,
    Rule,
    finding,
    lint_summary,
    select_rules,
)

__all__ = [
    "Finding",
    "Rule",
    "RULES",
    "LintOptions",
    "PacketReport",
    "lint",
    "lint_bytes",
    "lint_report",
    "lint_summary",
    "select_rules",
    "MUST",
    "SHOULD",
    "INFO",
    "GRE_AS",
    "GUESS_NOTE",
    "DEFAULT_OPTIONS",
    "linktype_of",
]

#: How GRE carrying Ethernet (0x6558) is read: ``auto`` (a keyed one is NVGRE,
#: said to be a guess; a keyless one is RFC 2784 gretap), ``nvgre`` (every GRE
#: packet is NVGRE: the capture is known to be), ``gre`` (none is).
GRE_AS = ("auto", "nvgre", "gre")
_MAX_DEPTH = 8  # nested tunnels followed
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
    rules: Optional[FrozenSet[str]] = None  # None: every rule
    level: str = INFO  # report this level and stronger

    def __post_init__(self) -> None:
        if self.gre_as not in GRE_AS:
            raise ValueError("gre_as must be one of %s, not %r" % (", ".join(GRE_AS), self.gre_as))
        if self.level not in LEVEL_ORDER:
            raise ValueError("level must be one of %s, not %r" % (", ".join(LEVEL_ORDER), self.level))

    def keeps(self, f: Finding) -> bool:
        return (self.rules is None or f.rule in self.rules) and LEVEL_ORDER[f.level] >= LEVEL_ORDER[
            self.level
        ]


#: The defaults: the registry's ports, nothing understood, GRE read as said in :data:`GRE_AS`.
DEFAULT_OPTIONS = LintOptions()


@dataclass
class PacketReport:
    """A packet's findings, and the kinds read by guess (``nvgre``: keyed 0x6558 GRE)."""

    findings: List[Finding] = field(default_factory=list)
    guessed: Set[str] = field(default_factory=set)
    kinds: List[str] = field(default_factory=list)


# -- link layer and IP: the wire decoder ---------------------------------------------------
def _u16(data: bytes, pos: int) -> int:
    return (data[pos] << 8) | data[pos + 1]


def _routing_final(data: bytes, pos: int) -> Optional[bytes]:
    """The final destination a routing header names (type 0 and SRH: the last
    address to visit), the upper-layer pseudo-header's (RFC 8200 §8.1)."""
    hlen, rtype, left = (data[pos + 1] + 1) * 8, data[pos + 2], data[pos + 3]
    if pos + hlen > len(data) or not left:
        return None
    if rtype == 0 and hlen >= 8 + 16 * left:
        return data[pos + hlen - 16 : pos + hlen]
    if rtype == 4 and hlen >= 24:
        return data[pos + 8 : pos + 24]  # Segment List[0] is the final segment (RFC 8754 §2)
    return None


def _ip_header(data: bytes, ip: Any) -> IPHeader:
    """The checks' view of the decoder's :class:`~scapy_geneve.capture.decode.IPHeader`."""
    dst = ip.dst_b
    for nh, off in ip.ext:
        if nh == 43:
            dst = _routing_final(data, off) or dst
    v4 = ip.version == 4
    return IPHeader(
        off=ip.off,
        version=ip.version,
        proto=ip.proto,
        l4=ip.off + ip.hlen,
        end=min(ip.end, len(data)),
        src=ip.src_b,
        dst=dst,
        df=v4 and bool(ip.flags & 2),
        mf=bool(ip.flags & 1),
        frag_offset=ip.frag * 8,
        ecn=ip.tos & 3,
        big=ip.length == 0,
        cut=ip.end > len(data),
        field_prefix="IP" if v4 else "IPv6",
    )


def _network_header(data: bytes, linktype: int, options: "LintOptions") -> Optional[IPHeader]:
    """The first IP header of DATA, as the wire decoder reads it (None: not IP)."""
    decoded = decode(data, linktype, options.ports, options.l2tp_cookie, options.l2tp_l2ss)
    if decoded.ip is None:
        return None
    return _ip_header(data, decoded.ip)


# -- transport and tunnel ------------------------------------------------------------------
@dataclass
class _Walk:
    data: bytes
    options: LintOptions
    report: PacketReport


def _udp(walk: _Walk, ip: Optional[IPHeader], pos: int, end: int) -> Optional[Inner]:
    if end - pos < 8:
        return None
    ports, data = walk.options.ports, walk.data
    sport, dport = _u16(data, pos), _u16(data, pos + 2)
    site = Site(data, ip, pos, end)
    if dport in ports.geneve:
        return _judge(
            walk,
            "geneve",
            site,
            lambda s: check_geneve(s, walk.options.understood, dport == registry.GENEVE_PORT),
        )
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


def _plain_gre(data: bytes, pos: int, end: int) -> Optional[Inner]:
    """What plain GRE (RFC 2784/2890, no routing, version 0) carries: nothing to judge
    in its header, but the frame inside is followed for nested tunnels."""
    if end - pos < 4 or data[pos] & 0x40 or data[pos + 1] & 0x07:
        return None
    hlen = gre_header_len(_u16(data, pos))
    return Inner([], pos + hlen, _u16(data, pos + 2), end) if end - pos >= hlen else None


def _gre(walk: _Walk, ip: Optional[IPHeader], pos: int, end: int) -> Optional[Inner]:
    gre_as, data = walk.options.gre_as, walk.data
    teb = end - pos >= 4 and _u16(data, pos + 2) == ETH_P_TEB
    keyed = end - pos >= 2 and bool(data[pos] & 0x20)
    if gre_as == "nvgre":
        return _judge(walk, "nvgre", Site(data, ip, pos, end), check_nvgre)
    if gre_as == "gre" or not (teb and keyed):
        return _plain_gre(data, pos, end)  # keyless Ethernet over GRE is RFC 2784 gretap
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
    if ip.frag_offset:
        return None  # no transport header in a non-first fragment
    if proto == IPPROTO_L2TP and opts.l2tpv3:
        return _judge(
            walk, "l2tpv3", Site(walk.data, ip, pos, end), lambda s: check_l2tpv3_ip(s, _session_len(opts))
        )
    if proto == 17:
        return _udp(walk, ip, pos, end)
    if proto == IPPROTO_GRE:
        return _gre(walk, ip, pos, end)
    if proto == 6 and opts.stt and end - pos >= 20 and _u16(walk.data, pos + 2) in opts.ports.stt:
        return _judge(walk, "stt", Site(walk.data, ip, pos, end), check_stt)
    if proto in (4, 41):  # IP in IP
        return Inner([], pos, ETH_P_IP if proto == 4 else ETH_P_IPV6, end)
    return None


def _level(walk: _Walk, data: bytes, linktype: int, base: int) -> Optional[Tuple[bytes, int, int]]:
    """Lint the tunnel at one nesting level (DATA starts at BASE of the packet);
    returns what it carries: (bytes, link type, base) of the inner frame."""
    ip = _network_header(data, linktype, walk.options)
    if ip is None:
        return None
    sub = _Walk(data, walk.options, PacketReport())
    inner = _transport(sub, ip)
    walk.report.guessed |= sub.report.guessed
    walk.report.kinds += sub.report.kinds
    walk.report.findings += [
        replace(f, offset=f.offset + base) if f.offset is not None and base else f
        for f in sub.report.findings
    ]
    if inner is None or inner.offset is None or inner.offset >= inner.end:
        return None
    linktype = (
        LINKTYPE_ETHERNET
        if inner.ethertype == ETH_P_TEB
        else LINKTYPE_RAW
        if inner.ethertype in (ETH_P_IP, ETH_P_IPV6)
        else -1
    )
    if linktype < 0:
        return None
    return data[inner.offset : inner.end], linktype, base + inner.offset


def lint_report(
    data: bytes, linktype: int = LINKTYPE_ETHERNET, options: LintOptions = DEFAULT_OPTIONS
) -> PacketReport:
    """Every tunnel header in DATA (a frame of LINKTYPE) against its spec, nested
    ones too, with what the walk had to guess; findings filtered by OPTIONS."""
    walk = _Walk(bytes(data), options, PacketReport())
    level: Optional[Tuple[bytes, int, int]] = (walk.data, linktype, 0)
    depth = 0
    while level is not None and depth < _MAX_DEPTH:
        level = _level(walk, *level)
        depth += 1
    walk.report.findings = [f for f in walk.report.findings if options.keeps(f)]
    return walk.report


def lint_bytes(
    data: bytes, linktype: int = LINKTYPE_ETHERNET, options: LintOptions = DEFAULT_OPTIONS
) -> List[Finding]:
    """The findings of one captured frame (``Record.data`` and ``Record.linktype``)."""
    return lint_report(data, linktype, options).findings


# -- Scapy packets ---------------------------------------------------------------------------
def linktype_of(pkt: Any) -> int:
    """The link type a Scapy packet's first layer stands for (Ether, IP, IPv6, Linux
    cooked, loopback, ...; Raw bytes are read as Ethernet).  ValueError for a packet
    that starts above the network layer: its tunnel cannot be judged without its IP."""
    from scapy.config import conf

    linktype = conf.l2types.layer2num.get(type(pkt))
    if linktype is not None:
        return int(linktype)
    if type(pkt) is conf.raw_layer or type(pkt) is conf.padding_layer:
        return int(LINKTYPE_ETHERNET)
    raise ValueError(
        "lint() reads a frame from its link layer or IP header; this packet "
        "starts with %s (wrap it: Ether()/IP()/...)" % type(pkt).__name__
    )


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
        except Exception:  # an option that cannot be built: its bytes say the rest
            built = 0
        if built > 252:
            base = len(data) - len(bytes(layer))
            out.append(
                finding(
                    "GNV008", "%d bytes of options, the maximum is 252" % built, "Geneve.options", base + 8
                )
            )
        layer = layer.payload.getlayer(Geneve)
    return out


def _options_from_kwargs(
    understood: Optional[Iterable[Union[int, Tuple[int, int]]]],
    geneve_ports: Sequence[int],
    vxlan_ports: Sequence[int],
    nvgre: Union[bool, str],
    stt: bool,
    l2tpv3: bool,
    extra: Dict[str, Any],
) -> LintOptions:
    ports = extra.pop("ports", None) or registry.DEFAULT_PORTS
    ports = ports.extended(geneve=geneve_ports, vxlan=vxlan_ports, gpe=extra.pop("gpe_ports", ()))
    gre_as = extra.pop("gre_as", None) or ("nvgre" if nvgre is True else "gre" if nvgre is False else "auto")
    return LintOptions(
        ports=ports,
        understood=None if understood is None else set(understood),
        gre_as=gre_as,
        stt=stt,
        l2tpv3=l2tpv3,
        **extra,
    )


def lint(
    pkt: Any,
    understood: Optional[Iterable[Union[int, Tuple[int, int]]]] = None,
    geneve_ports: Sequence[int] = (),
    vxlan_ports: Sequence[int] = (),
    nvgre: Union[bool, str] = "auto",
    stt: bool = True,
    l2tpv3: bool = True,
    options: Optional[LintOptions] = None,
    **extra: Any,
) -> List[Finding]:
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
        options = _options_from_kwargs(understood, geneve_ports, vxlan_ports, nvgre, stt, l2tpv3, dict(extra))
    if isinstance(pkt, (bytes, bytearray, memoryview)):
        return lint_bytes(bytes(pkt), LINKTYPE_ETHERNET, options)
    data = bytes(pkt)
    found = lint_bytes(data, linktype_of(pkt), options)
    built = [f for f in _built_geneve_options(pkt, data) if options.keeps(f)]
    return found + built
