"""Helpers shared by the CLI commands: safe output files, signals, a progress bar.

Output (:func:`capture_output`, :func:`atomic_output`): OUT is written as what
it is (regular file atomically, symlink through to its target, FIFO/device/
``>(...)`` directly), never over an input, errors naming OUT.  Signals: the
CLI's ``main()`` runs every command under :func:`graceful_signals`; a command
that wants to print its counts on SIGINT/SIGTERM/SIGHUP catches
:class:`Interrupted`, prints, and re-raises (``main()`` maps it to 130/143/129).
"""

import contextlib
import os
import stat
import sys
import tempfile
import time
from typing import IO, Any, Iterator, Optional, cast

from scapy_geneve.capture.interrupt import Interrupted, graceful_signals
from scapy_geneve.capture.writers import is_live
from scapy_geneve.errors import CaptureError

__all__ = [
    "check_not_input",
    "atomic_output",
    "capture_output",
    "writes_directly",
    "is_live",
    "Interrupted",
    "graceful_signals",
    "Progress",
    "plural",
]

NAME_MAX = 255  # longest file name (one path component) on Linux file systems
_TMP_SUFFIX = ".part"


def plural(count: int, word: str) -> str:
    """ "1 packet", "2 packets"."""
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def _identity(path: str) -> Optional[os.stat_result]:
    """stat() of what PATH names (``-`` = standard input), following symlinks."""
    try:
        return os.fstat(0) if path == "-" else os.stat(path)
    except (OSError, ValueError):
        return None


def check_not_input(out_path: str, *in_paths: str) -> None:
    """Refuse to write OUT over one of the inputs: the same file by device and
    inode, whatever the spelling (``-`` is the file standard input reads, so
    ``filter - cap.pcap < cap.pcap`` is refused too).  Special files (a FIFO,
    /dev/null) are never "the input": writing them destroys nothing."""
    out = _identity(out_path)
    if out is None or not stat.S_ISREG(out.st_mode):
        return
    for in_path in in_paths:
        src = _identity(in_path)
        if src is not None and (src.st_dev, src.st_ino) == (out.st_dev, out.st_ino):
            shown = "standard input" if in_path == "-" else in_path
            raise CaptureError("refusing to overwrite the input file (%s)" % shown, path=out_path)


def writes_directly(path: str) -> bool:
    """True when bytes written to OUT reach their destination at once (standard
    output, a FIFO, a device, a socket): nothing can be held back or discarded
    after an error, so "OUT not written" would be false."""
    if path == "-":
        return True
    st = _identity(path)
    return st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode)


def _via_fd_link(path: str) -> bool:
    """True when PATH is, or links through, /dev/fd/N, /dev/stdout or
    /proc/PID/fd/N: an already-open descriptor that must be written as is."""
    seen = 0
    while os.path.islink(path) and seen < 40:
        parent = os.path.dirname(os.path.abspath(path))
        if (
            parent in ("/dev/fd", "/dev")
            and os.path.basename(path) in ("stdout", "stderr", "stdin")
            or parent == "/dev/fd"
            or (parent.startswith("/proc/") and parent.endswith("/fd"))
        ):
            return True
        target = os.readlink(path)
        path = os.path.join(os.path.dirname(path), target)
        seen += 1
    return False


def through_temporary(path: str) -> bool:
    """True when :func:`atomic_output` writes PATH through a temporary file of its own,
    made durable and renamed into place at the end (a regular file or a link to one);
    False for standard output and whatever it writes directly."""
    return path != "-" and not writes_directly(path) and not _via_fd_link(path)


def _resolve(path: str) -> str:
    """Where to write for OUT: a symlink is followed to its target (the link
    stays a link; a dangling link creates its target)."""
    return os.path.realpath(path) if os.path.islink(path) else path


def _temp_prefix(target: str) -> str:
    """``.NAME.`` for the temporary file, shortened so that the temporary's name
    (prefix + 8 random characters + ``.part``) fits in NAME_MAX."""
    room = NAME_MAX - 2 - 8 - len(_TMP_SUFFIX)
    return ".%s." % os.path.basename(target)[:room]


def _check_directory(path: str, target: str) -> str:
    name = os.path.basename(target)
    if len(os.fsencode(name)) > NAME_MAX:
        raise CaptureError(
            "file name too long (%d bytes; at most %d)" % (len(os.fsencode(name)), NAME_MAX), path=path
        )
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise CaptureError("is a directory: give a file name for the output", path=path)
    if not os.path.isdir(directory):
        raise CaptureError("directory %s does not exist" % directory, path=path)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CaptureError("directory %s is not writable" % directory, path=path)
    return directory


def _keep_mode_and_owner(fd: int, target: str) -> None:
    """Give the new file the mode and owner of the one it replaces, or the mode
    open() would have given a new file (mkstemp makes it 0600)."""
    try:
        old: Optional[os.stat_result] = os.stat(target)
    except OSError:
        old = None
    if old is None:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        return
    with contextlib.suppress(PermissionError):  # only root may give a file away
        os.fchown(fd, old.st_uid, old.st_gid)
    os.fchmod(fd, stat.S_IMODE(old.st_mode))


def _named(exc: OSError, path: str) -> OSError:
    """EXC naming PATH: a write error on an open file (ENOSPC, EIO, EPIPE...)
    names no file.  Errors that are not about a file (a name lookup's
    gaierror, errno < 0) are left as they are."""
    if exc.filename is None and isinstance(exc.errno, int) and exc.errno > 0:
        exc.filename = path
    return exc


@contextlib.contextmanager
def _direct_output(path: str) -> Iterator[IO[bytes]]:
    """OUT is a FIFO, device, socket or an open descriptor: write it as it is."""
    try:
        with open(path, "wb") as handle:  # closing flushes again: inside the try too
            yield handle
            handle.flush()
    except OSError as exc:
        raise _named(exc, path) from None


@contextlib.contextmanager
def atomic_output(path: str, *inputs: str) -> Iterator[IO[bytes]]:
    """Write OUT safely, whatever it is.

    - A regular file (new or existing): written to a temporary beside it and
      renamed over it on success, keeping the replaced file's mode and owner.
      An error leaves any existing OUT untouched and no temporary file.  A stop
      by signal (:class:`Interrupted`: SIGINT, SIGTERM, SIGHUP) keeps what was
      written: OUT then holds every packet processed so far.
    - A symlink: the same, for its target (the link stays a link).
    - A FIFO, a device (/dev/null), a socket, /dev/stdout, ``>(...)``: written
      directly; nothing is replaced.
    - Never over one of INPUTS (same device and inode).
    """
    check_not_input(path, *inputs)
    if not through_temporary(path):
        with _direct_output(path) as handle:
            yield handle
        return
    target = _resolve(path)
    directory = _check_directory(path, target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=_TMP_SUFFIX, dir=directory)
    except OSError as exc:  # name OUT, not the temporary file
        raise CaptureError("cannot write the output: %s" % exc.strerror, path=path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            try:
                yield handle
            except Interrupted:
                _commit(handle, tmp, target)
                raise
            _commit(handle, tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise _named(exc, path) from None
    except BaseException:
        _discard(tmp)
        raise


def _commit(handle: IO[bytes], tmp: str, target: str) -> None:
    handle.flush()
    _keep_mode_and_owner(handle.fileno(), target)
    os.fsync(handle.fileno())
    os.replace(tmp, target)


def _discard(tmp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


class _Flushing:
    """A binary handle that pushes every write out at once: a live reader
    (``| tcpdump -r -``) sees each packet as it is written."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle

    def write(self, data: Any) -> int:
        n = self.handle.write(data)
        self.handle.flush()
        return n

    def flush(self) -> None:
        self.handle.flush()

    def fileno(self) -> int:
        return self.handle.fileno()

    def writable(self) -> bool:
        return True


def _live(handle: IO[bytes]) -> IO[bytes]:
    return cast(IO[bytes], _Flushing(handle)) if is_live(handle) else handle


@contextlib.contextmanager
def _stdout_output(inputs: Any) -> Iterator[IO[bytes]]:
    if sys.stdout.isatty():
        raise CaptureError(
            "refusing to write a capture to a terminal (redirect standard output or give a file name)",
            path="-",
        )
    out = _identity_fd(1)
    for in_path in inputs:
        src = _identity(in_path)
        if (
            out is not None
            and src is not None
            and stat.S_ISREG(out.st_mode)
            and (src.st_dev, src.st_ino) == (out.st_dev, out.st_ino)
        ):
            raise CaptureError(
                "refusing to write over the input file (%s): standard output is that file" % in_path, path="-"
            )
    try:
        yield _live(sys.stdout.buffer)
        sys.stdout.buffer.flush()
    except OSError as exc:
        raise _named(exc, "<stdout>") from None


def _identity_fd(fd: int) -> Optional[os.stat_result]:
    try:
        return os.fstat(fd)
    except OSError:
        return None


@contextlib.contextmanager
def capture_output(path: str, *inputs: str) -> Iterator[IO[bytes]]:
    """Where a command writes a capture: standard output for ``-`` (never a
    terminal, never the input file), otherwise :func:`atomic_output`.  Output
    to a pipe, FIFO or socket is flushed at every write (live pipelines)."""
    if path == "-":
        with _stdout_output([i for i in inputs if i != "-"]) as out:
            yield out
        return
    with atomic_output(path, *inputs) as handle:
        yield _live(handle)


class Progress:
    """A one-line progress bar on stderr.

    Silent when stderr is not a terminal, when ``quiet`` is set, or for work
    that finishes within ``delay`` seconds.
    """

    def __init__(
        self,
        total: Optional[int],
        label: str = "",
        quiet: bool = False,
        delay: float = 2.0,
        stream: Optional[IO[str]] = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self.total = total
        self.label = label
        self.start = time.monotonic()
        self.delay = delay
        self.last = 0.0
        self.shown = False

    def update(self, done: int, packets: Optional[int] = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or now - self.last < 0.2:
            return
        self.last = now
        self.shown = True
        rate = ""
        if packets is not None:
            rate = " %d pkts (%.0f/s)" % (packets, packets / max(now - self.start, 1e-9))
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            self.stream.write("\r%s [%-30s] %5.1f%%%s" % (self.label, bar, frac * 100, rate))
        else:
            self.stream.write("\r%s %d%s" % (self.label, done, rate))
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
