"""``scapy-geneve filter IN... OUT``: copy the packets that match, byte for byte.

OUT's format is ``-F``, else OUT's name (.pcap, .pcapng, with .gz for gzip),
else the first input's.  Where an input already has that format its records
are copied as they are in the file (timestamps, lengths, pcapng options and
other blocks included).  Otherwise the matching packets are rewritten: a pcap
input becomes a pcapng section with one interface of the file's link type,
snaplen and resolution; pcapng packets written to a pcap keep their bytes,
lengths and times (a pcap holds one link type and one resolution: a packet
that does not fit is refused, naming it).  Several inputs (globs too) are
written one after the other, in order; ``--jobs N`` filters N at once with the
same result.
"""

import argparse
import contextlib
import gzip
import io
import mmap
import os
import shutil
import sys
import tempfile
from typing import IO, Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from scapy_geneve.capture.ordered import in_turns, Outcome, turn_writer
from scapy_geneve.capture.parallel import expand_inputs, input_bytes, map_files, workers_fork
from scapy_geneve.capture.pcapio import MAX_SNAPLEN, PcapngWriter, PcapWriter, iter_records, open_capture
from scapy_geneve.capture.scan import PacketFilter, filter_capture
from scapy_geneve.cli import _options
from scapy_geneve.cli._common import capture_output, plural, Progress, through_temporary, writes_directly
from scapy_geneve.errors import CaptureError

PCAP_HEADER_LEN = 24


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "filter",
        help="write the packets that match to a new capture",
        description=__doc__.split("\n\n", 1)[1].replace("``", "") + "  OUT is written "
        "atomically and is never an input.",
    )
    parser.add_argument(
        "files",
        nargs="*",
        metavar="IN... OUT",
        help="capture files or globs to read (- reads standard input), then "
        "the capture to write (- writes standard output)",
    )
    parser.add_argument(
        "-r",
        dest="read_files",
        action="append",
        default=[],
        metavar="FILE",
        help="read FILE (as a positional IN; repeatable)",
    )
    parser.add_argument("-w", dest="write_file", metavar="FILE", help="write FILE (the positional OUT)")
    _options.add_format_option(parser)
    _options.add_selection_options(parser)
    parser.add_argument(
        "--keep-partial",
        action="store_true",
        help="if an input is damaged part-way, still write the packets that "
        "matched before the damage (exit code stays 2)",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_options.positive_int,
        default=1,
        metavar="N",
        help="filter N inputs at once in N processes (same output)",
    )
    _options.add_quiet_option(parser)
    _options.add_decoding_options(parser)
    parser.set_defaults(func=run)


# -- what each input becomes ---------------------------------------------------------------
class PcapOut(NamedTuple):
    """A pcap output's global header: byte order, nanosecond times, link type, snaplen."""

    endian: str
    nanosecond: bool
    linktype: int
    snaplen: int


class Piece(NamedTuple):
    """One input and how it reaches OUT."""

    path: str
    target: str  # "pcap" or "pcapng"
    pcap: Optional[PcapOut]  # the pcap output's header (target "pcap")
    header: bool  # this piece starts the pcap output: write its header


def _peek(path: str) -> Tuple[str, PcapOut]:
    """The format of a capture and, as a pcap header, what it holds (for a pcapng:
    its first packet's link type, nanoseconds, little endian)."""
    with open_capture(path) as reader:
        if reader.format == "pcap":
            return "pcap", PcapOut(
                reader.endian, bool(reader.nanosecond), reader.linktype, reader.snaplen or MAX_SNAPLEN
            )
        first = next(reader.records(), None)
        return "pcapng", PcapOut("<", True, -1 if first is None else first.linktype, MAX_SNAPLEN)


def pieces(paths: Sequence[str], chosen: Optional[str]) -> List[Piece]:
    """The pieces of OUT: each input, the output format, the pcap header to write."""
    if list(paths) == ["-"]:  # standard input is read once: it tells its format as it goes
        return [Piece("-", chosen or "", None, True)]
    peeks = [_peek(path) for path in paths]
    target = chosen or peeks[0][0]
    pcap = peeks[0][1] if target == "pcap" else None
    return [Piece(path, target, pcap, k == 0) for k, path in enumerate(paths)]


# -- writing one piece ---------------------------------------------------------------------
class _Skip:
    """A binary stream that drops the first SKIP bytes written to it (a pcap header)."""

    def __init__(self, out: IO[bytes], skip: int) -> None:
        self.out, self.skip = out, skip

    def write(self, data: Any) -> int:
        view = memoryview(data)
        cut = min(self.skip, len(view))
        self.skip -= cut
        if len(view) > cut:
            self.out.write(view[cut:])
        return len(view)

    def flush(self) -> None:
        self.out.flush()


def _copies_as_is(piece: Piece, fmt: str, found: PcapOut) -> bool:
    if fmt != piece.target:
        return False
    if fmt == "pcapng" or piece.pcap is None:
        return True
    return found[:3] == piece.pcap[:3]  # same byte order, resolution and link type


def write_piece(
    piece: Piece,
    out: IO[bytes],
    pfilter: PacketFilter,
    kwargs: Dict[str, Any],
    counts: List[int],
    progress: Any = None,
) -> None:
    """The packets of one input that match, onto OUT, as PIECE says.

    ``counts`` gets [packets read, written, not examined] added as it goes; a
    damaged input raises CaptureError after what it matched was written.
    """
    if piece.path == "-" and not piece.target:  # as it comes: live pipelines stay live
        _filter(piece.path, out, pfilter, kwargs, counts, progress)
        return
    fmt, found = ("", PcapOut("<", True, 0, 0)) if piece.path == "-" else _peek(piece.path)
    if piece.path != "-" and _copies_as_is(piece, fmt, found):
        target = out if piece.header or piece.target != "pcap" else _Skip(out, PCAP_HEADER_LEN)
        _filter(piece.path, target, pfilter, kwargs, counts, progress)
        return
    # Standard input, or another format: filter as is into a temporary file, then rewrite.
    with tempfile.NamedTemporaryFile(prefix="scapy-geneve-filter.", suffix=".cap") as tmp:
        error: Optional[CaptureError] = None
        try:
            _filter(piece.path, tmp, pfilter, kwargs, counts, progress)
        except CaptureError as exc:
            error = exc
        tmp.flush()
        if os.path.getsize(tmp.name):
            _rewrite(tmp.name, piece, out)
        if error is not None:
            raise error


def _filter(
    path: str, out: Any, pfilter: PacketFilter, kwargs: Dict[str, Any], counts: List[int], progress: Any
) -> None:
    partial = [0, 0, 0]
    try:
        filter_capture(path, out, pfilter, progress=progress, counts=partial, **kwargs)
    finally:
        for k in range(3):
            counts[k] += partial[k]


def _rewrite(path: str, piece: Piece, out: IO[bytes]) -> None:
    """The packets of the capture at PATH (already filtered) in PIECE's format."""
    fmt, found = _peek(path)
    target = piece.target or fmt
    if target == fmt and (fmt == "pcapng" or piece.pcap is None or found[:3] == piece.pcap[:3]):
        with open(path, "rb") as handle:
            if not piece.header and fmt == "pcap":
                handle.seek(PCAP_HEADER_LEN)
            shutil.copyfileobj(handle, out)
        return
    if target == "pcapng":
        writer = PcapngWriter(out)
        writer.add_interface(found.linktype, found.snaplen, tsresol=9 if found.nanosecond else 6)
        for rec in iter_records(path):
            writer.write(rec.data, rec.ts_ns or 0, 0, rec.wirelen)
        return
    pcap = piece.pcap or found
    sink: Any = out if piece.header else _Skip(out, PCAP_HEADER_LEN)
    pwriter = PcapWriter(
        sink, pcap.linktype, nanosecond=pcap.nanosecond, snaplen=pcap.snaplen, endian=pcap.endian
    )
    for rec in iter_records(path):
        _fits_pcap(rec, pcap, piece.path)
        pwriter.write(rec.data, rec.ts_ns or 0, rec.wirelen)


def _fits_pcap(rec: Any, pcap: PcapOut, source: str) -> None:
    if rec.linktype != pcap.linktype:
        raise CaptureError(
            "a pcap holds one link type: this packet's is %d, the output's %d "
            "(write pcapng: -F pcapng)" % (rec.linktype, pcap.linktype),
            path=source,
            packet=rec.number,
        )
    if not pcap.nanosecond and rec.ts_ns is not None and rec.ts_ns % 1000:
        raise CaptureError(
            "this packet's time has nanoseconds and the output pcap keeps "
            "microseconds (write pcapng: -F pcapng)",
            path=source,
            packet=rec.number,
        )


# -- many inputs: here, or in worker processes ------------------------------------------------
def _piece_to_file(
    piece: Piece, pfilter: PacketFilter, kwargs: Dict[str, Any], directory: str
) -> Tuple[str, List[int], Optional[CaptureError]]:
    """(worker) One piece into a temporary file in DIRECTORY."""
    fd, tmp = tempfile.mkstemp(prefix="piece.", dir=directory)
    counts = [0, 0, 0]
    error = None
    with os.fdopen(fd, "wb") as handle:
        try:
            write_piece(piece, handle, pfilter, kwargs, counts)
        except CaptureError as exc:
            error = exc
    return tmp, counts, error


def _run_pieces(
    plan: List[Piece],
    out: IO[bytes],
    args: argparse.Namespace,
    pfilter: PacketFilter,
    kwargs: Dict[str, Any],
    bar: Progress,
    counts: List[int],
) -> List[CaptureError]:
    """Every piece onto OUT in order; returns the errors of damaged inputs."""
    errors: List[CaptureError] = []
    if args.jobs <= 1 or len(plan) <= 1:
        done = 0
        for piece in plan:

            def progress(read: int, _packets: int, before: int = done) -> None:
                bar.update(before + read)

            try:
                write_piece(piece, out, pfilter, kwargs, counts, progress)
            except CaptureError as exc:
                errors.append(exc)
                if not args.keep_partial:
                    return errors
            done += _size(piece.path)
        return errors
    if type(out) is io.BufferedWriter and through_temporary(args.output_path) and workers_fork():
        return _run_in_turns(plan, out, args, (pfilter, kwargs), bar, counts)
    directory = tempfile.mkdtemp(prefix=".filter.", dir=_near(args))
    ours = through_temporary(args.output_path)  # our temporary file, synced at the end
    try:
        done = 0
        for tmp, part, error in map_files(_piece_to_file, plan, args.jobs, (pfilter, kwargs, directory)):
            _append(tmp, out)
            if ours:
                _start_writeback(out)
            os.unlink(tmp)
            for k in range(3):
                counts[k] += part[k]
            done += 1
            bar.update(done)
            if error is not None:
                errors.append(error)
                if not args.keep_partial:
                    return errors
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return errors


def _run_in_turns(
    plan: List[Piece],
    out: IO[bytes],
    args: argparse.Namespace,
    how: Tuple[PacketFilter, Dict[str, Any]],
    bar: Progress,
    counts: List[int],
) -> List[CaptureError]:
    """Every piece onto OUT, our temporary output file, in order: the workers write
    their pieces into it in place, each in its turn (:func:`capture.ordered.in_turns`).
    What the pieces whose results came back wrote is kept (after a stop too)."""
    errors: List[CaptureError] = []
    pieces_written = in_turns(_piece_in_turn, plan, args.jobs, how, out, _near(args), ahead=args.jobs)
    with contextlib.closing(pieces_written):
        for index, (end, (part, error)) in enumerate(pieces_written):
            _start_writeback(out, end)
            for k in range(3):
                counts[k] += part[k]
            bar.update(index + 1)
            if error is not None:
                errors.append(error)
                if not args.keep_partial:
                    return errors
    return errors


def _piece_in_turn(
    item: Tuple[int, Piece], pfilter: PacketFilter, kwargs: Dict[str, Any], directory: str
) -> Tuple[Outcome, List[int], Optional[CaptureError]]:
    """(worker) Piece INDEX written into the output in its turn (held until then)."""
    index, piece = item
    raw, out = turn_writer(index, directory)
    counts = [0, 0, 0]
    error = None
    try:
        write_piece(piece, out, pfilter, kwargs, counts)
    except CaptureError as exc:
        error = exc
    out.flush()
    return raw.finish(), counts, error


def _start_writeback(out: IO[bytes], end: Optional[int] = None) -> None:
    """Start writing the whole pages OUT holds to disk now, without waiting for them
    (Linux's POSIX_FADV_DONTNEED on a file starts the writeback of its dirty pages in
    the range): the fsync at the end then finds most of the output written while later
    pieces were filtered, instead of writing all of it after the last one.  Only for the
    temporary file the output is written through (not a file of the user's: the advice
    also drops its pages from the cache); the last partial page waits for the next call.
    END: where the output ends, when others write it (default: OUT's position)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None or type(out) is not io.BufferedWriter:
        return
    try:
        out.flush()
        end = out.tell() if end is None else end
        whole = end - end % mmap.PAGESIZE
        if whole:  # a length of 0 would mean "to the end of the file"
            advise(out.fileno(), 0, whole, os.POSIX_FADV_DONTNEED)
    except OSError:  # nothing to write back here
        pass


def _append(path: str, out: IO[bytes]) -> None:
    """PATH's bytes onto OUT: by the kernel (sendfile, no copy through Python) when
    OUT is a plain buffered file or standard output, else read and written."""
    with open(path, "rb") as handle:
        sent = 0
        if type(out) is io.BufferedWriter:  # not gzip's or a live pipe's wrapper
            out.flush()
            sent = _sendfile(out.fileno(), handle.fileno())
        handle.seek(sent)
        shutil.copyfileobj(handle, out)


def _sendfile(out_fd: int, in_fd: int) -> int:
    """Bytes of IN_FD sent to OUT_FD from offset 0 (where it stopped, if it could not go on)."""
    size, sent = os.fstat(in_fd).st_size, 0
    try:
        while sent < size:
            done = os.sendfile(out_fd, in_fd, sent, size - sent)
            if not done:
                break
            sent += done
    except OSError:  # a descriptor sendfile cannot write to: the rest is copied by hand
        pass
    return sent


def _near(args: argparse.Namespace) -> str:
    out = args.output_path
    return (
        tempfile.gettempdir() if out == "-" or writes_directly(out) else os.path.dirname(os.path.abspath(out))
    )


def _size(path: str) -> int:
    try:
        return 0 if path == "-" else os.path.getsize(path)
    except OSError:
        return 0


@contextlib.contextmanager
def _maybe_gzip(out: IO[bytes], compress: bool) -> Iterator[IO[bytes]]:
    if not compress:
        yield out
        return
    with gzip.GzipFile(fileobj=out, mode="wb") as packed:
        yield packed  # type: ignore[misc]


def _in_out(args: argparse.Namespace) -> Tuple[List[str], str]:
    files = list(args.files)
    if args.write_file is not None:
        out = args.write_file
    elif files:
        out = files.pop()
    else:
        _options.usage_error(args, "no output: give IN... OUT or -w FILE")
    patterns = files + list(args.read_files)
    if not patterns:
        _options.usage_error(args, "no input: give IN... OUT or -r FILE (- reads standard input)")
    return expand_inputs(patterns), out


def run(args: argparse.Namespace) -> int:
    pfilter = _options.packet_filter(args)
    paths, args.output_path = _in_out(args)
    chosen = _options.output_format(args, args.output_path)
    kwargs = _options.scan_kwargs(args)
    plan = pieces(paths, chosen.format)
    total = len(plan) if args.jobs > 1 and len(plan) > 1 else input_bytes(paths)
    bar = Progress(total, "filter", args.quiet)
    counts = [0, 0, 0]
    errors: List[CaptureError] = []
    with capture_output(args.output_path, *paths) as raw:
        with _maybe_gzip(raw, chosen.gzip) as out:
            errors = _run_pieces(plan, out, args, pfilter, kwargs, bar, counts)
        if errors and not args.keep_partial and not writes_directly(args.output_path):
            bar.close()
            print(
                "scapy-geneve filter: %s read, %d matched before the damage; %s not written "
                "(use --keep-partial to keep them)"
                % (plural(counts[0], "packet"), counts[1], args.output_path),
                file=sys.stderr,
            )
            raise errors[0]
    bar.close()
    _summary(args, counts, errors)
    if errors:
        raise errors[0]
    return 0


def _summary(args: argparse.Namespace, counts: List[int], errors: List[CaptureError]) -> None:
    if args.quiet:
        return
    print(
        "scapy-geneve filter: %d of %s written to %s"
        % (counts[1], plural(counts[0], "packet"), args.output_path),
        file=sys.stderr,
    )
    if counts[2]:
        print(
            "scapy-geneve filter: %s %s not examined (pcapng interfaces of link types "
            "scan cannot read); they match only an empty or --invert selection"
            % (plural(counts[2], "packet"), "was" if counts[2] == 1 else "were"),
            file=sys.stderr,
        )
    for error in errors[1:]:
        print("scapy-geneve filter: error: %s" % error, file=sys.stderr)


__all__ = ["register", "run", "pieces", "write_piece", "Piece", "PcapOut"]
