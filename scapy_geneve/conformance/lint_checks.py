"""The lint checks: one short function per rule family, on wire bytes and offsets.

Each family check takes a :class:`Site` (where one tunnel header sits in the
packet: the bytes, the enclosing IP header, the transport header's offset and
the end of the transport segment) and returns its findings and what it
carries (:class:`Inner`: where the inner frame starts and what it is, so the
walk can descend into nested tunnels and the ECN rules can read the inner IP
header).  The checks never import Scapy; the walk that builds the sites is in
:mod:`scapy_geneve.conformance.lint`.
"""

import struct
from dataclasses import dataclass, field
from typing import List, Optional, Set, Tuple, Union

from scapy_geneve.checksum import csum_add, csum_block, csum_fold, pseudo_header_sum
from scapy_geneve.consts import (
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_TEB,
    GENEVE_CRITICAL,
    GENEVE_HDR_LEN,
    GENEVE_OPT_HDR_LEN,
    GENEVE_PORT,
    VXLAN_PORT,
)
from scapy_geneve.conformance.lint_rules import Finding, finding

__all__ = [
    "IPHeader",
    "Site",
    "Inner",
    "Understood",
    "check_geneve",
    "check_vxlan",
    "check_nvgre",
    "check_stt",
    "check_l2tpv3_udp",
    "check_l2tpv3_ip",
    "l4_checksum_state",
    "gre_header_len",
    "zero_checksum_over_ipv6",
    "outer_df_clear",
    "vxlan_port",
    "vxlan_source_port",
    "ETH_P_8021Q",
    "ETH_P_8021AD",
]

ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
_VLAN_TYPES = (ETH_P_8021Q, ETH_P_8021AD)
_ECN_NAMES = ("Not-ECT", "ECT(1)", "ECT(0)", "CE")

#: Option classes (``0x0102``) or ``(class, type)`` pairs a receiver understands.
Understood = Optional[Set[Union[int, Tuple[int, int]]]]


@dataclass(frozen=True)
class IPHeader:
    """An IPv4 or IPv6 header as the walk decoded it (offsets into the packet)."""

    off: int  # first byte of the header
    version: int  # 4 or 6
    proto: int  # upper-layer protocol (after IPv6 extension headers)
    l4: int  # offset of the upper-layer header
    end: int  # end of the datagram in the packet (claimed length, capped)
    src: bytes
    dst: bytes  # the pseudo-header's destination (IPv6: a routing header's final one)
    df: bool = False
    mf: bool = False
    frag_offset: int = 0  # bytes
    ecn: int = 0
    big: bool = False  # length field 0 (BIG TCP / jumbogram): the length came from the capture
    cut: bool = False  # the capture holds less than the datagram (snaplen, truncation)
    field_prefix: str = "IP"  # "IP" or "IPv6": the Scapy layer a finding names

    @property
    def fragment(self) -> bool:
        return self.mf or self.frag_offset != 0


@dataclass(frozen=True)
class Site:
    """One tunnel header to judge: the packet, its IP header, its transport header."""

    data: bytes
    ip: Optional[IPHeader]
    l4: int  # offset of the UDP / TCP / GRE / L2TPv3-over-IP header
    end: int  # end of the transport segment in DATA (the IP datagram's end)
    kind: str = ""  # registry name of what is read there


@dataclass
class Inner:
    """What a tunnel header carries: ETHERTYPE (0x6558 Ethernet) at OFFSET, up to END."""

    findings: List[Finding] = field(default_factory=list)
    offset: Optional[int] = None
    ethertype: int = 0
    end: int = 0


def _u16(data: bytes, pos: int) -> int:
    return int(struct.unpack_from("!H", data, pos)[0])


# -- shared pieces -----------------------------------------------------------------------
def l4_checksum_state(site: Site, proto: int, start: int, end: int) -> Optional[str]:
    """ "ok", "bad", "partial" (only the pseudo-header sum: checksum offload) or
    None (cannot be checked: no IP header, a fragment, a short capture)."""
    ip = site.ip
    if ip is None or ip.fragment or end > len(site.data) or end - start < 8:
        return None
    segment = site.data[start:end]
    pseudo = pseudo_header_sum(ip.src, ip.dst, proto, end - start)  # BIG TCP: 32 bits
    if csum_fold(csum_add(pseudo, csum_block(segment))) == 0:
        return "ok"
    value = _u16(site.data, start + (6 if proto == 17 else 16))
    if value in (pseudo, 0xFFFF if pseudo == 0 else pseudo):
        return "partial"
    return "bad"


def _checksum_findings(site: Site, proto: int, end: int, rules: Tuple[str, str]) -> List[Finding]:
    """RULES[0] for a wrong checksum, RULES[1] (INFO) for a partial one."""
    state = l4_checksum_state(site, proto, site.l4, end)
    pos = site.l4 + (6 if proto == 17 else 16)
    layer = "UDP" if proto == 17 else "TCP"
    value = _u16(site.data, pos)
    if state == "bad":
        return [
            finding(rules[0], "%s checksum 0x%04x does not verify" % (layer, value), layer + ".chksum", pos)
        ]
    if state == "partial":
        return [
            finding(
                rules[1],
                "%s checksum 0x%04x is the pseudo-header sum only (checksum "
                'offload; tshark: "maybe caused by checksum offload")' % (layer, value),
                layer + ".chksum",
                pos,
            )
        ]
    return []


def _inner_vlan(data: bytes, pos: int, end: int) -> bool:
    """Does the inner Ethernet frame at POS start with an 802.1Q/802.1ad tag?"""
    return end - pos >= 14 and _u16(data, pos + 12) in _VLAN_TYPES


def _inner_ip_ecn(data: bytes, pos: int, end: int, ethertype: int) -> Optional[Tuple[int, int]]:
    """(ECN, offset of the byte holding it) of the inner IP header at POS
    (behind Ethernet and its tags for 0x6558); None if not IP or cut short."""
    if ethertype == ETH_P_TEB:
        pos += 12
        while end >= pos + 2 and _u16(data, pos) in _VLAN_TYPES:
            pos += 4
        if end < pos + 2:
            return None
        ethertype, pos = _u16(data, pos), pos + 2
    if ethertype == ETH_P_IP and end > pos + 1 and data[pos] >> 4 == 4:
        return data[pos + 1] & 3, pos + 1
    if ethertype == ETH_P_IPV6 and end > pos + 1 and data[pos] >> 4 == 6:
        return (data[pos + 1] >> 4) & 3, pos + 1
    return None


def _ecn_findings(rule: str, site: Site, inner: Inner) -> List[Finding]:
    """RFC 6040 §4.1: a Not-ECT inner packet gets a Not-ECT outer header (and a
    router marks CE only on ECT), so outer ECT/CE over Not-ECT is the encapsulator's fault."""
    ip = site.ip
    if ip is None or not ip.ecn or inner.offset is None:
        return []
    found = _inner_ip_ecn(site.data, inner.offset, inner.end, inner.ethertype)
    if found is None or found[0] != 0:
        return []
    return [
        finding(
            rule,
            "outer ECN %s over a Not-ECT inner IP header (inner byte @%d)" % (_ECN_NAMES[ip.ecn], found[1]),
            "IP.tos" if ip.version == 4 else "IPv6.tc",
            ip.off + 1,
        )
    ]


def _udp_payload(site: Site) -> Tuple[int, int, bool]:
    """(start, end, complete) of the UDP payload: cut at the UDP Length (0 in a
    jumbogram: the IP length), complete when the capture holds all of it."""
    length = _u16(site.data, site.l4 + 4)
    if length == 0 and site.ip is not None and site.ip.big:
        length = site.end - site.l4
    if length < 8:
        return site.l4 + 8, site.end, False
    end = site.l4 + length
    return site.l4 + 8, min(end, site.end), end <= site.end


def _udp_checksum(site: Site, rules: Tuple[str, str]) -> List[Finding]:
    start, end, complete = _udp_payload(site)
    if not complete or not _u16(site.data, site.l4 + 6):
        return []
    return _checksum_findings(site, 17, end, rules)


# -- Geneve, RFC 8926 --------------------------------------------------------------------
def _geneve_ports(site: Site, std_port: bool) -> List[Finding]:
    if std_port:
        return []
    sport, dport = _u16(site.data, site.l4), _u16(site.data, site.l4 + 2)
    if sport == GENEVE_PORT:
        return [
            finding(
                "GNV010",
                "source port is 6081 and destination port %d: the well-known "
                "port identifies Geneve and is never reversed" % dport,
                "UDP.dport",
                site.l4 + 2,
            )
        ]
    return [finding("GNV009", "Geneve on destination port %d, not 6081" % dport, "UDP.dport", site.l4 + 2)]


def outer_df_clear(ip_off: int) -> Finding:
    """GNV015 for the IPv4 header at IP_OFF (also built by the batch path)."""
    return finding("GNV015", "outer IPv4 DF bit is clear", "IP.flags", ip_off + 6)


def _geneve_ip(site: Site) -> List[Finding]:
    ip = site.ip
    if ip is None or ip.version != 4:
        return []
    if ip.fragment:
        return [
            finding(
                "GNV017",
                "outer IPv4 is a fragment (offset %d, MF %d)" % (ip.frag_offset, int(ip.mf)),
                "IP.frag",
                ip.off + 6,
            )
        ]
    if not ip.df:
        return [outer_df_clear(ip.off)]
    return []


def zero_checksum_over_ipv6(udp: int) -> Finding:
    """GNV012 for the UDP header at UDP (also built by the batch path)."""
    return finding(
        "GNV012",
        "zero UDP checksum over IPv6: allowed only on tunnels configured "
        "for it (RFC 6935/6936); others drop it",
        "UDP.chksum",
        udp + 6,
    )


def _geneve_checksum(site: Site) -> List[Finding]:
    if _u16(site.data, site.l4 + 6) == 0:
        if site.ip is not None and site.ip.version == 6:
            return [zero_checksum_over_ipv6(site.l4)]
        return []
    return _udp_checksum(site, ("GNV011", "GNV019"))


def _geneve_base(data: bytes, base: int) -> List[Finding]:
    b0, b1 = data[base], data[base + 1]
    out = []
    if b0 >> 6:
        out.append(finding("GNV001", "Ver is %d; the only version is 0" % (b0 >> 6), "Geneve.version", base))
    if b1 & 0x3F:
        out.append(finding("GNV005", "Rsvd is 0x%02x" % (b1 & 0x3F), "Geneve.reserved", base + 1))
    if data[base + 7]:
        out.append(finding("GNV006", "Reserved is 0x%02x" % data[base + 7], "Geneve.reserved2", base + 7))
    if b1 & 0x80:
        out.append(finding("GNV013", "O bit set: control packet", "Geneve.oam", base + 1))
    return out


def _option_understood(classid: int, otype: int, understood: Set[Union[int, Tuple[int, int]]]) -> bool:
    return classid in understood or (classid, otype) in understood


def _geneve_option(
    data: bytes, base: int, pos: int, index: int, crit: bool, understood: Understood
) -> List[Finding]:
    classid, otype, b3 = struct.unpack_from("!HBB", data, base + pos)
    name = "Geneve.options[%d]" % index
    out = []
    if b3 & 0xE0:
        out.append(
            finding(
                "GNV007",
                "option class 0x%04x type 0x%02x has R bits 0x%x" % (classid, otype, b3 >> 5),
                name + ".reserved",
                base + pos + 3,
            )
        )
    if otype & GENEVE_CRITICAL and not crit:
        out.append(
            finding(
                "GNV004",
                "option class 0x%04x type 0x%02x is critical but C is clear" % (classid, otype),
                "Geneve.critical",
                base + 1,
            )
        )
    if (
        otype & GENEVE_CRITICAL
        and understood is not None
        and not _option_understood(classid, otype, understood)
    ):
        out.append(
            finding(
                "GNV014",
                "critical option class 0x%04x type 0x%02x is not understood" % (classid, otype),
                name + ".type",
                base + pos + 2,
            )
        )
    return out


def _geneve_options(data: bytes, base: int, size: int, understood: Understood) -> Tuple[List[Finding], int]:
    """Findings of the options in DATA[BASE:BASE+SIZE] and where the walk stopped."""
    optlen, crit = data[base] & 0x3F, bool(data[base + 1] & 0x40)
    out: List[Finding] = []
    end = GENEVE_HDR_LEN + 4 * optlen
    if end > size:
        out.append(
            finding(
                "GNV003",
                "Opt Len %d (%d bytes) runs past the end of the UDP payload "
                "(%d bytes of options present)" % (optlen, 4 * optlen, size - 8),
                "Geneve.optionlen",
                base,
            )
        )
        end = size - (size - GENEVE_HDR_LEN) % 4
    pos, index, any_critical, overrun = GENEVE_HDR_LEN, 0, False, False
    while pos + GENEVE_OPT_HDR_LEN <= end:
        classid, otype, b3 = struct.unpack_from("!HBB", data, base + pos)
        olen = GENEVE_OPT_HDR_LEN + 4 * (b3 & 0x1F)
        any_critical = any_critical or bool(otype & GENEVE_CRITICAL)
        out += _geneve_option(data, base, pos, index, crit, understood)
        if pos + olen > end:
            out.append(
                finding(
                    "GNV002",
                    "option class 0x%04x type 0x%02x is %d bytes long and "
                    "overruns Opt Len by %d bytes" % (classid, otype, olen, pos + olen - end),
                    "Geneve.options[%d].length" % index,
                    base + pos + 3,
                )
            )
            overrun = True
            break
        pos, index = pos + olen, index + 1
    if crit and not any_critical and not overrun:
        out.append(
            finding("GNV016", "C bit set, no option has the critical bit", "Geneve.critical", base + 1)
        )
    return out, pos if pos == end == GENEVE_HDR_LEN + 4 * optlen else -1


def check_geneve(site: Site, understood: Understood = None, std_port: bool = True) -> Inner:
    """RFC 8926: ports, outer IPv4 DF/fragments, UDP checksum, base header, options, ECN."""
    data = site.data
    base, end, _complete = _udp_payload(site)
    result = Inner(_geneve_ports(site, std_port) + _geneve_ip(site) + _geneve_checksum(site))
    if end - base < GENEVE_HDR_LEN:
        result.findings.append(
            finding(
                "GNV003",
                "%d bytes of UDP payload, the Geneve header needs 8" % max(end - base, 0),
                "Geneve",
                base,
            )
        )
        return result
    result.findings += _geneve_base(data, base)
    found, stop = _geneve_options(data, base, end - base, understood)
    result.findings += found
    if data[base] >> 6 == 0 and stop >= 0:
        result.offset, result.ethertype, result.end = base + stop, _u16(data, base + 2), end
        result.findings += _ecn_findings("GNV018", site, result)
    return result


# -- VXLAN, RFC 7348; VXLAN-GPE ------------------------------------------------------------
def vxlan_port(dport: int, udp: int) -> Finding:
    """VXL007 for the UDP header at UDP (also built by the batch path)."""
    return finding("VXL007", "VXLAN on destination port %d, not 4789" % dport, "UDP.dport", udp + 2)


def vxlan_source_port(sport: int, udp: int) -> Finding:
    """VXL008 for the UDP header at UDP (also built by the batch path)."""
    return finding(
        "VXL008",
        "source port %d: RFC 7348 §5 asks for 49152-65535; Linux picks "
        "from 32768-60999 (its port range), so about half of real Linux VXLAN is "
        "here" % sport,
        "UDP.sport",
        udp,
    )


def _vxlan_outer(site: Site) -> List[Finding]:
    sport, dport = _u16(site.data, site.l4), _u16(site.data, site.l4 + 2)
    out = []
    if site.kind != "vxlan-gpe" and dport != VXLAN_PORT:
        out.append(vxlan_port(dport, site.l4))
    if not 49152 <= sport <= 65535:
        out.append(vxlan_source_port(sport, site.l4))
    if site.ip is not None and site.ip.fragment:
        out.append(
            finding(
                "VXL009",
                "outer IPv%d is a fragment" % site.ip.version,
                "%s.frag" % site.ip.field_prefix if site.ip.version == 4 else "IPv6",
                site.ip.off + 6 if site.ip.version == 4 else site.ip.off,
            )
        )
    return out + _udp_checksum(site, ("VXL006", "VXL013"))


def _vxlan_header(data: bytes, base: int) -> List[Finding]:
    """RFC 7348 §5 (and VXLAN-GBP's G, D and A bits)."""
    flags, rsvd24 = data[base], int.from_bytes(data[base + 1 : base + 4], "big")
    out = []
    if not flags & 0x08:
        out.append(finding("VXL001", "flags 0x%02x: I flag clear" % flags, "VXLAN.flags", base))
    if flags & 0x80:
        out.append(
            finding("VXL005", "G bit set (Group Policy ID 0x%04x)" % (rsvd24 & 0xFFFF), "VXLAN.flags", base)
        )
    rbits = flags & (0x77 if flags & 0x80 else 0xF7)
    if rbits:
        out.append(finding("VXL002", "flags 0x%02x: R bits 0x%02x set" % (flags, rbits), "VXLAN.flags", base))
    if flags & 0x80 and data[base + 1] & 0xB7:  # GBP defines D (0x40) and A (0x08) in byte 1
        out.append(
            finding(
                "VXL003",
                "reserved bits 0x%02x set in byte 1 (GBP)" % (data[base + 1] & 0xB7),
                "VXLAN.gpflags",
                base + 1,
            )
        )
    elif not flags & 0x80 and rsvd24:
        out.append(finding("VXL003", "Reserved is 0x%06x" % rsvd24, "VXLAN.reserved1", base + 1))
    return out


_GPE_NEXT = {1: ETH_P_IP, 2: ETH_P_IPV6, 3: ETH_P_TEB}


def _gpe_header(data: bytes, base: int) -> List[Finding]:
    """draft-ietf-nvo3-vxlan-gpe: |R|R|Ver|I|P|B|O| Reserved (16) | Next Protocol |."""
    flags = data[base]
    out = []
    if flags & 0x30:
        out.append(
            finding("VXL014", "Ver is %d; the only version is 0" % ((flags >> 4) & 3), "VXLAN.flags", base)
        )
    if not flags & 0x08:
        out.append(finding("VXL001", "flags 0x%02x: I flag clear" % flags, "VXLAN.flags", base))
    if flags & 0xC0:
        out.append(
            finding("VXL002", "flags 0x%02x: R bits 0x%02x set" % (flags, flags & 0xC0), "VXLAN.flags", base)
        )
    if not flags & 0x04:
        out.append(
            finding("VXL015", "flags 0x%02x: P clear, the payload is Ethernet" % flags, "VXLAN.flags", base)
        )
    if _u16(data, base + 1):
        out.append(
            finding("VXL003", "Reserved is 0x%04x" % _u16(data, base + 1), "VXLAN.reserved0", base + 1)
        )
    return out


def _vxlan_inner(data: bytes, base: int) -> Tuple[Optional[int], int]:
    """(offset, ethertype) of what the header carries: with P set (GPE) the Next
    Protocol says (1 IPv4, 2 IPv6, 0 or 3 Ethernet, else not followed), otherwise Ethernet."""
    if data[base] & 0x04:
        proto = {0: ETH_P_TEB, **_GPE_NEXT}.get(data[base + 3])
        return (base + 8, proto) if proto else (None, 0)
    return base + 8, ETH_P_TEB


def _vxlan_ecn_inner(data: bytes, base: int, end: int, gpe: bool) -> Inner:
    """Where the ECN rule reads the inner IP header: plain RFC 7348 VXLAN (I set,
    no G, no P) carries Ethernet; GPE carries what its Next Protocol says."""
    flags = data[base]
    if gpe:
        offset, ethertype = _vxlan_inner(data, base)
        return Inner([], offset, ethertype, end)
    if flags & 0x08 and not flags & 0x84:
        return Inner([], base + 8, ETH_P_TEB, end)
    return Inner()


def check_vxlan(site: Site) -> Inner:
    """RFC 7348 (VXLAN-GPE when SITE.kind is ``vxlan-gpe``): ports, fragments,
    UDP checksum, header bits, inner 802.1Q tag, ECN."""
    data, gpe = site.data, site.kind == "vxlan-gpe"
    base, end, _complete = _udp_payload(site)
    result = Inner(_vxlan_outer(site))
    if end - base < 8:
        result.findings.append(
            finding("VXL011", "%d bytes of UDP payload" % max(end - base, 0), "VXLAN", base)
        )
        return result
    result.findings += _gpe_header(data, base) if gpe else _vxlan_header(data, base)
    if data[base + 7]:
        result.findings.append(
            finding("VXL004", "Reserved is 0x%02x" % data[base + 7], "VXLAN.reserved2", base + 7)
        )
    result.offset, result.ethertype = _vxlan_inner(data, base)
    result.end = end
    if (not gpe or result.ethertype == ETH_P_TEB) and _inner_vlan(data, base + 8, end):
        result.findings.append(
            finding("VXL010", "inner Ethernet type 0x%04x" % _u16(data, base + 20), "Ether.type", base + 20)
        )
    result.findings += _ecn_findings("VXL012", site, _vxlan_ecn_inner(data, base, end, gpe))
    return result


# -- NVGRE, RFC 7637 ----------------------------------------------------------------------
def _gre_flag_findings(base: int, word: int, proto: int) -> List[Finding]:
    c, k, s = word & 0x8000, word & 0x2000, word & 0x1000
    out = []
    if not k:
        out.append(finding("NVG001", "flags 0x%04x: K clear, no VSID/FlowID" % word, "GRE.key_present", base))
    if c:
        out.append(finding("NVG002", "flags 0x%04x: C set" % word, "GRE.chksum_present", base))
    if s:
        out.append(finding("NVG003", "flags 0x%04x: S set" % word, "GRE.seqnum_present", base))
    if proto != ETH_P_TEB:
        out.append(finding("NVG004", "Protocol Type 0x%04x" % proto, "GRE.proto", base + 2))
    if word & 0x0007:
        out.append(finding("NVG005", "version %d" % (word & 7), "GRE.version", base + 1))
    if word & 0x4FF8:
        out.append(finding("NVG006", "Reserved0 bits 0x%04x" % (word & 0x4FF8), "GRE.flags", base))
    return out


def gre_header_len(word: int) -> int:
    """GRE header length from its first 16 bits (C, K, S; RFC 2784/2890)."""
    return 4 + (4 if word & 0x8000 else 0) + (4 if word & 0x2000 else 0) + (4 if word & 0x1000 else 0)


def check_nvgre(site: Site) -> Inner:
    """RFC 7637 (on RFC 2784/2890 GRE): flags, version, key (VSID), inner 802.1Q tag."""
    data, base, end = site.data, site.l4, site.end
    if end - base < 4:
        return Inner([finding("NVG009", "%d bytes of GRE header" % max(end - base, 0), "GRE", base)])
    word, proto = _u16(data, base), _u16(data, base + 2)
    hlen = gre_header_len(word)
    if end - base < hlen:
        found = _gre_flag_findings(base, word, proto)
        return Inner(
            found
            + [
                finding(
                    "NVG009", "%d bytes, the flags need a %d-byte header" % (end - base, hlen), "GRE", base
                )
            ]
        )
    result = Inner(_gre_flag_findings(base, word, proto))
    if word & 0x4007:  # Version != 0 or R (RFC 1701 routing): a receiver discards it (RFC 2784 §2.1,
        return result  # §2.3.1; Linux gre_parse_header), so nothing behind it is a tunnel payload
    if word & 0x2000:
        key_off = base + hlen - 4 - (4 if word & 0x1000 else 0)
        vsid = int(struct.unpack_from("!I", data, key_off)[0]) >> 8
        if vsid <= 0xFFF or vsid == 0xFFFFFF:
            result.findings.append(finding("NVG008", "VSID 0x%06x is reserved" % vsid, "GRE.key", key_off))
    if proto == ETH_P_TEB and _inner_vlan(data, base + hlen, end):
        result.findings.append(
            finding(
                "NVG007",
                "inner Ethernet type 0x%04x" % _u16(data, base + hlen + 12),
                "Ether.type",
                base + hlen + 12,
            )
        )
    result.offset, result.ethertype, result.end = base + hlen, proto, end
    return result


# -- STT, draft-davie-stt-08 -----------------------------------------------------------
def _stt_tcp(site: Site) -> Tuple[List[Finding], int, int]:
    """TCP-like header findings, and (data offset in bytes, segment end)."""
    data, base = site.data, site.l4
    doff, flags = data[base + 12] >> 4, data[base + 13]
    out = []
    if doff != 5 or flags & 0x27:  # FIN 0x01, SYN 0x02, RST 0x04, URG 0x20
        out.append(
            finding("STT006", "data offset %d, flags %s" % (doff, _tcp_flags(flags)), "TCP.flags", base + 12)
        )
    end = site.end
    if site.ip is not None and not site.ip.fragment and not site.ip.cut:
        out += _checksum_findings(site, 6, end, ("STT004", "STT008"))
    return out, doff * 4, end


def _tcp_flags(flags: int) -> str:
    return "".join(name for bit, name in zip(range(8), "FSRPAUEC") if flags >> bit & 1)


def check_stt(site: Site) -> Inner:
    """draft-davie-stt-08: the TCP-like header, the segment's place in its frame, the STT header."""
    data, base = site.data, site.l4
    out, doff, end = _stt_tcp(site)
    seq = int(struct.unpack_from("!I", data, base + 4)[0])
    frame_len, seg_off = seq >> 16, seq & 0xFFFF
    seg_len = max(end - base - doff, 0)
    if frame_len and seg_off >= frame_len:
        out.append(
            finding("STT003", "offset %d, frame length %d" % (seg_off, frame_len), "TCP.seq", base + 4)
        )
    elif seg_off + seg_len > frame_len:
        out.append(
            finding(
                "STT003",
                "segment [%d, %d) runs past the frame length %d" % (seg_off, seg_off + seg_len, frame_len),
                "TCP.seq",
                base + 4,
            )
        )
    if seg_off != 0:
        return Inner(out)  # the STT frame header is only in the first segment
    hbase = base + doff
    if end - hbase < 18:
        return Inner(
            out
            + [finding("STT007", "%d bytes after the TCP-like header" % max(end - hbase, 0), "STT", hbase)]
        )
    version, sflags, l4off, rsvd, mss = struct.unpack_from("!BBBBH", data, hbase)
    if version != 0:
        out.append(finding("STT001", "Version %d" % version, "STT.version", hbase))
    if sflags & 0xF0 or rsvd:
        out.append(
            finding("STT002", "Flags 0x%02x, Reserved 0x%02x" % (sflags, rsvd), "STT.flags", hbase + 1)
        )
    if not sflags & 0x02 and (l4off or mss):
        out.append(
            finding(
                "STT005",
                "L4 Offset %d, MSS %d, flags 0x%02x" % (l4off, mss, sflags),
                "STT.l4_offset",
                hbase + 2,
            )
        )
    return Inner(out, hbase + 18, ETH_P_TEB, end)


# -- L2TPv3, RFC 3931 --------------------------------------------------------------------
L2TP_CONTROL_HDR_LEN = 12  # T..Ver, Length, Control Connection ID, Ns, Nr (RFC 3931 §3.2.1)


def _l2tp_control(data: bytes, base: int, end: int, where: str) -> List[Finding]:
    """The control message header at BASE (T bit set)."""
    word = _u16(data, base)
    out = []
    if word & 0x4800 != 0x4800:
        out.append(
            finding(
                "L2T002",
                "control header 0x%04x: L %d, S %d (both MUST be 1)" % (word, word >> 14 & 1, word >> 11 & 1),
                "L2TPv3Control.l" if not word & 0x4000 else "L2TPv3Control.s",
                base,
            )
        )
    if end - base < L2TP_CONTROL_HDR_LEN:
        out.append(
            finding(
                "L2T004",
                "%d bytes of control message header %s, it needs %d"
                % (end - base, where, L2TP_CONTROL_HDR_LEN),
                "L2TPv3Control",
                base,
            )
        )
        return out
    length = _u16(data, base + 2)
    if word & 0x4000 and length > end - base:
        out.append(
            finding(
                "L2T004",
                "control message Length %d, only %d bytes %s" % (length, end - base, where),
                "L2TPv3Control.length",
                base + 2,
            )
        )
    return out


def check_l2tpv3_udp(site: Site, session_len: int = 4) -> Inner:
    """RFC 3931 §4.1.2.1: the over-UDP header (T, Reserved, Ver) and a control header."""
    data = site.data
    base, end, _complete = _udp_payload(site)
    if end - base < 8:
        return Inner([finding("L2T004", "%d bytes of UDP payload" % max(end - base, 0), "L2TPv3UDP", base)])
    word, reserved = _u16(data, base), _u16(data, base + 2)
    if word & 0x8000:
        return Inner(_l2tp_control(data, base, end, "of UDP payload"))
    if word & 0x7FF0 or reserved:
        return Inner(
            [
                finding(
                    "L2T001",
                    "flags 0x%04x, Reserved 0x%04x" % (word, reserved),
                    "L2TPv3UDP.reserved" if reserved else "L2TPv3UDP.reserved_flags",
                    base,
                )
            ],
            base + 4 + session_len,
            ETH_P_TEB,
            end,
        )
    return Inner([], base + 4 + session_len, ETH_P_TEB, end)


def check_l2tpv3_ip(site: Site, session_len: int = 4) -> Inner:
    """RFC 3931 §4.1.1: Session ID 0 is a control message, which needs its header."""
    data, base, end = site.data, site.l4, site.end
    if end - base < 4:
        return Inner([finding("L2T004", "%d bytes of IP payload" % max(end - base, 0), "L2TPv3", base)])
    if struct.unpack_from("!I", data, base)[0] != 0:
        return Inner([], base + session_len, ETH_P_TEB, end)
    if end - base < 6 or not data[base + 4] & 0x80:
        return Inner(
            [finding("L2T003", "Session ID 0 but no control header (T bit clear)", "L2TPv3.session_id", base)]
        )
    return Inner(_l2tp_control(data, base + 4, end, "after Session ID 0"))
