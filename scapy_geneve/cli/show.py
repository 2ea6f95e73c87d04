"""``scapy-geneve show [IN]``: one line per packet from the wire decoder, as tcpdump does.

Lines come from :mod:`scapy_geneve.capture.decode` and
:mod:`scapy_geneve.capture.summary` (no Scapy); ``--detail`` dissects with Scapy
and prints its ``show()``.  ``--json`` writes JSON lines, ``-T fields -e NAME``
and ``-T csv`` columns (names: ``--list-fields``).

Input: IN or ``-r FILE``; ``-`` or no IN with standard input not a terminal
reads standard input (a live pipe: each line is printed as its packet
arrives); no IN at a terminal shows the bundled sample capture and says so.
"""

import argparse
import contextlib
import csv
import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from scapy_geneve.capture import pcapio
from scapy_geneve.capture.decode import DecodeState, decode
from scapy_geneve.capture.summary import FIELDS, FastSummarizer, Summarizer
from scapy_geneve.cli import _options

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample.pcap"
CHUNK_LINES = 2048  # lines written at once when nobody watches them arrive
# What a batch's ts_ns holds for a packet without a timestamp (a pcapng Simple Packet
# Block): pcapio's marker, which Batch.records() turns into None.
NO_TIMESTAMP = pcapio.NO_TIMESTAMP


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "show",
        help="one line per packet (tcpdump-like), JSON lines, fields, or --detail",
        description="One line per packet: time, outer addresses and ports, the tunnel "
        "(kind, identifier, flags, Geneve options with their IANA names and "
        "typed fields), the inner packet as tcpdump prints it, and why a packet "
        "is malformed.  Decoded without Scapy; --detail uses Scapy's show().  "
        "Without IN: standard input when it is not a terminal, else the bundled "
        "sample capture.",
    )
    _options.add_input(p, "capture file (pcap or pcapng, gzip too); - reads standard input", optional=True)
    out = p.add_argument_group("output")
    out.add_argument("--detail", action="store_true", help="Scapy's show() of every packet")
    out.add_argument(
        "--json", action="store_true", help="JSON lines: every field of the one-liner, options in full"
    )
    out.add_argument(
        "-T",
        dest="output_type",
        choices=("text", "fields", "csv", "json"),
        default="text",
        help="text (default), fields (with -e, as tshark), csv (with -e, or every field), json (as --json)",
    )
    out.add_argument(
        "-e",
        dest="fields",
        action="append",
        default=[],
        metavar="FIELD",
        help="a field for -T fields / -T csv (repeat; see --list-fields)",
    )
    out.add_argument(
        "-E",
        dest="field_opts",
        action="append",
        default=[],
        metavar="OPT",
        help="-T fields options as tshark: separator=C (default tab), header=y|n, quote=d|n",
    )
    out.add_argument(
        "--list-fields", action="store_true", help="list the field names of -e / --json and exit"
    )
    _options.add_count_option(p)
    _options.add_numeric_option(p)
    _options.add_time_options(p)
    _options.add_quiet_option(p)
    _options.add_selection_options(p)
    _options.add_decoding_options(p)
    p.set_defaults(func=run)


# -- input ------------------------------------------------------------------------------
def input_choice(args: argparse.Namespace, stdin: Optional[IO[Any]] = None) -> str:
    """The path to read: IN / -r, else standard input if something is piped or
    redirected into it, else (a terminal, /dev/null, no stdin) the bundled sample,
    said on stderr unless -q."""
    path = _options.input_path(args)
    if path is not None:
        return path
    stdin = sys.stdin if stdin is None else stdin
    if stdin is not None and not stdin.closed and _piped(stdin):
        return "-"
    if not args.quiet:
        print("scapy-geneve show: no capture given; showing the bundled sample %s" % SAMPLE, file=sys.stderr)
    return str(SAMPLE)


def _piped(stream: IO[Any]) -> bool:
    """A pipe, FIFO, socket or regular file: not a terminal or another device."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def _records(path: str, args: argparse.Namespace) -> Iterator[pcapio.Record]:
    if not _options.selecting(args):  # the scan (numpy) only for a selection
        with pcapio.open_capture(path) as reader:
            yield from reader.records()
        return
    from scapy_geneve.capture.scan import matching_records

    pfilter = _options.packet_filter(args)
    yield from matching_records(path, pfilter, **_options.scan_kwargs(args))


def _live(path: str) -> bool:
    """Input that arrives over time (a pipe or a terminal, not a regular file)."""
    if path != "-":
        return False
    try:
        return not stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return True


def _watched(stream: IO[str]) -> bool:
    """Someone reads the output as it comes (a terminal or a pipe, not a file)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
        return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False


# -- output ---------------------------------------------------------------------------------
class _Writer:
    """Lines to OUT in chunks; every line at once when the input is live and watched."""

    def __init__(self, out: IO[str], per_line: bool) -> None:
        self.out, self.per_line = out, per_line
        self.pending: List[str] = []

    def __call__(self, line: str) -> None:
        self.pending.append(line)
        if self.per_line or len(self.pending) >= CHUNK_LINES:
            self.flush()

    def extend(self, lines: List[str]) -> None:
        """Many lines at once (written now: a batch of the reader is thousands of lines)."""
        if lines:
            self.pending.extend(lines)
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.pending.append("")
            self.out.write("\n".join(self.pending))
            self.pending = []
        if self.per_line:
            self.out.flush()


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(_field_text(v) for v in value)
    return str(value)


def _fields_line(values: Dict[str, Any], names: List[str], sep: str, quote: bool) -> str:
    cells = []
    for name in names:
        if name == "options":
            text = values["summary_options"]
        elif name == "option.class":
            text = ",".join("0x%04x" % o["class"] for o in values["options"])
        elif name == "option.type":
            text = ",".join("0x%02x" % o["type"] for o in values["options"])
        else:
            text = _field_text(values[name])
        cells.append('"%s"' % text.replace('"', '""') if quote else text)
    return sep.join(cells)


def _field_options(args: argparse.Namespace) -> Dict[str, str]:
    opts = {"separator": "\t", "header": "n", "quote": "n"}
    for item in args.field_opts:
        key, eq, value = item.partition("=")
        if not eq or key not in opts:
            _options.usage_error(args, "-E %s: expected separator=C, header=y|n or quote=d|n" % item)
        opts[key] = {"/t": "\t", "/s": " "}.get(value, value)
    return opts


def _check_fields(args: argparse.Namespace) -> List[str]:
    unknown = [name for name in args.fields if name not in FIELDS]
    if unknown:
        _options.usage_error(args, "unknown field %s (see show --list-fields)" % ", ".join(unknown))
    if args.output_type == "fields" and not args.fields:
        _options.usage_error(args, "-T fields needs at least one -e FIELD")
    return list(args.fields) or list(FIELDS)


# -- the passes -------------------------------------------------------------------------------
Emit = Callable[[pcapio.Record, Any], None]


def _text_lines(args: argparse.Namespace, path: str, write: "_Writer") -> None:
    """The one-liners: :class:`FastSummarizer` on each frame where the reader put it."""
    summarize = FastSummarizer(args.numeric, **_options.scan_kwargs(args))
    stamp, left = _options.time_format(args), args.count
    line_at, timed, no_ts = summarize.line_at, stamp.mode != 1, NO_TIMESTAMP
    for buf, first, data_off, caplen, wirelen, ts_ns, linktype in _frames(path, args):
        n = len(data_off) if left is None else min(left, len(data_off))
        lines: List[str] = []
        add = write if write.per_line else lines.append
        if timed:
            clock = stamp.format
            for i in range(n):
                ts = ts_ns[i]
                add(
                    "%5d  %s  %s"
                    % (
                        first + i,
                        clock(None if ts == no_ts else ts),
                        line_at(buf, data_off[i], caplen[i], linktype[i], wirelen[i]),
                    )
                )
        else:
            for i in range(n):
                add("%5d  %s" % (first + i, line_at(buf, data_off[i], caplen[i], linktype[i], wirelen[i])))
        write.extend(lines)
        if left is not None:
            left -= n
            if not left:
                return


Frames = Tuple[bytes, int, Any, Any, Any, Any, Any]


def _frames(path: str, args: argparse.Namespace) -> Iterator[Frames]:
    """(buffer, first packet number, data offsets, caplens, wirelens, times, link types)
    per batch of the reader; with a selection, the chosen records one by one."""
    if not _options.selecting(args):
        with pcapio.open_capture(path) as reader:
            for batch in reader.batches():
                data_off, _ends, caplen, wirelen, ts_ns, linktype, _iface = batch.fields
                yield (bytes(batch.buf), batch.first, data_off, caplen, wirelen, ts_ns, linktype)
        return
    for rec in _records(path, args):
        ts = NO_TIMESTAMP if rec.ts_ns is None else rec.ts_ns
        yield rec.data, rec.number, (0,), (rec.caplen,), (rec.wirelen,), (ts,), (rec.linktype,)


def _values(summarize: Summarizer, record: pcapio.Record, dec: Any) -> Dict[str, Any]:
    values = summarize.fields(dec, record.data, record.number, record.ts_ns)
    values["summary_options"] = summarize.options(dec, record.data)
    return values


def _json_pass(args: argparse.Namespace, write: Callable[[str], None]) -> Emit:
    summarize = Summarizer(numeric=True)

    def emit(record: pcapio.Record, dec: Any) -> None:
        values = _values(summarize, record, dec)
        del values["summary_options"]
        write(json.dumps(values, separators=(",", ":")))

    return emit


def _fields_pass(args: argparse.Namespace, write: Callable[[str], None]) -> Emit:
    names, summarize = _check_fields(args), Summarizer(numeric=True)
    if args.output_type == "csv":
        sep, quote, header = ",", False, True
    else:
        opts = _field_options(args)
        sep, quote, header = opts["separator"], opts["quote"] == "d", opts["header"] == "y"
    if args.output_type == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="")

        def row(cells: Iterable[str]) -> str:
            buf.seek(0)
            buf.truncate()
            writer.writerow(cells)
            return buf.getvalue()

        write(row(names))

        def emit_csv(record: pcapio.Record, dec: Any) -> None:
            values = _values(summarize, record, dec)
            write(row(_fields_line(values, [n], "", False) for n in names))

        return emit_csv
    if header:
        write(sep.join(names))

    def emit(record: pcapio.Record, dec: Any) -> None:
        write(_fields_line(_values(summarize, record, dec), names, sep, quote))

    return emit


def run(args: argparse.Namespace) -> int:
    if args.list_fields:
        for name, meaning in FIELDS.items():
            print("%-16s %s" % (name, meaning))
        return 0
    if args.json:
        args.output_type = "json"
    path = input_choice(args)
    if args.detail:
        return _detail_pass(args, _records(path, args), sys.stdout)
    out = sys.stdout
    write = _Writer(out, _live(path) and _watched(out))
    try:
        if args.output_type == "text":
            _text_lines(args, path, write)
        else:
            _machine_lines(args, _records(path, args), write)
    finally:  # an error or a signal: what was decoded is printed first
        write.flush()
    return 0


def _machine_lines(
    args: argparse.Namespace, records: Iterable[pcapio.Record], write: Callable[[str], None]
) -> None:
    """JSON lines, fields or CSV: every packet through the decoder."""
    emit = (_json_pass if args.output_type == "json" else _fields_pass)(args, write)
    kwargs = _options.scan_kwargs(args)
    state = DecodeState()
    for shown, record in enumerate(records):
        if args.count is not None and shown >= args.count:
            break
        emit(
            record,
            decode(
                record.data,
                record.linktype,
                kwargs["ports"],
                kwargs["l2tp_cookie"],
                kwargs["l2tp_l2ss"],
                state,
                record.wirelen,
            ),
        )


# -- --detail: Scapy's dissection -------------------------------------------------------------
def dissect(record: pcapio.Record) -> Any:
    """The record as a Scapy packet of its link type (Raw if Scapy has none)."""
    from scapy.config import conf

    cls = conf.l2types.num2layer.get(record.linktype, conf.raw_layer)
    pkt = cls(record.data)
    if record.ts_ns is not None:
        pkt.time = record.ts_ns / 1e9
    pkt.wirelen = record.wirelen
    return pkt


def load_payload_contribs() -> None:
    """Scapy's MPLS and NSH live in contrib: load them so Geneve payloads of
    those EtherTypes dissect (kept out of ``import scapy_geneve``: NSH
    imports all of Scapy)."""
    from scapy.main import load_contrib

    for name in ("mpls", "nsh"):
        load_contrib(name)


@contextlib.contextmanager
def dissect_extra_ports(geneve_ports: Iterable[int], vxlan_ports: Iterable[int]) -> Iterator[None]:
    """Let Scapy dissect extra Geneve/VXLAN UDP destination ports; undone
    afterwards (ports Scapy already binds are left alone)."""
    from scapy.layers.inet import UDP
    from scapy.layers.vxlan import VXLAN
    from scapy.packet import bind_bottom_up, split_bottom_up

    from scapy_geneve.layers import Geneve

    added = []
    for cls, ports in ((Geneve, geneve_ports), (VXLAN, vxlan_ports)):
        for port in sorted(set(ports)):
            if any(c is cls and params == {"dport": port} for params, c in UDP.payload_guess):
                continue
            bind_bottom_up(UDP, cls, dport=port)
            added.append((cls, port))
    try:
        yield
    finally:
        for cls, port in added:
            split_bottom_up(UDP, cls, dport=port)


def _detail_pass(args: argparse.Namespace, records: Iterable[pcapio.Record], out: IO[str]) -> int:
    import scapy_geneve._api  # noqa: F401  (every layer and hook, before the contribs, as at import)

    load_payload_contribs()
    ports, stamp = _options.ports(args), _options.time_format(args)
    with dissect_extra_ports(ports.geneve, ports.vxlan | ports.gpe):
        for shown, record in enumerate(records):
            if args.count is not None and shown >= args.count:
                break
            text = dissect(record).show(dump=True) or ""
            out.write(
                "#%d  %s  %d bytes\n%s\n" % (record.number, stamp(record.ts_ns) or "-", record.caplen, text)
            )
            out.flush()
    return 0
