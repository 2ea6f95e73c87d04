"""The lint rules as data: id, level, spec section, title; and the :class:`Finding` they produce.

Pure data, no Scapy, no I/O.  A rule's family prefix (``GNV``, ``VXL``, ...)
is the registry's ``lint_prefix`` of the encapsulation it judges.  The checks
live in :mod:`scapy_geneve.conformance.lint_checks`.
"""

from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence

from scapy_geneve import registry

__all__ = [
    "MUST",
    "SHOULD",
    "INFO",
    "LEVELS",
    "LEVEL_ORDER",
    "Finding",
    "Rule",
    "RULES",
    "finding",
    "select_rules",
    "lint_summary",
]

MUST = "MUST"
SHOULD = "SHOULD"
INFO = "INFO"
LEVELS = (INFO, SHOULD, MUST)
LEVEL_ORDER = {INFO: 0, SHOULD: 1, MUST: 2}


@dataclass(frozen=True)
class Finding:
    """One conformance problem in one packet.

    ``rule`` is the stable id (``GNV004``); ``level`` is the strength of the
    requirement broken (``MUST``, ``SHOULD``, or ``INFO`` for observations
    that break nothing but change how a receiver treats the packet);
    ``section`` cites the spec; ``field`` names the offending field as
    ``Layer.field`` (a field of that Scapy layer, or the layer alone);
    ``offset`` is that field's byte offset in the packet (``None`` when the
    finding is about the packet as a whole).
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


_GPE = "draft-ietf-nvo3-vxlan-gpe-13 §3"

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
    "GNV019": Rule(
        INFO,
        "RFC 8926 §4.3",
        "UDP checksum holds only the pseudo-header sum: captured on the sending "
        "host before checksum offload filled it in",
    ),
    # -- VXLAN, RFC 7348 (and VXLAN-GPE on the ports that carry it) ------------------
    "VXL001": Rule(MUST, "RFC 7348 §5", "I flag is not set"),
    "VXL002": Rule(MUST, "RFC 7348 §5", "reserved flag bits (R) are not 0 on transmit"),
    "VXL003": Rule(MUST, "RFC 7348 §5", "24-bit Reserved field is not 0 on transmit"),
    "VXL004": Rule(MUST, "RFC 7348 §5", "8-bit Reserved field is not 0 on transmit"),
    "VXL005": Rule(
        INFO, "RFC 7348 §5", "G bit set: VXLAN-GBP (draft-smith-vxlan-group-policy), not plain RFC 7348"
    ),
    "VXL006": Rule(MUST, "RFC 7348 §5", "non-zero UDP checksum is wrong: a verifying VTEP drops it"),
    "VXL007": Rule(INFO, "RFC 7348 §5", "destination port is not the IANA port 4789"),
    "VXL008": Rule(
        INFO,
        "RFC 7348 §5",
        "UDP source port outside 49152-65535 (a SHOULD that Linux, picking from "
        "32768-60999, does not follow: common and harmless)",
    ),
    "VXL009": Rule(MUST, "RFC 7348 §4.3", "outer IP datagram is a fragment: VTEPs must not fragment"),
    "VXL010": Rule(SHOULD, "RFC 7348 §6.1", "inner frame carries an 802.1Q tag"),
    "VXL011": Rule(MUST, "RFC 7348 §5", "VXLAN header truncated (less than 8 bytes)"),
    "VXL012": Rule(
        SHOULD, "RFC 6040 §4.1 (RFC 9601)", "outer ECN field is ECT or CE over a Not-ECT inner IP header"
    ),
    "VXL013": Rule(
        INFO,
        "RFC 7348 §5",
        "UDP checksum holds only the pseudo-header sum: captured on the sending "
        "host before checksum offload filled it in",
    ),
    "VXL014": Rule(MUST, _GPE, "VXLAN-GPE Ver is not 0"),
    "VXL015": Rule(INFO, _GPE, "VXLAN-GPE P bit clear: no Next Protocol, Ethernet as in RFC 7348"),
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
    "STT008": Rule(
        INFO,
        "draft-davie-stt-08 §3.6",
        "TCP checksum holds only the pseudo-header sum: captured on the sending "
        "host before checksum offload filled it in",
    ),
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


def finding(rule: str, message: str, field: str, offset: Optional[int]) -> Finding:
    """A :class:`Finding` of RULE, its level and section from :data:`RULES`."""
    meta = RULES[rule]
    return Finding(rule, meta.level, meta.section, message, field, offset)


def _matches(rule: str, patterns: Iterable[str]) -> bool:
    return any(rule.startswith(p.upper()) for p in patterns)


def select_rules(select: Optional[Sequence[str]] = None, ignore: Optional[Sequence[str]] = None) -> List[str]:
    """The rule ids SELECT keeps (all when empty) minus those IGNORE drops.

    Each pattern is a rule id or a prefix of one (``GNV``, ``VXL00``), as ruff
    takes them.  A pattern that matches no rule is a ValueError naming it.
    """
    for pattern in list(select or ()) + list(ignore or ()):
        if not any(r.startswith(pattern.upper()) for r in RULES):
            families = sorted({rec.lint_prefix for rec in registry.records()})
            raise ValueError("%r matches no rule (rules are %s...)" % (pattern, ", ".join(families)))
    return [r for r in RULES if (not select or _matches(r, select)) and not (ignore and _matches(r, ignore))]


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
