"""``scapy-geneve stats PCAP...``: packets and bytes per encapsulation, VNI,
Geneve option, inner protocol, and malformed counts, without Scapy; many files
(globs too) in ``--jobs N`` processes give the same counts as one."""

import argparse
import datetime
import json
import os
import sys
from typing import Any, Dict, List, Optional

from scapy_geneve.capture.interrupt import Interrupted
from scapy_geneve.capture.parallel import FileStats, expand_inputs, input_bytes, merge_stats, stats_files
from scapy_geneve.capture.scan import ScanStats, compute_stats
from scapy_geneve.cli import _options
from scapy_geneve.cli._common import plural, Progress
from scapy_geneve.errors import CaptureError
from scapy_geneve.registry import get, names, records


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="count packets per encapsulation, VNI, option, inner protocol",
        description="Count packets and bytes per encapsulation (%s), per identifier, per "
        "Geneve option class and type, critical options, inner protocols and "
        "malformed packets, over one or more captures (globs too).  Reads pcap "
        "and pcapng; never builds Scapy packets." % ", ".join(names()),
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="PCAP",
        help="capture files or globs (pcap or pcapng, gzip too); - reads standard input",
    )
    parser.add_argument(
        "-r",
        dest="read_files",
        action="append",
        default=[],
        metavar="FILE",
        help="read FILE (the same as a positional PCAP; repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--top",
        type=_top,
        default=20,
        metavar="N",
        help="show the N busiest identifiers and options (default 20; 0 = all)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_options.positive_int,
        default=1,
        metavar="N",
        help="count N files at once in N processes (default 1; the counts are the same)",
    )
    parser.add_argument(
        "--utc", action="store_true", help="times in UTC (default: local time; the zone is always shown)"
    )
    _options.add_quiet_option(parser)
    _options.add_decoding_options(parser)
    parser.set_defaults(func=run)


def _top(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text) from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (all) or more, not %d" % value)
    return value


def date_text(ts_ns: int, utc: bool) -> str:
    """YYYY-MM-DD HH:MM:SS.ffffff ZONE (nanoseconds when the capture has them)."""
    sec, ns = divmod(ts_ns, 1_000_000_000)
    try:
        when = (
            datetime.datetime.fromtimestamp(sec, datetime.timezone.utc)
            if utc
            else datetime.datetime.fromtimestamp(sec).astimezone()
        )
    except (OverflowError, OSError, ValueError):
        return "%d.%09d s since the epoch" % (sec, ns)
    frac = "%09d" % ns if ns % 1000 else "%06d" % (ns // 1000)
    return "%s.%s %s" % (when.strftime("%Y-%m-%d %H:%M:%S"), frac, "UTC" if utc else when.strftime("%Z"))


def iso_utc(ts_ns: Optional[int]) -> Optional[str]:
    """ISO 8601 in UTC with nanoseconds, for JSON."""
    if ts_ns is None:
        return None
    sec, ns = divmod(ts_ns, 1_000_000_000)
    try:
        when = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return "%s.%09dZ" % (when.strftime("%Y-%m-%dT%H:%M:%S"), ns)


def _ident(kind: str, vni: int) -> str:
    digits = (get(kind).id_bits + 3) // 4
    if digits > 8:
        return "0x%0*x" % (digits, vni)
    return "%d (0x%0*x)" % (vni, digits, vni)


def _header(data: Dict[str, Any], stats: ScanStats, utc: bool) -> List[str]:
    files = data["files"]
    if len(files) == 1:
        what = "%s: %s" % (files[0]["file"], data["format"] or "?")
    else:
        formats: Dict[str, int] = {}
        for entry in files:
            formats[entry["format"] or "?"] = formats.get(entry["format"] or "?", 0) + 1
        what = "%d files (%s)" % (len(files), ", ".join("%s %d" % kv for kv in formats.items()))
    out = [
        "%s, %s, %d bytes on the wire (%d captured)"
        % (what, plural(data["packets"], "packet"), data["bytes"], data["captured_bytes"])
    ]
    if stats.first_ns is not None and stats.last_ns is not None:
        out.append(
            "time: %s to %s (%.6f s)"
            % (date_text(stats.first_ns, utc), date_text(stats.last_ns, utc), data["duration"])
        )
    if len(files) > 1:
        for entry in files:
            out.append(
                "  %s: %s, %s%s"
                % (
                    entry["file"],
                    entry["format"] or "?",
                    plural(entry["packets"], "packet"),
                    ", DAMAGED: " + entry["error"] if entry["error"] else "",
                )
            )
    return out


def _identifiers(data: Dict[str, Any], top: int) -> List[str]:
    out: List[str] = []
    vnis = data["vnis"]
    if vnis:
        shown = vnis if top <= 0 else vnis[:top]
        out += [
            "",
            "identifiers (%s): %d%s"
            % (
                " / ".join("%s %s" % (rec_title, id_title) for rec_title, id_title in _titles()),
                len(vnis),
                "" if len(shown) == len(vnis) else ", top %d shown" % len(shown),
            ),
            "%-10s %-22s %12s %16s" % ("kind", "identifier", "packets", "bytes"),
        ]
        for entry in shown:
            out.append(
                "%-10s %-22s %12d %16d"
                % (entry["kind"], _ident(entry["kind"], entry["vni"]), entry["packets"], entry["bytes"])
            )
    for kind, count in data["without_identifier"].items():
        what = {
            "stt": "STT continuation segments (the context ID is in the first segment)",
            "l2tpv3": "L2TPv3 control messages",
        }.get(kind, "%s without identifier" % kind)
        out.append("%s: %d" % (what, count))
    return out


def _titles() -> List[Any]:
    return [(rec.title, rec.id_title) for rec in records() if rec.variant_of is None]


def _options_table(data: Dict[str, Any], top: int) -> List[str]:
    options = data["options"]
    if not options:
        return []
    shown = options if top <= 0 else options[:top]
    out = [
        "",
        "Geneve options: %s%s"
        % (plural(len(options), "kind"), "" if len(shown) == len(options) else ", top %d shown" % len(shown)),
        "%-8s %-34s %-6s %-3s %12s %12s %16s" % ("class", "owner", "type", "C", "count", "packets", "bytes"),
    ]
    for entry in shown:
        out.append(
            "0x%04x   %-34s 0x%02x   %-3s %12d %12d %16d"
            % (
                entry["class"],
                entry["class_name"][:34],
                entry["type"],
                "C" if entry["critical"] else "",
                entry["count"],
                entry["packets"],
                entry["bytes"],
            )
        )
    classes = data["option_classes"]
    if len(classes) < len(options):  # several types in a class: per-class totals
        out += ["", "%-8s %-34s %12s %16s" % ("class", "owner", "packets", "bytes")]
        for entry in classes if top <= 0 else classes[:top]:
            out.append(
                "0x%04x   %-34s %12d %16d"
                % (entry["class"], entry["class_name"][:34], entry["packets"], entry["bytes"])
            )
    return out


def _tail(data: Dict[str, Any]) -> List[str]:
    out: List[str] = []
    crit = data["critical"]
    if crit["c_bit_packets"] or crit["critical_options"]:
        out.append(
            "critical: C bit set in %s; %s; %s with a critical option but C clear "
            "(RFC 8926 §3.5 requires C)"
            % (
                plural(crit["c_bit_packets"], "packet"),
                plural(crit["critical_options"], "critical option"),
                plural(crit["critical_option_without_c_bit"], "packet"),
            )
        )
    if data["oam_packets"]:
        out.append("O (control/OAM) bit set: %s" % plural(data["oam_packets"], "packet"))
    out += [
        "",
        "inner protocols: %s" % (", ".join("%s %d" % kv for kv in data["inner_protocols"].items()) or "-"),
    ]
    mal = data["malformed"]
    out.append("malformed: %s" % plural(mal["packets"], "packet"))
    for reason, count in mal["reasons"].items():
        out.append("  %8d  %s" % (count, reason))
    if data["snapped"]:
        out.append(
            "snapped (cut by the capture's snaplen before the headers ended): %s"
            % plural(data["snapped"], "packet")
        )
    skipped = data["skipped"]
    if skipped["packets"]:
        first = (
            "" if skipped["first_packet"] is None else ", the first is packet %d" % skipped["first_packet"]
        )
        out.append(
            "skipped (link type not supported, not examined): %s (%s)%s"
            % (
                plural(skipped["packets"], "packet"),
                ", ".join("link type %s: %d" % kv for kv in skipped["linktypes"].items()),
                first,
            )
        )
    if data["error"]:
        out += ["", "INCOMPLETE: a file is damaged; its counts cover the packets before the damage."]
    return out


def format_text(data: Dict[str, Any], stats: ScanStats, top: int, utc: bool = False) -> str:
    """The stats dict as the tables ``scapy-geneve stats`` prints."""
    out = _header(data, stats, utc)
    out.append("link types: %s" % (", ".join("%s %d" % kv for kv in data["linktypes"].items()) or "-"))
    out.append("outer: %s" % (", ".join("%s %d" % kv for kv in data["outer"].items()) or "-"))
    out += ["", "%-12s %12s %16s" % ("encapsulation", "packets", "bytes")]
    for name, entry in data["encapsulations"].items():
        out.append("%-12s %12d %16d" % (name, entry["packets"], entry["bytes"]))
    out += _identifiers(data, top) + _options_table(data, top) + _tail(data)
    return "\n".join(out)


def to_dict(stats: ScanStats, per_file: List[FileStats]) -> Dict[str, Any]:
    """ScanStats.to_dict() plus the files and ISO 8601 dates (UTC)."""
    data = stats.to_dict()
    data["files"] = [
        {
            "file": f.stats.path,
            "format": f.stats.format,
            "packets": f.stats.packets,
            "error": None if f.error is None else str(f.error),
        }
        for f in per_file
    ]
    if len(per_file) == 1:
        data["file"], data["format"] = per_file[0].stats.path, per_file[0].stats.format
    data["first_date"], data["last_date"] = iso_utc(stats.first_ns), iso_utc(stats.last_ns)
    errors = [str(f.error) for f in per_file if f.error is not None]
    data["error"] = "; ".join(errors) if errors else None
    return data


def _count_here(paths: List[str], kwargs: Dict[str, Any], bar: Progress) -> List[FileStats]:
    """One file after the other in this process; on a signal, print what was counted."""
    per_file: List[FileStats] = []
    done = 0
    for path in paths:
        stats = ScanStats(path)

        def progress(read: int, _packets: int, before: int = done) -> None:
            bar.update(before + read)

        try:
            compute_stats(path, stats=stats, progress=progress, **kwargs)
            per_file.append(FileStats(stats, None))
        except CaptureError as exc:
            stats.error = str(exc)
            per_file.append(FileStats(stats, exc))
        except Interrupted as stop:  # what was counted goes with the signal
            per_file.append(FileStats(stats, None))
            stop.per_file = per_file  # type: ignore[attr-defined]
            raise
        done += stats.captured if path == "-" else _size(path)
    return per_file


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def run(args: argparse.Namespace) -> int:
    patterns = list(args.inputs) + list(args.read_files)
    if not patterns:
        _options.usage_error(args, "no input: give PCAP... or -r FILE (- reads standard input)")
    paths = expand_inputs(patterns)
    kwargs = _options.scan_kwargs(args)
    bar = Progress(input_bytes(paths), "stats", args.quiet)
    try:
        if args.jobs > 1 and len(paths) > 1:
            _merged, per_file = stats_files(paths, args.jobs, bar.update, **kwargs)
        else:
            per_file = _count_here(paths, kwargs, bar)
    except Interrupted as stop:  # SIGINT/SIGTERM/SIGHUP: the counts so far, then the exit code
        bar.close()
        counted = getattr(stop, "per_file", None)
        if counted:
            _emit(merge_stats([f.stats for f in counted]), counted, args)
        raise
    bar.close()
    merged = merge_stats([f.stats for f in per_file])
    errors = [f.error for f in per_file if f.error is not None]
    if any(f.stats.format for f in per_file):
        _emit(merged, per_file, args)
    for error in errors[1:]:
        print("scapy-geneve stats: error: %s" % error, file=sys.stderr)
    if errors:
        raise errors[0]
    return 0


def _emit(stats: ScanStats, per_file: List[FileStats], args: argparse.Namespace) -> None:
    data = to_dict(stats, per_file)
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_text(data, stats, args.top, args.utc))
    sys.stdout.flush()


__all__ = ["register", "run", "format_text", "to_dict", "plural", "date_text"]
