"""Helpers shared by the CLI commands: safe output files and a progress bar."""

import contextlib
import os
import sys
import tempfile
import time
from typing import IO, Iterator, Optional

from scapy_geneve.errors import CaptureError


def check_not_input(out_path: str, *in_paths: str) -> None:
    """Refuse to write OUT over one of the inputs (same file, any spelling)."""
    for in_path in in_paths:
        try:
            if os.path.samefile(out_path, in_path):
                raise CaptureError("refusing to overwrite the input file %s" % in_path,
                                   path=out_path)
        except FileNotFoundError:
            continue


@contextlib.contextmanager
def atomic_output(path: str, *inputs: str) -> Iterator[IO[bytes]]:
    """Write to a temporary file beside PATH, renamed over PATH only on success.

    An error or Ctrl-C leaves any existing PATH untouched and no temporary file.
    """
    check_not_input(path, *inputs)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CaptureError("is a directory: give a file name for the output", path=path)
    if not os.path.isdir(directory):
        raise CaptureError("directory %s does not exist" % directory, path=path)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CaptureError("directory %s is not writable" % directory, path=path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path),
                                   suffix=".part", dir=directory)
    except OSError as exc:  # name OUT, not the temporary file
        raise CaptureError("cannot write the output: %s" % exc.strerror, path=path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            # mkstemp makes the file 0600; give it the mode open() would have.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(handle.fileno(), 0o666 & ~umask)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def capture_output(path: str, *inputs: str) -> Iterator[IO[bytes]]:
    """Where a command writes a capture: standard output for ``-`` (never a
    terminal), otherwise :func:`atomic_output` (never over an input)."""
    if path == "-":
        if sys.stdout.isatty():
            raise CaptureError("refusing to write a capture to a terminal (redirect standard "
                               "output or give a file name)", path="-")
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with atomic_output(path, *[i for i in inputs if i != "-"]) as out:
        yield out


class Progress:
    """A one-line progress bar on stderr.

    Silent when stderr is not a terminal, when ``quiet`` is set, or for work
    that finishes within ``delay`` seconds.
    """

    def __init__(self, total: Optional[int], label: str = "", quiet: bool = False,
                 delay: float = 2.0, stream: Optional[IO[str]] = None) -> None:
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
