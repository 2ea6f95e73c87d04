"""``scapy-geneve lint PCAP``: RFC conformance findings per packet, and a summary.

Exit status: 0 no findings, 1 findings, 2 the file cannot be read (a damaged
capture: the findings and summary of the packets before the damage are
printed first, marked INCOMPLETE).
"""

import argparse
import json
import os
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from scapy.config import conf
from scapy.packet import Packet

from scapy_geneve.capture import pcapio
from scapy_geneve.cli._common import Progress
from scapy_geneve.errors import CaptureError
from scapy_geneve.conformance.lint import INFO, MUST, RULES, SHOULD, Finding, lint, lint_summary

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


def iter_lint_file(path: str, level: str = INFO, progress: Optional[Callable[[int, int], None]] = None,
                   **options: Any) -> Iterator[Tuple[int, List[Finding]]]:
    """(packet number, findings at LEVEL or stronger) for every packet of PATH, as read.

    A damaged capture raises :class:`~scapy_geneve.errors.CaptureError` after
    the packets before the damage have been yielded.  ``progress(bytes_read,
    packets)`` is called now and then.
    """
    floor = LEVEL_ORDER[level]
    old = conf.debug_dissector
    conf.debug_dissector = False  # a malformed packet must reach lint, not raise
    try:
        for record in pcapio.iter_records(path):
            findings = lint(_dissect(record), **options)
            if progress is not None and record.number % 256 == 0:
                progress(record.offset, record.number)
            yield record.number, [f for f in findings if LEVEL_ORDER[f.level] >= floor]
    finally:
        conf.debug_dissector = old


def lint_file(path: str, level: str = INFO, **options: Any) -> List[Tuple[int, List[Finding]]]:
    """(packet number, findings at LEVEL or stronger) for every packet of PATH."""
    return list(iter_lint_file(path, level, **options))


def _line(number: int, f: Finding) -> str:
    where = " @%d" % f.offset if f.offset is not None else ""
    return "#%-6d %s %-6s %s%s [%s]: %s" % (number, f.rule, f.level, f.field, where, f.section, f.message)


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
    # Streamed: findings are printed as packets are read, only the flagged
    # packets are kept (for --json), so a capture of any size fits in memory,
    # and a damaged capture still reports every packet before the damage.
    summary_acc = _Summary()
    flagged: List[Tuple[int, List[Finding]]] = []
    bar = Progress(None if args.pcap == "-" else os.path.getsize(args.pcap), "lint",
                   args.quiet or args.json)
    error: Optional[CaptureError] = None
    try:
        for number, findings in iter_lint_file(args.pcap, args.level, progress=bar.update, **options):
            summary_acc.add(findings)
            if findings:
                if args.json:
                    flagged.append((number, findings))
                elif not args.quiet:
                    bar.close()
                    for f in findings:
                        print(_line(number, f))
    except CaptureError as exc:
        error = exc
    finally:
        bar.close()
    summary = summary_acc.result()
    if error is not None and not summary["packets"]:
        raise error       # not a capture, or damaged from the start: nothing to report
    if error is not None:
        summary["error"] = str(error)
    if args.json:
        doc = {"file": args.pcap, "summary": summary, "complete": error is None,
               "packets": [{"number": n, "findings": [x.as_dict() for x in f]} for n, f in flagged]}
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        text = _summary_text(args.pcap, summary)
        if error is not None:
            text += "\nINCOMPLETE: the file is damaged; findings cover the %d packets before the damage." \
                % summary["packets"]
        print(text)
    sys.stdout.flush()
    if error is not None:
        raise error       # main() prints it (file, offset, packet) and exits 2
    return 1 if summary["packets_with_findings"] else 0


class _Summary:
    """lint_summary() kept up to date one packet at a time."""

    def __init__(self) -> None:
        self.doc = lint_summary([])

    def add(self, findings: List[Finding]) -> None:
        one = lint_summary([findings])
        self.doc["packets"] += 1
        self.doc["packets_with_findings"] += one["packets_with_findings"]
        for rule, n in one["rules"].items():
            self.doc["rules"][rule] = self.doc["rules"].get(rule, 0) + n
        for lv, n in one["levels"].items():
            self.doc["levels"][lv] = self.doc["levels"].get(lv, 0) + n

    def result(self) -> Dict[str, Any]:
        self.doc["rules"] = dict(sorted(self.doc["rules"].items()))
        return self.doc


def _summary_text(path: str, summary: Dict[str, Any]) -> str:
    rules = ", ".join("%s x%d" % (r, n) for r, n in summary["rules"].items())
    levels = ", ".join("%d %s" % (n, lv) for lv, n in summary["levels"].items() if n)
    return "%s: %d packets, %d with findings%s%s" % (
        path, summary["packets"], summary["packets_with_findings"],
        " (%s)" % levels if levels else "", ": " + rules if rules else "")
