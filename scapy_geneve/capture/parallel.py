"""Many captures, many cores: input lists, globs, and one worker process per file.

:func:`expand_inputs` turns command-line arguments (paths, globs, ``-``) into
the list of captures to read; :func:`map_files` runs a function on each, in
order, in ``jobs`` processes; :func:`stats_files` counts many captures into one
:class:`~scapy_geneve.capture.scan.ScanStats` with ``ScanStats.merge`` (the
merge is associative and commutative, so the result does not depend on how
the files are shared out; a test proves it).

Each file is one unit of work: a single capture is read by one process
(STT context IDs and pcapng sections flow from packet to packet).
"""

import collections
import glob
import itertools
import os
import signal
from typing import Any, Callable, Deque, Dict, Generator, Iterable, List, Optional, Sequence, Tuple, TypeVar

from scapy_geneve.capture.interrupt import SIGNALS, Interrupted, Stopped
from scapy_geneve.capture.scan import ScanStats, compute_stats, warm_up
from scapy_geneve.errors import CaptureError

__all__ = [
    "expand_inputs",
    "map_files",
    "stats_files",
    "merge_stats",
    "count_file",
    "FileStats",
    "input_bytes",
    "inherited",
    "workers_fork",
    "pool_context",
]

T = TypeVar("T")


def expand_inputs(patterns: Iterable[str]) -> List[str]:
    """Paths from PATTERNS: ``-`` and existing paths as given, globs expanded (sorted).

    A glob that matches nothing raises FileNotFoundError naming it (as a
    missing file does); ``-`` (standard input) may only be the sole input.
    """
    out: List[str] = []
    for pattern in patterns:
        if pattern == "-" or os.path.exists(pattern) or not glob.has_magic(pattern):
            out.append(pattern)
            continue
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise FileNotFoundError(2, "no file matches the pattern", pattern)
        out.extend(matches)
    if "-" in out and len(out) > 1:
        raise CaptureError("standard input (-) can only be the only input", path="-")
    return out


def input_bytes(paths: Sequence[str]) -> Optional[int]:
    """Total size of PATHS for a progress bar (None when one is standard input)."""
    if "-" in paths:
        return None
    try:
        return sum(os.path.getsize(path) for path in paths)
    except OSError:
        return None


def pool_context() -> Any:
    """fork where the platform has it (no re-import in the workers), else spawn."""
    import multiprocessing  # here, not at the top: one file (the usual case) needs no pool

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def workers_fork() -> bool:
    """True when the workers are forked: they inherit the parent's open descriptors."""
    return bool(pool_context().get_start_method() == "fork")


def map_files(
    func: Callable[..., T],
    paths: Sequence[Any],
    jobs: int = 1,
    args: Tuple[Any, ...] = (),
    inherit: Any = None,
    ahead: Optional[int] = None,
    warm: Optional[Callable[[], Any]] = warm_up,
    stop: Optional[Callable[[], Any]] = None,
) -> Generator[T, None, None]:
    """``func(path, *args)`` for each of PATHS, yielded in the order of PATHS.

    ``jobs`` > 1 runs them in that many worker processes (FUNC and its
    arguments must pickle); 1 runs them here, one after the other.  INHERIT
    (shared memory, locks: what may only be inherited) is given to the workers
    as they start, and :func:`inherited` returns it there.  AHEAD bounds how many
    paths are handed out beyond the one whose result is awaited (results that
    wait for their turn are held in the parent; default: no bound).  WARM is
    called here before the pool starts: what it imports, forked workers have
    from the start (each importing numpy at once took longer than one import).
    STOP is called as the pool ends, before waiting for the workers (to cut short
    what they are still doing when the caller stopped early).  A worker
    stopped by SIGINT, SIGTERM or SIGHUP (a Ctrl-C reaches the whole process
    group) stops the caller with :class:`Interrupted`, after the results of the
    files before it were yielded; between files a worker leaves those signals to
    the parent (so an idle worker prints no traceback) unless the parent is gone.
    A worker that dies (SIGKILL, the OOM killer) stops the caller with a
    CaptureError, the other workers killed (a pool cannot go on without it).
    """
    if jobs <= 1 or len(paths) <= 1:
        _INHERITED[0] = inherit
        for path in paths:
            yield func(path, *args)
        return
    import concurrent.futures
    import concurrent.futures.process

    if warm is not None:
        warm()
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=min(jobs, len(paths)),
        mp_context=pool_context(),
        initializer=_worker_start,
        initargs=(os.getpid(), inherit),
    ) as pool:
        todo = iter(paths)
        futures: Deque[Any] = collections.deque()

        def hand_out(count: int) -> None:
            for path in itertools.islice(todo, count):
                futures.append(pool.submit(_in_worker, path, func, *args))

        hand_out(len(paths) if ahead is None else ahead + 1)
        try:
            while futures:
                result = futures[0].result()
                futures.popleft()
                hand_out(1)
                yield result
        except Stopped as stopped:
            raise Interrupted(stopped.signum) from None
        except concurrent.futures.process.BrokenProcessPool:
            _kill_workers(pool)  # one idle in the call queue would wait for ever for its lock
            raise CaptureError(
                "a worker process died (killed by a signal, or out of memory): the work stopped"
            ) from None
        finally:
            if stop is not None:
                stop()
            for future in futures:
                future.cancel()


def _kill_workers(pool: Any) -> None:
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError):  # gone already
            pass


# -- worker processes: signals act while a file is worked on, not between files -------------
_FORKED_WITH: Dict[int, Any] = {}  # (worker) the handlers the worker was forked with
_PARENT: List[int] = []  # (worker) the pid of the process that started the pool
_INHERITED: List[Any] = [None]  # (worker) map_files' INHERIT


def inherited() -> Any:
    """(worker) What :func:`map_files` was given as INHERIT."""
    return _INHERITED[0]


def _worker_start(parent: int, inherit: Any) -> None:
    """(worker, at start) Remember the parent, what it gave, and the handlers forked
    from it, then stand idle: from the first instant, a Ctrl-C between files is the parent's."""
    _PARENT[:] = [parent]
    _INHERITED[0] = inherit
    _FORKED_WITH.update((signum, signal.getsignal(signum)) for signum in SIGNALS)
    _stand_idle()


def _stand_idle() -> None:
    for signum in SIGNALS:
        signal.signal(signum, _between_files)


def _between_files(signum: int, _frame: Any) -> None:
    """(worker, idle) The parent handles the signal and shuts the pool down; a worker
    whose parent is gone (SIGKILL, the OOM killer) has nobody to wait for and exits."""
    if os.getppid() != _PARENT[0]:
        os._exit(128 + signum)


def _in_worker(item: Any, func: Callable[..., T], *args: Any) -> T:
    """(worker) ``func(item, *args)`` with the signal handlers the worker was forked
    with (a signal stops the file, and the parent with it); idle again after."""
    for signum, handler in _FORKED_WITH.items():
        signal.signal(signum, handler)
    try:
        return func(item, *args)
    except Interrupted as stop:
        raise Stopped(stop.signum) from None
    finally:
        _stand_idle()


class FileStats:
    """One file's counts and, if the file is damaged part-way, the error."""

    __slots__ = ("stats", "error")

    def __init__(self, stats: ScanStats, error: Optional[CaptureError]) -> None:
        self.stats = stats
        self.error = error


def count_file(path: str, kwargs: Any) -> FileStats:
    """:func:`compute_stats` of one file; a damaged file keeps what was counted."""
    stats = ScanStats(path)
    try:
        compute_stats(path, stats=stats, **kwargs)
    except CaptureError as exc:
        stats.error = str(exc)
        return FileStats(stats, exc)
    return FileStats(stats, None)


def stats_files(
    paths: Sequence[str], jobs: int = 1, progress: Optional[Callable[[int, int], None]] = None, **kwargs: Any
) -> Tuple[ScanStats, List[FileStats]]:
    """Count every capture of PATHS (``jobs`` processes) into one ScanStats.

    Returns the merged counts and each file's own (with its error, if any).
    ``progress(bytes_done, packets_done)`` is called as files finish (and, with
    one process, after each chunk).  Keyword arguments go to
    :func:`compute_stats` (``ports``, ``l2tp_cookie``, ``l2tp_l2ss``).
    """
    per_file: List[FileStats] = []
    done_bytes = done_packets = 0
    if progress is not None and jobs <= 1:
        kwargs = dict(kwargs, progress=lambda b, p: progress(done_bytes + b, done_packets + p))
    try:
        for result in map_files(count_file, paths, jobs, (kwargs,)):
            per_file.append(result)
            done_packets += result.stats.packets
            if result.stats.path != "-":
                done_bytes += _size(result.stats.path)
            if progress is not None:
                progress(done_bytes, done_packets)
    except Interrupted as stop:  # the files counted before the signal go with it
        stop.per_file = per_file  # type: ignore[attr-defined]
        raise
    return merge_stats([result.stats for result in per_file]), per_file


def merge_stats(parts: Sequence[ScanStats]) -> ScanStats:
    """One ScanStats counting everything PARTS count (in any order: the same result).

    ``path`` and ``format`` are the parts' when they all agree ("" and "mixed"
    otherwise); ``error`` joins the parts' errors.
    """
    merged = ScanStats(parts[0].path if len({p.path for p in parts}) == 1 else "")
    for part in parts:
        merged.merge(part)
    formats = {p.format for p in parts if p.format}
    merged.format = formats.pop() if len(formats) == 1 else "mixed" if formats else ""
    errors = [p.error for p in parts if p.error]
    merged.error = "; ".join(errors) if errors else None
    return merged


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
