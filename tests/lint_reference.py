"""FROZEN reference: the Scapy-walking linter as it was before lint moved onto the wire decoder.

Do not edit (except to keep it importable).  tests/test_lint_reference_equality.py
compares the bytes engine (scapy_geneve.conformance.lint) with this module on
pcaps/, the tcpdump corpus and Hypothesis-generated packets; the intended
differences are listed there, one by one.

Original docstring follows.

RFC conformance linter for overlay encapsulations.

``lint(pkt)`` walks a packet (any Scapy packet: a frame read from a pcap, or
one you built) and returns a list of :class:`Finding`: which rule, how strong
the requirement is (MUST / SHOULD / INFO), where the RFC says so, what is
wrong and in which field, and the byte offset of that field in the packet.

Covered encapsulations and their rule prefixes:

========  ===================================  ==============================
prefix    protocol                             spec
========  ===================================  ==============================
GNV       Geneve (UDP 6081)                    RFC 8926
VXL       VXLAN (UDP 4789, 8472, 48879)        RFC 7348
NVG       NVGRE (GRE, protocol 0x6558)         RFC 7637 (+ RFC 2784/2890)
STT       STT (TCP 7471)                       draft-davie-stt-08
L2T       L2TPv3 data (IP 115, UDP 1701 v3)    RFC 3931
========  ===================================  ==============================

The linter reads the tunnel headers from the wire bytes (``bytes(layer)``),
not from dissected fields, so it judges malformed packets exactly as a
receiver would, whatever a dissector made of them.  It is pure: no I/O, no
printing.  ``RULES`` lists every rule for documentation and ``--list-rules``.
"""

import struct
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrRouting
from scapy.layers.l2 import GRE
from scapy.packet import NoPayload, Packet

from scapy_geneve.checksum import csum_add, csum_block, csum_fold, inet_pton_any, pseudo_header_sum
from scapy_geneve.consts import (
    ETH_P_TEB,
    GENEVE_CRITICAL,
    GENEVE_HDR_LEN,
    GENEVE_MAX_OPTIONS,
    GENEVE_OPT_HDR_LEN,
    GENEVE_PORT,
    IPPROTO_L2TP,
    L2TP_PORT,
    STT_PORT,
    VXLAN_ACI_PORT,
    VXLAN_LINUX_PORT,
    VXLAN_PORT,
)

__all__ = ["Finding", "Rule", "RULES", "lint", "lint_summary", "MUST", "SHOULD", "INFO"]

MUST = "MUST"
SHOULD = "SHOULD"
INFO = "INFO"

ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8


@dataclass(frozen=True)
class Finding:
    """One conformance problem in one packet.

    ``rule`` is the stable id (``GNV004``); ``level`` is the strength of the
    requirement broken (``MUST``, ``SHOULD``, or ``INFO`` for observations
    that break nothing but change how a receiver treats the packet);
    ``section`` cites the spec; ``field`` names the offending field as
    ``Layer.field``; ``offset`` is that field's byte offset in the packet
    (``None`` when the finding is about the packet as a whole).
    """

    rule: str
    level: str
    section: str
    message: str
    field: str
    offset: Optional[int] = None

    def as_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def __str__(self) -> str:
        where = " @%d" % self.offset if self.offset is not None else ""
        return "%s %-6s %s [%s]%s: %s" % (
            self.rule,
            self.level,
            self.field,
            self.section,
            where,
            self.message,
        )


class Rule(NamedTuple):
    """A rule's fixed metadata: level, section and a one-line title."""

    level: str
    section: str
    title: str


RULES: Dict[str, Rule] = {
    # -- Geneve, RFC 8926 ---------------------------------------------------
    "GNV001": Rule(MUST, "RFC 8926 §3.4", "Ver is not 0: endpoints drop unknown versions"),
    "GNV002": Rule(MUST, "RFC 8926 §3.5", "option lengths do not sum to Opt Len (an option overruns it)"),
    "GNV003": Rule(MUST, "RFC 8926 §3.4", "Geneve header or options truncated by the end of the UDP payload"),
    "GNV004": Rule(
        MUST, "RFC 8926 §3.5", "an option has the critical bit but the base header's C bit is clear"
    ),
    "GNV005": Rule(MUST, "RFC 8926 §3.4", "6-bit Rsvd field is not 0 on transmit"),
    "GNV006": Rule(MUST, "RFC 8926 §3.4", "8-bit Reserved field (after the VNI) is not 0 on transmit"),
    "GNV007": Rule(MUST, "RFC 8926 §3.5", "option R bits are not 0 on transmit"),
    "GNV008": Rule(
        MUST, "RFC 8926 §3.4", "more than 252 bytes of options (Opt Len is 6 bits of 4-byte words)"
    ),
    "GNV009": Rule(INFO, "RFC 8926 §3.3", "destination port is not the IANA port 6081"),
    "GNV010": Rule(MUST, "RFC 8926 §3.3", "port 6081 used as the source port only: ports reversed"),
    "GNV011": Rule(MUST, "RFC 8926 §4.3", "non-zero UDP checksum is wrong: a validating endpoint drops it"),
    "GNV012": Rule(
        MUST, "RFC 8926 §4.3.1", "zero UDP checksum over IPv6 (only under RFC 6935/6936 conditions)"
    ),
    "GNV013": Rule(
        INFO, "RFC 8926 §3.4", "O bit set: a control packet, endpoints must not forward the payload"
    ),
    "GNV014": Rule(
        MUST, "RFC 8926 §3.5", "critical option not in the understood set: an endpoint drops the packet"
    ),
    "GNV015": Rule(
        SHOULD, "RFC 8926 §4.4.1", "outer IPv4 without DF (Path MTU Discovery strongly RECOMMENDED)"
    ),
    "GNV016": Rule(INFO, "RFC 8926 §3.4", "C bit set but no option is critical"),
    "GNV017": Rule(INFO, "RFC 8926 §4.4.1", "outer IP datagram is a fragment"),
    "GNV018": Rule(
        MUST, "RFC 6040 §4.1 (RFC 8926 §4.4.2)", "outer ECN field is ECT or CE over a Not-ECT inner IP header"
    ),
    # -- VXLAN, RFC 7348 ----------------------------------------------------
    "VXL001": Rule(MUST, "RFC 7348 §5", "I flag is not set"),
    "VXL002": Rule(MUST, "RFC 7348 §5", "reserved flag bits (R) are not 0 on transmit"),
    "VXL003": Rule(MUST, "RFC 7348 §5", "24-bit Reserved field is not 0 on transmit"),
    "VXL004": Rule(MUST, "RFC 7348 §5", "8-bit Reserved field is not 0 on transmit"),
    "VXL005": Rule(
        INFO, "RFC 7348 §5", "G bit set: VXLAN-GBP (draft-smith-vxlan-group-policy), not plain RFC 7348"
    ),
    "VXL006": Rule(MUST, "RFC 7348 §5", "non-zero UDP checksum is wrong: a verifying VTEP drops it"),
    "VXL007": Rule(INFO, "RFC 7348 §5", "destination port is not the IANA port 4789"),
    "VXL008": Rule(SHOULD, "RFC 7348 §5", "UDP source port outside 49152-65535"),
    "VXL009": Rule(MUST, "RFC 7348 §4.3", "outer IP datagram is a fragment: VTEPs must not fragment"),
    "VXL010": Rule(SHOULD, "RFC 7348 §6.1", "inner frame carries an 802.1Q tag"),
    "VXL011": Rule(MUST, "RFC 7348 §5", "VXLAN header truncated (less than 8 bytes)"),
    "VXL012": Rule(
        SHOULD, "RFC 6040 §4.1 (RFC 9601)", "outer ECN field is ECT or CE over a Not-ECT inner IP header"
    ),
    # -- NVGRE, RFC 7637 ----------------------------------------------------
    "NVG001": Rule(MUST, "RFC 7637 §3.2", "K (key present) bit is clear: NVGRE needs the VSID/FlowID key"),
    "NVG002": Rule(MUST, "RFC 7637 §3.2", "C (checksum present) bit is set"),
    "NVG003": Rule(MUST, "RFC 7637 §3.2", "S (sequence number present) bit is set"),
    "NVG004": Rule(MUST, "RFC 7637 §3.2", "Protocol Type is not 0x6558 (Transparent Ethernet Bridging)"),
    "NVG005": Rule(MUST, "RFC 2784 §2.3", "GRE version is not 0"),
    "NVG006": Rule(MUST, "RFC 2784 §2.3", "GRE Reserved0 bits are not 0"),
    "NVG007": Rule(
        MUST, "RFC 7637 §3.2", "inner frame carries an 802.1Q tag: the decapsulating NVE drops it"
    ),
    "NVG008": Rule(INFO, "RFC 7637 §3.2", "VSID in the reserved range 0x000000-0x000FFF or 0xFFFFFF"),
    "NVG009": Rule(MUST, "RFC 7637 §3.2", "GRE header truncated"),
    # -- STT, draft-davie-stt-08 --------------------------------------------
    "STT001": Rule(MUST, "draft-davie-stt-08 §3.1", "STT Version is not 0"),
    "STT002": Rule(
        MUST, "draft-davie-stt-08 §3.1", "reserved Flags bits (0xF0) or the Reserved byte are not 0"
    ),
    "STT003": Rule(
        MUST,
        "draft-davie-stt-08 §3.5",
        "segment offset (low 16 bits of SEQ) or its end beyond the frame length (high 16 bits)",
    ),
    "STT004": Rule(MUST, "draft-davie-stt-08 §3.6", "TCP checksum is wrong: the receiver drops the segment"),
    "STT005": Rule(
        INFO, "draft-davie-stt-08 §3.1", "L4 Offset or MSS non-zero without the checksum-partial flag"
    ),
    "STT006": Rule(SHOULD, "draft-davie-stt-08 §3.2", "TCP-like header has options or SYN/RST/FIN/URG set"),
    "STT007": Rule(MUST, "draft-davie-stt-08 §3.1", "STT frame header truncated (less than 18 bytes)"),
    # -- L2TPv3, RFC 3931 ---------------------------------------------------
    "L2T001": Rule(MUST, "RFC 3931 §4.1.2.1", "L2TPv3-over-UDP Reserved field is not 0"),
    "L2T002": Rule(
        MUST, "RFC 3931 §3.2.1", "control message header with the L (Length) or S (Sequence) bit clear"
    ),
    "L2T003": Rule(
        MUST, "RFC 3931 §4.1.1.1", "L2TPv3-over-IP data message with Session ID 0 (reserved for control)"
    ),
    "L2T004": Rule(MUST, "RFC 3931 §4.1", "L2TPv3 session header truncated"),
}


def _finding(rule: str, message: str, field: str, offset: Optional[int]) -> Finding:
    meta = RULES[rule]
    return Finding(rule, meta.level, meta.section, message, field, offset)


# -- helpers -----------------------------------------------------------------


def _offset_in(pkt: Packet, layer: Packet, total: Optional[int] = None) -> int:
    """Byte offset of LAYER inside PKT (layers include their payload bytes)."""
    if total is None:
        total = len(bytes(pkt))
    return total - len(bytes(layer))


def _l4_checksum_ok(ip: Packet, proto: int, segment: bytes) -> Optional[bool]:
    """Whether SEGMENT (a UDP/TCP header with its checksum, and payload)
    verifies against IP's pseudo-header; None when it cannot be checked."""
    if isinstance(ip, IPv6) and isinstance(ip.payload, IPv6ExtHdrRouting):
        return None  # the pseudo-header uses the final destination: leave it to a full stack
    try:
        src, dst = inet_pton_any(ip.src), inet_pton_any(ip.dst)
    except (OSError, TypeError, ValueError):
        return None
    total = csum_add(pseudo_header_sum(src, dst, proto, len(segment)), csum_block(segment))
    return csum_fold(total) == 0


def _udp_checksum_ok(ip: Packet, udp_bytes: bytes) -> Optional[bool]:
    """Whether a non-zero UDP checksum verifies; None when it cannot be checked."""
    return _l4_checksum_ok(ip, 17, udp_bytes)


def _tcp_checksum_ok(ip: Packet, tcp_bytes: bytes) -> Optional[bool]:
    return _l4_checksum_ok(ip, 6, tcp_bytes)


def _is_fragment(ip: Optional[Packet]) -> bool:
    if isinstance(ip, IP):
        return bool(ip.frag) or bool(int(ip.flags) & 0x1)
    return False


def _inner_vlan(data: bytes) -> bool:
    """Does an Ethernet frame (inner, no FCS) start with an 802.1Q/802.1ad tag?"""
    if len(data) < 14:
        return False
    return struct.unpack("!H", data[12:14])[0] in (ETH_P_8021Q, ETH_P_8021AD)


def _udp_payload(udp: Packet) -> Tuple[bytes, bool]:
    """UDP payload bytes, cut at the UDP length; and whether it is complete."""
    raw = bytes(udp)
    length = udp.len if udp.len is not None else len(raw)
    complete = len(raw) >= length >= 8
    if length >= 8:
        raw = raw[:length]
    return raw[8:], complete


_ECN_NAMES = ("Not-ECT", "ECT(1)", "ECT(0)", "CE")


def _inner_ip_ecn(data: bytes, ethertype: int) -> Optional[Tuple[int, int]]:
    """(ECN field, offset of the byte holding it) of the inner IP header that
    DATA starts with (ETHERTYPE 0x6558: behind Ethernet and any 802.1Q/ad
    tags); None when the inner packet is not IP or is cut short."""
    pos = 0
    if ethertype == ETH_P_TEB:
        pos = 12
        while len(data) >= pos + 2 and struct.unpack("!H", data[pos : pos + 2])[0] in (
            ETH_P_8021Q,
            ETH_P_8021AD,
        ):  # noqa: E501  (frozen as it was)
            pos += 4
        if len(data) < pos + 2:
            return None
        ethertype = struct.unpack("!H", data[pos : pos + 2])[0]
        pos += 2
    if ethertype == 0x0800 and len(data) > pos + 1 and data[pos] >> 4 == 4:
        return data[pos + 1] & 3, pos + 1
    if ethertype == 0x86DD and len(data) > pos + 1 and data[pos] >> 4 == 6:
        return (data[pos + 1] >> 4) & 3, pos + 1
    return None


def _outer_ecn(ip: Optional[Packet]) -> Optional[int]:
    if isinstance(ip, IP):
        return int(ip.tos) & 3
    if isinstance(ip, IPv6):
        return int(ip.tc) & 3
    return None


def _lint_ecn(
    rule: str, pkt: Packet, total: int, ip: Optional[Packet], inner: bytes, ethertype: int, inner_base: int
) -> List[Finding]:
    """RFC 6040 §4.1: both encapsulation modes give a Not-ECT inner packet a
    Not-ECT outer header (and a router marks CE only on ECT), so an outer
    ECT/CE over Not-ECT means the encapsulator broke the rule."""
    outer = _outer_ecn(ip)
    found = _inner_ip_ecn(inner, ethertype) if outer else None
    if found is None or found[0] != 0:
        return []
    return [
        _finding(
            rule,
            "outer ECN %s over a Not-ECT inner IP header (inner byte @%d)"
            % (_ECN_NAMES[outer or 0], inner_base + found[1]),
            "IP.tos" if isinstance(ip, IP) else "IPv6.tc",
            _offset_in(pkt, ip, total) + 1,
        )
    ]  # type: ignore[arg-type]


# -- Geneve --------------------------------------------------------------------

_Understood = Optional[Set[Union[int, Tuple[int, int]]]]


def _normalise_understood(understood: Optional[Iterable[Union[int, Tuple[int, int]]]]) -> _Understood:
    if understood is None:
        return None
    return set(understood)


def _option_understood(classid: int, otype: int, understood: Set[Union[int, Tuple[int, int]]]) -> bool:
    return classid in understood or (classid, otype) in understood


def _lint_geneve(
    pkt: Packet, ip: Optional[Packet], udp: Packet, total: int, understood: _Understood, std_port: bool
) -> List[Finding]:
    out: List[Finding] = []
    base = _offset_in(pkt, udp, total) + 8
    data, complete = _udp_payload(udp)

    if not std_port:
        if udp.sport == GENEVE_PORT:
            out.append(
                _finding(
                    "GNV010",
                    "source port is 6081 and destination port %d: the "
                    "well-known port identifies Geneve and is never reversed" % udp.dport,
                    "UDP.dport",
                    base - 6,
                )
            )
        else:
            out.append(
                _finding(
                    "GNV009", "Geneve on destination port %d, not 6081" % udp.dport, "UDP.dport", base - 6
                )
            )

    if isinstance(ip, IP):
        ip_off = _offset_in(pkt, ip, total)
        if not int(ip.flags) & 0x2 and not _is_fragment(ip):
            out.append(_finding("GNV015", "outer IPv4 DF bit is clear", "IP.flags", ip_off + 6))
        if _is_fragment(ip):
            out.append(
                _finding(
                    "GNV017",
                    "outer IPv4 is a fragment (offset %d, MF %d)" % (ip.frag * 8, int(ip.flags) & 1),
                    "IP.frag",
                    ip_off + 6,
                )
            )

    # UDP checksum: RFC 8926 §4.3 (IPv4), §4.3.1 (IPv6)
    if udp.chksum == 0:
        if isinstance(ip, IPv6):
            out.append(
                _finding(
                    "GNV012",
                    "zero UDP checksum over IPv6: allowed only on tunnels "
                    "configured for it (RFC 6935/6936); others drop it",
                    "UDP.chksum",
                    base - 2,
                )
            )
    elif complete and ip is not None and not _is_fragment(ip):
        ok = _udp_checksum_ok(ip, bytes(udp)[: udp.len])
        if ok is False:
            out.append(
                _finding("GNV011", "UDP checksum 0x%04x does not verify" % udp.chksum, "UDP.chksum", base - 2)
            )

    if len(data) < GENEVE_HDR_LEN:
        out.append(
            _finding(
                "GNV003", "%d bytes of UDP payload, the Geneve header needs 8" % len(data), "Geneve", base
            )
        )
        return out

    b0, b1, _proto, vni_rsvd = struct.unpack("!BBHI", data[:8])
    version, optlen = b0 >> 6, b0 & 0x3F
    oam, crit, rsvd = b1 >> 7, (b1 >> 6) & 1, b1 & 0x3F
    reserved2 = vni_rsvd & 0xFF

    if version != 0:
        out.append(_finding("GNV001", "Ver is %d; the only version is 0" % version, "Geneve.version", base))
    if rsvd:
        out.append(_finding("GNV005", "Rsvd is 0x%02x" % rsvd, "Geneve.reserved", base + 1))
    if reserved2:
        out.append(_finding("GNV006", "Reserved is 0x%02x" % reserved2, "Geneve.reserved2", base + 7))
    if oam:
        out.append(_finding("GNV013", "O bit set: control packet", "Geneve.oam", base + 1))

    # The Scapy layer may hold more option bytes than Opt Len can say (a
    # packet built in raw mode): judge the objects, not the masked field.
    layer = udp.payload
    if getattr(layer, "name", "") == "Geneve" and hasattr(layer, "options"):
        try:
            built = sum(len(bytes(o)) for o in (layer.options or []))
        except Exception:
            built = 0
        if built > GENEVE_MAX_OPTIONS:
            out.append(
                _finding(
                    "GNV008", "%d bytes of options, the maximum is 252" % built, "Geneve.options", base + 8
                )
            )

    end = GENEVE_HDR_LEN + 4 * optlen
    if end > len(data):
        out.append(
            _finding(
                "GNV003",
                "Opt Len %d (%d bytes) runs past the end of the UDP payload "
                "(%d bytes of options present)" % (optlen, 4 * optlen, len(data) - 8),
                "Geneve.optionlen",
                base,
            )
        )
        end = len(data) - (len(data) - GENEVE_HDR_LEN) % 4

    pos, index, any_critical = GENEVE_HDR_LEN, 0, False
    while pos < end:
        if pos + GENEVE_OPT_HDR_LEN > end:
            break
        classid, otype, b3 = struct.unpack("!HBB", data[pos : pos + 4])
        olen = GENEVE_OPT_HDR_LEN + 4 * (b3 & 0x1F)
        name = "Geneve.options[%d]" % index
        if b3 & 0xE0:
            out.append(
                _finding(
                    "GNV007",
                    "option class 0x%04x type 0x%02x has R bits 0x%x" % (classid, otype, b3 >> 5),
                    name + ".reserved",
                    base + pos + 3,
                )
            )
        if otype & GENEVE_CRITICAL:
            any_critical = True
            if not crit:
                out.append(
                    _finding(
                        "GNV004",
                        "option class 0x%04x type 0x%02x is critical but C is clear" % (classid, otype),
                        "Geneve.critical",
                        base + 1,
                    )
                )
            if understood is not None and not _option_understood(classid, otype, understood):
                out.append(
                    _finding(
                        "GNV014",
                        "critical option class 0x%04x type 0x%02x is not understood" % (classid, otype),
                        name + ".type",
                        base + pos + 2,
                    )
                )
        if pos + olen > end:
            out.append(
                _finding(
                    "GNV002",
                    "option class 0x%04x type 0x%02x is %d bytes long and overruns "
                    "Opt Len by %d bytes" % (classid, otype, olen, pos + olen - end),
                    name + ".length",
                    base + pos + 3,
                )
            )
            break
        pos += olen
        index += 1
    if crit and not any_critical and not any(f.rule == "GNV002" for f in out):
        out.append(
            _finding("GNV016", "C bit set, no option has the critical bit", "Geneve.critical", base + 1)
        )
    if version == 0 and pos == end == GENEVE_HDR_LEN + 4 * optlen:
        out += _lint_ecn("GNV018", pkt, total, ip, data[end:], _proto, base + end)
    return out


# -- VXLAN ---------------------------------------------------------------------


def _lint_vxlan(pkt: Packet, ip: Optional[Packet], udp: Packet, total: int) -> List[Finding]:
    out: List[Finding] = []
    base = _offset_in(pkt, udp, total) + 8
    data, complete = _udp_payload(udp)
    if udp.dport != VXLAN_PORT:
        out.append(
            _finding("VXL007", "VXLAN on destination port %d, not 4789" % udp.dport, "UDP.dport", base - 6)
        )
    if not 49152 <= udp.sport <= 65535:
        out.append(_finding("VXL008", "source port %d" % udp.sport, "UDP.sport", base - 8))
    if _is_fragment(ip):
        out.append(_finding("VXL009", "outer IPv4 is a fragment", "IP.frag", _offset_in(pkt, ip, total) + 6))  # type: ignore[arg-type]
    if udp.chksum and complete and ip is not None and not _is_fragment(ip):
        if _udp_checksum_ok(ip, bytes(udp)[: udp.len]) is False:
            out.append(
                _finding("VXL006", "UDP checksum 0x%04x does not verify" % udp.chksum, "UDP.chksum", base - 2)
            )
    if len(data) < 8:
        out.append(_finding("VXL011", "%d bytes of UDP payload" % len(data), "VXLAN", base))
        return out
    flags, rsvd24, vni_rsvd = data[0], int.from_bytes(data[1:4], "big"), struct.unpack("!I", data[4:8])[0]
    gbp = bool(flags & 0x80)
    if not flags & 0x08:
        out.append(_finding("VXL001", "flags 0x%02x: I flag clear" % flags, "VXLAN.flags", base))
    if gbp:
        out.append(
            _finding("VXL005", "G bit set (Group Policy ID 0x%04x)" % (rsvd24 & 0xFFFF), "VXLAN.flags", base)
        )
        if flags & 0x77:
            out.append(
                _finding(
                    "VXL002", "flags 0x%02x: R bits 0x%02x set" % (flags, flags & 0x77), "VXLAN.flags", base
                )
            )
        if data[1] & 0xB7:  # GBP defines D (0x40) and A (0x08) in byte 1
            out.append(
                _finding(
                    "VXL003",
                    "reserved bits 0x%02x set in byte 1 (GBP)" % (data[1] & 0xB7),
                    "VXLAN.reserved1",
                    base + 1,
                )
            )
    else:
        if flags & 0xF7:
            out.append(
                _finding(
                    "VXL002", "flags 0x%02x: R bits 0x%02x set" % (flags, flags & 0xF7), "VXLAN.flags", base
                )
            )
        if rsvd24:
            out.append(_finding("VXL003", "Reserved is 0x%06x" % rsvd24, "VXLAN.reserved1", base + 1))
    if vni_rsvd & 0xFF:
        out.append(_finding("VXL004", "Reserved is 0x%02x" % (vni_rsvd & 0xFF), "VXLAN.reserved2", base + 7))
    if _inner_vlan(data[8:]):
        out.append(
            _finding(
                "VXL010",
                "inner Ethernet type 0x%04x" % struct.unpack("!H", data[20:22])[0],
                "Ether.type",
                base + 20,
            )
        )
    if not gbp and flags & 0x08 and not flags & 0x04:  # plain VXLAN: Ethernet inside (not GPE)
        out += _lint_ecn("VXL012", pkt, total, ip, data[8:], ETH_P_TEB, base + 8)
    return out


# -- NVGRE ---------------------------------------------------------------------


def _lint_nvgre(pkt: Packet, gre: Packet, total: int) -> List[Finding]:
    out: List[Finding] = []
    base = _offset_in(pkt, gre, total)
    data = bytes(gre)
    if len(data) < 4:
        out.append(_finding("NVG009", "%d bytes of GRE header" % len(data), "GRE", base))
        return out
    word, proto = struct.unpack("!HH", data[:4])
    c, k, s = word & 0x8000, word & 0x2000, word & 0x1000
    if not k:
        out.append(
            _finding("NVG001", "flags 0x%04x: K clear, no VSID/FlowID" % word, "GRE.key_present", base)
        )
    if c:
        out.append(_finding("NVG002", "flags 0x%04x: C set" % word, "GRE.chksum_present", base))
    if s:
        out.append(_finding("NVG003", "flags 0x%04x: S set" % word, "GRE.seqnum_present", base))
    if proto != ETH_P_TEB:
        out.append(_finding("NVG004", "Protocol Type 0x%04x" % proto, "GRE.proto", base + 2))
    if word & 0x0007:
        out.append(_finding("NVG005", "version %d" % (word & 7), "GRE.version", base + 1))
    if word & 0x4FF8:
        out.append(_finding("NVG006", "Reserved0 bits 0x%04x" % (word & 0x4FF8), "GRE.flags", base))
    hlen = 4 + (4 if c else 0) + (4 if k else 0) + (4 if s else 0)
    if len(data) < hlen:
        out.append(
            _finding("NVG009", "%d bytes, the flags need a %d-byte header" % (len(data), hlen), "GRE", base)
        )
        return out
    if k:
        key = struct.unpack("!I", data[hlen - 4 - (4 if s else 0) : hlen - (4 if s else 0)])[0]
        vsid = key >> 8
        if vsid <= 0xFFF or vsid == 0xFFFFFF:
            out.append(
                _finding(
                    "NVG008", "VSID 0x%06x is reserved" % vsid, "GRE.key", base + hlen - 4 - (4 if s else 0)
                )
            )
    if proto == ETH_P_TEB and _inner_vlan(data[hlen:]):
        out.append(
            _finding(
                "NVG007",
                "inner Ethernet type 0x%04x" % struct.unpack("!H", data[hlen + 12 : hlen + 14])[0],
                "Ether.type",
                base + hlen + 12,
            )
        )
    return out


# -- STT -----------------------------------------------------------------------


def _lint_stt(pkt: Packet, ip: Optional[Packet], tcp: Packet, total: int) -> List[Finding]:
    out: List[Finding] = []
    base = _offset_in(pkt, tcp, total)
    raw = bytes(tcp)
    doff = tcp.dataofs if tcp.dataofs is not None else 5
    flags = int(tcp.flags)
    if doff != 5 or flags & 0x27:  # FIN 0x01, SYN 0x02, RST 0x04, URG 0x20
        out.append(_finding("STT006", "data offset %d, flags %s" % (doff, tcp.flags), "TCP.flags", base + 12))
    if ip is not None and not _is_fragment(ip):
        ip_payload_len = (
            (ip.len - ip.ihl * 4)
            if isinstance(ip, IP) and ip.len
            else (ip.plen if isinstance(ip, IPv6) and ip.plen else None)
        )
        if (
            ip_payload_len is not None
            and len(raw) >= ip_payload_len
            and _tcp_checksum_ok(ip, raw[:ip_payload_len]) is False
        ):
            out.append(
                _finding(
                    "STT004", "TCP checksum 0x%04x does not verify" % tcp.chksum, "TCP.chksum", base + 16
                )
            )
        if ip_payload_len is not None:
            raw = raw[:ip_payload_len]
    frame_len, seg_off = tcp.seq >> 16, tcp.seq & 0xFFFF
    seg_len = max(len(raw) - doff * 4, 0)
    if frame_len and seg_off >= frame_len:
        out.append(
            _finding("STT003", "offset %d, frame length %d" % (seg_off, frame_len), "TCP.seq", base + 4)
        )
    elif seg_off + seg_len > frame_len:
        # the segment's bytes [off, off + len) must lie inside the frame (§3.5)
        out.append(
            _finding(
                "STT003",
                "segment [%d, %d) runs past the frame length %d" % (seg_off, seg_off + seg_len, frame_len),
                "TCP.seq",
                base + 4,
            )
        )
    if seg_off != 0:
        return out  # the STT frame header is only in the first segment
    hdr = raw[doff * 4 :]
    hbase = base + doff * 4
    if len(hdr) < 18:
        out.append(_finding("STT007", "%d bytes after the TCP-like header" % len(hdr), "STT", hbase))
        return out
    version, sflags, l4off, rsvd, mss = struct.unpack("!BBBBH", hdr[:6])
    if version != 0:
        out.append(_finding("STT001", "Version %d" % version, "STT.version", hbase))
    if sflags & 0xF0 or rsvd:
        out.append(
            _finding("STT002", "Flags 0x%02x, Reserved 0x%02x" % (sflags, rsvd), "STT.flags", hbase + 1)
        )
    if not sflags & 0x02 and (l4off or mss):
        out.append(
            _finding(
                "STT005",
                "L4 Offset %d, MSS %d, flags 0x%02x" % (l4off, mss, sflags),
                "STT.l4_offset",
                hbase + 2,
            )
        )
    return out


# -- L2TPv3 ----------------------------------------------------------------------

L2TP_CONTROL_HDR_LEN = 12  # T..Ver, Length, Control Connection ID, Ns, Nr (RFC 3931 §3.2.1)


def _lint_l2tp_control(data: bytes, base: int, where: str) -> List[Finding]:
    """The control message header at the start of DATA (T bit set)."""
    out: List[Finding] = []
    word = struct.unpack("!H", data[:2])[0]
    if word & 0x4800 != 0x4800:
        out.append(
            _finding(
                "L2T002",
                "control header 0x%04x: L %d, S %d (both MUST be 1)" % (word, word >> 14 & 1, word >> 11 & 1),
                "L2TPv3Control.flags",
                base,
            )
        )
    if len(data) < L2TP_CONTROL_HDR_LEN:
        out.append(
            _finding(
                "L2T004",
                "%d bytes of control message header %s, it needs %d"
                % (len(data), where, L2TP_CONTROL_HDR_LEN),
                "L2TPv3Control",
                base,
            )
        )
        return out
    length = struct.unpack("!H", data[2:4])[0]
    if word & 0x4000 and length > len(data):
        out.append(
            _finding(
                "L2T004",
                "control message Length %d, only %d bytes %s" % (length, len(data), where),
                "L2TPv3Control.length",
                base + 2,
            )
        )
    return out


def _lint_l2tpv3_udp(pkt: Packet, udp: Packet, total: int) -> List[Finding]:
    out: List[Finding] = []
    base = _offset_in(pkt, udp, total) + 8
    data, _ = _udp_payload(udp)
    if len(data) < 8:
        out.append(_finding("L2T004", "%d bytes of UDP payload" % len(data), "L2TPv3", base))
        return out
    word = struct.unpack("!H", data[:2])[0]
    reserved = struct.unpack("!H", data[2:4])[0]
    if word & 0x8000 == 0:  # data message
        if word & 0x7FF0 or reserved:
            out.append(
                _finding(
                    "L2T001", "flags 0x%04x, Reserved 0x%04x" % (word, reserved), "L2TPv3.reserved", base
                )
            )
    else:
        out += _lint_l2tp_control(data, base, "of UDP payload")
    return out


def _lint_l2tpv3_ip(pkt: Packet, ip: Packet, total: int) -> List[Finding]:
    out: List[Finding] = []
    payload = ip.payload
    base = _offset_in(pkt, payload, total) if len(payload) else _offset_in(pkt, ip, total) + len(bytes(ip))
    data = bytes(payload)
    if len(data) < 4:
        out.append(_finding("L2T004", "%d bytes of IP payload" % len(data), "L2TPv3", base))
        return out
    if struct.unpack("!I", data[:4])[0] == 0:
        if len(data) < 6 or not data[4] & 0x80:
            out.append(
                _finding(
                    "L2T003", "Session ID 0 but no control header (T bit clear)", "L2TPv3.session_id", base
                )
            )
        else:
            out += _lint_l2tp_control(data[4:], base + 4, "after Session ID 0")
    return out


# -- walk ----------------------------------------------------------------------


def lint(
    pkt: Packet,
    understood: Optional[Iterable[Union[int, Tuple[int, int]]]] = None,
    geneve_ports: Sequence[int] = (GENEVE_PORT,),
    vxlan_ports: Sequence[int] = (VXLAN_PORT, VXLAN_LINUX_PORT, VXLAN_ACI_PORT),
    nvgre: Union[bool, str] = "auto",
    stt: bool = True,
    l2tpv3: bool = True,
) -> List[Finding]:
    """Lint every tunnel header in PKT (outer and nested) against its RFC.

    ``understood``: option classes (``0x0102``) or ``(class, type)`` pairs the
    receiving endpoint understands; when given, critical options outside it
    are reported (GNV014).  ``geneve_ports``/``vxlan_ports``: UDP destination
    ports to treat as Geneve/VXLAN (a Geneve layer bound to another port is
    always linted).  ``nvgre``: ``"auto"`` lints GRE with Protocol Type
    0x6558 as NVGRE, ``True`` every GRE packet (a capture known to be NVGRE:
    then a wrong Protocol Type is reported too), ``False`` none.
    ``stt``/``l2tpv3``: False turns those families off.

    Valid packets return ``[]``.
    """
    known = _normalise_understood(understood)
    findings: List[Finding] = []
    total = len(bytes(pkt))
    ip: Optional[Packet] = None
    layer: Packet = pkt
    while layer is not None and not isinstance(layer, NoPayload):
        if isinstance(layer, (IP, IPv6)):
            ip = layer
            gre_proto = layer.proto if isinstance(layer, IP) else layer.nh
            if (
                gre_proto == 47
                and nvgre
                and not isinstance(layer.payload, GRE)
                and not _is_fragment(layer)
                and len(layer.payload)
            ):
                # a GRE header too short for Scapy's GRE stays raw: lint its bytes
                head = bytes(layer.payload)[:4]
                if nvgre is True or head[2:4] == ETH_P_TEB.to_bytes(2, "big"):
                    findings += _lint_nvgre(pkt, layer.payload, total)
            if l2tpv3 and (
                (isinstance(layer, IP) and layer.proto == IPPROTO_L2TP)
                or (isinstance(layer, IPv6) and layer.nh == IPPROTO_L2TP)
            ):
                findings += _lint_l2tpv3_ip(pkt, layer, total)
        elif isinstance(layer, UDP):
            pay_name = getattr(layer.payload, "name", "")
            if layer.dport in geneve_ports or pay_name == "Geneve":
                findings += _lint_geneve(pkt, ip, layer, total, known, layer.dport == GENEVE_PORT)
            elif layer.sport in geneve_ports and pay_name in ("Raw", "Geneve"):
                findings += _lint_geneve(pkt, ip, layer, total, known, False)
            elif layer.dport in vxlan_ports:
                findings += _lint_vxlan(pkt, ip, layer, total)
            elif l2tpv3 and L2TP_PORT in (layer.dport, layer.sport):
                head = bytes(layer)[8:10]
                if len(head) == 2 and head[1] & 0x0F == 3:
                    findings += _lint_l2tpv3_udp(pkt, layer, total)
        elif isinstance(layer, GRE):
            if nvgre is True or (nvgre and layer.proto == ETH_P_TEB):
                findings += _lint_nvgre(pkt, layer, total)
        elif isinstance(layer, TCP):
            if stt and layer.dport == STT_PORT:
                findings += _lint_stt(pkt, ip, layer, total)
        layer = layer.payload
    return findings


def lint_summary(per_packet: Iterable[Sequence[Finding]]) -> Dict[str, Any]:
    """Aggregate findings of many packets: counts per rule and per level."""
    rules: Dict[str, int] = {}
    levels: Dict[str, int] = {MUST: 0, SHOULD: 0, INFO: 0}
    packets = flagged = 0
    for findings in per_packet:
        packets += 1
        if findings:
            flagged += 1
        for f in findings:
            rules[f.rule] = rules.get(f.rule, 0) + 1
            levels[f.level] = levels.get(f.level, 0) + 1
    return {
        "packets": packets,
        "packets_with_findings": flagged,
        "rules": dict(sorted(rules.items())),
        "levels": levels,
    }
