"""``scapy-geneve filter IN OUT``: copy the packets that match, byte for byte."""

import argparse
import sys
from typing import Any, List

from scapy_geneve.cli._common import Progress, capture_output
from scapy_geneve.cli.stats import add_scan_options, input_size, scan_kwargs
from scapy_geneve.errors import CaptureError
from scapy_geneve.capture.scan import KINDS, PacketFilter, filter_capture


def _numbers(text: str) -> List[int]:
    try:
        return [int(part, 0) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number or a comma-separated list of "
                                         "numbers (decimal or 0x hex)" % text) from None


def _kinds(text: str) -> List[str]:
    kinds = [part.strip().lower() for part in text.split(",") if part.strip()]
    for kind in kinds:
        if kind not in KINDS:
            raise argparse.ArgumentTypeError("unknown kind %r (choose from %s)"
                                             % (kind, ", ".join(KINDS)))
    return kinds


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The packet-selection options shared by ``filter`` and ``show``."""
    group = parser.add_argument_group(
        "selection", "Values of one option are OR-ed (repeat it or use commas); different "
                     "options are AND-ed.  Numbers are decimal or 0x hex.")
    group.add_argument("--vni", type=_numbers, action="append", default=[], metavar="N",
                       help="identifier: Geneve/VXLAN/GPE VNI, NVGRE VSID, STT context ID, "
                            "L2TPv3 session ID")
    group.add_argument("--option-class", type=_numbers, action="append", default=[],
                       metavar="C", help="has a Geneve option of class C (e.g. 0x0102)")
    group.add_argument("--option-type", type=_numbers, action="append", default=[],
                       metavar="T", help="has a Geneve option of type T, the 8-bit wire value "
                                         "(0x80 bit = critical); with --option-class, the "
                                         "same option must match both")
    group.add_argument("--kind", type=_kinds, action="append", default=[], metavar="K",
                       help="encapsulation: %s" % ", ".join(KINDS))
    group.add_argument("--malformed", action="store_true", help="only malformed packets")
    group.add_argument("--invert", action="store_true",
                       help="select the packets that do NOT match (e.g. everything but a VNI)")


def packet_filter(args: argparse.Namespace) -> PacketFilter:
    """A :class:`PacketFilter` from the selection options in ARGS."""
    def flat(lists: List[List[Any]]) -> List[Any]:
        return [value for values in lists for value in values]
    try:
        return PacketFilter(vni=flat(args.vni), kind=flat(args.kind),
                            option_class=flat(args.option_class),
                            option_type=flat(args.option_type), malformed=args.malformed,
                            invert=args.invert)
    except ValueError as exc:
        raise SystemExit("scapy-geneve %s: error: %s" % (args.command, exc)) from None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "filter", help="write the packets that match to a new capture",
        description="Copy the packets of IN that match the selection to OUT, with their "
                    "original bytes and timestamps (pcap in gives pcap out with the same "
                    "header; pcapng in gives pcapng out with every interface and other "
                    "block kept).  OUT is written atomically and may not be IN.")
    parser.add_argument("input", metavar="IN",
                        help="capture file (pcap or pcapng); - reads standard input")
    parser.add_argument("output", metavar="OUT",
                        help="capture file to write; - writes standard output")
    add_filter_options(parser)
    parser.add_argument("--keep-partial", action="store_true",
                        help="if IN is damaged part-way, still write the packets that "
                             "matched before the damage (exit code stays 2)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_scan_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    pfilter = packet_filter(args)
    bar = Progress(input_size(args.input), "filter", args.quiet)
    counts = [0, 0, 0]
    error = None
    with capture_output(args.output, args.input) as out:
        try:
            filter_capture(args.input, out, pfilter, progress=bar.update, counts=counts,
                           **scan_kwargs(args))
        except CaptureError as exc:
            if not args.keep_partial:
                bar.close()
                print("scapy-geneve filter: %d packets read, %d matched before the damage; "
                      "%s not written (use --keep-partial to keep them)"
                      % (counts[0], counts[1], args.output), file=sys.stderr)
                raise
            error = exc
    bar.close()
    print("scapy-geneve filter: %d of %d packets written to %s"
          % (counts[1], counts[0], args.output), file=sys.stderr)
    if counts[2]:
        print("scapy-geneve filter: %d packets were not examined (pcapng interfaces of "
              "link types scan cannot read); they match only an empty or --invert "
              "selection" % counts[2], file=sys.stderr)
    if error is not None:
        raise error
    return 0
