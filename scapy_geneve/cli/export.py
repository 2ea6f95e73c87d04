"""``scapy-geneve export PCAP... -o OUT``: captures as a table (Parquet, Arrow, CSV, JSON lines).

One row per packet, the columns of :mod:`scapy_geneve.capture.columnar`.  The
format comes from ``-F`` or OUT's name; OUT is written atomically (a temporary
file beside it, renamed at the end; never over an input) and streamed: memory
does not grow with the captures.  ``--jobs N`` scans N files at once.

OUT ending in ``/`` (or an existing directory) is a directory: one table per
input, named after it (``a.pcap.gz`` -> ``a.parquet``), each written
atomically by the process that scans it, so ``--jobs N`` encodes N files at
once.  A damaged input leaves no file behind and does not stop the others.
"""

import argparse
import contextlib
import errno
import io
import json
import os
import shutil
import stat
import sys
import tempfile
from typing import (
    IO,
    Any,
    Callable,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
)

from scapy_geneve.capture.interrupt import shielded, Stopped
from scapy_geneve.capture import parquet_join
from scapy_geneve.capture.ordered import in_turns, Outcome, turn_writer
from scapy_geneve.capture.parallel import (
    expand_inputs,
    input_bytes,
    map_files,
    workers_fork,
)
from scapy_geneve.cli import _options
from scapy_geneve.cli._common import (
    atomic_output,
    check_not_input,
    Interrupted,
    NAME_MAX,
    plural,
    Progress,
    through_temporary,
)
from scapy_geneve.errors import CaptureError

FORMATS = ("parquet", "arrow", "csv", "jsonl")
_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
ROW_GROUP = 128 * 1024  # Parquet rows per row group (written as they fill)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write captures as Parquet, Arrow/Feather, CSV or JSON lines",
        description="One row per packet (number, time, lengths, outer addresses and ports, "
        "encapsulation, identifier, flags, Geneve options with their data, "
        "inner 5-tuple and TCP flags, malformed reason, source file) from one "
        "or more captures (globs too) into a table for pandas, polars, DuckDB, "
        "Spark or Dask.  OUT that ends in / (or is a directory) gets one table per "
        "input, named after it (a.pcap and a.pcap.gz -> a.parquet; names that collide "
        "get -2, -3... in input order), in the format of -F (default parquet); the "
        "directory is created if missing, and DuckDB reads it as one table with "
        "read_parquet('DIR/*.parquet').  Each file is written whole or not at all: a "
        "damaged input leaves no file, the others are still written, and the exit "
        "status is 2.  Needs the analytics extra: pip install "
        "'scapy-geneve[analytics]'.",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="PCAP",
        help="capture files (pcap or pcapng, gzip too) or globs ('captures/*.pcap'); - reads standard input",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="table to write (- writes standard output), or a directory (DIR/): one table per input",
    )
    parser.add_argument(
        "-F",
        dest="table_format",
        choices=FORMATS,
        help="output format (default: by OUT's name: .parquet, .arrow/.feather, .csv, .jsonl; "
        "parquet for a directory)",
    )
    parser.add_argument(
        "--columns", metavar="A,B,...", help="only these columns, in this order (default: all)"
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_options.positive_int,
        default=1,
        metavar="N",
        help="scan N files at once in N processes (default 1); with a directory OUT, "
        "each process also encodes its files",
    )
    _options.add_quiet_option(parser)
    _options.add_decoding_options(parser)
    parser.set_defaults(func=run)


def table_format(args: argparse.Namespace) -> str:
    """``-F``, else parquet for a directory OUT, else OUT's suffix; exit 2 when none says."""
    if args.table_format:
        return str(args.table_format)
    if args.output != "-" and is_directory(args.output):
        return "parquet"
    chosen = _SUFFIXES.get(os.path.splitext(args.output)[1].lower())
    if chosen is None:
        _options.usage_error(
            args,
            "cannot tell the format from %r: name it .parquet, "
            ".arrow, .feather, .csv or .jsonl, or give -F %s" % (args.output, "|".join(FORMATS)),
        )
    return chosen


def _columns(args: argparse.Namespace) -> Optional[List[str]]:
    from scapy_geneve.capture.columnar import COLUMNS

    if not args.columns:
        return None
    chosen = [c.strip() for c in args.columns.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in COLUMNS]
    if unknown:
        _options.usage_error(
            args, "unknown column %s (columns: %s)" % (", ".join(unknown), ", ".join(COLUMNS))
        )
    return chosen


# -- table writers: open(handle, schema), write(batch), close() ------------------------------
#: Columns that grow packet by packet: nearly every value is new, so a dictionary only costs
#: time and bytes; they are delta-encoded instead (small steps, a few bits a row).
SEQUENCES = ("number", "offset", "timestamp")


def _leaves(name: str, arrow_type: Any) -> Iterator[str]:
    """The Parquet column paths under one Arrow field (lists as ``name.list.element``)."""
    import pyarrow as pa

    if pa.types.is_list(arrow_type):
        yield from _leaves(name + ".list.element", arrow_type.value_type)
    elif pa.types.is_struct(arrow_type):
        for field in arrow_type:
            yield from _leaves(name + "." + field.name, field.type)
    else:
        yield name


def parquet_options(schema: Any) -> Dict[str, Any]:
    """How the Parquet is encoded: zstd; a dictionary for every column but the
    SEQUENCES (nested option fields too), which are delta-encoded; statistics kept
    (DuckDB skips row groups by them).  On 100k-1M packets this writes in
    0.6-0.8x the time of zstd with a dictionary everywhere, in a file 28-40% smaller."""
    return {
        "compression": "zstd",
        "use_dictionary": [
            leaf
            for field in schema
            if field.name not in SEQUENCES
            for leaf in _leaves(field.name, field.type)
        ],
        "column_encoding": {name: "DELTA_BINARY_PACKED" for name in SEQUENCES if name in schema.names},
    }


class _Parquet:
    """Row groups of ROW_GROUP rows, written as they fill."""

    def __init__(self, pa: Any, handle: IO[bytes], schema: Any) -> None:
        import pyarrow.parquet as pq

        self.pa = pa
        self.writer = pq.ParquetWriter(handle, schema, **parquet_options(schema))
        self.pending: List[Any] = []
        self.rows = 0

    def write(self, batch: Any) -> None:
        self.pending.append(batch)
        self.rows += batch.num_rows
        if self.rows >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        """Write the rows gathered so far as a row group."""
        if self.pending:
            self.writer.write_table(
                self.pa.Table.from_batches(self.pending), row_group_size=max(self.rows, 1)
            )
        self.pending, self.rows = [], 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


class _Arrow:
    """The Arrow IPC file format (Feather v2)."""

    def __init__(self, pa: Any, handle: IO[bytes], schema: Any) -> None:
        self.writer = pa.ipc.new_file(handle, schema)

    def write(self, batch: Any) -> None:
        self.writer.write_batch(batch)

    def close(self) -> None:
        self.writer.close()


def _text_value(value: Any) -> Any:
    """A cell for CSV / JSON: bytes as hex, times in ISO 8601."""
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list):
        return [_text_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _text_value(v) for k, v in value.items()}
    return value


class _Csv:
    """CSV with a header row; nested columns (vlans, options) as JSON text."""

    def __init__(self, pa: Any, handle: IO[bytes], schema: Any) -> None:
        import pyarrow.csv as pcsv

        self.pa = pa
        self.nested = [
            i
            for i, field in enumerate(schema)
            if pa.types.is_list(field.type) or pa.types.is_binary(field.type)
        ]
        fields = [pa.field(f.name, pa.string()) if i in self.nested else f for i, f in enumerate(schema)]
        self.schema = pa.schema(fields)
        self.writer = pcsv.CSVWriter(handle, self.schema)

    def write(self, batch: Any) -> None:
        arrays = list(batch.columns)
        for i in self.nested:
            arrays[i] = self.pa.array(
                [None if v is None else json.dumps(_text_value(v)) for v in arrays[i].to_pylist()],
                self.pa.string(),
            )
        self.writer.write_batch(self.pa.RecordBatch.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


class _JsonLines:
    """One JSON object per packet."""

    def __init__(self, pa: Any, handle: IO[bytes], schema: Any) -> None:
        self.handle = handle

    def write(self, batch: Any) -> None:
        lines = [json.dumps(_text_value(row), separators=(",", ":")) for row in batch.to_pylist()]
        if lines:
            self.handle.write(("\n".join(lines) + "\n").encode())

    def close(self) -> None:
        self.handle.flush()


_WRITERS: Dict[str, Any] = {"parquet": _Parquet, "arrow": _Arrow, "csv": _Csv, "jsonl": _JsonLines}


# -- scanning: here, or in worker processes through temporary Arrow streams ------------------
def _scan_to_stream(
    path: str, columns: Optional[List[str]], kwargs: Dict[str, Any], directory: str
) -> Tuple[str, int, Optional[CaptureError]]:
    """(worker) Scan PATH into an Arrow IPC stream file in DIRECTORY."""
    from scapy_geneve.capture.columnar import require_pyarrow, schema

    pa = require_pyarrow()
    fd, tmp = tempfile.mkstemp(prefix="part.", suffix=".arrows", dir=directory)
    with os.fdopen(fd, "wb") as handle, pa.ipc.new_stream(handle, schema(columns)) as writer:
        rows, error = _scan_into(writer.write_batch, path, columns, kwargs)
    return tmp, rows, error


def _scan_into(
    write: Callable[[Any], Any], path: str, columns: Optional[List[str]], kwargs: Dict[str, Any]
) -> Tuple[int, Optional[CaptureError]]:
    """(worker) PATH's record batches to WRITE: the rows written, and a damaged
    input's error (what came before the damage is written)."""
    from scapy_geneve.capture.columnar import scan_batches

    rows = 0
    try:
        for batch in scan_batches(path, columns, **kwargs):
            write(batch)
            rows += batch.num_rows
    except CaptureError as exc:
        return rows, exc
    return rows, None


def _batches_in_workers(
    paths: Sequence[str],
    columns: Optional[List[str]],
    kwargs: Dict[str, Any],
    jobs: int,
    near: str,
    errors: List[CaptureError],
) -> Iterator[Any]:
    """Each file scanned by a worker into a temporary stream beside OUT, read back in order."""
    from scapy_geneve.capture.columnar import require_pyarrow

    pa = require_pyarrow()
    directory = tempfile.mkdtemp(prefix=".export.", dir=near)
    work = (columns, kwargs, directory)
    try:
        for tmp, _rows, error in map_files(_scan_to_stream, paths, jobs, work):
            with pa.memory_map(tmp) as source:
                yield from pa.ipc.open_stream(source)
            os.unlink(tmp)
            if error is not None:
                errors.append(error)
                return
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# -- one Parquet file, encoded in the workers: each writes its part in place, in its turn ----
class _Part:
    """(worker) Where a worker's Parquet writer writes: the leading magic is dropped
    (the output has one), the chunk bytes go to OUT, and once :meth:`footer_next`
    is called the rest (the footer) is kept in :attr:`footer` for the parent."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.skip, self.pos = out, len(parquet_join.MAGIC), 0
        self.footer: Optional[bytearray] = None
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.pos += len(view)
        cut = min(self.skip, len(view))
        self.skip -= cut
        if self.footer is not None:
            self.footer += view[cut:]
        elif len(view) > cut:
            self.out.write(view[cut:])
        return len(view)

    def footer_next(self) -> None:
        self.footer = bytearray()

    def tell(self) -> int:
        return self.pos

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:  # the Parquet writer closes its sink: OUT stays open
        self.closed = True


def _part_in_turn(
    item: Tuple[int, str], columns: Optional[List[str]], kwargs: Dict[str, Any], directory: str
) -> Tuple[Outcome, bytes, int, Optional[CaptureError]]:
    """(worker) Input INDEX as Parquet: its chunk bytes into the output in its turn,
    its footer back to the parent."""
    from scapy_geneve.capture.columnar import require_pyarrow, schema

    index, path = item
    raw, buffered = turn_writer(index, directory)
    part = _Part(buffered)
    writer = _Parquet(require_pyarrow(), part, schema(columns))  # type: ignore[arg-type]
    rows, error = _scan_into(writer.write, path, columns, kwargs)
    writer.flush()
    part.flush()
    part.footer_next()
    writer.writer.close()
    footer = parquet_join.footer_of(bytes(part.footer or b""))
    return raw.finish(), footer, rows, error


def _parquet_in_turns(
    paths: Sequence[str],
    columns: Optional[List[str]],
    kwargs: Dict[str, Any],
    jobs: int,
    out: IO[bytes],
    near: str,
    bar: Progress,
    errors: List[CaptureError],
) -> int:
    """PATHS as one Parquet file on OUT (our temporary output file), each encoded by a
    worker: the workers write their row groups in place in input order
    (:mod:`capture.ordered`), the parent writes one footer for them all
    (:mod:`capture.parquet_join`).  A stop keeps the files finished before it."""
    out.write(parquet_join.MAGIC)
    end, starts, footers, rows, done = len(parquet_join.MAGIC), [], [], 0, 0
    # parts are small (compressed): the workers may run further ahead
    parts = in_turns(_part_in_turn, paths, jobs, (columns, kwargs), out, near, ahead=2 * jobs)
    try:
        with contextlib.closing(parts):
            for index, (part_end, (footer, count, error)) in enumerate(parts):
                starts.append(end)
                end = part_end
                footers.append(footer)
                rows += count
                done += os.path.getsize(paths[index])
                bar.update(done)
                if error is not None:
                    errors.append(error)
                    return rows
    finally:  # OUT now ends after the last part settled: its footer follows (after a stop too)
        with shielded():
            if footers or not errors:
                out.write(parquet_join.join_footers(footers, starts) if footers else _empty_footer(columns))
    return rows


def _empty_footer(columns: Optional[List[str]]) -> bytes:
    """The footer of a Parquet file of no rows, in SCHEMA(COLUMNS)."""
    from scapy_geneve.capture.columnar import require_pyarrow, schema

    pa = require_pyarrow()
    sink = pa.BufferOutputStream()
    _Parquet(pa, sink, schema(columns)).close()
    return bytes(sink.getvalue().to_pybytes()[len(parquet_join.MAGIC) :])


def _batches_here(
    paths: Sequence[str],
    columns: Optional[List[str]],
    kwargs: Dict[str, Any],
    bar: Progress,
    errors: List[CaptureError],
) -> Iterator[Any]:
    from scapy_geneve.capture.columnar import scan_batches

    done = 0
    for path in paths:
        try:

            def progress(read: int, _packets: int, before: int = done) -> None:
                bar.update(before + read)

            yield from scan_batches(path, columns, progress=progress, **kwargs)
        except CaptureError as exc:
            errors.append(exc)
            return
        done += 0 if path == "-" else os.path.getsize(path)


# -- directory output: one table per input, each written by the process that scans it ------
_EXTENSIONS = {"parquet": ".parquet", "arrow": ".arrow", "csv": ".csv", "jsonl": ".jsonl"}


def is_directory(output: str) -> bool:
    """OUT names a directory: it ends in a slash or is one."""
    return output.endswith(("/", os.sep)) or os.path.isdir(output)


def _stem(path: str) -> str:
    """The input's name without ``.gz`` and its capture suffix: ``a.pcap.gz`` -> ``a``."""
    name = os.path.basename(path)
    if name.lower().endswith(".gz") and len(name) > 3:
        name = name[:-3]
    return os.path.splitext(name)[0]


def output_names(paths: Sequence[str], extension: str) -> List[str]:
    """One file name per input, in input order: the input's stem and EXTENSION.

    A stem already given to an earlier input gets the first free ``-2``, ``-3``...
    that is not another input's own stem, so every name depends only on the
    list of inputs (case-insensitive file systems included).
    """
    stems = [_stem(path) for path in paths]
    own = {stem.casefold() for stem in stems}
    taken: Set[str] = set()
    names = []
    for stem in stems:
        chosen, n = stem, 1
        while chosen.casefold() in taken or (n > 1 and chosen.casefold() in own):
            n += 1
            chosen = "%s-%d" % (stem, n)
        taken.add(chosen.casefold())
        names.append(chosen + extension)
    return names


def _targets(directory: str, paths: Sequence[str], fmt: str) -> List[Tuple[str, str]]:
    """(input, table) pairs, checked before anything is written: every input is a
    file that exists, and every table a name the file system takes, not a
    directory and not one of the inputs."""
    for path in paths:
        if stat.S_ISDIR(os.stat(path).st_mode):  # FileNotFoundError names a missing one
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a capture", path)
    names = output_names(paths, _EXTENSIONS[fmt])
    pairs = [(path, os.path.join(directory, name)) for path, name in zip(paths, names)]
    for path, target in pairs:
        _check_target(target, path)
        check_not_input(target, *paths)
    return pairs


def _check_target(target: str, path: str) -> None:
    size = len(os.fsencode(os.path.basename(target)))
    if size > NAME_MAX:
        raise CaptureError(
            "file name too long for the table of %s (%d bytes; at most %d): rename the input, "
            "or give OUT a file name" % (path, size, NAME_MAX),
            path=target,
        )
    if os.path.isdir(target):
        raise CaptureError("is a directory, where the table of %s goes" % path, path=target)


def _make_directory(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise CaptureError("is not a directory (a directory OUT ends in /)", path=path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CaptureError("directory is not writable", path=path)


class FileResult(NamedTuple):
    """What became of one input: its rows, or why its table was not written."""

    rows: int
    error: Optional[CaptureError] = None  # damaged: no table
    stopped: Optional[int] = None  # the signal that stopped it: no table


def export_file(
    job: Tuple[str, str],
    fmt: str,
    columns: Optional[List[str]],
    kwargs: Dict[str, Any],
    progress: Optional[Callable[[int, int], None]] = None,
) -> FileResult:
    """(worker or here) JOB's input as a table at JOB's target: whole, or not at all.

    Returns (never raises) a damaged input's CaptureError and a stopping signal,
    so that a worker's answer always pickles and the other files go on.
    """
    from scapy_geneve.capture.columnar import scan_batches

    path, target = job
    try:
        with atomic_output(target, path) as handle:
            try:
                rows = _write_table(
                    fmt, handle, scan_batches(path, columns, progress=progress, **kwargs), columns
                )
            except Interrupted as stop:
                raise Stopped(stop.signum) from None  # atomic_output discards the table
    except CaptureError as exc:
        return FileResult(0, error=exc)
    except OSError as exc:  # unreadable input, full disk: this file, not the others
        return FileResult(0, error=CaptureError(exc.strerror or str(exc), path=exc.filename or path))
    except (Stopped, Interrupted) as stop:
        return FileResult(0, stopped=stop.signum)
    return FileResult(rows)


def _results(
    jobs: Sequence[Tuple[str, str]],
    fmt: str,
    columns: Optional[List[str]],
    kwargs: Dict[str, Any],
    processes: int,
    bar: Progress,
) -> Generator[FileResult, None, None]:
    """export_file for each of JOBS, in order: here, or in PROCESSES workers."""
    done = 0
    if processes > 1 and len(jobs) > 1:
        answers = map_files(export_file, jobs, processes, (fmt, columns, kwargs))
        with contextlib.closing(answers) as results:
            for (path, _target), result in zip(jobs, results):
                done += os.path.getsize(path)
                bar.update(done)
                yield result
        return
    for job in jobs:

        def progress(read: int, _packets: int, before: int = done) -> None:
            bar.update(before + read)

        yield export_file(job, fmt, columns, kwargs, progress)
        done += os.path.getsize(job[0])


class _Tally:
    rows = 0
    files = 0


def _export_directory(
    args: argparse.Namespace,
    fmt: str,
    columns: Optional[List[str]],
    paths: Sequence[str],
    bar: Progress,
    tally: _Tally,
) -> List[CaptureError]:
    """Every input as its own table in the directory OUT; the damaged inputs' errors."""
    jobs = _targets(args.output, paths, fmt)
    _make_directory(args.output)
    errors: List[CaptureError] = []
    results = _results(jobs, fmt, columns, _options.scan_kwargs(args), args.jobs, bar)
    with contextlib.closing(results):
        for result in results:
            if result.stopped is not None:
                raise Interrupted(result.stopped)
            if result.error is not None:
                errors.append(result.error)
                continue
            tally.rows += result.rows
            tally.files += 1
    return errors


def _all_errors(errors: Sequence[CaptureError]) -> CaptureError:
    """The first input's error, the others' after it (each names file and where)."""
    first = errors[0]
    if len(errors) == 1:
        return first
    others = "; ".join(str(exc) for exc in errors[1:])
    return CaptureError(
        "%s (also not written: %s)" % (first.message, others), first.path, first.offset, first.packet
    )


def _run_directory(
    args: argparse.Namespace, fmt: str, columns: Optional[List[str]], paths: Sequence[str], bar: Progress
) -> int:
    tally = _Tally()
    try:
        errors = _export_directory(args, fmt, columns, paths, bar, tally)
    except Interrupted:
        bar.close()
        if not args.quiet:
            print(
                "scapy-geneve export: stopped; %s from %s written to %s"
                % (plural(tally.rows, "packet"), plural(tally.files, "file"), args.output),
                file=sys.stderr,
            )
        raise
    bar.close()
    if not args.quiet:
        print(
            "scapy-geneve export: %s from %s written to %s (%s, one file per input)"
            % (plural(tally.rows, "packet"), plural(tally.files, "file"), args.output, fmt),
            file=sys.stderr,
        )
    if errors:
        raise _all_errors(errors)
    return 0


# -- one table ------------------------------------------------------------------------------
def _write_table(fmt: str, handle: IO[bytes], batches: Iterable[Any], columns: Optional[List[str]]) -> int:
    """BATCHES as a FMT table on HANDLE; the rows written.  The writer is closed on
    an error too (the file is whole; the caller keeps or discards it)."""
    from scapy_geneve.capture.columnar import require_pyarrow, schema

    writer = _WRITERS[fmt](require_pyarrow(), handle, schema(columns))
    rows = 0
    try:
        for batch in batches:
            writer.write(batch)
            rows += batch.num_rows
    finally:
        writer.close()
    return rows


def _run_single(
    args: argparse.Namespace, fmt: str, columns: Optional[List[str]], paths: Sequence[str], bar: Progress
) -> int:
    kwargs = _options.scan_kwargs(args)
    errors: List[CaptureError] = []
    with _output(args.output, paths) as handle:
        near = os.path.dirname(os.path.abspath(args.output)) if args.output != "-" else tempfile.gettempdir()
        if args.jobs > 1 and len(paths) > 1 and fmt == "parquet" and _in_place(handle, args.output):
            rows = _parquet_in_turns(paths, columns, kwargs, args.jobs, handle, near, bar, errors)
        else:
            if args.jobs > 1 and len(paths) > 1:
                source = _batches_in_workers(paths, columns, kwargs, args.jobs, near, errors)
            else:
                source = _batches_here(paths, columns, kwargs, bar, errors)
            rows = _write_table(fmt, handle, source, columns)
        if errors:
            bar.close()
            raise errors[0]  # OUT is not written
    bar.close()
    if not args.quiet:
        print(
            "scapy-geneve export: %s from %s written to %s (%s)"
            % (plural(rows, "packet"), plural(len(paths), "file"), args.output, fmt),
            file=sys.stderr,
        )
    return 0


def _in_place(handle: IO[bytes], output: str) -> bool:
    """Workers can write into HANDLE in place: our temporary file, workers forked."""
    return type(handle) is io.BufferedWriter and through_temporary(output) and workers_fork()


def run(args: argparse.Namespace) -> int:
    from scapy_geneve.capture.columnar import require_pyarrow

    fmt = table_format(args)
    columns = _columns(args)
    try:
        require_pyarrow()
    except ImportError as exc:
        _options.usage_error(args, str(exc))
    directory = args.output != "-" and is_directory(args.output)
    if directory and "-" in args.inputs:
        _options.usage_error(
            args,
            "standard input (-) cannot be exported to a directory (OUT %s): "
            "name the capture files, or give OUT a file name" % args.output,
        )
    paths = expand_inputs(args.inputs)
    bar = Progress(input_bytes(paths), "export", args.quiet)
    if directory:
        return _run_directory(args, fmt, columns, paths, bar)
    return _run_single(args, fmt, columns, paths, bar)


@contextlib.contextmanager
def _output(path: str, inputs: Sequence[str]) -> Iterator[IO[bytes]]:
    """OUT as a binary handle: standard output for ``-``, else atomic (never an input)."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with atomic_output(path, *[i for i in inputs if i != "-"]) as handle:
        yield handle
