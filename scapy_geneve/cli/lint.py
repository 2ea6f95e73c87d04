"""``scapy-geneve lint PCAP``: RFC conformance findings per packet, and a summary.

The capture is linted on its bytes, batch by batch
(:func:`scapy_geneve.conformance.lint_batch.lint_capture`): no Scapy packet
is built.  Output as text, ``--json`` (one streamed document), ``--format
junit`` or ``--format sarif`` for CI.

Exit status: 0 no findings, 1 findings (also when the reader of the output
went away, as ``lint | head -1``), 2 the file cannot be read (a damaged
capture: the findings and summary of the packets before the damage are
written first, marked INCOMPLETE).
"""

import argparse
import os
import sys
from typing import Any, Dict, List, Optional, Tuple, Union

from scapy_geneve.cli import _options
from scapy_geneve.cli._common import Progress
from scapy_geneve.cli._lint_output import WRITERS, Writer
from scapy_geneve.conformance.lint import GRE_AS, INFO, MUST, RULES, SHOULD, Finding, LintOptions
from scapy_geneve.conformance.lint_batch import CaptureTotals, lint_capture
from scapy_geneve.conformance.lint_rules import lint_summary, select_rules
from scapy_geneve.errors import CaptureError

EXIT_FINDINGS = 1


def _understood(text: str) -> Union[int, Tuple[int, int]]:
    """``0x0102`` (a class) or ``0x0102:0x80`` (class and type)."""
    try:
        if ":" in text:
            cls, typ = text.split(":", 1)
            return (int(cls, 0), int(typ, 0))
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected CLASS or CLASS:TYPE (e.g. 0x0102:0x80), got %r" % text
        ) from None


def _rule_list(text: str) -> List[str]:
    """``--select``/``--ignore``: rule ids or prefixes (``GNV``, ``VXL008``), commas allowed."""
    parts = [p.strip().upper() for p in text.split(",") if p.strip()]
    try:
        select_rules(parts)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return parts


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "lint",
        help="check every tunnel header in a capture against its spec",
        description="Lint Geneve (RFC 8926), VXLAN (RFC 7348) and VXLAN-GPE, NVGRE (RFC 7637), "
        "STT and L2TPv3 headers in a pcap/pcapng file, on the bytes.  Exit 0: no "
        "findings; 1: findings; 2: the file cannot be read.",
    )
    _options.add_input(p, "capture file (- reads standard input)", optional=True)
    out = p.add_argument_group("output")
    out.add_argument(
        "--format",
        choices=sorted(WRITERS),
        default="text",
        help="text (default), json (one document, streamed), junit (JUnit XML), sarif (SARIF 2.1.0)",
    )
    out.add_argument(
        "--json", action="store_const", const="json", dest="format", help="the same as --format json"
    )
    out.add_argument("--summary", action="store_true", help="text: the summary line only")
    _options.add_quiet_option(p)
    _options.add_count_option(p)
    rules = p.add_argument_group("rules")
    rules.add_argument(
        "--level",
        choices=[INFO, SHOULD, MUST],
        default=INFO,
        help="report findings of this level and stronger (default: INFO, all)",
    )
    rules.add_argument(
        "--select",
        type=_rule_list,
        action="append",
        default=[],
        metavar="RULE",
        help="only these rules: ids or prefixes (GNV, VXL008); repeat or use commas",
    )
    rules.add_argument(
        "--ignore",
        type=_rule_list,
        action="append",
        default=[],
        metavar="RULE",
        help="not these rules: ids or prefixes; repeat or use commas",
    )
    rules.add_argument("--list-rules", action="store_true", help="print every rule and exit")
    rec = p.add_argument_group("what the receiver knows")
    rec.add_argument(
        "--understood",
        type=_understood,
        action="append",
        metavar="CLASS[:TYPE]",
        help="an option class (or class:type) the receiver understands; with it, "
        "critical options outside the set are reported (GNV014). Repeatable.",
    )
    rec.add_argument(
        "--gre-as",
        choices=[g for g in GRE_AS if g != "auto"],
        help="read GRE as NVGRE (every GRE packet: the capture is NVGRE) or as "
        "plain GRE (none); default: keyed GRE carrying Ethernet is NVGRE, said "
        "to be a guess, keyless is RFC 2784 gretap",
    )
    rec.add_argument(
        "--all-gre-is-nvgre", action="store_const", const="nvgre", dest="gre_as", help=argparse.SUPPRESS
    )  # the old spelling of --gre-as nvgre
    _options.add_decoding_options(p)
    p.set_defaults(func=run)


def lint_options(args: argparse.Namespace) -> LintOptions:
    """The :class:`LintOptions` the command line asks for."""
    flat = [r for group in args.select for r in group]
    ignored = [r for group in args.ignore for r in group]
    cookie, l2ss = _options.l2tp(args)
    chosen = frozenset(select_rules(flat, ignored)) if flat or ignored else None
    return LintOptions(
        ports=_options.ports(args),
        understood=None if args.understood is None else set(args.understood),
        gre_as=args.gre_as or "auto",
        l2tp_cookie=cookie,
        l2tp_l2ss=l2ss,
        rules=chosen,
        level=args.level,
    )


class _Bar(Progress):
    """The progress bar with an ETA, cleared (not ended with a newline) before a
    finding is printed, so findings never have blank lines between them."""

    def progress(self, done: int, size: int, packets: int) -> None:
        self.total = size or None
        self.update(done, packets)

    def update(self, done: int, packets: Optional[int] = None) -> None:
        drawn = self.last
        super().update(done, packets)
        if self.last != drawn and self.total and done:
            left = (self.last - self.start) * (self.total - done) / done
            self.stream.write(" ETA %d:%02d\033[K" % divmod(int(left), 60))
            self.stream.flush()

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def close(self) -> None:
        self.clear()
        self.shown = False


class _Summary:
    """lint_summary() kept up to date one flagged packet at a time."""

    def __init__(self) -> None:
        self.doc = lint_summary([])

    def add(self, findings: List[Finding]) -> None:
        self.doc["packets_with_findings"] += 1
        for f in findings:
            self.doc["rules"][f.rule] = self.doc["rules"].get(f.rule, 0) + 1
            self.doc["levels"][f.level] += 1

    def result(self, totals: CaptureTotals) -> Dict[str, Any]:
        self.doc["packets"] = totals.packets
        self.doc["rules"] = dict(sorted(self.doc["rules"].items()))
        if totals.guessed:
            self.doc["guessed"] = totals.guessed
        return self.doc


def _list_rules() -> int:
    for rule, meta in RULES.items():
        print("%s  %-6s  %-32s  %s" % (rule, meta.level, meta.section, meta.title))
    return 0


def _scan(
    path: str, args: argparse.Namespace, writer: Writer, bar: _Bar, summary: _Summary, totals: CaptureTotals
) -> Optional[BaseException]:
    """Write every flagged packet; what stopped the reading early (damage, a signal), if anything."""
    live = path == "-" or not os.path.isfile(path)  # a pipe: each finding as it comes
    try:
        for number, report in lint_capture(path, lint_options(args), args.count, totals, bar.progress):
            if not report.findings:
                continue
            summary.add(report.findings)
            if not args.summary or args.format != "text":
                bar.clear()
                writer.packet(number, report.findings)
                if live:
                    writer.out.flush()
    except (CaptureError, KeyboardInterrupt) as exc:
        return exc
    finally:
        bar.close()
    return None


def run(args: argparse.Namespace) -> int:
    if args.list_rules:
        return _list_rules()
    path = _options.input_path(args)
    if path is None and not sys.stdin.isatty():
        path = "-"  # as tcpdump -r - and show: a capture piped in
    if path is None:
        _options.usage_error(args, "no input: give IN or -r FILE (- reads standard input)")
    writer = WRITERS[args.format](sys.stdout, path)
    summary, totals = _Summary(), CaptureTotals()
    bar = _Bar(None, "lint", args.quiet)
    writer.begin()
    try:
        stop = _scan(path, args, writer, bar, summary, totals)
        doc = summary.result(totals)
        if isinstance(stop, CaptureError) and not doc["packets"]:
            raise stop  # not a capture, or damaged from the start: nothing to report
        if isinstance(stop, KeyboardInterrupt):
            doc["interrupted"] = str(stop) or "interrupted"
        elif stop is not None:
            doc["error"] = str(stop)
        writer.end(doc, None if stop is None else doc.get("error", doc.get("interrupted")))
        sys.stdout.flush()
    except BrokenPipeError:  # `lint | head -1`: main() says so in one line, exit 2, as
        raise  # every command does when its reader leaves
    if stop is not None:
        raise stop  # main() prints a damaged file (file, offset, packet): 2; a signal: 128+n
    return EXIT_FINDINGS if doc["packets_with_findings"] else 0
