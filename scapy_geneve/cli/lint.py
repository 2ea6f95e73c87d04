"""``scapy-geneve lint PCAP``: RFC conformance findings per packet, and a summary.

Exit status: 0 no findings, 1 findings, 2 the file cannot be read.
"""

import argparse
import json
import sys
from typing import Any, Dict, List, Tuple, Union

from scapy.config import conf
from scapy.packet import Packet

from scapy_geneve import pcapio
from scapy_geneve.lint import INFO, MUST, RULES, SHOULD, Finding, lint, lint_summary

LEVEL_ORDER = {INFO: 0, SHOULD: 1, MUST: 2}


def _int(text: str) -> int:
    return int(text, 0)


def _understood(text: str) -> Union[int, Tuple[int, int]]:
    """``0x0102`` (a class) or ``0x0102:0x80`` (class and type)."""
    try:
        if ":" in text:
            cls, typ = text.split(":", 1)
            return (int(cls, 0), int(typ, 0))
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError("expected CLASS or CLASS:TYPE (e.g. 0x0102:0x80), got %r"
                                         % text) from None


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "lint", help="check every tunnel header in a pcap against its RFC",
        description="Lint Geneve (RFC 8926), VXLAN (RFC 7348), NVGRE (RFC 7637), STT and "
                    "L2TPv3 headers in a pcap/pcapng file.  Exit 0: no findings; 1: findings; "
                    "2: the file cannot be read.")
    p.add_argument("pcap", nargs="?", help="capture file")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--level", choices=[INFO, SHOULD, MUST], default=INFO,
                   help="report findings of this level and stronger (default: INFO, all)")
    p.add_argument("--understood", type=_understood, action="append", metavar="CLASS[:TYPE]",
                   help="an option class (or class:type) the receiver understands; with it, "
                        "critical options outside the set are reported (GNV014). Repeatable.")
    p.add_argument("--geneve-port", type=_int, action="append", metavar="PORT",
                   help="UDP destination port carrying Geneve (default 6081). Repeatable.")
    p.add_argument("--vxlan-port", type=_int, action="append", metavar="PORT",
                   help="UDP destination port carrying VXLAN (default 4789, 8472, 48879). Repeatable.")
    p.add_argument("--all-gre-is-nvgre", action="store_true",
                   help="lint every GRE packet as NVGRE (default: only Protocol Type 0x6558)")
    p.add_argument("--quiet", "-q", action="store_true", help="summary only")
    p.add_argument("--list-rules", action="store_true", help="print every rule and exit")
    p.set_defaults(func=run)


def _dissect(record: pcapio.Record) -> Packet:
    """The record as its link type's Scapy class; raw bytes if even that fails
    (a frame cut before the end of its link header has no tunnel to lint)."""
    cls = conf.l2types.num2layer.get(record.linktype, conf.raw_layer)
    try:
        return cls(record.data)
    except Exception:
        return conf.raw_layer(record.data)


def lint_file(path: str, level: str = INFO, **options: Any) -> List[Tuple[int, List[Finding]]]:
    """(packet number, findings at LEVEL or stronger) for every packet of PATH."""
    floor = LEVEL_ORDER[level]
    out: List[Tuple[int, List[Finding]]] = []
    old = conf.debug_dissector
    conf.debug_dissector = False  # a malformed packet must reach lint, not raise
    try:
        for record in pcapio.iter_records(path):
            findings = lint(_dissect(record), **options)
            out.append((record.number, [f for f in findings if LEVEL_ORDER[f.level] >= floor]))
    finally:
        conf.debug_dissector = old
    return out


def run(args: argparse.Namespace) -> int:
    if args.list_rules:
        for rule, meta in RULES.items():
            print("%s  %-6s  %-24s  %s" % (rule, meta.level, meta.section, meta.title))
        return 0
    if not args.pcap:
        print("scapy-geneve lint: error: a PCAP file is required", file=sys.stderr)
        return 2
    options: Dict[str, Any] = {}
    if args.understood:
        options["understood"] = args.understood
    if args.geneve_port:
        options["geneve_ports"] = tuple(args.geneve_port)
    if args.all_gre_is_nvgre:
        options["nvgre"] = True
    if args.vxlan_port:
        options["vxlan_ports"] = tuple(args.vxlan_port)
    results = lint_file(args.pcap, args.level, **options)
    summary = lint_summary(f for _, f in results)
    flagged = [(n, f) for n, f in results if f]
    if args.json:
        doc = {"file": args.pcap, "summary": summary,
               "packets": [{"number": n, "findings": [x.as_dict() for x in f]} for n, f in flagged]}
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        if not args.quiet:
            for number, findings in flagged:
                for f in findings:
                    where = " @%d" % f.offset if f.offset is not None else ""
                    print("#%-6d %s %-6s %s%s [%s]: %s" % (number, f.rule, f.level, f.field, where,
                                                           f.section, f.message))
        print(_summary_text(args.pcap, summary))
    return 1 if flagged else 0


def _summary_text(path: str, summary: Dict[str, Any]) -> str:
    rules = ", ".join("%s x%d" % (r, n) for r, n in summary["rules"].items())
    levels = ", ".join("%d %s" % (n, lv) for lv, n in summary["levels"].items() if n)
    return "%s: %d packets, %d with findings%s%s" % (
        path, summary["packets"], summary["packets_with_findings"],
        " (%s)" % levels if levels else "", ": " + rules if rules else "")

